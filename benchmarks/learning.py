"""Learning check: S5VH trained for a few CPU minutes on the embedded synthetic dataset vs LSH and PCA-sign.

    python -m benchmarks.learning [--epochs 12]

Runs the `s5vh demo` pipeline (same data, preprocessing and training) and records mAP@K of the three methods,
computed in the same run on the same database/query splits.
"""

from __future__ import annotations

import argparse
import datetime
import json
import tempfile
from pathlib import Path

from benchmarks.common import machine_description, markdown_table, write_section
from s5vh_hf.recipes.demo import run_demo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        summary = run_demo(Path(folder), epochs=args.epochs, show_progress=False)
        report = json.loads((Path(folder) / "evaluation.json").read_text())
    scores = summary["mAP@20"]
    rows = [[name, f"{value:.3f}"] for name, value in scores.items()]
    body = (
        "## Learning check (`python -m benchmarks.learning`)\n\n"
        f"Embedded synthetic dataset (1,200 training, 1,000 database, 300 query videos, 10 classes, 64-d features, "
        f"12–16 frames), 32 bits, demo model (2 blocks, width 64), {args.epochs} epochs = "
        f"{summary['train_seconds']} s of training. Baselines on mean-pooled features, same splits, same run. "
        f"Machine: {machine_description()}. Run {datetime.date.today().isoformat()}.\n\n"
        + markdown_table(["method", "mAP@20"], rows)
        + "\n\nS5VH mAP@K: "
        + ", ".join(f"@{k} {v:.3f}" for k, v in report["map_at_k"].items())
    )
    write_section("learning", body)
    print(body)


if __name__ == "__main__":
    main()
