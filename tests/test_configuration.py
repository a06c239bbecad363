import json

import pytest

from s5vh_hf import MODEL_SIZES, S5VHConfig, s5vh_training_arguments
from s5vh_hf.model.configuration_s5vh import preset_training_recipe

SPEC_TABLE = {  # dataset: (α, β, τ⁺, K, mask, epochs, batch, feature_dim)
    "activitynet": (0.2, 0.001, 0.05, 100, 0.5, 350, 128, 2048),
    "fcvid": (2.5, 0.01, 0.1, 450, 0.75, 500, 512, 4096),
    "ucf101": (1.0, 0.1, 0.1, 101, 0.5, 350, 128, 4096),
    "hmdb51": (1.0, 0.1, 0.05, 100, 0.5, 350, 128, 4096),
}


def test_every_dataset_and_code_length_has_a_preset():
    expected = {f"{d}-{b}" for d in SPEC_TABLE for b in (16, 32, 64)}
    assert expected <= set(S5VHConfig.available_presets())


@pytest.mark.parametrize("dataset", sorted(SPEC_TABLE))
@pytest.mark.parametrize("bits", [16, 32, 64])
def test_presets_carry_the_published_hyperparameters(dataset, bits):
    config = S5VHConfig.from_preset(f"{dataset}-{bits}")
    alpha, beta, tau_plus, centers, mask, epochs, batch, dim = SPEC_TABLE[dataset]
    assert config.code_length == bits
    assert (config.contrastive_weight, config.center_weight, config.debias_tau_plus) == (alpha, beta, tau_plus)
    assert (config.num_hash_centers, config.mask_ratio, config.feature_dim) == (centers, mask, dim)
    assert config.contrastive_temperature == config.center_temperature == 0.5
    assert (config.warmup_epochs, config.pseudo_label_smoothing) == (50, 0.01)
    recipe = preset_training_recipe(f"{dataset}-{bits}")
    assert recipe == preset_training_recipe(config)  # found from the config as well
    assert (recipe["num_train_epochs"], recipe["per_device_train_batch_size"], recipe["learning_rate"]) == (
        epochs,
        batch,
        5e-4,
    )
    assert "training_defaults" not in config.to_dict() and "training" not in config.to_dict()  # not in config.json
    args = s5vh_training_arguments(config, "unused")
    assert (args.num_train_epochs, args.per_device_train_batch_size, args.learning_rate) == (epochs, batch, 5e-4)
    assert (config.hidden_size, config.decoder_hidden_size, config.encoder_depth) == (256, 192, 6)
    assert (config.state_size, config.conv_kernel, config.expand, config.time_step_rank_for(256)) == (16, 4, 2, 16)


def test_model_sizes_and_overrides():
    assert MODEL_SIZES == {"mini": 1, "small": 6, "base": 12}
    assert S5VHConfig.from_preset("ucf101-32", model_size="base").encoder_depth == 12
    assert S5VHConfig.from_preset("ucf101-32", model_size="mini", code_length=16).code_length == 16
    with pytest.raises(ValueError, match="Unknown model size"):
        S5VHConfig.from_preset("ucf101-32", model_size="huge")
    with pytest.raises(ValueError, match="available presets"):
        S5VHConfig.from_preset("kinetics-64")


def test_compatibility_options_default_to_the_paper():
    config = S5VHConfig()
    assert not config.share_direction_weights
    assert not config.trainable_center_head
    assert not config.refresh_skips_hash_norm
    assert config.decoder_token_order == "temporal"
    assert config.sign_tie_rule == "positive"


@pytest.mark.parametrize(
    "field, value",
    [("code_length", 0), ("mask_ratio", 1.0), ("sign_tie_rule", "up"), ("decoder_token_order", "x"), ("expand", 1.5)],
)
def test_invalid_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        S5VHConfig(**{field: value})


def test_config_round_trips_through_json(tmp_path):
    config = S5VHConfig.from_preset("hmdb51-16", share_direction_weights=True)
    config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "s5vh"
    loaded = S5VHConfig.from_pretrained(tmp_path)
    assert loaded.to_dict() == config.to_dict()


def test_configs_that_carried_a_training_recipe_still_load(tmp_path):
    """s5vh-hf ≤ 0.2 wrote the preset recipe into config.json as ``training_defaults``."""
    values = S5VHConfig.from_preset("ucf101-16").to_dict()
    values["training_defaults"] = {"num_train_epochs": 350, "lr_scheduler": "cosine_per_epoch"}
    (tmp_path / "config.json").write_text(json.dumps(values))
    loaded = S5VHConfig.from_pretrained(tmp_path)
    assert loaded.code_length == 16 and not hasattr(loaded, "training_defaults")
    assert preset_training_recipe(S5VHConfig(dataset_name="mine", code_length=16)) == {}
