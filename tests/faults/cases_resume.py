"""Training resume: kills while a checkpoint is written, other inputs, missing state."""

from __future__ import annotations

import signal
from pathlib import Path

import numpy as np

from .harness import case, cli_process, expect_clear, videos, write_split


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
