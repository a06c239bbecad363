"""MAE-style two-view masking (the paper's masked-autoencoder views): one random permutation of each video's real frames; view 1 keeps the
first V, view 2 the last V, V = T − floor(mask_ratio · T)."""

from __future__ import annotations

import math

import torch


def visible_frame_count(num_frames: int, mask_ratio: float) -> int:
    """V = T − floor(mask_ratio · T) (the paper), at least 1; a video of T ≥ 2 frames hides at least one (where
    floor(mask_ratio · T) is 0, as for T < 4 at ratio 0.25), so that every view has a frame to reconstruct."""
    hidden = math.floor(mask_ratio * num_frames + 1e-9)
    if mask_ratio > 0 and num_frames >= 2:
        hidden = max(1, hidden)
    return max(1, num_frames - hidden)


def two_view_visible_masks(
    attention_mask: torch.Tensor, mask_ratio: float, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Visible-frame masks of the two views.

    Args:
        attention_mask: ``[B, T]`` bool, True at real frames (real frames first).
        mask_ratio: Fraction of each video's real frames hidden from the encoder.
        generator: Seeded generator for reproducible views.

    Returns:
        ``(visible_1, visible_2)``, each ``[B, T]`` bool with V_b = T_b − floor(mask_ratio·T_b) frames per video.
        With mask_ratio ≥ 0.5 the two views' visible sets are disjoint.
    """
    batch, steps = attention_mask.shape
    lengths = attention_mask.sum(1)
    # Random keys with padding pushed to the end give one random permutation of each video's real frames.
    keys = torch.rand(batch, steps, generator=generator).to(attention_mask.device)
    keys = keys.masked_fill(~attention_mask, 2.0)
    rank_to_frame = keys.argsort(dim=1)
    ranks = torch.empty_like(rank_to_frame).scatter_(
        1, rank_to_frame, torch.arange(steps, device=attention_mask.device).expand(batch, steps)
    )
    visible = torch.tensor(
        [visible_frame_count(int(n), mask_ratio) for n in lengths.tolist()], device=attention_mask.device
    )[:, None]
    first = ranks < visible
    last = (ranks >= lengths[:, None] - visible) & attention_mask
    return first, last
