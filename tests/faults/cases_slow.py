"""The slow cases (full runs only): training killed and resumed, one very long video."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .cases_kills_and_concurrency import _kill_once
from .harness import case, cli_process, tiny_model, videos, write_split


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
