"""`evaluate` metric: mAP@K of binary hash codes as published in video hashing (divided by K).

Self-contained (numpy, datasets and evaluate only): it works where s5vh-hf is not installed, e.g. copied into a
Hub metric Space. Load it with ``evaluate.load(s5vh_hf.evaluate_metrics.HASHING_MAP_PATH)`` or by the path of this
file; compute with ``predictions`` = query codes (±1 or 0/1 lists), ``references`` = query labels (lists of class
ids), plus ``database_codes`` / ``database_labels`` (omit both for the all-vs-all protocol, where the queries are
the database and each query retrieves itself first).
"""

import datasets
import evaluate
import numpy as np

DEFAULT_KS = (5, 20, 40, 60, 80, 100)
_DESCRIPTION = "mAP@K (field convention, divided by K) and standard mAP@K of Hamming ranking of binary codes."
_CITATION = """@inproceedings{wang2025s5vh,
  title     = {Efficient Self-Supervised Video Hashing with Selective State Spaces},
  author    = {Wang, Jinpeng and others},
  booktitle = {Proceedings of the AAAI Conference on Artificial Intelligence},
  year      = {2025}
}"""
_KWARGS_DESCRIPTION = """
Args:
    predictions: query codes, one list of ±1 (or 0/1) values per query.
    references: query labels, one list of class ids per query.
    database_codes: database codes (default: the queries, all-vs-all with self-match).
    database_labels: database labels, lists of class ids.
    ks: cut-offs, default (5, 20, 40, 60, 80, 100); at most the database size.
Returns:
    map@K (Σ_{r≤K} rel(r)·P@r / K, averaged over queries) and standard_map@K (the same sum divided by the number
    of relevant items in the top K) for every K. A database item is relevant when it shares a class with the
    query; ranking is by Hamming distance, ties broken by database order.
Examples:
    >>> metric = evaluate.load("hashing_map.py")
    >>> metric.compute(predictions=[[1, -1]], references=[[0]], database_codes=[[1, -1], [-1, 1]],
    ...                database_labels=[[0], [1]], ks=(1, 2))
    {'map@1': 1.0, 'map@2': 0.5, 'standard_map@1': 1.0, 'standard_map@2': 1.0}
"""


def _signs(codes) -> np.ndarray:
    codes = np.asarray(codes)
    if codes.ndim != 2:
        raise ValueError(f"codes must be a [N, L] list of lists, got shape {codes.shape}")
    return np.where(codes > 0, 1, -1).astype(np.int32)


def _multi_hot(labels, num_classes: int) -> np.ndarray:
    out = np.zeros((len(labels), num_classes), dtype=bool)
    for row, ids in enumerate(labels):
        out[row, list(ids)] = True
    return out


def hamming_map(query_codes, query_labels, database_codes, database_labels, ks=DEFAULT_KS) -> dict[str, float]:
    """mAP@K and standard mAP@K of Hamming ranking (see the module docstring)."""
    queries, database = _signs(query_codes), _signs(database_codes)
    if queries.shape[1] != database.shape[1]:
        raise ValueError(f"query codes have {queries.shape[1]} bits, database codes {database.shape[1]}")
    if len(query_labels) != len(queries) or len(database_labels) != len(database):
        raise ValueError("every code needs one label list")
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1 or ks[-1] > len(database):
        raise ValueError(f"ks must lie in 1..{len(database)} (the database size), got {ks}")
    classes = 1 + max((max(ids) for ids in [*query_labels, *database_labels] if len(ids)), default=0)
    query_hot, database_hot = _multi_hot(query_labels, classes), _multi_hot(database_labels, classes)
    distances = (queries.shape[1] - queries @ database.T) // 2
    ranked = np.argsort(distances, axis=1, kind="stable")[:, : ks[-1]]
    relevant = (query_hot[:, None, :] & database_hot[ranked]).any(-1).astype(np.float64)
    precision = np.cumsum(relevant, axis=1) / np.arange(1, ks[-1] + 1)
    result = {}
    for k in ks:
        total = (relevant[:, :k] * precision[:, :k]).sum(1)
        found = relevant[:, :k].sum(1)
        result[f"map@{k}"] = float((total / k).mean())
        standard = np.divide(total, found, out=np.zeros_like(total), where=found > 0)
        result[f"standard_map@{k}"] = float(standard.mean())
    return {key: result[key] for key in sorted(result, key=lambda name: (name.startswith("standard"), len(name), name))}


class HashingMap(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("int8")),
                    "references": datasets.Sequence(datasets.Value("int64")),
                }
            ),
            reference_urls=["https://arxiv.org/abs/2412.14518"],
        )

    def _compute(self, predictions, references, database_codes=None, database_labels=None, ks=DEFAULT_KS):
        if (database_codes is None) != (database_labels is None):
            raise ValueError("pass database_codes and database_labels together (or neither, for all-vs-all)")
        if database_codes is None:
            return hamming_map(predictions, references, predictions, references, ks)
        return hamming_map(predictions, references, database_codes, database_labels, ks)
