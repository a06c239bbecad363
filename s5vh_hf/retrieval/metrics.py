"""Retrieval metrics on rankings, codes and labels (the paper's protocol (README, *Reproducing the paper's protocol*)). Pure functions; nothing here sees a model.

Relevance: a database item is relevant to a query when they share at least one label (multi-hot labels).
``map_at_k`` follows the video-hashing literature and divides by K:
``AP@K(q) = (1/K)·Σ_{r≤K} rel(r)·P@r``. ``standard_map_at_k`` divides by the number of relevant items found in
the top K instead. No ``[Q, N]`` float64 matrix is ever built: work on all pairs is chunked over queries.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..model.codes import unpack_codes
from .hamming_index import as_packed_codes

LabelsLike = np.ndarray | Sequence[int] | Sequence[Sequence[int]]


def labels_to_multi_hot(labels: LabelsLike, num_classes: int | None = None, name: str = "labels") -> np.ndarray:
    """Normalise labels to a ``bool`` multi-hot matrix ``[N, C]``.

    Accepts a multi-hot ``[N, C]`` array (0/1 or bool), class ids ``[N]``, or a list of class-id lists.
    """
    if labels is None:
        raise ValueError(f"{name} are required for evaluation")
    if isinstance(labels, np.ndarray) and labels.ndim == 2:
        if labels.dtype != bool and not np.all(np.isin(np.unique(labels), (0, 1))):
            raise ValueError(f"{name}: a 2-D label array must be multi-hot (0/1)")
        return labels.astype(bool, copy=False)
    rows = [np.atleast_1d(np.asarray(row, dtype=np.int64)) for row in labels]
    if not rows:
        return np.zeros((0, num_classes or 0), dtype=bool)
    largest = max((int(r.max()) for r in rows if r.size), default=-1)
    if any(r.size and r.min() < 0 for r in rows):
        raise ValueError(f"{name}: class ids must be non-negative")
    width = num_classes if num_classes is not None else largest + 1
    if largest >= width:
        raise ValueError(f"{name}: class id {largest} is out of range for {width} classes")
    multi_hot = np.zeros((len(rows), width), dtype=bool)
    for i, row in enumerate(rows):
        multi_hot[i, row] = True
    return multi_hot


def _align_label_widths(query: np.ndarray, database: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    width = max(query.shape[1], database.shape[1])
    pad = lambda m: np.pad(m, ((0, 0), (0, width - m.shape[1])))  # noqa: E731
    return pad(query), pad(database)


def _label_words(multi_hot: np.ndarray) -> np.ndarray:
    """Multi-hot ``[N, C]`` → ``uint64`` words ``[N, ceil(C/64)]`` for fast intersection tests."""
    packed = np.packbits(multi_hot, axis=1)
    padded = np.pad(packed, ((0, 0), (0, (-packed.shape[1]) % 8)))
    return np.ascontiguousarray(padded).view(np.uint64)


def _unique_label_sets(multi_hot: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct rows of a multi-hot matrix: ``(sets [U, C], inverse [N], counts [U])``.

    Sorting packed rows as opaque byte strings is far faster than ``np.unique(axis=0)`` on the bool matrix.
    """
    packed = np.ascontiguousarray(np.packbits(multi_hot, axis=1))
    keys = packed.view(np.dtype((np.void, packed.shape[1]))).reshape(-1)
    _, first, inverse, counts = np.unique(keys, return_index=True, return_inverse=True, return_counts=True)
    return multi_hot[first], inverse.reshape(-1), counts


def relevance_of_ranking(
    ranked_ids: np.ndarray, query_labels: LabelsLike, database_labels: LabelsLike, chunk_size: int = 4096
) -> np.ndarray:
    """``bool`` ``[Q, K]``: whether the database item at each rank shares a label with its query."""
    query, database = _align_label_widths(
        labels_to_multi_hot(query_labels, name="query labels"),
        labels_to_multi_hot(database_labels, name="database labels"),
    )
    if len(query) != len(ranked_ids):
        raise ValueError(f"{len(ranked_ids)} rankings but {len(query)} query label rows")
    query_words, database_words = _label_words(query), _label_words(database)
    relevance = np.empty(ranked_ids.shape, dtype=bool)
    for start in range(0, len(ranked_ids), chunk_size):
        part = slice(start, start + chunk_size)
        shared = database_words[ranked_ids[part]] & query_words[part, None, :]
        relevance[part] = (shared != 0).any(-1)
    return relevance


def count_relevant(query_labels: LabelsLike, database_labels: LabelsLike) -> np.ndarray:
    """Number of relevant database items of every query, ``int64`` ``[Q]``.

    Works on the distinct label sets, so its cost grows with their number, not with Q × N.
    """
    query, database = _align_label_widths(
        labels_to_multi_hot(query_labels, name="query labels"),
        labels_to_multi_hot(database_labels, name="database labels"),
    )
    db_sets, _, db_counts = _unique_label_sets(database)
    q_sets, q_inverse, _ = _unique_label_sets(query)
    shares = (q_sets.astype(np.float32) @ db_sets.astype(np.float32).T) > 0  # [Uq, Udb]
    return (shares @ db_counts)[q_inverse]


def _check_k(relevance: np.ndarray, k: int) -> None:
    if not 1 <= k <= relevance.shape[1]:
        raise ValueError(f"k = {k} is outside the ranking depth 1..{relevance.shape[1]}")


def average_precision_at_k(relevance: np.ndarray, k: int, normalization: str = "k") -> np.ndarray:
    """Per-query AP@K ``[Q]`` from ``relevance`` ``[Q, ≥K]``.

    ``normalization="k"``: the field's convention, Σ rel(r)·P@r / K. ``"relevant"``: divided by the number of
    relevant items in the top K (0 where there are none).
    """
    _check_k(relevance, k)
    rel = relevance[:, :k].astype(np.float64)
    precision = np.cumsum(rel, axis=1) / np.arange(1, k + 1)
    total = (rel * precision).sum(1)
    if normalization == "k":
        return total / k
    if normalization == "relevant":
        found = rel.sum(1)
        return np.divide(total, found, out=np.zeros_like(total), where=found > 0)
    raise ValueError(f"normalization must be 'k' or 'relevant', got {normalization!r}")


def map_at_k(relevance: np.ndarray, k: int) -> float:
    """mAP@K as published in video hashing: mean over queries of (1/K)·Σ_{r≤K} rel(r)·P@r."""
    return float(average_precision_at_k(relevance, k, "k").mean())


def standard_map_at_k(relevance: np.ndarray, k: int) -> float:
    """Standard mAP@K: AP divided by the number of relevant items retrieved in the top K."""
    return float(average_precision_at_k(relevance, k, "relevant").mean())


def precision_at_k(relevance: np.ndarray, k: int) -> float:
    """Mean fraction of relevant items among the top K."""
    _check_k(relevance, k)
    return float(relevance[:, :k].mean())


def recall_at_k(relevance: np.ndarray, k: int, total_relevant: np.ndarray) -> float:
    """Mean over queries with at least one relevant item of (relevant in the top K) / (all relevant)."""
    _check_k(relevance, k)
    total_relevant = np.asarray(total_relevant)
    has_relevant = total_relevant > 0
    if not has_relevant.any():
        return 0.0
    found = relevance[:, :k].sum(1)
    return float((found[has_relevant] / total_relevant[has_relevant]).mean())


def precision_recall_by_radius(
    query_codes: np.ndarray,
    database_codes: np.ndarray,
    query_labels: LabelsLike,
    database_labels: LabelsLike,
    chunk_size: int = 1024,
) -> dict[str, np.ndarray]:
    """Precision and recall of Hamming-ball retrieval for every radius r = 0..L.

    For each query, the items within distance r are retrieved. ``precision[r]`` is the mean over queries that
    retrieve something of (relevant retrieved / retrieved); ``recall[r]`` the mean over queries with relevant
    items of (relevant retrieved / relevant). Chunked over queries: memory is ``chunk_size × N`` small ints.

    Returns:
        ``{"radius": [L+1], "precision": [L+1], "recall": [L+1], "retrieved": [L+1] mean items retrieved}``.
    """
    database_packed = as_packed_codes(database_codes, name="database codes")
    query_packed = as_packed_codes(query_codes, database_packed.shape[1] * 8, name="query codes")
    code_length = database_packed.shape[1] * 8
    query, database = _align_label_widths(
        labels_to_multi_hot(query_labels, name="query labels"),
        labels_to_multi_hot(database_labels, name="database labels"),
    )
    if len(query) != len(query_packed) or len(database) != len(database_packed):
        raise ValueError("every code needs a label row: counts of codes and labels differ")
    # ±1 inner products give exact distances: Ham = (L − ⟨b_q, b_db⟩) / 2.
    db_signs = unpack_codes(database_packed, np.float32)
    db_sets, db_set_index, _ = _unique_label_sets(database)
    total_relevant = count_relevant(query, database)
    bins = code_length + 1
    precision_sum = np.zeros(bins)
    precision_count = np.zeros(bins)
    recall_sum = np.zeros(bins)
    retrieved_sum = np.zeros(bins)
    for start in range(0, len(query_packed), chunk_size):
        part = slice(start, start + chunk_size)
        q_signs = unpack_codes(query_packed[part], np.float32)
        distances = ((code_length - q_signs @ db_signs.T) / 2).round().astype(np.int64)  # [q, N]
        set_relevance = (query[part].astype(np.float32) @ db_sets.T.astype(np.float32)) > 0  # [q, U]
        relevant = set_relevance[:, db_set_index]  # [q, N]
        rows = len(distances)
        offsets = (np.arange(rows) * bins)[:, None]
        retrieved = np.bincount((distances + offsets).ravel(), minlength=rows * bins).reshape(rows, bins)
        hits = np.bincount((distances + offsets)[relevant], minlength=rows * bins).reshape(rows, bins)
        retrieved, hits = np.cumsum(retrieved, 1), np.cumsum(hits, 1)
        some = retrieved > 0
        precision_sum += np.where(some, hits / np.maximum(retrieved, 1), 0).sum(0)
        precision_count += some.sum(0)
        with_relevant = total_relevant[part] > 0
        recall_sum += (hits[with_relevant] / total_relevant[part][with_relevant, None]).sum(0)
        retrieved_sum += retrieved.sum(0)
    n_with_relevant = max(int((total_relevant > 0).sum()), 1)
    return {
        "radius": np.arange(bins),
        "precision": precision_sum / np.maximum(precision_count, 1),
        "recall": recall_sum / n_with_relevant,
        "retrieved": retrieved_sum / max(len(query_packed), 1),
    }
