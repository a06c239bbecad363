"""The training recipe as ``TrainingArguments``: the preset's optimiser, schedule, epochs and batch (sized for small
data sets), and the options a script's command line names."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch
from transformers import TrainingArguments

from ..model.configuration_s5vh import S5VHConfig, preset_training_recipe
from .launch import has_accelerator

STEPS_PER_EPOCH_TARGET = 16
"""With ``num_train_examples``, the batch is made small enough for about this many optimiser steps per epoch."""
MIN_BATCH_SIZE = 16
DEFAULT_LEARNING_RATE = 1e-3
"""AdamW learning rate when the config's recipe names none (presets carry the paper's 5e-4)."""


def batch_size_for(num_train_examples: int, preset_batch_size: int = 128) -> int:
    """The preset's batch size, reduced for small data sets so that an epoch still has about
    ``STEPS_PER_EPOCH_TARGET`` optimiser steps (never below ``MIN_BATCH_SIZE`` or above the data set)."""
    wanted = max(MIN_BATCH_SIZE, num_train_examples // STEPS_PER_EPOCH_TARGET)
    return max(2, min(preset_batch_size, wanted, num_train_examples))


def s5vh_training_arguments(
    config: S5VHConfig,
    output_dir: str,
    num_train_examples: int | None = None,
    recipe: dict[str, Any] | None = None,
    **overrides: Any,
) -> TrainingArguments:
    """``TrainingArguments`` with the preset's optimiser and schedule: AdamW (betas 0.9/0.999, weight decay 1e-4),
    cosine decay to 1e-5 (per step), the preset's epochs, batch size and learning rate. Without a preset recipe
    the learning rate is ``DEFAULT_LEARNING_RATE`` (1e-3, which trained better than the paper's 5e-4 on every
    set of ``python -m benchmarks.quality``; the dataset presets keep the paper's 5e-4).

    Args:
        num_train_examples: Size of the training set. When given, the batch size is reduced for small data sets
            (:func:`batch_size_for`), which otherwise get a handful of optimiser steps per epoch.
        recipe: The preset recipe to start from (default: the ``"training"`` section of the preset the config was
            made from, :func:`~s5vh_hf.model.configuration_s5vh.preset_training_recipe`; none for other configs).
        **overrides: Any ``TrainingArguments`` field; wins over the defaults.
    """
    defaults = recipe if recipe is not None else preset_training_recipe(config)
    batch_size = defaults.get("per_device_train_batch_size", 128)
    if num_train_examples is not None:
        batch_size = batch_size_for(num_train_examples, batch_size)
    values: dict[str, Any] = dict(
        output_dir=output_dir,
        learning_rate=defaults.get("learning_rate", DEFAULT_LEARNING_RATE),
        weight_decay=defaults.get("weight_decay", 1e-4),
        adam_beta1=defaults.get("adam_beta1", 0.9),
        adam_beta2=defaults.get("adam_beta2", 0.999),
        num_train_epochs=defaults.get("num_train_epochs", 350),
        per_device_train_batch_size=batch_size,
        dataloader_drop_last=True,
        dataloader_pin_memory=torch.cuda.is_available(),  # pinning without CUDA only warns
        lr_scheduler_type="cosine_with_min_lr",
        lr_scheduler_kwargs={"min_lr": defaults.get("min_learning_rate", 1e-5)},
        optim="adamw_torch",
        remove_unused_columns=False,
        report_to="none",
        ddp_find_unused_parameters=False,  # every parameter gets a gradient (the frozen center head has none)
        # The Trainer's own choice of device; stating the CPU when there is nothing else makes the processes of
        # `accelerate launch --multi_gpu` on a GPU-less machine join one gloo group (else each trains alone).
        use_cpu=not has_accelerator(),
    )
    values.update(overrides)
    return TrainingArguments(**values)


def explicit_training_options(argv: Sequence[str], parsed: TrainingArguments) -> dict[str, Any]:
    """The ``TrainingArguments`` fields named on a command line (``--name value``, ``--name=value``,
    ``--no_name``, dashes or underscores), with the values ``HfArgumentParser`` parsed into ``parsed``.

    Pass them as overrides to :func:`s5vh_training_arguments`, so that a script takes every Trainer option from
    its command line while the fields it does not name keep the preset's recipe.
    """
    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    given = set()
    for token in argv:
        if not token.startswith("--"):
            continue
        name = token[2:].split("=", 1)[0].replace("-", "_")
        name = name[3:] if name.startswith("no_") and name not in names else name
        if name in names:
            given.add(name)
    return {name: getattr(parsed, name) for name in sorted(given)}
