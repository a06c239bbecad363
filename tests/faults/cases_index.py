"""The video index and full disks: kills during index writes, a full disk, swapped files."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from .harness import (
    ROOT,
    case,
    cli,
    cli_process,
    expect_clear,
    expect_raise,
    python_process,
    saved_model,
    split_contents,
    tiny_model,
    videos,
    write_split,
)


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
            sys.path.insert(0, {str(ROOT)!r})
            from tests.faults.harness import saved_model, write_split
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
