"""Writing the parquet shards of one split so that the split changes atomically: old or new, never a mix.

A writer stages its shards in a private folder, then records a *commit journal* (``.commit-<split>.json``, written
atomically) naming the shards to remove and the staged shards to move in, and applies it. A kill before the
journal exists leaves the old split untouched (the staging folder is removed by the next writer); a kill after it
leaves a journal that :func:`recover_split_commits` completes, which every writer and ``load_feature_dataset``
run first. :func:`verify_split_shards` then checks that every split holds exactly the shards its names promise
(``<split>-XXXXX-of-YYYYY``). One writer per split at a time; concurrent writers of different splits are safe.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np

SHARD_NAME = re.compile(r"^(?P<split>[^-/]+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.parquet$")
STAGING_PREFIX = ".staging-"
JOURNAL_PREFIX = ".commit-"


def shard_name(split: str, index: int, count: int) -> str:
    return f"{split}-{index:05d}-of-{count:05d}.parquet"


def check_split_name(split: str) -> None:
    if not isinstance(split, str) or not re.fullmatch(r"[A-Za-z0-9_.]+", split) or split.startswith("."):
        raise ValueError(f"split must be a plain name such as 'train' (letters, digits, _ and .), got {split!r}")


def _journal_path(out_dir: Path, split: str) -> Path:
    return out_dir / f"{JOURNAL_PREFIX}{split}.json"


def _apply_journal(out_dir: Path, journal: dict[str, Any]) -> None:
    """Idempotent: remove the old shards, move the staged ones in, drop the journal and the staging folder."""
    data, staging = out_dir / "data", out_dir / journal["staging"]
    for name in journal["remove"]:
        if name not in journal["add"]:
            (data / name).unlink(missing_ok=True)
    for name in journal["add"]:
        if (staging / name).exists():
            os.replace(staging / name, data / name)
        elif not (data / name).exists():
            raise ValueError(f"{out_dir}: the interrupted write of split {journal['split']!r} lost shard {name}")
    _journal_path(out_dir, journal["split"]).unlink(missing_ok=True)
    shutil.rmtree(staging, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover_split_commits(out_dir: str | os.PathLike) -> list[str]:
    """Complete the split commits a killed writer left behind and remove staging folders of dead writers.
    Returns the splits that were completed."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return []
    completed, pending = [], set()
    for path in sorted(out_dir.glob(f"{JOURNAL_PREFIX}*.json")):
        try:
            journal = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # a journal is written atomically: an unreadable one is not ours
        if not os.access(out_dir, os.W_OK):
            raise ValueError(f"{out_dir}: an interrupted write of split {journal.get('split')!r} needs completing, "
                             "but the folder is read-only")  # fmt: skip
        pending.add(journal["staging"])
        _apply_journal(out_dir, journal)
        completed.append(journal["split"])
    for staging in out_dir.glob(f"{STAGING_PREFIX}*"):
        match = re.match(rf"^{STAGING_PREFIX}.+?-(\d+)-[0-9a-f]+$", staging.name)
        if staging.name in pending or (match and _process_alive(int(match.group(1)))):
            continue
        shutil.rmtree(staging, ignore_errors=True)
    return completed


def verify_split_shards(out_dir: str | os.PathLike) -> dict[str, int]:
    """Check that every split under ``out_dir/data`` holds shards ``0 … N−1`` of one count N; returns the
    shard count of each split. Raises ``ValueError`` naming the split and the missing or foreign shards."""
    counts: dict[str, set[int]] = {}
    indices: dict[str, set[int]] = {}
    for path in Path(out_dir, "data").glob("*.parquet"):
        match = SHARD_NAME.match(path.name)
        if match is None:
            raise ValueError(f"{path}: not a shard name <split>-XXXXX-of-YYYYY.parquet")
        split = match.group("split")
        counts.setdefault(split, set()).add(int(match.group("count")))
        indices.setdefault(split, set()).add(int(match.group("index")))
    result = {}
    for split, found in counts.items():
        if len(found) > 1:
            raise ValueError(f"{out_dir}: split {split!r} mixes shards of {sorted(found)} — two conversions; "
                             "re-convert it")  # fmt: skip
        count = found.pop()
        missing = sorted(set(range(count)) - indices[split])
        if missing:
            raise ValueError(f"{out_dir}: split {split!r} is incomplete: shard(s) {missing[:10]} of {count} missing")
        result[split] = count
    return result


class StagedSplit:
    """Stage the shards of one split, then :meth:`commit` them atomically (see the module docstring).

    Use as a context manager: leaving it without a commit (an error) removes the staging folder and leaves the
    old split as it was.
    """

    def __init__(self, out_dir: str | os.PathLike, split: str, num_shards: int) -> None:
        check_split_name(split)
        self.out_dir, self.split, self.num_shards = Path(out_dir), split, num_shards
        (self.out_dir / "data").mkdir(parents=True, exist_ok=True)
        recover_split_commits(self.out_dir)
        self.staging = self.out_dir / f"{STAGING_PREFIX}{split}-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.staging.mkdir()
        self.committed = False

    def shard_path(self, index: int) -> Path:
        """Where to write shard ``index`` (in the staging folder)."""
        return self.staging / shard_name(self.split, index, self.num_shards)

    def commit(self) -> list[Path]:
        """Replace the split's shards by the staged ones; returns their final paths."""
        added = [shard_name(self.split, i, self.num_shards) for i in range(self.num_shards)]
        missing = [name for name in added if not (self.staging / name).is_file()]
        if missing:
            raise RuntimeError(f"cannot commit split {self.split!r}: shard(s) {missing} were never written")
        old = sorted(p.name for p in (self.out_dir / "data").glob(f"{self.split}-*.parquet"))
        journal = {"split": self.split, "staging": self.staging.name, "remove": old, "add": added}
        path = _journal_path(self.out_dir, self.split)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(journal))
        os.replace(temporary, path)  # from here on the new split is decided
        _apply_journal(self.out_dir, journal)
        self.committed = True
        return [self.out_dir / "data" / name for name in added]

    def __enter__(self) -> StagedSplit:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if not self.committed:
            shutil.rmtree(self.staging, ignore_errors=True)


def cast_features(block: np.ndarray, dtype: str, video_ids: list[str], source: str = "features") -> np.ndarray:
    """``block`` ``[n, T, D]`` (or ``[T, D]`` for one video) cast to ``dtype``, refused when a video holds NaN or
    Inf before or after the cast (float16 turns values beyond ±65504 into ±Inf), naming the videos."""
    cast = np.asarray(block).astype(dtype, copy=False)
    batched = cast.reshape(len(video_ids), -1)
    bad = np.flatnonzero(~np.isfinite(batched).all(1))
    if len(bad) == 0:
        return cast
    original = np.asarray(block).reshape(len(video_ids), -1)
    names = [video_ids[i] for i in bad[:10]]
    if np.isfinite(original[bad]).all():
        largest = float(np.abs(original[bad]).max())
        raise ValueError(f"{source}: videos {names} hold values up to {largest:.4g}, beyond the range of {dtype} "
                         "(±65504 for float16); store them as float32 (--dtype float32) or rescale")  # fmt: skip
    raise ValueError(f"{source}: NaN or Inf features in videos {names}")
