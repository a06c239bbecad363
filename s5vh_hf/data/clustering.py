"""Global semantics, part 1: one clustering of the training videos (mean-pooled, PCA-whitened, k-means) gives both
the pseudo-labels and the semantic centers; also the frame statistics and mean pooling the rest uses."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..model.configuration_s5vh import CLUSTER_POOLINGS


@dataclass
class SemanticClusters:
    """Result of :func:`compute_semantic_clusters`.

    Attributes:
        pseudo_labels: ``[N]`` int64, each video's cluster (center k ↔ label k).
        semantic_centers: ``[K, P]`` float32, L2-normalised cluster centers in PCA space.
        pca_mean: ``[D]`` float32 and ``pca_components``: ``[P, D]`` float32, the fitted projection
            ``z = (x − mean) @ componentsᵀ`` of mean-pooled features.
    """

    pseudo_labels: np.ndarray
    semantic_centers: np.ndarray
    pca_mean: np.ndarray
    pca_components: np.ndarray

    def project(self, pooled: np.ndarray) -> np.ndarray:
        """Pooled features ``[n, D]`` (``[n, segments · D]`` for segment pooling) → PCA space ``[n, P]``."""
        return (np.asarray(pooled, np.float32) - self.pca_mean) @ self.pca_components.T


def _iterate_video_batches(source: Any, batch_size: int) -> Iterator[np.ndarray | list[np.ndarray]]:
    """Yield batches of float32 videos: ``[b, T, D]`` arrays from an array-like ``[N, T, D]`` (numpy, memmap,
    h5py), lists of ``[T_i, D]`` arrays from a list of videos or a ``datasets`` dataset with a ``features`` column
    (read in batches, never all at once)."""
    if hasattr(source, "iter") and hasattr(source, "column_names"):
        if "features" not in source.column_names:
            raise ValueError(f"dataset has no 'features' column (columns: {source.column_names})")
        for batch in source.with_format("numpy", columns=["features"]).iter(batch_size=batch_size):
            yield [np.asarray(v, np.float32) for v in batch["features"]]
        return
    if getattr(source, "ndim", None) == 3:  # numpy array, memmap or h5py dataset [N, T, D]: read in slices
        for start in range(0, len(source), batch_size):
            yield np.asarray(source[start : start + batch_size], dtype=np.float32)
        return
    videos: Sequence[np.ndarray] = source
    for start in range(0, len(videos), batch_size):
        yield [np.asarray(v, np.float32) for v in videos[start : start + batch_size]]


def segment_pool_video(video: np.ndarray, segments: int) -> np.ndarray:
    """The means of ``segments`` consecutive, equally long stretches of a video ``[T, D]``, concatenated in time
    order: ``[segments · D]``. A video shorter than ``segments`` frames repeats frames (each stretch holds at least
    one). Unlike the mean, it tells a sequence from its reversal."""
    steps = len(video)
    bounds = np.linspace(0, steps, segments + 1)
    parts = []
    for index in range(segments):
        start = min(int(np.floor(bounds[index])), steps - 1)
        stop = max(start + 1, int(np.floor(bounds[index + 1])))
        parts.append(video[start:stop].mean(0))
    return np.concatenate(parts)


def _iterate_pooled(source: Any, batch_size: int, segments: int = 1) -> Iterator[np.ndarray]:
    """Yield pooled features ``[b, segments · D]`` float32 of the batches of :func:`_iterate_video_batches`:
    the mean (``segments = 1``) or the concatenated means of ``segments`` stretches of time."""
    for videos in _iterate_video_batches(source, batch_size):
        if segments == 1:
            yield videos.mean(1) if isinstance(videos, np.ndarray) else np.stack([v.mean(0) for v in videos])
        else:
            yield np.stack([segment_pool_video(v, segments) for v in videos]).astype(np.float32)


def frame_feature_statistics(source: Any, batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and standard deviation ``[D]`` float32 over every frame of every video (the
    statistics ``S5VHModel.set_feature_statistics`` standardises with), accumulated in float64 in one pass."""
    total = squares = None
    count = 0
    for videos in _iterate_video_batches(source, batch_size):
        frames = np.concatenate(list(videos)).astype(np.float64)
        if not np.isfinite(frames).all():
            raise ValueError("frame features contain NaN or Inf")
        total = frames.sum(0) if total is None else total + frames.sum(0)
        squares = (frames**2).sum(0) if squares is None else squares + (frames**2).sum(0)
        count += len(frames)
    if not count:
        raise ValueError("no frames to compute feature statistics from")
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
    return mean.astype(np.float32), std.astype(np.float32)


def mean_pool(source: Any, batch_size: int = 1024, segments: int = 1) -> np.ndarray:
    """Mean-pooled features ``[N, D]`` float32 (respecting each video's own length); with ``segments`` > 1, the
    concatenated means of that many stretches of time ``[N, segments · D]`` (:func:`segment_pool_video`)."""
    parts = list(_iterate_pooled(source, batch_size, segments))
    if not parts:
        raise ValueError("no videos to cluster")
    pooled = np.concatenate(parts)
    bad = np.flatnonzero(~np.isfinite(pooled).all(1))
    if len(bad):
        raise ValueError(f"features of videos {bad[:10].tolist()} contain NaN or Inf")
    return pooled


def compute_semantic_clusters(
    dataset_or_array: Any,
    n_clusters: int,
    pca_dim: int = 512,
    seed: int = 0,
    kmeans_iterations: int = 25,
    batch_size: int = 1024,
    pooling: str = "mean",
    segments: int = 3,
) -> SemanticClusters:
    """Mean-pool, PCA and k-means (faiss) in one pass: pseudo-labels and semantic centers from one clustering.

    Args:
        dataset_or_array: Frame features ``[N, T, D]``, a list of ``[T_i, D]`` arrays, or a ``datasets``
            dataset with a ``features`` column (streamed in batches).
        n_clusters: K, the number of clusters (= hash centers).
        pca_dim: P, PCA dimension (capped by N and D).
        seed: Seed of PCA's randomised SVD and of k-means.
        pooling: ``"mean"`` (the paper: one mean per video, blind to frame order) or ``"segments"`` (the
            concatenated means of ``segments`` stretches of time, so that a sequence and its reversal can fall in
            different clusters; ``S5VHConfig.cluster_pooling``).
    """
    import faiss
    from sklearn.decomposition import PCA

    if not isinstance(n_clusters, (int, np.integer)) or n_clusters < 2:
        raise ValueError(f"n_clusters must be an integer ≥ 2, got {n_clusters!r}")
    if pooling not in CLUSTER_POOLINGS:
        raise ValueError(f"pooling must be one of {CLUSTER_POOLINGS}, got {pooling!r}")
    pooled = mean_pool(dataset_or_array, batch_size, segments=segments if pooling == "segments" else 1)
    n_videos = len(pooled)
    if n_clusters > n_videos:
        raise ValueError(f"n_clusters = {n_clusters} is larger than the number of videos ({n_videos})")
    spread = pooled.std(0).max()
    if not spread > 0:
        raise ValueError("all videos have identical mean features; there is nothing to cluster")
    components = min(pca_dim, n_videos, pooled.shape[1])
    pca = PCA(n_components=components, svd_solver="randomized", random_state=seed)
    projected = np.ascontiguousarray(pca.fit_transform(pooled), dtype=np.float32)
    distinct = len(np.unique(projected.round(6), axis=0)) if n_videos <= 200_000 else n_videos
    if distinct < n_clusters:
        raise ValueError(f"only {distinct} distinct videos for {n_clusters} clusters")
    kmeans = faiss.Kmeans(
        projected.shape[1],
        int(n_clusters),
        niter=kmeans_iterations,
        seed=seed,
        verbose=False,
        min_points_per_centroid=1,
    )
    kmeans.train(projected)
    _, assignment = kmeans.index.search(projected, 1)
    centers = kmeans.centroids.astype(np.float32)
    centers /= np.maximum(np.linalg.norm(centers, axis=1, keepdims=True), 1e-12)
    return SemanticClusters(
        pseudo_labels=assignment[:, 0].astype(np.int64),
        semantic_centers=centers,
        pca_mean=pca.mean_.astype(np.float32),
        pca_components=pca.components_.astype(np.float32),
    )
