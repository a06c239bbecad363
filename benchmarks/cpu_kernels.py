"""The C selective-scan kernel built for different vector widths, side by side with the PyTorch scan.

    python -m benchmarks.cpu_kernels [--batch 256] [--frames 25]

One Mamba mixer's scan at S5VH-small / FCVID shapes (E = 512 channels, N = 16 states), forward (with softplus, skip
and gate) and forward + backward. Builds: this CPU's native build (what ``"auto"`` uses), AVX2 (``x86-64-v3``,
what a laptop without AVX-512 gets from its native build) and the portable SSE2 build (which ``"auto"`` never
uses); each is compiled into a temporary cache. The PyTorch scan is the fallback path.
"""

from __future__ import annotations

import argparse
import datetime
import math
import platform
import tempfile

import torch
import torch.nn.functional as F

from benchmarks.common import environment_variable, machine_description, markdown_table, median_seconds, write_section
from s5vh_hf.model import cpu_kernels, kernel_cache
from s5vh_hf.model.selective_scan import selective_scan_fast

_OPTIMISE = ["-O3", "-ffp-contract=fast", "-fno-math-errno", "-fopenmp"]
BUILDS = {
    "native (-march=native)": [*_OPTIMISE, "-march=native", "-DS5VH_NATIVE"],
    "AVX2 (-march=x86-64-v3)": [*_OPTIMISE, "-march=x86-64-v3"],
    "portable (SSE2)": _OPTIMISE,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--frames", type=int, default=25)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    generator = torch.Generator().manual_seed(0)
    shape = (args.frames, args.batch, 512)
    u, delta_raw, z = (torch.randn(*shape, generator=generator) for _ in range(3))
    A = -torch.rand(512, 16, generator=generator) * 4
    B, C = (torch.randn(args.frames, args.batch, 16, generator=generator) for _ in range(2))
    D = torch.randn(512, generator=generator)
    upstream = torch.randn(*shape, generator=generator)
    A2_t = (A * math.log2(math.e)).t().contiguous()

    def pytorch_forward():
        return selective_scan_fast(u, F.softplus(delta_raw), A, B, C, D, time_major=True) * F.silu(z)

    def pytorch_both():
        leaves = [t.clone().requires_grad_() for t in (u, delta_raw, A, B, C, D, z)]
        out = selective_scan_fast(*leaves[:1], F.softplus(leaves[1]), *leaves[2:6], time_major=True)
        (out * F.silu(leaves[6]) * upstream).sum().backward()

    with torch.no_grad():
        baseline_forward = median_seconds(pytorch_forward, args.repeats)
    baseline_both = median_seconds(pytorch_both, args.repeats)
    rows = []
    builds = BUILDS if platform.machine() == "x86_64" else {"native": BUILDS["native (-march=native)"]}
    for name, flags in builds.items():
        with tempfile.TemporaryDirectory() as cache, environment_variable("S5VH_KERNEL_CACHE", cache):
            try:
                kernels = cpu_kernels.CpuKernels(kernel_cache.build_library((flags,)))
            except RuntimeError as error:
                print(f"{name}: cannot build here ({str(error).splitlines()[-1]})")
                continue
        forward = median_seconds(lambda k=kernels: k.scan_forward(u, delta_raw, A2_t, B, C, D, z, True), args.repeats)

        def both(k=kernels):
            k.scan_forward(u, delta_raw, A2_t, B, C, D, z, True)
            k.scan_backward(upstream, u, delta_raw, A2_t, B, C, D, z, True)

        both_seconds = median_seconds(both, args.repeats)
        print(
            f"{name}: {kernels.lanes} lanes, forward {forward * 1e3:.1f} ms, forward+backward {both_seconds * 1e3:.1f} ms"
        )
        rows.append(
            [
                name,
                kernels.lanes,
                f"{forward * 1e3:.1f} ms",
                f"{baseline_forward / forward:.2f}×",
                f"{both_seconds * 1e3:.1f} ms",
                f"{baseline_both / both_seconds:.2f}×",
            ]
        )
    rows.append(
        [
            "PyTorch scan (fallback)",
            "-",
            f"{baseline_forward * 1e3:.1f} ms",
            "1×",
            f"{baseline_both * 1e3:.1f} ms",
            "1×",
        ]
    )
    body = (
        "## C scan kernel by vector width (`python -m benchmarks.cpu_kernels`)\n\n"
        f"One mixer's selective scan, T = {args.frames}, batch {args.batch}, E = 512, N = 16, with softplus, skip and "
        f"gate; medians of {args.repeats}. Every build runs on this machine, so the AVX2 and SSE2 rows show what the "
        "narrower vectors cost on the same cores, not a laptop's absolute speed. "
        f"Machine: {machine_description()}. Run {datetime.date.today().isoformat()}.\n\n"
        + markdown_table(
            ["build", "lanes", "forward", "vs PyTorch", "forward + backward", "vs PyTorch"],
            rows,
        )
    )
    write_section("cpu_kernels", body)


if __name__ == "__main__":
    main()
