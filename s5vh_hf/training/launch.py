"""Multi-process launches: notice when ``accelerate launch`` asked for several processes but started one."""

from __future__ import annotations

import os
import sys

MULTI_PROCESS_HINT = (
    "on a machine without GPUs, start several processes with `accelerate launch --multi_gpu --num_processes N …` "
    "(torchrun with the gloo backend); `accelerate launch --cpu --num_processes N` uses a launcher that needs MPI "
    "and otherwise starts one process"
)


def launch_mismatch() -> str | None:
    """A message when this process was started by ``accelerate launch`` with ``--num_processes`` > 1 but is the
    only one (the simple launcher sets ``MASTER_ADDR`` for N processes, yet nothing sets ``WORLD_SIZE``);
    ``None`` otherwise."""
    started_by_accelerate = "ACCELERATE_MIXED_PRECISION" in os.environ or "ACCELERATE_USE_CPU" in os.environ
    expects_peers = "MASTER_ADDR" in os.environ
    has_peers = int(os.environ.get("WORLD_SIZE", os.environ.get("PMI_SIZE", "1")) or 1) > 1
    if started_by_accelerate and expects_peers and not has_peers:
        return f"accelerate launch asked for several processes but started only this one; {MULTI_PROCESS_HINT}"
    return None


def warn_on_launch_mismatch() -> None:
    """Print :func:`launch_mismatch`'s message to stderr, if any (the run goes on as one process)."""
    message = launch_mismatch()
    if message:
        print(f"warning: {message}", file=sys.stderr)


def has_accelerator() -> bool:
    """Whether torch sees a GPU (CUDA/ROCm), Apple MPS or Intel XPU device."""
    import torch

    mps = getattr(torch.backends, "mps", None)
    xpu = getattr(torch, "xpu", None)
    return (
        torch.cuda.is_available()
        or bool(mps is not None and mps.is_available())
        or bool(xpu is not None and xpu.is_available())
    )


def process_state():
    """accelerate's ``PartialState``, joining the process group of ``accelerate launch`` also on a machine without
    an accelerator (where it must be told to use the CPU, or every process would run alone)."""
    from accelerate import PartialState

    return PartialState(cpu=not has_accelerator())
