import logging

import numpy as np
import pytest
import torch

from s5vh_hf import S5VHModel
from s5vh_hf.data.clustering import compute_semantic_clusters
from s5vh_hf.data.hash_centers import generate_hash_centers
from s5vh_hf.data.loading import load_feature_dataset
from s5vh_hf.data.synthetic import make_synthetic_videos
from s5vh_hf.data.writing import write_feature_split
from s5vh_hf.hub.sharing import render_model_card
from s5vh_hf.training.arguments import s5vh_training_arguments
from s5vh_hf.training.health import code_health, collapse_warnings
from s5vh_hf.training.trainer import S5VHTrainer

from .conftest import make_tiny_config


def test_code_health_of_balanced_distinct_codes():
    codes = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]])
    health = code_health(codes, centers=np.array([[1, 1], [-1, -1]]))
    assert health["distinct_codes"] == 4 and health["distinct_fraction"] == 1.0
    assert health["bit_imbalance"] == 0.0 and health["constant_bits"] == 0
    assert health["bit_entropy"] == pytest.approx(1.0)
    assert health["center_usage"] == 1.0
    assert collapse_warnings(health, num_videos=4) == []


def test_code_health_flags_a_collapse():
    codes = np.ones((10, 8))
    codes[:5, 0] = -1  # one live bit, seven constant ones: two distinct codes
    health = code_health(codes, centers=np.array([[1] * 8, [-1] * 8]))
    assert health["constant_bits"] == 7 and health["distinct_codes"] == 2
    assert health["bit_entropy"] == pytest.approx(1 / 8)
    assert health["center_usage"] == 0.5
    problems = collapse_warnings(health, num_videos=10, expected_groups=4)
    assert any("7 bits are constant" in p for p in problems)
    assert any("only 2 distinct codes" in p for p in problems)


def test_code_health_refuses_empty_codes():
    with pytest.raises(ValueError, match="non-empty"):
        code_health(np.zeros((0, 8)))


@pytest.fixture(scope="module")
def train_split(tmp_path_factory):
    folder = tmp_path_factory.mktemp("health-features")
    data = make_synthetic_videos(num_videos=32, num_classes=4, feature_dim=24, num_frames=8, seed=0)
    write_feature_split(folder, "train", data.videos(), data.video_ids, [[int(x)] for x in data.labels])
    return load_feature_dataset(folder, split="train")


def _trainer(train_split, tmp_path, **kwargs):
    config = make_tiny_config(num_hash_centers=4)
    model = S5VHModel(config)
    clusters = compute_semantic_clusters(train_split, n_clusters=4, pca_dim=8, seed=0)
    model.set_hash_centers(generate_hash_centers(clusters.semantic_centers, 16, seed=0).centers)
    args = s5vh_training_arguments(
        config, str(tmp_path / "run"), num_train_epochs=2, per_device_train_batch_size=8, save_strategy="no",
        use_cpu=True, report_to="none",
    )  # fmt: skip
    return S5VHTrainer(model, args, train_split, clusters.pseudo_labels, **kwargs)


def test_trainer_checks_health_every_epoch_logs_it_and_puts_it_in_the_card(train_split, tmp_path):
    trainer = _trainer(train_split, tmp_path)
    trainer.train()
    assert [round(h["epoch"]) for h in trainer.health_history] == [1, 2]
    logged = [entry for entry in trainer.state.log_history if "health/distinct_fraction" in entry]
    assert len(logged) == 2
    assert {"health/bit_entropy", "health/constant_bits", "health/center_usage"} <= set(logged[-1])
    final = trainer.model.training_health
    assert final["probe_size"] == 32 and 1 <= final["distinct_codes"] <= 32
    card = str(render_model_card(trainer.model))
    assert "## Training health" in card and f"{final['distinct_codes']:.0f} distinct codes" in card


def test_trainer_warns_when_codes_collapse(train_split, tmp_path, monkeypatch, caplog):
    trainer = _trainer(train_split, tmp_path)
    model = trainer.model
    monkeypatch.setattr(model, "encode", lambda videos, **kwargs: np.ones((len(videos), 16), dtype=np.int8))
    with caplog.at_level(logging.WARNING, logger="s5vh_hf.training.trainer"):
        trainer.train()
    warnings = [r.getMessage() for r in caplog.records if "collapsed" in r.getMessage()]
    assert warnings and "16 bits are constant" in warnings[0] and "what to try" in warnings[0]
    assert model.training_health["warnings"]
    assert "the codes collapsed during training" in str(render_model_card(model))


def test_health_monitor_can_be_turned_off(train_split, tmp_path):
    trainer = _trainer(train_split, tmp_path, health_probe=False)
    trainer.train()
    assert trainer.health_history == []


def test_trainer_takes_feature_statistics_from_the_training_set_unless_set(train_split, tmp_path):
    from s5vh_hf.data.clustering import frame_feature_statistics

    trainer = _trainer(train_split, tmp_path, health_probe=False)
    mean, std = frame_feature_statistics(train_split)
    assert torch.allclose(trainer.model.feature_mean, torch.from_numpy(mean))
    assert torch.allclose(trainer.model.feature_scale, torch.from_numpy(1 / std))
    config = make_tiny_config(num_hash_centers=4)
    model = S5VHModel(config)
    model.set_feature_statistics(np.full(24, 3.0), np.full(24, 2.0))
    S5VHTrainer(model, trainer.args, train_split, np.zeros(32, dtype=np.int64), health_probe=False)
    assert torch.all(model.feature_mean == 3.0) and torch.all(model.feature_scale == 0.5)
