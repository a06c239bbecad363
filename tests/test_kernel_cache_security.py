"""The compiled-kernel cache loads nothing the user did not build: owner-only folder, verified libraries, no
predictable shared fallback; a truncated or foreign library is rebuilt instead of crashing or disabling the
kernels."""

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

import s5vh_hf.model.kernel_cache as cache_module
from s5vh_hf.model.commits import sha256_file

pytestmark = pytest.mark.skipif(cache_module._compiler() is None, reason="needs a C compiler")
PORTABLE_FLAGS = (["-O2", "-ffp-contract=fast", "-fno-math-errno"],)
# A library that, when dlopen()ed, leaves a marker file: proof that it was (or was not) loaded.
PLANTED_SOURCE = """
#include <stdio.h>
#include <stdlib.h>
__attribute__((constructor)) static void planted(void) {
    const char *marker = getenv("PLANTED_MARKER");
    if (marker) { FILE *f = fopen(marker, "w"); if (f) { fputs("loaded", f); fclose(f); } }
}
int s5vh_lanes(void) { return 4; }
"""


def _target(folder: Path) -> Path:
    key = cache_module._library_key(cache_module._compiler(), PORTABLE_FLAGS[0])
    return folder / f"s5vh_scan_{key}.so"


def _plant(path: Path, tmp_path: Path) -> None:
    source = tmp_path / "planted.c"
    source.write_text(PLANTED_SOURCE)
    subprocess.run([cache_module._compiler(), "-shared", "-fPIC", str(source), "-o", str(path)], check=True)
    Path(str(path) + ".sha256").write_text(sha256_file(path))  # even a matching record beside it


def _load_in_subprocess(env: dict, tmp_path: Path) -> subprocess.CompletedProcess:
    script = textwrap.dedent(
        f"""
        import logging, s5vh_hf.model.cpu_kernels as k, s5vh_hf.model.kernel_cache as c
        logging.basicConfig(level=logging.WARNING)
        kernels = k.CpuKernels(c.build_library({PORTABLE_FLAGS!r}))
        print("lanes", kernels.lanes, "folder", c.kernel_cache_dir())
        """
    )
    full_env = {"PATH": os.environ["PATH"], "HF_HUB_OFFLINE": "1", "PLANTED_MARKER": str(tmp_path / "marker"), **env}
    if "PYTHONPATH" in os.environ:
        full_env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=full_env, timeout=300)


def test_the_cache_folder_is_created_owner_only(tmp_path, monkeypatch):
    monkeypatch.delenv("S5VH_KERNEL_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    old_umask = os.umask(0o002)  # a permissive umask must not leak into the folder's mode
    try:
        folder = cache_module.kernel_cache_dir()
    finally:
        os.umask(old_umask)
    assert folder == tmp_path / "xdg" / "s5vh_hf" / "kernels"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_a_group_writable_cache_is_refused_and_its_library_never_loaded(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)  # e.g. a shared S5VH_KERNEL_CACHE another user can write to
    _plant(_target(shared), tmp_path)
    result = _load_in_subprocess({"S5VH_KERNEL_CACHE": str(shared)}, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "others may write to it" in result.stderr
    assert not (tmp_path / "marker").exists()  # the planted library never ran
    assert "lanes 4" in result.stdout and f"folder {shared}" not in result.stdout
    fallback = result.stdout.split("folder ")[1].strip()
    assert fallback.startswith(tempfile.gettempdir()) and fallback != os.path.join(
        tempfile.gettempdir(), f"s5vh_hf-kernels-{os.getuid()}"
    )  # an unpredictable name, not the old /tmp/s5vh_hf-kernels-<uid>


def test_a_folder_or_library_of_another_user_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("S5VH_KERNEL_CACHE", str(tmp_path))
    real_uid = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: real_uid + 1)  # as if the folder belonged to someone else
    assert "belongs to user" in cache_module._unsafe_reason(tmp_path, "dir")
    folder = cache_module.kernel_cache_dir()
    assert folder != tmp_path and stat.S_IMODE(folder.stat().st_mode) == 0o700
    monkeypatch.setattr(os, "getuid", lambda: real_uid)
    link = tmp_path / "link"
    link.symlink_to(tmp_path)
    assert "symbolic link" in cache_module._unsafe_reason(link, "dir")


def test_a_truncated_cached_library_is_rebuilt_without_crashing(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    assert _load_in_subprocess({"S5VH_KERNEL_CACHE": str(cache)}, tmp_path).returncode == 0
    library = _target(cache)
    size = library.stat().st_size
    with open(library, "r+b") as handle:
        handle.truncate(size // 3)  # in place: an interrupted copy or a full disk (used to SIGBUS in dlopen)
    result = _load_in_subprocess({"S5VH_KERNEL_CACHE": str(cache)}, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]  # -7 (SIGBUS) before
    assert "lanes 4" in result.stdout and library.stat().st_size == size
    assert cache_module._verified(library)


def test_a_foreign_library_in_the_users_own_cache_is_rebuilt_not_given_up(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    _plant(_target(cache), tmp_path)  # loadable, but not the kernel
    result = _load_in_subprocess({"S5VH_KERNEL_CACHE": str(cache)}, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "lanes 4" in result.stdout  # the kernels work: no silent fall-back to the slow scan
    assert cache_module._verified(_target(cache))
    assert hasattr(__import__("ctypes").CDLL(str(_target(cache))), "s5vh_scan_forward")


def test_a_library_without_its_hash_record_is_rebuilt(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    assert _load_in_subprocess({"S5VH_KERNEL_CACHE": str(cache)}, tmp_path).returncode == 0
    record = cache_module._record_path(_target(cache))
    assert record.parent == cache_module.kernel_records_dir() != cache  # not beside the library it vouches for
    record.unlink()
    assert not cache_module._verified(_target(cache))
    assert _load_in_subprocess({"S5VH_KERNEL_CACHE": str(cache)}, tmp_path).returncode == 0
    assert record.is_file() and cache_module._verified(_target(cache))
    shutil.rmtree(cache)


def test_a_cache_below_a_folder_others_may_write_to_is_refused(tmp_path):
    parent = tmp_path / "shared-parent"
    parent.mkdir()
    os.chmod(parent, 0o777)  # another user could rename the cache away and put their own in its place
    cache = parent / "cache"
    cache.mkdir(mode=0o700)
    result = _load_in_subprocess({"S5VH_KERNEL_CACHE": str(cache)}, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"others may write to {parent}" in result.stderr and f"folder {cache}" not in result.stdout
    os.chmod(parent, 0o1777)  # with the sticky bit (as /tmp), others cannot rename what they do not own
    assert cache_module._unsafe_ancestor(cache) is None


def test_the_library_loaded_is_the_file_that_was_hashed(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    monkeypatch.setenv("S5VH_KERNEL_CACHE", str(cache))
    assert _load_in_subprocess({"S5VH_KERNEL_CACHE": str(cache)}, tmp_path).returncode == 0
    target = _target(cache)
    descriptor = cache_module._open_verified(target)
    assert descriptor is not None
    swapped = tmp_path / "planted.so"
    _plant(swapped, tmp_path)
    os.replace(swapped, target)  # swapped in between the check and the load
    monkeypatch.setenv("PLANTED_MARKER", str(tmp_path / "marker"))
    library = cache_module._load_descriptor(descriptor)  # keeps the descriptor open
    assert hasattr(library, "s5vh_scan_forward") and not (tmp_path / "marker").exists()
    assert not cache_module._verified(target)  # and the planted file fails the next check
