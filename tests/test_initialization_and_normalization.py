import json
import math

import numpy as np
import pytest
import torch

from s5vh_hf import S5VHConfig, S5VHModel
from s5vh_hf.data.clustering import frame_feature_statistics
from s5vh_hf.model.configuration_s5vh import RELEASE_COMPATIBILITY

from .conftest import make_tiny_config


def _xavier_bound(layer: torch.nn.Linear) -> float:
    return math.sqrt(6 / (layer.in_features + layer.out_features))


def test_release_initialization_matches_the_authors_code():
    torch.manual_seed(0)
    model = S5VHModel(make_tiny_config(initialization="release", feature_normalization="none"))
    mixer = model.encoder.blocks[0].forward_mixer
    for layer in (model.encoder.patch_embed, model.encoder.head, mixer.in_proj, mixer.x_proj, mixer.dt_proj,
                  mixer.out_proj, model.decoder.head):  # fmt: skip
        assert layer.weight.abs().max() <= _xavier_bound(layer) + 1e-6
        assert layer.weight.abs().max() > 0.8 * _xavier_bound(layer)
        if layer.bias is not None:
            assert torch.count_nonzero(layer.bias) == 0  # the Δ bias too
    # outside encoder and decoder: PyTorch's default nn.Linear initialisation
    projection = model.hash_layer.projection
    bound = 1 / math.sqrt(projection.in_features)
    assert projection.weight.abs().max() <= bound and torch.count_nonzero(projection.bias) > 0


def test_scaled_initialization_does_not_depend_on_the_feature_dimension():
    torch.manual_seed(0)
    for dim in (8, 64):
        model = S5VHModel(make_tiny_config(feature_dim=dim))
        assert model.config.initialization == "scaled"
        embed = model.encoder.patch_embed.weight
        assert embed.std().item() == pytest.approx(dim**-0.5, rel=0.25)
        output = torch.nn.functional.linear(torch.randn(4096, dim), embed)
        assert output.var().item() == pytest.approx(1.0, rel=0.25)  # unit input variance → unit output variance
    mixer = model.encoder.blocks[0].forward_mixer
    delta = torch.nn.functional.softplus(mixer.dt_proj.bias)
    assert delta.min() >= 1e-4 and delta.max() <= 0.1 + 1e-6  # mamba-ssm's Δ range is kept
    assert mixer.in_proj.weight.abs().max() <= _xavier_bound(mixer.in_proj) + 1e-6


def test_trunc_normal_initialization_is_the_previous_behaviour():
    torch.manual_seed(0)
    model = S5VHModel(make_tiny_config(feature_dim=64, hidden_size=32, initialization="trunc_normal"))
    assert model.encoder.patch_embed.weight.std().item() == pytest.approx(0.02, rel=0.15)


def test_a_version_1_config_keeps_the_behaviour_it_was_trained_with(tmp_path):
    values = make_tiny_config().to_dict()
    for key in ("initialization", "feature_normalization"):
        values.pop(key)
    values["s5vh_format_version"] = 1
    (tmp_path / "config.json").write_text(json.dumps(values))
    legacy = S5VHConfig.from_pretrained(tmp_path)
    assert (legacy.initialization, legacy.feature_normalization) == ("trunc_normal", "none")
    assert S5VHModel(legacy).feature_mean is None
    fresh = make_tiny_config()
    assert (fresh.initialization, fresh.feature_normalization) == ("scaled", "standardize")


def test_release_compatible_preset():
    config = S5VHConfig.from_preset("ucf101-32", model_size="mini", release_compatible=True)
    assert all(getattr(config, key) == value for key, value in RELEASE_COMPATIBILITY.items())
    assert config.feature_normalization == "none" and config.encoder_depth == 1
    assert S5VHConfig.from_preset("ucf101-32").share_direction_weights is False


def test_standardized_codes_do_not_depend_on_the_scale_or_offset_of_the_features():
    torch.manual_seed(0)
    videos = np.random.default_rng(0).gamma(2.0, 1.0, (12, 8, 24)).astype(np.float32)
    model = S5VHModel(make_tiny_config()).eval()
    mean, std = frame_feature_statistics(videos)
    model.set_feature_statistics(mean, std)
    codes = model.encode(videos)
    scale, offset = 1000.0, -7.0
    model.set_feature_statistics(mean * scale + offset, std * scale)
    assert np.array_equal(model.encode(videos * scale + offset), codes)
    model.set_feature_statistics(mean, std)
    assert not np.array_equal(model.encode(videos * scale + offset), codes)  # the statistics are what is used


def test_frame_feature_statistics_are_over_every_frame():
    videos = [np.arange(6, dtype=np.float32).reshape(3, 2), np.array([[10.0, 20.0]], dtype=np.float32)]
    mean, std = frame_feature_statistics(videos)
    frames = np.concatenate(videos)
    np.testing.assert_allclose(mean, frames.mean(0), rtol=1e-6)
    np.testing.assert_allclose(std, frames.std(0), rtol=1e-6)


def test_feature_statistics_are_validated_and_saved_with_the_weights(tmp_path):
    model = S5VHModel(make_tiny_config())
    with pytest.raises(ValueError, match=r"feature mean must have shape \[24\]"):
        model.set_feature_statistics(np.zeros(5), np.ones(5))
    with pytest.raises(ValueError, match="NaN or Inf"):
        model.set_feature_statistics(np.full(24, np.nan), np.ones(24))
    with pytest.raises(ValueError, match="non-negative"):
        model.set_feature_statistics(np.zeros(24), -np.ones(24))
    std = np.linspace(0.0, 2.0, 24)  # a constant dimension (std 0) is only centred
    model.set_feature_statistics(np.arange(24.0), std)
    assert model.feature_scale[0].item() == 1.0
    model.save_pretrained(tmp_path)
    loaded = S5VHModel.from_pretrained(tmp_path)
    assert torch.equal(loaded.feature_mean, model.feature_mean)
    assert torch.equal(loaded.feature_scale, model.feature_scale)
    raw = S5VHModel(make_tiny_config(feature_normalization="none"))
    with pytest.raises(ValueError, match="feature_normalization='none'"):
        raw.set_feature_statistics(np.zeros(24), np.ones(24))


@pytest.mark.parametrize("scheme", ["scaled", "release", "trunc_normal"])
def test_initialisation_does_not_depend_on_the_order_modules_are_visited(scheme):
    """Every layer's part in the scheme is fixed when the model is built: visiting parents before children (the
    opposite of transformers' order) gives the same kind of values, layer by layer."""
    config = make_tiny_config(initialization=scheme, feature_dim=64)
    model = S5VHModel(config)
    for module in model.modules():  # parents first
        model._init_weights(module)
    centers = model.center_head.weight
    assert torch.all(centers.abs() == 1)  # still ±1 hash centers, not a linear layer's default
    mixer = model.encoder.blocks[0].forward_mixer
    bias = mixer.dt_proj.bias
    delta = torch.nn.functional.softplus(bias)
    if scheme == "release":
        assert torch.all(bias == 0)
    else:
        assert float(delta.min()) >= config.time_step_floor * 0.99 and float(delta.max()) <= config.time_step_max * 1.01
    assert torch.all(model.encoder.head.bias == 0)
    if scheme == "scaled":
        std = float(model.encoder.patch_embed.weight.std())
        assert abs(std - 64**-0.5) < 0.03
    assert torch.equal(mixer.A_log, torch.log(torch.arange(1, 17.0)).expand_as(mixer.A_log))


def test_a_version_2_config_keeps_the_mean_frame_code_it_was_trained_with(tmp_path):
    values = make_tiny_config().to_dict()
    values.pop("code_pooling")
    values["s5vh_format_version"] = 2
    (tmp_path / "config.json").write_text(json.dumps(values))
    assert S5VHConfig.from_pretrained(tmp_path).code_pooling == "mean"
    assert make_tiny_config().code_pooling == "mean+ends"  # the default since format 3 (the order ablation)
    assert S5VHConfig.from_preset("ucf101-32", release_compatible=True).code_pooling == "mean"


def test_a_version_3_config_keeps_half_ends_and_trains_without_the_ends_term(tmp_path):
    values = make_tiny_config().to_dict()
    values.pop("code_ends_weight")
    values.pop("ends_term_weight")
    values["s5vh_format_version"] = 3
    (tmp_path / "config.json").write_text(json.dumps(values))
    old = S5VHConfig.from_pretrained(tmp_path)
    assert (old.code_pooling, old.code_ends_weight, old.ends_term_weight) == ("mean+ends", 0.5, 0.0)
    new = make_tiny_config()  # the defaults since format 4 (the order ablation's fifth round)
    assert (new.code_pooling, new.code_ends_weight, new.ends_term_weight) == ("mean+ends", 1 / 3, 1.0)
    assert new.s5vh_format_version == 4
    assert S5VHConfig.from_preset("ucf101-32", release_compatible=True).ends_term_weight == 0.0


def test_the_order_term_has_no_warm_up_by_default_and_a_saved_warm_up_is_kept(tmp_path):
    assert make_tiny_config().ends_term_warmup == 0.0  # the warm-up loses order on six scenes per class
    values = make_tiny_config(ends_term_warmup=0.5).to_dict()
    assert values["ends_term_warmup"] == 0.5
    (tmp_path / "config.json").write_text(json.dumps(values))
    assert S5VHConfig.from_pretrained(tmp_path).ends_term_warmup == 0.5
    values.pop("ends_term_warmup")  # a config written before the field: the full weight from the first step
    values["s5vh_format_version"] = 4
    (tmp_path / "config.json").write_text(json.dumps(values))
    assert S5VHConfig.from_pretrained(tmp_path).ends_term_warmup == 0.0
