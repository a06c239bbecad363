"""Unsupervised baselines on mean-pooled features: LSH (sign of a random projection), PCA-sign, ITQ, and a float
k-nearest-neighbour ranking (the upper reference for any code computed from mean-pooled features)."""

from __future__ import annotations

import numpy as np


def lsh_codes(pooled: np.ndarray, code_length: int, seed: int = 0) -> np.ndarray:
    """±1 codes ``[N, L]`` = sign of a Gaussian random projection of centred mean-pooled features ``[N, D]``.

    The centring mean is the rows' own; pass database and queries stacked to share it.
    """
    pooled = np.asarray(pooled, dtype=np.float64)
    projection = np.random.default_rng(seed).standard_normal((pooled.shape[1], code_length))
    return np.where((pooled - pooled.mean(0)) @ projection >= 0, 1, -1).astype(np.int8)


def _principal_axes(train_pooled: np.ndarray, code_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``[D]`` and the top-``code_length`` principal axes ``[L, D]`` of ``train_pooled`` ``[N, D]``."""
    train_pooled = np.asarray(train_pooled, dtype=np.float64)
    mean = train_pooled.mean(0)
    _, _, components = np.linalg.svd(train_pooled - mean, full_matrices=False)
    if len(components) < code_length:
        raise ValueError(f"PCA-based codes need at least {code_length} components, the data has {len(components)}")
    return mean, components[:code_length]


def pca_sign_codes(train_pooled: np.ndarray, pooled: np.ndarray, code_length: int) -> np.ndarray:
    """±1 codes ``[N, L]`` = sign of the top-L principal components (fitted on ``train_pooled``) of ``pooled``."""
    mean, axes = _principal_axes(train_pooled, code_length)
    return np.where((np.asarray(pooled, np.float64) - mean) @ axes.T >= 0, 1, -1).astype(np.int8)


def itq_codes(
    train_pooled: np.ndarray, pooled: np.ndarray, code_length: int, iterations: int = 50, seed: int = 0
) -> np.ndarray:
    """±1 codes ``[N, L]`` of iterative quantisation (Gong & Lazebnik, 2011): PCA to L dimensions, then the
    rotation R that minimises the quantisation error ‖B − V R‖ on the training set (orthogonal Procrustes,
    alternated with B = sign(V R))."""
    mean, axes = _principal_axes(train_pooled, code_length)
    projected = (np.asarray(train_pooled, np.float64) - mean) @ axes.T  # V [N, L]
    rotation, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((code_length, code_length)))
    for _ in range(iterations):
        codes = np.where(projected @ rotation >= 0, 1.0, -1.0)
        u, _, vt = np.linalg.svd(projected.T @ codes)
        rotation = u @ vt
    return np.where((np.asarray(pooled, np.float64) - mean) @ axes.T @ rotation >= 0, 1, -1).astype(np.int8)


def euclidean_ranking(database: np.ndarray, queries: np.ndarray, k: int, chunk_size: int = 1024) -> np.ndarray:
    """Ids ``[Q, k]`` of the k nearest database rows ``[N, F]`` of every query row ``[Q, F]`` by Euclidean
    distance (ties by database index), in float: the ceiling of binary codes made from the same vectors."""
    database = np.asarray(database, np.float64)
    squared_norms = (database**2).sum(1)
    ranked = []
    for start in range(0, len(queries), chunk_size):
        part = np.asarray(queries[start : start + chunk_size], np.float64)
        distances = squared_norms[None, :] - 2 * part @ database.T  # + |q|², constant per query
        ranked.append(np.argsort(distances, axis=1, kind="stable")[:, :k])
    return np.concatenate(ranked)
