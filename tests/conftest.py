"""Shared fixtures: tiny configs (feature dim ≤ 64, width ≤ 32) so the suite stays quick."""

from __future__ import annotations

import os
import tempfile

import pytest
import torch

# Offline, and every Hugging Face cache (hub, datasets, modules) in a private folder: tests never download and
# never read or write the user's caches. Set before the libraries are imported, which read them at import.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="s5vh-tests-hf-home-")

from s5vh_hf import S5VHConfig, S5VHModel  # noqa: E402


def make_tiny_config(**overrides) -> S5VHConfig:
    values = dict(
        feature_dim=24,
        hidden_size=16,
        encoder_depth=2,
        decoder_hidden_size=16,
        decoder_depth=1,
        code_length=16,
        num_hash_centers=6,
        drop_path_rate=0.0,
    )
    values.update(overrides)
    return S5VHConfig(**values)


@pytest.fixture
def tiny_config() -> S5VHConfig:
    return make_tiny_config()


@pytest.fixture
def tiny_model(tiny_config) -> S5VHModel:
    torch.manual_seed(0)
    return S5VHModel(tiny_config).eval()
