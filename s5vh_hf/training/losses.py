"""The self-local-global (SLG) loss of S5VH as pure functions (the paper's self-local-global objective)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def reconstruction_loss(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Self term: MSE between the predicted and original features of the masked frames, ``[M, D]`` each.

    Mean over feature dims and over all M masked (video, frame) pairs — the spec's mean over dims, frames and
    batch when every video has the same number of masked frames.
    """
    if predictions.shape != targets.shape:
        raise ValueError(f"predictions {tuple(predictions.shape)} and targets {tuple(targets.shape)} differ")
    if predictions.shape[0] == 0:
        raise ValueError("reconstruction_loss needs at least one masked frame")
    return (predictions - targets.to(predictions.dtype)).pow(2).mean()


def debiased_contrastive_loss(
    codes_1: torch.Tensor,
    codes_2: torch.Tensor,
    temperature: float,
    tau_plus: float,
    extra_negatives: torch.Tensor | None = None,
) -> torch.Tensor:
    """Local term: debiased contrastive loss (Chuang et al. 2020) between two views' video codes ``[B, L]``.

    2B anchors, one positive (the other view of the same video) and N = 2B − 2 negatives each:
    ``Ng = max((−τ⁺·N·pos + Σ_neg exp(s/t)) / (1 − τ⁺), N·e^(−1/t))``, loss = mean of −log(pos / (pos + Ng)).
    ``extra_negatives`` ``[E, L]`` (e.g. the codes of the time-reversed videos) are negatives of every anchor too
    (N = 2B − 2 + E).
    """
    batch = codes_1.shape[0]
    if batch < 2:
        raise ValueError(f"the contrastive loss needs at least 2 videos per batch, got {batch}")
    embeddings = F.normalize(torch.cat([codes_1, codes_2]), dim=-1)
    others = embeddings if extra_negatives is None else torch.cat([embeddings, F.normalize(extra_negatives, dim=-1)])
    similarity = torch.exp(embeddings @ others.t() / temperature)  # [2B, 2B + E]
    index = torch.arange(2 * batch, device=codes_1.device)
    partner = (index + batch) % (2 * batch)
    positives = similarity[index, partner]
    negatives_mask = torch.ones_like(similarity, dtype=torch.bool)
    negatives_mask[index, index] = False
    negatives_mask[index, partner] = False
    negative_sum = (similarity * negatives_mask).sum(1)
    n_negatives = 2 * batch - 2 + (0 if extra_negatives is None else len(extra_negatives))
    debiased = (-tau_plus * n_negatives * positives + negative_sum) / (1 - tau_plus)
    debiased = torch.clamp(debiased, min=n_negatives * math.exp(-1 / temperature))
    return -torch.log(positives / (positives + debiased)).mean()


def center_alignment_loss(center_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Global term: cross-entropy of ``center_logits`` ``[B, K]`` to pseudo-labels — class ids ``[B]`` or soft
    labels ``[B, K]`` (rows summing to 1)."""
    if targets.ndim == 1:
        return F.cross_entropy(center_logits, targets.long())
    return -(targets * F.log_softmax(center_logits, dim=-1)).sum(-1).mean()


@dataclass
class SLGLoss:
    """The total SLG loss and its three terms (``reconstruction`` summed over the views, ``center`` averaged), and
    the order term when the objective has one (``α·contrastive + β·center`` of the ends' code, before its weight)."""

    total: torch.Tensor
    reconstruction: torch.Tensor
    contrastive: torch.Tensor
    center: torch.Tensor
    order: torch.Tensor | None = None


def code_terms(
    video_codes: tuple[torch.Tensor, torch.Tensor],
    center_logits: tuple[torch.Tensor, torch.Tensor],
    pseudo_labels: torch.Tensor,
    contrastive_temperature: float,
    tau_plus: float,
    extra_negatives: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The terms on two views' codes ``[B, L]``: the local (contrastive) term and the global (center alignment) term
    of ``center_logits`` ``[B, K]``, averaged over the views; unweighted."""
    con = debiased_contrastive_loss(video_codes[0], video_codes[1], contrastive_temperature, tau_plus,
                                    extra_negatives)  # fmt: skip
    ca = (
        center_alignment_loss(center_logits[0], pseudo_labels) + center_alignment_loss(center_logits[1], pseudo_labels)
    ) / 2
    return con, ca


def slg_loss(
    reconstructions: tuple[torch.Tensor, torch.Tensor],
    reconstruction_targets: tuple[torch.Tensor, torch.Tensor],
    video_codes: tuple[torch.Tensor, torch.Tensor],
    center_logits: tuple[torch.Tensor, torch.Tensor],
    pseudo_labels: torch.Tensor,
    contrastive_weight: float,
    center_weight: float,
    contrastive_temperature: float,
    tau_plus: float,
    extra_negatives: torch.Tensor | None = None,
) -> SLGLoss:
    """``L = L_rec + α·L_con + β·L_ca`` over two masked views of the same B videos.

    ``reconstructions`` / ``reconstruction_targets``: per view ``[M_v, D]`` predicted / original features of the
    view's masked frames; ``video_codes`` ``[B, L]`` and ``center_logits`` ``[B, K]`` per view; ``pseudo_labels``
    class ids ``[B]`` or soft labels ``[B, K]``; ``extra_negatives`` ``[E, L]``: more negatives of the local term.
    """
    rec = sum(reconstruction_loss(r, t) for r, t in zip(reconstructions, reconstruction_targets))
    con, ca = code_terms(video_codes, center_logits, pseudo_labels, contrastive_temperature, tau_plus, extra_negatives)
    return SLGLoss(
        total=rec + contrastive_weight * con + center_weight * ca, reconstruction=rec, contrastive=con, center=ca
    )
