"""Readers and writers at once: one writer per folder, readers that wait."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from .harness import ROOT, case, cli_process, expect_clear, saved_model, split_contents, tiny_model, videos, write_split

_SAVER = """
import sys
sys.path.insert(0, {root!r})
from tests.faults.harness import saved_model
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
    writer = _start(_SAVER.format(root=str(ROOT), rounds=12, folder=str(folder), seeds=[1, 0]))
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
    writers = [_start(_SAVER.format(root=str(ROOT), rounds=6, folder=str(folder), seeds=seeds))
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
    sys.path.insert(0, {root!r})
    from tests.faults.harness import write_split
    from pathlib import Path
    for seed in range(5):
        write_split(Path({folder!r}), {split!r}, 7 + seed, seed=seed, shard_size=3)
    """
    writers = [_start(code.format(root=str(ROOT), folder=str(tmp / "ds"), split=split))
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
