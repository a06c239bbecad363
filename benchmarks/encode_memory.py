"""Peak memory of `s5vh encode` (streamed from the feature shards, chunked, resumable) against one
`model.encode(array)` call on the same videos held in memory, at D = 512 and D = 4096.

    python -m benchmarks.encode_memory [--videos 20000] [--dims 512 4096]

Each side runs in its own process; a sampler reads /proc/<pid>/status every 20 ms. `RssAnon` is the memory the
process itself allocated (what bounded memory is about); `VmRSS` adds file pages mapped from the Arrow cache,
which the kernel can drop at any time. Writes the table to benchmarks/RESULTS.md (section "encode-memory").
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .common import machine_description, write_section

ROOT = Path(__file__).resolve().parents[1]


class LazyVideos(Sequence):
    """Video i is generated on access (seeded by i): the writer never holds the whole data set."""

    def __init__(self, count: int, frames: int, dim: int) -> None:
        self.count, self.frames, self.dim = count, frames, dim

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self.count))]
        rng = np.random.default_rng(index)
        return rng.standard_normal((self.frames, self.dim), dtype=np.float32).astype(np.float16)


def _status(pid: int) -> dict[str, int]:
    values = {}
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "RssAnon"):
                    values[key] = int(rest.split()[0]) * 1024
    except OSError:
        pass
    return values


def run_measured(command: list[str]) -> dict[str, float]:
    """Run ``command``; returns its peak RssAnon and VmRSS (bytes) and wall time."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peaks = {"RssAnon": 0, "VmRSS": 0}

    def sample() -> None:
        while process.poll() is None:
            for key, value in _status(process.pid).items():
                peaks[key] = max(peaks[key], value)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    _, stderr = process.communicate()
    sampler.join()
    if process.returncode != 0:
        raise RuntimeError(f"{command} failed: {stderr.decode()[-2000:]}")
    return {"anon": peaks["RssAnon"], "rss": peaks["VmRSS"], "seconds": time.perf_counter() - start}


def prepare(folder: Path, videos: int, frames: int, dim: int) -> tuple[Path, Path]:
    from s5vh_hf import S5VHConfig, S5VHModel
    from s5vh_hf.data.loading import load_feature_dataset
    from s5vh_hf.data.writing import write_feature_split

    data = folder / f"data-{dim}"
    write_feature_split(data, "database", LazyVideos(videos, frames, dim), [f"v{i}" for i in range(videos)],
                        shard_size=2048)  # fmt: skip
    load_feature_dataset(data, split="database")  # builds the Arrow cache outside the measured runs
    model = folder / f"model-{dim}"
    S5VHModel(S5VHConfig.from_preset("fcvid-64", feature_dim=dim)).save_pretrained(model)
    return data, model


ONE_CALL = """
import numpy as np, torch
from s5vh_hf import S5VHModel
from s5vh_hf.data.loading import load_feature_dataset
split = load_feature_dataset({data!r}, split="database").with_format("numpy", columns=["features"])
videos = split["features"]  # [N, T, D] float16, the whole split in memory
model = S5VHModel.from_pretrained({model!r})
codes = model.encode(videos, batch_size={batch}, output="packed", show_progress_bar=False)
print(codes.shape)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=20_000)
    parser.add_argument("--frames", type=int, default=25)
    parser.add_argument("--dims", type=int, nargs="+", default=[512, 4096])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--chunk-size", type=int, default=8192)
    parser.add_argument("--no-write", action="store_true", help="print the table only (trial runs)")
    args = parser.parse_args()
    rows = []
    gib = 1024**3
    with tempfile.TemporaryDirectory(prefix="s5vh-encode-memory-") as folder:
        for dim in args.dims:
            data, model = prepare(Path(folder), args.videos, args.frames, dim)
            streamed = run_measured([sys.executable, "-m", "s5vh_hf.cli", "encode", str(model), str(data), "--out",
                                     str(Path(folder) / f"codes-{dim}"), "--chunk-size", str(args.chunk_size),
                                     "--batch-size", str(args.batch_size)])  # fmt: skip
            script = textwrap.dedent(ONE_CALL.format(data=str(data), model=str(model), batch=args.batch_size))
            one_call = run_measured([sys.executable, "-c", script])
            rows.append(
                f"| {dim} | {args.videos:,} × {args.frames} | {streamed['anon'] / gib:.2f} | {streamed['rss'] / gib:.2f} "
                f"| {one_call['anon'] / gib:.2f} | {one_call['rss'] / gib:.2f} "
                f"| {streamed['anon'] / one_call['anon']:.2f} | {args.videos / streamed['seconds']:.0f} "
                f"| {args.videos / one_call['seconds']:.0f} |"
            )
            print(rows[-1], flush=True)
    table = "\n".join(
        [
            "## Encode memory (`python -m benchmarks.encode_memory`)",
            "",
            f"Machine: {machine_description()}.",
            "",
            f"Peak memory of encoding {args.videos:,} videos of {args.frames} frames (float16 shards, preset "
            f"fcvid-64 small model, batch {args.batch_size}, chunks of {args.chunk_size}), each side in its own "
            "process. `RssAnon`: memory the process allocated; `VmRSS` adds Arrow-cache pages mapped from disk "
            "(reclaimable). Videos/s include start-up and loading.",
            "",
            "| D | videos | `s5vh encode` RssAnon (GiB) | `s5vh encode` VmRSS | one `encode()` call RssAnon | one call "
            "VmRSS | ratio (RssAnon) | `s5vh encode` videos/s | one call videos/s |",
            "|---|---|---|---|---|---|---|---|---|",
            *rows,
        ]
    )
    if not args.no_write:
        write_section("encode-memory", table)
    print(table)


if __name__ == "__main__":
    main()
