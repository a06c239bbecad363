"""Fused Mamba kernels for CPUs, in C, compiled on first use and called through ``ctypes``.

Two kernels, each with its backward pass, work on time-major ``[T, b, E]`` float32 tensors in blocks of
``LANES`` channels (one vector register: 16 with AVX-512, 8 with AVX2, 4 with SSE/NEON), one pass over time per
(sequence, block):

- the selective scan: the Δ projection and its softplus, ``exp(Δ·A)``, the state update, the read-out
  ``⟨C, h⟩``, the skip ``D·u`` and the gate ``silu(z)`` in one pass, with the ``[N, LANES]`` state in registers.
  Its backward pass recomputes the states of one block and runs the adjoint recurrence the same way.
- the causal depthwise convolution followed by SiLU.

Eager PyTorch does each of these steps as a separate pass over memory, with a buffer for each intermediate.

The C source is ``csrc/cpu_kernels.c``; ``cpu_kernels_source.py`` carries the same text (generated, checked by a
test) so that the Hub's ``trust_remote_code`` copy can build it too. The Python side passes one
:class:`ScanCall` / :class:`ConvCall` structure per call, mirroring the C structs field by field (this module: the
C ABI and the autograd functions). Compiling and the trusted cache of built libraries are :mod:`.kernel_cache`.
Built with OpenMP, the
kernels run on torch's own OpenMP thread pool. When no compiler is available, or ``S5VH_CPU_KERNEL=0`` is set,
:func:`load_cpu_kernels` returns ``None`` and callers use the PyTorch implementations.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import torch

from .kernel_cache import build_library

logger = logging.getLogger(__name__)


MAX_STATE_SIZE = 256
"""Largest Mamba state size N the kernel handles (it keeps three ``[N, LANES]`` blocks on the stack)."""


_MIN_WORK_PER_THREAD = 1 << 16
"""Vector operations below which a job runs on one thread (a parallel region costs a few microseconds)."""


def _pointer(tensor: torch.Tensor | None) -> int | None:
    return None if tensor is None else tensor.data_ptr()


_i64, _i32, _ptr = ctypes.c_int64, ctypes.c_int32, ctypes.c_void_p


class ScanCall(ctypes.Structure):
    """``s5vh_scan_call`` of ``csrc/cpu_kernels.c``, field by field (a test compares the offsets with the C
    compiler's). Pointers are ``data_ptr()`` values, ``None`` for absent tensors."""

    _fields_ = [
        *[(name, _i64) for name in ("steps", "batch", "inner", "state", "rank")],
        *[(name, _ptr) for name in ("u", "delta", "A2", "B", "C", "D", "z", "dt", "dt_weight_t", "dt_bias")],
        ("softplus", _i32),
        ("threads", _i32),
        ("begin", _i64),
        ("end", _i64),
        ("out", _ptr),
        *[(name, _ptr) for name in ("dout", "du", "ddelta", "dz", "dB", "dC", "dA", "dD", "states")],
    ]


class ConvCall(ctypes.Structure):
    """``s5vh_conv_call`` of ``csrc/cpu_kernels.c``, field by field."""

    _fields_ = [
        *[(name, _i64) for name in ("steps", "batch", "inner", "kernel_size")],
        *[(name, _ptr) for name in ("x", "w", "bias")],
        ("begin", _i64),
        ("end", _i64),
        ("threads", _i32),
        *[(name, _ptr) for name in ("out", "dout", "dx", "dw", "dbias")],
    ]


KernelDeltaProjection = tuple[torch.Tensor, torch.Tensor, "torch.Tensor | None"]
"""``(dt [T, b, R], weight_transposed [R, E], bias [E] or None)``: Mamba's low-rank Δ projection in the C kernel's layout
(time-major, the weight transposed), fused into the scan. The public layout is
:data:`~s5vh_hf.model.selective_scan.DeltaProjection`, which ``selective_scan_cpu_kernel`` turns into this one."""


def _scan_call(
    u: torch.Tensor,
    delta: torch.Tensor | None,
    A2_transposed: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None,
    z: torch.Tensor | None,
    softplus: bool,
    projection: KernelDeltaProjection | None,
) -> ScanCall:
    steps, batch, inner = u.shape
    dt, weight_transposed, bias = projection if projection is not None else (None, None, None)
    return ScanCall(
        steps=steps, batch=batch, inner=inner, state=A2_transposed.shape[0], rank=dt.shape[-1] if dt is not None else 0,
        u=u.data_ptr(), delta=_pointer(delta), A2=A2_transposed.data_ptr(), B=B.data_ptr(), C=C.data_ptr(), D=_pointer(D),
        z=_pointer(z), dt=_pointer(dt), dt_weight_t=_pointer(weight_transposed), dt_bias=_pointer(bias),
        softplus=int(softplus),
    )  # fmt: skip


class CpuKernels:
    """The compiled kernels and how to run them on several threads; see :func:`load_cpu_kernels`.

    Built with OpenMP, a kernel runs its own parallel loop on torch's OpenMP thread pool (the library links the
    ``libgomp.so.1`` torch has already loaded). Without OpenMP (a compiler that lacks it), the work items are
    split over a Python thread pool instead; ``ctypes`` releases the GIL during each call.
    """

    def __init__(self, library: ctypes.CDLL) -> None:
        signatures = {
            "s5vh_scan_forward": ScanCall,
            "s5vh_scan_backward": ScanCall,
            "s5vh_conv_silu_forward": ConvCall,
            "s5vh_conv_silu_backward": ConvCall,
        }
        self._functions = {}
        for name, structure in signatures.items():
            function = getattr(library, name)
            function.argtypes, function.restype = [ctypes.POINTER(structure)], None
            self._functions[name] = function
        self.uses_openmp = bool(library.s5vh_uses_openmp())
        self.lanes = int(library.s5vh_lanes())
        """Channels per work item: the width of the float32 vectors the kernel was built for (16 with AVX-512)."""
        self.native = bool(library.s5vh_native_build())
        """Built for this CPU's vector instructions (``-march=native``); ``"auto"`` only uses native builds."""
        self._pool: ThreadPoolExecutor | None = None
        self._pool_owner: tuple[int, int] | None = None
        self._lock = threading.Lock()

    @staticmethod
    def _thread_count(items: int, work_per_item: int) -> int:
        return max(1, min(torch.get_num_threads(), items, (items * work_per_item) // _MIN_WORK_PER_THREAD))

    def _run(self, function, call: ctypes.Structure, items: int, threads: int, per_slot=None) -> None:
        """Run ``function(call)`` over ``items`` work items on ``threads`` threads (see :meth:`_thread_count`):
        one call that runs an OpenMP loop, or one call per thread of a Python pool, each on its own copy of
        ``call`` whose work range (and, through ``per_slot(call, slot)``, accumulation slot) it sets."""
        if self.uses_openmp or threads == 1:
            call.begin, call.end, call.threads = 0, items, threads
            function(ctypes.byref(call))
            return
        with self._lock:
            owner = (os.getpid(), threads)
            if self._pool is None or self._pool_owner != owner:  # a new process after fork, or a new count
                self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="s5vh-kernel")
                self._pool_owner = owner
            pool = self._pool
        bounds = [items * k // threads for k in range(threads + 1)]
        calls = []
        for slot in range(threads):
            part = type(call).from_buffer_copy(call)
            part.begin, part.end, part.threads = bounds[slot], bounds[slot + 1], 1
            if per_slot is not None:
                per_slot(part, slot)
            calls.append(part)
        for future in [pool.submit(function, ctypes.byref(part)) for part in calls]:
            future.result()

    # -- selective scan ----------------------------------------------------------------------------------------

    def scan_forward(
        self,
        u: torch.Tensor,
        delta: torch.Tensor | None,
        A2_transposed: torch.Tensor,
        B: torch.Tensor,
        C: torch.Tensor,
        D: torch.Tensor | None,
        z: torch.Tensor | None,
        softplus: bool,
        projection: KernelDeltaProjection | None = None,
    ) -> torch.Tensor:
        """Time-major, contiguous float32: ``u``, ``delta``, ``z`` ``[T, b, E]``; ``A2_transposed`` = A·log2(e) as
        ``[N, E]``; ``B``, ``C`` ``[T, b, N]``; ``D`` ``[E]``. Returns ``(y + D·u) ⊙ silu(z)`` ``[T, b, E]``,
        with ``Δ = softplus(delta)`` when ``softplus`` is set. With ``projection`` = ``(dt [T, b, R],
        weight_transposed [R, E], bias [E] or None)``, ``delta = dt · weight_transposed + bias`` is computed in the kernel and
        ``delta`` is not read (pass ``None``)."""
        steps, batch, inner = u.shape
        out = torch.empty_like(u)
        call = _scan_call(u, delta, A2_transposed, B, C, D, z, softplus, projection)
        call.out = out.data_ptr()
        items = batch * -(-inner // self.lanes)
        threads = self._thread_count(items, steps * A2_transposed.shape[0])
        self._run(self._functions["s5vh_scan_forward"], call, items, threads)
        return out

    def scan_backward(
        self,
        grad_out: torch.Tensor,
        u: torch.Tensor,
        delta: torch.Tensor | None,
        A2_transposed: torch.Tensor,
        B: torch.Tensor,
        C: torch.Tensor,
        D: torch.Tensor | None,
        z: torch.Tensor | None,
        softplus: bool,
        projection: KernelDeltaProjection | None = None,
    ) -> tuple[torch.Tensor | None, ...]:
        """Gradients ``(du, ddelta, dA [E, N], dB, dC, dD, dz)`` of :meth:`scan_forward` (``None`` for absent
        ``D``/``z``); ``ddelta`` is with respect to the raw input (before softplus; the projection's output when
        ``projection`` is given)."""
        steps, batch, inner = u.shape
        state = A2_transposed.shape[0]
        items = batch * -(-inner // self.lanes)
        slots = self._thread_count(items, 3 * steps * state)
        grad_u, grad_delta = torch.empty_like(u), torch.empty_like(u)
        grad_z = torch.empty_like(u) if z is not None else None
        # One accumulation slot per thread; dB and dC are kept per lane and summed over lanes here.
        grad_B = u.new_zeros(slots, *B.shape, self.lanes)
        grad_C = u.new_zeros(slots, *C.shape, self.lanes)
        grad_A = u.new_zeros(slots, state, inner)
        grad_D = u.new_zeros(slots, inner)
        scratch = u.new_empty(slots, steps * state * self.lanes)
        call = _scan_call(u, delta, A2_transposed, B, C, D, z, softplus, projection)
        call.dout, call.du, call.ddelta, call.dz = (
            grad_out.data_ptr(),
            grad_u.data_ptr(),
            grad_delta.data_ptr(),
            _pointer(grad_z),
        )
        slot_tensors = ("dB", grad_B), ("dC", grad_C), ("dA", grad_A), ("dD", grad_D), ("states", scratch)

        def per_slot(part: ScanCall, slot: int) -> None:  # OpenMP picks slot k itself from these bases
            for name, tensor in slot_tensors:
                setattr(part, name, tensor[slot].data_ptr())

        per_slot(call, 0)
        self._run(self._functions["s5vh_scan_backward"], call, items, slots, per_slot)
        return (
            grad_u,
            grad_delta,
            grad_A.sum(0).t(),
            grad_B.sum(dim=(0, -1)),
            grad_C.sum(dim=(0, -1)),
            grad_D.sum(0) if D is not None else None,
            grad_z,
        )

    # -- causal depthwise convolution + SiLU -------------------------------------------------------------------

    def conv_silu_forward(self, x: torch.Tensor, taps: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """``silu(causal_conv(x))``: ``x`` ``[T, b, E]`` time-major contiguous float32, ``taps`` ``[K, E]``
        (the conv weight ``[E, 1, K]`` transposed), ``bias`` ``[E]`` → ``[T, b, E]``."""
        steps, batch, inner = x.shape
        out = torch.empty_like(x)
        call = ConvCall(steps=steps, batch=batch, inner=inner, kernel_size=taps.shape[0], x=x.data_ptr(),
                        w=taps.data_ptr(), bias=_pointer(bias), out=out.data_ptr())  # fmt: skip
        rows = steps * batch  # the forward pass streams over (t, b) rows
        threads = self._thread_count(rows, -(-inner // self.lanes) * 4)
        self._run(self._functions["s5vh_conv_silu_forward"], call, rows, threads)
        return out

    def conv_silu_backward(
        self, grad_out: torch.Tensor, x: torch.Tensor, taps: torch.Tensor, bias: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Gradients ``(dx [T, b, E], dtaps [K, E], dbias [E])`` of :meth:`conv_silu_forward`."""
        steps, batch, inner = x.shape
        kernel = taps.shape[0]
        items = batch * -(-inner // self.lanes)
        slots = self._thread_count(items, 3 * steps * kernel)
        grad_x = torch.empty_like(x)
        grad_taps = x.new_zeros(slots, kernel, inner)
        grad_bias = x.new_zeros(slots, inner)
        call = ConvCall(steps=steps, batch=batch, inner=inner, kernel_size=kernel, x=x.data_ptr(),
                        w=taps.data_ptr(), bias=_pointer(bias), dout=grad_out.data_ptr(), dx=grad_x.data_ptr(),
                        dw=grad_taps.data_ptr(), dbias=grad_bias.data_ptr())  # fmt: skip

        def per_slot(part: ConvCall, slot: int) -> None:
            part.dw, part.dbias = grad_taps[slot].data_ptr(), grad_bias[slot].data_ptr()

        self._run(self._functions["s5vh_conv_silu_backward"], call, items, slots, per_slot)
        return grad_x, grad_taps.sum(0), grad_bias.sum(0)


class _CausalConvSilu(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias):  # noqa: D102 - see causal_conv1d_silu
        taps = weight[:, 0, :].t().contiguous()
        ctx.save_for_backward(x, taps, bias)
        return load_cpu_kernels().conv_silu_forward(x, taps, bias)

    @staticmethod
    def backward(ctx, grad_out):  # noqa: D102
        x, taps, bias = ctx.saved_tensors
        grad_x, grad_taps, grad_bias = load_cpu_kernels().conv_silu_backward(grad_out.contiguous(), x, taps, bias)
        return grad_x, grad_taps.t()[:, None, :], grad_bias if bias is not None else None


def causal_conv1d_silu(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``silu(causal depthwise conv(x))`` with the C kernel: ``x`` ``[T, b, E]`` time-major, ``weight``
    ``[E, 1, K]`` (``nn.Conv1d``'s), ``bias`` ``[E]``. Float32 in and out; differentiable. Raises where the
    kernels cannot run (no compiler, disabled, not a CPU tensor)."""
    require_cpu_kernels(x.device)
    return _CausalConvSilu.apply(x.contiguous(), weight, bias.contiguous() if bias is not None else None)


_KERNELS: CpuKernels | None = None
_KERNELS_ERROR: str | None = None
_LOAD_LOCK = threading.Lock()


def cpu_kernels_disabled() -> bool:
    """Whether ``S5VH_CPU_KERNEL`` is set to 0 / false / no / off."""
    return os.environ.get("S5VH_CPU_KERNEL", "1").strip().lower() in ("0", "false", "no", "off")


def load_cpu_kernels() -> CpuKernels | None:
    """The compiled kernels, building them on first use; ``None`` (logged once) if they cannot be built, or
    when ``S5VH_CPU_KERNEL=0`` disables them."""
    global _KERNELS, _KERNELS_ERROR
    if cpu_kernels_disabled():
        return None
    if _KERNELS is not None or _KERNELS_ERROR is not None:
        return _KERNELS
    with _LOAD_LOCK:
        if _KERNELS is None and _KERNELS_ERROR is None:
            try:
                _KERNELS = CpuKernels(build_library())
            except Exception as error:  # noqa: BLE001 - any failure means: use the PyTorch implementations
                _KERNELS_ERROR = str(error)
                logger.warning("The fused CPU kernels are unavailable (%s); using the PyTorch scan.", error)
    return _KERNELS


def require_cpu_kernels(device: torch.device, state_size: int = 0) -> CpuKernels:
    """The kernels, or a ``RuntimeError`` that says why they cannot run tensors on ``device`` (with a Mamba state
    size of ``state_size``): not a CPU tensor, a state size above :data:`MAX_STATE_SIZE`, or no kernels."""
    if device.type != "cpu":
        reason = f"the tensors are on {device}"
    elif state_size > MAX_STATE_SIZE:
        reason = f"state size {state_size} > {MAX_STATE_SIZE}"
    elif load_cpu_kernels() is None:
        reason = cpu_kernels_error() or "unknown"
    else:
        return _KERNELS
    raise RuntimeError(f"The fused CPU kernels cannot run here ({reason}); use implementation='fast'.")


def cpu_kernels_error() -> str | None:
    """Why :func:`load_cpu_kernels` returned ``None``: the build error, the ``S5VH_CPU_KERNEL`` setting, or
    ``None`` when the kernels loaded (or were not asked for yet)."""
    if cpu_kernels_disabled():
        return "disabled by S5VH_CPU_KERNEL=0"
    return _KERNELS_ERROR
