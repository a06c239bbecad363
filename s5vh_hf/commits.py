"""Atomic updates of several files in one folder: stage, journal, apply, recover.

A writer puts its new files in a private staging folder inside the target folder, then records a *journal*
(``.commit-<tag>.json``, written atomically) listing the files to remove and the staged files to move in, and
applies it with renames. A kill before the journal exists leaves the old files untouched (the dead writer's
staging folder is removed by the next writer or reader); a kill after it leaves a journal that
:func:`recover_commits` completes — every writer, and every local load, runs it first. The folder therefore holds
the old set of files or the new one, never a mix. One writer per tag at a time.

``S5VH_FAULT_POINT=<point>`` kills the process with SIGKILL at that point (``staged:<tag>`` before the journal,
``journal:<tag>`` right after it): what ``scripts/fault_injection.py`` uses to try kills at the worst moments.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import uuid
from pathlib import Path
from typing import Any

STAGING_PREFIX = ".staging-"
JOURNAL_PREFIX = ".commit-"


def fault_point(name: str) -> None:
    """Die here with SIGKILL when ``S5VH_FAULT_POINT`` names this point (fault injection; a no-op otherwise)."""
    if os.environ.get("S5VH_FAULT_POINT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


def _journal_path(folder: Path, tag: str) -> Path:
    return folder / f"{JOURNAL_PREFIX}{tag}.json"


def _apply(folder: Path, journal: dict[str, Any]) -> None:
    """Idempotent: remove the replaced files, move the staged ones in, drop the journal and the staging folder."""
    destinations = {destination for _, destination in journal["moves"]}
    for name in journal["remove"]:
        if name not in destinations:
            (folder / name).unlink(missing_ok=True)
    for source, destination in journal["moves"]:
        if (folder / source).exists():
            (folder / destination).parent.mkdir(parents=True, exist_ok=True)
            os.replace(folder / source, folder / destination)
        elif not (folder / destination).exists():
            raise ValueError(f"{folder}: the interrupted update {journal['tag']!r} lost {destination}")
    _journal_path(folder, journal["tag"]).unlink(missing_ok=True)
    shutil.rmtree(folder / journal["staging"], ignore_errors=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover_commits(folder: str | os.PathLike) -> list[str]:
    """Complete the updates a killed writer left journaled, and remove staging folders of dead writers.
    Returns the tags that were completed. A read-only folder with a pending journal is an error."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    completed, pending = [], set()
    for path in sorted(folder.glob(f"{JOURNAL_PREFIX}*.json")):
        try:
            journal = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # journals are written atomically: an unreadable one is not ours
        if not os.access(folder, os.W_OK):
            raise ValueError(f"{folder}: an interrupted update ({journal.get('tag')!r}) needs completing, but the "
                             "folder is read-only")  # fmt: skip
        pending.add(journal["staging"])
        _apply(folder, journal)
        completed.append(journal["tag"])
    for staging in folder.glob(f"{STAGING_PREFIX}*"):
        match = re.match(rf"^{re.escape(STAGING_PREFIX)}.+-(\d+)-[0-9a-f]{{12}}$", staging.name)
        if staging.name in pending or (match and _process_alive(int(match.group(1)))):
            continue
        if os.access(folder, os.W_OK):
            shutil.rmtree(staging, ignore_errors=True)
    return completed


class StagedFiles:
    """Stage new files for ``folder`` in :attr:`staging`, then :meth:`commit` them atomically (see the module
    docstring). As a context manager, leaving without a commit (an error) removes the staging folder and leaves
    the old files as they were."""

    def __init__(self, folder: str | os.PathLike, tag: str) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.]+", tag):
            raise ValueError(f"commit tag must be a plain name, got {tag!r}")
        self.folder, self.tag = Path(folder), tag
        self.folder.mkdir(parents=True, exist_ok=True)
        recover_commits(self.folder)
        self.staging = self.folder / f"{STAGING_PREFIX}{tag}-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.staging.mkdir()
        self.committed = False

    def commit(self, moves: list[tuple[str, str]], remove: list[str] = ()) -> None:
        """Move staged files in (``(path in staging, path in folder)`` pairs) and delete ``remove`` (paths in
        the folder), as one step."""
        for source, _ in moves:
            if not (self.staging / source).is_file():
                raise RuntimeError(f"cannot commit {self.tag!r}: {source} was never written")
        staging = self.staging.name
        journal = {
            "tag": self.tag,
            "staging": staging,
            "moves": [[f"{staging}/{source}", destination] for source, destination in moves],
            "remove": sorted(remove),
        }
        fault_point(f"staged:{self.tag}")
        path = _journal_path(self.folder, self.tag)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(journal))
        os.replace(temporary, path)  # from here on the new files are decided
        fault_point(f"journal:{self.tag}")
        _apply(self.folder, journal)
        self.committed = True

    def __enter__(self) -> StagedFiles:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if not self.committed:
            shutil.rmtree(self.staging, ignore_errors=True)
