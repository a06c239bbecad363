"""The ends' own encoder (``ends_encoder_width``, off by default): who trains it, how the code reads it, and how
configs without it keep reading the ends from the main encoder."""

from __future__ import annotations

import json

import pytest
import torch

from s5vh_hf import S5VHConfig, S5VHModel

from .conftest import make_tiny_config


def _views(batch: int = 4, steps: int = 6, dim: int = 24):
    torch.manual_seed(0)
    features = torch.randn(batch, steps, dim)
    mask = torch.ones(batch, steps, dtype=torch.bool)
    mask[0, 4:] = False
    visible_1 = torch.tensor([[1, 0, 1, 0, 1, 0]] * batch, dtype=torch.bool)
    return features, mask, visible_1, ~visible_1 & mask


def test_the_ends_own_encoder_is_off_by_default_and_one_block_of_the_width_asked():
    from s5vh_hf.model.configuration_s5vh import suggested_ends_encoder_width

    assert make_tiny_config().ends_encoder_width == 0 and S5VHConfig.from_preset("ucf101-32").ends_encoder_width == 0
    assert S5VHModel(make_tiny_config()).ends_encoder is None
    model = S5VHModel(make_tiny_config(ends_encoder_width=16))
    assert len(model.ends_encoder.blocks) == 1 and model.ends_encoder.patch_embed.out_features == 16
    assert model.ends_hash_layer.projection.in_features == 16
    assert [suggested_ends_encoder_width(w) for w in (16, 32, 64, 256, 1024)] == [16, 32, 32, 64, 256]
    # The release behaves as the paper: one encoder, whatever the config it is copied from says.
    assert make_tiny_config(ends_encoder_width=16).release_compatible_copy().ends_encoder_width == 0


def test_a_config_written_before_the_field_reads_the_ends_from_the_main_encoder(tmp_path):
    values = make_tiny_config(ends_encoder_width=16).to_dict()
    assert values["ends_encoder_width"] == 16
    values.pop("ends_encoder_width")
    (tmp_path / "config.json").write_text(json.dumps(values))
    assert S5VHConfig.from_pretrained(tmp_path).ends_encoder_width == 0


@pytest.mark.parametrize("width", [-1, 1.5, True, "8", 20000])
def test_a_bad_ends_encoder_width_is_refused(width):
    with pytest.raises(ValueError, match="ends_encoder_width"):
        make_tiny_config(ends_encoder_width=width)


def test_the_ends_encoder_reads_the_frame_features_or_the_main_encoders_output():
    config = make_tiny_config(ends_encoder_width=16)
    assert config.ends_encoder_input == "features"
    assert S5VHModel(config).ends_encoder.patch_embed.in_features == config.feature_dim
    config = make_tiny_config(ends_encoder_width=16, ends_encoder_input="encoder")
    assert S5VHModel(config).ends_encoder.patch_embed.in_features == config.hidden_size
    config = make_tiny_config(ends_encoder_width=16, ends_encoder_input="both")
    assert S5VHModel(config).ends_encoder.patch_embed.in_features == config.feature_dim + config.hidden_size
    with pytest.raises(ValueError, match="ends_encoder_input must be one of"):
        make_tiny_config(ends_encoder_width=16, ends_encoder_input="hidden")


EVERY_INPUT = pytest.mark.parametrize("ends_input", ["features", "encoder", "both"])


@EVERY_INPUT
def test_the_order_term_trains_the_ends_encoder_alone_and_the_slg_terms_the_rest(ends_input):
    from s5vh_hf.training.slg import two_view_slg_loss

    features, mask, visible_1, visible_2 = _views()
    model = S5VHModel(make_tiny_config(num_hash_centers=4, ends_encoder_width=16, ends_encoder_input=ends_input))
    loss = two_view_slg_loss(model, features, mask, visible_1, visible_2, torch.tensor([0, 1, 2, 3]))
    ends_parameters = [*model.ends_encoder.parameters(), *model.ends_hash_layer.parameters()]
    own = {id(p) for p in ends_parameters}
    main_parameters = [p for p in model.parameters() if p.requires_grad and id(p) not in own]

    def reached(term: torch.Tensor, parameters: list[torch.Tensor]) -> bool:
        grads = torch.autograd.grad(term, parameters, retain_graph=True, allow_unused=True)
        return any(g is not None and bool(g.abs().sum() > 0) for g in grads)

    assert reached(loss.order, ends_parameters) and not reached(loss.order, main_parameters)
    slg = loss.total - model.config.ends_term_weight * loss.order
    assert reached(slg, main_parameters) and not reached(slg, ends_parameters)


@EVERY_INPUT
def test_the_code_blends_the_main_encoders_mean_with_the_ends_encoders_first_and_last_frames(ends_input):
    from s5vh_hf.model.modeling_s5vh import binarize

    features, mask, _, _ = _views()
    model = S5VHModel(make_tiny_config(ends_encoder_width=16, ends_encoder_input=ends_input)).eval()
    with torch.no_grad():
        out = model(features, attention_mask=mask)
        mean = out.frame_codes.sum(1) / mask.sum(1, keepdim=True)
        ends_codes = out.ends_frame_codes
        last = mask.sum(1) - 1
        ends = (ends_codes[:, 0] + ends_codes[torch.arange(4), last]) / 2
        expected = torch.where(ends / 3 + 2 * mean / 3 >= 0, 1.0, -1.0)
        assert torch.equal(model.hash_batch(features, mask), expected)
        # The ends encoder's codes, not the main encoder's, are read at the ends.
        main_ends = (out.frame_codes[:, 0] + out.frame_codes[torch.arange(4), last]) / 2
        assert not torch.equal(ends, main_ends)
        assert torch.equal(ends_codes, binarize(ends_codes) * mask[:, :, None])
        model.config.code_pooling = "mean"  # a reading without the ends ignores their encoder
        assert torch.equal(model.hash_batch(features, mask), torch.where(mean >= 0, 1.0, -1.0))


@EVERY_INPUT
def test_a_saved_model_with_its_ends_encoder_encodes_the_same_after_loading(tmp_path, ends_input):
    torch.manual_seed(0)
    model = S5VHModel(make_tiny_config(ends_encoder_width=16, ends_encoder_input=ends_input)).eval()
    videos = [torch.randn(7, 24).numpy(), torch.randn(3, 24).numpy()]
    model.save_pretrained(tmp_path)
    loaded = S5VHModel.from_pretrained(tmp_path)
    assert loaded.ends_encoder is not None
    assert (loaded.encode(videos) == model.encode(videos)).all()
    # The non-persistent position table of the ends encoder is rebuilt on loading, not left uninitialised.
    assert torch.equal(loaded.ends_encoder.position_table, model.ends_encoder.position_table)


def test_the_trainer_refuses_an_ends_encoder_that_nothing_would_train(tmp_path):
    from s5vh_hf import S5VHTrainer, s5vh_training_arguments
    from s5vh_hf.data.loading import load_feature_dataset
    from s5vh_hf.data.synthetic import make_synthetic_videos
    from s5vh_hf.data.writing import write_feature_split

    data = make_synthetic_videos(num_videos=4, num_classes=2, feature_dim=24, num_frames=5, seed=0)
    write_feature_split(tmp_path / "data", "train", data.videos(), data.video_ids, [[int(x)] for x in data.labels])
    train = load_feature_dataset(tmp_path / "data", split="train")
    config = make_tiny_config(ends_encoder_width=16, ends_term_weight=0.0, num_hash_centers=2)
    args = s5vh_training_arguments(config, str(tmp_path / "run"), num_train_examples=4, use_cpu=True)
    with pytest.raises(ValueError, match="ends_term_weight > 0, or ends_encoder_width=0"):
        S5VHTrainer(S5VHModel(config), args, train, [0, 1, 0, 1])
    config.ends_term_weight = 1.0  # with the order term the same model trains
    S5VHTrainer(S5VHModel(config), args, train, [0, 1, 0, 1])
