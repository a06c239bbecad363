"""``s5vh train`` on data that is not shaped like a paper preset, and the CLI's guard rails."""

import json
import logging
from pathlib import Path

import pytest

from s5vh_hf.cli.main import main
from s5vh_hf.data.synthetic import make_order_dependent_videos
from s5vh_hf.data.writing import write_feature_split

from .conftest import make_tiny_config

SMALL = ["--set", "hidden_size=16", "--set", "decoder_hidden_size=16", "--set", "code_length=16"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("own-data")
    data = make_order_dependent_videos(num_videos=48, num_base_classes=2, num_frames=8, feature_dim=20, seed=0)
    labels = [[int(x)] for x in data.labels]
    write_feature_split(folder, "train", data.videos()[:32], data.video_ids[:32], labels[:32])
    write_feature_split(folder, "database", data.videos()[32:], data.video_ids[32:], labels[32:])
    return str(folder)


def test_train_a_preset_on_features_of_another_dimension_with_overrides(dataset, tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", dataset, "--preset", "ucf101-32", "--model-size", "mini", "--clusters", "4",
            "--warmup-epochs", "1", "--mask-ratio", "0.25", "--backbone", "gru", *SMALL,
            "--set", "contrastive_weight=0.5", "--epochs", "3", "--batch-size", "8", "--out", str(run)]  # fmt: skip
    assert main(argv) == 0
    assert "using D = 20 from the data set (preset ucf101-32 was made for 4096)" in capsys.readouterr().out
    config = json.loads((run / "config.json").read_text())
    assert config["feature_dim"] == 20 and config["num_hash_centers"] == 4 and config["encoder_depth"] == 1
    assert config["warmup_epochs"] == 1 and config["mask_ratio"] == 0.25 and config["temporal_mixer"] == "gru"
    assert config["code_length"] == 16 and config["contrastive_weight"] == 0.5
    assert len(list(run.glob("checkpoint-*"))) == 2  # three epochs saved, two kept (--save-total-limit 2)


def test_model_size_applies_to_a_config_file(dataset, tmp_path):
    config = tmp_path / "config"
    make_tiny_config(feature_dim=20, num_hash_centers=4, encoder_depth=3).save_pretrained(config)
    run = tmp_path / "run"
    argv = ["train", dataset, "--config", str(config), "--model-size", "mini", "--max-steps", "1", "--batch-size", "8",
            "--out", str(run)]  # fmt: skip
    assert main(argv) == 0
    assert json.loads((run / "config.json").read_text())["encoder_depth"] == 1


def test_a_config_of_another_dimension_is_refused_before_clustering(dataset, tmp_path, capsys):
    config = tmp_path / "config"
    make_tiny_config(feature_dim=64).save_pretrained(config)
    assert main(["train", dataset, "--config", str(config), "--out", str(tmp_path / "run")]) == 2
    captured = capsys.readouterr()
    assert "expects D = 64 but the data set has D = 20" in captured.err and "clustering" not in captured.out


def test_bad_overrides_and_mismatched_centers_are_one_line_errors(dataset, tmp_path, capsys):
    out = ["--out", str(tmp_path / "run")]
    assert main(["train", dataset, "--preset", "ucf101-16", "--set", "no_such_field=1", *out]) == 2
    assert "unknown config field(s) ['no_such_field']" in capsys.readouterr().err
    assert main(["train", dataset, "--preset", "ucf101-16", "--set", "mask_ratio", *out]) == 2
    assert "--set expects key=value" in capsys.readouterr().err
    centers = tmp_path / "c"
    assert (
        main(["preprocess", dataset, "--bits", "16", "--clusters", "4", "--pca-dim", "8", "--out", str(centers)]) == 0
    )
    argv = ["train", dataset, "--preset", "ucf101-16", "--centers", str(centers / "hash_centers_16.safetensors"), *out]
    assert main(argv) == 2
    assert "holds 4 centers of 16 bits but the config asks for K = 101, L = 16" in capsys.readouterr().err


def test_training_shorter_than_the_warm_up_warns(dataset, tmp_path, caplog):
    argv = ["train", dataset, "--preset", "ucf101-16", "--model-size", "mini", "--clusters", "4", *SMALL,
            "--epochs", "1", "--batch-size", "8", "--out", str(tmp_path / "run")]  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="s5vh_hf.training.trainer"):
        assert main(argv) == 0
    assert any("refreshed from warm-up epoch 50" in r.getMessage() for r in caplog.records)


def test_evaluate_caps_k_at_the_database_size(dataset, tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", dataset, "--preset", "ucf101-16", "--model-size", "mini", "--clusters", "4", *SMALL,
            "--max-steps", "1", "--batch-size", "8", "--out", str(run)]  # fmt: skip
    assert main(argv) == 0
    report = tmp_path / "report.json"
    assert main(["evaluate", str(run), dataset, "--protocol", "all_vs_all", "--json", str(report)]) == 0
    assert "the database has 16 videos: mAP@K for K in (5,)" in capsys.readouterr().out
    assert list(json.loads(Path(report).read_text())["map_at_k"]) == ["5"]


def test_help_answers_without_importing_torch():
    import subprocess
    import sys

    code = "import sys; from s5vh_hf.cli.main import build_parser; build_parser(); print(sorted({'torch', 'transformers', 'datasets'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_training_arguments_pass_through_and_drop_last_is_a_switch(tmp_path, capsys):
    folder = tmp_path / "odd"
    data = make_order_dependent_videos(num_videos=17, num_base_classes=2, num_frames=6, feature_dim=20, seed=1)
    write_feature_split(folder, "train", data.videos(), data.video_ids)
    base = ["train", str(folder), "--preset", "ucf101-32", "--model-size", "mini", "--clusters", "2", *SMALL,
            "--batch-size", "8", "--epochs", "1"]  # fmt: skip
    # 17 videos in batches of 8 leave a batch of one: refused with the switch to use.
    assert main([*base, "--no-drop-last", "--out", str(tmp_path / "a")]) == 2
    assert "s5vh train --drop-last" in capsys.readouterr().err
    run = tmp_path / "b"
    assert main([*base, "--training-arg", "save_strategy=no", "--out", str(run)]) == 0
    assert not list(run.glob("checkpoint-*"))  # save_strategy=no reached the Trainer (the CLI saves every epoch)
    assert main([*base, "--training-arg", "no_such_option=1", "--out", str(tmp_path / "c")]) == 2
    assert "TrainingArguments has no such field" in capsys.readouterr().err


def test_training_defaults_follow_the_trainers_device_choice_and_skip_unused_parameter_search():
    from s5vh_hf.training.arguments import s5vh_training_arguments
    from s5vh_hf.training.launch import has_accelerator

    args = s5vh_training_arguments(make_tiny_config(), "unused")
    assert args.ddp_find_unused_parameters is False
    assert args.use_cpu is (not has_accelerator())


def test_a_single_process_launch_that_asked_for_two_says_so(monkeypatch):
    from s5vh_hf.training.launch import launch_mismatch

    for name in ("WORLD_SIZE", "PMI_SIZE", "MASTER_ADDR", "ACCELERATE_USE_CPU", "ACCELERATE_MIXED_PRECISION"):
        monkeypatch.delenv(name, raising=False)
    assert launch_mismatch() is None  # plain python
    monkeypatch.setenv("ACCELERATE_USE_CPU", "True")
    assert launch_mismatch() is None  # accelerate launch, one process asked
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")  # what the simple launcher sets for --num_processes 2
    assert "--multi_gpu --num_processes" in launch_mismatch()
    monkeypatch.setenv("WORLD_SIZE", "2")  # torchrun really started two
    assert launch_mismatch() is None
