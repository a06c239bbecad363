"""Peak memory of converting an HDF5 feature file to parquet shards (``import_h5_features``).

    python -m benchmarks.convert [--gib 2]

The conversion runs in a child process whose peak resident memory is compared with the file size, side by
side with the naive approach of reading the whole ``feats`` array at once.
"""

from __future__ import annotations

import argparse
import datetime
import resource
import shutil
import time
from pathlib import Path

import numpy as np

from benchmarks.common import machine_description, markdown_table, run_in_child, write_section


def _write(path: Path, videos: int, frames: int, dim: int) -> None:
    import h5py

    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as handle:
        feats = handle.create_dataset("feats", (videos, frames, dim), dtype=np.float32, chunks=(16, frames, dim))
        for start in range(0, videos, 512):
            count = min(512, videos - start)
            feats[start : start + count] = rng.standard_normal((count, frames, dim), dtype=np.float32)


def _convert(path: str, out: str, queue) -> None:
    from s5vh_hf.data.import_hdf5 import import_h5_features

    start = time.perf_counter()
    import_h5_features(path, out, "train", shard_size=2048)
    queue.put((time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20))


def _naive(path: str, queue) -> None:
    import h5py

    start = time.perf_counter()
    with h5py.File(path, "r") as handle:
        whole = np.asarray(handle["feats"])
    whole.astype(np.float16)
    queue.put((time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=2.0)
    parser.add_argument("--workdir", default="/tmp/s5vh-bench")
    args = parser.parse_args()
    frames, dim = 25, 4096
    videos = int(args.gib * 2**30 / (frames * dim * 4))
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"convert_{videos}x{frames}x{dim}.h5"
    if not path.exists():
        _write(path, videos, frames, dim)
    size = path.stat().st_size / 2**30
    out = workdir / "converted"
    shutil.rmtree(out, ignore_errors=True)
    ours_s, ours_gib = run_in_child(_convert, str(path), str(out))
    naive_s, naive_gib = run_in_child(_naive, str(path))
    shutil.rmtree(out, ignore_errors=True)
    print(
        f"import_h5_features: {ours_s:.1f} s, peak {ours_gib:.2f} GiB; read-all: {naive_s:.1f} s, peak {naive_gib:.2f} GiB"
    )
    rows = [
        ["import_h5_features (chunked, float16 shards)", f"{ours_s:.1f} s", f"{ours_gib:.2f} GiB"],
        ["read the whole `feats` array, then cast (naive)", f"{naive_s:.1f} s", f"{naive_gib:.2f} GiB"],
    ]
    body = (
        "## Feature conversion memory (`python -m benchmarks.convert`)\n\n"
        f"HDF5 of {videos:,} × {frames} × {dim} float32 ({size:.2f} GiB). Peak resident memory of a child process "
        f"doing only the conversion. Machine: {machine_description()}. Run {datetime.date.today().isoformat()}.\n\n"
        + markdown_table(["approach", "time", "peak memory"], rows)
    )
    write_section("convert", body)


if __name__ == "__main__":
    main()
