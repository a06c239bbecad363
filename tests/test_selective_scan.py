import importlib

import pytest
import torch
import torch.nn.functional as F

from s5vh_hf.model.selective_scan import selective_scan, selective_scan_fast, selective_scan_reference


def _random_scan_inputs(steps: int, seed: int, batch: int = 3, inner: int = 20, state: int = 16):
    generator = torch.Generator().manual_seed(seed)
    u = torch.randn(batch, steps, inner, generator=generator)
    delta = F.softplus(torch.randn(batch, steps, inner, generator=generator) - 1)
    A = -torch.rand(inner, state, generator=generator) * 4 - 0.1
    B = torch.randn(batch, steps, state, generator=generator)
    C = torch.randn(batch, steps, state, generator=generator)
    D = torch.randn(inner, generator=generator)
    return [u, delta, A, B, C, D]


def _relative_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    return float((got - expected).detach().norm() / expected.detach().norm().clamp_min(1e-30))


@pytest.mark.parametrize("steps", [1, 2, 7, 25, 64])
def test_fast_scan_matches_reference_forward_and_gradients(steps):
    inputs = _random_scan_inputs(steps, seed=steps)
    reference_inputs = [t.clone().requires_grad_() for t in inputs]
    fast_inputs = [t.clone().requires_grad_() for t in inputs]
    expected = selective_scan_reference(*reference_inputs)
    got = selective_scan_fast(*fast_inputs)
    assert got.shape == expected.shape == inputs[0].shape
    assert _relative_error(got, expected) < 1e-5
    upstream = torch.randn_like(expected)
    (expected * upstream).sum().backward()
    (got * upstream).sum().backward()
    for name, ref_t, fast_t in zip("u delta A B C D".split(), reference_inputs, fast_inputs):
        if ref_t.grad.norm() == 0:  # e.g. dL/dA at T = 1: the state starts at zero
            assert fast_t.grad.abs().max() < 1e-6, name
        else:
            assert _relative_error(fast_t.grad, ref_t.grad) < 1e-5, name


def test_fast_scan_blocks_over_large_batches(monkeypatch):
    scan_module = importlib.import_module("s5vh_hf.model.selective_scan")

    monkeypatch.setattr(scan_module, "_STATE_ELEMENTS_PER_CHUNK", 20 * 16 * 2)  # 2 sequences per block
    inputs = _random_scan_inputs(9, seed=3, batch=5)
    fast_inputs = [t.clone().requires_grad_() for t in inputs]
    reference_inputs = [t.clone().requires_grad_() for t in inputs]
    got = selective_scan_fast(*fast_inputs)
    expected = selective_scan_reference(*reference_inputs)
    assert _relative_error(got, expected) < 1e-5
    got.sum().backward()
    expected.sum().backward()
    for ref_t, fast_t in zip(reference_inputs, fast_inputs):
        assert _relative_error(fast_t.grad, ref_t.grad) < 1e-5


def test_time_major_layout_and_dispatch_agree():
    u, delta, A, B, C, D = _random_scan_inputs(6, seed=11)
    batch_major = selective_scan(u, delta, A, B, C, D, implementation="reference")
    swap = lambda t: t.transpose(0, 1).contiguous()  # noqa: E731
    for implementation in ("fast", "reference"):
        time_major = selective_scan(
            swap(u), swap(delta), A, swap(B), swap(C), D, implementation=implementation, time_major=True
        )
        assert _relative_error(swap(time_major), batch_major) < 1e-5
    with pytest.raises(ValueError, match="implementation"):
        selective_scan(u, delta, A, B, C, D, implementation="nope")


def test_fast_scan_keeps_input_dtype():
    u, delta, A, B, C, D = _random_scan_inputs(4, seed=5)
    out = selective_scan_fast(u.double(), delta.double(), A.double(), B.double(), C.double(), D.double())
    assert out.dtype == torch.float64


@pytest.mark.parametrize("steps, batch, decay_scale", [(400, 2, 1.0), (1000, 1, 0.01), (97, 3, 0.1)])
def test_segmented_scan_of_long_sequences_matches_reference(steps, batch, decay_scale):
    scan_module = importlib.import_module("s5vh_hf.model.selective_scan")
    assert scan_module._segment_count(steps, batch) > 1  # the two-level path is the one under test
    inputs = _random_scan_inputs(steps, seed=steps, batch=batch)
    inputs[2] = inputs[2] * decay_scale  # slow decay: the state carried across segments matters
    fast_inputs = [t.clone().requires_grad_() for t in inputs]
    reference_inputs = [t.clone().requires_grad_() for t in inputs]
    got = selective_scan_fast(*fast_inputs)
    expected = selective_scan_reference(*reference_inputs)
    assert _relative_error(got, expected) < 1e-5
    upstream = torch.randn_like(expected)
    (got * upstream).sum().backward()
    (expected * upstream).sum().backward()
    for ref_t, fast_t in zip(reference_inputs, fast_inputs):
        assert _relative_error(fast_t.grad, ref_t.grad) < 1e-5
