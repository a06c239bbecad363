import json
import math

import numpy as np
import pytest
import torch
from transformers import TrainerCallback, set_seed

from s5vh_hf import S5VHModel
from s5vh_hf.data.clustering import compute_semantic_clusters
from s5vh_hf.data.collator import IndexedFeatureDataset, TwoViewCollator
from s5vh_hf.data.hash_centers import generate_hash_centers
from s5vh_hf.data.loading import load_feature_dataset
from s5vh_hf.data.synthetic import make_synthetic_videos
from s5vh_hf.data.writing import write_feature_split
from s5vh_hf.training.arguments import s5vh_training_arguments
from s5vh_hf.training.callbacks import RetrievalEvaluationCallback
from s5vh_hf.training.pseudo_labels import PSEUDO_LABELS_FILE, PseudoLabelStore
from s5vh_hf.training.trainer import S5VHTrainer

from .conftest import make_tiny_config


class _StopAt(TrainerCallback):
    """Simulates an interruption right after the checkpoint of step ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step >= self.step:
            control.should_training_stop = True
        return control


@pytest.fixture(scope="module")
def feature_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("features")
    data = make_synthetic_videos(num_videos=48, num_classes=4, feature_dim=24, num_frames=8, min_frames=6, seed=0)
    labels = [[int(x)] for x in data.labels]
    write_feature_split(folder, "train", data.videos(), data.video_ids, labels, shard_size=20)
    write_feature_split(folder, "validation", data.videos()[:20], data.video_ids[:20], labels[:20])
    return folder


def _setup(feature_folder, tmp_path, **arg_overrides):
    set_seed(0)
    config = make_tiny_config(num_hash_centers=4, warmup_epochs=1, pseudo_label_smoothing=0.5)
    model = S5VHModel(config)
    train = load_feature_dataset(feature_folder, split="train")
    clusters = compute_semantic_clusters(train, n_clusters=4, pca_dim=8, seed=0)
    model.set_hash_centers(generate_hash_centers(clusters.semantic_centers, 16, seed=0).centers)
    values = dict(
        num_train_epochs=3,
        per_device_train_batch_size=8,
        learning_rate=1e-3,
        logging_steps=2,
        save_strategy="no",
        seed=0,
        dataloader_drop_last=True,
        use_cpu=True,
    )
    values.update(arg_overrides)
    args = s5vh_training_arguments(config, str(tmp_path / "run"), **values)
    return model, train, clusters, args


def test_training_logs_every_term_and_refreshes_labels_after_warmup(feature_folder, tmp_path):
    model, train, clusters, args = _setup(feature_folder, tmp_path)
    trainer = S5VHTrainer(model, args, train, clusters.pseudo_labels)
    initial = trainer.pseudo_labels.soft_labels.clone()
    before = model.encoder.patch_embed.weight.detach().clone()
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert logs and all({"loss_rec", "loss_con", "loss_ca", "loss_order"} <= set(entry) for entry in logs)
    assert all(math.isfinite(entry["loss"]) and entry["loss_order"] > 0 for entry in logs)  # the default's order term
    assert not torch.equal(before, model.encoder.patch_embed.weight)
    changed = ~torch.isclose(trainer.pseudo_labels.soft_labels, initial).all(1)
    assert changed.sum() > 0  # refreshed from the warm-up epoch (1) on
    assert torch.allclose(trainer.pseudo_labels.soft_labels.sum(1), torch.ones(48))
    assert trainer.args.learning_rate == 1e-3 and trainer.args.lr_scheduler_type == "cosine_with_min_lr"


def test_the_order_term_warms_up_linearly_over_its_share_of_the_steps(feature_folder, tmp_path):
    model, train, clusters, args = _setup(feature_folder, tmp_path, num_train_epochs=2, logging_steps=1)
    config = model.config
    config.ends_term_warmup = 1.0  # over the whole training: from 0 at the first step to nearly 1 at the last
    trainer = S5VHTrainer(model, args, train, clusters.pseudo_labels)
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    total_steps = trainer.state.max_steps
    assert len(logs) == total_steps == 12
    for entry in logs:
        slg = (
            entry["loss_rec"] + config.contrastive_weight * entry["loss_con"] + config.center_weight * entry["loss_ca"]
        )
        scale = (entry["step"] - 1) / total_steps  # the loss of a step is computed before it counts
        assert entry["loss_order"] > 0
        assert entry["loss"] == pytest.approx(slg + config.ends_term_weight * scale * entry["loss_order"], abs=2e-4)


def test_no_refresh_before_warmup(feature_folder, tmp_path):
    model, train, clusters, args = _setup(feature_folder, tmp_path, num_train_epochs=1)
    trainer = S5VHTrainer(model, args, train, clusters.pseudo_labels)
    initial = trainer.pseudo_labels.soft_labels.clone()
    trainer.train()
    assert torch.equal(trainer.pseudo_labels.soft_labels, initial)


def test_resume_reproduces_the_uninterrupted_run(feature_folder, tmp_path):
    overrides = dict(num_train_epochs=3, logging_steps=1, save_strategy="steps", save_steps=7)
    model, train, clusters, args = _setup(feature_folder, tmp_path / "full", **overrides)
    full = S5VHTrainer(model, args, train, clusters.pseudo_labels)
    full.train()
    full_losses = [e["loss"] for e in full.state.log_history if "loss" in e]
    full_labels = full.pseudo_labels.soft_labels.clone()

    model, train, clusters, args = _setup(feature_folder, tmp_path / "cut", **overrides)
    S5VHTrainer(model, args, train, clusters.pseudo_labels, callbacks=[_StopAt(7)]).train()  # interrupted
    checkpoint = tmp_path / "cut" / "run" / "checkpoint-7"
    assert (checkpoint / PSEUDO_LABELS_FILE).exists()
    model, train, clusters, args = _setup(feature_folder, tmp_path / "cut", **overrides)
    resumed = S5VHTrainer(model, args, train, clusters.pseudo_labels)
    resumed.train(resume_from_checkpoint=True)
    resumed_losses = [e["loss"] for e in resumed.state.log_history if "loss" in e]
    assert len(resumed_losses) == len(full_losses)
    np.testing.assert_allclose(resumed_losses[7:], full_losses[7:], rtol=1e-4)
    torch.testing.assert_close(resumed.pseudo_labels.soft_labels, full_labels, rtol=1e-4, atol=1e-6)


def test_gradient_accumulation_scales_the_loss(feature_folder, tmp_path):
    model, train, clusters, args = _setup(feature_folder, tmp_path, gradient_accumulation_steps=2, max_steps=2)
    trainer = S5VHTrainer(model, args, train, clusters.pseudo_labels)
    assert trainer.loss_is_scaled_for_ga is False
    seen = []
    original = trainer.accelerator.backward
    trainer.accelerator.backward = lambda loss, **kw: (seen.append(loss.item()), original(loss, **kw))[1]
    losses = []
    original_compute = trainer.compute_loss
    trainer.compute_loss = lambda *a, **kw: (lambda v: (losses.append(v.item()), v)[1])(original_compute(*a, **kw))
    trainer.train()
    assert len(seen) == 4
    np.testing.assert_allclose(seen, np.array(losses) / 2, rtol=1e-6)


def test_evaluation_callback_and_evaluate(feature_folder, tmp_path):
    model, train, clusters, args = _setup(feature_folder, tmp_path, num_train_epochs=2)
    validation = load_feature_dataset(feature_folder, split="validation")
    callback = RetrievalEvaluationCallback(every_n_epochs=1)
    trainer = S5VHTrainer(
        model, args, train, clusters.pseudo_labels, eval_database=validation, eval_protocol="all_vs_all",
        eval_ks=(5, 10), callbacks=[callback],
    )  # fmt: skip
    assert not hasattr(callback, "trainer")  # no back-pointer: it only raises the Trainer's should_evaluate flag
    trainer.train()
    evaluations = [e for e in trainer.state.log_history if "eval_map@10" in e]
    assert len(evaluations) == 2 and 0 < evaluations[-1]["eval_map@5"] <= 1
    every_epoch = S5VHTrainer(  # the Trainer's own eval_strategy does the same without the callback
        model, s5vh_training_arguments(model.config, str(tmp_path / "b"), num_train_epochs=2, eval_strategy="epoch",
                                       per_device_train_batch_size=8, save_strategy="no", report_to="none"),
        train, clusters.pseudo_labels, eval_database=validation, eval_protocol="all_vs_all", eval_ks=(5,),
    )  # fmt: skip
    every_epoch.train()
    assert len([e for e in every_epoch.state.log_history if "eval_map@5" in e]) == 2
    metrics = trainer.evaluate()
    assert set(metrics) >= {"eval_map@5", "eval_standard_map@5", "eval_precision@5"}


def test_model_selection_refuses_a_query_split(feature_folder, tmp_path):
    model, train, clusters, args = _setup(feature_folder, tmp_path, metric_for_best_model="map@20")
    queries = load_feature_dataset(feature_folder, split="validation")
    named_query = load_feature_dataset(feature_folder, split="validation")
    named_query._split = "query"
    with pytest.raises(ValueError, match="held-out split 'query'"):
        S5VHTrainer(model, args, train, clusters.pseudo_labels, eval_database=queries, eval_queries=named_query)
    S5VHTrainer(
        model, args, train, clusters.pseudo_labels, eval_database=queries, eval_queries=named_query,
        allow_query_split_selection=True,
    )  # fmt: skip


def _two_checkpoints(feature_folder, tmp_path, **overrides):
    """A run cut after the checkpoints of steps 6 and 12 (of 18); returns its setup for resuming."""
    values = dict(num_train_epochs=3, save_strategy="steps", save_steps=6, save_total_limit=3, **overrides)
    model, train, clusters, args = _setup(feature_folder, tmp_path, **values)
    S5VHTrainer(model, args, train, clusters.pseudo_labels, callbacks=[_StopAt(12)]).train()
    return _setup(feature_folder, tmp_path, **values)


def test_resume_takes_the_last_complete_checkpoint(feature_folder, tmp_path, caplog):
    from s5vh_hf.training.checkpoints import RECORD_FILE, incomplete_reason

    model, train, clusters, args = _two_checkpoints(feature_folder, tmp_path)
    run = tmp_path / "run"
    assert incomplete_reason(run / "checkpoint-6") is None and incomplete_reason(run / "checkpoint-12") is None
    optimizer = run / "checkpoint-12" / "optimizer.pt"
    optimizer.write_bytes(optimizer.read_bytes()[:100])  # torn, as by a kill or a full disk
    with pytest.raises(ValueError, match="optimizer.pt is torn"):
        S5VHTrainer(model, args, train, clusters.pseudo_labels).train(resume_from_checkpoint=str(run / "checkpoint-12"))
    (run / "checkpoint-6" / RECORD_FILE).unlink()  # checkpoint-6 killed before its record: incomplete too
    with pytest.raises(ValueError, match="no complete checkpoint"):
        S5VHTrainer(model, args, train, clusters.pseudo_labels).train(resume_from_checkpoint=True)


def test_resume_falls_back_past_a_checkpoint_without_pseudo_labels(feature_folder, tmp_path, caplog):
    model, train, clusters, args = _two_checkpoints(feature_folder, tmp_path)
    (tmp_path / "run" / "checkpoint-12" / PSEUDO_LABELS_FILE).unlink()
    trainer = S5VHTrainer(model, args, train, clusters.pseudo_labels)
    with caplog.at_level("WARNING"):
        trainer.train(resume_from_checkpoint=True)
    assert "checkpoint-12: pseudo_labels.safetensors is missing" in caplog.text
    assert trainer.state.global_step == 18


def test_resume_with_other_inputs_is_refused_naming_them(feature_folder, tmp_path):
    model, train, clusters, args = _two_checkpoints(feature_folder, tmp_path)
    other = make_synthetic_videos(num_videos=48, num_classes=4, feature_dim=24, num_frames=8, min_frames=6, seed=5)
    write_feature_split(tmp_path / "other", "train", other.videos(), other.video_ids)  # same size, other videos
    other_train = load_feature_dataset(tmp_path / "other", split="train")
    with pytest.raises(ValueError, match="train_data"):
        S5VHTrainer(model, args, other_train, clusters.pseudo_labels).train(resume_from_checkpoint=True)
    model.set_hash_centers(generate_hash_centers(clusters.semantic_centers, 16, seed=1).centers)
    with pytest.raises(ValueError, match="hash_centers"):
        S5VHTrainer(model, args, train, clusters.pseudo_labels).train(resume_from_checkpoint=True)


def test_a_checkpoint_without_optimizer_state_resumes_only_when_allowed(feature_folder, tmp_path):
    model, train, clusters, args = _two_checkpoints(feature_folder, tmp_path, save_only_model=True)
    with pytest.raises(ValueError, match="lacks optimizer.pt, scheduler.pt"):
        S5VHTrainer(model, args, train, clusters.pseudo_labels).train(resume_from_checkpoint=True)
    trainer = S5VHTrainer(model, args, train, clusters.pseudo_labels, allow_inexact_resume=True)
    trainer.train(resume_from_checkpoint=True)
    assert trainer.state.global_step == 18


def test_a_batch_larger_than_the_data_set_is_refused_clearly(feature_folder, tmp_path):
    model, train, clusters, args = _setup(feature_folder, tmp_path, per_device_train_batch_size=128)
    with pytest.raises(ValueError, match=r"48 training videos make no full batch of 128 .* ≤ 48"):
        S5VHTrainer(model, args, train, clusters.pseudo_labels).train()
    model, train, clusters, args = _setup(feature_folder, tmp_path, per_device_train_batch_size=16,
                                          gradient_accumulation_steps=4, num_train_epochs=1)  # fmt: skip
    trainer = S5VHTrainer(model, args, train, clusters.pseudo_labels)  # 3 batches < 4 accumulation steps: it runs
    trainer.train()
    assert trainer.state.global_step == 1


def test_bad_setups_are_reported(feature_folder, tmp_path):
    model, train, clusters, args = _setup(feature_folder, tmp_path)
    with pytest.raises(ValueError, match="lie in \\[0, 4\\)"):
        PseudoLabelStore(np.array([0, 5, 1]), 4)
    with pytest.raises(ValueError, match="range"):
        S5VHTrainer(model, args, train, np.full(48, 7))
    with pytest.raises(ValueError, match="47 pseudo-labels for 48"):
        S5VHTrainer(model, args, train, clusters.pseudo_labels[:47])
    with pytest.raises(ValueError, match="missing column"):
        S5VHTrainer(model, args, train.remove_columns(["num_frames"]), clusters.pseudo_labels)
    with pytest.raises(ValueError, match="no complete checkpoint"):
        S5VHTrainer(model, args, train, clusters.pseudo_labels).train(resume_from_checkpoint=True)


def test_a_batch_of_one_video_is_a_clear_error(feature_folder, tmp_path):
    model, train, clusters, args = _setup(feature_folder, tmp_path, per_device_train_batch_size=1, max_steps=1)
    with pytest.raises(ValueError, match="contrastive loss needs two"):
        S5VHTrainer(model, args, train, clusters.pseudo_labels).train()


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_checkpoint(feature_folder, tmp_path):
    model, train, clusters, args = _setup(feature_folder, tmp_path, save_strategy="steps", save_steps=2, max_steps=6)
    trainer = S5VHTrainer(model, args, train, clusters.pseudo_labels)
    original = trainer.compute_loss
    calls = {"n": 0}

    def poisoned(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 4:
            with torch.no_grad():
                model.decoder.head.weight.fill_(float("nan"))
        return original(*a, **kw)

    trainer.compute_loss = poisoned
    with pytest.raises(FloatingPointError, match="non-finite SLG loss at step 3"):
        trainer.train()
    checkpoint = tmp_path / "run" / "checkpoint-2"
    assert (checkpoint / "model.safetensors").exists() and (checkpoint / PSEUDO_LABELS_FILE).exists()
    reloaded = S5VHModel.from_pretrained(checkpoint)
    assert torch.isfinite(reloaded.decoder.head.weight).all()
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    assert state["global_step"] == 2


def test_indexed_dataset_and_collator_feed_video_indices(feature_folder):
    train = load_feature_dataset(feature_folder, split="train")
    indexed = IndexedFeatureDataset(train)
    batch = TwoViewCollator(0.5, seed=0)([indexed[i] for i in (5, 2)])
    assert batch["video_index"].tolist() == [5, 2]


def test_epoch_evaluation_selects_the_best_model_on_a_validation_split(feature_folder, tmp_path):
    model, train, clusters, args = _setup(
        feature_folder, tmp_path, num_train_epochs=2, eval_strategy="epoch", save_strategy="epoch",
        metric_for_best_model="map@5", load_best_model_at_end=True,
    )  # fmt: skip
    validation = load_feature_dataset(feature_folder, split="validation")
    trainer = S5VHTrainer(
        model, args, train, clusters.pseudo_labels, eval_database=validation, eval_protocol="all_vs_all", eval_ks=(5,)
    )
    trainer.train()
    evaluations = [e for e in trainer.state.log_history if "eval_map@5" in e]
    assert len(evaluations) >= 2
    assert trainer.state.best_metric == max(e["eval_map@5"] for e in evaluations)
    assert trainer.state.best_model_checkpoint is not None


@pytest.mark.parametrize("train_mode", [False, True])
def test_pseudo_label_refresh_mode_follows_the_release_option(feature_folder, tmp_path, train_mode):
    model, train, clusters, args = _setup(feature_folder, tmp_path, num_train_epochs=2)
    model.config.refresh_in_train_mode = train_mode
    modes = []
    original = model.pseudo_label_logits

    def recording(*a, **kw):
        modes.append(model.training)
        return original(*a, **kw)

    model.pseudo_label_logits = recording
    S5VHTrainer(model, args, train, clusters.pseudo_labels, health_probe=False).train()
    assert modes and set(modes) == {train_mode}
    from s5vh_hf.model.configuration_s5vh import RELEASE_COMPATIBILITY

    assert RELEASE_COMPATIBILITY["refresh_in_train_mode"] is True
