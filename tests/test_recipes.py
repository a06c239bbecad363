"""The workflows the command line calls are library functions, tested here: the training run's config and centers,
and indexing a collection."""

import numpy as np
import pytest

from s5vh_hf.data.hash_centers import save_hash_centers
from s5vh_hf.data.loading import load_feature_dataset
from s5vh_hf.data.writing import write_feature_split
from s5vh_hf.recipes.indexing import index_collection
from s5vh_hf.recipes.training_run import TrainingRun, centers_for_training, train_on_features, training_config
from s5vh_hf.video.index import VideoIndex

from .conftest import make_tiny_config


@pytest.fixture
def features(tmp_path):
    rng = np.random.default_rng(0)
    videos = [rng.standard_normal((5, 24)).astype(np.float32) for _ in range(12)]
    write_feature_split(tmp_path / "ds", "train", videos, [f"v{i}" for i in range(12)], [[i % 3] for i in range(12)])
    write_feature_split(tmp_path / "ds", "database", videos, [f"v{i}" for i in range(12)])
    return tmp_path / "ds"


def test_the_config_takes_d_from_the_data_and_checks_overrides(tmp_path, caplog):
    run = TrainingRun(dataset="x", out=tmp_path, preset="ucf101-16", model_size="mini",
                      config_overrides={"num_hash_centers": 3, "hidden_size": 16})  # fmt: skip
    with caplog.at_level("INFO", logger="s5vh_hf.recipes"):
        config = training_config(run, feature_dim=24)
    assert (config.feature_dim, config.num_hash_centers, config.hidden_size, config.code_length) == (24, 3, 16, 16)
    assert "using D = 24 from the data set" in caplog.text
    with pytest.raises(ValueError, match=r"unknown config field\(s\) \['hiden_size'\]"):
        training_config(TrainingRun(dataset="x", out=tmp_path, config_overrides={"hiden_size": 8}), 24)
    make_tiny_config(feature_dim=32).save_pretrained(tmp_path / "saved")
    with pytest.raises(ValueError, match="expects D = 32 but the data set has D = 24"):
        training_config(TrainingRun(dataset="x", out=tmp_path, config=tmp_path / "saved"), 24)


def test_centers_from_a_file_must_match_the_config_and_the_split(features, tmp_path):
    train = load_feature_dataset(features, split="train")
    config = make_tiny_config(num_hash_centers=3)
    centers = np.sign(np.random.default_rng(0).standard_normal((3, 16))).astype(np.int8)
    save_hash_centers(tmp_path / "c.safetensors", centers, np.arange(12) % 3)
    got, labels = centers_for_training(TrainingRun(dataset=features, out=tmp_path, centers=tmp_path / "c.safetensors"),
                                       train, config)  # fmt: skip
    assert np.array_equal(got, centers) and len(labels) == 12
    save_hash_centers(tmp_path / "short.safetensors", centers, np.arange(5) % 3)
    with pytest.raises(ValueError, match="pseudo-labels for 5 videos, the split has 12"):
        centers_for_training(TrainingRun(dataset=features, out=tmp_path, centers=tmp_path / "short.safetensors"),
                             train, config)  # fmt: skip
    with pytest.raises(ValueError, match="K = 4, L = 16"):
        centers_for_training(TrainingRun(dataset=features, out=tmp_path, centers=tmp_path / "c.safetensors"),
                             train, make_tiny_config(num_hash_centers=4))  # fmt: skip


def test_a_training_run_trains_and_saves(features, tmp_path):
    run = TrainingRun(dataset=features, out=tmp_path / "run", preset="ucf101-16", model_size="mini",
                      config_overrides={"num_hash_centers": 3, "hidden_size": 16, "decoder_hidden_size": 16},
                      training_overrides={"num_train_epochs": 1, "per_device_train_batch_size": 4,
                                          "report_to": "none"})  # fmt: skip
    trainer = train_on_features(run)
    assert trainer.state.global_step > 0 and (tmp_path / "run" / "model.safetensors").is_file()
    with pytest.raises(ValueError, match="--training-arg num_epochs: TrainingArguments has no such field"):
        train_on_features(TrainingRun(dataset=features, out=tmp_path / "x", training_overrides={"num_epochs": 1}))


def test_index_collection_from_a_feature_dataset_or_refused_videos_without_extractor(features, tmp_path, tiny_model):
    folder = index_collection(tiny_model, features, tmp_path / "index")
    index = VideoIndex(folder)
    assert index.video_ids == [f"v{i}" for i in range(12)]
    (tmp_path / "videos").mkdir()
    with pytest.raises(ValueError, match="needs --extractor"):
        index_collection(tiny_model, tmp_path / "videos", tmp_path / "index2")
