"""Unsupervised hashing baselines on mean-pooled features: LSH (sign of a random projection) and PCA-sign."""

from __future__ import annotations

import numpy as np


def lsh_codes(pooled: np.ndarray, n_bits: int, seed: int = 0) -> np.ndarray:
    """±1 codes ``[N, L]`` = sign of a Gaussian random projection of centred mean-pooled features ``[N, D]``.

    The centring mean is the rows' own; pass database and queries stacked to share it.
    """
    pooled = np.asarray(pooled, dtype=np.float64)
    projection = np.random.default_rng(seed).standard_normal((pooled.shape[1], n_bits))
    return np.where((pooled - pooled.mean(0)) @ projection >= 0, 1, -1).astype(np.int8)


def pca_sign_codes(train_pooled: np.ndarray, pooled: np.ndarray, n_bits: int) -> np.ndarray:
    """±1 codes ``[N, L]`` = sign of the top-L principal components (fitted on ``train_pooled``) of ``pooled``."""
    train_pooled = np.asarray(train_pooled, dtype=np.float64)
    mean = train_pooled.mean(0)
    _, _, components = np.linalg.svd(train_pooled - mean, full_matrices=False)
    if len(components) < n_bits:
        raise ValueError(f"PCA-sign needs at least {n_bits} components, the data has {len(components)}")
    return np.where((np.asarray(pooled, np.float64) - mean) @ components[:n_bits].T >= 0, 1, -1).astype(np.int8)
