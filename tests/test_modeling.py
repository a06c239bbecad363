import importlib.util
import math

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModel, MambaConfig
from transformers.models.mamba.modeling_mamba import MambaMixer

from s5vh_hf import S5VHConfig, S5VHModel, binarize, pack_codes
from s5vh_hf.model.modeling_s5vh import (
    causal_depthwise_conv,
    per_video_reverse_index,
    sign_with_tie_rule,
    sinusoidal_position_table,
)

from .conftest import make_tiny_config


def test_sinusoidal_table_follows_the_spec_formula():
    table = sinusoidal_position_table(5, 6)
    for p in range(5):
        for j in range(6):
            angle = p / 10000 ** (2 * (j // 2) / 6)
            expected = math.sin(angle) if j % 2 == 0 else math.cos(angle)
            assert table[p, j].item() == pytest.approx(expected, abs=1e-6)


def test_binarize_values_and_straight_through_gradient():
    x = torch.tensor([-2.0, -1.0, -0.3, 0.0, 0.2, 0.999, 1.0, 3.0], requires_grad=True)
    codes = binarize(x)
    # (x+1)/2 = 0.5 at x = 0 rounds half to even → 0 → −1
    assert codes.tolist() == [-1, -1, -1, -1, 1, 1, 1, 1]
    codes.sum().backward()
    assert x.grad.tolist() == [0, 0, 1, 1, 1, 1, 0, 0]


def test_sign_tie_rules():
    mean = torch.tensor([[0.5, 0.0, -0.2]])
    assert sign_with_tie_rule(mean, "positive").tolist() == [[1, 1, -1]]
    assert sign_with_tie_rule(mean, "negative").tolist() == [[1, -1, -1]]
    assert sign_with_tie_rule(mean, "zero").tolist() == [[1, 0, -1]]


def test_reverse_index_flips_only_real_frames():
    index = per_video_reverse_index(torch.tensor([3, 5]), 5)
    assert index.tolist() == [[2, 1, 0, 3, 4], [4, 3, 2, 1, 0]]


def test_causal_conv_matches_torch_conv1d():
    conv = torch.nn.Conv1d(6, 6, 4, groups=6, padding=3)
    x = torch.randn(2, 9, 6)
    expected = conv(x.transpose(1, 2))[..., :9].transpose(1, 2)
    got = causal_depthwise_conv(x.transpose(0, 1), conv.weight, conv.bias).transpose(0, 1)
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("implementation", ["cpu_kernel", "fast", "reference"])
def test_mixer_equals_transformers_mamba_mixer(implementation):
    """Our mixer loads into transformers' MambaMixer (same names, shapes) and computes the same function."""
    torch.manual_seed(0)
    config = make_tiny_config(scan_implementation=implementation)
    model = S5VHModel(config)
    ours = model.encoder.blocks[0].forward_mixer
    width = config.hidden_size
    theirs = MambaMixer(
        MambaConfig(
            hidden_size=width,
            state_size=16,
            conv_kernel=4,
            expand=2,
            use_bias=False,
            use_conv_bias=True,
            time_step_rank=math.ceil(width / 16),
        ),
        0,
    )
    theirs.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(3, 11, width)
    # transformers calls causal-conv1d's CUDA function whenever it is installed: run theirs on the GPU there.
    device = "cuda" if importlib.util.find_spec("causal_conv1d") and torch.cuda.is_available() else "cpu"
    expected = theirs.to(device)(x.to(device)).cpu()
    got = ours(x.transpose(0, 1)).transpose(0, 1)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_forward_shapes_and_masks(tiny_model, tiny_config):
    torch.manual_seed(1)
    features = torch.randn(4, 10, tiny_config.feature_dim)
    visible = torch.zeros(4, 10, dtype=torch.bool)
    visible[:, ::2] = True
    out = tiny_model(features, visible_mask=visible)
    L, K, D = tiny_config.code_length, tiny_config.num_hash_centers, tiny_config.feature_dim
    assert out.video_codes.shape == (4, L)
    assert out.frame_codes.shape == (4, 10, L)
    assert out.center_logits.shape == (4, K)
    assert out.reconstruction.shape == (int((~visible).sum()), D)
    assert torch.equal(out.reconstruction_mask, ~visible)
    assert set(out.frame_codes[visible].unique().tolist()) <= {-1.0, 1.0}
    assert torch.all(out.frame_codes[~visible] == 0)
    torch.testing.assert_close(out.video_codes, _expected_video_code(out.frame_codes[:, ::2], tiny_config))
    assert out.ends_frame_codes is None  # the ends are the main encoder's unless they have their own
    expected_logits = out.video_codes @ tiny_model.hash_centers.t() / (L * tiny_config.center_temperature)
    torch.testing.assert_close(out.center_logits, expected_logits)
    unmasked = tiny_model(features)
    assert unmasked.reconstruction is None
    assert isinstance(tiny_model(features, return_dict=False), tuple)


def test_masked_frames_do_not_reach_the_codes(tiny_model, tiny_config):
    features = torch.randn(2, 8, tiny_config.feature_dim)
    visible = torch.tensor([[True, False] * 4] * 2)
    changed = features.clone()
    changed[:, 1::2] = torch.randn_like(changed[:, 1::2])
    a, b = tiny_model(features, visible_mask=visible), tiny_model(changed, visible_mask=visible)
    torch.testing.assert_close(a.frame_logits, b.frame_logits)


@pytest.mark.parametrize("share", [False, True])
def test_bidirectional_an_early_frame_sees_a_later_one(share):
    torch.manual_seed(2)
    config = make_tiny_config(share_direction_weights=share)
    model = S5VHModel(config).eval()
    features = torch.randn(1, 9, config.feature_dim)
    changed = features.clone()
    changed[0, -1] += 5.0  # any dependence shows: identical inputs give bit-identical outputs
    before = model(features).frame_logits
    after = model(changed).frame_logits
    assert (before[0, 0] - after[0, 0]).abs().max() > 1e-7
    assert (model.encoder.blocks[0].backward_mixer is None) == share


def test_padding_and_batch_composition_do_not_change_a_video(tiny_model, tiny_config):
    torch.manual_seed(3)
    D = tiny_config.feature_dim
    short, long_ = torch.randn(5, D), torch.randn(9, D)
    alone = tiny_model(short[None]).frame_logits[0]
    padded = torch.zeros(2, 9, D)
    padded[0, :5], padded[1] = short, long_
    padded[0, 5:] = 7.0  # garbage in the padding must not matter
    mask = torch.arange(9)[None] < torch.tensor([[5], [9]])
    together = tiny_model(padded, attention_mask=mask)
    torch.testing.assert_close(together.frame_logits[0, :5], alone, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(together.frame_logits[1], tiny_model(long_[None]).frame_logits[0], rtol=1e-5, atol=1e-5)
    codes = tiny_model.encode([short.numpy(), long_.numpy()])
    assert np.array_equal(codes[0], tiny_model.encode([short.numpy()])[0])
    assert np.array_equal(codes[1], tiny_model.encode([long_.numpy(), short.numpy(), short.numpy()])[0])


def test_variable_visible_counts_with_padding(tiny_model, tiny_config):
    torch.manual_seed(4)
    D = tiny_config.feature_dim
    features = torch.randn(2, 8, D)
    attention_mask = torch.arange(8)[None] < torch.tensor([[6], [8]])
    visible = torch.tensor([[1, 0, 1, 1, 0, 0, 0, 0], [0, 1, 1, 0, 1, 0, 1, 1]], dtype=torch.bool)
    out = tiny_model(features, attention_mask=attention_mask, visible_mask=visible)
    assert torch.equal(out.reconstruction_mask, attention_mask & ~visible)
    single = tiny_model(features[:1, :6], visible_mask=visible[:1, :6])
    torch.testing.assert_close(out.video_codes[0], single.video_codes[0])
    first_video_rows = int(out.reconstruction_mask[0].sum())
    torch.testing.assert_close(out.reconstruction[:first_video_rows], single.reconstruction, rtol=1e-5, atol=1e-5)


def test_decoder_token_order_release_option_changes_only_the_decoder():
    torch.manual_seed(5)
    config = make_tiny_config()
    temporal = S5VHModel(config).eval()
    release = S5VHModel(make_tiny_config(decoder_token_order="visible_first")).eval()
    release.load_state_dict(temporal.state_dict())
    features = torch.randn(2, 8, config.feature_dim)
    visible = torch.tensor([[True, False, False, True, True, False, True, False]] * 2)
    a, b = temporal(features, visible_mask=visible), release(features, visible_mask=visible)
    torch.testing.assert_close(a.video_codes, b.video_codes)
    assert a.reconstruction.shape == b.reconstruction.shape == (8, config.feature_dim)
    assert not torch.allclose(a.reconstruction, b.reconstruction)


def test_release_decoder_order_feeds_visible_tokens_first():
    """Independent check of the release order: decode the reordered sequence with the plain decoder."""
    torch.manual_seed(9)
    model = S5VHModel(make_tiny_config(decoder_token_order="visible_first")).eval()
    features = torch.randn(1, 6, 24)
    visible = torch.tensor([[False, True, False, True, True, False]])
    out = model(features, visible_mask=visible)
    table = sinusoidal_position_table(6, 16)
    tokens = (
        torch.where(visible[:, :, None], model.encoder_to_decoder(out.frame_codes), model.mask_token.expand(1, 6, -1))
        + table
    )
    order = [1, 3, 4, 0, 2, 5]
    predicted = model.decoder(tokens[:, order], None)[0]
    torch.testing.assert_close(out.reconstruction, predicted[[3, 4, 5]], rtol=1e-5, atol=1e-5)


def test_gradients_reach_the_encoder_through_the_binarizer(tiny_config):
    model = S5VHModel(tiny_config).train()
    features = torch.randn(3, 6, tiny_config.feature_dim)
    visible = torch.tensor([[True, True, False, True, False, False]] * 3)
    out = model(features, visible_mask=visible)
    loss = out.reconstruction.pow(2).sum() + out.center_logits.logsumexp(-1).sum()
    assert out.reconstruction.shape == (9, tiny_config.feature_dim)
    loss.backward()
    assert model.encoder.patch_embed.weight.grad.abs().sum() > 0
    assert model.encoder.blocks[0].forward_mixer.A_log.grad.abs().sum() > 0
    assert model.center_head.weight.grad is None  # frozen by default


def test_center_head_is_trainable_only_when_configured():
    assert not S5VHModel(make_tiny_config()).center_head.weight.requires_grad
    assert S5VHModel(make_tiny_config(trainable_center_head=True)).center_head.weight.requires_grad


def test_set_hash_centers_validates(tiny_model, tiny_config):
    centers = np.where(np.random.default_rng(0).random((6, 16)) > 0.5, 1, -1)
    tiny_model.set_hash_centers(centers)
    assert np.array_equal(tiny_model.hash_centers.detach().numpy(), centers)
    with pytest.raises(ValueError, match="shape"):
        tiny_model.set_hash_centers(centers[:3])
    with pytest.raises(ValueError, match="-1 and \\+1"):
        tiny_model.set_hash_centers(centers * 0.5)


def test_pseudo_label_logits_paper_and_release(tiny_config):
    torch.manual_seed(6)
    paper = S5VHModel(make_tiny_config(code_pooling="mean", ends_term_weight=0.0)).eval()
    features = torch.randn(3, 7, tiny_config.feature_dim)
    logits = paper.pseudo_label_logits(features)
    torch.testing.assert_close(logits, paper(features).center_logits)
    default = S5VHModel(tiny_config).eval()  # a blend trained in parts: the refresh reads the mean part
    default.load_state_dict(paper.state_dict())
    torch.testing.assert_close(default.pseudo_label_logits(features), logits)
    release = S5VHModel(make_tiny_config(refresh_skips_hash_norm=True, code_pooling="mean")).eval()
    release.load_state_dict(paper.state_dict())
    raw = release.encoder(features, torch.arange(7).expand(3, 7), None)
    codes = _expected_video_code(binarize(release.hash_layer.projection(raw)), release.config)
    torch.testing.assert_close(release.pseudo_label_logits(features), codes @ release.hash_centers.t())


def test_save_and_load_round_trip_with_safetensors(tmp_path, tiny_model, tiny_config):
    centers = torch.where(torch.rand(6, 16) > 0.5, 1.0, -1.0)
    tiny_model.set_hash_centers(centers)
    tiny_model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    assert not list(tmp_path.glob("*.bin"))
    loaded = S5VHModel.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(loaded.hash_centers, centers)
    assert not loaded.center_head.weight.requires_grad
    features = np.random.default_rng(0).standard_normal((3, 5, tiny_config.feature_dim)).astype(np.float32)
    assert np.array_equal(loaded.encode(features), tiny_model.encode(features))
    for key, value in tiny_model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value, msg=key)


def test_auto_classes(tmp_path, tiny_model):
    assert isinstance(AutoConfig.for_model("s5vh"), S5VHConfig)
    tiny_model.save_pretrained(tmp_path)
    assert isinstance(AutoModel.from_pretrained(tmp_path), S5VHModel)
    assert isinstance(AutoModel.from_config(S5VHConfig.from_pretrained(tmp_path)), S5VHModel)


# ---------------------------------------------------------------------------------------------------- encode()


def test_encode_outputs(tiny_model, tiny_config):
    rng = np.random.default_rng(7)
    videos = rng.standard_normal((5, 6, tiny_config.feature_dim)).astype(np.float32)
    pm1 = tiny_model.encode(videos)
    assert pm1.dtype == np.int8 and pm1.shape == (5, 16)
    assert set(np.unique(pm1)) <= {-1, 1}
    packed = tiny_model.encode(videos, output="packed")
    assert packed.dtype == np.uint8 and packed.shape == (5, 2)
    assert np.array_equal(packed, pack_codes(pm1))
    assert np.array_equal(np.unpackbits(packed, axis=1).astype(np.int8) * 2 - 1, pm1)
    assert np.array_equal(tiny_model.encode(videos, output="bool"), pm1 > 0)
    assert np.array_equal(tiny_model.encode(torch.from_numpy(videos)), pm1)
    assert np.array_equal(tiny_model.encode(list(videos), batch_size=2), pm1)
    assert np.array_equal(tiny_model.encode(videos), pm1)  # deterministic


def _expected_video_code(frame_codes: torch.Tensor, config, ends_codes: torch.Tensor | None = None) -> torch.Tensor:
    """The video code of frames ``[B, T, L]`` (all real) under ``config.code_pooling``, written out; the ends are
    read from ``ends_codes`` ``[B, T, L]`` (the ends' own encoder) when given."""
    k = config.code_ends_frames
    at_ends = frame_codes if ends_codes is None else ends_codes
    mean, ends = frame_codes.mean(1), (at_ends[:, :k].mean(1) + at_ends[:, -k:].mean(1)) / 2
    weight = config.code_ends_weight
    return {"mean": mean, "ends": ends, "mean+ends": weight * ends + (1 - weight) * mean}[config.code_pooling]


@pytest.mark.parametrize(
    "pooling,ends_weight,ends_frames,ends_width",
    [("mean", 0.5, 1, 0), ("ends", 0.5, 1, 0), ("mean+ends", 0.5, 1, 0), ("mean+ends", 0.25, 1, 0), ("ends", 0.5, 3, 0),
     ("mean+ends", 0.5, 2, 0), ("ends", 0.5, 1, 16), ("mean+ends", 1 / 3, 2, 16), ("mean", 0.5, 1, 16)],
)  # fmt: skip
def test_encode_equals_the_sign_of_the_configured_reading(pooling, ends_weight, ends_frames, ends_width):
    torch.manual_seed(0)
    config = make_tiny_config(code_pooling=pooling, code_ends_weight=ends_weight, code_ends_frames=ends_frames,
                              ends_encoder_width=ends_width)  # fmt: skip
    model = S5VHModel(config).eval()
    videos = torch.randn(4, 7, config.feature_dim)
    out = model(videos)  # with the ends' own encoder (ends_width > 0) the ends are read from its frame codes
    expected = sign_with_tie_rule(_expected_video_code(out.frame_codes, config, out.ends_frame_codes), "positive")
    assert np.array_equal(model.encode(videos), expected.detach().numpy().astype(np.int8))


def test_encode_reads_the_ends_from_an_ends_encoder_over_the_main_encoders_output():
    torch.manual_seed(0)
    config = make_tiny_config(code_pooling="mean+ends", code_ends_weight=3 / 8, ends_encoder_width=16,
                              ends_encoder_input="encoder")  # fmt: skip
    model = S5VHModel(config).eval()
    videos = torch.randn(4, 7, config.feature_dim)
    out = model(videos)
    expected = sign_with_tie_rule(_expected_video_code(out.frame_codes, config, out.ends_frame_codes), "positive")
    assert np.array_equal(model.encode(videos), expected.detach().numpy().astype(np.int8))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_encode_accepts_float_dtypes(tiny_model, tiny_config, dtype):
    videos = torch.randn(3, 5, tiny_config.feature_dim).to(dtype)
    expected = tiny_model.encode(videos.float())
    assert np.array_equal(tiny_model.encode(videos), expected)
    if dtype not in (torch.bfloat16,):
        assert np.array_equal(tiny_model.encode(videos.numpy()), expected)


def test_encode_variable_lengths_and_empty(tiny_model, tiny_config):
    rng = np.random.default_rng(8)
    videos = [rng.standard_normal((t, tiny_config.feature_dim)).astype(np.float32) for t in (3, 9, 1, 6)]
    codes = tiny_model.encode(videos, batch_size=3)
    for video, code in zip(videos, codes):
        assert np.array_equal(tiny_model.encode([video])[0], code)
    assert tiny_model.encode([]).shape == (0, 16)
    assert tiny_model.encode([], output="packed").shape == (0, 2)
    assert tiny_model.encode(np.zeros((0, 5, tiny_config.feature_dim), np.float32)).shape == (0, 16)


def test_encode_tie_rule_zero_only_for_pm1():
    model = S5VHModel(make_tiny_config(sign_tie_rule="zero")).eval()
    videos = np.random.default_rng(0).standard_normal((2, 4, 24)).astype(np.float32)
    assert set(np.unique(model.encode(videos))) <= {-1, 0, 1}
    with pytest.raises(ValueError, match="zero"):
        model.encode(videos, output="packed")


@pytest.mark.parametrize(
    "videos, error, match",
    [
        (np.zeros((2, 5, 7), np.float32), ValueError, "expected D=24, got 7"),
        ([np.zeros((5, 24), np.float32), np.zeros((5, 23), np.float32)], ValueError, "video 1.*expected D=24, got 23"),
        (np.zeros((2, 0, 24), np.float32), ValueError, "T = 0"),
        ([np.zeros((3, 24), np.float32), np.zeros((0, 24), np.float32)], ValueError, "video 1 has no frames"),
        (np.zeros((2, 5, 24), np.int64), TypeError, "floating-point"),
        (np.zeros((5, 24), np.float32), ValueError, "2-D"),
        ("videos", TypeError, "list"),
    ],
)
def test_encode_rejects_bad_input(tiny_model, videos, error, match):
    with pytest.raises(error, match=match):
        tiny_model.encode(videos)


def test_encode_names_the_video_with_nan_or_inf(tiny_model):
    videos = np.zeros((4, 3, 24), np.float32)
    videos[2, 1, 5] = np.nan
    with pytest.raises(ValueError, match="video 2"):
        tiny_model.encode(videos)
    videos[2, 1, 5] = 0
    videos[3, 0, 0] = np.inf
    with pytest.raises(ValueError, match="video 3"):
        tiny_model.encode(list(videos))


def test_encode_rejects_ragged_object_arrays(tiny_model):
    ragged = np.empty(2, dtype=object)
    ragged[0] = np.zeros((3, 24), np.float32)
    ragged[1] = [[0.0] * 24, [0.0] * 23]
    with pytest.raises(ValueError, match="ragged"):
        tiny_model.encode(ragged)


def test_forward_rejects_bad_batches(tiny_model):
    with pytest.raises(ValueError, match="expected D=24, got 5"):
        tiny_model(torch.zeros(2, 3, 5))
    with pytest.raises(TypeError, match="floating-point"):
        tiny_model(torch.zeros(1, 3, 24, dtype=torch.int32))
    # The checks that read the values (device syncs) are off in the training step and on with validate_inputs;
    # encode() and the collator check their own inputs.
    bad = torch.zeros(2, 3, 24)
    bad[1, 2, 0] = float("inf")
    tiny_model(bad)  # no check, no error
    tiny_model.validate_inputs = True
    bad = torch.zeros(2, 3, 24)
    bad[1, 2, 0] = float("inf")
    with pytest.raises(ValueError, match="videos \\[1\\]"):
        tiny_model(bad)
    padded_nan = torch.zeros(2, 3, 24)
    padded_nan[0, 2] = float("nan")
    tiny_model(padded_nan, attention_mask=torch.tensor([[True, True, False], [True, True, True]]))  # padding is ignored
    with pytest.raises(ValueError, match="real frames first"):
        tiny_model(torch.zeros(1, 3, 24), attention_mask=torch.tensor([[True, False, True]]))
    with pytest.raises(ValueError, match="no real frames"):
        tiny_model(torch.zeros(1, 3, 24), attention_mask=torch.tensor([[False, False, False]]))
    with pytest.raises(ValueError, match="visible frame"):
        tiny_model(torch.zeros(1, 3, 24), visible_mask=torch.tensor([[False, False, False]]))
    tiny_model.validate_inputs = False
    with pytest.raises(ValueError, match="video 1 contains NaN"):
        tiny_model.encode([np.zeros((3, 24), np.float32), np.full((3, 24), np.nan, np.float32)])


def test_the_collator_refuses_non_finite_videos_by_name():
    from s5vh_hf.data.collator import TwoViewCollator

    collator = TwoViewCollator(0.5, feature_dim=4, draw_views=False)
    good, bad = np.zeros((3, 4), np.float32), np.zeros((3, 4), np.float32)
    bad[1, 2] = np.inf
    with pytest.raises(ValueError, match="'clip-7'"):
        collator([{"features": good, "video_id": "clip-1"}, {"features": bad, "video_id": "clip-7"}])


def test_code_pooling_reads_the_video_code_from_the_frames_as_configured(tmp_path):
    from torch import nn

    from s5vh_hf.model.modeling_s5vh import mean_frame_code, pooled_frame_code

    torch.manual_seed(0)
    logits = torch.randn(3, 6, 8)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0]], dtype=torch.bool)
    attention = nn.Linear(8, 1)
    nn.init.zeros_(attention.weight)
    nn.init.zeros_(attention.bias)
    mean = mean_frame_code(logits, mask)[1]
    torch.testing.assert_close(pooled_frame_code(logits, mask, "attention", attention)[1], mean)  # zero: the mean
    signs = torch.sign(logits)
    ends = pooled_frame_code(logits, mask, "ends")[1]
    torch.testing.assert_close(ends[1], (signs[1, 0] + signs[1, 3]) / 2)  # first and last real frames
    for weight in (0.0, 0.25, 1.0):  # the blend's ends share: 0 is the mean, 1 the ends
        blend = pooled_frame_code(logits, mask, "mean+ends", ends_weight=weight)[1]
        torch.testing.assert_close(blend, weight * ends + (1 - weight) * mean)
    nn.init.normal_(attention.weight)
    logits.requires_grad_(True)
    pooled_frame_code(logits, mask, "attention", attention)[1].sum().backward()
    assert attention.weight.grad is not None and attention.weight.grad.abs().sum() > 0
    config = S5VHConfig(feature_dim=8, hidden_size=16, encoder_depth=1, decoder_hidden_size=16, code_length=16,
                        num_hash_centers=4, code_pooling="attention")  # fmt: skip
    model = S5VHModel(config)
    videos = [np.random.default_rng(i).standard_normal((5 + i, 8)).astype(np.float32) for i in range(3)]
    model.save_pretrained(tmp_path / "attention")
    loaded = S5VHModel.from_pretrained(tmp_path / "attention")
    assert loaded.config.code_pooling == "attention" and np.array_equal(loaded.encode(videos), model.encode(videos))
    with pytest.raises(ValueError, match="code_pooling"):
        S5VHConfig(feature_dim=8, code_length=16, code_pooling="max")
    with pytest.raises(ValueError, match="code_ends_weight"):
        S5VHConfig(feature_dim=8, code_length=16, code_ends_weight=1.5)
    for frames in (0, 1.5, True):
        with pytest.raises(ValueError, match="code_ends_frames"):
            S5VHConfig(feature_dim=8, code_length=16, code_ends_frames=frames)
    with pytest.raises(ValueError, match="mask_keeps_ends"):
        S5VHConfig(feature_dim=8, code_length=16, mask_keeps_ends="yes")


def test_end_frames_code_reads_the_first_and_last_frames_in_the_mask():
    from s5vh_hf.model.modeling_s5vh import end_frames_code

    codes = torch.arange(6.0)[None, :, None].repeat(2, 1, 1)  # frame t has code t
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [0, 1, 1, 0, 1, 0]], dtype=torch.bool)
    assert end_frames_code(codes, mask, 1)[:, 0].tolist() == [2.5, 2.5]  # (0 + 5) / 2 and (1 + 4) / 2
    assert end_frames_code(codes, mask, 2)[:, 0].tolist() == [2.5, (1 + 2 + 2 + 4) / 4]
    assert end_frames_code(codes, mask, 3)[0, 0].item() == 2.5  # the halves meet: every frame once each side


def test_segment_code_pooling_reads_each_bit_group_from_its_stretch_of_time():
    from s5vh_hf.model.modeling_s5vh import segment_frame_code

    torch.manual_seed(0)
    logits = torch.randn(2, 8, 8)
    mask = torch.ones(2, 8, dtype=torch.bool)
    mask[1, 6:] = False  # video 1 has 6 frames: stretches [0, 1], [2], [3, 4], [5]
    signs = torch.sign(logits)
    _, codes = segment_frame_code(logits, mask, 4)
    torch.testing.assert_close(codes[0, :2], signs[0, :2, :2].mean(0))
    torch.testing.assert_close(codes[0, 6:], signs[0, 6:, 6:].mean(0))
    torch.testing.assert_close(codes[1, 2:4], signs[1, 2, 2:4])
    torch.testing.assert_close(codes[1, 6:], signs[1, 5, 6:])
    # A masked view keeps the stretches of the whole video; a stretch with no visible frame falls back to the mean.
    view = mask.clone()
    view[0, 0:2] = False
    _, masked = segment_frame_code(logits, view, 4, lengths=mask.sum(1))
    torch.testing.assert_close(masked[0, :2], signs[0, 2:, :2].mean(0))
    torch.testing.assert_close(masked[0, 2:4], signs[0, 2:4, 2:4].mean(0))
    # Played backwards, a video gets another code: the reading sees the order.
    _, backwards = segment_frame_code(logits.flip(1)[:1], mask[:1], 4)
    assert not torch.equal(torch.sign(backwards), torch.sign(codes[:1]))
    with pytest.raises(ValueError, match="code_segments"):
        S5VHConfig(feature_dim=8, code_length=16, code_pooling="segments", code_segments=3)


def test_the_ends_weight_changes_the_fingerprint_only_where_the_reading_uses_it():
    from s5vh_hf.model.fingerprint import model_fingerprint

    model = S5VHModel(make_tiny_config(code_pooling="mean+ends", code_ends_weight=0.25))
    blended = model_fingerprint(model)
    model.config.code_ends_weight = 0.5
    assert model_fingerprint(model) != blended  # another blend, other codes
    model.config.code_pooling = "mean"
    mean = model_fingerprint(model)
    model.config.code_ends_weight = 0.25
    model.config.code_ends_frames = 3
    assert model_fingerprint(model) == mean  # the mean reading ignores the weight and the frames at the ends
    model.config.code_pooling = "ends"
    three = model_fingerprint(model)
    model.config.code_ends_frames = 1
    one = model_fingerprint(model)
    assert one != three
    model.config.mask_keeps_ends = True
    assert model_fingerprint(model) == one  # a training-only switch leaves the codes alone


def test_the_ends_encoders_input_is_in_the_fingerprint_and_its_default_is_not():
    from s5vh_hf.model.fingerprint import model_fingerprint

    model = S5VHModel(make_tiny_config())
    plain = model_fingerprint(model)
    model.config.ends_encoder_input = "encoder"
    assert model_fingerprint(model) == plain  # no ends encoder reads it
    model = S5VHModel(make_tiny_config(ends_encoder_width=16))
    own = model_fingerprint(model)
    del model.config.ends_encoder_input  # a model saved before the field existed
    assert model_fingerprint(model) == own
    model.config.ends_encoder_input = "encoder"
    assert model_fingerprint(model) != own


def test_a_saved_model_can_be_read_otherwise_at_load_and_bad_overrides_are_refused(tmp_path):
    from s5vh_hf.model.fingerprint import model_fingerprint

    torch.manual_seed(0)
    model = S5VHModel(make_tiny_config()).eval()  # the default reading, mean + ends
    model.save_pretrained(tmp_path / "model")
    videos = torch.randn(4, 7, model.config.feature_dim)
    read_by_mean = S5VHModel.from_pretrained(tmp_path / "model", code_pooling="mean").eval()
    assert read_by_mean.config.code_pooling == "mean"
    expected = sign_with_tie_rule(_expected_video_code(model(videos).frame_codes, read_by_mean.config), "positive")
    assert np.array_equal(read_by_mean.encode(videos), expected.detach().numpy().astype(np.int8))
    assert model_fingerprint(read_by_mean) != model_fingerprint(model)  # an index of the default codes is not its
    for override, field in (({"code_pooling": "max"}, "code_pooling"), ({"code_ends_weight": 1.5}, "code_ends_weight"),
                            ({"code_ends_frames": 0}, "code_ends_frames")):  # fmt: skip
        with pytest.raises(ValueError, match=field):
            S5VHModel.from_pretrained(tmp_path / "model", **override)
