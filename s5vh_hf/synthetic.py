"""A small synthetic video-feature dataset with temporal structure and labels: the package's embedded default.

Each class has a weak mean appearance and a strong class-specific motion: the frames rotate in a class-specific
2-D subspace at a class-specific speed, from a random starting phase. Every video adds a small offset shared by
its frames (camera, lighting) and per-frame noise. Over a clip the rotation averages out, so mean pooling keeps
little of the class and mean-pool baselines stay weak, while a temporal model that reads the frames can learn
it within a few CPU minutes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class SyntheticVideos:
    """``features`` ``[N, T, D]`` float32 (padded with zeros past ``lengths``), ``labels`` ``[N]`` int64,
    ``lengths`` ``[N]`` int64, ``video_ids`` ``[N]`` strings."""

    features: np.ndarray
    labels: np.ndarray
    lengths: np.ndarray
    video_ids: list[str]

    def videos(self) -> list[np.ndarray]:
        """The videos as a list of ``[T_i, D]`` arrays (padding removed)."""
        return [f[:n] for f, n in zip(self.features, self.lengths)]


def make_synthetic_videos(
    num_videos: int = 600,
    num_classes: int = 10,
    num_frames: int = 16,
    feature_dim: int = 64,
    min_frames: int | None = None,
    class_mean_scale: float = 0.3,
    motion_scale: float = 1.0,
    nuisance_scale: float = 0.5,
    noise_scale: float = 1.5,
    seed: int = 0,
    id_prefix: str = "synthetic",
) -> SyntheticVideos:
    """Generate a deterministic labelled video-feature dataset.

    Args:
        num_videos: N videos, labels balanced over ``num_classes``.
        num_frames: Maximum (and, without ``min_frames``, exact) number of frames T.
        feature_dim: Feature dimension D (≥ 4).
        min_frames: When given, each video's length is drawn uniformly from [min_frames, num_frames].
        class_mean_scale: Size of the class's mean appearance (what mean pooling sees).
        motion_scale: Radius of the class's rotation (what a temporal model sees).
        nuisance_scale: Size of the per-video offset shared by all its frames.
        noise_scale: Size of the per-frame noise.
        seed: Seed of the whole dataset (the same seed gives the same arrays).
    """
    if feature_dim < 4:
        raise ValueError(f"feature_dim must be at least 4, got {feature_dim}")
    if num_classes < 2 or num_videos < num_classes:
        raise ValueError(f"need num_classes ≥ 2 and num_videos ≥ num_classes, got {num_classes}, {num_videos}")
    rng = np.random.default_rng(seed)
    class_means = rng.standard_normal((num_classes, feature_dim))
    motion_planes = rng.standard_normal((num_classes, 2, feature_dim))
    speeds = rng.uniform(0.4, 0.9, num_classes)  # radians per frame: a 16-frame clip turns about once
    labels = np.arange(num_videos) % num_classes
    rng.shuffle(labels)
    if min_frames is None:
        lengths = np.full(num_videos, num_frames)
    else:
        lengths = rng.integers(min_frames, num_frames + 1, num_videos)
    steps = np.arange(num_frames)[None, :]
    phases = rng.uniform(0, 2 * np.pi, (num_videos, 1)) + speeds[labels][:, None] * steps  # [N, T]
    motion = (
        np.cos(phases)[..., None] * motion_planes[labels, 0][:, None]
        + np.sin(phases)[..., None] * motion_planes[labels, 1][:, None]
    )
    nuisance = nuisance_scale * rng.standard_normal((num_videos, 1, feature_dim)) * 2.0
    noise = noise_scale * rng.standard_normal((num_videos, num_frames, feature_dim))
    features = 0.6 * class_means[labels][:, None] + motion + nuisance + noise
    features[steps >= lengths[:, None]] = 0.0
    video_ids = [f"{id_prefix}-{i:05d}" for i in range(num_videos)]
    return SyntheticVideos(features.astype(np.float32), labels.astype(np.int64), lengths.astype(np.int64), video_ids)
