"""Hash-center generation for every preset setting (K ∈ {100, 101, 450} × L ∈ {16, 32, 64}).

    python -m benchmarks.centers [--dim 512]

Side by side on the same random 512-d semantic centers: the package's constrained search
(:func:`s5vh_hf.data.hash_centers.generate_hash_centers`) and the naive alternative, the best of 100 draws of random
±1 matrices (by minimum distance), which shows what the search buys against the Gilbert–Varshamov bound.
"""

from __future__ import annotations

import argparse
import datetime
import time

import numpy as np

from benchmarks.common import machine_description, markdown_table, write_section
from s5vh_hf.data.hash_centers import generate_hash_centers, hash_center_report, iter_supported_settings

RANDOM_DRAWS = 100


def best_random_centers(n_centers: int, code_length: int, rng: np.random.Generator) -> np.ndarray:
    """The random ±1 matrix with the largest minimum pairwise distance out of :data:`RANDOM_DRAWS` draws."""
    best, best_distance = None, -1
    for _ in range(RANDOM_DRAWS):
        centers = rng.choice(np.array([-1, 1], dtype=np.int8), size=(n_centers, code_length))
        distance = hash_center_report(centers).min_distance
        if distance > best_distance:
            best, best_distance = centers, distance
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=512, help="dimension of the random semantic centers")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rows = []
    for n_centers, code_length in iter_supported_settings():
        semantic = rng.standard_normal((n_centers, args.dim))
        start = time.perf_counter()
        result = generate_hash_centers(semantic, code_length, seed=0)
        seconds = time.perf_counter() - start
        ours = result.report
        start = time.perf_counter()
        random_report = hash_center_report(best_random_centers(n_centers, code_length, rng), semantic)
        random_seconds = time.perf_counter() - start
        print(f"{ours.summary()} in {seconds:.1f} s; random best-of-{RANDOM_DRAWS}: min {random_report.min_distance}")
        rows.append(
            [
                f"{n_centers} × {code_length}",
                ours.required_distance,
                f"{seconds:.2f} s",
                f"{ours.min_distance} ({'meets' if ours.constraint_satisfied else 'MISSES'} the bound)",
                f"{ours.semantic_correlation:.3f}",
                f"{random_seconds:.2f} s",
                f"{random_report.min_distance} ({'meets' if random_report.constraint_satisfied else 'misses'})",
                f"{random_report.semantic_correlation:.3f}",
            ]
        )
    header = [
        "K × L",
        "GV distance d",
        "search: time",
        "search: min Hamming",
        "search: semantic corr.",
        f"random best of {RANDOM_DRAWS}: time",
        "random: min Hamming",
        "random: semantic corr.",
    ]
    body = (
        "## Hash-center generation (`python -m benchmarks.centers`)\n\n"
        f"Every preset setting, on random {args.dim}-d semantic centers (seeded). The search is the package's; the "
        f"baseline keeps the best of {RANDOM_DRAWS} random ±1 matrices by minimum distance. Semantic correlation: "
        "Pearson correlation of center inner products with semantic cosine similarities. "
        f"Machine: {machine_description()}. Run {datetime.date.today().isoformat()}.\n\n" + markdown_table(header, rows)
    )
    write_section("centers", body)


if __name__ == "__main__":
    main()
