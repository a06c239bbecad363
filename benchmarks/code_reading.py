"""The cost of reading the code (``code_pooling``): encode videos/s with the paper's mean frame code against the
default mean + ends (and three frames at each end), same weights, side by side (S5VH-small, 25 × 4096, 64 bits).

    python -m benchmarks.code_reading [--videos 1024] [--repeats 5]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from benchmarks.common import machine_description, markdown_table, median_seconds, write_section


def main() -> None:
    from s5vh_hf import S5VHConfig, S5VHModel

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    config = S5VHConfig.from_preset("fcvid-64", model_size="small")
    model = S5VHModel(config).eval()
    videos = np.random.default_rng(0).standard_normal((args.videos, 25, config.feature_dim)).astype(np.float32)
    readings = {"mean": ("mean", 1), "mean+ends": ("mean+ends", 1), "mean+ends, 3 frames at each end": ("mean+ends", 3)}
    times = {}
    for name, (pooling, ends_frames) in readings.items():
        model.config.code_pooling, model.config.code_ends_frames = pooling, ends_frames
        times[name] = median_seconds(lambda: model.encode(videos, batch_size=256, show_progress_bar=False),
                                     repeats=args.repeats)  # fmt: skip
    rows = [[name, f"{args.videos / times[name]:.0f}", f"{times['mean'] / times[name]:.3f}×"] for name in readings]
    body = (
        f"## Reading the code (`python -m benchmarks.code_reading`)\n\nMachine: {machine_description()}.\n\n"
        f"Encode {args.videos} videos of 25 × {config.feature_dim} (S5VH-small, 64 bits, batch 256), median of "
        f"{args.repeats}:\n\n" + markdown_table(["code_pooling", "videos/s", "relative to mean"], rows)
    )
    write_section("code-reading", body)
    print(body)


if __name__ == "__main__":
    main()
