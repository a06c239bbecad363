import math

import pytest
import torch

from s5vh_hf.data.masking import two_view_visible_masks, visible_frame_count
from s5vh_hf.training.losses import center_alignment_loss, debiased_contrastive_loss, reconstruction_loss, slg_loss


def _hand_debiased_contrastive(z1, z2, t, tau_plus):
    """Loop-by-loop transcription of the spec's formula."""
    z = [[x / math.sqrt(sum(y * y for y in v)) for x in v] for v in z1.tolist() + z2.tolist()]
    n = len(z)
    b = n // 2
    total = 0.0
    for i in range(n):
        partner = (i + b) % n
        sim = lambda j, i=i: math.exp(sum(x * y for x, y in zip(z[i], z[j])) / t)  # noqa: E731
        pos = sim(partner)
        neg = sum(sim(j) for j in range(n) if j not in (i, partner))
        N = n - 2
        ng = max((-tau_plus * N * pos + neg) / (1 - tau_plus), N * math.exp(-1 / t))
        total += -math.log(pos / (pos + ng))
    return total / n


@pytest.mark.parametrize("tau_plus", [0.05, 0.1])
def test_debiased_contrastive_matches_hand_computation(tau_plus):
    torch.manual_seed(0)
    z1, z2 = torch.randn(3, 8).double(), torch.randn(3, 8).double()
    got = debiased_contrastive_loss(z1, z2, 0.5, tau_plus)
    assert got.item() == pytest.approx(_hand_debiased_contrastive(z1, z2, 0.5, tau_plus), rel=1e-10)


def test_debiased_contrastive_clamps_at_the_lower_bound():
    codes = torch.ones(2, 4, dtype=torch.float64)  # all similarities equal → the numerator goes negative
    got = debiased_contrastive_loss(codes, codes, 0.5, 0.1)
    expected = _hand_debiased_contrastive(codes, codes, 0.5, 0.1)
    assert got.item() == pytest.approx(expected, rel=1e-12)


def test_contrastive_needs_two_videos():
    with pytest.raises(ValueError, match="at least 2 videos"):
        debiased_contrastive_loss(torch.ones(1, 4), torch.ones(1, 4), 0.5, 0.1)


def test_reconstruction_loss_is_plain_mse():
    predictions = torch.tensor([[1.0, 2.0], [3.0, 5.0]])
    targets = torch.tensor([[0.0, 2.0], [3.0, 1.0]])
    assert reconstruction_loss(predictions, targets).item() == pytest.approx((1 + 0 + 0 + 16) / 4)
    with pytest.raises(ValueError, match="at least one masked frame"):
        reconstruction_loss(torch.zeros(0, 2), torch.zeros(0, 2))
    with pytest.raises(ValueError, match="differ"):
        reconstruction_loss(torch.zeros(2, 2), torch.zeros(3, 2))


def test_center_alignment_hard_and_soft_targets():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    log_p = torch.log_softmax(logits, -1)
    hard = center_alignment_loss(logits, torch.tensor([0, 2]))
    assert hard.item() == pytest.approx(-(log_p[0, 0] + log_p[1, 2]).item() / 2)
    soft_targets = torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    soft = center_alignment_loss(logits, soft_targets)
    assert soft.item() == pytest.approx(-(0.5 * log_p[0, 0] + 0.5 * log_p[0, 1] + log_p[1, 2]).item() / 2)


def test_slg_combines_the_terms():
    torch.manual_seed(1)
    rec = (torch.randn(4, 3), torch.randn(5, 3))
    targets = (torch.randn(4, 3), torch.randn(5, 3))
    codes = (torch.randn(3, 8), torch.randn(3, 8))
    logits = (torch.randn(3, 5), torch.randn(3, 5))
    labels = torch.tensor([0, 4, 2])
    loss = slg_loss(rec, targets, codes, logits, labels, 2.5, 0.01, 0.5, 0.1)
    expected_rec = reconstruction_loss(rec[0], targets[0]) + reconstruction_loss(rec[1], targets[1])
    expected_con = debiased_contrastive_loss(codes[0], codes[1], 0.5, 0.1)
    expected_ca = (center_alignment_loss(logits[0], labels) + center_alignment_loss(logits[1], labels)) / 2
    torch.testing.assert_close(loss.total, expected_rec + 2.5 * expected_con + 0.01 * expected_ca)
    torch.testing.assert_close(loss.center, expected_ca)


@pytest.mark.parametrize(
    "ratio, frames, visible",
    [
        (0.5, 25, 13),
        (0.75, 25, 7),
        (0.5, 30, 15),
        (0.75, 1, 1),
        (0.25, 25, 19),
        (0.25, 3, 2),
        (0.25, 2, 1),
        (0.5, 2, 1),
    ],
)
def test_visible_frame_count(ratio, frames, visible):
    assert visible_frame_count(frames, ratio) == visible


def test_two_views_split_one_permutation_of_the_real_frames():
    attention_mask = torch.arange(10)[None] < torch.tensor([[10], [7], [4]])
    g = torch.Generator().manual_seed(0)
    first, last = two_view_visible_masks(attention_mask, 0.5, g)
    for row, length in enumerate([10, 7, 4]):
        v = visible_frame_count(length, 0.5)
        assert first[row].sum() == last[row].sum() == v
        # first and last V of one permutation: they overlap only where 2V > T (odd T at ratio 0.5)
        assert (first[row] & last[row]).sum() == max(0, 2 * v - length)
        assert not (first[row] | last[row])[length:].any()
    again = two_view_visible_masks(attention_mask, 0.5, torch.Generator().manual_seed(0))
    assert torch.equal(again[0], first) and torch.equal(again[1], last)
    other = two_view_visible_masks(attention_mask, 0.5, torch.Generator().manual_seed(1))
    assert not torch.equal(other[0], first)


@pytest.mark.parametrize("ratio", [0.25, 0.5, 0.75])
def test_views_that_keep_the_ends_show_both_ends_and_split_the_rest(ratio):
    lengths = [10, 7, 4, 3, 2]
    attention_mask = torch.arange(10)[None] < torch.tensor(lengths)[:, None]
    first, last = two_view_visible_masks(attention_mask, ratio, torch.Generator().manual_seed(0), keep_ends=True)
    for row, length in enumerate(lengths):
        if length < 4:  # too short to keep the ends and hide a frame in each view: split as usual
            assert first[row].sum() == last[row].sum() == visible_frame_count(length, ratio)
            continue
        assert first[row, [0, length - 1]].all() and last[row, [0, length - 1]].all()
        inner_1, inner_2 = first[row, 1 : length - 1], last[row, 1 : length - 1]
        v = visible_frame_count(length - 2, ratio)
        assert inner_1.sum() == inner_2.sum() == v
        assert (inner_1 & inner_2).sum() == max(0, 2 * v - (length - 2))
        assert not (first[row] | last[row])[length:].any()
    plain = two_view_visible_masks(attention_mask, ratio, torch.Generator().manual_seed(0))
    assert not torch.equal(plain[0], first)


def test_the_paper_views_draw_the_masks_they_drew_before_keep_ends_existed():
    """Masks of s5vh-hf before ``keep_ends`` (same seed): a checkpoint resumed across the change draws the same
    views."""
    attention_mask = torch.arange(6)[None] < torch.tensor([[6], [4], [2]])
    first, last = two_view_visible_masks(attention_mask, 0.5, torch.Generator().manual_seed(0))
    assert first.int().tolist() == [[0, 0, 1, 1, 1, 0], [1, 0, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0]]
    assert last.int().tolist() == [[1, 1, 0, 0, 0, 1], [0, 1, 0, 1, 0, 0], [0, 1, 0, 0, 0, 0]]


def test_extra_negatives_join_every_anchors_negatives():
    from s5vh_hf.training.losses import debiased_contrastive_loss

    torch.manual_seed(0)
    codes_1, codes_2 = torch.randn(4, 16), torch.randn(4, 16)
    base = debiased_contrastive_loss(codes_1, codes_2, 0.5, 0.1)
    assert torch.equal(base, debiased_contrastive_loss(codes_1, codes_2, 0.5, 0.1, extra_negatives=None))
    # A negative that looks like the anchors (its reversal coded the same way) costs more than an unlike one.
    alike = debiased_contrastive_loss(codes_1, codes_2, 0.5, 0.1, extra_negatives=codes_1.clone())
    unlike = debiased_contrastive_loss(codes_1, codes_2, 0.5, 0.1, extra_negatives=-codes_1)
    assert alike > base and alike > unlike


def test_reversed_videos_as_negatives_train_a_step():
    from s5vh_hf import S5VHConfig, S5VHModel
    from s5vh_hf.training.slg import two_view_slg_loss

    torch.manual_seed(0)
    config = S5VHConfig(feature_dim=8, hidden_size=16, encoder_depth=1, decoder_hidden_size=16, code_length=16,
                        num_hash_centers=4, order_negatives="reversed")  # fmt: skip
    model = S5VHModel(config)
    features = torch.randn(4, 6, 8)
    mask = torch.ones(4, 6, dtype=torch.bool)
    mask[0, 4:] = False
    visible_1 = torch.tensor([[1, 0, 1, 0, 1, 0]] * 4, dtype=torch.bool)
    visible_2 = ~visible_1 & mask
    visible_2[0, 1] = True
    loss = two_view_slg_loss(model, features, mask, visible_1, visible_2, torch.tensor([0, 1, 2, 3]))
    loss.total.backward()
    assert torch.isfinite(loss.total) and model.hash_layer.projection.weight.grad is not None


def test_a_low_mask_ratio_still_gives_short_videos_a_frame_to_reconstruct():
    from s5vh_hf import S5VHModel
    from s5vh_hf.training.slg import two_view_slg_loss

    from .conftest import make_tiny_config

    torch.manual_seed(0)
    model = S5VHModel(make_tiny_config(mask_ratio=0.25))
    features = torch.randn(4, 3, model.config.feature_dim)  # floor(0.25 · 3) = 0 frames by the paper's rule
    attention_mask = torch.ones(4, 3, dtype=torch.bool)
    visible_1, visible_2 = two_view_visible_masks(attention_mask, 0.25, torch.Generator().manual_seed(0))
    assert (visible_1.sum(1) == 2).all() and (visible_2.sum(1) == 2).all()
    loss = two_view_slg_loss(model, features, attention_mask, visible_1, visible_2, torch.arange(4) % 2)
    assert torch.isfinite(loss.total) and loss.total > 0


def test_the_ends_term_adds_the_contrastive_and_center_terms_of_the_end_frames_code():
    from s5vh_hf import S5VHModel
    from s5vh_hf.model.modeling_s5vh import end_frames_code
    from s5vh_hf.training.slg import two_view_slg_loss

    from .conftest import make_tiny_config

    torch.manual_seed(0)
    features = torch.randn(4, 6, 8)
    mask = torch.ones(4, 6, dtype=torch.bool)
    mask[0, 4:] = False
    visible_1 = torch.tensor([[1, 0, 1, 0, 1, 0]] * 4, dtype=torch.bool)
    visible_2 = ~visible_1 & mask
    labels = torch.tensor([0, 1, 2, 3])
    model = S5VHModel(make_tiny_config(feature_dim=8, code_pooling="mean", num_hash_centers=4, ends_term_weight=0.0))
    config = model.config
    torch.manual_seed(1)  # the views' stochastic depth draws the same in both evaluations
    plain = two_view_slg_loss(model, features, mask, visible_1, visible_2, labels)
    config.ends_term_weight = 0.7
    torch.manual_seed(1)
    with_ends = two_view_slg_loss(model, features, mask, visible_1, visible_2, labels)

    torch.manual_seed(1)
    ends = []
    for visible in (visible_1, visible_2):
        view = model(features, attention_mask=mask, visible_mask=visible)
        ends.append(end_frames_code(view.frame_codes, view.encoded_mask, 1))
    # Each view's own ends: its first and last visible frames (video 0's last one is frame 2 in view 1).
    frame_codes = model(features, attention_mask=mask, visible_mask=visible_1).frame_codes
    assert torch.allclose(ends[0][0], (frame_codes[0, 0] + frame_codes[0, 2]) / 2)
    scale = config.code_length * config.center_temperature
    con = debiased_contrastive_loss(ends[0], ends[1], config.contrastive_temperature, config.debias_tau_plus)
    ca = (center_alignment_loss(model._center_scores(ends[0]) / scale, labels)
          + center_alignment_loss(model._center_scores(ends[1]) / scale, labels)) / 2  # fmt: skip
    expected = plain.total + 0.7 * (config.contrastive_weight * con + config.center_weight * ca)
    assert torch.allclose(with_ends.total, expected, atol=1e-5)
    assert torch.allclose(with_ends.contrastive, plain.contrastive)  # the logged terms stay the code's own
    with_ends.total.backward()
    assert model.hash_layer.projection.weight.grad is not None


@pytest.mark.parametrize("weight", [-0.5, float("nan"), "1"])
def test_a_bad_ends_term_weight_is_refused(weight):
    from s5vh_hf import S5VHConfig

    with pytest.raises(ValueError, match="ends_term_weight"):
        S5VHConfig(feature_dim=8, code_length=16, ends_term_weight=weight)


@pytest.mark.parametrize("warmup", [-0.1, 1.5, float("nan"), "1", None])
def test_a_bad_ends_term_warmup_is_refused(warmup):
    from s5vh_hf import S5VHConfig

    with pytest.raises(ValueError, match="ends_term_warmup"):
        S5VHConfig(feature_dim=8, code_length=16, ends_term_warmup=warmup)


def test_the_order_term_scale_rises_linearly_over_the_warmup_then_stays_one():
    from s5vh_hf.training.slg import order_term_scale

    assert [order_term_scale(step, 100, 0.5) for step in (0, 10, 25, 50, 80)] == [0.0, 0.2, 0.5, 1.0, 1.0]
    assert order_term_scale(0, 100, 0.0) == 1.0  # no warm-up: the full weight from the first step
    assert order_term_scale(3, 0, 0.5) == 1.0  # no known number of steps (outside training)


def test_the_order_scale_multiplies_only_the_order_term():
    from s5vh_hf import S5VHModel
    from s5vh_hf.training.slg import two_view_slg_loss

    from .conftest import make_tiny_config

    torch.manual_seed(0)
    features = torch.randn(4, 6, 8)
    mask = torch.ones(4, 6, dtype=torch.bool)
    visible_1 = torch.tensor([[1, 0, 1, 0, 1, 0]] * 4, dtype=torch.bool)
    model = S5VHModel(make_tiny_config(feature_dim=8, num_hash_centers=4, drop_path_rate=0.0, ends_term_weight=0.8))
    losses = {scale: two_view_slg_loss(model, features, mask, visible_1, ~visible_1, torch.arange(4), order_scale=scale)
              for scale in (0.0, 0.25, 1.0)}  # fmt: skip
    config = model.config
    slg = losses[1.0].reconstruction + config.contrastive_weight * losses[1.0].contrastive \
        + config.center_weight * losses[1.0].center  # fmt: skip
    for scale, loss in losses.items():
        assert torch.allclose(loss.order, losses[1.0].order)  # the term itself is logged unscaled
        assert torch.allclose(loss.total, slg + 0.8 * scale * loss.order)


def test_the_ends_term_is_training_only_and_leaves_the_fingerprint_alone():
    from s5vh_hf import S5VHModel
    from s5vh_hf.model.fingerprint import model_fingerprint

    from .conftest import make_tiny_config

    model = S5VHModel(make_tiny_config())
    before = model_fingerprint(model)
    model.config.ends_term_weight = 1.0
    model.config.ends_term_warmup = 0.5
    assert model_fingerprint(model) == before
    model.config.code_ends_weight = 0.25  # a reading field, by contrast, changes the codes and the fingerprint
    assert model_fingerprint(model) != before


def test_with_an_ends_term_a_blended_code_trains_its_mean_and_its_ends_apart():
    from s5vh_hf import S5VHModel
    from s5vh_hf.training.slg import two_view_slg_loss

    from .conftest import make_tiny_config

    torch.manual_seed(0)
    features = torch.randn(4, 6, 8)
    mask = torch.ones(4, 6, dtype=torch.bool)
    visible_1 = torch.tensor([[1, 0, 1, 0, 0, 1]] * 4, dtype=torch.bool)
    visible_2 = ~visible_1
    labels = torch.tensor([0, 1, 2, 3])
    model = S5VHModel(make_tiny_config(feature_dim=8, num_hash_centers=4, drop_path_rate=0.0, ends_term_weight=1.0,
                                       code_pooling="mean+ends", code_ends_weight=1 / 3))  # fmt: skip

    def loss_read_as(pooling: str, ends_term_weight: float = 1.0):
        model.config.code_pooling, model.config.ends_term_weight = pooling, ends_term_weight
        return two_view_slg_loss(model, features, mask, visible_1, visible_2, labels)

    parts, mean_read = loss_read_as("mean+ends"), loss_read_as("mean")
    # The blend's mean part in the SLG terms and its ends in the order term: the same objective as a mean-read code's.
    assert torch.allclose(parts.total, mean_read.total) and torch.allclose(parts.contrastive, mean_read.contrastive)
    blend = loss_read_as("mean+ends", ends_term_weight=0.0)  # without the order term the SLG terms train the blend
    assert not torch.allclose(blend.contrastive, parts.contrastive)

    def refresh_logits(pooling: str, ends_term_weight: float = 1.0):
        model.config.code_pooling, model.config.ends_term_weight = pooling, ends_term_weight
        return model.pseudo_label_logits(features, mask)

    # The pseudo-labels come from the code the SLG terms train (the mean part), the codes from the blend.
    assert torch.allclose(refresh_logits("mean+ends"), refresh_logits("mean"))
    assert not torch.allclose(refresh_logits("mean+ends", 0.0), refresh_logits("mean"))
    model.config.code_pooling = "mean+ends"
    blended = model.hash_batch(features, mask)
    model.config.code_pooling = "mean"
    assert not torch.equal(blended, model.hash_batch(features, mask))
