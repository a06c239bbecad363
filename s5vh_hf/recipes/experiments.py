"""End-to-end recipes shared by the CLI, the demo and the examples: make the embedded dataset, preprocess,
build, train and evaluate. Each step is one call to the library; nothing here is needed to use the library.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data.clustering import mean_pool
from ..data.hash_centers import clusters_and_centers
from ..data.loading import load_feature_dataset, videos_and_labels
from ..data.synthetic import SyntheticVideos, make_synthetic_videos
from ..data.writing import write_feature_split
from ..model.configuration_s5vh import S5VHConfig
from ..model.modeling_s5vh import S5VHModel
from ..retrieval.baselines import lsh_codes, pca_sign_codes
from ..retrieval.evaluation import RetrievalReport, evaluate_codes, evaluate_retrieval

preprocess = clusters_and_centers
"""One clustering (pseudo-labels + semantic centers) and the hash centers generated from it (an alias of
:func:`~s5vh_hf.data.hash_centers.clusters_and_centers`, kept for the examples)."""

EMBEDDED_DATASET = dict(num_classes=10, num_frames=16, min_frames=12, feature_dim=64)
"""Shape of the embedded synthetic dataset (the demo's default)."""


DEMO_RECIPE = {"num_train_epochs": 30, "per_device_train_batch_size": 64, "learning_rate": 1e-3}
"""Training recipe of :func:`demo_config` (pass it as ``s5vh_training_arguments(..., recipe=DEMO_RECIPE)``)."""


def demo_config(code_length: int = 32, num_hash_centers: int = 10, **overrides: Any) -> S5VHConfig:
    """A CPU-friendly S5VH for the embedded dataset: the published architecture at width 64, 2 blocks."""
    values = dict(
        feature_dim=EMBEDDED_DATASET["feature_dim"],
        hidden_size=64,
        encoder_depth=2,
        decoder_hidden_size=48,
        code_length=code_length,
        num_hash_centers=num_hash_centers,
        mask_ratio=0.5,
        drop_path_rate=0.1,
        contrastive_weight=1.0,
        center_weight=0.1,
        debias_tau_plus=0.1,
        warmup_epochs=5,
        pseudo_label_smoothing=0.01,
        dataset_name="synthetic",
    )
    values.update(overrides)
    return S5VHConfig(**values)


def embedded_synthetic_videos(
    num_train: int = 1200, num_database: int = 1000, num_query: int = 300, seed: int = 0
) -> dict[str, SyntheticVideos]:
    """The embedded synthetic dataset's ``train``, ``database`` and ``query`` splits (disjoint videos drawn from
    the same classes), as the demo writes them. Deterministic in ``seed``."""
    total = num_train + num_database + num_query
    data = make_synthetic_videos(num_videos=total, seed=seed, **EMBEDDED_DATASET)
    bounds = {
        "train": slice(0, num_train),
        "database": slice(num_train, num_train + num_database),
        "query": slice(num_train + num_database, total),
    }
    return {split: data.subset(rows) for split, rows in bounds.items()}


def write_embedded_dataset(
    out_dir: str | os.PathLike, num_train: int = 1200, num_database: int = 1000, num_query: int = 300, seed: int = 0
) -> Path:
    """Write :func:`embedded_synthetic_videos` as a feature-shard folder with ``train``, ``database`` and
    ``query`` splits."""
    out_dir = Path(out_dir)
    for split, data in embedded_synthetic_videos(num_train, num_database, num_query, seed).items():
        write_feature_split(out_dir, split, data.videos(), data.video_ids, [[int(x)] for x in data.labels])
    return out_dir


@dataclass
class BaselineScores:
    """mAP@K of the model and of the two mean-pooling baselines, same splits and protocol."""

    model: RetrievalReport
    lsh: RetrievalReport
    pca: RetrievalReport

    def rows(self, ks: tuple[int, ...] = (5, 20, 100)) -> list[list[str]]:
        return [
            [name] + [f"{report.map_at_k[k]:.3f}" for k in ks if k in report.map_at_k]
            for name, report in (("S5VH", self.model), ("PCA-sign", self.pca), ("LSH", self.lsh))
        ]


def evaluate_with_baselines(
    model: S5VHModel,
    folder_or_splits: Any,
    ks: tuple[int, ...] = (5, 20, 100),
    seed: int = 0,
    pr_curve: bool = False,
) -> BaselineScores:
    """Evaluate the model on the ``database``/``query`` splits, and LSH and PCA-sign (fitted on ``train``) on the
    same splits, with the query-database protocol."""
    splits = (
        load_feature_dataset(folder_or_splits) if isinstance(folder_or_splits, (str, os.PathLike)) else folder_or_splits
    )
    database, queries = videos_and_labels(splits["database"]), videos_and_labels(splits["query"])
    train_videos, _ = videos_and_labels(splits["train"], require_labels=False)
    report = evaluate_retrieval(model, database, queries, ks=ks, pr_curve=pr_curve, show_progress_bar=False)
    model.evaluation_results = report.to_dict()  # the recipe's models are saved with their evaluation on the card
    db_pooled, q_pooled = mean_pool(database[0]), mean_pool(queries[0])
    bits = model.config.code_length
    lsh = lsh_codes(np.concatenate([db_pooled, q_pooled]), bits, seed=seed)
    pca = pca_sign_codes(mean_pool(train_videos), np.concatenate([db_pooled, q_pooled]), bits)
    n_db = len(db_pooled)
    return BaselineScores(
        model=report,
        lsh=evaluate_codes(lsh[:n_db], database[1], lsh[n_db:], queries[1], ks=ks),
        pca=evaluate_codes(pca[:n_db], database[1], pca[n_db:], queries[1], ks=ks),
    )
