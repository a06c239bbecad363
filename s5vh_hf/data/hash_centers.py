"""Global semantics, part 2: the semantic centers of the clustering (:mod:`.clustering`) become binary hash centers
with a guaranteed minimum Hamming distance; saving and loading them.

Center generation is a discrete block-coordinate search: each center in turn is improved by best-improvement
bit flips on ``m̄ᵀb + ‖H b − t‖²`` (H the other centers, m̄ their mean, t the rescaled semantic similarities)
with the Gilbert–Varshamov separation ``H b ≤ L − 2d`` as a hard constraint (an exact penalty larger than any
objective change), starting from Hadamard rows as the authors do.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..model.codes import check_code_length
from ..model.commits import write_file_atomically
from .clustering import SemanticClusters, compute_semantic_clusters

# --------------------------------------------------------------------------------------------------------------
# Hash centers
# --------------------------------------------------------------------------------------------------------------


def gilbert_varshamov_distance(code_length: int, n_centers: int) -> int:
    """Smallest d with Σ_{j<d} C(L, j) ≥ 2^L / K (the paper's hash-center construction)."""
    target = 2**code_length / n_centers
    volume = 0
    for d in range(1, code_length + 2):
        volume += math.comb(code_length, d - 1)
        if volume >= target:
            return d
    return code_length + 1


def hadamard_matrix(order: int) -> np.ndarray:
    """Sylvester Hadamard matrix ``[order, order]`` of ±1 (order a power of two)."""
    if order < 1 or order & (order - 1):
        raise ValueError(f"Hadamard order must be a power of two, got {order}")
    matrix = np.ones((1, 1), dtype=np.int8)
    while len(matrix) < order:
        matrix = np.block([[matrix, matrix], [matrix, -matrix]])
    return matrix


def initial_hash_centers(n_centers: int, code_length: int, rng: np.random.Generator) -> np.ndarray:
    """Rows of H_L and −H_L, then random balanced ±1 rows when K > 2L (the paper's construction, as the authors' code does it). ``int8`` ``[K, L]``."""
    hadamard = hadamard_matrix(code_length)
    pool = np.concatenate([hadamard, -hadamard])
    if n_centers <= len(pool):
        return pool[rng.permutation(len(pool))[:n_centers]].copy()
    extra = np.empty((n_centers - len(pool), code_length), dtype=np.int8)
    half = np.array([1] * (code_length // 2) + [-1] * (code_length - code_length // 2), dtype=np.int8)
    for row in extra:
        row[:] = rng.permutation(half)
    return np.concatenate([pool, extra])


def rescaled_semantic_similarity(semantic_centers: np.ndarray, code_length: int) -> np.ndarray:
    """t: ⟨w_i, w_j⟩ of L2-normalised semantic centers, min–max rescaled to [−L, L] (off-diagonal range)."""
    w = np.asarray(semantic_centers, np.float64)
    w = w / np.maximum(np.linalg.norm(w, axis=1, keepdims=True), 1e-12)
    similarity = w @ w.T
    off = similarity[~np.eye(len(w), dtype=bool)]
    low, high = off.min(), off.max()
    if high - low < 1e-12:
        return np.zeros_like(similarity)
    return (similarity - low) / (high - low) * 2 * code_length - code_length


@dataclass
class HashCenterReport:
    """Quality of a hash-center matrix."""

    n_centers: int
    code_length: int
    required_distance: int
    min_distance: int
    mean_distance: float
    constraint_satisfied: bool
    semantic_correlation: float
    sweeps: int
    selection_score: float
    """Σ_{i<j} Ham(c_i, c_j)/K² − Σ_{i<j} |cos(c_i, c_j) − cos(w_i, w_j)|: spread minus semantic mismatch.
    The spec's formula writes the second sum without the absolute value; signed, it would only reward spread
    (already the first term), so the mismatch is taken in absolute value."""

    def summary(self) -> str:
        status = "satisfied" if self.constraint_satisfied else "NOT satisfied"
        return (
            f"K={self.n_centers}, L={self.code_length}: min Hamming {self.min_distance} (required {self.required_distance},"
            f" {status}), mean {self.mean_distance:.2f}, semantic correlation {self.semantic_correlation:.3f}"
        )


@dataclass
class HashCenters:
    """Hash centers ``[K, L]`` int8 ±1 with their report (and, once stored, pseudo-labels and metadata)."""

    centers: np.ndarray
    report: HashCenterReport | None = None
    pseudo_labels: np.ndarray | None = None
    metadata: dict[str, str] = field(default_factory=dict)


def _pairwise_distances(centers: np.ndarray) -> np.ndarray:
    c = centers.astype(np.int64)
    return (c.shape[1] - c @ c.T) // 2


def hash_center_report(
    centers: np.ndarray, semantic_centers: np.ndarray | None = None, sweeps: int = 0
) -> HashCenterReport:
    """Measure a center matrix: min / mean pairwise Hamming distance against the GV bound, and the Pearson
    correlation between center inner products and semantic similarities."""
    n_centers, code_length = centers.shape
    required = gilbert_varshamov_distance(code_length, n_centers)
    distances = _pairwise_distances(centers)
    upper = np.triu_indices(n_centers, 1)
    pair_distances = distances[upper]
    correlation = float("nan")
    score = float("nan")
    if semantic_centers is not None:
        w = np.asarray(semantic_centers, np.float64)
        w = w / np.maximum(np.linalg.norm(w, axis=1, keepdims=True), 1e-12)
        semantic = (w @ w.T)[upper]
        center_cos = (centers.astype(np.float64) @ centers.T.astype(np.float64))[upper] / code_length
        if semantic.std() > 0 and center_cos.std() > 0:
            correlation = float(np.corrcoef(center_cos, semantic)[0, 1])
        score = float(pair_distances.sum() / n_centers**2 - np.abs(center_cos - semantic).sum())
    return HashCenterReport(
        n_centers=n_centers,
        code_length=code_length,
        required_distance=required,
        min_distance=int(pair_distances.min()),
        mean_distance=float(pair_distances.mean()),
        constraint_satisfied=bool(pair_distances.min() >= required),
        semantic_correlation=correlation,
        sweeps=sweeps,
        selection_score=score,
    )


def _improve_center(
    code: np.ndarray, others: np.ndarray, targets: np.ndarray, limit: int, penalty: float, max_flips: int
) -> np.ndarray:
    """Best-improvement bit flips of one center ``code`` ``[L]`` on
    ``m̄ᵀb + ‖H b − t‖² + penalty · Σ max(0, H b − limit)`` with H = ``others`` ``[K−1, L]``."""
    b = code.astype(np.float64)
    H = others.astype(np.float64)
    mean_other = H.mean(0)
    inner = H @ b
    n_others = len(H)
    for _ in range(max_flips):
        # Flipping bit l changes H b by −2 b_l H[:, l]:
        # Δ‖H b − t‖² = −4 b_l (Hᵀ(H b − t))_l + 4(K−1),  Δ m̄ᵀb = −2 b_l m̄_l.
        delta = -4.0 * b * (H.T @ (inner - targets)) + 4.0 * n_others - 2.0 * b * mean_other
        if penalty:
            # Only rows within one flip (±2) of the limit can change the penalty.
            near = np.flatnonzero(inner > limit - 2)
            if len(near):
                rows = inner[near]
                moved = rows[:, None] - 2.0 * b[None, :] * H[near]
                excess_change = np.maximum(moved - limit, 0.0).sum(0) - np.maximum(rows - limit, 0.0).sum()
                delta += penalty * excess_change
        best = int(np.argmin(delta))
        if delta[best] >= -1e-9:
            break
        inner -= 2.0 * b[best] * H[:, best]
        b[best] = -b[best]
    return b.astype(np.int8)


def generate_hash_centers(
    semantic_centers: np.ndarray,
    code_length: int,
    seed: int = 0,
    max_sweeps: int = 20,
    restarts_per_center: int = 20,
    semantic_sweeps: int = 3,
) -> HashCenters:
    """Binary hash centers ``{−1, +1}^{K×L}`` for semantic centers ``[K, P]`` (the paper's hash-center construction).

    The GV distance d is a hard constraint; semantic consistency (center inner products tracking the rescaled
    semantic similarities) and spread (away from the other centers' mean) are the objective. Deterministic for
    a seed. The returned report says whether the constraint holds; it is never silently weakened.
    """
    semantic_centers = np.asarray(semantic_centers, dtype=np.float64)
    if semantic_centers.ndim != 2:
        raise ValueError(f"semantic_centers must be [K, P], got shape {semantic_centers.shape}")
    n_centers = len(semantic_centers)
    if n_centers < 2:
        raise ValueError(f"need at least 2 centers, got {n_centers}")
    check_code_length(code_length)
    if not np.isfinite(semantic_centers).all():
        raise ValueError("semantic_centers contain NaN or Inf")
    if n_centers > 2**code_length:
        raise ValueError(f"{n_centers} distinct centers do not fit in {code_length} bits")
    rng = np.random.default_rng(seed)
    required = gilbert_varshamov_distance(code_length, n_centers)
    limit = code_length - 2 * required
    targets = rescaled_semantic_similarity(semantic_centers, code_length)
    # Any violation (≥ 2 units of ⟨c_i, c_j⟩) must outweigh the largest possible objective change.
    penalty = float((n_centers - 1) * (2 * code_length) ** 2 + code_length + 1)
    centers = initial_hash_centers(n_centers, code_length, rng)
    everyone = np.arange(n_centers)

    def sweep_once(weight: float) -> int:
        changed = 0
        for i in rng.permutation(n_centers):
            others_index = everyone[everyone != i]
            others = centers[others_index]
            row_targets = targets[i, others_index]
            candidate = _improve_center(centers[i], others, row_targets, limit, weight, 4 * code_length)
            attempt = 0
            while weight > 0 and (others.astype(np.int64) @ candidate > limit).any() and attempt < restarts_per_center:
                attempt += 1
                start = candidate * np.where(rng.random(code_length) < 0.25, -1, 1).astype(np.int8)
                candidate = _improve_center(start, others, row_targets, limit, weight, 4 * code_length)
            if not np.array_equal(candidate, centers[i]):
                changed += 1
                centers[i] = candidate
        return changed

    # Phase 1 arranges the centers semantically with the separation as a soft preference only, so that the
    # hard constraint of phase 2 does not freeze a dense packing (K > 2L) at its random start.
    for _ in range(semantic_sweeps):
        if sweep_once(penalty / ((n_centers - 1) * (2 * code_length) ** 2)) == 0:
            break
    best_centers, best_score, best_sweeps = centers.copy(), -np.inf, 0
    for sweep in range(1, max_sweeps + 1):
        changed = sweep_once(penalty)
        report = hash_center_report(centers, semantic_centers, sweep)
        score = report.selection_score + (0.0 if report.constraint_satisfied else -1e12)
        if score > best_score:
            best_centers, best_score, best_sweeps = centers.copy(), score, sweep
        if changed == 0:
            break
    return HashCenters(best_centers, hash_center_report(best_centers, semantic_centers, best_sweeps))


# --------------------------------------------------------------------------------------------------------------
# Storage
# --------------------------------------------------------------------------------------------------------------


def save_hash_centers(
    path: str | Path,
    centers: np.ndarray,
    pseudo_labels: np.ndarray | None = None,
    seed: int | None = None,
    source: str | None = None,
    extra_metadata: dict[str, Any] | None = None,
) -> None:
    """Write centers (and pseudo-labels) as safetensors with metadata K, L, d, seed and source dataset."""
    from safetensors.numpy import save

    centers = np.asarray(centers, dtype=np.int8)
    n_centers, code_length = centers.shape
    tensors = {"hash_centers": np.ascontiguousarray(centers)}
    if pseudo_labels is not None:
        tensors["pseudo_labels"] = np.ascontiguousarray(np.asarray(pseudo_labels, dtype=np.int64))
    metadata = {
        "format": "s5vh-hash-centers",
        "num_centers": str(n_centers),
        "code_length": str(code_length),
        "min_distance": str(int(_pairwise_distances(centers)[np.triu_indices(n_centers, 1)].min())),
        "required_distance": str(gilbert_varshamov_distance(code_length, n_centers)),
        "seed": "" if seed is None else str(seed),
        "source": source or "",
    }
    metadata.update({k: str(v) for k, v in (extra_metadata or {}).items()})
    write_file_atomically(path, save(tensors, metadata=metadata))


def load_hash_centers(path: str | Path) -> HashCenters:
    """Read centers written by :func:`save_hash_centers`, or the authors' ``hash_center_{L}.h5`` (``matrix``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no hash-center file at {path}")
    if path.suffix in (".h5", ".hdf5"):
        return _load_authors_h5(path)
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as handle:
            metadata = handle.metadata() or {}
            keys = set(handle.keys())
            if "hash_centers" not in keys:
                raise ValueError(f"{path} has no 'hash_centers' tensor (found {sorted(keys)})")
            centers = handle.get_tensor("hash_centers")
            labels = handle.get_tensor("pseudo_labels") if "pseudo_labels" in keys else None
    except (OSError, RuntimeError, SafetensorError) as error:
        raise ValueError(f"{path} is not a readable safetensors file: {error}") from error
    return HashCenters(_checked_centers(centers, path), pseudo_labels=labels, metadata=metadata)


def _load_authors_h5(path: Path) -> HashCenters:
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            if "matrix" not in handle:
                raise ValueError(f"{path} has no 'matrix' dataset (found {list(handle.keys())})")
            centers = np.asarray(handle["matrix"])
    except OSError as error:
        raise ValueError(f"{path} is not a readable HDF5 file: {error}") from error
    return HashCenters(_checked_centers(centers, path), metadata={"source": f"authors:{path.name}"})


def _checked_centers(centers: np.ndarray, path: Path) -> np.ndarray:
    centers = np.asarray(centers)
    if centers.ndim != 2 or not np.all(np.isin(centers, (-1, 1))):
        raise ValueError(f"{path}: hash centers must be a [K, L] matrix of ±1")
    return centers.astype(np.int8)


def iter_supported_settings() -> Iterable[tuple[int, int]]:
    """(K, L) pairs of the published presets."""
    for n_centers in (100, 101, 450):
        for code_length in (16, 32, 64):
            yield n_centers, code_length


def clusters_and_centers(
    train_dataset: Any,
    n_clusters: int,
    code_length: int,
    pca_dim: int = 512,
    seed: int = 0,
    pooling: str = "mean",
    segments: int = 3,
) -> tuple[SemanticClusters, HashCenters]:
    """One clustering of the training videos (pseudo-labels and semantic centers, :func:`compute_semantic_clusters`)
    and the hash centers generated from it (:func:`generate_hash_centers`): everything training needs besides the
    model. Every path that makes centers from data (CLI preprocess and train, recipes, examples) calls this. The code
    length is checked before the clustering (minutes on real data) starts. ``pooling``/``segments``: how videos are
    pooled for the clustering (``S5VHConfig.cluster_pooling``/``cluster_segments``)."""
    check_code_length(code_length)
    clusters = compute_semantic_clusters(train_dataset, n_clusters=n_clusters, pca_dim=pca_dim, seed=seed,
                                         pooling=pooling, segments=segments)  # fmt: skip
    return clusters, generate_hash_centers(clusters.semantic_centers, code_length, seed=seed)
