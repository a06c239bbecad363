"""The mamba-ssm / causal-conv1d CUDA path of the mixer against the CPU implementations (GPU machines only).

These tests need a CUDA device and the ``cuda`` extra; elsewhere they are skipped, and the CPU paths are covered
by ``test_cpu_kernels.py`` and ``test_selective_scan.py``. Where mamba-ssm is installed, the model must use it.
"""

import importlib.util

import pytest
import torch

from s5vh_hf import S5VHModel
from s5vh_hf.model import selective_scan

from .conftest import make_tiny_config

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available() or importlib.util.find_spec("mamba_ssm") is None,
    reason="needs a CUDA device and the `cuda` extra (mamba-ssm, causal-conv1d)",
)


@pytest.fixture(autouse=True)
def exact_matmuls():
    previous = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = previous


def test_installed_cuda_kernels_are_picked_up():
    scan, conv = selective_scan.cuda_kernels()
    assert scan is not None, "mamba-ssm is installed but its scan did not import"
    assert conv is not None, "causal-conv1d is not installed or did not import"
    model = S5VHModel(make_tiny_config(hidden_size=32)).cuda()
    mixer = model.encoder.blocks[0].forward_mixer
    assert mixer.scan_backend(torch.zeros(2, 2, 32, device="cuda")) == "cuda"


@pytest.mark.parametrize("cpu_implementation", ["reference", "cpu_kernel"])
def test_cuda_model_matches_cpu_forward_and_gradients(cpu_implementation):
    """Same weights, same padded batch: frame logits and every parameter gradient agree."""
    torch.manual_seed(0)
    config = make_tiny_config(hidden_size=32, feature_dim=48)
    cpu_model = S5VHModel(make_tiny_config(hidden_size=32, feature_dim=48, scan_implementation=cpu_implementation))
    gpu_model = S5VHModel(config)
    gpu_model.load_state_dict(cpu_model.state_dict())
    gpu_model.cuda()
    features = torch.randn(4, 13, config.feature_dim)
    attention_mask = torch.ones(4, 13, dtype=torch.bool)
    attention_mask[1, 9:] = False
    attention_mask[3, 4:] = False
    outputs = []
    for model, device in ((cpu_model, "cpu"), (gpu_model, "cuda")):
        output = model(features.to(device), attention_mask=attention_mask.to(device))
        output.frame_logits.square().sum().backward()
        outputs.append(output.frame_logits.detach().cpu())
    torch.testing.assert_close(outputs[1], outputs[0], rtol=1e-4, atol=1e-5)
    for (name, cpu_parameter), gpu_parameter in zip(cpu_model.named_parameters(), gpu_model.parameters()):
        if cpu_parameter.grad is not None:
            torch.testing.assert_close(gpu_parameter.grad.cpu(), cpu_parameter.grad, rtol=1e-3, atol=1e-5, msg=name)


def test_cuda_codes_match_cpu_codes():
    torch.manual_seed(1)
    model = S5VHModel(make_tiny_config(hidden_size=32))
    videos = [torch.randn(length, model.config.feature_dim).numpy() for length in (3, 17, 9, 25)]
    cpu_codes = model.encode(videos)
    gpu_codes = model.cuda().encode(videos)
    assert (cpu_codes == gpu_codes).mean() > 0.99  # a logit within rounding of 0 may flip a bit
