"""Training checkpoints you can resume from: a checkpoint is *complete* only when every file is written and
recorded, and it remembers what it was trained on.

After the Trainer has written ``checkpoint-<step>/`` (weights, optimizer, scheduler, RNG states, trainer state)
and :class:`~s5vh_hf.training.trainer.S5VHTrainer` its pseudo-labels, the record ``s5vh_checkpoint.json`` is written last,
atomically: the size and sha256 of every file, and the fingerprints of the inputs (training data, hash centers,
code length, feature dimension, number of processes). :func:`last_complete_checkpoint` picks the newest checkpoint
whose files all match their record; :func:`resume_problems` says why a checkpoint cannot be resumed exactly.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from ..model.commits import sha256_file, write_file_atomically

RECORD_FILE = "s5vh_checkpoint.json"
RECORD_FORMAT = "s5vh-checkpoint-v1"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def write_checkpoint_record(folder: str | os.PathLike, inputs: dict[str, Any]) -> Path:
    """Record every file of the checkpoint ``folder`` (size, sha256) and the ``inputs`` it was trained on; the
    checkpoint is complete from this moment on."""
    folder = Path(folder)
    files = {
        path.relative_to(folder).as_posix(): {"size": path.stat().st_size, "sha256": sha256_file(path)}
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != RECORD_FILE and not path.name.startswith(".")
    }
    record = {"format": RECORD_FORMAT, "files": files, "inputs": inputs}
    return write_file_atomically(folder / RECORD_FILE, json.dumps(record, indent=1, sort_keys=True))


def read_checkpoint_record(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The record of a checkpoint, ``None`` when it has none or an unreadable one."""
    try:
        record = json.loads(Path(folder, RECORD_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT:
        return None
    if not isinstance(record.get("files"), dict) or not isinstance(record.get("inputs"), dict):
        return None
    return record


def incomplete_reason(folder: str | os.PathLike, may_lack: tuple[str, ...] = ()) -> str | None:
    """Why the checkpoint ``folder`` is not complete (no record, a file missing, torn or changed), or ``None``.
    Files named in ``may_lack`` may be missing (an inexact resume goes on without them), not torn."""
    folder = Path(folder)
    record = read_checkpoint_record(folder)
    if record is None:
        return f"{RECORD_FILE} is missing or unreadable (the save was interrupted, or an older version wrote it)"
    for name, expected in record["files"].items():
        path = folder / name
        if not path.is_file() and name in may_lack:
            continue
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != expected.get("size") or sha256_file(path) != expected.get("sha256"):
            return f"{name} is torn or changed since it was recorded"
    return None


def checkpoints_by_step(output_dir: str | os.PathLike) -> list[Path]:
    """The ``checkpoint-<step>`` folders of ``output_dir``, newest first."""
    found = []
    for path in Path(output_dir).glob("checkpoint-*"):
        match = _CHECKPOINT.match(path.name)
        if match and path.is_dir():
            found.append((int(match.group(1)), path))
    return [path for _, path in sorted(found, reverse=True)]


def last_complete_checkpoint(
    output_dir: str | os.PathLike, may_lack: tuple[str, ...] = ()
) -> tuple[Path | None, list[str]]:
    """The newest complete checkpoint of ``output_dir`` (``None`` when there is none) and a line for each newer
    one that was passed over, saying why (``may_lack``: see :func:`incomplete_reason`)."""
    skipped = []
    for path in checkpoints_by_step(output_dir):
        reason = incomplete_reason(path, may_lack)
        if reason is None:
            return path, skipped
        skipped.append(f"{path.name}: {reason}")
    return None, skipped


def exact_resume_files(world_size: int) -> list[str]:
    """The files a checkpoint needs for a resume that continues bit for bit."""
    rng = ["rng_state.pth"] if world_size <= 1 else [f"rng_state_{rank}.pth" for rank in range(world_size)]
    return ["optimizer.pt", "scheduler.pt", "trainer_state.json", *rng]


def resume_problems(folder: str | os.PathLike, inputs: dict[str, Any], world_size: int) -> tuple[list[str], list[str]]:
    """What stands in the way of resuming from ``folder`` with these ``inputs``: (inputs that changed since the
    checkpoint was written, each naming what; files missing for an exact resume)."""
    record = read_checkpoint_record(folder) or {"inputs": {}, "files": {}}
    changed = []
    for key, value in inputs.items():
        recorded = record["inputs"].get(key)
        if key in record["inputs"] and recorded != value:
            changed.append(f"{key} (checkpoint: {recorded}, now: {value})")
    missing = [name for name in exact_resume_files(world_size) if not Path(folder, name).is_file()]
    return changed, missing
