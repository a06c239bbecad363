"""Reliability-aware soft pseudo-labels: one ``[K]`` distribution per training video, refreshed from the model's
center scores and saved with every checkpoint."""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F

from ..model.commits import write_file_atomically

PSEUDO_LABELS_FILE = "pseudo_labels.safetensors"
"""The pseudo-label state in a checkpoint folder."""


class PseudoLabelStore:
    """Per-video soft pseudo-labels ``[N, K]`` (the paper's self-local-global objective), initialised one-hot from the clustering.

    ``refresh`` applies ``y ← (1 − s)·y + s·softmax(logits)`` to a batch of videos and returns the new labels.
    """

    def __init__(self, cluster_labels: np.ndarray | torch.Tensor, num_clusters: int) -> None:
        labels = torch.as_tensor(np.asarray(cluster_labels), dtype=torch.int64)
        if labels.ndim != 1 or len(labels) == 0:
            raise ValueError(f"cluster labels must be a non-empty [N] vector, got shape {tuple(labels.shape)}")
        if int(labels.min()) < 0 or int(labels.max()) >= num_clusters:
            raise ValueError(
                f"cluster labels must lie in [0, {num_clusters}) to match the {num_clusters} hash centers; "
                f"got range [{int(labels.min())}, {int(labels.max())}]"
            )
        self.soft_labels = F.one_hot(labels, num_clusters).float()

    def __len__(self) -> int:
        return len(self.soft_labels)

    @property
    def num_clusters(self) -> int:
        return self.soft_labels.shape[1]

    def get(self, video_index: torch.Tensor) -> torch.Tensor:
        """Current labels ``[B, K]`` of the given videos."""
        return self.soft_labels[video_index.cpu()]

    def refresh(self, video_index: torch.Tensor, logits: torch.Tensor, smoothing: float) -> torch.Tensor:
        """Blend ``softmax(logits)`` ``[B, K]`` into the stored labels of ``video_index`` ``[B]``; returns them."""
        index = video_index.cpu()
        updated = (1 - smoothing) * self.soft_labels[index] + smoothing * torch.softmax(
            logits.detach().float().cpu(), -1
        )
        self.soft_labels[index] = updated
        return updated

    def assign(self, video_index: torch.Tensor, labels: torch.Tensor) -> None:
        """Overwrite the labels of ``video_index`` (to apply another process's refresh)."""
        self.soft_labels[video_index.cpu()] = labels.float().cpu()

    def save(self, path: str | os.PathLike) -> None:
        """Write the soft labels as safetensors, atomically (a kill leaves the old file or the new one)."""
        from safetensors.torch import save

        payload = save({"soft_labels": self.soft_labels.contiguous()}, metadata={"format": "s5vh-pseudo-labels"})
        write_file_atomically(path, payload)

    def load(self, path: str | os.PathLike) -> None:
        from safetensors.torch import load_file

        try:
            loaded = load_file(str(path))["soft_labels"]
        except Exception as error:  # noqa: BLE001 - safetensors raises its own error type for torn files
            raise ValueError(
                f"{path} is not a readable pseudo-label file (torn?): {str(error).splitlines()[0]}"
            ) from error
        if loaded.shape != self.soft_labels.shape:
            raise ValueError(
                f"{path} holds pseudo-labels of shape {tuple(loaded.shape)}, expected {tuple(self.soft_labels.shape)}"
            )
        self.soft_labels = loaded
