"""Bad values refused before any work: configs, counts, batch sizes, codes, non-finite losses."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .harness import case, cli, expect_clear, expect_raise, tiny_model, videos, write_split


@case("validate")
def code_length_not_a_multiple_of_8(tmp: Path):
    from s5vh_hf import S5VHConfig

    return expect_raise(lambda: S5VHConfig(code_length=12), ValueError, "code_length", "one of (8, 16, 32, 64, 128)")


@case("validate")
def non_positive_center_temperature(tmp: Path):
    from s5vh_hf import S5VHConfig

    return expect_raise(lambda: S5VHConfig(center_temperature=0.0), ValueError, "center_temperature")


@case("validate")
def mask_ratio_given_as_text(tmp: Path):
    from s5vh_hf import S5VHConfig

    return expect_raise(lambda: S5VHConfig(mask_ratio="0.5"), ValueError, "mask_ratio")


@case("validate")
def zero_epochs(tmp: Path):
    write_split(tmp / "ds", "train", 8)
    status, err = cli("train", str(tmp / "ds"), "--preset", "ucf101-16", "--model-size", "mini", "--clusters",
                      "2", "--epochs", "0", "--out", str(tmp / "run"))  # fmt: skip
    outcome = expect_clear(status, err, "--epochs")
    return ("silent", "saved an untrained model") if (tmp / "run" / "model.safetensors").exists() else outcome


@case("validate")
def batch_size_flags(tmp: Path):
    model = tiny_model()
    data = videos(3)
    outcome = expect_raise(lambda: model.encode(data, batch_size=True), ValueError, "batch_size")
    if outcome[0] != "clear":
        return outcome
    model.encode(data, batch_size=np.int64(2))  # a numpy integer is a fine batch size
    return outcome


@case("validate")
def zero_read_chunk(tmp: Path):
    import h5py

    from s5vh_hf.data.import_hdf5 import import_h5_features

    with h5py.File(tmp / "f.h5", "w") as handle:
        handle["feats"] = np.zeros((2, 3, 24), np.float32)
    return expect_raise(lambda: import_h5_features(tmp / "f.h5", tmp / "ds", "train", read_chunk=0), ValueError,
                        "read_chunk")  # fmt: skip


@case("validate")
def query_codes_of_another_width(tmp: Path):
    from s5vh_hf import HammingIndex

    index = HammingIndex.from_codes(np.zeros((4, 4), np.uint8))
    return expect_raise(lambda: index.search(np.zeros((1, 2), np.uint8), 1), ValueError, "bytes")


@case("validate")
def non_finite_loss(tmp: Path):
    write_split(tmp / "ds", "train", 16)
    status, err = cli("train", str(tmp / "ds"), "--preset", "ucf101-16", "--model-size", "mini", "--clusters", "2",
                      "--set", "hidden_size=16", "--set", "decoder_hidden_size=16", "--learning-rate", "1e30",
                      "--epochs", "3", "--batch-size", "8", "--out", str(tmp / "run"))  # fmt: skip
    if status == 0:
        return "intact", "the run stayed finite (nothing to refuse)"
    return expect_clear(status, err, "non-finite")


@case("validate")
def features_of_absurd_scale(tmp: Path):
    from s5vh_hf import S5VHModel, S5VHTrainer, s5vh_training_arguments
    from s5vh_hf.data.loading import load_feature_dataset

    write_split(tmp / "ds", "train", 16, scale=1e6)
    train = load_feature_dataset(tmp / "ds", split="train")
    model = S5VHModel(tiny_model(feature_normalization="none").config)
    args = s5vh_training_arguments(model.config, str(tmp / "run"), max_steps=1, report_to="none")
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("s5vh_hf.training.trainer").addHandler(handler)
    try:
        S5VHTrainer(model, args, train, np.arange(16) % 3, health_probe=False)
    finally:
        logging.getLogger("s5vh_hf.training.trainer").removeHandler(handler)
    warned = [r.getMessage() for r in records if "RMS value" in r.getMessage()]
    return ("clear", warned[0][:160]) if warned else ("silent", "no warning about the feature scale")


@case("validate")
def preset_batch_on_a_small_data_set(tmp: Path):
    from s5vh_hf import S5VHConfig, S5VHModel, S5VHTrainer, s5vh_training_arguments
    from s5vh_hf.data.loading import load_feature_dataset

    write_split(tmp / "ds", "train", 40)
    config = S5VHConfig.from_preset("ucf101-32", model_size="mini", feature_dim=24, hidden_size=16,
                                    decoder_hidden_size=16, num_hash_centers=3)  # fmt: skip
    args = s5vh_training_arguments(config, str(tmp / "run"), per_device_train_batch_size=128, num_train_epochs=80)
    train = load_feature_dataset(tmp / "ds", split="train")
    trainer = S5VHTrainer(S5VHModel(config), args, train, np.arange(40) % 3, health_probe=False)
    return expect_raise(trainer.train, ValueError,
                        "40 training videos make no full batch of 128", "num_train_examples=40")  # fmt: skip
