"""Mamba-1 selective scan: a sequential reference (the oracle), a fused C kernel for CPUs and a cache-blocked
PyTorch path.

All compute, for every sequence b and inner channel e, the diagonal linear recurrence

    h_t = exp(Δ_t · A) ⊙ h_{t-1} + Δ_t · u_t · B_t          h ∈ R^N, h_{-1} = 0
    y_t = ⟨C_t, h_t⟩ + D · u_t

with the layout of the model's linear layers: ``u``, ``delta`` ``[batch, T, E]``, ``A`` ``[E, N]``,
``B``, ``C`` ``[batch, T, N]``, ``D`` ``[E]``. Like mamba-ssm's ``selective_scan_fn``, :func:`selective_scan`
can also apply softplus to ``delta`` first (``delta_softplus=True``) and gate the output, ``y ⊙ silu(z)``.

Implementations:

- ``"cpu_kernel"``: :mod:`.cpu_kernels`, one fused C pass per vector of channels (softplus, exp, update,
  read-out, skip and gate), with a fused backward pass. The default on CPU tensors when a C compiler builds it
  for the CPU's vector instructions.
- ``"fast"``: pure PyTorch. Keeps the state in ``[chunk, N, E]`` blocks that fit in cache, computes ``exp`` as
  ``exp2`` (about three times cheaper on AVX-512 CPUs), and has a hand-written backward pass that recomputes
  the states instead of storing them. Used on GPUs without mamba-ssm and on CPUs without a (native) C build.
- ``"reference"``: the sequential oracle; slow.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F

from .configuration_s5vh import SCAN_IMPLEMENTATIONS
from .cpu_kernels import MAX_STATE_SIZE, load_cpu_kernels, require_cpu_kernels

try:  # optional CUDA kernels (the `cuda` extra)
    from mamba_ssm.ops.selective_scan_interface import selective_scan_fn as cuda_selective_scan
except ImportError:  # pragma: no cover - depends on the environment
    cuda_selective_scan = None
try:
    from causal_conv1d import causal_conv1d_fn as cuda_causal_conv1d
except ImportError:  # pragma: no cover - depends on the environment
    cuda_causal_conv1d = None

ScanImplementation = Literal["auto", "cpu_kernel", "fast", "reference"]


def cuda_kernels() -> tuple:
    """mamba-ssm's ``selective_scan_fn`` and causal-conv1d's ``causal_conv1d_fn`` (``None`` where not installed):
    the one place the CUDA path takes them from (a CPU test swaps in stand-ins here)."""
    return cuda_selective_scan, cuda_causal_conv1d


_LOG2_E = math.log2(math.e)
_STATE_ELEMENTS_PER_CHUNK = 1 << 20
"""Sequences per block are chosen so that one ``[chunk, N, E]`` state holds about this many floats."""


DeltaProjection = tuple[torch.Tensor, torch.Tensor, "torch.Tensor | None"]
"""``(dt [b, T, R], weight [E, R], bias [E] or None)``: Mamba's low-rank Δ projection, ``delta = dt·weightᵀ + bias``."""


def _prepare_delta(
    delta: torch.Tensor | None, delta_projection: DeltaProjection | None, delta_softplus: bool
) -> torch.Tensor:
    """Δ of the PyTorch scans: projected when ``delta_projection`` is given, then softplus when asked."""
    if (delta is None) == (delta_projection is None):
        raise ValueError("pass exactly one of delta and delta_projection")
    if delta_projection is not None:
        dt, weight, bias = delta_projection
        delta = F.linear(dt, weight, bias)
    return F.softplus(delta) if delta_softplus else delta


def selective_scan_reference(
    u: torch.Tensor,
    delta: torch.Tensor | None,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_softplus: bool = False,
    time_major: bool = False,
    delta_projection: DeltaProjection | None = None,
) -> torch.Tensor:
    """Sequential selective scan, the oracle every fast path is checked against (signature of
    :func:`selective_scan`, like mamba-ssm's ``selective_scan_ref`` next to ``selective_scan_fn``).

    The plain formulation of mamba-ssm's ``selective_scan_ref``: channels-first ``[b, E, T]`` tensors,
    ``exp(Δ·A)`` and ``Δ·u·B`` materialised as ``[b, E, T, N]``, then one step per frame. It is also the
    "reference-scan path" the benchmarks compare against. Differentiable through autograd.
    """
    delta = _prepare_delta(delta, delta_projection, delta_softplus)
    if time_major:
        u, delta, B, C = (t.transpose(0, 1) for t in (u, delta, B, C))
    y = _reference_scan(u, delta, A, B, C, D)
    if time_major:
        y = y.transpose(0, 1)
    return y * F.silu(z) if z is not None else y


def _reference_scan(u, delta, A, B, C, D) -> torch.Tensor:
    """``[b, T, ·]`` in, ``y`` ``[b, T, E]`` out."""
    u, delta, B, C = (t.transpose(1, 2) for t in (u, delta, B, C))  # [b, E, T] and [b, N, T]
    decay = torch.exp(torch.einsum("bdl,dn->bdln", delta, A))
    drive = torch.einsum("bdl,bnl,bdl->bdln", delta, B, u)
    state = u.new_zeros(u.shape[0], u.shape[1], A.shape[1])
    outputs = []
    for t in range(u.shape[2]):
        state = decay[:, :, t] * state + drive[:, :, t]
        outputs.append(torch.einsum("bdn,bn->bd", state, C[:, :, t]))
    y = torch.stack(outputs, dim=2)
    if D is not None:
        y = y + u * D[:, None]
    return y.transpose(1, 2)


def _chunk_size(batch: int, inner: int, state: int) -> int:
    return max(1, min(batch, _STATE_ELEMENTS_PER_CHUNK // (inner * state)))


def _time_major(*tensors: torch.Tensor) -> list[torch.Tensor]:
    """``[b, T, X]`` → contiguous ``[T, b, X]`` so that one time step is one contiguous slab."""
    return [t.transpose(0, 1).contiguous() for t in tensors]


def _scan_states_forward(
    delta_t: torch.Tensor,
    drive_scale_t: torch.Tensor,
    A2_transposed: torch.Tensor,
    B_t: torch.Tensor,
    C_t: torch.Tensor,
    y_t: torch.Tensor | None,
    states: torch.Tensor | None = None,
    decays: torch.Tensor | None = None,
    initial_state: torch.Tensor | None = None,
) -> torch.Tensor:
    """Run the recurrence on one block of sequences (time-major inputs); returns the final state.

    ``delta_t``, ``drive_scale_t`` (= Δ·u) ``[T, c, E]``; ``A2_transposed`` = A·log2(e) transposed ``[N, E]``;
    ``B_t``, ``C_t`` ``[T, c, N]``. Writes ``y_t`` ``[T, c, E]`` (without the D term) when given, and every
    state / decay into ``states`` / ``decays`` ``[T, c, N, E]`` when given (for the backward pass). The state
    starts at ``initial_state`` ``[c, N, E]`` (zeros by default).
    """
    steps, chunk, inner = delta_t.shape
    if initial_state is None:
        state = delta_t.new_zeros(chunk, A2_transposed.shape[0], inner)
    else:
        state = initial_state.clone()
    decay = delta_t.new_empty(chunk, A2_transposed.shape[0], inner)
    for t in range(steps):
        if decays is not None:
            decay = decays[t]
        torch.mul(delta_t[t, :, None, :], A2_transposed, out=decay)
        decay.exp2_()
        state.mul_(decay)
        state.addcmul_(B_t[t, :, :, None], drive_scale_t[t, :, None, :])
        if states is not None:
            states[t].copy_(state)
        if y_t is not None:
            torch.bmm(C_t[t, :, None, :], state, out=y_t[t].unsqueeze(1))
    return state


class _FastSelectiveScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, delta, A, B, C, D):  # noqa: D102 - see selective_scan_fast
        ctx.save_for_backward(u, delta, A, B, C, D)
        with torch.no_grad():
            return _fast_forward(u, delta, A, B, C, D)

    @staticmethod
    def backward(ctx, grad_y):  # noqa: D102
        u, delta, A, B, C, D = ctx.saved_tensors
        return _fast_backward(grad_y, u, delta, A, B, C, D)


def _fast_forward(u, delta, A, B, C, D) -> torch.Tensor:
    """Time-major forward: ``u``, ``delta`` ``[T, b, E]``, ``B``, ``C`` ``[T, b, N]`` → ``y`` ``[T, b, E]``."""
    steps, batch, inner = u.shape
    A2_transposed = (A * _LOG2_E).t().contiguous()
    drive = delta * u
    segments = _segment_count(steps, batch)
    if segments > 1:
        y = _segmented_forward(delta, drive, A2_transposed, B, C, segments)
    else:
        y = u.new_empty(steps, batch, inner)
        chunk = _chunk_size(batch, inner, A.shape[1])
        for start in range(0, batch, chunk):
            block = slice(start, start + chunk)
            _scan_states_forward(delta[:, block], drive[:, block], A2_transposed, B[:, block], C[:, block], y[:, block])
    return y.addcmul_(u, D) if D is not None else y


_TARGET_PARALLEL_SEQUENCES = 128
_MIN_SEGMENT_STEPS = 16


def _segment_count(steps: int, batch: int) -> int:
    """How many time segments to scan side by side: enough that few long sequences still give each per-step
    operation about :data:`_TARGET_PARALLEL_SEQUENCES` rows, with segments of at least 16 steps."""
    if batch >= _TARGET_PARALLEL_SEQUENCES // 2:
        return 1
    return max(1, min(_TARGET_PARALLEL_SEQUENCES // batch, steps // _MIN_SEGMENT_STEPS))


def _segmented_forward(delta, drive, A2_transposed, B, C, segments: int) -> torch.Tensor:
    """Exact scan of long sequences as ``segments`` time segments run side by side (a two-level scan).

    Pass 1 scans every segment from a zero state; a short sequential pass then carries the state across
    segments (state_in[p+1] = decay(p) ⊙ state_in[p] + end(p), where decay(p) = exp(A·ΣΔ over segment p));
    pass 2 rescans every segment from its true starting state. Only the order of multiplications changes,
    so the result matches the sequential scan to rounding.
    """
    steps, batch, inner = delta.shape
    length = -(-steps // segments)
    padded = length * segments
    n_state = A2_transposed.shape[0]

    def split(x: torch.Tensor) -> torch.Tensor:  # [T, b, X] → [length, segments·b, X]
        if padded != steps:  # Δ = 0 and no input past the end: the state passes through unchanged
            x = torch.cat([x, x.new_zeros(padded - steps, *x.shape[1:])])
        return x.view(segments, length, batch, x.shape[-1]).transpose(0, 1).reshape(length, segments * batch, -1)

    delta_s, drive_s, B_s, C_s = split(delta), split(drive), split(B), split(C)
    ends = _scan_states_forward(delta_s, drive_s, A2_transposed, B_s, C_s, None).view(segments, batch, n_state, inner)
    total_decay = torch.exp2(delta_s.sum(0)[:, None, :] * A2_transposed).view(segments, batch, n_state, inner)
    starts = torch.zeros_like(ends)
    for p in range(1, segments):
        torch.addcmul(ends[p - 1], total_decay[p - 1], starts[p - 1], out=starts[p])
    y_s = delta.new_empty(length, segments * batch, inner)
    _scan_states_forward(
        delta_s, drive_s, A2_transposed, B_s, C_s, y_s, initial_state=starts.view(segments * batch, n_state, inner)
    )
    y = y_s.view(length, segments, batch, inner).transpose(0, 1).reshape(padded, batch, inner)
    return y[:steps].contiguous()


def _fast_backward(grad_y, u, delta, A, B, C, D):
    """Time-major backward of :func:`_fast_forward`; recomputes the states block by block.

    Only the adjoint recurrence runs step by step; every reduction (∂C, ∂B, ∂(Δu), ∂Δ, ∂A) is one batched
    operation over the block's stored states afterwards.
    """
    steps, batch, inner = u.shape
    n_state = A.shape[1]
    A2_transposed = (A * _LOG2_E).t().contiguous()
    A_t = A.t().contiguous()
    grad_y = grad_y.contiguous()
    drive = delta * u
    grad_drive = torch.empty_like(drive)  # ∂L/∂(Δ·u)            [T, b, E]
    grad_delta = torch.empty_like(drive)
    grad_B = torch.empty_like(B)
    grad_C = torch.empty_like(C)
    grad_A_t = torch.zeros_like(A2_transposed)  # [N, E]
    # A backward block stores three state histories, so it is sized on T · N · E.
    chunk = max(1, min(batch, (4 * _STATE_ELEMENTS_PER_CHUNK) // (steps * n_state * inner)))
    for start in range(0, batch, chunk):
        block = slice(start, start + chunk)
        width = min(chunk, batch - start)
        states = u.new_empty(steps, width, n_state, inner)
        decays = u.new_empty(steps, width, n_state, inner)
        _scan_states_forward(
            delta[:, block], drive[:, block], A2_transposed, B[:, block], C[:, block], None, states, decays
        )
        gy, B_blk, C_blk = grad_y[:, block], B[:, block], C[:, block]
        # Adjoint recurrence: g_t = C_t ⊗ ∂y_t + a_{t+1} ⊙ g_{t+1}; grad_states[t] = g_t.
        grad_states = u.new_empty(steps, width, n_state, inner)
        grad_state = u.new_zeros(width, n_state, inner)
        for t in range(steps - 1, -1, -1):
            grad_state.addcmul_(C_blk[t, :, :, None], gy[t, :, None, :])
            grad_states[t].copy_(grad_state)
            grad_state.mul_(decays[t])
        flat = lambda x, rows=steps * width: x.reshape(rows, *x.shape[2:])  # noqa: E731
        # ∂C_t = h_t · ∂y_t ; ∂(Δu)_t = B_t · g_t ; ∂B_t = g_t · (Δu)_t   (batched over T · width)
        torch.bmm(flat(states), flat(gy)[:, :, None], out=flat(grad_C[:, block])[:, :, None])
        torch.bmm(flat(B_blk)[:, None, :], flat(grad_states), out=flat(grad_drive[:, block])[:, None, :])
        torch.bmm(flat(grad_states), flat(drive[:, block])[:, :, None], out=flat(grad_B[:, block])[:, :, None])
        # ∂L/∂(Δ_t·A) = g_t ⊙ a_t ⊙ h_{t-1} (zero at t = 0, where h_{-1} = 0), kept in grad_states.
        grad_states.mul_(decays)
        grad_states[1:].mul_(states[:-1])
        grad_states[0].zero_()
        torch.sum(grad_states * A_t, dim=2, out=grad_delta[:, block])
        grad_A_t += flat(grad_states.mul_(delta[:, block, None, :])).sum(0)
    grad_delta.addcmul_(grad_drive, u)
    grad_u = grad_drive.mul_(delta)
    grad_D = None
    if D is not None:
        grad_u.addcmul_(grad_y, D)
        grad_D = (grad_y * u).sum(dim=(0, 1))
    return grad_u, grad_delta, grad_A_t.t(), grad_B, grad_C, grad_D


def selective_scan_fast(
    u: torch.Tensor,
    delta: torch.Tensor | None,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_softplus: bool = False,
    time_major: bool = False,
    delta_projection: DeltaProjection | None = None,
) -> torch.Tensor:
    """Cache-blocked PyTorch selective scan with an analytic backward pass; signature of :func:`selective_scan`.

    With ``time_major=True`` every sequence tensor is ``[T, b, ·]`` instead of ``[b, T, ·]`` (the model's
    internal layout, which saves two transposes per call). Computes in float32 and returns ``u``'s dtype.
    """
    delta = _prepare_delta(delta, delta_projection, delta_softplus)
    y = _fast_scan(u, delta, A, B, C, D, time_major)
    return y * F.silu(z) if z is not None else y


def _fast_scan(u, delta, A, B, C, D, time_major: bool) -> torch.Tensor:
    dtype = u.dtype
    tensors = [t.float() if t is not None else None for t in (u, delta, A, B, C, D)]
    if not time_major:
        tensors[0], tensors[1], tensors[3], tensors[4] = _time_major(*(tensors[i] for i in (0, 1, 3, 4)))
    else:
        tensors = [t.contiguous() if t is not None else None for t in tensors]
    y = _FastSelectiveScan.apply(*tensors)
    return (y if time_major else y.transpose(0, 1)).to(dtype)


class _KernelSelectiveScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, softplus, dt, dt_weight, dt_bias):  # noqa: D102 - see below
        A2_transposed = (A * _LOG2_E).t().contiguous()  # the kernel's layout of A, kept for the backward pass
        weight_transposed = dt_weight.t().contiguous() if dt is not None else None
        ctx.save_for_backward(u, delta, A2_transposed, B, C, D, z, dt, dt_weight, weight_transposed, dt_bias)
        ctx.softplus = softplus
        projection = None if dt is None else (dt, weight_transposed, dt_bias)
        return load_cpu_kernels().scan_forward(u, delta, A2_transposed, B, C, D, z, softplus, projection)

    @staticmethod
    def backward(ctx, grad_out):  # noqa: D102
        u, delta, A2_transposed, B, C, D, z, dt, dt_weight, weight_transposed, dt_bias = ctx.saved_tensors
        projection = None if dt is None else (dt, weight_transposed, dt_bias)
        grad_u, grad_delta, grad_A, grad_B, grad_C, grad_D, grad_z = load_cpu_kernels().scan_backward(
            grad_out.contiguous(), u, delta, A2_transposed, B, C, D, z, ctx.softplus, projection
        )
        if dt is None:
            return grad_u, grad_delta, grad_A, grad_B, grad_C, grad_D, grad_z, None, None, None, None
        flat = grad_delta.view(-1, grad_delta.shape[-1])  # ∂L/∂(dt·Wᵀ + b), [T·b, E]
        grad_dt = (flat @ dt_weight).view_as(dt)
        grad_weight = flat.t() @ dt.reshape(-1, dt.shape[-1])
        grad_bias = flat.sum(0) if dt_bias is not None else None
        return grad_u, None, grad_A, grad_B, grad_C, grad_D, grad_z, None, grad_dt, grad_weight, grad_bias


def cpu_kernel_supports(device: torch.device, state_size: int) -> bool:
    """Whether the fused C kernel can run a scan on ``device`` with N = ``state_size``: CPU tensors, N ≤ 256,
    and a compiled kernel (none when ``S5VH_CPU_KERNEL=0``)."""
    return device.type == "cpu" and state_size <= MAX_STATE_SIZE and load_cpu_kernels() is not None


def require_cuda_kernels(device: torch.device) -> None:
    """Raise a ``RuntimeError`` saying why mamba-ssm's kernels cannot run tensors on ``device``: not a GPU, or the
    ``cuda`` extra (mamba-ssm, causal-conv1d) not installed."""
    missing = [name for name, kernel in zip(("mamba-ssm", "causal-conv1d"), cuda_kernels()) if kernel is None]
    if device.type != "cuda":
        reason = f"the tensors are on {device}, not a CUDA GPU"
    elif missing:
        reason = f"{' and '.join(missing)} not installed: pip install 's5vh-hf[cuda]'"
    else:
        return
    raise RuntimeError(f"scan_implementation='cuda' cannot run here ({reason}); use 'auto' to take what is available")


def resolve_scan_backend(requested: str, device: torch.device, state_size: int) -> str:
    """The one place that decides which scan runs: ``"cuda"`` (mamba-ssm and causal-conv1d on a GPU),
    ``"cpu_kernel"``, ``"fast"`` or ``"reference"``, from the configured implementation, the tensors' device, the
    state size and what is installed or built (``S5VH_CPU_KERNEL=0`` disables the C kernels).

    ``"auto"`` takes CUDA kernels on a GPU when installed, the C kernel on CPU when it was built for this CPU's
    vector instructions (a portable SSE2 build is slower than the PyTorch scan, which dispatches to AVX2/AVX-512
    itself), else the PyTorch scan. An explicit choice is honoured (and fails clearly where it cannot run).
    """
    if requested not in SCAN_IMPLEMENTATIONS:
        raise ValueError(f"Unknown selective-scan implementation {requested!r}; use one of {SCAN_IMPLEMENTATIONS}")
    if requested == "cuda":
        require_cuda_kernels(device)
    if requested != "auto":
        return requested
    if device.type == "cuda" and None not in cuda_kernels():
        return "cuda"
    if cpu_kernel_supports(device, state_size) and load_cpu_kernels().native:
        return "cpu_kernel"
    return "fast"


def selective_scan_cpu_kernel(
    u: torch.Tensor,
    delta: torch.Tensor | None,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_softplus: bool = False,
    time_major: bool = False,
    delta_projection: DeltaProjection | None = None,
) -> torch.Tensor:
    """Fused C selective scan (CPU): ``(scan(u, softplus?(delta)) + D·u) ⊙ silu(z)`` in one pass, with a fused
    backward pass. Shapes as in :func:`selective_scan`; computes in float32 and returns ``u``'s dtype.

    ``delta_projection`` = ``(dt [b, T, R], weight [E, R], bias [E] or None)`` (Mamba's ``dt_proj``) computes
    ``delta = dt·weightᵀ + bias`` inside the kernel instead of reading a ``[b, T, E]`` tensor; pass
    ``delta=None`` then.
    """
    require_cpu_kernels(u.device, A.shape[-1])
    if (delta is None) == (delta_projection is None):
        raise ValueError("pass exactly one of delta and delta_projection")
    dtype = u.dtype
    dt, dt_weight, dt_bias = delta_projection if delta_projection is not None else (None, None, None)
    names = ("u", "delta", "B", "C", "z", "dt")
    sequences = {name: t.float() for name, t in zip(names, (u, delta, B, C, z, dt)) if t is not None}
    if not time_major:
        sequences = dict(zip(sequences, _time_major(*sequences.values())))
    else:
        sequences = {name: t.contiguous() for name, t in sequences.items()}
    as_float = lambda t: t.float().contiguous() if t is not None else None  # noqa: E731
    y = _KernelSelectiveScan.apply(
        sequences["u"],
        sequences.get("delta"),
        as_float(A),
        sequences["B"],
        sequences["C"],
        as_float(D),
        sequences.get("z"),
        delta_softplus,
        sequences.get("dt"),
        as_float(dt_weight),
        as_float(dt_bias),
    )
    return (y if time_major else y.transpose(0, 1)).to(dtype)


def selective_scan(
    u: torch.Tensor,
    delta: torch.Tensor | None,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_softplus: bool = False,
    time_major: bool = False,
    delta_projection: DeltaProjection | None = None,
    implementation: ScanImplementation = "auto",
) -> torch.Tensor:
    """Selective scan ``(scan(u, Δ) + D·u) ⊙ silu(z)`` with ``Δ = softplus(delta)`` when ``delta_softplus``.

    ``implementation``: ``"auto"``, ``"cpu_kernel"``, ``"fast"`` or ``"reference"``, resolved by
    :func:`resolve_scan_backend`; every backend has this signature (:data:`SCANS`). Shapes: ``u``, ``delta``,
    ``z`` ``[b, T, E]`` (``[T, b, E]`` with ``time_major=True``); ``A`` ``[E, N]``; ``B``, ``C`` ``[b, T, N]`` (or
    ``[T, b, N]``); ``D`` ``[E]``. ``delta_projection`` = ``(dt, weight, bias)`` gives Δ as
    ``dt·weightᵀ + bias`` instead of ``delta`` (pass ``delta=None``). Returns ``[b, T, E]`` (or ``[T, b, E]``).
    """
    backend = resolve_scan_backend(implementation, u.device, A.shape[-1])
    return SCANS[backend](u, delta, A, B, C, D, z, delta_softplus, time_major, delta_projection)


def selective_scan_cuda(
    u: torch.Tensor,
    delta: torch.Tensor | None,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_softplus: bool = False,
    time_major: bool = False,
    delta_projection: DeltaProjection | None = None,
) -> torch.Tensor:
    """:func:`selective_scan` through mamba-ssm's ``selective_scan_fn``: the same inputs, turned into its
    channels-last ``[b, E, T]`` layout and back."""
    scan, _ = cuda_kernels()
    to_kernel = (
        (lambda t: t.permute(1, 2, 0).contiguous()) if time_major else (lambda t: t.transpose(1, 2).contiguous())
    )
    delta_bias = None
    if delta_projection is not None:
        dt, weight, delta_bias = delta_projection
        delta = dt @ weight.t()
        delta_bias = None if delta_bias is None else delta_bias.float()
    y = scan(to_kernel(u), to_kernel(delta), A, to_kernel(B), to_kernel(C), None if D is None else D.float(),
             z=None if z is None else to_kernel(z), delta_bias=delta_bias, delta_softplus=delta_softplus)  # fmt: skip
    return y.permute(2, 0, 1) if time_major else y.transpose(1, 2)


SCANS = {
    "reference": selective_scan_reference,
    "fast": selective_scan_fast,
    "cpu_kernel": selective_scan_cpu_kernel,
    "cuda": selective_scan_cuda,
}
"""The scan of each backend, all with :func:`selective_scan`'s signature."""
