"""Ablation of the training defaults: each choice changed alone, against the defaults, on the quality sets.

    python -m benchmarks.quality_ablation [--sets order,digits,osuleaf] [--seeds 0] [--jobs 2]

Runs every variant as its own process (``--jobs`` at a time, one OpenMP thread each) through the same
``train_s5vh`` as ``python -m benchmarks.quality`` and writes the table to benchmarks/RESULTS.md (section
"quality-ablation").
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from benchmarks.common import machine_description, markdown_table, write_section

VARIANTS: dict[str, tuple[dict, dict, str]] = {
    "defaults": ({}, {}, "semantic"),
    "initialization = release (xavier; Δ bias 0)": ({"initialization": "release"}, {}, "semantic"),
    "initialization = trunc_normal (≤ 0.1)": ({"initialization": "trunc_normal"}, {}, "semantic"),
    "feature_normalization = none": ({"feature_normalization": "none"}, {}, "semantic"),
    "batch 128 (not sized for the data set)": ({}, {"per_device_train_batch_size": 128}, "semantic"),
    "learning rate 5e-4 (paper; default 1e-3)": ({}, {"learning_rate": 5e-4}, "semantic"),
    "share_direction_weights (release)": ({"share_direction_weights": True}, {}, "semantic"),
    "trainable_center_head (release)": ({"trainable_center_head": True}, {}, "semantic"),
    "decoder_token_order = visible_first (release)": ({"decoder_token_order": "visible_first"}, {}, "semantic"),
    "Hadamard centers (max. separation)": ({}, {}, "hadamard"),
    "warm-up at half the epochs (labels refreshed)": ({"warmup_epochs": -2}, {}, "semantic"),
    "mask ratio 0.25 (default 0.5)": ({"mask_ratio": 0.25}, {}, "semantic"),
    "mask ratio 0.75 (FCVID's)": ({"mask_ratio": 0.75}, {}, "semantic"),
    "model size small (6 blocks; slow)": ({"encoder_depth": 6}, {}, "semantic"),
}
"""name → (config overrides, training overrides, center generator). ``warmup_epochs = -2`` means half the
set's epochs."""


def run_variant(set_name: str, seed: int, variant: str) -> dict[int, float]:
    """Train one variant in this process; returns its mAP@K."""
    from benchmarks.quality import train_s5vh
    from benchmarks.quality_data import QUALITY_SETS

    qset = QUALITY_SETS[set_name](seed)
    config, training, centers = VARIANTS[variant]
    config = dict(config)
    if config.get("warmup_epochs") == -2:
        config["warmup_epochs"] = qset.epochs // 2
    return train_s5vh(qset, seed, config, training, centers).map_at_k


def _child(job: tuple[str, int, str]) -> tuple[tuple[str, int, str], dict[int, float] | str]:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    code = "import json, sys; from benchmarks.quality_ablation import run_variant; " \
           "print('RESULT', json.dumps(run_variant(sys.argv[1], int(sys.argv[2]), sys.argv[3])))"  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code, job[0], str(job[1]), job[2]], capture_output=True, text=True,
                          env=env)  # fmt: skip
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return job, {int(k): v for k, v in json.loads(line[len("RESULT ") :]).items()}
    return job, done.stderr[-500:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="order,digits,osuleaf")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated names (default: all)")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    sets, seeds = args.sets.split(","), [int(s) for s in args.seeds.split(",")]
    variants = [v for v in VARIANTS if v in args.variants.split(",")]
    jobs = [(s, seed, v) for s in sets for v in variants for seed in seeds]
    results: dict[tuple[str, int, str], dict[int, float]] = {}
    with ThreadPoolExecutor(args.jobs) as pool:
        for job, result in pool.map(_child, jobs):
            if isinstance(result, str):
                print(f"{job} failed: {result}", file=sys.stderr)
                continue
            results[job] = result
            print(job, {k: round(v, 3) for k, v in result.items()}, flush=True)
    first_k = {s: min(next(r for (n, _, _), r in results.items() if n == s)) for s in sets}
    rows = []
    for variant in variants:
        cells = []
        for s in sets:
            values = [results[(s, seed, variant)][first_k[s]] for seed in seeds if (s, seed, variant) in results]
            base = [results[(s, seed, "defaults")][first_k[s]] for seed in seeds if (s, seed, "defaults") in results]
            delta = f" ({np.mean(values) - np.mean(base):+.3f})" if values and base and variant != "defaults" else ""
            cells.append(f"{np.mean(values):.3f}{delta}" if values else "—")
        rows.append([variant, *cells])
    header = ["variant (one change from the defaults)"] + [f"{s} mAP@{first_k[s]}" for s in sets]
    body = (
        "## Ablation of the defaults (`python -m benchmarks.quality_ablation`)\n\n"
        f"Mini model, same budget and data as the quality benchmark; mean over seeds {seeds}, difference to the "
        f"defaults in brackets. Machine: {machine_description()}, {args.jobs} runs at a time, 1 thread each. "
        f"Run {datetime.date.today().isoformat()}.\n\n" + markdown_table(header, rows)
    )
    print(body)
    write_section("quality-ablation", body)


if __name__ == "__main__":
    main()
