"""A training run on a feature dataset, as ``s5vh train`` does it: the config from a preset or a saved config with
overrides (D taken from the data), hash centers from a ``s5vh preprocess`` file or from clustering, the trainer
with the preset's recipe, resume, and the saved model."""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..data.hash_centers import clusters_and_centers, load_hash_centers
from ..data.loading import load_feature_dataset
from ..data.schema import feature_dim_of
from ..model.configuration_s5vh import MODEL_SIZES, S5VHConfig
from ..model.modeling_s5vh import S5VHModel
from ..training.arguments import s5vh_training_arguments
from ..training.trainer import S5VHTrainer

logger = logging.getLogger(__name__)


@dataclass
class TrainingRun:
    """What a training run is made of (every field has the CLI's default)."""

    dataset: str | os.PathLike
    out: str | os.PathLike
    split: str = "train"
    preset: str = "fcvid-64"
    config: str | os.PathLike | None = None
    """A saved config (folder or ``config.json``) to start from instead of ``preset``."""
    model_size: str | None = None
    release_compatible: bool = False
    config_overrides: dict[str, Any] = field(default_factory=dict)
    """Config fields to set (``num_hash_centers``, ``mask_ratio``, ``temporal_mixer``, any other field)."""
    centers: str | os.PathLike | None = None
    """A ``s5vh preprocess`` file (centers and pseudo-labels); without it the training videos are clustered."""
    seed: int = 0
    training_overrides: dict[str, Any] = field(default_factory=dict)
    """``TrainingArguments`` fields over the preset's recipe."""
    resume: bool = False
    inexact_resume: bool = False


def training_config(run: TrainingRun, feature_dim: int) -> S5VHConfig:
    """The config of a run: the preset or saved config, then the model size and the overrides; D comes from the data
    set (a preset's D is the paper's, not the user's). Raises ``ValueError`` for unknown fields or a saved config
    made for another D."""
    overrides = dict(run.config_overrides)
    if run.model_size is not None:
        overrides["encoder_depth"] = MODEL_SIZES[run.model_size]
    if run.config:
        values = S5VHConfig.from_pretrained(run.config).to_dict()
        if "feature_dim" not in overrides and values.get("feature_dim") != feature_dim:
            raise ValueError(f"{run.config} expects D = {values.get('feature_dim')} but the data set has D = "
                             f"{feature_dim}; use a matching config or --set feature_dim={feature_dim}")  # fmt: skip
    else:
        values = S5VHConfig.from_preset(
            run.preset, model_size=run.model_size or "small", release_compatible=run.release_compatible
        ).to_dict()
        if values["feature_dim"] != feature_dim:
            logger.info("using D = %d from the data set (preset %s was made for %d)", feature_dim, run.preset,
                           values["feature_dim"])  # fmt: skip
        values["feature_dim"] = feature_dim
    unknown = sorted(set(overrides) - set(values))
    if unknown:
        raise ValueError(f"unknown config field(s) {unknown} in --set")
    values.update(overrides)
    for key in ("model_type", "transformers_version", "architectures"):
        values.pop(key, None)
    return S5VHConfig(**values)


def centers_for_training(run: TrainingRun, train: Any, config: S5VHConfig) -> tuple[np.ndarray, np.ndarray]:
    """Hash centers ``[K, L]`` and pseudo-labels ``[N]``: from ``run.centers``, checked against the config and the
    split, else by clustering the training videos."""
    if run.centers:
        stored = load_hash_centers(run.centers)
        if stored.pseudo_labels is None:
            raise ValueError(f"{run.centers} holds no pseudo-labels; write it with `s5vh preprocess`")
        centers, labels = stored.centers, stored.pseudo_labels
        if tuple(centers.shape) != (config.num_hash_centers, config.code_length):
            raise ValueError(f"{run.centers} holds {centers.shape[0]} centers of {centers.shape[1]} bits but the "
                             f"config asks for K = {config.num_hash_centers}, L = {config.code_length}; use "
                             "--clusters / --set code_length=…")  # fmt: skip
        if len(labels) != len(train):
            raise ValueError(f"{run.centers} has pseudo-labels for {len(labels)} videos, the split has {len(train)}")
        return centers, labels
    logger.info("clustering %d videos into %d clusters …", len(train), config.num_hash_centers)
    clusters, made = clusters_and_centers(train, config.num_hash_centers, config.code_length, seed=run.seed,
                                          pooling=config.cluster_pooling, segments=config.cluster_segments)  # fmt: skip
    return made.centers, clusters.pseudo_labels


def train_on_features(run: TrainingRun) -> S5VHTrainer:
    """Train (or resume) and save the model into ``run.out``; returns the trainer (its model, state, history)."""
    from transformers import TrainingArguments, set_seed

    fields = {f.name for f in dataclasses.fields(TrainingArguments)}
    unknown = sorted(set(run.training_overrides) - fields)
    if unknown:
        raise ValueError(f"--training-arg {unknown[0]}: TrainingArguments has no such field")
    set_seed(run.seed)
    train = load_feature_dataset(run.dataset, split=run.split)
    config = training_config(run, feature_dim_of(train))  # checked before minutes of clustering
    centers, labels = centers_for_training(run, train, config)
    model = S5VHModel(config)
    model.set_hash_centers(centers)
    model.train_dataset_id = str(run.dataset)
    training_args = s5vh_training_arguments(config, str(run.out), num_train_examples=len(train),
                                            **{"seed": run.seed, **run.training_overrides})  # fmt: skip
    trainer = S5VHTrainer(model, training_args, train, labels, allow_inexact_resume=run.inexact_resume)
    trainer.train(resume_from_checkpoint=True if run.resume or run.inexact_resume else None)
    trainer.save_model(str(run.out))
    return trainer
