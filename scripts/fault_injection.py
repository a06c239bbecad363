"""Fault injection over every stage that reads or writes user data: corrupt and hostile files, bad values,
kill -9 at the worst moments, concurrent writers, huge inputs.

    python scripts/fault_injection.py            # every case (a few minutes)
    python scripts/fault_injection.py --fast     # the cases CI runs (about a minute)
    python scripts/fault_injection.py --report report.md

Each case ends in one of:
    clear    the fault was refused with a clear one-line error (exit 2 for the CLI) naming the file, video or field
    intact   the fault happened (kill, concurrency, rerun) and the data is whole and belongs to its inputs
    crash    a traceback, a signal, or an error that names nothing
    silent   bad input accepted without a word
    lost     data torn, stale, mixed or gone
The script exits 1 unless crash, silent and lost are all zero. Extend it with every new writer or loader.

A full disk is a small tmpfs mounted for the case where this process may mount (root), else a file-size limit
(``S5VH_FAULT_NO_MOUNT=1`` forces the latter).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUTCOMES = ("clear", "intact", "crash", "silent", "lost")
TINY = dict(feature_dim=24, hidden_size=16, encoder_depth=1, decoder_hidden_size=16, code_length=16,
            num_hash_centers=3, drop_path_rate=0.0)  # fmt: skip


@dataclass
class Case:
    name: str
    stage: str
    run: Callable[[Path], tuple[str, str]]
    fast: bool = True


CASES: list[Case] = []


def case(stage: str, fast: bool = True):
    def register(function):
        CASES.append(Case(function.__name__.replace("_", " "), stage, function, fast))
        return function

    return register


# ----------------------------------------------------------------------------------------------------- helpers


def cli(*argv: str) -> tuple[int, str]:
    """Run ``s5vh`` in this process; returns (exit status, stderr). An escaping exception is a crash."""
    from s5vh_hf.cli.main import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        status = main(list(argv))
    return status, err.getvalue()


def cli_process(*argv: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "s5vh_hf.cli", *argv], capture_output=True, text=True,
                          env=full_env, timeout=timeout, cwd=ROOT)  # fmt: skip


def python_process(code: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=full_env, timeout=timeout, cwd=ROOT)  # fmt: skip


def expect_clear(status: int, stderr: str, *words: str) -> tuple[str, str]:
    """A CLI refusal: exit 2, one ``s5vh …: error:`` line that contains ``words``."""
    lines = [line for line in stderr.strip().splitlines() if ": error: " in line]
    if status == 0:
        return "silent", "exit 0"
    if status != 2 or not lines or "Traceback" in stderr:
        return "crash", (stderr.strip().splitlines() or [f"exit {status}"])[-1][:160]
    message = lines[-1]
    message = message[message.index("s5vh ") :] if "s5vh " in message else message  # drop a progress bar's text
    missing = [w for w in words if w.lower() not in message.lower()]
    return ("clear", message[:160]) if not missing else ("crash", f"message lacks {missing}: {message[:120]}")


def expect_raise(function: Callable[[], object], error: type, *words: str) -> tuple[str, str]:
    """A library refusal: ``error`` with ``words`` in its message."""
    try:
        function()
    except error as raised:
        message = str(raised).splitlines()[0] if str(raised) else type(raised).__name__
        missing = [w for w in words if w.lower() not in message.lower()]
        return ("clear", message[:160]) if not missing else ("crash", f"message lacks {missing}: {message[:120]}")
    except Exception as raised:  # noqa: BLE001
        return "crash", f"{type(raised).__name__}: {str(raised)[:140]}"
    return "silent", "accepted"


def tiny_model(seed: int = 0, **overrides):
    import torch

    from s5vh_hf import S5VHConfig, S5VHModel

    torch.manual_seed(seed)
    return S5VHModel(S5VHConfig(**{**TINY, **overrides}))


def videos(count: int, seed: int = 0, frames: int = 6, dim: int = 24, scale: float = 1.0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(scale * rng.standard_normal((frames, dim))).astype(np.float32) for _ in range(count)]


def write_split(folder: Path, split: str, count: int, seed: int = 0, shard_size: int = 2048, scale: float = 1.0):
    from s5vh_hf.data.writing import write_feature_split

    data = videos(count, seed, scale=scale)
    ids = [f"{split}-{seed}-{i}" for i in range(count)]
    write_feature_split(folder, split, data, ids, [[i % 3] for i in range(count)], shard_size=shard_size,
                        dtype="float32")  # fmt: skip
    return data, ids


def split_contents(folder: Path, split: str) -> tuple[list[str], np.ndarray]:
    from s5vh_hf.data.loading import load_feature_dataset

    loaded = load_feature_dataset(folder, split=split)
    rows = loaded.with_format("numpy", columns=["features"])
    return loaded["video_id"], np.stack([rows[i]["features"] for i in range(len(loaded))])


def saved_model(folder: Path, seed: int = 0, **overrides) -> Path:
    tiny_model(seed, **overrides).save_pretrained(folder)
    return folder


# ------------------------------------------------------------------------------------------------ model files


@case("load model")
def empty_weights_file(tmp: Path):
    model = saved_model(tmp / "m")
    (model / "model.safetensors").write_bytes(b"")
    write_split(tmp / "ds", "database", 4)
    return expect_clear(*cli("encode", str(model), str(tmp / "ds"), "--out", str(tmp / "c")), "safetensors")


@case("load model")
def truncated_weights_file(tmp: Path):
    model = saved_model(tmp / "m")
    data = (model / "model.safetensors").read_bytes()
    (model / "model.safetensors").write_bytes(data[: len(data) // 2])
    write_split(tmp / "ds", "database", 4)
    return expect_clear(*cli("encode", str(model), str(tmp / "ds"), "--out", str(tmp / "c")), "safetensors")


@case("load model")
def config_that_does_not_match_the_weights(tmp: Path):
    model = saved_model(tmp / "m")
    config = json.loads((model / "config.json").read_text())
    config["hidden_size"] = 32
    (model / "config.json").write_text(json.dumps(config))
    write_split(tmp / "ds", "database", 4)
    return expect_clear(*cli("encode", str(model), str(tmp / "ds"), "--out", str(tmp / "c")), "config.json")


@case("load model")
def config_with_more_blocks_than_the_weights(tmp: Path):
    model = saved_model(tmp / "m")
    config = json.loads((model / "config.json").read_text())
    config["encoder_depth"] = 2  # the second block would start from random weights
    (model / "config.json").write_text(json.dumps(config))
    write_split(tmp / "ds", "database", 4)
    return expect_clear(*cli("encode", str(model), str(tmp / "ds"), "--out", str(tmp / "c")), "lacks tensors")


@case("load model")
def truncated_config_json(tmp: Path):
    model = saved_model(tmp / "m")
    text = (model / "config.json").read_text()
    (model / "config.json").write_text(text[: len(text) // 2])
    write_split(tmp / "ds", "database", 4)
    return expect_clear(*cli("encode", str(model), str(tmp / "ds"), "--out", str(tmp / "c")))


@case("convert checkpoint")
def pickle_with_code_in_a_pth(tmp: Path):
    import pickle

    marker = tmp / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (tmp / "evil.pth").write_bytes(pickle.dumps({"state_dict": Payload()}))
    outcome = expect_clear(*cli("convert-checkpoint", str(tmp / "evil.pth"), "--preset", "ucf101-16",
                                "--out", str(tmp / "out")))  # fmt: skip
    return ("lost", "the pickle ran code") if marker.exists() else outcome


# ------------------------------------------------------------------------------------------------------- data


@case("load data")
def empty_split(tmp: Path):
    import pyarrow.parquet as pq

    from s5vh_hf.data.dataset_card import write_dataset_card
    from s5vh_hf.data.schema import feature_dataset_features

    write_split(tmp / "ds", "train", 4)
    pq.write_table(feature_dataset_features(24).arrow_schema.empty_table(),
                   tmp / "ds" / "data" / "query-00000-of-00001.parquet")  # fmt: skip
    write_dataset_card(tmp / "ds")
    return expect_clear(*cli("encode", str(saved_model(tmp / "m")), str(tmp / "ds"), "--split", "query",
                             "--out", str(tmp / "c")), "no videos")  # fmt: skip


@case("load data")
def row_shape_disagrees_with_its_column(tmp: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    write_split(tmp / "ds", "database", 6)
    shard = tmp / "ds" / "data" / "database-00000-of-00001.parquet"
    table = pq.read_table(shard)
    rows = table.to_pylist()
    rows[2]["features"] = [[0.0] * 20 for _ in range(6)]
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), shard)
    return expect_clear(*cli("encode", str(saved_model(tmp / "m")), str(tmp / "ds"), "--out", str(tmp / "c")),
                        "database-0-2")  # fmt: skip


@case("load data")
def truncated_parquet_shard(tmp: Path):
    write_split(tmp / "ds", "database", 6)
    shard = tmp / "ds" / "data" / "database-00000-of-00001.parquet"
    shard.write_bytes(shard.read_bytes()[:200])
    return expect_clear(*cli("encode", str(saved_model(tmp / "m")), str(tmp / "ds"), "--out", str(tmp / "c")),
                        "parquet")  # fmt: skip


@case("load data")
def shard_missing_from_a_split(tmp: Path):
    write_split(tmp / "ds", "database", 9, shard_size=3)
    (tmp / "ds" / "data" / "database-00001-of-00003.parquet").unlink()
    return expect_clear(*cli("encode", str(saved_model(tmp / "m")), str(tmp / "ds"), "--out", str(tmp / "c")),
                        "incomplete")  # fmt: skip


@case("load data")
def shards_of_two_conversions_mixed(tmp: Path):
    write_split(tmp / "ds", "database", 9, shard_size=3)
    kept = (tmp / "ds" / "data" / "database-00002-of-00003.parquet").read_bytes()
    write_split(tmp / "ds", "database", 8, seed=1, shard_size=4)
    (tmp / "ds" / "data" / "database-00002-of-00003.parquet").write_bytes(kept)  # a leftover of the old split
    return expect_clear(*cli("encode", str(saved_model(tmp / "m")), str(tmp / "ds"), "--out", str(tmp / "c")),
                        "mixes")  # fmt: skip


@case("write data")
def nan_video_in_write_feature_split(tmp: Path):
    from s5vh_hf.data.writing import write_feature_split

    data = videos(4)
    data[2][3, 5] = np.nan
    outcome = expect_raise(lambda: write_feature_split(tmp / "ds", "train", data, list("abcd")), ValueError, "'c'")
    return ("lost", "a partial split was left") if (tmp / "ds" / "data").glob("*.parquet") and any(
        (tmp / "ds" / "data").glob("*.parquet")) else outcome  # fmt: skip


@case("write data")
def float16_overflow_in_convert_features(tmp: Path):
    import h5py

    feats = np.random.default_rng(0).standard_normal((5, 4, 24)).astype(np.float32)
    feats[3] *= 1e6
    with h5py.File(tmp / "f.h5", "w") as handle:
        handle["feats"] = feats
    return expect_clear(*cli("convert-features", str(tmp / "f.h5"), "--split", "train", "--out", str(tmp / "ds")),
                        "train-000003", "float32")  # fmt: skip


@case("write data")
def nan_in_an_hdf5_file(tmp: Path):
    import h5py

    feats = np.random.default_rng(0).standard_normal((5, 4, 24)).astype(np.float32)
    feats[1, 2, 3] = np.nan
    with h5py.File(tmp / "f.h5", "w") as handle:
        handle["feats"] = feats
    return expect_clear(*cli("convert-features", str(tmp / "f.h5"), "--split", "train", "--out", str(tmp / "ds")),
                        "train-000001")  # fmt: skip


@case("write data")
def truncated_hdf5_file(tmp: Path):
    import h5py

    with h5py.File(tmp / "f.h5", "w") as handle:
        handle["feats"] = np.random.default_rng(0).standard_normal((50, 4, 24)).astype(np.float32)
    data = (tmp / "f.h5").read_bytes()
    (tmp / "f.h5").write_bytes(data[: len(data) // 2])
    return expect_clear(*cli("convert-features", str(tmp / "f.h5"), "--split", "train", "--out", str(tmp / "ds")),
                        "f.h5")  # fmt: skip


@case("write data")
def corrupt_mat_labels(tmp: Path):
    import h5py

    with h5py.File(tmp / "f.h5", "w") as handle:
        handle["feats"] = np.random.default_rng(0).standard_normal((5, 4, 24)).astype(np.float32)
    for seed in range(20):  # several corruptions: scipy fails in different places (and exception types)
        noise = np.random.default_rng(seed).integers(0, 256, 300, dtype=np.uint8).tobytes()
        (tmp / "labels.mat").write_bytes(b"MATLAB 5.0 MAT-file" + noise)
        outcome = expect_clear(*cli("convert-features", str(tmp / "f.h5"), "--split", "train", "--labels",
                                    str(tmp / "labels.mat"), "--out", str(tmp / "ds")), "labels.mat")  # fmt: skip
        if outcome[0] != "clear":
            return outcome
    (tmp / "labels.mat").write_bytes(b"MATLAB 5.0 MAT-file" + os.urandom(300))
    return expect_clear(*cli("convert-features", str(tmp / "f.h5"), "--split", "train", "--labels",
                             str(tmp / "labels.mat"), "--out", str(tmp / "ds")), "labels.mat")  # fmt: skip


@case("write data")
def hostile_video_ids_and_split_names(tmp: Path):
    from s5vh_hf.data.writing import write_feature_split

    outcome = expect_raise(lambda: write_feature_split(tmp / "ds", "../escape", videos(2), ["a", "b"]),
                           ValueError, "split")  # fmt: skip
    if outcome[0] != "clear":
        return outcome
    ids = ["../../etc/passwd", "x" * 10_000]  # ids are data, never paths
    write_feature_split(tmp / "ds", "train", videos(2), ids)
    got, _ = split_contents(tmp / "ds", "train")
    return ("intact", "ids stored verbatim, split names checked") if got == ids else ("lost", f"ids {got!r:.80}")


# ------------------------------------------------------------------------------------------------- validation


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


# ----------------------------------------------------------------------------------- kills and concurrency


def _kill_during_split_rewrite(tmp: Path, point: str) -> tuple[str, str]:
    old_data, old_ids = write_split(tmp / "ds", "train", 9, seed=0, shard_size=3)
    result = python_process(
        f"""
        import numpy as np, sys
        sys.path.insert(0, {str(ROOT / "scripts")!r})
        from fault_injection import write_split
        from pathlib import Path
        write_split(Path({str(tmp / "ds")!r}), "train", 8, seed=1, shard_size=4)
        """,
        env={"S5VH_FAULT_POINT": point},
    )
    if result.returncode != -signal.SIGKILL:
        return "crash", f"the writer was not killed at {point}: exit {result.returncode} {result.stderr[-200:]}"
    new_data = videos(8, 1)
    new_ids = [f"train-1-{i}" for i in range(8)]
    try:
        ids, features = split_contents(tmp / "ds", "train")
    except Exception as error:  # noqa: BLE001
        return "lost", f"the split no longer loads: {str(error)[:120]}"
    expected = (old_ids, old_data) if point.startswith("staged") else (new_ids, new_data)
    if ids == expected[0] and np.allclose(features, np.stack(expected[1]), atol=1e-6):
        if any(p.name.startswith(".commit") for p in (tmp / "ds").iterdir()):
            return "lost", "a journal was left behind after loading"
        write_split(tmp / "ds", "query", 2)  # a dead writer's staging folder is the next writer's to remove
        leftovers = [p.name for p in (tmp / "ds").iterdir() if p.name.startswith((".staging", ".commit"))]
        if leftovers:
            return "lost", f"leftovers {leftovers}"
        return "intact", ("old split" if point.startswith("staged") else "new split, completed on load") + " whole"
    return "lost", f"the split holds {len(ids)} videos, a mix of two writes"


@case("kill -9")
def kill_before_a_split_rewrite_is_decided(tmp: Path):
    return _kill_during_split_rewrite(tmp, "staged:split.train")


@case("kill -9")
def kill_after_a_split_rewrite_is_decided(tmp: Path):
    return _kill_during_split_rewrite(tmp, "journal:split.train")


def _kill_during_model_save(tmp: Path, point: str) -> tuple[str, str]:
    from s5vh_hf import S5VHModel

    saved_model(tmp / "m", seed=0)
    result = python_process(
        f"""
        import sys
        sys.path.insert(0, {str(ROOT / "scripts")!r})
        from fault_injection import saved_model
        from pathlib import Path
        saved_model(Path({str(tmp / "m")!r}), seed=1)
        """,
        env={"S5VH_FAULT_POINT": point},
    )
    if result.returncode != -signal.SIGKILL:
        return "crash", f"the writer was not killed at {point}: exit {result.returncode} {result.stderr[-200:]}"
    probe = videos(5, 3)
    try:
        loaded = S5VHModel.from_pretrained(tmp / "m").encode(probe)
    except Exception as error:  # noqa: BLE001
        return "lost", f"the model no longer loads: {str(error)[:120]}"
    expected = tiny_model(0 if point.startswith("staged") else 1).encode(probe)
    if np.array_equal(loaded, expected):
        return "intact", ("old model" if point.startswith("staged") else "new model, completed on load") + " whole"
    return "lost", "the folder holds a mix of two models"


@case("kill -9")
def kill_before_save_pretrained_is_decided(tmp: Path):
    return _kill_during_model_save(tmp, "staged:model")


@case("kill -9")
def kill_after_save_pretrained_is_decided(tmp: Path):
    return _kill_during_model_save(tmp, "journal:model")


def _kill_once(argv: list[str], folder: Path, pattern: str, count: int, timeout: float = 300) -> None:
    """Start ``python -m s5vh_hf.cli *argv`` and SIGKILL it as soon as ``count`` files match ``pattern`` under
    ``folder`` (mid-run, with some output already written)."""
    process = subprocess.Popen([sys.executable, "-m", "s5vh_hf.cli", *argv], cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + timeout
    while time.time() < deadline and process.poll() is None and len(list(folder.glob(pattern))) < count:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()


def _codes_outcome(folder: Path, expected: tuple[list[str], np.ndarray], success: str) -> tuple[str, str]:
    from s5vh_hf.recipes.encoding import load_codes

    ids, codes = load_codes(folder)
    same = ids == expected[0] and np.array_equal(codes, expected[1])
    return ("intact", success) if same else ("lost", "codes differ from a clean run")


def _clean_codes(tmp: Path, model: Path, data: Path) -> tuple[list[str], np.ndarray]:
    from s5vh_hf.recipes.encoding import load_codes

    assert cli("encode", str(model), str(data), "--out", str(tmp / "clean"), "--chunk-size", "7")[0] == 0
    return load_codes(tmp / "clean")


@case("kill -9")
def kill_during_encode_then_rerun(tmp: Path):
    model, data = saved_model(tmp / "m"), tmp / "ds"
    write_split(data, "database", 200)
    expected = _clean_codes(tmp, model, data)
    argv = ["encode", str(model), str(data), "--out", str(tmp / "codes"), "--chunk-size", "7"]
    _kill_once([*argv, "--batch-size", "2"], tmp / "codes" / "chunks", "codes-*.parquet", 3)
    status, err = cli(*argv)
    if status != 0:
        return "crash", err.strip()[-160:]
    return _codes_outcome(tmp / "codes", expected, "the rerun finished the codes, equal to a clean run")


@case("concurrency")
def two_encoders_into_one_folder(tmp: Path):

    model, data = saved_model(tmp / "m"), tmp / "ds"
    write_split(data, "database", 120)
    expected = _clean_codes(tmp, model, data)
    command = [sys.executable, "-m", "s5vh_hf.cli", "encode", str(model), str(data), "--out", str(tmp / "codes"),
               "--chunk-size", "5"]  # fmt: skip
    processes = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in "ab"]
    errors = [p.communicate(timeout=600)[1].decode() for p in processes]
    if any(p.returncode for p in processes):
        return "crash", [e.strip().splitlines()[-1] for e in errors if e.strip()][0][:160]
    return _codes_outcome(tmp / "codes", expected, "both finished; codes equal to a clean run")


@case("rerun")
def encode_rerun_with_another_chunk_size(tmp: Path):

    model, data = saved_model(tmp / "m"), tmp / "ds"
    write_split(data, "database", 40)
    assert cli("encode", str(model), str(data), "--out", str(tmp / "codes"), "--chunk-size", "16")[0] == 0
    assert cli("encode", str(model), str(data), "--out", str(tmp / "codes"), "--chunk-size", "7")[0] == 0
    return _codes_outcome(tmp / "codes", _clean_codes(tmp, model, data), "all 40 codes, equal to a clean run")


@case("rerun")
def encode_rerun_with_another_model(tmp: Path):
    from s5vh_hf.recipes.encoding import load_codes

    data = tmp / "ds"
    write_split(data, "database", 20)
    first, second = saved_model(tmp / "m1", seed=0), saved_model(tmp / "m2", seed=1)
    assert cli("encode", str(first), str(data), "--out", str(tmp / "codes"), "--chunk-size", "8")[0] == 0
    assert cli("encode", str(second), str(data), "--out", str(tmp / "codes"), "--chunk-size", "8")[0] == 0
    _, codes = load_codes(tmp / "codes")
    expected = tiny_model(1).encode(videos(20), output="packed")
    return ("intact", "the second model's codes") if np.array_equal(codes, expected) else ("lost", "old model's codes")


@case("kernel cache")
def truncated_cached_kernel(tmp: Path):
    code = "from s5vh_hf.model.cpu_kernels import load_cpu_kernels; print(load_cpu_kernels() is not None)"
    env = {"S5VH_KERNEL_CACHE": str(tmp / "cache")}
    (tmp / "cache").mkdir(mode=0o700)
    first = python_process(code, env)
    libraries = list((tmp / "cache").glob("*.so"))
    if first.returncode != 0 or not libraries:
        return "intact", "no compiler here: nothing cached to damage"
    for library in libraries:
        with open(library, "r+b") as handle:
            handle.truncate(library.stat().st_size // 3)
    second = python_process(code, env)
    if second.returncode != 0:
        return "crash", f"exit {second.returncode} (SIGBUS is -7)"
    return ("intact", "rebuilt, kernels load") if "True" in second.stdout else ("lost", "kernels disabled")


@case("kernel cache")
def planted_library_in_a_shared_cache(tmp: Path):
    from s5vh_hf.model import kernel_cache

    compiler = kernel_cache._compiler()
    if compiler is None:
        return "intact", "no compiler here: nothing is loaded from any cache"
    shared = tmp / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    marker = tmp / "planted-ran"
    source = tmp / "planted.c"
    source.write_text(f'#include <stdio.h>\n__attribute__((constructor)) static void p(void) {{ FILE *f = '
                      f'fopen("{marker}", "w"); if (f) fclose(f); }}\n')  # fmt: skip
    for flags in kernel_cache._FLAG_SETS:
        target = shared / f"s5vh_scan_{kernel_cache._library_key(compiler, flags)}.so"
        subprocess.run([compiler, "-shared", "-fPIC", str(source), "-o", str(target)], check=True)
        Path(str(target) + ".sha256").write_text(kernel_cache._sha256_file(target))
    result = python_process("from s5vh_hf.model.cpu_kernels import load_cpu_kernels; load_cpu_kernels()",
                            {"S5VH_KERNEL_CACHE": str(shared)})  # fmt: skip
    if marker.exists():
        return "lost", "a library planted by another user was loaded"
    if result.returncode != 0:
        return "crash", result.stderr.strip()[-160:]
    return "clear", "refused: " + [line for line in result.stderr.splitlines() if "not used" in line][0][-100:]


@case("kernel cache")
def cache_below_a_folder_others_may_write_to(tmp: Path):
    from s5vh_hf.model import kernel_cache

    if kernel_cache._compiler() is None:
        return "intact", "no compiler here: nothing is loaded from any cache"
    parent = tmp / "open-parent"
    parent.mkdir()
    os.chmod(parent, 0o777)
    (parent / "cache").mkdir(mode=0o700)
    result = python_process("from s5vh_hf.model.kernel_cache import kernel_cache_dir; print(kernel_cache_dir())",
                            {"S5VH_KERNEL_CACHE": str(parent / "cache")})  # fmt: skip
    if result.returncode != 0:
        return "crash", result.stderr.strip()[-160:]
    if result.stdout.strip() == str(parent / "cache"):
        return "lost", "a cache another user could rename away was used"
    return "clear", [line for line in result.stderr.splitlines() if "not used" in line][0][-110:]


@case("kernel cache")
def library_swapped_between_check_and_load(tmp: Path):
    from s5vh_hf.model import kernel_cache

    compiler = kernel_cache._compiler()
    if compiler is None:
        return "intact", "no compiler here: nothing is loaded from any cache"
    code = f"""
    import os, subprocess
    from pathlib import Path
    import s5vh_hf.model.kernel_cache as c
    flags = c._FLAG_SETS[-1]
    c.build_library((flags,))
    target = c.kernel_cache_dir() / f"s5vh_scan_{{c._library_key(c._compiler(), flags)}}.so"
    descriptor = c._open_verified(target)
    source = Path({str(tmp)!r}) / "planted.c"
    source.write_text('#include <stdio.h>\\n__attribute__((constructor)) static void p(void) {{ FILE *f = '
                      'fopen("{tmp}/planted-ran", "w"); if (f) fclose(f); }}\\n')
    subprocess.run([c._compiler(), "-shared", "-fPIC", str(source), "-o", str(target) + ".new"], check=True)
    os.replace(str(target) + ".new", target)
    library = c._load_descriptor(descriptor)
    print(hasattr(library, "s5vh_scan_forward"), c._verified(target))
    """
    result = python_process(code, {"S5VH_KERNEL_CACHE": str(tmp / "cache")})
    if (tmp / "planted-ran").exists():
        return "lost", "the library swapped in after the check was loaded"
    if result.returncode != 0:
        return "crash", result.stderr.strip()[-160:]
    if result.stdout.split() != ["True", "False"]:
        return "lost", f"loaded/verified: {result.stdout.strip()}"
    return "intact", "the checked file was loaded through its descriptor; the swapped one fails the next check"


def _video_folder(tmp: Path, count: int = 6) -> tuple[Path, Path]:
    """A few synthetic videos and a tiny random VGG frame encoder."""
    import torch

    from s5vh_hf.video.frame_encoders import VGGFeatures, save_vgg
    from s5vh_hf.video.synthetic import class_names, render_frames, write_video

    rng = np.random.default_rng(0)
    for index in range(count):
        name = class_names()[index % len(class_names())]
        write_video(tmp / "videos" / f"{index:03d}.mp4", render_frames(name, 12, 48, rng))
    torch.manual_seed(0)
    return tmp / "videos", save_vgg(VGGFeatures(width=1 / 32, hidden=24), tmp / "vgg")


@case("extract videos")
def corrupt_and_audio_only_videos_among_good_ones(tmp: Path):
    videos, encoder = _video_folder(tmp)
    (videos / "zz-corrupt.mp4").write_bytes((videos / "000.mp4").read_bytes()[:300])
    (videos / "zz-empty.mp4").write_bytes(b"")
    status, err = cli("extract", str(videos), "--extractor", str(encoder), "--frames", "6", "--out", str(tmp / "f"),
                      "--chunk-size", "3")  # fmt: skip
    if status != 0:
        return "crash", err.strip()[-160:]
    report = json.loads((tmp / "f" / "extraction_report_train.json").read_text())
    skipped = sorted(Path(p).name for p in report["skipped"])
    ids, _ = split_contents(tmp / "f", "train")
    if skipped != ["zz-corrupt.mp4", "zz-empty.mp4"] or len(ids) != 6:
        return "lost", f"skipped {skipped}, {len(ids)} videos written"
    return "clear", f"6 videos written, 2 skipped with reasons: {list(report['skipped'].values())[0][:60]}"


@case("kill -9")
def kill_during_extraction_then_rerun(tmp: Path):
    videos, encoder = _video_folder(tmp, count=10)
    argv = ["extract", str(videos), "--extractor", str(encoder), "--frames", "6", "--chunk-size", "2"]
    assert cli(*argv, "--out", str(tmp / "clean"))[0] == 0
    _kill_once([*argv, "--out", str(tmp / "f")], tmp / "f" / ".extract" / "train", "chunk-*.parquet", 2)
    status, err = cli(*argv, "--out", str(tmp / "f"))
    if status != 0:
        return "crash", err.strip()[-160:]
    clean_ids, clean = split_contents(tmp / "clean", "train")
    ids, features = split_contents(tmp / "f", "train")
    same = ids == clean_ids and np.array_equal(features, clean)
    return ("intact", "the rerun finished; features equal to a clean run") if same else ("lost", "features differ")


@case("write data")
def hdf5_videos_with_no_frames(tmp: Path):
    import h5py

    with h5py.File(tmp / "f.h5", "w") as handle:
        handle["feats"] = np.zeros((3, 0, 24), np.float32)
    outcome = expect_clear(*cli("convert-features", str(tmp / "f.h5"), "--split", "train", "--out", str(tmp / "ds")),
                           "T = 0")  # fmt: skip
    return ("lost", "a split was written") if (tmp / "ds" / "data").exists() and any((tmp / "ds" / "data").iterdir()) \
        else outcome  # fmt: skip


@case("write data")
def complex_hdf5_features(tmp: Path):
    import h5py

    feats = np.random.default_rng(0).standard_normal((3, 4, 24)) * (1 + 1j)
    with h5py.File(tmp / "f.h5", "w") as handle:
        handle["feats"] = feats.astype(np.complex64)
    return expect_clear(*cli("convert-features", str(tmp / "f.h5"), "--split", "train", "--out", str(tmp / "ds")),
                        "complex")  # fmt: skip


@case("write data")
def float32_overflow_names_float32s_limit(tmp: Path):
    from s5vh_hf.data.shards import cast_features

    block = np.full((1, 2, 3), 1e300)
    outcome = expect_raise(lambda: cast_features(block, "float32", ["v"]), ValueError, "float32", "3.40282e+38")
    if outcome[0] == "clear" and "65504" in outcome[1]:
        return "crash", "the float32 message cites float16's limit"
    return outcome


@case("validate")
def absurd_configs_refused_before_allocating(tmp: Path):
    from s5vh_hf import S5VHConfig

    for overrides, words in (({"hidden_size": 10**9}, ("hidden_size",)), ({"time_step_rank": -1}, ("time_step_rank",)),
                             ({"encoder_depth": 10**6}, ("encoder_depth",)),
                             ({"hidden_size": 16384, "expand": 16, "encoder_depth": 256}, ("billion",))):  # fmt: skip
        start = time.perf_counter()
        outcome = expect_raise(lambda o=overrides: S5VHConfig(**o), ValueError, *words)
        if outcome[0] != "clear":
            return outcome
        if time.perf_counter() - start > 5:
            return "crash", f"{overrides} took {time.perf_counter() - start:.0f} s to refuse"
    return outcome


@case("validate")
def zero_and_negative_counts_on_the_command_line(tmp: Path):
    model, data = saved_model(tmp / "m"), tmp / "ds"
    write_split(data, "database", 4)
    for argv, word in ((["encode", str(model), str(data), "--out", str(tmp / "c"), "--batch-size", "0"], "--batch-size"),
                       (["search", str(model), str(data), "--query-split", "database", "--limit", "-1"], "--limit"),
                       (["encode", str(model), str(data), "--out", str(tmp / "c"), "--chunk-size", "-3"], "--chunk-size")):  # fmt: skip
        result = cli_process(*argv)
        outcome = expect_clear(result.returncode, result.stderr, word, "positive integer")
        if outcome[0] != "clear":
            return outcome
    return outcome


@case("rerun")
def encode_rerun_after_a_config_edit(tmp: Path):
    from s5vh_hf.recipes.encoding import load_codes

    model, data = saved_model(tmp / "m"), tmp / "ds"
    write_split(data, "database", 20)
    assert cli("encode", str(model), str(data), "--out", str(tmp / "codes"), "--chunk-size", "8")[0] == 0
    config = json.loads((model / "config.json").read_text())
    config["layer_norm_eps"] = 0.5  # changes codes, not weights
    (model / "config.json").write_text(json.dumps(config))
    assert cli("encode", str(model), str(data), "--out", str(tmp / "codes"), "--chunk-size", "8")[0] == 0
    assert cli("encode", str(model), str(data), "--out", str(tmp / "clean"), "--chunk-size", "8")[0] == 0
    same = np.array_equal(load_codes(tmp / "codes")[1], load_codes(tmp / "clean")[1])
    return ("intact", "chunks of the old config redone; equal to a clean run") if same else ("lost", "stale chunks")


# ------------------------------------------------------------------------------------- hostile folders


def _hostile_journals(folder: Path, victim: Path) -> list[dict]:
    """Journals a hostile folder could carry, each aimed at ``victim`` (a folder of the user's outside it):
    well-formed in every other way (this package's format, this machine's name, a dead writer)."""
    import socket

    writer = {"pid": 999_999_999, "host": socket.gethostname(), "started": None}
    staging = ".staging-model-999999999-0123456789ab"
    (folder / staging).mkdir(exist_ok=True)
    (folder / staging / "payload").write_text("planted")
    base = {"format": "s5vh-commit-v2", "tag": "model", "staging": staging, "moves": [], "remove": [],
            "writer": writer}  # fmt: skip
    return [
        {**base, "staging": str(victim)},  # an absolute staging folder, removed with rmtree
        {**base, "remove": ["../victim/keep.txt"]},
        {**base, "remove": [str(victim / "keep.txt")]},
        {**base, "moves": [[f"{staging}/payload", "../victim/.bashrc"]]},
        {**base, "moves": [[f"{staging}/payload", "escape/.bashrc"]]},  # escape -> victim, a link leading out
        {**base, "moves": [["../victim/keep.txt", "stolen.txt"]]},
        {key: value for key, value in base.items() if key != "moves"},  # a missing key
        {**base, "writer": {**writer, "host": "elsewhere"}, "remove": ["config.json"]},  # another machine's
        ["not", "a", "journal"],
    ]


def _victim(tmp: Path) -> Path:
    victim = tmp / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("the user's file")
    (victim / ".bashrc").write_text("the user's shell")
    return victim


def _victim_intact(victim: Path) -> bool:
    return (victim.is_dir() and (victim / "keep.txt").read_text() == "the user's file"
            and (victim / ".bashrc").read_text() == "the user's shell")  # fmt: skip


def _hostile_journal_outcome(folder: Path, victim: Path, load: Callable[[], object]) -> tuple[str, str]:
    (folder / ".s5vh-lock").write_text("")  # a lock file nobody holds: the writer looks dead
    (folder / "escape").symlink_to(victim)
    for journal in _hostile_journals(folder, victim):
        (folder / ".commit-model.json").write_text(json.dumps(journal))
        try:
            load()
        except Exception as error:  # noqa: BLE001
            return "crash", f"{type(error).__name__}: {str(error)[:120]} for {json.dumps(journal)[:80]}"
        if not _victim_intact(victim):
            return "lost", f"a file outside the folder was changed by {json.dumps(journal)[:100]}"
        if not (folder / ".commit-model.json").exists():
            return "lost", f"the journal {json.dumps(journal)[:100]} was applied"
    return "clear", "9 hostile journals ignored with a warning; nothing outside the folder touched; loads"


@case("hostile folder")
def crafted_journals_in_a_model_folder(tmp: Path):
    from s5vh_hf import S5VHModel

    folder, victim = saved_model(tmp / "m"), _victim(tmp)
    probe, expected = videos(3), tiny_model(0).encode(videos(3))

    def load():
        if not np.array_equal(S5VHModel.from_pretrained(folder).encode(probe), expected):
            raise AssertionError("the model changed")

    return _hostile_journal_outcome(folder, victim, load)


@case("hostile folder")
def crafted_journals_in_a_dataset_folder(tmp: Path):
    write_split(tmp / "ds", "train", 5)
    victim = _victim(tmp)
    return _hostile_journal_outcome(tmp / "ds", victim, lambda: split_contents(tmp / "ds", "train"))


@case("hostile folder")
def dataset_card_pointing_outside(tmp: Path):
    write_split(tmp / "outside", "train", 4, seed=7)
    write_split(tmp / "ds", "train", 4)
    card = (tmp / "ds" / "README.md").read_text()
    if "path: data/train-*" not in card:
        return "crash", "the card has no data_files entry to aim elsewhere"
    (tmp / "ds" / "README.md").write_text(card.replace("path: data/train-*", "path: ../outside/data/train-*"))
    return expect_clear(*cli("encode", str(saved_model(tmp / "m")), str(tmp / "ds"), "--split", "train", "--out",
                             str(tmp / "c")), "outside")  # fmt: skip


@case("hostile folder")
def symlinked_secret_in_a_folder_to_push(tmp: Path):
    from s5vh_hf.hub.sharing import push_model_folder

    folder = saved_model(tmp / "m")
    (tmp / "id_ed25519").write_text("-----BEGIN OPENSSH PRIVATE KEY-----")
    (folder / "notes.txt").symlink_to(tmp / "id_ed25519")
    return expect_raise(lambda: push_model_folder(folder, "me/model", token="t", endpoint="http://127.0.0.1:9"),
                        ValueError, "symbolic link", "notes.txt")  # fmt: skip


@case("hostile folder")
def symlinked_shard_in_a_dataset_to_push(tmp: Path):
    from s5vh_hf.hub.datasets import push_feature_dataset

    write_split(tmp / "ds", "train", 4)
    (tmp / "secret.parquet").write_text("not yours")
    (tmp / "ds" / "data" / "query-00000-of-00001.parquet").symlink_to(tmp / "secret.parquet")
    return expect_raise(lambda: push_feature_dataset(tmp / "ds", "me/feats", token="t", endpoint="http://127.0.0.1:9"),
                        ValueError, "symbolic link", "query-00000-of-00001.parquet")  # fmt: skip


@case("hostile folder")
def shards_that_disagree_on_d(tmp: Path):
    import pyarrow.parquet as pq

    write_split(tmp / "ds", "database", 6, shard_size=3)
    other = tmp / "other"
    from s5vh_hf.data.writing import write_feature_split

    write_feature_split(other, "database", [v[:, :20] for v in videos(6)], [f"x{i}" for i in range(6)],
                        shard_size=3, dtype="float32")  # fmt: skip
    name = "database-00001-of-00002.parquet"
    pq.write_table(pq.read_table(other / "data" / name), tmp / "ds" / "data" / name)
    return expect_clear(*cli("encode", str(saved_model(tmp / "m")), str(tmp / "ds"), "--out", str(tmp / "c")),
                        "disagree")  # fmt: skip


# ------------------------------------------------------------------------- concurrent writers and readers


_SAVER = """
import sys
sys.path.insert(0, {scripts!r})
from fault_injection import saved_model
from pathlib import Path
for round in range({rounds}):
    saved_model(Path({folder!r}), seed={seeds}[round % 2])
"""


def _start(code: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, **(env or {})})  # fmt: skip


@case("concurrency")
def reader_while_a_writer_saves(tmp: Path):
    from s5vh_hf import S5VHModel

    folder = saved_model(tmp / "m", seed=0)
    probe = videos(4, 9)
    known = [tiny_model(seed).encode(probe) for seed in (0, 1)]
    writer = _start(_SAVER.format(scripts=str(ROOT / "scripts"), rounds=12, folder=str(folder), seeds=[1, 0]))
    loads = 0
    while writer.poll() is None:
        codes = S5VHModel.from_pretrained(folder).encode(probe)
        loads += 1
        if not any(np.array_equal(codes, k) for k in known):
            writer.kill()
            return "lost", f"load {loads} read a mix of two saves"
    if writer.returncode != 0:
        return "crash", "the writer failed: " + writer.stderr.read().decode().strip()[-140:]
    return "intact", f"{loads} loads during 12 saves, each a whole model; the writer never failed"


@case("concurrency")
def two_writers_of_one_model_folder(tmp: Path):
    from s5vh_hf import S5VHModel

    folder = tmp / "m"
    writers = [_start(_SAVER.format(scripts=str(ROOT / "scripts"), rounds=6, folder=str(folder), seeds=seeds))
               for seeds in ([0, 1], [1, 0])]  # fmt: skip
    errors = [w.communicate(timeout=600)[1].decode() for w in writers]
    if any(w.returncode for w in writers):
        return "crash", [e.strip().splitlines()[-1] for e in errors if e.strip()][0][:160]
    probe = videos(4, 9)
    codes = S5VHModel.from_pretrained(folder).encode(probe)
    whole = any(np.array_equal(codes, tiny_model(seed).encode(probe)) for seed in (0, 1))
    return ("intact", "12 saves by two writers, taken in turn; the folder holds one whole model") if whole else (
        "lost", "the folder holds a mix")  # fmt: skip


@case("concurrency")
def two_writers_of_two_splits(tmp: Path):
    code = """
    import sys
    sys.path.insert(0, {scripts!r})
    from fault_injection import write_split
    from pathlib import Path
    for seed in range(5):
        write_split(Path({folder!r}), {split!r}, 7 + seed, seed=seed, shard_size=3)
    """
    writers = [_start(code.format(scripts=str(ROOT / "scripts"), folder=str(tmp / "ds"), split=split))
               for split in ("train", "query")]  # fmt: skip
    errors = [w.communicate(timeout=600)[1].decode() for w in writers]
    if any(w.returncode for w in writers):
        return "crash", [e.strip().splitlines()[-1] for e in errors if e.strip()][0][:160]
    for split in ("train", "query"):
        ids, features = split_contents(tmp / "ds", split)
        if ids != [f"{split}-4-{i}" for i in range(11)] or not np.allclose(features, np.stack(videos(11, 4)),
                                                                         atol=1e-6):  # fmt: skip
            return "lost", f"split {split} is not its last write"
    return "intact", "both splits hold their last write; the card lists both"


@case("concurrency")
def second_writer_gives_up_with_one_line(tmp: Path):
    from s5vh_hf.model.commits import folder_lock

    model, data = saved_model(tmp / "m"), tmp / "ds"
    write_split(data, "database", 6)
    with folder_lock(tmp / "codes"):
        result = cli_process("encode", str(model), str(data), "--out", str(tmp / "codes"),
                             env={"S5VH_LOCK_TIMEOUT": "0.5"})  # fmt: skip
    return expect_clear(result.returncode, result.stderr, "being written", str(os.getpid()))


# --------------------------------------------------------------------------------------------- the index


def _index_outcome(tmp: Path, expected_ids: list[str]) -> tuple[str, str] | None:
    from s5vh_hf.video.index import VideoIndex

    try:
        index = VideoIndex(tmp / "index")
    except Exception as error:  # noqa: BLE001
        return "lost", f"the index no longer loads: {str(error)[:120]}"
    if index.video_ids != expected_ids or index.index.ntotal != len(expected_ids):
        return "lost", f"the index holds {len(index.video_ids)} entries and {index.index.ntotal} codes"
    return None


def _index_two_builds(tmp: Path) -> tuple[Path, list[str], list[str]]:
    model = saved_model(tmp / "m")
    write_split(tmp / "a", "database", 6, seed=0)
    write_split(tmp / "b", "database", 9, seed=1)
    assert cli("index", str(model), str(tmp / "a"), "--out", str(tmp / "index"))[0] == 0
    return model, [f"database-0-{i}" for i in range(6)], [f"database-1-{i}" for i in range(9)]


@case("kill -9")
def kill_during_index_writes(tmp: Path):
    model, old, new = _index_two_builds(tmp)
    for point, expected in (("staged:index", old), ("journal:index", new)):
        result = cli_process("index", str(model), str(tmp / "b"), "--out", str(tmp / "index"),
                             env={"S5VH_FAULT_POINT": point})  # fmt: skip
        if result.returncode != -signal.SIGKILL:
            return "crash", f"not killed at {point}: exit {result.returncode} {result.stderr[-160:]}"
        problem = _index_outcome(tmp, expected)
        if problem:
            return problem
    return "intact", "killed before the commit: old index whole; after it: new index whole"


@case("write data")
def index_on_a_full_disk(tmp: Path):
    import resource

    model, old, _ = _index_two_builds(tmp)
    split_contents(tmp / "b", "database")  # the datasets cache is written now, before the limit

    def small_files():  # a file-size limit: what a full disk looks like to a writer (no mount needed)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))

    result = subprocess.run([sys.executable, "-m", "s5vh_hf.cli", "index", str(model), str(tmp / "b"), "--out",
                             str(tmp / "index")], cwd=ROOT, capture_output=True, text=True, preexec_fn=small_files)  # fmt: skip
    problem = _index_outcome(tmp, old)
    if result.returncode == 0:
        return "silent", "exit 0 on a failed write"
    if problem:
        return problem
    outcome = expect_clear(result.returncode, result.stderr)
    return (outcome[0], "old index intact; " + outcome[1]) if outcome[0] == "clear" else outcome


@contextlib.contextmanager
def _small_filesystem(folder: Path, size_kib: int = 512):
    """A tmpfs of ``size_kib`` mounted on ``folder`` where this process may mount (root); yields ``False``
    elsewhere (the caller then falls back to a file-size limit)."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(folder)],
                             capture_output=True).returncode == 0 if os.geteuid() == 0 and not os.environ.get("S5VH_FAULT_NO_MOUNT") \
        else False  # fmt: skip
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def _fill(folder: Path, leave_kib: int) -> None:
    """Fill the file system of ``folder`` until only about ``leave_kib`` KiB are free."""
    info = os.statvfs(folder)
    size = max(0, info.f_bavail * info.f_frsize - leave_kib * 1024)
    with open(folder / "filler", "wb", buffering=0) as handle, contextlib.suppress(OSError):
        for _ in range(size // 4096):
            handle.write(b"\0" * 4096)


@case("write data")
def save_pretrained_and_a_split_on_a_full_disk(tmp: Path):
    from s5vh_hf import S5VHModel

    with _small_filesystem(tmp / "disk") as mounted:
        disk = tmp / "disk"
        saved_model(disk / "m", seed=0)
        write_split(disk / "ds", "train", 6, seed=0)
        probe = videos(3, 5)
        if mounted:
            _fill(disk, leave_kib=8)  # less than one model or split
            errors = []
            for attempt in (
                lambda: saved_model(disk / "m", seed=1),
                lambda: write_split(disk / "ds", "train", 6, seed=1),
            ):
                try:
                    attempt()
                    errors.append(None)
                except OSError as error:
                    errors.append(error)
            how = "a full 512 KiB tmpfs"
        else:
            code = f"""
            import resource, sys
            sys.path.insert(0, {str(ROOT / "scripts")!r})
            from fault_injection import saved_model, write_split
            from pathlib import Path
            resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))
            for attempt in (lambda: saved_model(Path({str(disk / "m")!r}), seed=1),
                            lambda: write_split(Path({str(disk / "ds")!r}), "train", 6, seed=1)):
                try:
                    attempt(); print("accepted")
                except OSError:
                    print("refused")
            """
            result = python_process(code)
            errors = [None if line == "accepted" else line for line in result.stdout.split()]
            how = "a file-size limit (no mount here)"
        if len(errors) != 2 or any(error is None for error in errors):
            return "silent", f"a write on {how} reported success"
        if not np.array_equal(S5VHModel.from_pretrained(disk / "m").encode(probe), tiny_model(0).encode(probe)):
            return "lost", "the old model was damaged"
        ids, _ = split_contents(disk / "ds", "train")
        if ids != [f"train-0-{i}" for i in range(6)]:
            return "lost", "the old split was damaged"
        leftovers = [p.name for p in [*(disk / "m").iterdir(), *(disk / "ds").iterdir()]
                     if p.name.startswith((".staging", ".commit"))]  # fmt: skip
        if leftovers:
            return "lost", f"leftovers {leftovers}"
    return "clear", f"both writes raised on {how}; old model and split whole, nothing left behind"


@case("hostile folder")
def index_file_swapped_from_another_build(tmp: Path):
    model, _, _ = _index_two_builds(tmp)
    assert cli("index", str(model), str(tmp / "b"), "--out", str(tmp / "other"))[0] == 0
    (tmp / "index" / "index.faissindex").write_bytes((tmp / "other" / "index.faissindex").read_bytes())
    from s5vh_hf.video.index import VideoIndex

    return expect_raise(lambda: VideoIndex(tmp / "index"), ValueError, "index.faissindex", "not the file")


# ------------------------------------------------------------------------------------------------ resume


def _train_argv(tmp: Path, data: str = "ds", *extra: str) -> list[str]:
    return ["train", str(tmp / data), "--preset", "ucf101-16", "--model-size", "mini", "--clusters", "3", "--set",
            "hidden_size=16", "--set", "decoder_hidden_size=16", "--epochs", "3", "--batch-size", "8",
            "--save-total-limit", "3", "--out", str(tmp / "run"), *extra]  # fmt: skip


@case("kill -9")
def kill_while_a_checkpoint_is_written_then_resume(tmp: Path):
    from s5vh_hf import S5VHModel

    write_split(tmp / "ds", "train", 48)
    clean = cli_process(*_train_argv(tmp)[:-1], str(tmp / "clean"))
    if clean.returncode != 0:
        return "crash", clean.stderr.strip()[-160:]
    killed = cli_process(*_train_argv(tmp), env={"S5VH_FAULT_POINT": "checkpoint:12"})  # 6 steps an epoch
    if killed.returncode != -signal.SIGKILL:
        return "crash", f"not killed while writing checkpoint-12: exit {killed.returncode}"
    resumed = cli_process(*_train_argv(tmp, "ds", "--resume"))
    if resumed.returncode != 0:
        return "crash", resumed.stderr.strip()[-160:]
    if "not resuming from checkpoint-12" not in resumed.stderr:
        return "lost", "the incomplete checkpoint-12 was not passed over"
    probe = videos(6, 4)
    same = np.array_equal(S5VHModel.from_pretrained(tmp / "run").encode(probe),
                          S5VHModel.from_pretrained(tmp / "clean").encode(probe))  # fmt: skip
    return ("intact", "resumed from checkpoint-6 past the torn checkpoint-12; codes equal an uninterrupted run") if \
        same else ("lost", "the resumed run differs from an uninterrupted one")  # fmt: skip


@case("rerun")
def resume_with_other_inputs_or_missing_state(tmp: Path):
    write_split(tmp / "ds", "train", 48)
    write_split(tmp / "other", "train", 48, seed=3)  # same size, other videos
    if cli_process(*_train_argv(tmp)).returncode != 0:
        return "crash", "the first run failed"
    checks = [
        (_train_argv(tmp, "other", "--resume"), "train_data"),
        (_train_argv(tmp, "ds", "--resume", "--set", "code_length=32"), "code_length"),
    ]
    for argv, word in checks:
        result = cli_process(*argv)
        outcome = expect_clear(result.returncode, result.stderr, word)
        if outcome[0] != "clear":
            return outcome
    for step in ("6", "12", "18"):
        (tmp / "run" / f"checkpoint-{step}" / "rng_state.pth").unlink()
    result = cli_process(*_train_argv(tmp, "ds", "--resume"))
    outcome = expect_clear(result.returncode, result.stderr, "rng_state.pth is missing", "--inexact-resume")
    if outcome[0] != "clear":
        return outcome
    inexact = cli_process(*_train_argv(tmp, "ds", "--inexact-resume", "--epochs", "4"))
    if inexact.returncode != 0:
        return "crash", "--inexact-resume failed: " + inexact.stderr.strip()[-140:]
    return outcome


# ------------------------------------------------------------------------------------------ slow (full only)


@case("kill -9", fast=False)
def kill_during_training_then_resume(tmp: Path):
    write_split(tmp / "ds", "train", 64)
    argv = ["train", str(tmp / "ds"), "--preset", "ucf101-16", "--model-size", "mini", "--clusters", "3", "--set",
            "hidden_size=16", "--set", "decoder_hidden_size=16", "--epochs", "6", "--batch-size", "8", "--out",
            str(tmp / "run")]  # fmt: skip
    _kill_once(argv, tmp / "run", "checkpoint-*/pseudo_labels.safetensors", 1)
    result = cli_process(*argv, "--resume")
    if result.returncode != 0:
        return "crash", result.stderr.strip()[-160:]
    from s5vh_hf import S5VHModel

    S5VHModel.from_pretrained(tmp / "run").encode(videos(3))
    return "intact", "resumed from the last checkpoint and finished"


@case("huge input", fast=False)
def one_very_long_video(tmp: Path):
    model = tiny_model()
    long_video = np.random.default_rng(0).standard_normal((200_000, 24)).astype(np.float32)
    codes = model.encode([long_video, long_video[:5]])
    return ("intact", "200,000 frames encoded") if codes.shape == (2, 16) else ("lost", f"shape {codes.shape}")


# ------------------------------------------------------------------------------------------------------- main


def run_cases(fast: bool) -> list[tuple[Case, str, str, float]]:
    logging.disable(logging.WARNING)  # library warnings would interleave with the table (cases capture their own)
    results = []
    for item in CASES:
        if fast and not item.fast:
            continue
        start = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="s5vh-fault-") as folder:
            logging.disable(logging.NOTSET)
            try:
                outcome, detail = item.run(Path(folder))
            except Exception as error:  # noqa: BLE001
                outcome, detail = "crash", f"{type(error).__name__}: {error}".splitlines()[0][:160]
                if os.environ.get("S5VH_FAULT_DEBUG"):
                    traceback.print_exc()
            finally:
                logging.disable(logging.WARNING)
        results.append((item, outcome, detail, time.perf_counter() - start))
        print(f"{outcome:>6}  {item.stage:<18} {item.name:<48} {detail}", flush=True)
    logging.disable(logging.NOTSET)
    return results


def summary(results) -> dict[str, int]:
    counts = {name: 0 for name in OUTCOMES}
    for _, outcome, _, _ in results:
        counts[outcome] += 1
    return {"cases tried": len(results), **counts}


def report(results) -> str:
    counts = summary(results)
    lines = ["| stage | case | outcome | detail |", "|---|---|---|---|"]
    lines += [f"| {c.stage} | {c.name} | {o} | {d.replace('|', '/')} |" for c, o, d, _ in results]
    totals = " · ".join(f"{name} {value}" for name, value in counts.items())
    return f"**{totals}**\n\n" + "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="only the cases CI runs")
    parser.add_argument("--report", help="write the results as a markdown table")
    parser.add_argument("--only", help="run the cases whose name contains this text")
    args = parser.parse_args(argv)
    if args.only:
        CASES[:] = [c for c in CASES if args.only in c.name]
    results = run_cases(args.fast)
    counts = summary(results)
    print("\n" + " · ".join(f"{name} {value}" for name, value in counts.items()))
    if args.report:
        Path(args.report).write_text(report(results))
    return 0 if counts["crash"] == counts["silent"] == counts["lost"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
