"""Temporal backbones side by side: encode time and peak memory vs number of frames, training-step speed.

    python -m benchmarks.backbones [--frames 25,100,400,1600] [--backbones mamba,transformer,lstm,gru]

S5VH-small shapes (6 blocks, width 256, 4096-d features, 64 bits) with each temporal mixer. Every measurement runs
in a fresh process so that its peak memory is its own. Batches hold 6,400 frames (256 videos at T = 25, 4 at
T = 1600), so time per video compares the same amount of work.

On CPU, time and memory are measured in separate processes: the memory run fixes glibc's mmap threshold at
64 KiB (``MALLOC_MMAP_THRESHOLD_``), so every tensor is its own mapping, freed memory goes back to the OS at
once, and the peak resident memory tracks the peak of live memory instead of the allocator's fragmentation.
On a GPU machine the CUDA path (mamba-ssm kernels when installed) is measured, memory with
``torch.cuda.max_memory_allocated``, and the tables go to their own section.
"""

from __future__ import annotations

import argparse
import datetime
import json
import resource
from pathlib import Path

import numpy as np

from benchmarks.common import (
    environment_variable,
    machine_description,
    markdown_table,
    median_seconds,
    run_in_child,
    write_section,
)

FRAMES_PER_BATCH = 6400
PLOT_DIR = Path(__file__).parent


def _resident_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize()


def _measure(backbone: str, frames: int, train: bool, repeats: int, memory_only: bool, queue) -> None:
    import torch

    from s5vh_hf import S5VHConfig, S5VHModel
    from s5vh_hf.data.masking import two_view_visible_masks
    from s5vh_hf.training.slg import two_view_slg_loss

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    model = S5VHModel(S5VHConfig.from_preset("fcvid-64", temporal_mixer=backbone)).to(device)
    batch = 64 if train else max(1, FRAMES_PER_BATCH // frames)
    features = torch.randn(batch, frames, 4096, device=device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    if train:
        model.train()
        mask = torch.ones(batch, frames, dtype=torch.bool, device=device)
        visible_1, visible_2 = two_view_visible_masks(mask.cpu(), 0.75, torch.Generator().manual_seed(0))
        visible_1, visible_2 = visible_1.to(device), visible_2.to(device)
        labels = torch.randint(0, 450, (batch,), device=device)

        def run():
            model.zero_grad(set_to_none=True)
            two_view_slg_loss(model, features, mask, visible_1, visible_2, labels).total.backward()
            sync()
    else:
        model.eval()

        def run():
            model.hash_batch(features)
            sync()

    before = _resident_bytes()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    seconds = median_seconds(run, repeats, warmup=0 if memory_only else 1)
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() - before
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    queue.put(
        {
            "backbone": backbone,
            "frames": frames,
            "train": train,
            "batch": batch,
            "seconds": seconds,
            "videos_per_s": batch / seconds,
            "peak_mib": max(peak, 0) / 2**20,
            "device": device,
            "gpu": torch.cuda.get_device_name() if device == "cuda" else None,
            "scan": _scan_path(model, device),
        }
    )


def _scan_path(model, device: str) -> str:
    """Which implementation ran the Mamba mixers, as the mixer itself decides: CUDA kernels, the C kernels or the
    PyTorch scan."""
    import torch

    if model.config.temporal_mixer != "mamba":
        return "-"
    mixer = model.encoder.blocks[0].forward_mixer
    probe = torch.zeros(1, 1, model.config.hidden_size, device=device)
    names = {"cuda": "mamba-ssm CUDA", "cpu_kernel": "C kernel", "fast": "PyTorch scan", "reference": "reference scan"}
    return names[mixer.scan_backend(probe)]


def measure(backbone: str, frames: int, train: bool = False, repeats: int = 3) -> dict:
    """Time in one fresh process; on CPU, peak memory in another with a fixed mmap threshold (module docstring)."""
    result = run_in_child(_measure, backbone, frames, train, repeats, False)
    if result["device"] == "cpu" and not train:
        with environment_variable("MALLOC_MMAP_THRESHOLD_", "65536"):
            result["peak_mib"] = run_in_child(_measure, backbone, frames, train, 1, True)["peak_mib"]
    return result


def fitted_exponent(frames: list[int], values: list[float]) -> float:
    """Slope of log(value) vs log(T): 1 is linear growth, 2 quadratic."""
    return float(np.polyfit(np.log(frames), np.log(values), 1)[0])


def _plot(results: list[dict], backbones: list[str], suffix: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for key, label, name in (
        ("ms_per_video", "encode time per video (ms)", f"backbones{suffix}_time.png"),
        ("mib_per_video", "peak memory per video (MiB)", f"backbones{suffix}_memory.png"),
    ):
        figure, axis = plt.subplots(figsize=(6, 4))
        for backbone in backbones:
            rows = sorted(
                (r for r in results if r["backbone"] == backbone and not r["train"]), key=lambda r: r["frames"]
            )
            scale = (
                1000 * np.array([r["seconds"] for r in rows])
                if key == "ms_per_video"
                else [r["peak_mib"] for r in rows]
            )
            values = np.asarray(scale) / np.array([r["batch"] for r in rows])
            axis.loglog([r["frames"] for r in rows], values, marker="o", label=backbone)
        axis.set(xlabel="frames per video (T)", ylabel=label, title=f"S5VH-small encoder: {label.split(' (')[0]}")
        axis.grid(alpha=0.3, which="both")
        axis.legend()
        figure.tight_layout()
        figure.savefig(PLOT_DIR / name, dpi=120)
        plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", default="25,100,400,1600")
    parser.add_argument("--backbones", default="mamba,transformer,lstm,gru")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    frames = [int(t) for t in args.frames.split(",")]
    backbones = args.backbones.split(",")
    results = []
    for backbone in backbones:
        for t in frames:
            result = measure(backbone, t, repeats=args.repeats)
            results.append(result)
            print(
                f"{backbone:>11} T={t:5d}: {result['videos_per_s']:8.1f} videos/s, peak {result['peak_mib']:8.1f} MiB"
            )
        result = measure(backbone, 25, train=True, repeats=args.repeats)
        results.append(result)
        print(f"{backbone:>11} train T=25: {result['videos_per_s']:.1f} videos/s")
    device = results[0]["device"]
    suffix = "" if device == "cpu" else "_cuda"
    (PLOT_DIR / f"backbones{suffix}.json").write_text(json.dumps(results, indent=2))
    _plot(results, backbones, suffix)

    def row_of(backbone: str, t: int, train: bool = False) -> dict:
        return next(r for r in results if r["backbone"] == backbone and r["frames"] == t and r["train"] == train)

    header = ["backbone", "scan"] + [f"T={t}: videos/s · peak MiB" for t in frames] + ["train T=25 (videos/s)"]
    rows = [
        [b, row_of(b, frames[0])["scan"]]
        + [f"{row_of(b, t)['videos_per_s']:.1f} · {row_of(b, t)['peak_mib']:.0f}" for t in frames]
        + [f"{row_of(b, 25, True)['videos_per_s']:.1f}"]
        for b in backbones
    ]
    lines = []
    if len(frames) > 1:
        for b in backbones:
            per_video = [row_of(b, t)["seconds"] / row_of(b, t)["batch"] for t in frames]
            memory = [max(row_of(b, t)["peak_mib"], 1e-3) / row_of(b, t)["batch"] for t in frames]
            lines.append(
                f"- {b}: time per video ∝ T^{fitted_exponent(frames, per_video):.2f}, "
                f"peak memory per video ∝ T^{fitted_exponent(frames, memory):.2f}"
            )
    goals = []
    if "mamba" in backbones and "transformer" in backbones:
        longest, shortest = max(frames), min(frames)
        m, tr = row_of("mamba", longest), row_of("transformer", longest)
        goals.append(
            f"- T = {longest}: Mamba {m['videos_per_s']:.2f} vs Transformer {tr['videos_per_s']:.2f} videos/s "
            f"({m['videos_per_s'] / tr['videos_per_s']:.2f}×), peak {m['peak_mib']:.0f} vs {tr['peak_mib']:.0f} MiB"
        )
        m, tr = row_of("mamba", shortest), row_of("transformer", shortest)
        goals.append(
            f"- T = {shortest}: Mamba {m['videos_per_s']:.1f} vs Transformer {tr['videos_per_s']:.1f} videos/s "
            f"(Transformer/Mamba = {tr['videos_per_s'] / m['videos_per_s']:.2f}×)"
        )
    if device == "cpu":
        memory_note = (
            "peak = growth of resident memory while encoding one batch, measured in a separate process with "
            "`MALLOC_MMAP_THRESHOLD_=65536` so that it tracks live memory"
        )
    else:
        memory_note = f"peak = `torch.cuda.max_memory_allocated` above the inputs; GPU: {results[0]['gpu']}"
    body = (
        f"## Temporal backbones on {device.upper()} (`python -m benchmarks.backbones`)\n\n"
        f"S5VH-small shapes, 4096-d features, 64 bits; encode batches of {FRAMES_PER_BATCH:,} frames; training "
        f"step: batch 64, T = 25, mask 0.75. Medians of {args.repeats} runs, each configuration in its own process "
        f"({memory_note}). Machine: {machine_description()}. Run {datetime.date.today().isoformat()}.\n\n"
        + markdown_table(header, rows)
        + (
            "\n\nGrowth with T (log-log fit over " + ", ".join(map(str, frames)) + "):\n" + "\n".join(lines)
            if lines
            else ""
        )
        + ("\n\n" + "\n".join(goals) if goals else "")
        + f"\n\n![time vs T](backbones{suffix}_time.png) ![memory vs T](backbones{suffix}_memory.png)"
    )
    write_section(f"backbones{suffix}", body)


if __name__ == "__main__":
    main()
