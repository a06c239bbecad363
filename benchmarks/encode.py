"""Encode and training-step throughput of S5VH-small: C kernels (default on CPU) vs PyTorch scan vs reference scan.

    python -m benchmarks.encode [--batch 256] [--train-batch 64]

FCVID shapes: 25 frames × 4096-d features, 64 bits, mask ratio 0.75 for the training step. The three paths run
the same model and weights: ``cpu_kernel`` (fused C selective scan and conv, the default where a C compiler is
available), ``fast`` (the blocked pure-PyTorch scan, the fallback) and ``reference`` (sequential scan). Encoding and
the training step are timed with the default model and again with the ends read from an encoder of their own
(``ends_encoder_width=64``, off by default: the same main weights plus that encoder); the step also without the
order term (``ends_term_weight=0``, the paper's objective).
"""

from __future__ import annotations

import argparse
import datetime

import torch

from benchmarks.common import machine_description, markdown_table, median_seconds, write_section
from s5vh_hf import S5VHConfig, S5VHModel
from s5vh_hf.data.masking import two_view_visible_masks
from s5vh_hf.training.slg import two_view_slg_loss


def _model(implementation: str, **overrides: object) -> S5VHModel:
    torch.manual_seed(0)
    return S5VHModel(S5VHConfig.from_preset("fcvid-64", scan_implementation=implementation, **overrides))


def _with_ends_encoder(model: S5VHModel, width: int = 64) -> S5VHModel:
    """The same model with the ends read from an encoder of their own (``ends_encoder_width``), its main weights
    copied."""
    copy = _model(model.config.scan_implementation, ends_encoder_width=width)
    missing, unexpected = copy.load_state_dict(model.state_dict(), strict=False)
    assert not unexpected and all(key.startswith(("ends_encoder.", "ends_hash_layer.")) for key in missing)
    return copy


def _encode_rate(model: S5VHModel, videos: torch.Tensor, repeats: int) -> float:
    """Videos per second of ``hash_batch`` on ``videos`` ``[B, T, D]`` (median of ``repeats``)."""
    model.eval()
    return len(videos) / median_seconds(lambda: model.hash_batch(videos), repeats)


def _train_rate(model: S5VHModel, step: tuple[torch.Tensor, ...], repeats: int) -> float:
    """Videos per second of one SLG training step (forward of both views and backward) on ``step`` = (features,
    attention mask, the two visible masks, pseudo-labels)."""
    model.train()

    def train_step() -> None:
        model.zero_grad(set_to_none=True)
        two_view_slg_loss(model, *step).total.backward()

    return len(step[0]) / median_seconds(train_step, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--train-batch", type=int, default=64)
    parser.add_argument("--frames", type=int, default=25)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--reference-repeats", type=int, default=2)
    args = parser.parse_args()

    generator = torch.Generator().manual_seed(0)
    videos = torch.randn(args.batch, args.frames, 4096, generator=generator)
    train_videos = videos[: args.train_batch]
    attention_mask = torch.ones(train_videos.shape[:2], dtype=torch.bool)
    visible_1, visible_2 = two_view_visible_masks(attention_mask, 0.75, generator)
    pseudo_labels = torch.randint(0, 450, (args.train_batch,), generator=generator)
    results = {}
    paths = (("cpu_kernel", args.repeats), ("fast", args.repeats), ("reference", args.reference_repeats))
    for implementation, repeats in paths:
        model = _model(implementation)
        own_ends = _with_ends_encoder(model)
        step = (train_videos, attention_mask, visible_1, visible_2, pseudo_labels)
        rates = [_encode_rate(model, videos, repeats), _encode_rate(own_ends, videos, repeats),
                 _train_rate(model, step, repeats), _train_rate(own_ends, step, repeats)]  # fmt: skip
        model.config.ends_term_weight = 0.0  # the same step without the order term (the paper's objective)
        rates.append(_train_rate(model, step, repeats))
        results[implementation] = tuple(rates)
        print(f"{implementation:>9}: " + ", ".join(f"{rate:7.1f}" for rate in rates) + " videos/s")

    kernel, fast, reference = results["cpu_kernel"], results["fast"], results["reference"]
    workloads = (
        f"encode (batch {args.batch})",
        "the same, the ends read from their own encoder (`ends_encoder_width=64`)",
        f"training step, both views (batch {args.train_batch})",
        "the same step, the ends read from their own encoder (`ends_encoder_width=64`)",
        "the same step without the order term (`ends_term_weight=0`)",
    )
    rows = [
        [
            workload,
            f"{kernel[i]:.1f}",
            f"{fast[i]:.1f}",
            f"{reference[i]:.1f}",
            f"{kernel[i] / fast[i]:.1f}×",
            f"{kernel[i] / reference[i]:.1f}×",
        ]
        for i, workload in enumerate(workloads)
    ]
    body = (
        "## Encode and training step (`python -m benchmarks.encode`)\n\n"
        f"S5VH-small, FCVID shapes ({args.frames}×4096, 64 bits, mask 0.75), medians of {args.repeats} "
        f"(C kernels, PyTorch scan) / {args.reference_repeats} (reference) runs, videos/s. "
        f"Machine: {machine_description()}. Run {datetime.date.today().isoformat()}.\n\n"
        + markdown_table(
            [
                "workload",
                "C kernels (default)",
                "PyTorch scan",
                "reference scan",
                "C kernels / PyTorch",
                "C kernels / reference",
            ],
            rows,
        )
    )
    write_section("encode", body)


if __name__ == "__main__":
    main()
