import json
import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from s5vh_hf import S5VHConfig, S5VHModel, convert_original_checkpoint
from s5vh_hf.hub.sharing import push_model_folder, render_model_card
from s5vh_hf.retrieval.evaluation import evaluate_retrieval

from .conftest import make_tiny_config
from .hub_stub import fake_hub

# ------------------------------------------------------------------------------------ authors' checkpoint layout


def _authors_state_dict(config: S5VHConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights in the release's key layout (two mixers per block, binary/ln/classifier, leftovers)."""
    torch.manual_seed(seed)
    overrides = {**config.to_diff_dict(), "share_direction_weights": False, "feature_normalization": "none"}
    source = S5VHModel(make_tiny_config(**overrides))  # the release has no feature statistics
    state = {}
    for key, value in source.state_dict().items():
        value = value + 0.05 * torch.randn_like(value) if value.is_floating_point() else value
        key = key.replace("hash_layer.projection.", "binary.").replace("hash_layer.norm.", "ln.")
        key = key.replace("center_head.", "classifier.")
        key = key.replace(".forward_mixer.", ".mamba1.").replace(".backward_mixer.", ".mamba2.")
        state[key] = value
    state["classifier.weight"] = torch.randn_like(state["classifier.weight"])  # a trained, non-binary classifier
    state["get_token_probs.0.weight"] = torch.randn(3, 3)
    return state


def _mamba_forward_from_spec(p: dict[str, torch.Tensor], prefix: str, x: torch.Tensor) -> torch.Tensor:
    """mamba-ssm's Mamba forward written from its equations: x [B, T, W] → [B, T, W]."""
    w = lambda name: p[prefix + name]  # noqa: E731
    inner = w("D").shape[0]
    xz = x @ w("in_proj.weight").t()
    u, z = xz[..., :inner], xz[..., inner:]
    u = F.conv1d(u.transpose(1, 2), w("conv1d.weight"), w("conv1d.bias"), padding=3, groups=inner)[..., : x.shape[1]]
    u = F.silu(u).transpose(1, 2)
    rank = w("dt_proj.weight").shape[1]
    x_dbl = u @ w("x_proj.weight").t()
    dt, B, C = x_dbl[..., :rank], x_dbl[..., rank : rank + 16], x_dbl[..., rank + 16 :]
    delta = F.softplus(dt @ w("dt_proj.weight").t() + w("dt_proj.bias"))
    A = -torch.exp(w("A_log"))
    h = torch.zeros(x.shape[0], inner, 16)
    ys = []
    for t in range(x.shape[1]):
        h = torch.exp(delta[:, t, :, None] * A) * h + delta[:, t, :, None] * B[:, t, None, :] * u[:, t, :, None]
        ys.append((h * C[:, t, None, :]).sum(-1) + w("D") * u[:, t])
    y = torch.stack(ys, 1) * F.silu(z)
    return y @ w("out_proj.weight").t()


def _authors_codes(p: dict[str, torch.Tensor], features: torch.Tensor, depth: int) -> torch.Tensor:
    """The release's inference: all frames visible, both directions through mamba1, binary + ln + binarizer,
    mean over frames, sign (0 stays 0)."""
    T, W = features.shape[1], p["encoder.patch_embed.weight"].shape[0]
    pos = torch.arange(T, dtype=torch.float64)[:, None] / torch.pow(10000.0, 2 * (torch.arange(W) // 2) / W)
    table = torch.where(torch.arange(W) % 2 == 0, torch.sin(pos), torch.cos(pos)).float()
    x = features @ p["encoder.patch_embed.weight"].t() + p["encoder.patch_embed.bias"] + table
    ln = lambda v, name, eps=1e-6: F.layer_norm(v, (v.shape[-1],), p[name + ".weight"], p[name + ".bias"], eps)  # noqa: E731
    for i in range(depth):
        b = f"encoder.blocks.{i}."
        forward = _mamba_forward_from_spec(p, b + "mamba1.", ln(x, b + "norm1"))
        backward = _mamba_forward_from_spec(p, b + "mamba1.", ln(x.flip(1), b + "norm2")).flip(1)
        x = x + forward + backward
    x = ln(x, "encoder.norm") @ p["encoder.head.weight"].t() + p["encoder.head.bias"]
    logits = ln(x @ p["binary.weight"].t() + p["binary.bias"], "ln", eps=1e-5)
    frame_codes = 2 * torch.round(torch.clamp((logits + 1) / 2, 0, 1)) - 1
    return torch.sign(frame_codes.mean(1))


@pytest.mark.parametrize("frames", [7, 6])
def test_converted_checkpoint_encodes_like_the_authors_forward(tmp_path, frames):
    config = make_tiny_config()
    state = _authors_state_dict(config)
    torch.save({"model_state_dict": state}, tmp_path / "tiny_16.pth")
    model = convert_original_checkpoint(tmp_path / "tiny_16.pth", config)
    assert model.config.share_direction_weights and model.config.sign_tie_rule == "zero"
    assert model.encoder.blocks[0].backward_mixer is None
    torch.testing.assert_close(model.center_head.weight, state["classifier.weight"])
    features = torch.randn(5, frames, config.feature_dim)
    expected = _authors_codes(state, features, config.encoder_depth)
    got = model.encode(features.numpy())
    np.testing.assert_array_equal(got, expected.numpy().astype(np.int8))


def test_conversion_with_release_centers_and_cli(tmp_path):
    import h5py

    from s5vh_hf.cli.main import main

    config = make_tiny_config()
    torch.save({"model_state_dict": _authors_state_dict(config)}, tmp_path / "c.pth")
    centers = np.where(np.random.default_rng(0).random((6, 16)) > 0.5, 1.0, -1.0)
    with h5py.File(tmp_path / "hash_center_16.h5", "w") as handle:
        handle["matrix"] = centers
    model = convert_original_checkpoint(tmp_path / "c.pth", config, hash_centers=tmp_path / "hash_center_16.h5")
    np.testing.assert_array_equal(model.hash_centers.detach().numpy(), centers)
    config.save_pretrained(tmp_path / "cfg")
    with pytest.raises(ValueError, match="Unknown S5VH preset"):
        convert_original_checkpoint(tmp_path / "c.pth", "nope-16")
    assert (
        main(["convert-checkpoint", str(tmp_path / "c.pth"), "--preset", "fcvid-16", "--out", str(tmp_path / "o")]) == 2
    )


def test_conversion_reports_missing_unexpected_and_misshapen_keys(tmp_path):
    config = make_tiny_config()
    state = _authors_state_dict(config)
    broken = dict(state)
    del broken["encoder.head.weight"]
    broken["encoder.extra.weight"] = torch.zeros(2)
    torch.save({"model_state_dict": broken}, tmp_path / "keys.pth")
    with pytest.raises(
        ValueError, match=r"missing keys \['encoder.head.weight'\].*unexpected keys \['encoder.extra.weight'\]"
    ):
        convert_original_checkpoint(tmp_path / "keys.pth", config)
    misshapen = dict(state)
    misshapen["encoder.patch_embed.weight"] = torch.zeros(16, 99)
    torch.save({"model_state_dict": misshapen}, tmp_path / "shape.pth")
    with pytest.raises(
        ValueError, match=r"encoder.patch_embed.weight has shape \(16, 99\) but the preset expects \(16, 24\)"
    ):
        convert_original_checkpoint(tmp_path / "shape.pth", config)


class _NotAStateDict:
    pass


def test_conversion_refuses_pickles_that_are_not_state_dicts(tmp_path):
    torch.save({"model_state_dict": _NotAStateDict()}, tmp_path / "object.pth")
    with pytest.raises(ValueError, match="not a plain tensor checkpoint"):
        convert_original_checkpoint(tmp_path / "object.pth", make_tiny_config())
    torch.save({"model_state_dict": {"a": 1}}, tmp_path / "ints.pth")
    with pytest.raises(ValueError, match="state dict of tensors"):
        convert_original_checkpoint(tmp_path / "ints.pth", make_tiny_config())


def test_newer_config_is_refused(tmp_path):
    config = make_tiny_config()
    config.save_pretrained(tmp_path)
    data = json.loads((tmp_path / "config.json").read_text())
    data["s5vh_format_version"] = 99
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="newer s5vh-hf"):
        S5VHConfig.from_pretrained(tmp_path)


# ----------------------------------------------------------------------------------------------------- model card


def test_model_card_has_metadata_usage_and_evaluation(tmp_path, tiny_model, tiny_config):
    rng = np.random.default_rng(0)
    videos = rng.standard_normal((30, 5, tiny_config.feature_dim)).astype(np.float32)
    labels = rng.integers(0, 3, 30)
    report = evaluate_retrieval(tiny_model, (videos[:20], labels[:20]), (videos[20:], labels[20:]), ks=(5, 10))
    assert tiny_model.evaluation_results is None  # evaluating only reads; the caller decides what goes on the card
    tiny_model.evaluation_results = report.to_dict()
    tiny_model.save_pretrained(tmp_path)
    card = (tmp_path / "README.md").read_text()
    from huggingface_hub import ModelCard

    data = ModelCard.load(tmp_path / "README.md").data.to_dict()
    assert data["library_name"] == "transformers" and data["pipeline_tag"] == "feature-extraction"
    assert {"custom_code", "video-hashing", "mamba"} <= set(data["tags"])
    assert "datasets" not in data and "base_model" not in data  # not Hub ids: left out
    results = data["model-index"][0]["results"]
    assert {m["type"] for r in results for m in r["metrics"]} >= {"map_at_5", "map_at_10"}
    for section in ("## Intended use and limits", "## How to encode and search", "## Training configuration"):
        assert section in card
    assert "| mAP@K |" in card and "arXiv:2412.14518" in card
    fresh = render_model_card(S5VHModel(make_tiny_config()), repo_id="me/x")
    assert "No evaluation was recorded" in str(fresh) and "me/x" in str(fresh)
    assert "blended with the first and last frames' codes (33% ends)" in str(fresh)  # how the code is read
    assert "their own one-block encoder" not in str(fresh)
    own = render_model_card(S5VHModel(make_tiny_config(ends_encoder_width=16)), repo_id="me/x")
    assert "the ends read from their own one-block encoder of width 16" in str(own)
    assert "over the main encoder's output" not in str(own)
    stacked = S5VHModel(make_tiny_config(ends_encoder_width=16, ends_encoder_input="encoder"))
    assert "encoder of width 16 over the main encoder's output" in str(render_model_card(stacked, repo_id="me/x"))
    both = S5VHModel(make_tiny_config(ends_encoder_width=16, ends_encoder_input="both"))
    assert "over the frames and the main encoder's output" in str(render_model_card(both, repo_id="me/x"))
    wide = render_model_card(S5VHModel(make_tiny_config(code_ends_frames=3, code_ends_weight=0.25)), repo_id="me/x")
    assert "blended with the first 3 and last 3 frames' codes (25% ends)" in str(wide)


# --------------------------------------------------------------------------------------- remote code and the Hub


def test_remote_code_loads_without_the_package(tmp_path, tiny_model, tiny_config):
    tiny_model.save_pretrained(tmp_path / "model")
    for name in (
        "modeling_s5vh.py",
        "configuration_s5vh.py",
        "selective_scan.py",
        "cpu_kernels.py",
        "cpu_kernels_source.py",
    ):
        assert (tmp_path / "model" / name).exists()
    videos = np.random.default_rng(1).standard_normal((4, 6, tiny_config.feature_dim)).astype(np.float32)
    np.save(tmp_path / "videos.npy", videos)
    script = textwrap.dedent(
        f"""
        import importlib.abc, sys
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name == "s5vh_hf" or name.startswith("s5vh_hf."):
                    raise ImportError("s5vh_hf is not installed here")
        sys.meta_path.insert(0, Block())
        import numpy as np
        from transformers import AutoModel
        model = AutoModel.from_pretrained({str(tmp_path / "model")!r}, trust_remote_code=True)
        assert "s5vh_hf" not in sys.modules
        np.save({str(tmp_path / "codes.npy")!r}, model.encode(np.load({str(tmp_path / "videos.npy")!r})))
        print(type(model).__module__)
        """
    )
    env = {"HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "transformers_modules" in result.stdout
    np.testing.assert_array_equal(np.load(tmp_path / "codes.npy"), tiny_model.encode(videos))


def test_push_and_load_from_the_hub_cache_offline(tmp_path, monkeypatch, tiny_model, tiny_config):
    tiny_model.save_pretrained(tmp_path / "model")
    with fake_hub(monkeypatch, tmp_path / "cache") as hub:
        url = push_model_folder(tmp_path / "model", "me/s5vh-tiny", token="hf_test")
        assert sorted(hub.files["me/s5vh-tiny"]) == sorted(
            [
                "README.md",
                "config.json",
                "model.safetensors",
                "modeling_s5vh.py",
                "configuration_s5vh.py",
                "selective_scan.py",
                "cpu_kernels.py",
                "cpu_kernels_source.py",
                "batching.py",
                "codes.py",
                "commits.py",
                "kernel_cache.py",
                "s5vh_card_state.json",
            ]
        )
        downloaded = S5VHModel.from_pretrained("me/s5vh-tiny", token="hf_test")
        tiny_model.push_to_hub("me/s5vh-tiny-2", token="hf_test")
        assert "README.md" in hub.files["me/s5vh-tiny-2"] and "model.safetensors" in hub.files["me/s5vh-tiny-2"]
    assert "me/s5vh-tiny" in url
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    offline = S5VHModel.from_pretrained("me/s5vh-tiny")
    videos = np.random.default_rng(2).standard_normal((3, 4, tiny_config.feature_dim)).astype(np.float32)
    np.testing.assert_array_equal(offline.encode(videos), tiny_model.encode(videos))
    np.testing.assert_array_equal(downloaded.encode(videos), tiny_model.encode(videos))
    with pytest.raises(ValueError, match="not a saved S5VH model"):
        push_model_folder(tmp_path, "me/x")


def test_reference_mixer_helper_matches_model(tiny_config):
    """Guards the spec re-computation above: on one block it must equal the model's own mixer."""
    model = S5VHModel(make_tiny_config(share_direction_weights=True))
    params = {k: v.detach() for k, v in model.state_dict().items()}
    x = torch.randn(2, 5, tiny_config.hidden_size)
    expected = model.encoder.blocks[0].forward_mixer(x.transpose(0, 1)).transpose(0, 1)
    got = _mamba_forward_from_spec(params, "encoder.blocks.0.forward_mixer.", x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    assert math.isfinite(float(got.abs().sum()))


def test_checkpoints_with_the_old_mixer_names_still_load(tmp_path, tiny_model, tiny_config):
    """Models saved by s5vh-hf ≤ 0.2 (``mamba1``/``mamba2`` keys, as the authors') load into the renamed mixers."""
    from safetensors.torch import save_file

    tiny_model.save_pretrained(tmp_path / "new")
    old_keys = {
        k.replace(".forward_mixer.", ".mamba1.").replace(".backward_mixer.", ".mamba2."): v.contiguous()
        for k, v in tiny_model.state_dict().items()
    }
    assert any(".mamba2." in k for k in old_keys)
    (tmp_path / "old").mkdir()
    save_file(old_keys, str(tmp_path / "old" / "model.safetensors"), metadata={"format": "pt"})
    (tmp_path / "old" / "config.json").write_text((tmp_path / "new" / "config.json").read_text())
    videos = np.random.default_rng(5).standard_normal((3, 6, tiny_config.feature_dim)).astype(np.float32)
    loaded = S5VHModel.from_pretrained(tmp_path / "old")
    np.testing.assert_array_equal(loaded.encode(videos), tiny_model.encode(videos))
    loaded.save_pretrained(tmp_path / "resaved")  # saved under the new names
    from safetensors import safe_open

    with safe_open(str(tmp_path / "resaved" / "model.safetensors"), "pt") as handle:
        keys = list(handle.keys())
    assert any(".forward_mixer." in k for k in keys) and not any(".mamba1." in k for k in keys)
