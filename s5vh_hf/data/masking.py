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
    attention_mask: torch.Tensor,
    mask_ratio: float,
    generator: torch.Generator | None = None,
    keep_ends: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Visible-frame masks of the two views.

    Args:
        attention_mask: ``[B, T]`` bool, True at real frames (real frames first).
        mask_ratio: Fraction of each video's real frames hidden from the encoder.
        generator: Seeded generator for reproducible views.
        keep_ends: Show each video's first and last frames in both views (videos of four frames or more), so
            that a code read at the ends reads the same frames in both views; the other T − 2 frames are split
            between the views as a whole video is without it.

    Returns:
        ``(visible_1, visible_2)``, each ``[B, T]`` bool with V_b = T_b − floor(mask_ratio·T_b) frames per video.
        With mask_ratio ≥ 0.5 the two views' visible sets are disjoint (but for the ends with ``keep_ends``).
    """
    batch, steps = attention_mask.shape
    device = attention_mask.device
    lengths = attention_mask.sum(1, keepdim=True)
    positions = torch.arange(steps, device=device)[None, :]
    shown = attention_mask & ((positions == 0) | (positions == lengths - 1)) & (lengths >= 4) & keep_ends
    split = attention_mask & ~shown  # the frames the views divide between them
    # Random keys with the other frames pushed to the end give one random permutation of the frames to split.
    keys = torch.rand(batch, steps, generator=generator).to(device).masked_fill(~split, 2.0)
    rank_to_frame = keys.argsort(dim=1)
    ranks = torch.empty_like(rank_to_frame).scatter_(1, rank_to_frame, positions.expand(batch, steps))
    counts = split.sum(1)
    visible = torch.tensor([visible_frame_count(n, mask_ratio) for n in counts.tolist()], device=device)[:, None]
    first = shown | (ranks < visible)
    last = shown | ((ranks >= counts[:, None] - visible) & split)
    return first, last
