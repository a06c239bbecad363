"""The published retrieval protocol (the paper's protocol (README, *Reproducing the paper's protocol*)): encode, rank by Hamming distance, score mAP@K and friends."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..model.commits import write_file_atomically
from .hamming_index import HammingIndex, as_packed_codes, rank_by_inner_product, ternary_codes
from .metrics import (
    LabelsLike,
    count_relevant,
    map_at_k,
    precision_at_k,
    precision_recall_by_radius,
    recall_at_k,
    relevance_of_ranking,
    standard_map_at_k,
)

DEFAULT_KS = (5, 20, 40, 60, 80, 100)
DATASET_PROTOCOLS = {
    "fcvid": "all_vs_all",
    "activitynet": "query_database",
    "ucf101": "query_database",
    "hmdb51": "query_database",
}
"""FCVID queries every database video against the whole database (self-match included); the others query a
separate query split against the database split."""


@dataclass
class RetrievalReport:
    """Scores of one evaluation; ``map_at_k`` is the field's mAP@K (divided by K)."""

    protocol: str
    code_length: int
    num_queries: int
    num_database: int
    map_at_k: dict[int, float]
    standard_map_at_k: dict[int, float]
    precision_at_k: dict[int, float]
    recall_at_k: dict[int, float]
    pr_curve: dict[str, list[float]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (integer keys of the per-K tables become strings)."""
        data = asdict(self)
        for key in ("map_at_k", "standard_map_at_k", "precision_at_k", "recall_at_k"):
            data[key] = {str(k): v for k, v in data[key].items()}
        return data

    def save_json(self, path: str | os.PathLike) -> None:
        write_file_atomically(path, json.dumps(self.to_dict(), indent=2))

    def table(self) -> str:
        """A Markdown table of the per-K scores."""
        ks = sorted(self.map_at_k)
        lines = ["| metric | " + " | ".join(f"@{k}" for k in ks) + " |", "|---|" + "---|" * len(ks)]
        for name in ("map_at_k", "standard_map_at_k", "precision_at_k", "recall_at_k"):
            values = getattr(self, name)
            lines.append(f"| {name} | " + " | ".join(f"{values[k]:.4f}" for k in ks) + " |")
        return "\n".join(lines)

    def plot(self, path: str | os.PathLike) -> None:
        """Write a PNG with the mAP@K curve and, when computed, the precision–recall curve by Hamming radius."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        panels = 2 if self.pr_curve else 1
        figure, axes = plt.subplots(1, panels, figsize=(5 * panels, 4), squeeze=False)
        ks = sorted(self.map_at_k)
        axes[0, 0].plot(ks, [self.map_at_k[k] for k in ks], marker="o", label="mAP@K (÷K)")
        axes[0, 0].plot(ks, [self.standard_map_at_k[k] for k in ks], marker="s", label="standard mAP@K")
        axes[0, 0].set(xlabel="K", ylabel="score", title=f"{self.code_length} bits, {self.protocol}")
        axes[0, 0].legend()
        axes[0, 0].grid(alpha=0.3)
        if self.pr_curve:
            axes[0, 1].plot(self.pr_curve["recall"], self.pr_curve["precision"], marker=".")
            axes[0, 1].set(xlabel="recall", ylabel="precision", title="PR by Hamming radius", xlim=(0, 1))
            axes[0, 1].grid(alpha=0.3)
        figure.tight_layout()
        figure.savefig(path, dpi=120)
        plt.close(figure)


def resolve_protocol(protocol: str) -> str:
    """``"all_vs_all"``, ``"query_database"``, or a dataset name of the paper's protocol (README, *Reproducing the paper's protocol*)."""
    if protocol in ("all_vs_all", "query_database"):
        return protocol
    if protocol in DATASET_PROTOCOLS:
        return DATASET_PROTOCOLS[protocol]
    raise ValueError(
        f"Unknown protocol {protocol!r}; use 'all_vs_all', 'query_database' or one of {sorted(DATASET_PROTOCOLS)}"
    )


def evaluate_codes(
    database_codes: np.ndarray,
    database_labels: LabelsLike,
    query_codes: np.ndarray | None = None,
    query_labels: LabelsLike | None = None,
    ks: tuple[int, ...] = DEFAULT_KS,
    protocol: str = "query_database",
    pr_curve: bool = False,
) -> RetrievalReport:
    """Score binary codes (±1, bool or packed) under a retrieval protocol.

    ``all_vs_all`` uses the database as the queries (each query retrieves itself first); ``query_database``
    needs ``query_codes`` and ``query_labels``. Codes with 0 bits (``sign_tie_rule="zero"``, the authors'
    inference) are ranked by ``(L − q·d)/2`` as the authors' evaluation does (half-integer distances), without a
    precision–recall curve (its radii are integers).
    """
    protocol = resolve_protocol(protocol)
    ternary = ternary_codes(database_codes) is not None or (
        query_codes is not None and ternary_codes(query_codes) is not None
    )
    if ternary:
        database = np.asarray(database_codes, np.int8)
        code_length = database.shape[1]
        as_queries = lambda codes: np.asarray(codes, np.int8)  # noqa: E731
    else:
        database = as_packed_codes(database_codes, name="database codes")
        code_length = database.shape[1] * 8
        as_queries = lambda codes: as_packed_codes(codes, code_length, name="query codes")  # noqa: E731
    if database_labels is None:
        raise ValueError("database labels are required for evaluation")
    if protocol == "all_vs_all":
        queries, query_labels = database, database_labels
    else:
        if query_codes is None or query_labels is None:
            raise ValueError("the query_database protocol needs query codes and query labels")
        queries = as_queries(query_codes)
    if len(database_labels) != len(database):
        raise ValueError(f"{len(database)} database codes but {len(database_labels)} database labels")
    if len(query_labels) != len(queries):
        raise ValueError(f"{len(queries)} query codes but {len(query_labels)} query labels")
    ks = tuple(sorted({int(k) for k in ks}))
    if not ks or ks[0] < 1:
        raise ValueError(f"ks must be positive integers, got {ks}")
    if ks[-1] > len(database):
        raise ValueError(f"k = {ks[-1]} is larger than the database ({len(database)} codes)")
    if ternary:
        ranked_ids = rank_by_inner_product(queries, database, ks[-1])
    else:
        ranked_ids = HammingIndex.from_codes(database).search(queries, ks[-1])[1]
    relevance = relevance_of_ranking(ranked_ids, query_labels, database_labels)
    total_relevant = count_relevant(query_labels, database_labels)
    curve = None
    if pr_curve and not ternary:
        curve = {
            key: value.tolist()
            for key, value in precision_recall_by_radius(queries, database, query_labels, database_labels).items()
        }
    return RetrievalReport(
        protocol=protocol,
        code_length=code_length,
        num_queries=len(queries),
        num_database=len(database),
        map_at_k={k: map_at_k(relevance, k) for k in ks},
        standard_map_at_k={k: standard_map_at_k(relevance, k) for k in ks},
        precision_at_k={k: precision_at_k(relevance, k) for k in ks},
        recall_at_k={k: recall_at_k(relevance, k, total_relevant) for k in ks},
        pr_curve=curve,
    )


def evaluate_retrieval(
    model_or_codes: Any,
    database: tuple[Any, LabelsLike],
    queries: tuple[Any, LabelsLike] | None = None,
    ks: tuple[int, ...] = DEFAULT_KS,
    protocol: str = "query_database",
    pr_curve: bool = False,
    batch_size: int = 256,
    show_progress_bar: bool | None = None,
) -> RetrievalReport:
    """Evaluate a model (or precomputed codes) with the retrieval protocol (mAP@K over the query and database
    splits, or all-vs-all). Only reads: to show the result on the model card, the caller sets
    ``model.evaluation_results = report.to_dict()`` before saving.

    Args:
        model_or_codes: An :class:`~s5vh_hf.S5VHModel` — then ``database`` and ``queries`` hold
            ``(videos, labels)`` with videos in any form ``model.encode`` accepts — or ``None``, and they hold
            ``(codes, labels)``.
        database: ``(videos_or_codes, labels)`` of the database split.
        queries: ``(videos_or_codes, labels)`` of the query split (ignored by ``all_vs_all``).
        protocol: ``"query_database"``, ``"all_vs_all"`` or a dataset name (``"fcvid"`` → all-vs-all).
        pr_curve: Also compute precision–recall by Hamming radius (one pass over all query × database pairs).
    """
    protocol = resolve_protocol(protocol)

    def codes_of(split: tuple[Any, LabelsLike] | None) -> np.ndarray | None:
        if split is None:
            return None
        if model_or_codes is None:
            return split[0]
        if not hasattr(model_or_codes, "encode"):
            raise TypeError("model_or_codes must be an S5VHModel or None (then the splits hold codes)")
        # Codes of a model with sign_tie_rule="zero" may hold 0 bits: kept as ±1/0 and scored as the release does.
        ternary = getattr(model_or_codes.config, "sign_tie_rule", "positive") == "zero"
        return model_or_codes.encode(
            split[0], batch_size=batch_size, output="pm1" if ternary else "packed", show_progress_bar=show_progress_bar
        )

    database_codes = codes_of(database)
    query_split = None if protocol == "all_vs_all" else queries
    if protocol == "query_database" and queries is None:
        raise ValueError("the query_database protocol needs a query split")
    report = evaluate_codes(
        database_codes,
        database[1],
        codes_of(query_split),
        None if query_split is None else query_split[1],
        ks=ks,
        protocol=protocol,
        pr_curve=pr_curve,
    )
    return report
