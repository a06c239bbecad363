"""Folders written safely: one writer at a time, multi-file updates all-or-nothing, and recovery that a hostile
folder cannot turn against its user.

**One writer per folder.** Every writer of a folder (a saved model, a dataset folder, a video index, an encode
output) holds an exclusive advisory lock (``fcntl.flock``) on ``<folder>/.s5vh-lock`` while it writes
(:func:`folder_lock`); a second writer waits for it (``S5VH_LOCK_TIMEOUT`` seconds, default 600) and then fails
with :class:`FolderBusy`. Readers take the same lock shared (:func:`reading`), so a load waits for a save in
progress instead of reading half of it. The kernel drops the lock of a process that dies, so a lock that can be
taken proves that no writer is alive. The lock is re-entrant within a process.

**All-or-nothing updates.** A writer puts its new files in a private staging folder inside the target folder
(:class:`StagedFiles`), then records a *journal* (``.commit-<tag>.json``, written atomically) listing the files to
remove and the staged files to move in, and applies it with renames. A kill before the journal exists leaves the
old files (the staging folder is removed by the next writer); a kill after it leaves a journal that the next
writer or reader completes (:func:`recover_commits`, as SQLite replays its journal). The folder holds the old set
of files or the new one, never a mix.

**Recovery cannot be turned against the user.** A folder from the Hub, git or a tarball is hostile until checked:
a journal is applied only when it is well-formed, names only paths inside its own folder (relative, no ``..``,
no symlinked directory leading out), was written by this package on this machine, and its writer is provably
dead (the folder lock can be taken and its pid with that start time is gone). Any other journal is ignored with a
warning and never applied. Loading writes nothing unless such an abandoned journal is there.

``S5VH_FAULT_POINT=<point>`` kills the process with SIGKILL at that point (``staged:<tag>`` before the journal,
``journal:<tag>`` right after it): what ``scripts/fault_injection.py`` uses to try kills at the worst moments.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import stat
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

logger = logging.getLogger(__name__)

STAGING_PREFIX = ".staging-"
JOURNAL_PREFIX = ".commit-"
LOCK_FILE = ".s5vh-lock"
JOURNAL_FORMAT = "s5vh-commit-v2"
_TAG = re.compile(r"[A-Za-z0-9_.]+")
_STAGING = re.compile(rf"{re.escape(STAGING_PREFIX)}(?P<tag>[A-Za-z0-9_.]+)-(?P<pid>\d+)-[0-9a-f]{{12}}")


class FolderBusy(OSError):
    """Another live process holds the folder's write lock."""


class UnsafePath(ValueError):
    """A path named by a folder's contents leads outside the folder."""


def fault_point(name: str) -> None:
    """Die here with SIGKILL when ``S5VH_FAULT_POINT`` names this point (fault injection; a no-op otherwise)."""
    if os.environ.get("S5VH_FAULT_POINT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


# ------------------------------------------------------------------------------------------- atomic single files


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """A private temporary path beside ``target`` (same suffix) for a writer that needs a file name (parquet,
    video, compiler output). When the block succeeds the file is ``fsync``ed and renamed over ``target``, then
    the folder is ``fsync``ed; on any error it is removed and ``target`` stays as it was. The one helper for every
    single-file write."""
    target = Path(target)
    temporary = target.with_name(f".{target.stem}.{os.getpid()}-{uuid.uuid4().hex[:12]}.partial{target.suffix}")
    try:
        yield temporary
        descriptor = os.open(temporary, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    fsync_folder(target.parent)


def write_file_atomically(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` all-or-nothing (:func:`atomic_path`). Any write error (a full disk, a file-size
    limit) raises and leaves the old file as it was."""
    payload = data.encode() if isinstance(data, str) else bytes(data)
    with atomic_path(path) as temporary:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(payload)
    return Path(path)


def fsync_folder(folder: str | os.PathLike) -> None:
    """Make renames in ``folder`` durable (a no-op where folders cannot be opened)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def fsync_tree(folder: str | os.PathLike) -> None:
    """``fsync`` every file under ``folder`` and the folders themselves (staged files before their commit)."""
    for root, _, files in os.walk(folder):
        for name in files:
            descriptor = os.open(os.path.join(root, name), os.O_RDONLY | os.O_NOFOLLOW)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
        fsync_folder(root)


def sha256_file(path: str | os.PathLike) -> str:
    """The sha256 of a file's bytes (hex), read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ----------------------------------------------------------------------------------------------- paths inside


def inside(folder: str | os.PathLike, name: str) -> Path:
    """``folder / name`` when ``name`` is a plain relative path that stays inside ``folder`` (no absolute path, no
    ``..``, no symlinked folder leading out; the last component itself may be a link, which renames and unlinks
    act on, not follow). Raises :class:`UnsafePath` otherwise."""
    if not isinstance(name, str) or not name or "\x00" in name or "\\" in name:
        raise UnsafePath(f"not a plain relative path: {name!r}")
    parts = PurePosixPath(name).parts
    if PurePosixPath(name).is_absolute() or any(part in ("..", ".") for part in parts) or "//" in name:
        raise UnsafePath(f"path leaves the folder: {name!r}")
    root = Path(folder).resolve()
    target = Path(folder, *parts)
    parent = target.parent.resolve()
    if parent != root and root not in parent.parents:
        raise UnsafePath(f"path leads outside {folder} through a link: {name!r}")
    return target


def is_inside(folder: str | os.PathLike, path: str | os.PathLike) -> bool:
    """Whether ``path`` resolved (every link followed) lies inside ``folder`` resolved."""
    root, resolved = Path(folder).resolve(), Path(path).resolve()
    return resolved == root or root in resolved.parents


# ------------------------------------------------------------------------------------------------- the lock

_held: dict[str, bool] = {}  # resolved folder → whether this process holds its lock exclusively
_held_guard = threading.Lock()


def _lock_timeout() -> float:
    try:
        return max(0.0, float(os.environ.get("S5VH_LOCK_TIMEOUT", "600")))
    except ValueError:
        return 600.0


def _open_lock_file(folder: Path, create: bool) -> int | None:
    path = folder / LOCK_FILE
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    if create:
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    try:
        descriptor = os.open(path, flags, 0o644)
    except FileNotFoundError:
        return None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise UnsafePath(f"{path} is a symbolic link; refusing to use it as the folder lock") from error
        if not create and error.errno in (errno.EACCES, errno.EPERM):
            return None
        raise
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise UnsafePath(f"{path} is not a regular file; refusing to use it as the folder lock")
    return descriptor


def _lock_holder(folder: Path) -> str:
    try:
        text = (folder / LOCK_FILE).read_text()[:200].strip()
    except OSError:
        return "another process"
    return f"process {text}" if text else "another process"


@contextlib.contextmanager
def folder_lock(
    folder: str | os.PathLike, exclusive: bool = True, timeout: float | None = None, create: bool = True
) -> Iterator[bool]:
    """Hold ``folder``'s advisory lock: exclusive for writers, shared for readers. Waits up to ``timeout`` seconds
    (``S5VH_LOCK_TIMEOUT``, default 600), then raises :class:`FolderBusy` naming the holder. With
    ``create=False`` (readers) a folder without a lock file is read without one (no writer ever used it) and
    nothing is written. Yields whether a lock is held. Re-entrant within a process (a shared lock is not
    upgraded: asking for an exclusive one inside a shared one is an error)."""
    folder = Path(folder)
    key = os.path.realpath(folder)
    with _held_guard:
        held_exclusively = _held.get(key)
    if held_exclusively is not None:  # re-entered: the outermost holder releases
        if exclusive and not held_exclusively:
            raise RuntimeError(f"{folder}: cannot write while this process holds the folder's read lock")
        yield True
        return
    if create:
        folder.mkdir(parents=True, exist_ok=True)
    descriptor = _open_lock_file(folder, create)
    if descriptor is None:
        yield False
        return
    try:
        deadline = time.monotonic() + (_lock_timeout() if timeout is None else timeout)
        announced = False
        while True:
            try:
                fcntl.flock(descriptor, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise FolderBusy(
                        f"{folder} is being written by {_lock_holder(folder)}; one writer per folder — wait for it "
                        "to finish (S5VH_LOCK_TIMEOUT sets how long to wait)"
                    ) from None
                if not announced:
                    logger.warning("%s is being written by %s; waiting for it", folder, _lock_holder(folder))
                    announced = True
                time.sleep(0.05)
        if exclusive and create:
            os.ftruncate(descriptor, 0)
            os.pwrite(descriptor, f"{os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        with _held_guard:
            _held[key] = exclusive
        try:
            yield True
        finally:
            with _held_guard:
                _held.pop(key, None)
    finally:
        os.close(descriptor)  # releases the flock


# ---------------------------------------------------------------------------------------------- the journal


def _journal_path(folder: Path, tag: str) -> Path:
    return folder / f"{JOURNAL_PREFIX}{tag}.json"


def _process_start(pid: int) -> str | None:
    """The start time of ``pid`` in clock ticks since boot (``/proc``), ``None`` when there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()[19]


def _this_writer() -> dict[str, Any]:
    return {"pid": os.getpid(), "host": socket.gethostname(), "started": _process_start(os.getpid())}


def _writer_alive(writer: dict[str, Any]) -> bool:
    started = _process_start(int(writer["pid"]))
    return started is not None and (writer.get("started") is None or started == writer["started"])


def check_journal(folder: Path, path: Path, journal: Any) -> dict[str, Any]:
    """``journal`` when it is one this package wrote for ``folder`` and every path it names stays inside it;
    raises ``ValueError`` saying what is wrong otherwise."""
    if not isinstance(journal, dict) or journal.get("format") != JOURNAL_FORMAT:
        raise ValueError("not an s5vh-hf journal of this version")
    expected = {"format", "tag", "staging", "moves", "remove", "writer"}
    if set(journal) != expected:
        raise ValueError(f"keys {sorted(set(journal) ^ expected)} are wrong")
    tag, staging = journal["tag"], journal["staging"]
    if not isinstance(tag, str) or not _TAG.fullmatch(tag) or path.name != f"{JOURNAL_PREFIX}{tag}.json":
        raise ValueError(f"tag {tag!r} is not this journal's")
    match = _STAGING.fullmatch(staging) if isinstance(staging, str) else None
    if match is None or match.group("tag") != tag:
        raise ValueError(f"staging folder {staging!r} is not a staging name")
    writer = journal["writer"]
    if (
        not isinstance(writer, dict)
        or not isinstance(writer.get("pid"), int)
        or not isinstance(writer.get("host"), str)
    ):
        raise ValueError("no writer recorded")
    if writer["host"] != socket.gethostname():
        raise ValueError(f"written on another machine ({writer['host'][:60]!r}); its writer cannot be checked")
    moves, remove = journal["moves"], journal["remove"]
    if not isinstance(moves, list) or not isinstance(remove, list):
        raise ValueError("moves and remove must be lists")
    for move in moves:
        if not (isinstance(move, list) and len(move) == 2 and all(isinstance(p, str) for p in move)):
            raise ValueError(f"move {move!r} is not a [source, destination] pair")
        if not move[0].startswith(f"{staging}/"):
            raise ValueError(f"move source {move[0]!r} is outside the staging folder")
        inside(folder, move[0])
        inside(folder, move[1])
        if move[1].split("/")[0].startswith((STAGING_PREFIX, JOURNAL_PREFIX)) or move[1] == LOCK_FILE:
            raise ValueError(f"move destination {move[1]!r} is a journal, lock or staging name")
    for name in remove:
        inside(folder, name)
        if name.split("/")[0].startswith((STAGING_PREFIX, JOURNAL_PREFIX)) or name == LOCK_FILE:
            raise ValueError(f"removal of {name!r}, a journal, lock or staging name")
    return journal


def _apply(folder: Path, journal: dict[str, Any]) -> None:
    """Idempotent: remove the replaced files, move the staged ones in, drop the journal and the staging folder.
    Every path is checked again right before use (:func:`inside`)."""
    destinations = {destination for _, destination in journal["moves"]}
    for name in journal["remove"]:
        if name not in destinations:
            target = inside(folder, name)
            if target.is_symlink() or target.is_file():
                target.unlink()
    for source, destination in journal["moves"]:
        source_path, target = inside(folder, source), inside(folder, destination)
        if source_path.is_file() and not source_path.is_symlink():
            target.parent.mkdir(parents=True, exist_ok=True)
            inside(folder, destination)  # the folders just made are real ones
            os.replace(source_path, target)
        elif not target.exists():
            raise ValueError(f"{folder}: the interrupted update {journal['tag']!r} lost {destination}")
    fsync_folder(folder)
    _journal_path(folder, journal["tag"]).unlink(missing_ok=True)
    _remove_staging(folder, journal["staging"])


def _remove_staging(folder: Path, name: str) -> None:
    staging = folder / name
    if _STAGING.fullmatch(name) and staging.is_dir() and not staging.is_symlink():
        shutil.rmtree(staging, ignore_errors=True)


def _read_journals(folder: Path) -> list[tuple[Path, dict[str, Any] | None, str]]:
    """Every journal file of ``folder``: (path, the journal or ``None``, why it is refused)."""
    found = []
    for path in sorted(folder.glob(f"{JOURNAL_PREFIX}*.json")):
        try:
            if path.is_symlink() or not path.is_file():
                raise ValueError("not a regular file")
            journal = check_journal(folder, path, json.loads(path.read_text()))
            found.append((path, journal, ""))
        except (OSError, ValueError, TypeError, KeyError) as error:
            found.append((path, None, str(error) or type(error).__name__))
    return found


def recover_commits(folder: str | os.PathLike) -> list[str]:
    """Complete the updates that dead writers of this machine left journaled (see the module docstring); a journal
    that fails the checks is ignored with a warning. Waits for a live writer to finish. Returns the tags
    completed. A read-only folder with an abandoned journal is an error."""
    folder = Path(folder)
    if not folder.is_dir() or not any(folder.glob(f"{JOURNAL_PREFIX}*.json")):
        return []
    completed: list[str] = []
    found = _read_journals(folder)
    for path, _, why in found:
        if why:
            logger.warning("%s: ignoring %s (%s); it is never applied", folder, path.name, why)
    usable = [(path, journal) for path, journal, _ in found if journal is not None]
    if not usable:
        return []
    with folder_lock(folder, exclusive=True, create=False) as locked:
        if not locked:
            logger.warning("%s: ignoring %s (no lock file: not written by a writer of this folder)", folder,
                           ", ".join(p.name for p, _ in usable))  # fmt: skip
            return []
        for path, journal, _ in _read_journals(folder):  # again, under the lock: a live writer may have finished
            if journal is None:
                continue
            if _writer_alive(journal["writer"]) and journal["writer"]["pid"] != os.getpid():
                logger.warning("%s: ignoring %s (its writer, pid %s, is alive)", folder, path.name,
                               journal["writer"]["pid"])  # fmt: skip
                continue
            if not os.access(folder, os.W_OK):
                raise ValueError(f"{folder}: an interrupted update ({journal['tag']!r}) needs completing, but the "
                                 "folder is read-only")  # fmt: skip
            _apply(folder, journal)
            completed.append(journal["tag"])
    return completed


def remove_abandoned_staging(folder: Path) -> None:
    """Remove staging folders of writers that died before their journal (call with the write lock held)."""
    pending = {journal["staging"] for _, journal, _ in _read_journals(folder) if journal is not None}
    for staging in folder.glob(f"{STAGING_PREFIX}*"):
        match = _STAGING.fullmatch(staging.name)
        if match is None or staging.name in pending or int(match.group("pid")) == os.getpid():
            continue
        _remove_staging(folder, staging.name)


@contextlib.contextmanager
def reading(folder: str | os.PathLike) -> Iterator[None]:
    """Read ``folder`` consistently: complete an abandoned update first (:func:`recover_commits`), then hold the
    shared lock (waiting for a writer in progress) while reading. Writes nothing to a folder with no abandoned
    journal; a folder no writer of this package ever locked is read as it is."""
    folder = Path(folder)
    if not folder.is_dir():
        yield
        return
    recover_commits(folder)
    with folder_lock(folder, exclusive=False, create=False):
        yield


class StagedFiles:
    """Stage new files for ``folder`` in :attr:`staging`, then :meth:`commit` them atomically (see the module
    docstring). Holds the folder's write lock from construction until the context is left. As a context manager,
    leaving without a commit (an error) removes the staging folder and leaves the old files as they were."""

    def __init__(self, folder: str | os.PathLike, tag: str) -> None:
        if not _TAG.fullmatch(tag):
            raise ValueError(f"commit tag must be a plain name, got {tag!r}")
        self.folder, self.tag = Path(folder), tag
        self._lock = contextlib.ExitStack()
        self._lock.enter_context(folder_lock(self.folder, exclusive=True))
        try:
            recover_commits(self.folder)
            remove_abandoned_staging(self.folder)
            self.staging = self.folder / f"{STAGING_PREFIX}{tag}-{os.getpid()}-{uuid.uuid4().hex[:12]}"
            self.staging.mkdir()
        except BaseException:
            self._lock.close()
            raise
        self.committed = False

    def commit(self, moves: list[tuple[str, str]], remove: list[str] = ()) -> None:
        """Move staged files in (``(path in staging, path in folder)`` pairs) and delete ``remove`` (paths in
        the folder), as one step."""
        for source, destination in moves:
            if not (self.staging / source).is_file():
                raise RuntimeError(f"cannot commit {self.tag!r}: {source} was never written")
            inside(self.folder, destination)
        fsync_tree(self.staging)
        staging = self.staging.name
        journal = {
            "format": JOURNAL_FORMAT,
            "tag": self.tag,
            "staging": staging,
            "moves": [[f"{staging}/{source}", destination] for source, destination in moves],
            "remove": sorted(remove),
            "writer": _this_writer(),
        }
        check_journal(self.folder, _journal_path(self.folder, self.tag), journal)
        fault_point(f"staged:{self.tag}")
        write_file_atomically(_journal_path(self.folder, self.tag), json.dumps(journal))  # the new files are decided
        fault_point(f"journal:{self.tag}")
        _apply(self.folder, journal)
        self.committed = True

    def close(self) -> None:
        """Drop the staging folder unless committed, and release the write lock."""
        try:
            if not self.committed:
                _remove_staging(self.folder, self.staging.name)
        finally:
            self._lock.close()

    def __enter__(self) -> StagedFiles:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()
