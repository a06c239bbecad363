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
:class:`ScanCall` / :class:`ConvCall` structure per call, mirroring the C structs field by field. It is compiled
with the system C compiler (``$CC``, else ``gcc``/``cc``/``clang``) into an owner-only per-user cache
(``$S5VH_KERNEL_CACHE`` or ``~/.cache/s5vh_hf/kernels``) keyed on the source, the flags, the compiler and the
CPU; a cached library is loaded only after its owner, permissions and recorded sha256 check out (see
:func:`kernel_cache_dir`). Built with OpenMP, the
kernels run on torch's own OpenMP thread pool. When no compiler is available, or ``S5VH_CPU_KERNEL=0`` is set,
:func:`load_cpu_kernels` returns ``None`` and callers use the PyTorch implementations.
"""

from __future__ import annotations

import atexit
import ctypes
import hashlib
import logging
import os
import platform
import shutil
import stat
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from .commits import write_file_atomically
from .cpu_kernels_source import C_SOURCE

logger = logging.getLogger(__name__)


_OPTIMISE = ["-O3", "-ffp-contract=fast", "-fno-math-errno"]
_FLAG_SETS = tuple(
    [*_OPTIMISE, *target, *threads]
    for threads in (["-fopenmp"], [])
    for target in (["-march=native", "-DS5VH_NATIVE"], ["-mcpu=native", "-DS5VH_NATIVE"])
) + ([*_OPTIMISE, "-fopenmp"], _OPTIMISE)
"""Tried in order. OpenMP shares the thread pool of the OpenMP runtime torch has loaded (same soname).
``-march=native`` (``-mcpu=native`` on compilers that only take that) picks the CPU's widest vectors (AVX-512,
AVX2, NEON); the kernel is cached per CPU, so a native build never runs elsewhere. The last two are portable
builds (SSE2 on x86), which are slower than the PyTorch scan there: ``"auto"`` does not use them."""
_COMMON_FLAGS = ["-shared", "-fPIC", "-std=gnu11", "-x", "c"]
MAX_STATE_SIZE = 256
"""Largest Mamba state size N the kernel handles (it keeps three ``[N, LANES]`` blocks on the stack)."""


def _compiler() -> str | None:
    for candidate in (os.environ.get("CC"), "gcc", "cc", "clang"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    return None


def _cpu_signature() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith(("flags", "Features")):
                    return line
    except OSError:
        pass
    return platform.processor() + platform.machine()


_PRIVATE_FALLBACK: Path | None = None


def _unsafe_reason(path: Path, kind: str) -> str | None:
    """Why ``path`` must not be trusted (another owner, group/other-writable, a symlink, the wrong file type);
    ``None`` when it is safe. ``kind``: ``"dir"`` or ``"file"``."""
    try:
        info = os.lstat(path)
    except OSError as error:
        return f"cannot stat it ({error.strerror})"
    if stat.S_ISLNK(info.st_mode):
        return "it is a symbolic link"
    if kind == "dir" and not stat.S_ISDIR(info.st_mode):
        return "it is not a folder"
    if kind == "file" and not stat.S_ISREG(info.st_mode):
        return "it is not a regular file"
    return _unsafe_owner_or_mode(info)


def _unsafe_owner_or_mode(info: os.stat_result) -> str | None:
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        return f"it belongs to user {info.st_uid}, not to this user ({os.getuid()})"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return "others may write to it"
    return None


def _unsafe_ancestor(path: Path) -> str | None:
    """Why a folder on the way to ``path`` (as given, and with every link resolved) would let another user
    rename or replace what lies below it: one owned by someone other than this user or root, or writable by
    others without the sticky bit (``/tmp`` has it: others cannot rename what they do not own there). A link on
    the way must be this user's or root's. ``None`` when every component is safe."""
    uid = os.getuid() if hasattr(os, "getuid") else 0
    given = Path(os.path.abspath(path))
    resolved = Path(os.path.realpath(path))
    for folder in dict.fromkeys([*given.parents, *resolved.parents]):
        try:
            info = os.lstat(folder)
        except OSError as error:
            return f"cannot stat {folder} ({error.strerror})"
        if info.st_uid not in (0, uid):
            return f"{folder} belongs to user {info.st_uid}"
        if (
            stat.S_ISDIR(info.st_mode)
            and info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
            and not (info.st_mode & stat.S_ISVTX)
        ):
            return f"others may write to {folder} (and rename what it holds)"
    return None


def _private_fallback() -> Path:
    """A fresh owner-only temporary folder with an unpredictable name, made once per process and removed at
    exit (the kernel is then rebuilt by each process)."""
    global _PRIVATE_FALLBACK
    if _PRIVATE_FALLBACK is None or not _PRIVATE_FALLBACK.is_dir():
        _PRIVATE_FALLBACK = Path(tempfile.mkdtemp(prefix="s5vh_hf-kernels-"))  # mode 0700, random name
        atexit.register(shutil.rmtree, _PRIVATE_FALLBACK, True)
    return _PRIVATE_FALLBACK


def _owner_only_folder(folder: Path) -> str | None:
    """Create ``folder`` owner-only (0700) when missing; why it cannot be trusted, or ``None``."""
    try:
        missing = [p for p in [*reversed(folder.parents), folder] if not p.exists()]
        for part in missing:  # every folder made here is owner-only, whatever the umask
            part.mkdir(mode=0o700)
            os.chmod(part, 0o700)
    except OSError as error:
        return f"cannot create it ({error.strerror})"
    reason = _unsafe_reason(folder, "dir") or _unsafe_ancestor(folder)
    if reason is None and not os.access(folder, os.W_OK):
        reason = "it is not writable"
    return reason


def kernel_cache_dir() -> Path:
    """Where compiled kernels are kept: ``$S5VH_KERNEL_CACHE``, else ``$XDG_CACHE_HOME/s5vh_hf/kernels``
    (``~/.cache/s5vh_hf/kernels``), created owner-only (0700).

    A library found there is ``dlopen``ed, so the folder must be this user's alone, and so must the way to it: a
    folder that belongs to another user, that others may write to, or that is a symbolic link is refused (with a
    warning), as is one below a folder that another user could rename it out of (:func:`_unsafe_ancestor`), and
    one that cannot be created. The kernel is then built in a fresh private temporary folder with an
    unpredictable name — never a predictable shared path such as ``/tmp/<name>-<uid>``.
    """
    configured = os.environ.get("S5VH_KERNEL_CACHE")
    if configured:
        folder = Path(configured)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        folder = Path(base) / "s5vh_hf" / "kernels"
    reason = _owner_only_folder(folder)
    if reason is None:
        reason = _records_problem()
    if reason is None:
        return folder
    _warn_once(f"kernel cache {folder} is not used: {reason}; building in a private temporary folder instead")
    return _private_fallback()


def kernel_records_dir() -> Path:
    """Where the sha256 of every library this user built is recorded: ``$S5VH_KERNEL_RECORDS``, else
    ``$XDG_STATE_HOME/s5vh_hf/kernel-records`` (``~/.local/state/…``) — not beside the libraries it vouches for,
    so write access to a cache folder is not enough to vouch for a planted library."""
    configured = os.environ.get("S5VH_KERNEL_RECORDS")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "s5vh_hf" / "kernel-records"


def _records_problem() -> str | None:
    reason = _owner_only_folder(kernel_records_dir())
    return None if reason is None else f"the hash records folder {kernel_records_dir()} is unsafe: {reason}"


def _record_path(target: Path) -> Path:
    """The hash record of the library at ``target``: in the records folder, keyed on the library's full path
    (a library in the private fallback folder keeps its record there, beside it: that folder dies with the
    process)."""
    if _PRIVATE_FALLBACK is not None and target.parent == _PRIVATE_FALLBACK:
        return target.with_name(target.name + ".sha256")
    key = hashlib.sha256(os.path.realpath(target).encode()).hexdigest()[:32]
    return kernel_records_dir() / f"{key}.sha256"


_WARNED: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _WARNED:
        _WARNED.add(message)
        logger.warning(message)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sha256_descriptor(descriptor: int) -> str:
    digest, offset = hashlib.sha256(), 0
    while block := os.pread(descriptor, 1 << 20, offset):
        digest.update(block)
        offset += len(block)
    return digest.hexdigest()


def _open_verified(target: Path) -> int | None:
    """Open the library once and check that open file: a regular file of this user's that others cannot write,
    whose sha256 equals the record made when this package built it. Returns the descriptor (the caller loads that
    very file through it and closes it), or ``None``. A truncated, replaced or foreign library fails here and is
    never ``dlopen``ed (a truncated one would crash the process with SIGBUS)."""
    record = _record_path(target)
    if _unsafe_reason(record, "file"):
        return None
    try:
        descriptor = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode) or _unsafe_owner_or_mode(info):
            raise OSError("not this user's regular file")
        if record.read_text().strip() != _sha256_descriptor(descriptor):
            raise OSError("hash mismatch")
    except OSError:
        os.close(descriptor)
        return None
    return descriptor


def _verified(target: Path) -> bool:
    """Whether the cached library at ``target`` passes :func:`_open_verified`."""
    descriptor = _open_verified(target)
    if descriptor is None:
        return False
    os.close(descriptor)
    return True


_LOADED_DESCRIPTORS: list[int] = []
"""Descriptors of loaded libraries, kept open: the loader knows a library by the name it was opened under, so
``/proc/self/fd/N`` must never name another file while the process lives."""


def _load_descriptor(descriptor: int) -> ctypes.CDLL:
    """``dlopen`` the file open at ``descriptor`` — the file that was checked, whatever its path names now. On
    success the descriptor is kept open for the life of the process (see ``_LOADED_DESCRIPTORS``); the caller
    closes it only when this raises."""
    path = f"/proc/self/fd/{descriptor}"
    if not os.path.exists(path):
        raise OSError("no /proc/self/fd here: a checked library cannot be loaded by its descriptor")
    library = ctypes.CDLL(path)
    _LOADED_DESCRIPTORS.append(descriptor)
    return library


def _load_cached(target: Path) -> ctypes.CDLL | None:
    """The verified cached library at ``target`` with the kernel's functions, or ``None``."""
    descriptor = _open_verified(target)
    if descriptor is None:
        return None
    try:
        library = _load_descriptor(descriptor)
    except OSError:
        os.close(descriptor)
        return None
    return library if all(hasattr(library, name) for name in _EXPORTED) else None


def _compile_and_load(compiler: str, flags: list[str], target: Path) -> ctypes.CDLL:
    """Compile into a private temporary file, hash and load that open file, then record the hash and publish the
    library under ``target`` (atomic renames; concurrent builders each load their own file and the last rename
    wins)."""
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".build-", suffix=".so")
    os.close(handle)
    record = _record_path(target)
    try:
        subprocess.run(
            [compiler, *flags, *_COMMON_FLAGS, "-", "-o", temporary],
            input=C_SOURCE,
            text=True,
            capture_output=True,
            check=True,
            timeout=300,
        )
        os.chmod(temporary, 0o700)
        descriptor = os.open(temporary, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            digest = _sha256_descriptor(descriptor)
            library = _load_descriptor(descriptor)
        except BaseException:
            os.close(descriptor)
            raise
        write_file_atomically(record, digest + "\n")
        os.chmod(record, 0o600)
        os.replace(temporary, target)
        return library
    finally:
        Path(temporary).unlink(missing_ok=True)


def _library_key(compiler: str, flags: list[str]) -> str:
    parts = [C_SOURCE, *flags, compiler, str(os.stat(compiler).st_mtime), _cpu_signature()]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:20]


def _build_library(flag_sets: tuple[list[str], ...] = _FLAG_SETS) -> ctypes.CDLL:
    """Load the verified cached kernel, or compile it, with the first flag set that works. A cached library that
    fails verification, or loads but lacks the kernel's functions (a foreign library), is rebuilt."""
    compiler = _compiler()
    if compiler is None:
        raise RuntimeError("no C compiler found (set $CC or install gcc)")
    errors = []
    for flags in flag_sets:
        target = kernel_cache_dir() / f"s5vh_scan_{_library_key(compiler, flags)}.so"
        try:
            library = _load_cached(target) if target.exists() else None
            if library is not None:
                return library
            if target.exists():
                logger.info("rebuilding the cached kernel %s (it failed verification)", target)
            return _compile_and_load(compiler, flags, target)
        except (OSError, subprocess.SubprocessError) as error:
            detail = getattr(error, "stderr", "") or str(error)
            errors.append(f"{' '.join(flags)}: {detail.strip()[-500:]}")
    raise RuntimeError("compiling the C kernel failed:\n" + "\n".join(errors))


_EXPORTED = (
    "s5vh_scan_forward",
    "s5vh_scan_backward",
    "s5vh_conv_silu_forward",
    "s5vh_conv_silu_backward",
    "s5vh_uses_openmp",
    "s5vh_lanes",
    "s5vh_native_build",
)
"""Functions the compiled library must export."""


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
"""``(dt [T, b, R], weight_t [R, E], bias [E] or None)``: Mamba's low-rank Δ projection in the C kernel's layout
(time-major, the weight transposed), fused into the scan. The public layout is
:data:`~s5vh_hf.model.selective_scan.DeltaProjection`, which ``selective_scan_cpu_kernel`` turns into this one."""


def _scan_call(
    u: torch.Tensor,
    delta: torch.Tensor | None,
    A2_t: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None,
    z: torch.Tensor | None,
    softplus: bool,
    projection: KernelDeltaProjection | None,
) -> ScanCall:
    steps, batch, inner = u.shape
    dt, weight_t, bias = projection if projection is not None else (None, None, None)
    return ScanCall(
        steps=steps, batch=batch, inner=inner, state=A2_t.shape[0], rank=dt.shape[-1] if dt is not None else 0,
        u=u.data_ptr(), delta=_pointer(delta), A2=A2_t.data_ptr(), B=B.data_ptr(), C=C.data_ptr(), D=_pointer(D),
        z=_pointer(z), dt=_pointer(dt), dt_weight_t=_pointer(weight_t), dt_bias=_pointer(bias),
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
        A2_t: torch.Tensor,
        B: torch.Tensor,
        C: torch.Tensor,
        D: torch.Tensor | None,
        z: torch.Tensor | None,
        softplus: bool,
        projection: KernelDeltaProjection | None = None,
    ) -> torch.Tensor:
        """Time-major, contiguous float32: ``u``, ``delta``, ``z`` ``[T, b, E]``; ``A2_t`` = A·log2(e) as
        ``[N, E]``; ``B``, ``C`` ``[T, b, N]``; ``D`` ``[E]``. Returns ``(y + D·u) ⊙ silu(z)`` ``[T, b, E]``,
        with ``Δ = softplus(delta)`` when ``softplus`` is set. With ``projection`` = ``(dt [T, b, R],
        weight_t [R, E], bias [E] or None)``, ``delta = dt · weight_t + bias`` is computed in the kernel and
        ``delta`` is not read (pass ``None``)."""
        steps, batch, inner = u.shape
        out = torch.empty_like(u)
        call = _scan_call(u, delta, A2_t, B, C, D, z, softplus, projection)
        call.out = out.data_ptr()
        items = batch * -(-inner // self.lanes)
        threads = self._thread_count(items, steps * A2_t.shape[0])
        self._run(self._functions["s5vh_scan_forward"], call, items, threads)
        return out

    def scan_backward(
        self,
        grad_out: torch.Tensor,
        u: torch.Tensor,
        delta: torch.Tensor | None,
        A2_t: torch.Tensor,
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
        state = A2_t.shape[0]
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
        call = _scan_call(u, delta, A2_t, B, C, D, z, softplus, projection)
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
                _KERNELS = CpuKernels(_build_library())
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
