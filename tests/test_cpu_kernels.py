"""The fused C kernels (selective scan, causal conv + SiLU) against the PyTorch oracles, and their fallbacks."""

import ctypes
import importlib
import logging
import os
import platform
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from s5vh_hf import S5VHModel
from s5vh_hf.model import cpu_kernels as kernels_module
from s5vh_hf.model import kernel_cache
from s5vh_hf.model.cpu_kernels import CpuKernels, causal_conv1d_silu, load_cpu_kernels
from s5vh_hf.model.modeling_s5vh import causal_depthwise_conv
from s5vh_hf.model.selective_scan import selective_scan, selective_scan_cpu_kernel, selective_scan_reference

from .conftest import make_tiny_config

PORTABLE_FLAGS = (["-O2", "-ffp-contract=fast", "-fno-math-errno"],)
"""No -march=native and no OpenMP: the generic vector code and the Python thread pool."""


def _relative_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    return float((got - expected).detach().norm() / expected.detach().norm().clamp_min(1e-30))


def _scan_inputs(steps, batch, inner, state, seed):
    generator = torch.Generator().manual_seed(seed)
    draw = lambda *shape: torch.randn(*shape, generator=generator)  # noqa: E731
    u, delta_raw, z = draw(batch, steps, inner), draw(batch, steps, inner) - 1, draw(batch, steps, inner)
    A = -torch.rand(inner, state, generator=generator) * 4 - 0.1
    return [u, delta_raw, A, draw(batch, steps, state), draw(batch, steps, state), draw(inner), z]


def _oracle(u, delta_raw, A, B, C, D, z):
    return selective_scan_reference(u, F.softplus(delta_raw), A, B, C, D) * F.silu(z)


def _check_scan_against_oracle(scan, steps, batch, inner, state, seed=0):
    inputs = _scan_inputs(steps, batch, inner, state, seed)
    ours = [t.clone().requires_grad_() for t in inputs]
    theirs = [t.clone().requires_grad_() for t in inputs]
    got = scan(*ours)
    expected = _oracle(*theirs)
    assert got.shape == expected.shape
    assert _relative_error(got, expected) < 1e-5
    upstream = torch.randn_like(expected)
    (got * upstream).sum().backward()
    (expected * upstream).sum().backward()
    for name, mine, reference in zip("u delta A B C D z".split(), ours, theirs):
        if reference.grad.norm() == 0:  # dL/dA at T = 1: the state starts at zero
            assert mine.grad.abs().max() < 1e-6, name
        else:
            assert _relative_error(mine.grad, reference.grad) < 1e-5, name


def _kernel_scan(u, delta_raw, A, B, C, D, z):
    return selective_scan_cpu_kernel(u, delta_raw, A, B, C, D, z=z, delta_softplus=True)


@pytest.mark.parametrize(
    "steps, batch, inner, state",
    [(1, 2, 16, 16), (2, 3, 32, 16), (7, 3, 20, 16), (25, 4, 48, 16), (64, 2, 32, 5), (30, 2, 17, 40)],
)
def test_kernel_scan_matches_reference_forward_and_gradients(steps, batch, inner, state):
    """Full 16-channel blocks and a partial last block (E = 20, 17), the N = 16 specialisation and other N."""
    _check_scan_against_oracle(_kernel_scan, steps, batch, inner, state, seed=steps)


def test_kernel_scan_without_gate_skip_or_softplus_is_the_plain_scan():
    u, delta_raw, A, B, C, _, _ = _scan_inputs(9, 2, 24, 16, seed=4)
    delta = F.softplus(delta_raw)
    got = selective_scan(u, delta, A, B, C, implementation="cpu_kernel")
    assert _relative_error(got, selective_scan_reference(u, delta, A, B, C)) < 1e-5


def test_kernel_scan_handles_extreme_delta_and_long_sequences():
    """softplus on large |Δ| (saturating decays, underflowing exponentials) and T = 1000 stay exact."""
    u, delta_raw, A, B, C, D, z = _scan_inputs(1000, 2, 16, 16, seed=8)
    delta_raw = delta_raw * 30  # softplus inputs from about -120 to +120
    got = selective_scan_cpu_kernel(u, delta_raw, A, B, C, D, z=z, delta_softplus=True)
    expected = _oracle(u, delta_raw, A, B, C, D, z)
    assert torch.isfinite(got).all()
    assert _relative_error(got, expected) < 1e-5


def test_kernel_scan_time_major_and_dtype():
    inputs = _scan_inputs(6, 3, 32, 16, seed=2)
    batch_major = _kernel_scan(*inputs)
    swap = lambda t: t.transpose(0, 1).contiguous()  # noqa: E731
    u, delta_raw, A, B, C, D, z = inputs
    time_major = selective_scan_cpu_kernel(
        swap(u), swap(delta_raw), A, swap(B), swap(C), D, z=swap(z), delta_softplus=True, time_major=True
    )
    torch.testing.assert_close(swap(time_major), batch_major)
    half = _kernel_scan(*[t.bfloat16() for t in inputs])
    assert half.dtype == torch.bfloat16


def test_kernel_results_do_not_depend_on_the_thread_count(monkeypatch):
    monkeypatch.setattr(kernels_module, "_MIN_WORK_PER_THREAD", 1)  # split even tiny jobs
    inputs = _scan_inputs(12, 5, 48, 16, seed=6)
    previous = torch.get_num_threads()
    try:
        outputs = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            leaves = [t.clone().requires_grad_() for t in inputs]
            out = _kernel_scan(*leaves)
            out.square().sum().backward()
            outputs.append([out.detach()] + [t.grad for t in leaves])
    finally:
        torch.set_num_threads(previous)
    torch.testing.assert_close(outputs[0][0], outputs[1][0], rtol=0, atol=0)  # the forward pass is per item
    for single, split in zip(outputs[0][1:], outputs[1][1:]):
        torch.testing.assert_close(single, split, rtol=1e-5, atol=1e-6)  # summation order of dA, dB, dC, dD


@pytest.mark.parametrize("steps, batch, inner, kernel", [(1, 2, 16, 4), (3, 2, 20, 4), (25, 3, 48, 4), (9, 2, 17, 2)])
def test_conv_silu_matches_pytorch(steps, batch, inner, kernel):
    generator = torch.Generator().manual_seed(steps)
    tensors = [
        torch.randn(steps, batch, inner, generator=generator),
        torch.randn(inner, 1, kernel, generator=generator),
        torch.randn(inner, generator=generator),
    ]
    ours = [t.clone().requires_grad_() for t in tensors]
    theirs = [t.clone().requires_grad_() for t in tensors]
    got = causal_conv1d_silu(*ours)
    expected = F.silu(causal_depthwise_conv(*theirs))
    assert _relative_error(got, expected) < 1e-6
    upstream = torch.randn_like(expected)
    (got * upstream).sum().backward()
    (expected * upstream).sum().backward()
    for name, mine, reference in zip(("x", "weight", "bias"), ours, theirs):
        assert _relative_error(mine.grad, reference.grad) < 1e-5, name


def _cpu_has(*features: str) -> bool:
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return False
    return all(feature in flags for feature in features)


BUILDS = [pytest.param(PORTABLE_FLAGS, 4, id="portable-sse2")]
if platform.machine() == "x86_64" and _cpu_has("avx2", "fma"):
    BUILDS.append(pytest.param((["-O2", "-march=x86-64-v3", "-ffp-contract=fast"],), 8, id="avx2"))


@pytest.mark.parametrize("flags, lanes", BUILDS)
def test_other_vector_widths_without_openmp(tmp_path, monkeypatch, flags, lanes):
    """The generic vector code at 4 and 8 lanes (no AVX-512 instructions), partial last blocks, and the Python
    thread pool that replaces OpenMP give the same results."""
    if platform.machine() != "x86_64":
        pytest.skip("the lane counts of these builds are x86's")
    monkeypatch.setenv("S5VH_KERNEL_CACHE", str(tmp_path))
    kernels = CpuKernels(kernel_cache.build_library(flags))
    assert not kernels.uses_openmp and not kernels.native and kernels.lanes == lanes
    monkeypatch.setattr(kernels_module, "_KERNELS", kernels)
    monkeypatch.setattr(kernels_module, "_MIN_WORK_PER_THREAD", 1)
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        _check_scan_against_oracle(_kernel_scan, 25, 4, 40, 16, seed=1)
        _check_scan_against_oracle(_kernel_scan, 5, 2, 19, 7, seed=2)  # 19 = 4·4 + 3 = 2·8 + 3
        x, weight, bias = torch.randn(10, 3, 38), torch.randn(38, 1, 4), torch.randn(38)
        leaves = [t.clone().requires_grad_() for t in (x, weight, bias)]
        references = [t.clone().requires_grad_() for t in (x, weight, bias)]
        got, expected = causal_conv1d_silu(*leaves), F.silu(causal_depthwise_conv(*references))
        torch.testing.assert_close(got, expected)
        got.sum().backward()
        expected.sum().backward()
        for mine, reference in zip(leaves, references):
            torch.testing.assert_close(mine.grad, reference.grad, rtol=1e-5, atol=1e-5)
    finally:
        torch.set_num_threads(previous)
    assert list(tmp_path.glob("s5vh_scan_*.so"))


def test_auto_does_not_take_a_portable_build(tmp_path, monkeypatch):
    """A build without the CPU's vector instructions is slower than the PyTorch scan: "auto" skips it."""
    monkeypatch.setenv("S5VH_KERNEL_CACHE", str(tmp_path))
    monkeypatch.setattr(kernels_module, "_KERNELS", CpuKernels(kernel_cache.build_library(PORTABLE_FLAGS)))
    torch.manual_seed(0)
    model = S5VHModel(make_tiny_config())
    features = torch.randn(2, 6, model.config.feature_dim)
    assert model.encoder.blocks[0].forward_mixer.scan_backend(features) != "cpu_kernel"
    u, delta_raw, A, B, C, D, z = _scan_inputs(4, 2, 16, 16, seed=5)
    auto = selective_scan(u, delta_raw, A, B, C, D, z=z, delta_softplus=True)
    pytorch = selective_scan(u, delta_raw, A, B, C, D, z=z, delta_softplus=True, implementation="fast")
    torch.testing.assert_close(auto, pytorch, rtol=0, atol=0)
    assert load_cpu_kernels() is not None and not load_cpu_kernels().native


def test_disabled_kernels_fall_back_to_pytorch(monkeypatch):
    monkeypatch.setenv("S5VH_CPU_KERNEL", "0")
    assert load_cpu_kernels() is None
    inputs = _scan_inputs(5, 2, 16, 16, seed=3)
    u, delta_raw, A, B, C, D, z = inputs
    auto = selective_scan(u, delta_raw, A, B, C, D, z=z, delta_softplus=True)  # runs the PyTorch scan
    assert _relative_error(auto, _oracle(*inputs)) < 1e-5
    with pytest.raises(RuntimeError, match="S5VH_CPU_KERNEL=0"):
        selective_scan(u, delta_raw, A, B, C, D, implementation="cpu_kernel")
    with pytest.raises(RuntimeError, match="S5VH_CPU_KERNEL=0"):
        causal_conv1d_silu(torch.randn(3, 1, 16), torch.randn(16, 1, 4), None)
    torch.manual_seed(0)
    model = S5VHModel(make_tiny_config())
    assert model.encode(torch.randn(2, 5, model.config.feature_dim).numpy()).shape == (2, model.config.code_length)


def test_missing_compiler_is_reported_once_and_falls_back(monkeypatch, caplog):
    monkeypatch.setenv("CC", "/nonexistent/cc")
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(kernels_module, "_KERNELS", None)
    monkeypatch.setattr(kernels_module, "_KERNELS_ERROR", None)
    with caplog.at_level(logging.WARNING, logger=kernels_module.__name__):
        assert load_cpu_kernels() is None
        assert load_cpu_kernels() is None
    assert "no C compiler found" in (kernels_module.cpu_kernels_error() or "")
    assert sum("unavailable" in record.message for record in caplog.records) == 1
    u, delta_raw, A, B, C, D, z = _scan_inputs(4, 2, 16, 16, seed=5)
    with pytest.raises(RuntimeError, match="no C compiler"):
        selective_scan(u, delta_raw, A, B, C, D, implementation="cpu_kernel")
    assert selective_scan(u, delta_raw, A, B, C, D).shape == u.shape


def test_model_paths_agree_end_to_end():
    """The same weights give the same frame logits and gradients with the C kernels and the PyTorch scan."""
    torch.manual_seed(0)
    kernel_model = S5VHModel(make_tiny_config(scan_implementation="cpu_kernel"))
    torch_model = S5VHModel(make_tiny_config(scan_implementation="fast"))
    torch_model.load_state_dict(kernel_model.state_dict())
    features = torch.randn(3, 9, kernel_model.config.feature_dim)
    attention_mask = torch.tensor([[True] * 9, [True] * 6 + [False] * 3, [True] * 2 + [False] * 7])
    outputs = [model(features, attention_mask=attention_mask) for model in (kernel_model, torch_model)]
    torch.testing.assert_close(outputs[0].frame_logits, outputs[1].frame_logits, rtol=1e-4, atol=1e-5)
    for output in outputs:
        output.frame_logits.square().sum().backward()
    for (name, mine), theirs in zip(kernel_model.named_parameters(), torch_model.parameters()):
        if mine.grad is not None:
            torch.testing.assert_close(mine.grad, theirs.grad, rtol=1e-3, atol=1e-5, msg=name)


def test_concurrent_first_builds_share_one_cache(tmp_path):
    """Two processes compiling into the same empty cache both load a complete library (atomic rename)."""
    script = textwrap.dedent(
        """
        import torch
        from s5vh_hf.model.cpu_kernels import load_cpu_kernels, cpu_kernels_error
        assert load_cpu_kernels() is not None, cpu_kernels_error()
        print("ok")
        """
    )
    env = {"S5VH_KERNEL_CACHE": str(tmp_path), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}
    if "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    processes = [
        subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    for process in processes:
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 0 and b"ok" in stdout, stderr.decode()[-2000:]
    assert len(list(tmp_path.glob("*.so"))) == 1 and not list(tmp_path.glob("*.tmp"))


def test_fused_delta_projection_matches_projecting_first():
    """delta = dt·Wᵀ + b inside the kernel: same output and gradients (dt, W, b included) as projecting first."""
    u, _, A, B, C, D, z = _scan_inputs(11, 3, 32, 16, seed=9)
    generator = torch.Generator().manual_seed(10)
    dt = torch.randn(3, 11, 4, generator=generator)
    weight, bias = torch.randn(32, 4, generator=generator) * 0.5, torch.randn(32, generator=generator)
    fused_leaves = [t.clone().requires_grad_() for t in (u, dt, weight, bias)]
    plain_leaves = [t.clone().requires_grad_() for t in (u, dt, weight, bias)]
    fused = selective_scan_cpu_kernel(
        fused_leaves[0], None, A, B, C, D, z=z, delta_softplus=True, delta_projection=tuple(fused_leaves[1:])
    )
    u2, dt2, weight2, bias2 = plain_leaves
    plain = selective_scan_cpu_kernel(u2, F.linear(dt2, weight2, bias2), A, B, C, D, z=z, delta_softplus=True)
    assert _relative_error(fused, plain) < 1e-6
    upstream = torch.randn_like(plain)
    (fused * upstream).sum().backward()
    (plain * upstream).sum().backward()
    for name, mine, reference in zip(("u", "dt", "weight", "bias"), fused_leaves, plain_leaves):
        assert _relative_error(mine.grad, reference.grad) < 1e-5, name
    with pytest.raises(ValueError, match="exactly one"):
        selective_scan_cpu_kernel(u, None, A, B, C, D)


def test_cache_folder_falls_back_to_a_temporary_folder(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.delenv("S5VH_KERNEL_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    folder = kernel_cache.kernel_cache_dir()
    assert not str(folder).startswith(str(blocker)) and "s5vh_hf-kernels" in folder.name
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert kernel_cache.kernel_cache_dir() == tmp_path / "cache" / "s5vh_hf" / "kernels"


def test_damaged_cache_entry_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("S5VH_KERNEL_CACHE", str(tmp_path))
    kernel_cache.build_library(PORTABLE_FLAGS)
    (library,) = tmp_path.glob("s5vh_scan_*.so")
    damaged = tmp_path / "damaged"
    damaged.write_bytes(b"not a shared library")
    os.replace(damaged, library)  # a new file: the library loaded above stays mapped and intact
    kernels = CpuKernels(kernel_cache.build_library(PORTABLE_FLAGS))
    x, weight = torch.randn(4, 2, 16), torch.randn(16, 1, 4)
    taps = weight[:, 0, :].t().contiguous()
    torch.testing.assert_close(kernels.conv_silu_forward(x, taps, None), F.silu(causal_depthwise_conv(x, weight, None)))


def test_auto_falls_back_to_pytorch_for_state_sizes_the_kernel_does_not_take(monkeypatch):
    monkeypatch.setattr(importlib.import_module("s5vh_hf.model.selective_scan"), "MAX_STATE_SIZE", 8)
    torch.manual_seed(0)
    model = S5VHModel(make_tiny_config())  # state size 16 > 8: the PyTorch scan
    reference = S5VHModel(make_tiny_config(scan_implementation="fast"))
    reference.load_state_dict(model.state_dict())
    features = torch.randn(2, 6, model.config.feature_dim)
    assert model.encoder.blocks[0].forward_mixer.scan_backend(features) != "cpu_kernel"
    torch.testing.assert_close(model(features).frame_logits, reference(features).frame_logits, rtol=0, atol=0)


# ----------------------------------------------------------------------------------- the C source and its boundary

CSRC = Path(kernels_module.__file__).with_name("csrc") / "cpu_kernels.c"


@pytest.mark.skipif(kernel_cache._compiler() is None, reason="needs a C compiler")
@pytest.mark.parametrize("flags", [[], ["-fopenmp"], ["-march=native", "-DS5VH_NATIVE", "-fopenmp"]],
                         ids=["portable", "openmp", "native"])  # fmt: skip
def test_the_c_source_compiles_without_a_warning(tmp_path, flags):
    result = subprocess.run(
        [kernel_cache._compiler(), "-O2", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-std=gnu11", *flags,
         str(CSRC), "-o", str(tmp_path / "k.so")],
        capture_output=True, text=True,
    )  # fmt: skip
    if result.returncode and "fopenmp" in result.stderr and "-fopenmp" in flags:
        pytest.skip("the compiler has no OpenMP")
    assert result.returncode == 0, result.stderr[-3000:]


def test_the_remote_code_copy_of_the_c_source_is_generated_from_the_c_file():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "sync", Path(__file__).resolve().parents[1] / "scripts" / "sync_kernel_source.py"
    )
    sync = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sync)
    generated = Path(kernels_module.__file__).with_name("cpu_kernels_source.py").read_text()
    assert generated == sync.render(CSRC.read_text()), "run python scripts/sync_kernel_source.py"
    from s5vh_hf.model.cpu_kernels_source import C_SOURCE

    assert C_SOURCE == CSRC.read_text()


@pytest.mark.skipif(kernel_cache._compiler() is None, reason="needs a C compiler")
def test_the_ctypes_structures_mirror_the_c_structs(tmp_path):
    """Field offsets and sizes as the C compiler lays them out, against ctypes'."""
    structures = {"s5vh_scan_call": kernels_module.ScanCall, "s5vh_conv_call": kernels_module.ConvCall}
    lines = [f'#include "{CSRC}"', "#include <stdio.h>", "#include <stddef.h>", "int main(void) {"]
    for c_name, structure in structures.items():
        lines.append(f'printf("{c_name} size %zu\\n", sizeof({c_name}));')
        for field, _ in structure._fields_:
            lines.append(f'printf("{c_name} {field} %zu\\n", offsetof({c_name}, {field}));')
    lines.append("return 0; }")
    (tmp_path / "layout.c").write_text("\n".join(lines))
    subprocess.run([kernel_cache._compiler(), "-std=gnu11", str(tmp_path / "layout.c"), "-o", str(tmp_path / "layout")],
                   check=True, capture_output=True)  # fmt: skip
    printed = subprocess.run([str(tmp_path / "layout")], capture_output=True, text=True, check=True).stdout.split("\n")
    c_layout = {tuple(line.split()[:2]): int(line.split()[2]) for line in printed if line}
    for c_name, structure in structures.items():
        assert c_layout[(c_name, "size")] == ctypes.sizeof(structure)
        for field, _ in structure._fields_:
            assert c_layout[(c_name, field)] == getattr(structure, field).offset, (c_name, field)
