"""Preprocessing speed: hash centers for K = 450, L = 64, and PCA + k-means + centers on an FCVID-sized training
set (45,585 videos × 25 × 4096, float16 HDF5 on disk), with the peak memory of the preprocessing process.

    python -m benchmarks.preprocess [--videos 45585] [--workdir /tmp/s5vh-bench]

Side by side: faiss k-means (what the package uses) vs scikit-learn's KMeans on the same PCA features.
"""

from __future__ import annotations

import argparse
import datetime
import resource
import time
from pathlib import Path

import numpy as np

from benchmarks.common import machine_description, markdown_table, run_in_child, write_section


def _write_features(path: Path, videos: int, frames: int, dim: int, classes: int = 239) -> None:
    import h5py

    rng = np.random.default_rng(0)
    means = rng.standard_normal((classes, dim)).astype(np.float32)
    with h5py.File(path, "w") as handle:
        feats = handle.create_dataset("feats", (videos, frames, dim), dtype=np.float16, chunks=(64, frames, dim))
        for start in range(0, videos, 512):
            count = min(512, videos - start)
            labels = rng.integers(0, classes, count)
            noise = rng.standard_normal((count, frames, dim), dtype=np.float32)
            feats[start : start + count] = (means[labels][:, None] + noise).astype(np.float16)


def _preprocess(path: str, clusters: int, bits: int, queue) -> None:
    import h5py

    from s5vh_hf.data.clustering import compute_semantic_clusters
    from s5vh_hf.data.hash_centers import generate_hash_centers

    timings = {}
    with h5py.File(path, "r") as handle:
        start = time.perf_counter()
        result = compute_semantic_clusters(handle["feats"], n_clusters=clusters, pca_dim=512, seed=0)
        timings["clusters"] = time.perf_counter() - start
    start = time.perf_counter()
    centers = generate_hash_centers(result.semantic_centers, bits, seed=0)
    timings["centers"] = time.perf_counter() - start
    timings["report"] = centers.report.summary()
    # k-means side by side on the same PCA features.
    import faiss
    from sklearn.cluster import KMeans

    with h5py.File(path, "r") as handle:
        from s5vh_hf.data.clustering import mean_pool

        projected = result.project(mean_pool(handle["feats"]))
    start = time.perf_counter()
    faiss.Kmeans(512, clusters, niter=25, seed=0, min_points_per_centroid=1).train(np.ascontiguousarray(projected))
    timings["faiss_kmeans"] = time.perf_counter() - start
    start = time.perf_counter()
    KMeans(clusters, n_init=1, max_iter=25, random_state=0).fit(projected)
    timings["sklearn_kmeans"] = time.perf_counter() - start
    timings["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    queue.put(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=45_585)
    parser.add_argument("--frames", type=int, default=25)
    parser.add_argument("--dim", type=int, default=4096)
    parser.add_argument("--clusters", type=int, default=450)
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument("--workdir", default="/tmp/s5vh-bench")
    args = parser.parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"train_feats_{args.videos}x{args.frames}x{args.dim}.h5"
    if not path.exists():
        print(f"writing {path} …")
        _write_features(path, args.videos, args.frames, args.dim)
    timings = run_in_child(_preprocess, str(path), args.clusters, args.bits)
    total = timings["clusters"] + timings["centers"]
    print(timings)
    size_gib = path.stat().st_size / 2**30
    rows = [
        [f"hash centers, K = {args.clusters}, L = {args.bits}", f"{timings['centers']:.1f} s", "≤ 30 s"],
        [
            f"mean-pool + PCA(512) + k-means, {args.videos:,} × {args.frames} × {args.dim} float16 HDF5 ({size_gib:.1f} GiB)",
            f"{timings['clusters']:.1f} s",
            "",
        ],
        ["whole preprocessing (clusters + centers)", f"{total:.1f} s", "≤ 180 s"],
        ["peak memory of the preprocessing process", f"{timings['peak_rss_gib']:.2f} GiB", "≤ 8 GiB"],
        [
            f"k-means alone on the PCA features: faiss vs scikit-learn (25 iterations, K = {args.clusters})",
            f"{timings['faiss_kmeans']:.1f} s vs {timings['sklearn_kmeans']:.1f} s",
            f"{timings['sklearn_kmeans'] / timings['faiss_kmeans']:.1f}× faster",
        ],
    ]
    body = (
        "## Preprocessing (`python -m benchmarks.preprocess`)\n\n"
        f"Synthetic class-structured features. Machine: {machine_description()}. "
        f"Run {datetime.date.today().isoformat()}. Centers: {timings['report']}.\n\n"
        + markdown_table(["workload", "measured", "goal"], rows)
    )
    write_section("preprocess", body)


if __name__ == "__main__":
    main()
