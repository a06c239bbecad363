"""Run the benchmark suite: ``python -m benchmarks [--quick] [--full]``.

Backbones (time and memory vs T, CPU or CUDA), learning quality against LSH/PCA/ITQ/kNN (about 25 min),
encode/training-step speed (C kernels vs PyTorch scan vs
reference scan), the C scan kernel by vector width, retrieval and evaluation, hash-center generation for
every preset, extraction on real codecs, an index that grows, and the search page at a million codes; ``--full`` adds the
FCVID-sized preprocessing (writes an 8.6 GiB feature file), the conversion memory benchmark and the order ablation
(about an hour). Each writes its
section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer frames and repeats (a smoke run)")
    parser.add_argument("--full", action="store_true", help="also the FCVID-sized preprocessing and conversion")
    args = parser.parse_args()
    runs = [
        ["benchmarks.backbones"] + (["--frames", "25,100", "--repeats", "1"] if args.quick else []),
        ["benchmarks.learning"] + (["--epochs", "3"] if args.quick else []),
        ["benchmarks.quality"] + (["--sets", "osuleaf", "--seeds", "0", "--no-write"] if args.quick else []),
        ["benchmarks.encode"] + (["--repeats", "1", "--reference-repeats", "1", "--batch", "64"] if args.quick else []),
        ["benchmarks.retrieval"] + (["--videos", "5000", "--search-database", "100000"] if args.quick else []),
        ["benchmarks.centers"],
        ["benchmarks.cpu_kernels"] + (["--repeats", "1"] if args.quick else []),
        ["benchmarks.video_codecs"] + (["--seconds", "1"] if args.quick else []),
        ["benchmarks.video_index_growth"] + (["--videos", "100"] if args.quick else []),
        ["benchmarks.search_page"] + (["--codes", "100000"] if args.quick else []),
    ]
    if args.full:
        runs += [["benchmarks.preprocess"], ["benchmarks.convert"], ["benchmarks.order_ablation"]]
    for run in runs:
        print(f"== python -m {' '.join(run)}", flush=True)
        subprocess.run([sys.executable, "-m", *run], check=True)


if __name__ == "__main__":
    main()
