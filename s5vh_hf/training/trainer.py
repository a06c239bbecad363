"""Self-supervised training on the Hugging Face ``Trainer``: the SLG loss, reliability-aware pseudo-labels,
retrieval evaluation, and checkpoints that resume exactly.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from transformers import Trainer, TrainingArguments
from transformers.trainer_utils import PredictionOutput, rotate_checkpoints

from ..data.clustering import frame_feature_statistics
from ..data.collator import IndexedFeatureDataset, TwoViewCollator
from ..data.loading import videos_and_labels
from ..data.masking import two_view_visible_masks
from ..model.commits import fault_point
from ..model.configuration_s5vh import S5VHConfig
from ..model.modeling_s5vh import S5VHModel
from ..retrieval.evaluation import DEFAULT_KS, evaluate_retrieval
from .callbacks import TrainingHealthCallback
from .checkpoints import (
    exact_resume_files,
    incomplete_reason,
    last_complete_checkpoint,
    resume_problems,
    write_checkpoint_record,
)
from .health import COLLAPSE_HINT, code_health, collapse_warnings
from .pseudo_labels import PSEUDO_LABELS_FILE, PseudoLabelStore
from .slg import order_term_scale, two_view_slg_loss

HELD_OUT_SPLIT_NAMES = ("test", "query", "queries")
HEALTH_PROBE_SIZE = 512
"""Training videos whose codes the health monitor follows (fixed for the whole run)."""
FEATURE_SCALE_SAMPLE = 256
FEATURE_SCALE_RANGE = (1e-3, 1e3)
"""RMS feature value outside which raw (unstandardised) features get a warning."""
logger = logging.getLogger(__name__)


class S5VHTrainer(Trainer):
    """``Trainer`` with the self-local-global loss of S5VH.

    Args:
        model: The :class:`~s5vh_hf.S5VHModel` (hash centers already set).
        args: Training arguments (see :func:`s5vh_training_arguments` for the preset defaults).
        train_dataset: A feature dataset (``datasets.Dataset`` with the package schema) or an
            :class:`~s5vh_hf.data.collator.IndexedFeatureDataset`.
        pseudo_labels: Cluster id of every training video ``[N]`` (from ``compute_semantic_clusters``) or a
            :class:`PseudoLabelStore`.
        eval_database, eval_queries: Optional splits for :meth:`evaluate` (retrieval mAP@K).
        allow_query_split_selection: Permit model selection on a split named ``test``/``query``.
        health_probe: Videos whose codes the health monitor follows every epoch (a list of ``[T, D]`` arrays);
            default: a fixed random subset of up to 512 training videos; ``False`` turns the monitor off.
            Each check logs ``health/distinct_fraction``, ``health/bit_imbalance``, ``health/constant_bits``,
            ``health/bit_entropy`` and ``health/center_usage``, keeps them in ``health_history`` and warns on a
            collapse.
        allow_inexact_resume: Resume from a checkpoint that lacks optimizer, scheduler or RNG state (the run then
            does not continue bit for bit); without it such a resume is refused.
        **kwargs: Passed on to ``Trainer``.

    Checkpoints are complete only once every file is written and recorded (:mod:`~s5vh_hf.training.checkpoints`);
    ``train(resume_from_checkpoint=True)`` takes the newest complete one, and a resume with other training data,
    hash centers, code length or number of processes is refused, naming what changed.
    """

    # compute_loss returns the per-batch mean; training_step divides it by the accumulation steps.
    loss_is_scaled_for_ga = False

    def __init__(
        self,
        model: S5VHModel,
        args: TrainingArguments,
        train_dataset: Any,
        pseudo_labels: np.ndarray | torch.Tensor | PseudoLabelStore,
        eval_database: Any = None,
        eval_queries: Any = None,
        eval_ks: Sequence[int] = DEFAULT_KS,
        eval_protocol: str = "query_database",
        allow_query_split_selection: bool = False,
        data_collator: Any = None,
        health_probe: Any = None,
        allow_inexact_resume: bool = False,
        **kwargs: Any,
    ) -> None:
        if not isinstance(model, S5VHModel):
            raise TypeError(f"S5VHTrainer trains an S5VHModel, got {type(model).__name__}")
        if not isinstance(train_dataset, IndexedFeatureDataset):
            train_dataset = IndexedFeatureDataset(train_dataset)
        store = (
            pseudo_labels
            if isinstance(pseudo_labels, PseudoLabelStore)
            else PseudoLabelStore(pseudo_labels, model.config.num_hash_centers)
        )
        if store.num_clusters != model.config.num_hash_centers:
            raise ValueError(
                f"pseudo-labels have {store.num_clusters} clusters but the model has "
                f"{model.config.num_hash_centers} hash centers"
            )
        if len(store) != len(train_dataset):
            raise ValueError(f"{len(store)} pseudo-labels for {len(train_dataset)} training videos")
        if model.ends_encoder is not None and not model.config.ends_term_weight > 0:
            raise ValueError(
                f"the model reads its code's ends from their own encoder (ends_encoder_width="
                f"{model.config.ends_encoder_width}), which only the order term trains, but ends_term_weight is "
                f"{model.config.ends_term_weight}: give ends_term_weight > 0, or ends_encoder_width=0 to read the ends "
                "from the main encoder"
            )
        if args.max_steps <= 0 and args.num_train_epochs <= 0:
            raise ValueError(
                f"nothing to train: num_train_epochs={args.num_train_epochs} and max_steps={args.max_steps}; "
                "give a positive number of epochs or steps"
            )
        if args.remove_unused_columns:
            args.remove_unused_columns = False  # the collator needs every column
        self._check_model_selection_split(args, eval_queries, allow_query_split_selection)
        if eval_database is not None:
            # The Trainer insists on an eval_dataset for eval_strategy != "no"; evaluate() below reads the splits.
            kwargs.setdefault("eval_dataset", eval_database)
        collator = data_collator or TwoViewCollator(
            model.config.mask_ratio, feature_dim=model.config.feature_dim, draw_views=False
        )
        super().__init__(model=model, args=args, train_dataset=train_dataset, data_collator=collator, **kwargs)
        self.pseudo_labels = store
        self.allow_inexact_resume = allow_inexact_resume
        self._resume_inputs: dict[str, Any] | None = None
        self.eval_database, self.eval_queries = eval_database, eval_queries
        self.eval_ks, self.eval_protocol = tuple(eval_ks), eval_protocol
        self._term_sums = torch.zeros(4)
        self._term_count = 0
        self._fit_feature_statistics(model)
        self.health_history: list[dict[str, float]] = []
        self._health_probe = self._choose_health_probe(health_probe)
        if self._health_probe is not None:
            self.add_callback(TrainingHealthCallback(self.check_health))
        self._warn_if_warmup_unreached(model.config)

    @staticmethod
    def _check_model_selection_split(args: TrainingArguments, queries: Any, allowed: bool) -> None:
        name = str(getattr(queries, "split", "") or "")
        selecting = bool(args.load_best_model_at_end or args.metric_for_best_model)
        if selecting and not allowed and name.lower() in HELD_OUT_SPLIT_NAMES:
            raise ValueError(
                f"model selection would use the held-out split {name!r}; pass a validation split, or "
                "allow_query_split_selection=True if this is intended"
            )

    def _fit_feature_statistics(self, model: S5VHModel) -> None:
        """With ``feature_normalization="standardize"`` and no statistics set yet, take them from the training
        set (explicitly set statistics, or those of a loaded model, are kept). With raw features, warn once when
        their scale is far from 1 (the reconstruction loss grows with its square and drowns the other terms)."""
        if model.feature_mean is None:
            self._warn_if_features_are_badly_scaled()
            return
        unset = bool((model.feature_mean == 0).all() and (model.feature_scale == 1).all())
        if unset:
            mean, std = frame_feature_statistics(self.train_dataset.dataset)
            model.set_feature_statistics(mean, std)
            logger.info("feature statistics set from the training set (mean |μ| %.3g, mean σ %.3g)",
                        float(abs(mean).mean()), float(std.mean()))  # fmt: skip

    def _warn_if_features_are_badly_scaled(self) -> None:
        count = min(FEATURE_SCALE_SAMPLE, len(self.train_dataset))
        chosen = np.sort(np.random.default_rng(1).choice(len(self.train_dataset), count, replace=False))
        mean, std = frame_feature_statistics(self.train_dataset.dataset.select(chosen))
        typical = float(np.sqrt(np.mean(np.square(mean) + np.square(std))))  # RMS of the feature values
        if not FEATURE_SCALE_RANGE[0] <= typical <= FEATURE_SCALE_RANGE[1]:
            logger.warning(
                "the training features have an RMS value of %.3g (mean |μ| %.3g, mean σ %.3g over %d videos) and the "
                "model reads them raw (feature_normalization='none'): the reconstruction loss scales with their "
                "square and will drown the other terms. Use feature_normalization='standardize' (the default for new "
                "models) or rescale the features.",
                typical, float(np.abs(mean).mean()), float(std.mean()), count,
            )  # fmt: skip

    def _choose_health_probe(self, probe: Any) -> list[np.ndarray] | None:
        if probe is False:
            return None
        if probe is not None:
            return list(probe)
        count = min(HEALTH_PROBE_SIZE, len(self.train_dataset))
        chosen = np.sort(np.random.default_rng(0).choice(len(self.train_dataset), count, replace=False))
        rows = self.train_dataset.dataset.select(chosen)
        return [np.asarray(v, np.float32) for v in rows["features"]]

    def _warn_if_warmup_unreached(self, config: S5VHConfig) -> None:
        epochs = self.args.num_train_epochs
        if self.args.max_steps <= 0 and epochs <= config.warmup_epochs and config.center_weight > 0:
            logger.warning(
                "training for %s epochs, but pseudo-labels are refreshed from warm-up epoch %d on: they stay the "
                "initial clusters for the whole run (lower S5VHConfig.warmup_epochs to refresh them)",
                epochs,
                config.warmup_epochs,
            )

    # -- health --------------------------------------------------------------------------------------------------

    def check_health(self) -> dict[str, Any]:
        """Encode the health probe, log its code statistics (``health/*``) and warn on a collapse (once when it
        starts, and again at the end if it lasts). Returns the record kept in ``health_history`` (statistics,
        epoch, step, ``collapsed``); a second check at the same step returns the first."""
        if self.health_history and self.health_history[-1]["step"] == self.state.global_step:
            return self.health_history[-1]
        model = self.accelerator.unwrap_model(self.model)
        codes = model.encode(self._health_probe, show_progress_bar=False)
        centers = model.hash_centers.detach().float().cpu().numpy()
        health = code_health(codes, centers)
        record = {"epoch": float(self.state.epoch or 0), "step": self.state.global_step, **health}
        self.health_history.append(record)
        problems = collapse_warnings(health, len(codes), model.config.num_hash_centers)
        # Codes are often unbalanced in the first epochs; a collapse that lasts past a quarter of training is not.
        finished = self.state.global_step >= self.state.max_steps
        record["collapsed"] = bool(problems) and self.state.global_step >= self.state.max_steps / 4
        previous = self.health_history[-2]["collapsed"] if len(self.health_history) > 1 else False
        if record["collapsed"] and (not previous or finished) and self.is_world_process_zero():
            logger.warning(
                "hash codes have collapsed at epoch %.1f: %s; %s", record["epoch"], "; ".join(problems), COLLAPSE_HINT
            )
        model.training_health = {**record, "probe_size": len(codes), "warnings": problems}
        self.log({f"health/{name}": value for name, value in health.items()})
        return record

    # -- loss ----------------------------------------------------------------------------------------------------

    def _pseudo_label_targets(self, model: S5VHModel, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Targets ``[B, K]``: the stored labels, refreshed from the warm-up epoch on (the paper's self-local-global objective)."""
        index = inputs["video_index"]
        config = model.config
        epoch = int(self.state.epoch or 0)
        if epoch < config.warmup_epochs:
            return self.pseudo_labels.get(index).to(inputs["features"].device)
        was_training = model.training
        model.train(config.refresh_in_train_mode)  # the release refreshes with stochastic depth active
        with torch.no_grad():
            logits = model.pseudo_label_logits(inputs["features"], inputs["attention_mask"])
        model.train(was_training)
        updated = self.pseudo_labels.refresh(index, logits, config.pseudo_label_smoothing)
        if self.accelerator.num_processes > 1:
            self._share_refresh(index, updated)
        return updated.to(inputs["features"].device)

    def _share_refresh(self, index: torch.Tensor, labels: torch.Tensor) -> None:
        """Apply every process's refreshed labels to this process's store, so all copies stay equal."""
        device = self.accelerator.device
        padded_index = self.accelerator.pad_across_processes(index.to(device), dim=0, pad_index=-1)
        padded_labels = self.accelerator.pad_across_processes(labels.to(device), dim=0)
        all_index = self.accelerator.gather(padded_index).cpu()
        all_labels = self.accelerator.gather(padded_labels).cpu()
        valid = all_index >= 0
        self.pseudo_labels.assign(all_index[valid], all_labels[valid])

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """SLG loss of the collator's two views (reconstruction + α·contrastive + β·center alignment)."""
        unwrapped = self.accelerator.unwrap_model(model)
        if inputs["features"].shape[0] < 2:
            raise ValueError(
                "a training batch holds one video, but the contrastive loss needs two; use a batch size ≥ 2 and "
                "dataloader_drop_last=True (s5vh train --drop-last) when the dataset size leaves a batch of one"
            )
        targets = self._pseudo_label_targets(unwrapped, inputs)
        if "visible_mask_1" in inputs:
            visible_1, visible_2 = inputs["visible_mask_1"], inputs["visible_mask_2"]
        else:  # drawn here, from the global RNG the Trainer checkpoints, so that resumed runs draw the same views
            attention_mask = inputs["attention_mask"]
            visible_1, visible_2 = two_view_visible_masks(
                attention_mask.cpu(),
                unwrapped.config.mask_ratio,
                keep_ends=getattr(unwrapped.config, "mask_keeps_ends", False),
            )
            visible_1, visible_2 = visible_1.to(attention_mask.device), visible_2.to(attention_mask.device)
        scale = order_term_scale(
            self.state.global_step, self.state.max_steps, getattr(unwrapped.config, "ends_term_warmup", 0.0)
        )
        loss = two_view_slg_loss(
            model, inputs["features"], inputs["attention_mask"], visible_1, visible_2, targets, order_scale=scale
        )
        if not torch.isfinite(loss.total):
            raise FloatingPointError(
                f"non-finite SLG loss at step {self.state.global_step} (reconstruction {loss.reconstruction.item():.4g},"
                f" contrastive {loss.contrastive.item():.4g}, center {loss.center.item():.4g}); training stopped. "
                f"The last checkpoint in {self.args.output_dir} is the last good state; lower the learning rate or "
                "check the features."
            )
        order = loss.order if loss.order is not None else torch.zeros_like(loss.center)
        terms = torch.stack([loss.reconstruction, loss.contrastive, loss.center, order]).detach().float().cpu()
        self._term_sums += terms
        self._term_count += 1
        return (loss.total, loss) if return_outputs else loss.total

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Adds the mean SLG terms since the last training log (``loss_rec``, ``loss_con``, ``loss_ca``, and
        ``loss_order`` when the objective has the order term)."""
        if "loss" in logs and self._term_count:
            means = self._term_sums / self._term_count
            if self.accelerator.num_processes > 1:
                means = self.accelerator.reduce(means.to(self.accelerator.device), "mean").cpu()
            logs.update({"loss_rec": means[0].item(), "loss_con": means[1].item(), "loss_ca": means[2].item()})
            if getattr(self.accelerator.unwrap_model(self.model).config, "ends_term_weight", 0.0) > 0:
                logs["loss_order"] = means[3].item()
            self._term_sums.zero_()
            self._term_count = 0
        super().log(logs, start_time)

    # -- checkpoints and the Hub ------------------------------------------------------------------------------------

    def create_model_card(self, tags: str | list[str] | None = None, **kwargs: Any) -> None:
        """Write the S5VH model card (not the Trainer's generic one) into ``args.output_dir``, rendered for
        ``hub_model_id`` with the last evaluation and training health; ``tags`` are added to its metadata.
        ``Trainer.push_to_hub`` calls it before uploading. Other ``Trainer.create_model_card`` arguments are
        accepted and ignored (the card takes its facts from the model)."""
        if not self.is_world_process_zero():
            return
        from ..hub.sharing import write_model_card

        os.makedirs(self.args.output_dir, exist_ok=True)
        extra = [tags] if isinstance(tags, str) else list(tags or [])
        model = self.accelerator.unwrap_model(self.model)
        write_model_card(model, self.args.output_dir, repo_id=self.hub_model_id, extra_tags=extra)

    def train(self, resume_from_checkpoint: str | bool | None = None, **kwargs: Any):
        """``Trainer.train``; on resume the pseudo-label state of the checkpoint is restored as well. A model
        loaded from a Hub repo is recorded as the base model of the fine-tuned one (the card's ``base_model``)."""
        from ..hub.sharing import is_hub_id

        model = self.accelerator.unwrap_model(self.model)
        if is_hub_id(model.loaded_from):
            model.fine_tuned_from = model.loaded_from
        args = self.args
        model.training_arguments = {
            "optimizer": f"{args.optim} (betas {args.adam_beta1}/{args.adam_beta2}, weight decay {args.weight_decay})",
            "learning rate": f"{args.learning_rate:g}, {args.lr_scheduler_type} schedule",
            "batch": f"{args.per_device_train_batch_size} per device × {args.world_size} process(es) × "
            f"{args.gradient_accumulation_steps} accumulation step(s)",
            "length": f"{args.max_steps} steps" if args.max_steps > 0 else f"{args.num_train_epochs:g} epochs",
            "seed": args.seed,
        }
        if self.args.push_to_hub:
            self.create_model_card()  # checkpoint pushes during training upload the output folder
        _check_batches_fit(len(self.train_dataset), self.args)  # at train time: predict and evaluate need no batch
        self._resume_inputs = self.resume_inputs()
        if resume_from_checkpoint:
            resume_from_checkpoint = self._checkpoint_to_resume(resume_from_checkpoint)
            self.pseudo_labels.load(os.path.join(resume_from_checkpoint, PSEUDO_LABELS_FILE))
        return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)

    def resume_inputs(self) -> dict[str, Any]:
        """What a checkpoint of this run records about its inputs, and a resume must match: fingerprints of the
        training data (its size, frame counts and a sample of videos) and the hash centers, the code length, D and
        the number of processes."""
        model = self.accelerator.unwrap_model(self.model)
        data = self.train_dataset.dataset
        digest = hashlib.sha256(np.asarray(data["num_frames"], dtype=np.int64).tobytes())
        for index in np.unique(np.linspace(0, len(data) - 1, num=min(len(data), 32)).astype(int)):
            digest.update(np.ascontiguousarray(data[int(index)]["features"], dtype=np.float32).tobytes())
        centers = model.hash_centers.detach().cpu().to(torch.float32).contiguous().numpy().tobytes()
        return {
            "train_data": f"{len(data)} videos, {digest.hexdigest()[:16]}",
            "hash_centers": hashlib.sha256(centers).hexdigest()[:16],
            "code_length": model.config.code_length,
            "feature_dim": model.config.feature_dim,
            "processes": self.args.world_size,
        }

    def _checkpoint_to_resume(self, requested: str | bool) -> str:
        """The checkpoint to resume from: the newest complete one for ``True`` (passing over incomplete ones with
        a warning), else the one named, which must be complete. Refused when the inputs changed, or (unless
        ``allow_inexact_resume``) when optimizer, scheduler or RNG state is missing."""
        output_dir = self.args.output_dir
        may_lack = tuple(exact_resume_files(self.args.world_size)) if self.allow_inexact_resume else ()
        if requested is True:
            found, skipped = last_complete_checkpoint(output_dir, may_lack)
            for line in skipped:
                logger.warning("not resuming from %s", line)
            if found is None:
                detail = f" ({'; '.join(skipped)})" if skipped else ""
                hint = "" if self.allow_inexact_resume else "; --inexact-resume goes on without optimizer/RNG state"
                raise ValueError(f"no complete checkpoint in {output_dir} to resume from{detail}{hint}")
            requested = str(found)
        else:
            reason = incomplete_reason(requested, may_lack)
            if reason is not None:
                raise ValueError(f"{requested} is not a complete checkpoint: {reason}")
        if not os.path.isfile(os.path.join(requested, PSEUDO_LABELS_FILE)):
            raise ValueError(f"{requested} has no {PSEUDO_LABELS_FILE}; it was not written by S5VHTrainer")
        changed, missing = resume_problems(requested, self._resume_inputs or self.resume_inputs(), self.args.world_size)
        if changed:
            raise ValueError(f"{requested} was trained with other inputs: {'; '.join(changed)}; resume with the same "
                             "data, centers and options, or start a new run in another --out")  # fmt: skip
        if missing and not self.allow_inexact_resume:
            raise ValueError(f"{requested} lacks {', '.join(missing)}: the run would not continue bit for bit; allow "
                             "an inexact resume (--inexact-resume, allow_inexact_resume=True) to go on anyway")  # fmt: skip
        if missing:
            logger.warning("resuming from %s without %s: not bit for bit", requested, ", ".join(missing))
        return requested

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        """``Trainer._save_checkpoint``, then the pseudo-labels and the checkpoint record (which makes the checkpoint
        complete, :mod:`~s5vh_hf.training.checkpoints`); old checkpoints are rotated away only after that, so a kill while
        saving always leaves a complete checkpoint behind when there was one. When pushing to the Hub, the S5VH model
        card is refreshed in the output folder first, so the checkpoint's upload carries it."""
        if self.args.push_to_hub and self.args.should_save:
            self.create_model_card()  # the checkpoint push below uploads the output folder with the S5VH card
        limit = self.args.save_total_limit
        self.args.save_total_limit = None
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self.args.save_total_limit = limit
        run_dir = self._get_output_dir(trial=trial)
        folder = os.path.join(run_dir, f"checkpoint-{self.state.global_step}")
        self.accelerator.wait_for_everyone()  # every process's RNG state is written
        if self.args.should_save and os.path.isdir(folder):
            fault_point(f"checkpoint:{self.state.global_step}")  # trainer files written, not yet complete
            self.pseudo_labels.save(os.path.join(folder, PSEUDO_LABELS_FILE))
            write_checkpoint_record(folder, self._resume_inputs or self.resume_inputs())
            rotate_checkpoints(output_dir=run_dir, save_total_limit=limit,
                               best_model_checkpoint=self.state.best_model_checkpoint, use_mtime=True)  # fmt: skip

    # -- evaluation ------------------------------------------------------------------------------------------------

    def retrieval_metrics(
        self, database: Any, queries: Any = None, ks: Sequence[int] = DEFAULT_KS, protocol: str = "query_database"
    ) -> dict[str, float]:
        """mAP@K (÷K), standard mAP@K and precision@K of the current model, keys prefixed with ``eval_``."""
        model = self.accelerator.unwrap_model(self.model)
        database_split = videos_and_labels(database)
        query_split = videos_and_labels(queries) if queries is not None else None
        report = evaluate_retrieval(
            model, database_split, query_split, ks=tuple(ks), protocol=protocol, show_progress_bar=False
        )
        model.evaluation_results = report.to_dict()  # the trainer's choice: its last evaluation goes on the card
        metrics = {f"eval_map@{k}": v for k, v in report.map_at_k.items()}
        metrics.update({f"eval_standard_map@{k}": v for k, v in report.standard_map_at_k.items()})
        metrics.update({f"eval_precision@{k}": v for k, v in report.precision_at_k.items()})
        return metrics

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        """Retrieval metrics (mAP@K, standard mAP@K, precision@K; there is no loss to evaluate), logged and
        returned with keys ``{metric_key_prefix}_map@K`` …

        Args:
            eval_dataset: ``None``: ``eval_database`` / ``eval_queries`` with ``eval_protocol``. A labelled split:
                all-vs-all retrieval within it. A mapping with ``"database"`` and ``"query"`` splits (e.g. a
                ``DatasetDict``): query-vs-database.
        """
        database, queries, protocol = self.eval_database, self.eval_queries, self.eval_protocol
        if eval_dataset is not None:
            if hasattr(eval_dataset, "keys") and {"database", "query"} <= set(eval_dataset.keys()):
                database, queries, protocol = eval_dataset["database"], eval_dataset["query"], "query_database"
            else:
                database, queries, protocol = eval_dataset, None, "all_vs_all"
        if database is None:
            raise ValueError("S5VHTrainer.evaluate needs eval_database (and eval_queries unless all-vs-all)")
        metrics = self.retrieval_metrics(database, queries, self.eval_ks, protocol)
        if metric_key_prefix != "eval":
            metrics = {k.replace("eval_", f"{metric_key_prefix}_", 1): v for k, v in metrics.items()}
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics

    def predict(self, test_dataset, ignore_keys=None, metric_key_prefix: str = "test") -> PredictionOutput:
        """Binary codes of every video in ``test_dataset`` (a feature split): ``predictions`` are ±1 ``int8``
        ``[N, L]``, ``label_ids`` the videos' label lists (class ids; ``None`` when the split has no labels), and
        ``metrics`` its size and timing (``{prefix}_num_videos``, ``{prefix}_runtime``,
        ``{prefix}_videos_per_second``)."""
        start = time.perf_counter()
        videos, labels = videos_and_labels(test_dataset, require_labels=False)
        model = self.accelerator.unwrap_model(self.model)
        codes = model.encode(videos, batch_size=self.args.per_device_eval_batch_size * 32, show_progress_bar=False)
        runtime = time.perf_counter() - start
        metrics = {
            f"{metric_key_prefix}_num_videos": len(codes),
            f"{metric_key_prefix}_runtime": round(runtime, 4),
            f"{metric_key_prefix}_videos_per_second": round(len(codes) / max(runtime, 1e-9), 3),
        }
        label_ids = None if all(row is None for row in labels) else labels
        return PredictionOutput(predictions=codes, label_ids=label_ids, metrics=metrics)


def _check_batches_fit(num_videos: int, args: TrainingArguments) -> None:
    """Refuse a batch that leaves an epoch without a single full batch (``dataloader_drop_last`` drops the only,
    partial one): the Trainer would stop with a message about ``max_steps`` that does not say why."""
    if not args.dataloader_drop_last:
        return
    per_step = args.per_device_train_batch_size * max(1, args.world_size)
    if num_videos // per_step >= 1:
        return
    largest = num_videos // max(1, args.world_size)
    raise ValueError(
        f"{num_videos} training videos make no full batch of {args.per_device_train_batch_size} per device × "
        f"{max(1, args.world_size)} process(es) with dataloader_drop_last=True, so an epoch would be empty; use "
        f"per_device_train_batch_size ≤ {largest} (s5vh_training_arguments(..., num_train_examples={num_videos}) "
        "sizes it for you) or dataloader_drop_last=False"
    )
