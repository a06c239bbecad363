"""The harness of the fault-injection cases: the case registry, outcomes, and helpers that run the CLI, write
splits and models, and judge refusals. Outcomes:

    clear    the fault was refused with a clear one-line error (exit 2 for the CLI) naming the file, video or field
    intact   the fault happened (kill, concurrency, rerun) and the data is whole and belongs to its inputs
    crash    a traceback, a signal, or an error that names nothing
    silent   bad input accepted without a word
    lost     data torn, stale, mixed or gone
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")


ROOT = Path(__file__).resolve().parents[2]
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


# ----- helpers


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
