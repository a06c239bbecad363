"""One evaluation of the SLG training objective: the model on both masked views, then the loss."""

from __future__ import annotations

import torch

from ..model.modeling_s5vh import S5VHModel, per_video_reverse_index
from .losses import SLGLoss, slg_loss


def two_view_slg_loss(
    model: S5VHModel,
    features: torch.Tensor,
    attention_mask: torch.Tensor,
    visible_1: torch.Tensor,
    visible_2: torch.Tensor,
    pseudo_labels: torch.Tensor,
) -> SLGLoss:
    """SLG loss of a batch ``features`` ``[B, T, D]`` under the two visible-frame masks ``[B, T]``;
    ``pseudo_labels`` are class ids ``[B]`` or soft labels ``[B, K]``."""
    # Two passes rather than one of [2B]: concatenating the features would copy the largest tensor of the step.
    view_1 = model(features, attention_mask=attention_mask, visible_mask=visible_1)
    view_2 = model(features, attention_mask=attention_mask, visible_mask=visible_2)
    if view_1.reconstruction is None or view_2.reconstruction is None:
        raise ValueError("both views need masked frames to reconstruct; use mask_ratio > 0 and T ≥ 2")
    unwrapped = getattr(model, "module", model)  # DistributedDataParallel wraps the model
    config = unwrapped.config
    extra_negatives = None
    if getattr(config, "order_negatives", "none") == "reversed":  # each video played backwards is a negative
        order = per_video_reverse_index(attention_mask.sum(1), features.shape[1])
        reversed_features = features.gather(1, order[:, :, None].expand_as(features))
        extra_negatives = model(reversed_features, attention_mask=attention_mask, visible_mask=visible_1).video_codes
    targets = unwrapped.normalize_features(features)  # the decoder reconstructs in the space the encoder reads
    return slg_loss(
        reconstructions=(view_1.reconstruction, view_2.reconstruction),
        reconstruction_targets=(targets[view_1.reconstruction_mask], targets[view_2.reconstruction_mask]),
        video_codes=(view_1.video_codes, view_2.video_codes),
        center_logits=(view_1.center_logits, view_2.center_logits),
        pseudo_labels=pseudo_labels,
        contrastive_weight=config.contrastive_weight,
        center_weight=config.center_weight,
        contrastive_temperature=config.contrastive_temperature,
        tau_plus=config.debias_tau_plus,
        extra_negatives=extra_negatives,
    )
