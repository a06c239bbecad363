"""Feeding a feature dataset to training: the map-style view keyed by dataset index, and the collator that pads a
batch (and draws the two MAE views)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..model.batching import pad_videos
from .masking import two_view_visible_masks
from .schema import validate_feature_dataset


class IndexedFeatureDataset(torch.utils.data.Dataset):
    """A map-style view of a feature dataset that yields ``{"features", "video_index", ...}`` per video, the
    dataset index being what the pseudo-label store is keyed by."""

    def __init__(self, dataset: Any) -> None:
        validate_feature_dataset(dataset)
        self.dataset = dataset.with_format("numpy", columns=["features", "num_frames"])

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        row = self.dataset[int(index)]
        return {"features": row["features"], "num_frames": int(row["num_frames"]), "video_index": int(index)}


class TwoViewCollator:
    """Collate videos into a padded batch with the two MAE views of the paper's masked-autoencoder training.

    Input: a list of dicts with ``features`` ``[T_i, D]`` (and optionally ``video_index``). Output tensors:
    ``features`` ``[B, T, D]`` float32, ``attention_mask`` ``[B, T]``, ``visible_mask_1`` / ``visible_mask_2``
    ``[B, T]`` and ``video_index`` ``[B]`` int64.

    Randomness comes from a private generator when ``seed`` is given, else from torch's global generator. With
    ``draw_views=False`` the collator only pads, and the views are left to the consumer: ``S5VHTrainer`` draws
    them inside the training step, after the Trainer has restored the checkpointed RNG on resume, which a
    dataloader-side draw would precede. ``keep_ends``: both views show each video's first and last frames
    (``S5VHConfig.mask_keeps_ends``).
    """

    def __init__(
        self,
        mask_ratio: float,
        seed: int | None = None,
        feature_dim: int | None = None,
        draw_views: bool = True,
        keep_ends: bool = False,
    ) -> None:
        if draw_views and not (isinstance(mask_ratio, (int, float)) and 0 < mask_ratio < 1):
            raise ValueError(f"mask_ratio must be in (0, 1) to draw training views, got {mask_ratio!r}")
        self.mask_ratio = mask_ratio
        self.draw_views = draw_views
        self.keep_ends = keep_ends
        self.feature_dim = feature_dim
        self.generator = torch.Generator().manual_seed(seed) if seed is not None else None

    def __call__(self, examples: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if not examples:
            raise ValueError("cannot collate an empty batch")
        videos = []
        for position, example in enumerate(examples):
            if "features" not in example:
                raise ValueError(f"example {position} has no 'features' (keys: {sorted(example)})")
            video = torch.as_tensor(np.asarray(example["features"]), dtype=torch.float32)
            if video.ndim != 2 or video.shape[0] < 2:
                raise ValueError(f"example {position}: features must be [T ≥ 2, D], got {tuple(video.shape)}")
            if self.feature_dim is not None and video.shape[1] != self.feature_dim:
                raise ValueError(
                    f"example {position}: feature dimension mismatch, expected D={self.feature_dim}, got {video.shape[1]}"
                )
            if not bool(torch.isfinite(video).all()):  # checked here, on the CPU, so the model need not
                name = example.get("video_id", example.get("video_index", position))
                raise ValueError(f"video {name!r} of the batch has NaN or Inf features")
            videos.append(video)
        dims = {v.shape[1] for v in videos}
        if len(dims) > 1:
            raise ValueError(f"examples disagree on the feature dimension: {sorted(dims)}")
        features, attention_mask = pad_videos(videos)
        indices = [example.get("video_index", position) for position, example in enumerate(examples)]
        batch = {
            "features": features,
            "attention_mask": attention_mask,
            "video_index": torch.tensor(indices, dtype=torch.int64),
        }
        if self.draw_views:
            batch["visible_mask_1"], batch["visible_mask_2"] = two_view_visible_masks(
                attention_mask, self.mask_ratio, self.generator, keep_ends=self.keep_ends
            )
        return batch
