"""One evaluation of the SLG training objective: the model on both masked views, then the loss."""

from __future__ import annotations

import torch

from ..model.modeling_s5vh import (
    S5VHModel,
    end_frames_code,
    masked_mean_code,
    per_video_reverse_index,
    training_code_pooling,
)
from .losses import SLGLoss, code_terms, slg_loss


def two_view_slg_loss(
    model: S5VHModel,
    features: torch.Tensor,
    attention_mask: torch.Tensor,
    visible_1: torch.Tensor,
    visible_2: torch.Tensor,
    pseudo_labels: torch.Tensor,
    order_scale: float = 1.0,
) -> SLGLoss:
    """SLG loss of a batch ``features`` ``[B, T, D]`` under the two visible-frame masks ``[B, T]``;
    ``pseudo_labels`` are class ids ``[B]`` or soft labels ``[B, K]``.

    With ``config.ends_term_weight`` > 0 the total also holds the order term: that weight × ``order_scale`` (the
    warm-up's factor, :func:`order_term_scale`) × the contrastive and center terms of the code read at each view's
    first and last visible frames. A ``"mean+ends"`` code then trains its two parts apart: the SLG terms train its
    mean part, the order term its ends part (the code read is still the blend); with the ends' own encoder
    (``config.ends_encoder_width`` > 0) the order term reads, and trains, that encoder alone. The logged terms are the
    SLG terms'.
    """
    # Two passes rather than one of [2B]: concatenating the features would copy the largest tensor of the step.
    views = (
        model(features, attention_mask=attention_mask, visible_mask=visible_1),
        model(features, attention_mask=attention_mask, visible_mask=visible_2),
    )
    if any(view.reconstruction is None for view in views):
        raise ValueError("both views need masked frames to reconstruct; use mask_ratio > 0 and T ≥ 2")
    unwrapped = getattr(model, "module", model)  # DistributedDataParallel wraps the model
    config = unwrapped.config
    extra_negatives = None
    if getattr(config, "order_negatives", "none") == "reversed":  # each video played backwards is a negative
        order = per_video_reverse_index(attention_mask.sum(1), features.shape[1])
        reversed_features = features.gather(1, order[:, :, None].expand_as(features))
        extra_negatives = model(reversed_features, attention_mask=attention_mask, visible_mask=visible_1).video_codes
    ends_weight = getattr(config, "ends_term_weight", 0.0)
    codes = [view.video_codes for view in views]
    center_logits = [view.center_logits for view in views]
    if training_code_pooling(config) != config.code_pooling:  # the blend's mean part; its ends get the order term
        codes = [masked_mean_code(view.frame_codes, view.encoded_mask) for view in views]
        center_logits = [unwrapped.center_logits(code) for code in codes]
    targets = unwrapped.normalize_features(features)  # the decoder reconstructs in the space the encoder reads
    loss = slg_loss(
        reconstructions=tuple(view.reconstruction for view in views),
        reconstruction_targets=tuple(targets[view.reconstruction_mask] for view in views),
        video_codes=tuple(codes),
        center_logits=tuple(center_logits),
        pseudo_labels=pseudo_labels,
        contrastive_weight=config.contrastive_weight,
        center_weight=config.center_weight,
        contrastive_temperature=config.contrastive_temperature,
        tau_plus=config.debias_tau_plus,
        extra_negatives=extra_negatives,
    )
    if ends_weight > 0:
        ends = [
            end_frames_code(view.frame_codes if view.ends_frame_codes is None else view.ends_frame_codes,
                            view.encoded_mask, config.code_ends_frames)
            for view in views
        ]  # fmt: skip
        logits = tuple(unwrapped.center_logits(code) for code in ends)
        con, ca = code_terms(tuple(ends), logits, pseudo_labels, config.contrastive_temperature, config.debias_tau_plus)
        loss.order = config.contrastive_weight * con + config.center_weight * ca
        loss.total = loss.total + ends_weight * order_scale * loss.order
    return loss


def order_term_scale(step: int, total_steps: int, warmup: float) -> float:
    """Factor of the order term's weight at optimizer ``step`` of ``total_steps``: rises linearly from 0 to 1 over the
    first ``warmup`` fraction of the steps (``config.ends_term_warmup``), then stays 1; 1 when there is no warm-up or
    no known number of steps."""
    if warmup <= 0 or total_steps <= 0:
        return 1.0
    return min(1.0, step / (warmup * total_steps))
