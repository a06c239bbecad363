"""The CUDA path of the mixer, run on CPU with stand-ins for mamba-ssm's ``selective_scan_fn`` and causal-conv1d's
``causal_conv1d_fn``: same signatures, same argument layouts (channels-last ``[B, E, T]``), plain reference math
written here. The dispatch, the layouts and the shapes of the CUDA path are checked on every CI run; the real
kernels are tested on GPU machines (``test_cuda_kernels.py``)."""

import pytest
import torch
import torch.nn.functional as F

from s5vh_hf import S5VHModel
from s5vh_hf.model import modeling_s5vh, selective_scan

from .conftest import make_tiny_config


class StandIns:
    """The two CUDA functions, checking their arguments as the kernels would, and counting calls."""

    def __init__(self) -> None:
        self.calls = {"scan": 0, "conv": 0}

    def selective_scan_fn(self, u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                          return_last_state=False):  # fmt: skip
        self.calls["scan"] += 1
        batch, dim, steps = u.shape
        state = A.shape[1]
        assert delta.shape == u.shape and A.shape == (dim, state)
        assert B.shape == (batch, state, steps) and C.shape == (batch, state, steps)  # variable B/C, not grouped
        assert D is None or D.shape == (dim,)
        assert z is None or z.shape == u.shape
        assert delta_bias is None or delta_bias.shape == (dim,)
        assert A.dtype == torch.float32 and (D is None or D.dtype == torch.float32)
        delta = delta.float() + (delta_bias[None, :, None] if delta_bias is not None else 0)
        if delta_softplus:
            delta = F.softplus(delta)
        hidden = u.new_zeros(batch, dim, state, dtype=torch.float32)
        outputs = []
        for t in range(steps):
            step = delta[:, :, t, None]
            hidden = torch.exp(step * A) * hidden + step * B[:, None, :, t] * u[:, :, t, None].float()
            outputs.append((hidden * C[:, None, :, t]).sum(-1))
        y = torch.stack(outputs, -1)
        if D is not None:
            y = y + u.float() * D[None, :, None]
        if z is not None:
            y = y * F.silu(z.float())
        y = y.to(u.dtype)
        return (y, hidden) if return_last_state else y

    def causal_conv1d_fn(self, x, weight, bias=None, seq_idx=None, activation=None):
        self.calls["conv"] += 1
        assert activation in (None, "silu", "swish")
        batch, dim, steps = x.shape
        assert weight.dim() == 2 and weight.shape[0] == dim and (bias is None or bias.shape == (dim,))
        out = F.conv1d(x, weight.unsqueeze(1), bias, padding=weight.shape[1] - 1, groups=dim)[..., :steps]
        return F.silu(out) if activation in ("silu", "swish") else out


@pytest.fixture
def stand_ins(monkeypatch):
    """Install the stand-ins where the package takes the CUDA kernels from, and let the real resolver treat this
    CPU as a GPU (it is asked about device type ``cuda``; everything else about it is unchanged)."""
    fakes = StandIns()
    monkeypatch.setattr(selective_scan, "cuda_selective_scan", fakes.selective_scan_fn)
    monkeypatch.setattr(selective_scan, "cuda_causal_conv1d", fakes.causal_conv1d_fn)
    real = selective_scan.resolve_scan_backend
    monkeypatch.setattr(modeling_s5vh, "resolve_scan_backend",
                        lambda requested, device, state: real(requested, torch.device("cuda"), state))  # fmt: skip
    return fakes


def test_auto_picks_the_cuda_kernels_on_a_gpu_when_installed(stand_ins):
    assert selective_scan.resolve_scan_backend("auto", torch.device("cuda"), 16) == "cuda"
    assert selective_scan.resolve_scan_backend("fast", torch.device("cuda"), 16) == "fast"  # an explicit choice wins
    assert selective_scan.resolve_scan_backend("auto", torch.device("cpu"), 16) != "cuda"


def test_without_the_extra_auto_never_picks_cuda(monkeypatch):
    monkeypatch.setattr(selective_scan, "cuda_selective_scan", None)
    assert selective_scan.resolve_scan_backend("auto", torch.device("cuda"), 16) != "cuda"


def test_the_cuda_path_matches_the_reference_scan_forward_and_backward(stand_ins):
    torch.manual_seed(0)
    reference = S5VHModel(make_tiny_config(hidden_size=16, feature_dim=24, scan_implementation="reference"))
    cuda_path = S5VHModel(make_tiny_config(hidden_size=16, feature_dim=24))
    cuda_path.load_state_dict(reference.state_dict())
    mixer = cuda_path.encoder.blocks[0].forward_mixer
    assert mixer.scan_backend(torch.zeros(3, 2, 16)) == "cuda"
    features = torch.randn(3, 11, 24)
    mask = torch.ones(3, 11, dtype=torch.bool)
    mask[1, 7:] = False
    outputs = []
    for model in (reference, cuda_path):
        output = model(features, attention_mask=mask)
        output.frame_logits.square().sum().backward()
        outputs.append(output)
    assert stand_ins.calls["scan"] > 0 and stand_ins.calls["conv"] > 0  # the CUDA path ran, not a fallback
    assert outputs[1].frame_logits.shape == outputs[0].frame_logits.shape
    torch.testing.assert_close(outputs[1].frame_logits, outputs[0].frame_logits, rtol=1e-4, atol=1e-5)
    for (name, expected), got in zip(reference.named_parameters(), cuda_path.parameters()):
        if expected.grad is not None:
            torch.testing.assert_close(got.grad, expected.grad, rtol=1e-3, atol=1e-5, msg=name)


def test_codes_through_the_cuda_path_equal_the_cpu_codes(stand_ins):
    torch.manual_seed(1)
    model = S5VHModel(make_tiny_config(hidden_size=16, feature_dim=24))
    videos = [torch.randn(length, 24).numpy() for length in (3, 9, 6)]
    with_stand_ins = model.encode(videos)
    model.config.scan_implementation = "reference"
    assert (with_stand_ins == model.encode(videos)).mean() > 0.99


def test_cuda_asked_for_by_name_is_an_error_where_it_cannot_run(monkeypatch):
    monkeypatch.setattr(selective_scan, "cuda_selective_scan", None)
    with pytest.raises(
        RuntimeError, match=r"mamba-ssm( and causal-conv1d)? not installed: pip install 's5vh-hf\[cuda\]'"
    ):
        selective_scan.resolve_scan_backend("cuda", torch.device("cuda"), 16)
    with pytest.raises(RuntimeError, match="not a CUDA GPU"):
        selective_scan.resolve_scan_backend("cuda", torch.device("cpu"), 16)
    model = S5VHModel(make_tiny_config(hidden_size=16, feature_dim=24, scan_implementation="cuda"))
    with pytest.raises(RuntimeError, match="cannot run here"):  # never a silent fall-back to another scan
        model.encode([torch.randn(4, 24).numpy()])


@pytest.mark.parametrize("time_major", [False, True])
def test_the_bare_scan_asked_for_cuda_runs_the_cuda_kernel(stand_ins, monkeypatch, time_major):
    torch.manual_seed(2)
    monkeypatch.setattr(selective_scan.torch.Tensor, "device", property(lambda self: torch.device("cuda")))
    b, T, E, N, R = 2, 7, 6, 4, 3
    shape = (T, b) if time_major else (b, T)
    u, z = torch.randn(*shape, E), torch.randn(*shape, E)
    B, C, dt = torch.randn(*shape, N), torch.randn(*shape, N), torch.randn(*shape, R)
    A, D = -torch.rand(E, N) - 0.5, torch.randn(E)
    weight, bias = torch.randn(E, R), torch.randn(E)
    arguments = dict(z=z, delta_softplus=True, time_major=time_major, delta_projection=(dt, weight, bias))
    got = selective_scan.selective_scan(u, None, A, B, C, D, implementation="cuda", **arguments)
    monkeypatch.undo()
    expected = selective_scan.selective_scan_reference(u, None, A, B, C, D, **arguments)
    assert stand_ins.calls["scan"] == 1
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
