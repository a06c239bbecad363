"""Timing, machine description and RESULTS.md section writing shared by the benchmark scripts."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import platform
import re
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

RESULTS_PATH = Path(__file__).with_name("RESULTS.md")


def median_seconds(run: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median wall time of ``run()`` over ``repeats`` calls after ``warmup`` untimed calls."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@contextlib.contextmanager
def environment_variable(name: str, value: str) -> Iterator[None]:
    """Set ``name`` for the duration of the block (and for child processes started in it), then restore it."""
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            del os.environ[name]
        else:
            os.environ[name] = previous


def run_in_child(target: Callable[..., None], *args: object) -> object:
    """Run ``target(*args, queue)`` in a fresh (spawned) process and return what it put on the queue, so that
    each measurement's peak memory is its own."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=target, args=(*args, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    capability = torch.backends.cpu.get_cpu_capability()
    gpu = f", GPU {torch.cuda.get_device_name()} (CUDA {torch.version.cuda})" if torch.cuda.is_available() else ""
    return (
        f"{cpu} ({capability}), {torch.get_num_threads()} threads{gpu}, torch {torch.__version__}, "
        f"Python {platform.python_version()}"
    )


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def write_section(name: str, body: str) -> None:
    """Replace (or append) the section ``name`` of RESULTS.md, delimited by HTML comment markers."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    text = RESULTS_PATH.read_text() if RESULTS_PATH.exists() else "# Benchmark results\n\n"
    section = f"{begin}\n{body.strip()}\n{end}"
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.DOTALL)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section + "\n"
    RESULTS_PATH.write_text(text)


def merge_into_json_file(path: Path, additions: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Add ``additions`` (table name → entries) to the JSON object of tables at ``path`` (created if missing) and
    return the whole object as written. It is read, merged and replaced atomically under an exclusive lock on
    ``path`` + ``.lock``, so two benchmark runs that store results in one file at once keep each other's entries (a
    plain read-modify-write drops the other's)."""
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stored = json.loads(path.read_text()) if path.exists() else {}
        for table, entries in additions.items():
            stored.setdefault(table, {}).update(entries)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(stored, indent=1))
        os.replace(temporary, path)
    return stored
