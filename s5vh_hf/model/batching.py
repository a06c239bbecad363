"""Batches of videos: right-padding ``[T_i, D]`` videos with their mask, and progress bars over long work (torch and
tqdm only, no transformers)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


def pad_videos(videos: Sequence[torch.Tensor], device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad ``[T_i, D]`` videos into ``[B, T_max, D]`` float32 plus the ``[B, T_max]`` padding mask
    (True at real frames)."""
    lengths = torch.tensor([len(v) for v in videos])
    steps = int(lengths.max())
    features = torch.zeros(len(videos), steps, videos[0].shape[1], dtype=torch.float32)
    for row, video in enumerate(videos):
        features[row, : len(video)] = video.float()
    mask = torch.arange(steps)[None, :] < lengths[:, None]
    return features.to(device), mask.to(device)


def progress_bar(iterable: Any = None, enabled: bool | None = True, description: str = "", **options: Any):
    """A tqdm bar over ``iterable`` (or with ``total=…`` for manual updates); ``enabled=None`` lets tqdm decide
    (on a terminal), ``False`` turns it off (the iterable is returned as it is)."""
    if enabled is False and iterable is not None:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=description, disable=False if enabled else (None if enabled is None else True),
                **options)  # fmt: skip
