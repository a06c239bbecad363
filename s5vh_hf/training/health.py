"""Training health of hash codes: statistics that reveal a collapse long before a retrieval evaluation would.

Pure functions on ±1 codes; :class:`~s5vh_hf.S5VHTrainer` computes them on a fixed probe of training videos
every epoch, logs them like any Trainer metric and warns when the codes collapse.
"""

from __future__ import annotations

import numpy as np

COLLAPSE_HINT = (
    "what to try: keep feature_normalization='standardize' and initialization='scaled' (the defaults), a smaller "
    "batch or more epochs for a small data set (s5vh_training_arguments(..., num_train_examples=N) sizes the batch), "
    "a lower learning rate, or the 'mini' model size"
)


def code_health(codes: np.ndarray, centers: np.ndarray | None = None) -> dict[str, float]:
    """Statistics of the codes ``[N, L]`` (±1) of N videos.

    Returns:
        ``distinct_codes`` (count) and ``distinct_fraction`` (of N); ``bit_imbalance``, the mean over bits of
        |mean of the bit| (0: every bit splits the videos in half, 1: constant bits); ``constant_bits``;
        ``bit_entropy``, the mean binary entropy of the bits in bits (1 is best); and with hash ``centers``
        ``[K, L]``: ``center_usage``, the fraction of centers that are the nearest center of at least one video.
    """
    codes = np.asarray(codes, dtype=np.float32)
    if codes.ndim != 2 or len(codes) == 0:
        raise ValueError(f"codes must be a non-empty [N, L] array, got shape {codes.shape}")
    positive = (codes > 0).mean(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -(positive * np.log2(positive) + (1 - positive) * np.log2(1 - positive))
    distinct = len(np.unique(codes > 0, axis=0))
    health = {
        "distinct_codes": float(distinct),
        "distinct_fraction": distinct / len(codes),
        "bit_imbalance": float(np.abs(2 * positive - 1).mean()),
        "constant_bits": float(((positive == 0) | (positive == 1)).sum()),
        "bit_entropy": float(np.nan_to_num(entropy, nan=0.0).mean()),
    }
    if centers is not None:
        nearest = (codes @ np.asarray(centers, np.float32).T).argmax(1)
        health["center_usage"] = len(np.unique(nearest)) / len(centers)
    return health


def collapse_warnings(health: dict[str, float], num_videos: int, expected_groups: int | None = None) -> list[str]:
    """Human-readable signs of collapse in :func:`code_health`'s output (empty when healthy).

    A collapse: a constant bit, or fewer distinct codes than half the videos (or than the ``expected_groups``,
    e.g. the number of hash centers, when that is smaller).
    """
    problems = []
    if health["constant_bits"] > 0:
        problems.append(f"{health['constant_bits']:.0f} bits are constant over the probe videos")
    floor = min(num_videos / 2, expected_groups if expected_groups else num_videos / 2)
    if health["distinct_codes"] < floor:
        problems.append(f"only {health['distinct_codes']:.0f} distinct codes for {num_videos} videos")
    return problems
