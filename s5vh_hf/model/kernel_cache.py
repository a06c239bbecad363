"""The trusted build cache of the C kernels: compiling ``csrc/cpu_kernels.c`` with the system compiler, and loading a
cached library only after the folders on the way to it, its owner and mode, and its sha256 (recorded where only
this user writes) check out — the file that was checked is the file that is loaded (through its descriptor).

Flags are tried in order (native with OpenMP first); a library is cached per source, flags, compiler and CPU under
``$S5VH_KERNEL_CACHE`` or ``~/.cache/s5vh_hf/kernels`` (:func:`kernel_cache_dir`).
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
from pathlib import Path

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


def build_library(flag_sets: tuple[list[str], ...] = _FLAG_SETS) -> ctypes.CDLL:
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
