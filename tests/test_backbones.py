import numpy as np
import pytest
import torch

from s5vh_hf import S5VHModel
from s5vh_hf.training.slg import two_view_slg_loss

from .conftest import make_tiny_config

MIXERS = ["mamba", "transformer", "lstm", "gru"]


@pytest.mark.parametrize("mixer", MIXERS)
def test_each_backbone_is_bidirectional_and_padding_invariant(mixer):
    torch.manual_seed(0)
    model = S5VHModel(make_tiny_config(temporal_mixer=mixer)).eval()
    features = torch.randn(1, 9, 24)
    changed = features.clone()
    changed[0, -1] += 5.0
    assert (model(features).frame_logits[0, 0] - model(changed).frame_logits[0, 0]).abs().max() > 1e-7
    short, long_ = torch.randn(5, 24), torch.randn(9, 24)
    padded = torch.zeros(2, 9, 24)
    padded[0, :5], padded[1] = short, long_
    padded[0, 5:] = 3.0
    mask = torch.arange(9)[None] < torch.tensor([[5], [9]])
    together = model(padded, attention_mask=mask).frame_logits
    torch.testing.assert_close(together[0, :5], model(short[None]).frame_logits[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(together[1], model(long_[None]).frame_logits[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mixer", MIXERS)
def test_each_backbone_trains_saves_and_loads(mixer, tmp_path):
    torch.manual_seed(1)
    model = S5VHModel(make_tiny_config(temporal_mixer=mixer)).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    features = torch.randn(6, 8, 24)
    attention_mask = torch.ones(6, 8, dtype=torch.bool)
    visible_1 = torch.zeros(6, 8, dtype=torch.bool)
    visible_1[:, ::2] = True
    losses = []
    for _ in range(5):
        optimizer.zero_grad()
        loss = two_view_slg_loss(model, features, attention_mask, visible_1, ~visible_1, torch.arange(6) % 6)
        loss.total.backward()
        optimizer.step()
        losses.append(loss.total.item())
    assert losses[-1] < losses[0]
    model.eval().save_pretrained(tmp_path)
    loaded = S5VHModel.from_pretrained(tmp_path)
    assert loaded.config.temporal_mixer == mixer
    videos = np.random.default_rng(0).standard_normal((3, 7, 24)).astype(np.float32)
    np.testing.assert_array_equal(loaded.encode(videos), model.encode(videos))


def test_backbones_have_comparable_sizes():
    encoders = {m: S5VHModel(make_tiny_config(temporal_mixer=m, hidden_size=32)).encoder for m in MIXERS}
    counts = {m: sum(p.numel() for p in encoder.parameters()) for m, encoder in encoders.items()}
    for count in counts.values():
        assert 0.5 < count / counts["mamba"] < 2.0, counts
