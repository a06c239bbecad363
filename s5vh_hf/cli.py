"""The ``s5vh`` command: thin argument parsing over the library."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import numpy as np


def _demo(args: argparse.Namespace) -> int:
    import torch

    from .configuration_s5vh import S5VHConfig
    from .modeling_s5vh import S5VHModel
    from .synthetic import make_synthetic_videos

    torch.manual_seed(args.seed)
    data = make_synthetic_videos(num_videos=args.videos, feature_dim=64, num_frames=16, min_frames=8, seed=args.seed)
    config = S5VHConfig(feature_dim=64, hidden_size=32, encoder_depth=2, decoder_hidden_size=32, code_length=32)
    model = S5VHModel(config).eval()
    start = time.perf_counter()
    codes = model.encode(data.videos(), output="packed", show_progress_bar=False)
    elapsed = time.perf_counter() - start
    query = codes[:1]
    distances = np.unpackbits(query ^ codes, axis=1).sum(1)
    nearest = np.argsort(distances, kind="stable")[:5]
    print(f"Encoded {len(codes)} synthetic videos into {config.code_length}-bit codes in {elapsed:.2f} s")
    print(f"Nearest videos to {data.video_ids[0]} (label {data.labels[0]}), untrained model:")
    for rank, index in enumerate(nearest, 1):
        print(f"  {rank}. {data.video_ids[index]}  label {data.labels[index]}  Hamming {distances[index]}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="s5vh", description="Self-supervised video hashing with S5VH.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo",
        help="run the end-to-end demo on the embedded synthetic dataset",
        description="Generate the embedded synthetic dataset, encode it and show a Hamming search.",
        epilog="example: s5vh demo --videos 300",
    )
    demo.add_argument("--videos", type=int, default=600, help="number of synthetic videos (default 600)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.set_defaults(handler=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except (ValueError, TypeError, FileNotFoundError, KeyError) as error:
        if args.debug:
            raise
        print(f"s5vh {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
