"""S5VH modules, from small to large: Mamba mixer → bidirectional block → encoder / decoder → hash layer →
:class:`S5VHModel` (with :meth:`S5VHModel.encode`).

Together with ``configuration_s5vh.py``, ``selective_scan.py`` and ``cpu_kernels.py`` this file is all the Hub's
``trust_remote_code`` copy needs: the four import each other relatively and nothing else of the package.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .batching import pad_videos, progress_bar
from .codes import pack_codes
from .commits import StagedFiles, folder_lock, reading, write_file_atomically
from .configuration_s5vh import S5VHConfig
from .cpu_kernels import causal_conv1d_silu
from .selective_scan import SCANS, cuda_kernels, resolve_scan_backend

CodeOutput = Literal["pm1", "packed", "ubinary", "binary", "bool"]
PACKED_OUTPUTS = ("packed", "ubinary", "binary")
_IS_PACKAGE_COPY = __name__ == "s5vh_hf.model.modeling_s5vh"
"""True in the installed s5vh-hf package, False in a copy loaded by transformers as remote code."""


@dataclass(frozen=True)
class HubIntegration:
    """What the s5vh-hf package adds to saving and pushing a model, installed by ``s5vh_hf.hub.sharing``
    (:func:`install_hub_integration`). A remote-code copy has none and saves and pushes as transformers does."""

    write_card: Callable[..., Any]
    """``(model, folder, repo_id=None, extra_tags=())``: render the model card into ``folder/README.md``."""
    upload_folder: Callable[..., str]
    """``(folder, repo_id, **upload)``: upload a saved model folder as one commit; returns the commit URL."""
    push_model: Callable[..., str]
    """``(model, repo_id, **kwargs)``: save with a card rendered for ``repo_id`` and upload; returns the URL."""


_hub_integration: HubIntegration | None = None


def install_hub_integration(integration: HubIntegration | None) -> None:
    """Set (or, with ``None``, remove) what :meth:`S5VHModel.save_pretrained` and :meth:`S5VHModel.push_to_hub`
    use for model cards and uploads. The model module never imports the Hub layer: the Hub layer installs itself."""
    global _hub_integration
    _hub_integration = integration


# --------------------------------------------------------------------------------------------------------------
# Pure functions
# --------------------------------------------------------------------------------------------------------------


def sinusoidal_position_table(num_positions: int, width: int) -> torch.Tensor:
    """Fixed sinusoidal table ``[num_positions, width]``: angle(p, j) = p / 10000^(2⌊j/2⌋/width), sin at even
    j, cos at odd j."""
    positions = torch.arange(num_positions, dtype=torch.float64)[:, None]
    exponents = 2 * (torch.arange(width) // 2).to(torch.float64) / width
    angles = positions / torch.pow(10000.0, exponents)[None, :]
    table = torch.where(torch.arange(width) % 2 == 0, torch.sin(angles), torch.cos(angles))
    return table.float()


class _StraightThroughSign(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):  # noqa: D102
        ctx.save_for_backward(x)
        return 2 * torch.round(torch.clamp((x + 1) / 2, 0, 1)) - 1

    @staticmethod
    def backward(ctx, grad):  # noqa: D102
        (x,) = ctx.saved_tensors
        return grad * (x.abs() < 1).to(grad.dtype)


def binarize(x: torch.Tensor) -> torch.Tensor:
    """±1 codes ``2·round(clamp((x+1)/2, 0, 1)) − 1`` (round half to even) with a straight-through,
    hard-tanh-gated gradient (1 where |x| < 1, else 0). Any shape."""
    return _StraightThroughSign.apply(x)


def sign_with_tie_rule(mean_codes: torch.Tensor, tie_rule: str) -> torch.Tensor:
    """Sign of mean frame codes ``[..., L]``; an exact 0 becomes +1 (``"positive"``), −1 (``"negative"``) or
    stays 0 (``"zero"``, the authors' release)."""
    signs = torch.sign(mean_codes)
    if tie_rule == "positive":
        return torch.where(signs == 0, torch.ones_like(signs), signs)
    if tie_rule == "negative":
        return torch.where(signs == 0, -torch.ones_like(signs), signs)
    if tie_rule == "zero":
        return signs
    raise ValueError(f"Unknown sign tie rule {tie_rule!r}")


def mean_frame_code(frame_logits: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """±1 frame codes ``[B, T, L]`` of the frames in ``mask`` ``[B, T]`` (0 elsewhere, straight-through gradient)
    and their mean per video ``[B, L]`` (continuous; its sign is the video's hash code)."""
    frame_codes = binarize(frame_logits) * mask.to(frame_logits.dtype)[:, :, None]
    return frame_codes, masked_mean_code(frame_codes, mask)


def masked_mean_code(frame_codes: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean ``[B, L]`` of the frame codes ``[B, T, L]`` (0 outside ``mask``) over the frames in ``mask`` ``[B, T]``."""
    return frame_codes.sum(1) / mask.sum(1, keepdim=True).to(frame_codes.dtype)


def pooled_frame_code(
    frame_logits: torch.Tensor,
    mask: torch.Tensor,
    pooling: str = "mean",
    attention: nn.Module | None = None,
    segments: int = 4,
    lengths: torch.Tensor | None = None,
    ends_weight: float = 0.5,
    ends_frames: int = 1,
    ends_logits: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """±1 frame codes ``[B, T, L]`` (0 outside ``mask`` ``[B, T]``) and the video code ``[B, L]`` read from them:
    their mean (``"mean"``, the paper), an attention-weighted mean (``"attention"``: softmax over the frames of
    ``attention(frame_logits)``), the mean of the first and last frames' codes (``"ends"``, where the two scan
    directions have seen the whole video; ``ends_frames`` frames at each end), a blend of those two readings
    (``"mean+ends"``: ``ends_weight`` × ends + (1 − ``ends_weight``) × mean), or, per group of L/``segments``
    bits, the mean over one stretch of time (``"segments"``: bits 0…L/S−1 read from the first S-th of the video,
    and so on, so that Hamming distance compares the stretches in order). ``lengths`` ``[B]``: the videos' full
    lengths that the stretches divide (default: the frames in ``mask``). ``ends_logits`` ``[B, T, L]``: where the ends
    are read from instead of ``frame_logits`` (the ends' own encoder)."""
    if pooling == "mean":
        return mean_frame_code(frame_logits, mask)
    if pooling == "segments":
        return segment_frame_code(frame_logits, mask, segments, lengths)
    weights = mask.to(frame_logits.dtype)[:, :, None]
    frame_codes = binarize(frame_logits) * weights
    if pooling == "attention":
        scores = attention(frame_logits).squeeze(-1).float().masked_fill(~mask, float("-inf"))
        shares = torch.softmax(scores, dim=1).to(frame_codes.dtype)[:, :, None]
        return frame_codes, (frame_codes * shares).sum(1)
    if pooling in ("ends", "mean+ends"):
        at_ends = frame_codes if ends_logits is None else binarize(ends_logits) * weights
        ends = end_frames_code(at_ends, mask, ends_frames)
        if pooling == "ends":
            return frame_codes, ends
        return frame_codes, ends_weight * ends + (1 - ends_weight) * frame_codes.sum(1) / weights.sum(1)
    raise ValueError(f"Unknown code pooling {pooling!r}")


def training_code_pooling(config: S5VHConfig) -> str:
    """The reading that the SLG terms and the pseudo-label refresh train: ``config.code_pooling``, except that with an
    ends term (``ends_term_weight`` > 0) a ``"mean+ends"`` code trains its mean part there (the ends part gets the
    order term, :func:`~s5vh_hf.training.slg.two_view_slg_loss`)."""
    if getattr(config, "ends_term_weight", 0.0) > 0 and config.code_pooling == "mean+ends":
        return "mean"
    return config.code_pooling


def end_frames_code(frame_codes: torch.Tensor, mask: torch.Tensor, count: int = 1) -> torch.Tensor:
    """Mean code ``[B, L]`` of the first ``count`` and the last ``count`` frames in ``mask`` ``[B, T]`` of each video
    (each end weighs one half; a video of fewer than 2·``count`` frames counts the shared frames at both ends)."""
    order = mask.long().cumsum(1) - 1  # rank of each frame in mask from the start
    from_end = mask.sum(1, keepdim=True) - 1 - order
    weights = ((order < count) & mask).to(frame_codes.dtype) + ((from_end < count) & mask).to(frame_codes.dtype)
    return (frame_codes * weights[:, :, None]).sum(1) / weights.sum(1, keepdim=True)


def segment_frame_code(
    frame_logits: torch.Tensor, mask: torch.Tensor, segments: int, lengths: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``"segments"`` reading of :func:`pooled_frame_code`: bit group g (L/S bits) is the mean code of the frames
    in stretch g of S equal stretches of each video's ``lengths`` (a group whose stretch holds no frame in ``mask``
    takes the mean over all of them)."""
    batch, steps, bits = frame_logits.shape
    weights = mask.to(frame_logits.dtype)[:, :, None]
    frame_codes = binarize(frame_logits) * weights
    lengths = mask.sum(1) if lengths is None else lengths
    positions = torch.arange(steps, device=mask.device)[None, :]
    stretch = torch.div(positions * segments, lengths.clamp(min=1)[:, None], rounding_mode="floor").clamp(
        max=segments - 1
    )
    group = torch.arange(bits, device=mask.device) // (bits // segments)  # [L]
    inside = (stretch[:, :, None] == group[None, None, :]).to(frame_codes.dtype) * weights  # [B, T, L]
    counts = inside.sum(1)
    overall = masked_mean_code(frame_codes, mask)
    in_stretch = (frame_codes * inside).sum(1) / counts.clamp(min=1)
    return frame_codes, torch.where(counts > 0, in_stretch, overall)


def per_video_reverse_index(lengths: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Index ``[B, T]`` that reverses each video's first ``lengths[b]`` frames and leaves padding in place.

    It is its own inverse, so gathering twice restores the order.
    """
    steps = torch.arange(num_frames, device=lengths.device)[None, :]
    lengths = lengths[:, None]
    return torch.where(steps < lengths, lengths - 1 - steps, steps)


def drop_path(x: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """Stochastic depth: zero whole samples of ``x`` ``[B, ...]`` with probability ``rate``, rescale the rest."""
    if rate == 0.0 or not training:
        return x
    keep = 1.0 - rate
    mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
    return x * mask / keep


# --------------------------------------------------------------------------------------------------------------
# Modules
# --------------------------------------------------------------------------------------------------------------


def causal_depthwise_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """Causal depthwise convolution over time of a time-major ``x`` ``[T, B, E]`` with ``weight`` ``[E, 1, K]``:
    ``out[t] = bias + Σ_k weight[:, 0, k] · x[t − (K−1) + k]`` (zeros before the first frame)."""
    taps = weight[:, 0, :]
    kernel = taps.shape[-1]
    start = bias if bias is not None else x.new_zeros(x.shape[-1])
    out = torch.addcmul(start, x, taps[:, kernel - 1])
    for k in range(kernel - 1):
        shift = kernel - 1 - k
        if shift < x.shape[0]:
            out[shift:].addcmul_(x[:-shift], taps[:, k])
    return out


class S5VHMambaMixer(nn.Module):
    """Mamba-1 selective-state-space mixer, parameter-compatible with mamba-ssm's ``Mamba``.

    Uses the mamba-ssm / causal-conv1d CUDA kernels when they are installed and the input is on a GPU; on CPU
    the fused C scan kernel when a C compiler is available; otherwise the pure-PyTorch blocked scan (see
    ``S5VHConfig.scan_implementation`` and :mod:`.selective_scan`).
    Works on time-major sequences ``[T, B, width]``. Causal: output t depends on inputs 0..t only, so right
    padding never reaches real frames.
    """

    def __init__(self, config: S5VHConfig, width: int) -> None:
        super().__init__()
        self.config = config
        inner = config.expand * width
        self.inner_size = inner
        self.state_size = config.state_size
        self.time_step_rank = config.time_step_rank_for(width)
        self.in_proj = nn.Linear(width, 2 * inner, bias=False)
        self.conv1d = nn.Conv1d(inner, inner, config.conv_kernel, groups=inner, padding=config.conv_kernel - 1)
        self.x_proj = nn.Linear(inner, self.time_step_rank + 2 * config.state_size, bias=False)
        self.dt_proj = nn.Linear(self.time_step_rank, inner, bias=True)
        self.A_log = nn.Parameter(torch.empty(inner, config.state_size))
        self.D = nn.Parameter(torch.empty(inner))
        self.out_proj = nn.Linear(inner, width, bias=False)

    def scan_backend(self, hidden: torch.Tensor) -> str:
        """Which scan this mixer runs for ``hidden`` (:func:`~s5vh_hf.model.selective_scan.resolve_scan_backend`)."""
        return resolve_scan_backend(self.config.scan_implementation, hidden.device, self.state_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """Time-major ``hidden`` ``[T, B, width]`` → ``[T, B, width]``."""
        inner = self.inner_size
        # Two products instead of one plus a split keep x and the gate contiguous.
        x = F.linear(hidden, self.in_proj.weight[:inner])
        gate = F.linear(hidden, self.in_proj.weight[inner:])
        A = -torch.exp(self.A_log.float())
        backend = self.scan_backend(hidden)
        if backend == "cuda":  # mamba-ssm and causal-conv1d (the `cuda` extra) on a GPU
            return self._forward_cuda(x, gate, A)
        if backend == "cpu_kernel":  # fused C kernels: conv + SiLU here, Δ projection + scan + gate in the scan
            bias = self.conv1d.bias.float() if self.conv1d.bias is not None else None
            x = causal_conv1d_silu(x.float(), self.conv1d.weight.float(), bias).to(hidden.dtype)
        else:
            x = F.silu(causal_depthwise_conv(x, self.conv1d.weight, self.conv1d.bias))
        dt, B, C = self.x_proj(x).split([self.time_step_rank, self.state_size, self.state_size], dim=-1)
        projection = (dt, self.dt_proj.weight, self.dt_proj.bias)
        y = SCANS[backend](x, None, A, B, C, self.D, z=gate, delta_softplus=True, time_major=True,
                           delta_projection=projection)  # fmt: skip
        return self.out_proj(y)

    def _forward_cuda(self, x: torch.Tensor, gate: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
        """mamba-ssm's layout: channels-last ``[B, E, T]`` for the convolution and the scan (on CPU CI this runs
        with stand-ins of the same signatures, ``tests/test_cuda_path_on_cpu.py``)."""
        cuda_selective_scan, cuda_causal_conv1d = cuda_kernels()
        channels_last = lambda t: t.permute(1, 2, 0).contiguous()  # noqa: E731 - [T, B, C] → [B, C, T]
        x = cuda_causal_conv1d(channels_last(x), self.conv1d.weight.squeeze(1), self.conv1d.bias, activation="silu")
        dt, B, C = self.x_proj(x.permute(2, 0, 1)).split([self.time_step_rank, self.state_size, self.state_size], -1)
        y = cuda_selective_scan(
            x,
            channels_last(dt @ self.dt_proj.weight.t()),
            A,
            channels_last(B),
            channels_last(C),
            self.D.float(),
            z=channels_last(gate),
            delta_bias=self.dt_proj.bias.float(),
            delta_softplus=True,
        )
        return self.out_proj(y.permute(2, 0, 1))


class S5VHRecurrentMixer(nn.Module):
    """A causal LSTM or GRU over a time-major sequence ``[T, B, W]`` (the recurrent alternative to Mamba)."""

    def __init__(self, config: S5VHConfig, width: int) -> None:
        super().__init__()
        recurrent = nn.LSTM if config.temporal_mixer == "lstm" else nn.GRU
        self.rnn = recurrent(width, width)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """``hidden`` ``[T, B, W]`` → ``[T, B, W]``; output t depends on inputs 0..t only."""
        return self.rnn(hidden)[0]


def make_sequence_mixer(config: S5VHConfig, width: int) -> nn.Module:
    """The causal time-major mixer of a bidirectional block: Mamba (default), LSTM or GRU."""
    if config.temporal_mixer == "mamba":
        return S5VHMambaMixer(config, width)
    return S5VHRecurrentMixer(config, width)


class S5VHBidirectionalBlock(nn.Module):
    """``x ← x + DropPath(Mix_f(LN_1(x)) + flip(Mix_b(LN_2(flip(x)))))``, flip within each video's length.

    ``forward_mixer`` and ``backward_mixer`` are Mamba, LSTM or GRU mixers (:func:`make_sequence_mixer`); with
    ``share_direction_weights`` there is no ``backward_mixer`` and both directions use the forward one. (The
    authors' checkpoints call them ``mamba1``/``mamba2``; :data:`LEGACY_KEY_RENAMES` maps those names at load.)
    """

    time_major = True

    def __init__(self, config: S5VHConfig, width: int, drop_path_rate: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width, eps=config.layer_norm_eps)
        self.norm2 = nn.LayerNorm(width, eps=config.layer_norm_eps)
        self.forward_mixer = make_sequence_mixer(config, width)
        self.backward_mixer = None if config.share_direction_weights else make_sequence_mixer(config, width)
        self.drop_path_rate = drop_path_rate

    def forward(
        self, hidden: torch.Tensor, reverse_index: torch.Tensor | None, valid: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Time-major ``hidden`` ``[T, B, W]``; ``reverse_index`` ``[T, B]`` (:func:`per_video_reverse_index`,
        transposed), or ``None`` when every video fills all T frames."""
        backward_mixer = self.backward_mixer if self.backward_mixer is not None else self.forward_mixer
        forward_out = self.forward_mixer(self.norm1(hidden))
        backward_out = _flip_time(backward_mixer(self.norm2(_flip_time(hidden, reverse_index))), reverse_index)
        return hidden + _drop_path_time_major(forward_out + backward_out, self.drop_path_rate, self.training)


class S5VHTransformerBlock(nn.Module):
    """ConMH-style pre-norm Transformer encoder block (multi-head self-attention with
    ``scaled_dot_product_attention``, then a 4× GELU MLP), the attention alternative to the Mamba block."""

    time_major = False

    def __init__(self, config: S5VHConfig, width: int, drop_path_rate: float) -> None:
        super().__init__()
        self.num_heads = max(1, width // 32)
        if width % self.num_heads:
            raise ValueError(f"width {width} is not divisible into {self.num_heads} attention heads")
        self.norm1 = nn.LayerNorm(width, eps=config.layer_norm_eps)
        self.qkv = nn.Linear(width, 3 * width)
        self.attn_out = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width, eps=config.layer_norm_eps)
        self.fc1 = nn.Linear(width, 4 * width)
        self.fc2 = nn.Linear(4 * width, width)
        self.drop_path_rate = drop_path_rate

    def forward(
        self, hidden: torch.Tensor, reverse_index: torch.Tensor | None, valid: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Batch-major ``hidden`` ``[B, T, W]``; ``valid`` ``[B, T]`` marks real frames (None: all real)."""
        batch, steps, width = hidden.shape
        heads = self.num_heads
        q, k, v = self.qkv(self.norm1(hidden)).view(batch, steps, 3, heads, width // heads).permute(2, 0, 3, 1, 4)
        mask = None if valid is None else valid[:, None, None, :]
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        attended = self.attn_out(attended.transpose(1, 2).reshape(batch, steps, width))
        hidden = hidden + drop_path(attended, self.drop_path_rate, self.training)
        mlp = self.fc2(F.gelu(self.fc1(self.norm2(hidden))))
        return hidden + drop_path(mlp, self.drop_path_rate, self.training)


def make_block(config: S5VHConfig, width: int, drop_path_rate: float) -> nn.Module:
    """One encoder/decoder block of the configured temporal mixer."""
    if config.temporal_mixer == "transformer":
        return S5VHTransformerBlock(config, width, drop_path_rate)
    return S5VHBidirectionalBlock(config, width, drop_path_rate)


def _flip_time(hidden: torch.Tensor, reverse_index: torch.Tensor | None) -> torch.Tensor:
    if reverse_index is None:
        return hidden.flip(0)
    return hidden.gather(0, reverse_index[:, :, None].expand_as(hidden))


def _drop_path_time_major(x: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    return drop_path(x.transpose(0, 1), rate, training).transpose(0, 1)


def _run_blocks(
    blocks: nn.ModuleList,
    hidden: torch.Tensor,
    lengths: torch.Tensor | None,
    collect: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """Batch-major ``[B, T, W]`` in and out. ``lengths`` ``[B]`` gives each video's real frames (right padding),
    ``None`` when all T are real. Recurrent blocks run time-major, attention blocks batch-major. ``collect``, when
    given, receives the batch-major output ``[B, T, W]`` of every block."""
    steps = hidden.shape[1]
    reverse_index = valid = None
    if lengths is not None:
        reverse_index = per_video_reverse_index(lengths, steps).t().contiguous()
        valid = torch.arange(steps, device=hidden.device)[None, :] < lengths[:, None]
    time_major = False
    for block in blocks:
        if block.time_major != time_major:
            hidden = hidden.transpose(0, 1).contiguous()
            time_major = block.time_major
        hidden = block(hidden, reverse_index, valid)
        if collect is not None:
            collect.append(hidden.transpose(0, 1) if time_major else hidden)
    return hidden.transpose(0, 1) if time_major else hidden


POSITION_TABLE_SIZE = 512
"""Rows of the sinusoidal position table kept as a buffer; longer videos extend it on first use."""


def position_rows(module: nn.Module, count: int) -> torch.Tensor:
    """The first ``count`` rows of ``module.position_table`` ``[count, width]``, extending the (non-persistent)
    buffer when a video is longer than any seen so far."""
    table = module.position_table
    if count > table.shape[0]:
        table = sinusoidal_position_table(count, table.shape[1]).to(table.device)
        module.position_table = table
    return table[:count]


class S5VHEncoder(nn.Module):
    """Frame embedding + sinusoidal positions → bidirectional Mamba blocks → LayerNorm → Linear."""

    def __init__(self, config: S5VHConfig) -> None:
        super().__init__()
        width = config.hidden_size
        self.patch_embed = nn.Linear(config.feature_dim, width)
        rates = torch.linspace(0, config.drop_path_rate, config.encoder_depth).tolist()
        self.blocks = nn.ModuleList(make_block(config, width, rate) for rate in rates)
        self.norm = nn.LayerNorm(width, eps=config.layer_norm_eps)
        self.head = nn.Linear(width, width)
        self.register_buffer("position_table", sinusoidal_position_table(POSITION_TABLE_SIZE, width), persistent=False)

    def forward(
        self,
        features: torch.Tensor,
        positions: torch.Tensor,
        lengths: torch.Tensor | None,
        collect: list[torch.Tensor] | None = None,
        embedding: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """``features`` ``[B, V, D]`` of the visible frames, ``positions`` ``[B, V]`` their frame indices,
        ``lengths`` ``[B]`` real frames per video (``None``: all V) → ``[B, V, width]``. ``collect``, when given,
        receives the embedded input and every block's output ``[B, V, width]``. ``embedding`` = ``(weight, bias)``
        replaces the frame embedding's own (the model folds feature standardisation into it)."""
        table = position_rows(self, int(positions.max()) + 1)
        embedded = F.linear(features, *embedding) if embedding is not None else self.patch_embed(features)
        hidden = embedded + table.to(features.dtype)[positions]
        if collect is not None:
            collect.append(hidden)
        return self.head(self.norm(_run_blocks(self.blocks, hidden, lengths, collect)))


class S5VHDecoder(nn.Module):
    """Bidirectional Mamba blocks (no stochastic depth) → LayerNorm → Linear to the feature dimension."""

    def __init__(self, config: S5VHConfig) -> None:
        super().__init__()
        width = config.decoder_hidden_size
        self.blocks = nn.ModuleList(make_block(config, width, 0.0) for _ in range(config.decoder_depth))
        self.norm = nn.LayerNorm(width, eps=config.layer_norm_eps)
        self.head = nn.Linear(width, config.feature_dim)
        self.register_buffer("position_table", sinusoidal_position_table(POSITION_TABLE_SIZE, width), persistent=False)

    def hidden_states(self, tokens: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        """``tokens`` ``[B, T, width]`` → normalised hidden states ``[B, T, width]`` (apply ``head`` to predict);
        ``lengths`` ``[B]`` real tokens per video, ``None`` when all T are real."""
        return self.norm(_run_blocks(self.blocks, tokens, lengths))

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        """``tokens`` ``[B, T, width]`` → predicted features ``[B, T, D]``."""
        return self.head(self.hidden_states(tokens, lengths))


class S5VHHashLayer(nn.Module):
    """Per frame: Linear(width → L) → LayerNorm(L, eps 1e-5); :func:`binarize` gives the ±1 codes."""

    def __init__(self, config: S5VHConfig) -> None:
        super().__init__()
        self.projection = nn.Linear(config.hidden_size, config.code_length)
        self.norm = nn.LayerNorm(config.code_length, eps=config.hash_layer_norm_eps)

    def forward(self, hidden: torch.Tensor, apply_norm: bool = True) -> torch.Tensor:
        """``hidden`` ``[..., width]`` → continuous pre-binarisation codes ``[..., L]``."""
        projected = self.projection(hidden)
        return self.norm(projected) if apply_norm else projected


# --------------------------------------------------------------------------------------------------------------
# Outputs and the pretrained model
# --------------------------------------------------------------------------------------------------------------


@dataclass
class S5VHModelOutput(ModelOutput):
    """Output of :meth:`S5VHModel.forward`.

    Attributes:
        video_codes: ``[B, L]`` mean of the visible frames' ±1 codes (continuous; sign it for a hash code).
        frame_codes: ``[B, T, L]`` ±1 code of every visible frame (straight-through gradient), 0 elsewhere.
        frame_logits: ``[B, T, L]`` hash-layer outputs before binarisation, 0 at frames not encoded.
        center_logits: ``[B, K]`` ``C·video_codes / (L·τ_c)``.
        reconstruction: ``[M, D]`` decoder predictions of the M masked real frames, row-aligned with
            ``features[reconstruction_mask]``; ``None`` when no frame was masked.
        reconstruction_mask: ``[B, T]`` bool, the frames the decoder predicted (real and not visible).
        encoded_mask: ``[B, T]`` bool, the frames the encoder saw (real and visible).
        last_hidden_state: ``[B, T, width]`` the encoder's output at every encoded frame (0 elsewhere), what the
            hash layer reads.
        hidden_states: with ``output_hidden_states=True``, a tuple of ``encoder_depth + 1`` tensors
            ``[B, T, width]``: the embedded frames, then the output of each encoder block (0 at frames not
            encoded).
        ends_frame_codes: ``[B, T, L]`` ±1 frame codes of the ends' own encoder (``config.ends_encoder_width`` > 0),
            0 at frames not encoded; the code's ends are read from these. ``None`` without that encoder.
    """

    video_codes: torch.Tensor | None = None
    frame_codes: torch.Tensor | None = None
    frame_logits: torch.Tensor | None = None
    center_logits: torch.Tensor | None = None
    reconstruction: torch.Tensor | None = None
    reconstruction_mask: torch.Tensor | None = None
    encoded_mask: torch.Tensor | None = None
    last_hidden_state: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    ends_frame_codes: torch.Tensor | None = None


class S5VHPreTrainedModel(PreTrainedModel):
    """Weight initialisation and loading glue shared by S5VH models."""

    config_class = S5VHConfig
    config: S5VHConfig
    base_model_prefix = "s5vh"
    main_input_name = "features"
    supports_gradient_checkpointing = False
    _no_split_modules = ["S5VHBidirectionalBlock", "S5VHTransformerBlock"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """Initialise one module, whatever order transformers visits them in (it skips loaded weights).

        ``config.initialization`` picks the scheme (see :class:`S5VHConfig`); every linear layer's part in it
        (:func:`_linear_roles`) is fixed when the model is built, so no branch undoes another's work.
        """
        config = self.config
        if isinstance(module, nn.Linear):
            _init_linear(module, getattr(module, "s5vh_init_role", "default"), config)
        elif isinstance(module, S5VHMambaMixer):  # its own parameters; its layers are initialised by role
            states = torch.arange(1, module.state_size + 1, dtype=torch.float32).expand(module.inner_size, -1)
            init.copy_(module.A_log, torch.log(states))
            init.ones_(module.D)
            init.kaiming_uniform_(module.conv1d.weight, a=math.sqrt(5))
            init.zeros_(module.conv1d.bias)
        elif isinstance(module, (nn.LSTM, nn.GRU)):
            for name, param in module.named_parameters():
                (init.xavier_uniform_ if "weight" in name else init.zeros_)(param)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, S5VHModel):
            init.trunc_normal_(module.mask_token, std=config.initializer_range)
            if module.feature_mean is not None:
                init.zeros_(module.feature_mean)
                init.ones_(module.feature_scale)
            module.reset_position_tables()


def _linear_roles(model: nn.Module, config: S5VHConfig) -> None:
    """Tag every linear layer with its part in ``config.initialization`` (``s5vh_init_role``): the Δ projection
    of a Mamba mixer (``"dt_proj"``), the other Mamba projections (``"mamba"``), the frame embedding
    (``"embedding"``), the rest of the encoder and decoder (``"encoder_decoder"``), the center head
    (``"centers"``) and everything else (``"default"``, PyTorch's own initialisation, as the release keeps for
    the hash layer)."""
    model.center_head.s5vh_init_role = "centers"
    if model.code_attention is not None:
        model.code_attention.s5vh_init_role = "attention"
    for part in (model.encoder, model.decoder, model.ends_encoder):
        if part is None:
            continue
        for name, layer in part.named_modules():
            if not isinstance(layer, nn.Linear):
                continue
            if name.endswith("dt_proj"):
                layer.s5vh_init_role = "dt_proj"
            elif name.endswith(("in_proj", "x_proj", "out_proj")):
                layer.s5vh_init_role = "mamba"
            elif name == "patch_embed":
                layer.s5vh_init_role = "embedding"
            else:
                layer.s5vh_init_role = "encoder_decoder"


def ends_encoder_input_dim(config: S5VHConfig) -> int:
    """The width of what the ends' own encoder reads (``config.ends_encoder_input``): the frame features ``D``,
    the main encoder's output (its width; gradient stopped), or both side by side."""
    source = getattr(config, "ends_encoder_input", "features")
    return {"features": config.feature_dim, "encoder": config.hidden_size,
            "both": config.feature_dim + config.hidden_size}[source]  # fmt: skip


def ends_encoder_config(config: S5VHConfig) -> S5VHConfig:
    """The config of the ends' own encoder (``config.ends_encoder_width`` > 0): one block of that width, no
    stochastic depth; its hash layer maps that width to ``code_length``."""
    ends_config = copy.deepcopy(config)
    ends_config.hidden_size, ends_config.encoder_depth = config.ends_encoder_width, 1
    ends_config.feature_dim = ends_encoder_input_dim(config)
    ends_config.drop_path_rate = 0.0
    return ends_config


def _init_linear(layer: nn.Linear, role: str, config: S5VHConfig) -> None:
    """One linear layer under ``config.initialization``:

    - ``"scaled"``: xavier-uniform weights and zero biases in the encoder and decoder (Mamba projections included),
      except the Δ bias, kept in mamba-ssm's range [time_step_min, time_step_max], and the frame embedding, std
      1/√D (unit output variance for standardised input, whatever D is).
    - ``"release"``: the authors' scheme, xavier-uniform and zero biases for every encoder/decoder layer (Δ bias 0).
    - ``"trunc_normal"``: mamba-ssm's defaults inside the mixers, transformers' truncated normal elsewhere.
    Layers outside the encoder and decoder keep PyTorch's default (truncated normal under ``"trunc_normal"``).
    """
    scheme = config.initialization
    if role == "attention":  # uniform weights over the frames until trained: the mean frame code
        init.zeros_(layer.weight)
        init.zeros_(layer.bias)
        return
    if role == "centers":  # random ±1 hash centers until real ones are set with `set_hash_centers`
        init.copy_(layer.weight, torch.randint(0, 2, layer.weight.shape) * 2.0 - 1)
        return
    if role == "dt_proj" and scheme != "release":
        if scheme == "trunc_normal":
            rank = layer.in_features
            init.uniform_(layer.weight, -(rank**-0.5), rank**-0.5)
        else:
            init.xavier_uniform_(layer.weight)
        low, high = math.log(config.time_step_min), math.log(config.time_step_max)
        dt = torch.exp(torch.rand(layer.out_features) * (high - low) + low).clamp(min=config.time_step_floor)
        init.copy_(layer.bias, dt + torch.log(-torch.expm1(-dt)))  # softplus⁻¹(Δ)
        return
    inside = role in ("dt_proj", "mamba", "embedding", "encoder_decoder")
    if scheme == "trunc_normal" and role == "mamba":
        init.kaiming_uniform_(layer.weight, a=math.sqrt(5))
    elif scheme == "trunc_normal":
        init.trunc_normal_(layer.weight, std=config.initializer_range)
        if layer.bias is not None:
            init.zeros_(layer.bias)
        return
    elif inside and role == "embedding" and scheme == "scaled":
        init.normal_(layer.weight, std=layer.in_features**-0.5)
    elif inside:
        init.xavier_uniform_(layer.weight)
    else:  # PyTorch's own nn.Linear initialisation
        init.kaiming_uniform_(layer.weight, a=math.sqrt(5))
        if layer.bias is not None:
            bound = 1 / math.sqrt(layer.in_features)
            init.uniform_(layer.bias, -bound, bound)
        return
    if layer.bias is not None:
        init.zeros_(layer.bias)


class S5VHModel(S5VHPreTrainedModel):
    """S5VH: bidirectional-Mamba video encoder, hash layer, masked-frame decoder and hash-center head.

    ``forward`` is the training interface (one masked view per call); :meth:`encode` turns videos into
    binary codes for retrieval.
    """

    def __init__(self, config: S5VHConfig) -> None:
        super().__init__(config)
        self.encoder = S5VHEncoder(config)
        self.hash_layer = S5VHHashLayer(config)
        self.encoder_to_decoder = nn.Linear(config.code_length, config.decoder_hidden_size, bias=False)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, config.decoder_hidden_size))
        self.decoder = S5VHDecoder(config)
        self.center_head = nn.Linear(config.code_length, config.num_hash_centers, bias=False)
        self.ends_encoder = self.ends_hash_layer = None
        if getattr(config, "ends_encoder_width", 0) > 0:  # the ends' own encoder (one block) and hash layer
            ends_config = ends_encoder_config(config)
            self.ends_encoder = S5VHEncoder(ends_config)
            self.ends_hash_layer = S5VHHashLayer(ends_config)
        if config.code_pooling == "attention":  # learned frame weights of the video code (zero: the mean at first)
            self.code_attention = nn.Linear(config.code_length, 1)
        else:
            self.code_attention = None
        if config.feature_normalization == "standardize":
            self.register_buffer("feature_mean", torch.zeros(config.feature_dim))
            self.register_buffer("feature_scale", torch.ones(config.feature_dim))
        else:
            self.feature_mean = self.feature_scale = None
        # What the model card is rendered from besides the config; saved beside the weights (CARD_STATE_FILE).
        self.training_health: dict[str, Any] | None = None
        """Code statistics of the last health check of ``S5VHTrainer`` (summarised in the model card)."""
        self.evaluation_results: dict[str, Any] | None = None
        """The last retrieval evaluation (``RetrievalReport.to_dict()``), the card's ``model-index`` results."""
        self.fine_tuned_from: str | None = None
        """Hub id of the checkpoint this model was fine-tuned from (the card's ``base_model``)."""
        self.training_arguments: dict[str, Any] | None = None
        """The recipe the last ``S5VHTrainer`` run used (optimiser, schedule, batch, epochs; the card shows it)."""
        self.train_dataset_id: str | None = None
        """Hub id or path of the feature dataset it was trained on (a Hub id goes into the card's ``datasets``)."""
        self.loaded_from: str | None = None
        """Where ``from_pretrained`` loaded it from (not saved)."""
        self.validate_inputs = False
        """Also check the values of ``forward``'s inputs (padding last, no empty video, no NaN/Inf): device→host
        synchronisations the training step skips by default, since ``encode()`` and the collator check their
        inputs. Turn on to debug a custom training loop."""
        _linear_roles(self, config)
        self.post_init()
        self.apply_center_head_trainability()

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *args: Any, **kwargs: Any) -> S5VHModel:
        """``PreTrainedModel.from_pretrained``; then the center head is frozen again unless configured trainable
        (loading replaces parameters, which resets ``requires_grad``) and the card state saved beside the weights
        (evaluation, training health, base model) is restored."""
        if Path(str(pretrained_model_name_or_path)).is_dir():
            # a save in progress is waited for, and one that a kill interrupted after it was decided is completed
            # (only a journal left by a dead writer of this machine, naming paths inside the folder)
            with reading(pretrained_model_name_or_path):
                return cls._load_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        return cls._load_pretrained(pretrained_model_name_or_path, *args, **kwargs)

    @classmethod
    def _load_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *args: Any, **kwargs: Any) -> Any:
        wants_info = kwargs.pop("output_loading_info", False)
        lenient = kwargs.pop("ignore_mismatched_sizes", False)
        quiet = logging.getLogger("transformers.modeling_utils")
        report_filter = _DropLoadReport()  # the checks below say what is wrong, in one line
        quiet.addFilter(report_filter)
        try:
            own_mapping = "key_mapping" not in kwargs
            kwargs.setdefault("key_mapping", LEGACY_KEY_RENAMES)  # older checkpoints' mixer names
            model, info = super().from_pretrained(
                pretrained_model_name_or_path, *args, output_loading_info=True, ignore_mismatched_sizes=True, **kwargs
            )
        except Exception as error:
            if type(error).__name__ == "SafetensorError":
                raise ValueError(
                    f"{pretrained_model_name_or_path}: the weights file is not readable safetensors (empty, truncated "
                    f"or not a model file): {str(error).splitlines()[0]}"
                ) from error
            raise
        finally:
            quiet.removeFilter(report_filter)
        if own_mapping:  # saved under the current names, not renamed back to the ones it was loaded with
            model._weight_conversions = None
        if not lenient:
            _check_loading_info(info, pretrained_model_name_or_path)
        if isinstance(model, S5VHModel):
            # Non-persistent buffers are not in the checkpoint, and transformers skips initialising modules whose
            # weights were all loaded: the position tables are recomputed here.
            model.reset_position_tables()
            model.apply_center_head_trainability()
            model.loaded_from = str(pretrained_model_name_or_path)
            state = _read_card_state(pretrained_model_name_or_path, kwargs)
            for name in CARD_STATE_FIELDS:
                if state.get(name) is not None:
                    setattr(model, name, state[name])
        return (model, info) if wants_info else model

    @torch.no_grad()
    def reset_position_tables(self) -> None:
        """(Re)compute the encoders' and the decoder's sinusoidal position tables (non-persistent buffers)."""
        for part in (part for part in (self.encoder, self.decoder, self.ends_encoder) if part is not None):
            rows, width = part.position_table.shape
            device = part.position_table.device
            part.position_table = sinusoidal_position_table(rows, width).to("cpu" if device.type == "meta" else device)

    def apply_center_head_trainability(self) -> None:
        """Freeze the center head unless ``config.trainable_center_head`` (loading weights replaces parameters,
        which resets ``requires_grad``, so loaders call this again)."""
        self.center_head.weight.requires_grad_(self.config.trainable_center_head)

    def card_state(self) -> dict[str, Any]:
        """The declared state the model card is rendered from besides the config (JSON-serialisable)."""
        return {name: getattr(self, name) for name in CARD_STATE_FIELDS}

    def save_card_state(self, save_directory: str | os.PathLike) -> None:
        """Write :meth:`card_state` beside saved weights (``CARD_STATE_FILE``, atomically, under the folder's write
        lock) and, with the s5vh-hf package's Hub integration, re-render the folder's model card from it."""
        with folder_lock(save_directory):  # one writer per model folder
            _write_json_atomically(Path(save_directory) / CARD_STATE_FILE, self.card_state())
            if _hub_integration is not None:
                _hub_integration.write_card(self, save_directory)

    def save_pretrained(
        self,
        save_directory: str | os.PathLike,
        *args: Any,
        push_to_hub: bool = False,
        model_card_repo_id: str | None = None,
        model_card_tags: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        """``PreTrainedModel.save_pretrained``, written atomically (staged, then committed as one journaled step
        under the folder's write lock: a kill leaves the old model or the new one; other files in the folder, such
        as checkpoints, stay), plus the card state (``CARD_STATE_FILE``) and, in the s5vh-hf package, a generated
        model card (README.md) whose usage snippet names ``model_card_repo_id`` (with ``model_card_tags`` added to
        its metadata). ``push_to_hub=True`` (with
        ``repo_id=…``) then uploads the folder, card included, through :meth:`push_to_hub`'s route."""
        if push_to_hub and _hub_integration is not None:
            repo_id = kwargs.pop("repo_id", None) or Path(save_directory).name
            upload = {k: kwargs.pop(k) for k in ("token", "private", "commit_message", "revision") if k in kwargs}
            self.save_pretrained(save_directory, *args, model_card_repo_id=repo_id, **kwargs)
            _hub_integration.upload_folder(save_directory, repo_id, **upload)
            return
        if push_to_hub or not kwargs.get("is_main_process", True):  # transformers' save (and push) as it is
            super().save_pretrained(save_directory, *args, push_to_hub=push_to_hub, **kwargs)
            if kwargs.get("is_main_process", True):
                _write_json_atomically(Path(save_directory) / CARD_STATE_FILE, self.card_state())
            return
        folder = Path(save_directory)
        with StagedFiles(folder, "model") as staged:
            super().save_pretrained(staged.staging, *args, **kwargs)
            _write_json_atomically(staged.staging / CARD_STATE_FILE, self.card_state())
            if _hub_integration is not None:
                _hub_integration.write_card(
                    self, staged.staging, repo_id=model_card_repo_id, extra_tags=model_card_tags
                )
            written = sorted(p.name for p in staged.staging.iterdir() if p.is_file())
            stale = [p.name for p in folder.glob("model*.safetensors*") if p.is_file() and p.name not in written]
            staged.commit([(name, name) for name in written], remove=stale)

    def push_to_hub(self, repo_id: str, **kwargs: Any) -> str:  # type: ignore[override]
        """Save the model with a model card rendered for ``repo_id`` and upload it (creating the repo when
        needed); a re-push replaces the card, so new evaluation results arrive. Takes ``PushToHubMixin``'s
        arguments (``token``, ``private``, ``revision``, ``commit_message``, ``commit_description``,
        ``create_pr``, ``max_shard_size``, ``tags``). Returns the commit URL."""
        if _hub_integration is None:  # a remote-code copy: transformers' generic push
            return super().push_to_hub(repo_id, **kwargs)
        return _hub_integration.push_model(self, repo_id, **kwargs)

    # -- feature statistics ------------------------------------------------------------------------------------

    @torch.no_grad()
    def set_feature_statistics(self, mean: torch.Tensor | np.ndarray, std: torch.Tensor | np.ndarray) -> None:
        """Store the per-dimension mean and standard deviation ``[D]`` of the training frames; with
        ``config.feature_normalization="standardize"`` every frame is standardised with them (a dimension with
        std 0 is only centred)."""
        if self.feature_mean is None:
            raise ValueError("this model was configured with feature_normalization='none'; it keeps no statistics")
        mean = torch.as_tensor(np.asarray(mean), dtype=torch.float32).flatten()
        std = torch.as_tensor(np.asarray(std), dtype=torch.float32).flatten()
        for name, value in (("mean", mean), ("std", std)):
            if value.shape != self.feature_mean.shape:
                raise ValueError(f"feature {name} must have shape [{self.config.feature_dim}], got {list(value.shape)}")
            if not bool(torch.isfinite(value).all()):
                raise ValueError(f"feature {name} contains NaN or Inf")
        if bool((std < 0).any()):
            raise ValueError("feature std must be non-negative")
        self.feature_mean.copy_(mean)
        self.feature_scale.copy_(torch.where(std > 0, 1.0 / std.clamp_min(1e-12), torch.ones_like(std)))

    def _standardizing_embedding(
        self, like: torch.Tensor, encoder: S5VHEncoder | None = None
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The frame embedding with feature standardisation folded in, ``W·diag(s)`` and ``b − W·diag(s)·μ``:
        ``embed(standardise(x))`` without a standardised copy of the input (two ``[B, T, D]`` temporaries
        otherwise) of ``encoder`` (default: the main one). ``None`` without statistics."""
        if self.feature_mean is None:
            return None
        layer = (encoder or self.encoder).patch_embed
        weight = layer.weight * self.feature_scale.to(layer.weight.dtype)[None, :]
        bias = layer.bias - weight @ self.feature_mean.to(layer.weight.dtype)
        return weight.to(like.dtype), bias.to(like.dtype)

    def normalize_features(self, features: torch.Tensor) -> torch.Tensor:
        """``features`` ``[..., D]`` in the space the model reads and reconstructs (identity without
        statistics)."""
        if self.feature_mean is None:
            return features
        return (features - self.feature_mean.to(features.dtype)) * self.feature_scale.to(features.dtype)

    # -- hash centers ------------------------------------------------------------------------------------------

    @property
    def hash_centers(self) -> torch.Tensor:
        """The center head's weight, ``[K, L]`` (±1 once real centers are set)."""
        return self.center_head.weight

    @torch.no_grad()
    def set_hash_centers(self, centers: torch.Tensor | np.ndarray) -> None:
        """Load hash centers ``[K, L]`` with ±1 entries into the center head."""
        centers = torch.as_tensor(np.asarray(centers), dtype=self.center_head.weight.dtype)
        expected = tuple(self.center_head.weight.shape)
        if tuple(centers.shape) != expected:
            raise ValueError(f"hash centers must have shape {expected} (K, L), got {tuple(centers.shape)}")
        if not torch.all(centers.abs() == 1):
            raise ValueError("hash centers must contain only -1 and +1")
        self.center_head.weight.copy_(centers)

    def _center_scores(self, video_codes: torch.Tensor) -> torch.Tensor:
        """``C·h̄`` ``[B, K]``; no gradient reaches frozen centers, whatever their ``requires_grad`` says."""
        centers = self.center_head.weight
        return F.linear(video_codes, centers if self.config.trainable_center_head else centers.detach())

    def center_logits(self, video_codes: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, K]`` of the global term: ``C·h̄ / (L·center_temperature)`` of video codes ``[B, L]``."""
        return self._center_scores(video_codes) / (self.config.code_length * self.config.center_temperature)

    # -- forward -----------------------------------------------------------------------------------------------

    def _encode_frames(
        self,
        features: torch.Tensor,
        encoded_mask: torch.Tensor,
        apply_hash_norm: bool = True,
        hidden: str = "none",
        with_ends: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None, tuple[torch.Tensor, ...] | None, torch.Tensor | None]:
        """Encode the frames marked in ``encoded_mask`` ``[B, T]``. Returns the hash-layer outputs ``[B, T, L]``;
        with ``hidden="last"`` / ``"all"``, the encoder output ``[B, T, width]`` / also the embedded input and
        every block's output; with ``with_ends`` and the ends' own encoder, its hash-layer outputs ``[B, T, L]``
        (else ``None``); all scattered back to their frame positions (0 at frames not encoded)."""
        batch, steps, _ = features.shape
        lengths = encoded_mask.sum(1)
        if bool(encoded_mask.all()):
            compact, real_lengths, positions = features, None, None
            frame_positions = torch.arange(steps, device=features.device).expand(batch, steps)
        else:
            width = int(lengths.max())
            # Stable sort puts encoded frames first, in temporal order.
            positions = torch.sort((~encoded_mask).to(torch.int8), dim=1, stable=True).indices[:, :width]
            frame_positions = positions
            compact = features.gather(1, positions[:, :, None].expand(-1, -1, features.shape[-1]))
            real_lengths = None if bool((lengths == width).all()) else lengths
        collected: list[torch.Tensor] | None = [] if hidden == "all" else None
        encoded = self.encoder(
            compact, frame_positions, real_lengths, collected, self._standardizing_embedding(features)
        )
        logits = self.hash_layer(encoded, apply_norm=apply_hash_norm)
        to_frames = lambda values: _scatter_to_frames(values, positions, lengths, steps)  # noqa: E731
        last = to_frames(encoded) if hidden != "none" else None
        states = tuple(to_frames(h) for h in collected) if collected is not None else None
        ends = None
        if with_ends and self.ends_encoder is not None:
            source = getattr(self.config, "ends_encoder_input", "features")
            if source == "features":
                embedding = self._standardizing_embedding(features, self.ends_encoder)
                ends_hidden = self.ends_encoder(compact, frame_positions, real_lengths, None, embedding)
            else:  # the main encoder's output, gradient stopped: the order term leaves the main encoder alone
                inputs = encoded.detach()
                if source == "both":
                    inputs = torch.cat((self.normalize_features(compact), inputs), dim=-1)
                ends_hidden = self.ends_encoder(inputs, frame_positions, real_lengths)
            ends = to_frames(self.ends_hash_layer(ends_hidden, apply_norm=apply_hash_norm))
        return to_frames(logits), last, states, ends

    def _frame_logits(
        self, features: torch.Tensor, encoded_mask: torch.Tensor, apply_hash_norm: bool = True
    ) -> torch.Tensor:
        """Hash-layer outputs ``[B, T, L]`` of the frames marked in ``encoded_mask`` ``[B, T]`` (0 elsewhere)."""
        return self._encode_frames(features, encoded_mask, apply_hash_norm)[0]

    def forward(
        self,
        features: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        visible_mask: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        frame_mask: torch.Tensor | None = None,
    ) -> S5VHModelOutput | tuple:
        """Encode the visible frames, hash them, reconstruct the masked ones.

        Args:
            features: ``[B, T, D]`` frame features (padded when videos differ in length).
            attention_mask: ``[B, T]`` bool or 0/1, True/1 at real frames and False/0 at padding (default: all
                real). Real frames must come first.
            visible_mask: ``[B, T]`` bool, True at frames the encoder may see (default: all). Masked real frames
                are reconstructed by the decoder.
            output_hidden_states: Also return the embedded frames and every encoder block's output
                (default: ``config.output_hidden_states``).
            return_dict: Return an :class:`S5VHModelOutput` (default) or a tuple.
            frame_mask: The package's older name of ``attention_mask`` (still accepted).

        Any other keyword argument raises a ``TypeError`` (nothing is silently ignored).
        """
        if frame_mask is not None:
            if attention_mask is not None:
                raise TypeError("pass the padding mask once, as attention_mask (frame_mask is its older name)")
            attention_mask = frame_mask
        features, attention_mask = _check_batch(features, attention_mask, self.config.feature_dim, self.validate_inputs)
        features = features.to(self.dtype)
        encoded_mask = attention_mask if visible_mask is None else attention_mask & visible_mask.to(torch.bool)
        if self.validate_inputs and not bool(encoded_mask.any(dim=1).all()):
            raise ValueError("every video needs at least one real, visible frame")
        want_states = output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        frame_logits, last_hidden, hidden_states, ends_logits = self._encode_frames(
            features, encoded_mask, hidden="all" if want_states else "last", with_ends=True
        )
        frame_codes, video_codes = self._video_code(
            frame_logits, encoded_mask, attention_mask.sum(1), ends_logits=ends_logits
        )
        weights = encoded_mask.to(frame_logits.dtype)[:, :, None]
        center_logits = self.center_logits(video_codes)
        reconstruction_mask = attention_mask & ~encoded_mask
        reconstruction = None
        if bool(reconstruction_mask.any()):
            reconstruction = self._reconstruct(frame_codes, attention_mask, encoded_mask)
        output = S5VHModelOutput(
            video_codes=video_codes,
            frame_codes=frame_codes,
            frame_logits=frame_logits * weights,
            center_logits=center_logits,
            reconstruction=reconstruction,
            reconstruction_mask=reconstruction_mask,
            encoded_mask=encoded_mask,
            last_hidden_state=last_hidden,
            hidden_states=hidden_states,
            ends_frame_codes=None if ends_logits is None else binarize(ends_logits) * weights,
        )
        use_dict = return_dict if return_dict is not None else self.config.return_dict
        return output if use_dict else output.to_tuple()

    def _video_code(
        self,
        frame_logits: torch.Tensor,
        mask: torch.Tensor,
        lengths: torch.Tensor | None = None,
        pooling: str | None = None,
        ends_logits: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Frame codes and the video code read from them (``pooling``, default ``config.code_pooling``); ``lengths``:
        the videos' full lengths (a masked view's stretches are those of the whole video). ``ends_logits``
        ``[B, T, L]``: the ends' own encoder's hash-layer outputs, read at the ends of an ``"ends"`` or
        ``"mean+ends"`` code."""
        config = self.config
        return pooled_frame_code(frame_logits, mask, pooling or config.code_pooling, self.code_attention,
                                 getattr(config, "code_segments", 4), lengths,
                                 getattr(config, "code_ends_weight", 0.5),
                                 getattr(config, "code_ends_frames", 1), ends_logits)  # fmt: skip

    def _reconstruct(
        self, frame_codes: torch.Tensor, attention_mask: torch.Tensor, encoded_mask: torch.Tensor
    ) -> torch.Tensor:
        """Decoder pass: projected codes at visible frames, mask tokens at masked ones; returns predictions
        ``[M, D]`` of the M masked real frames, in the row-major order of ``attention_mask & ~encoded_mask``."""
        batch, steps, _ = frame_codes.shape
        table = position_rows(self.decoder, steps).to(frame_codes.dtype)
        tokens = torch.where(
            encoded_mask[:, :, None], self.encoder_to_decoder(frame_codes), self.mask_token.expand(batch, steps, -1)
        )
        tokens = tokens + table[None]
        lengths = attention_mask.sum(1)
        order = None
        if self.config.decoder_token_order == "visible_first":
            # Release order: visible frames, then masked ones, then padding (each group in temporal order).
            group = torch.where(encoded_mask, 0, torch.where(attention_mask, 1, 2)).to(torch.int8)
            order = torch.sort(group, dim=1, stable=True).indices
            tokens = tokens.gather(1, order[:, :, None].expand_as(tokens))
        hidden = self.decoder.hidden_states(tokens, None if bool((lengths == steps).all()) else lengths)
        if order is not None:  # back to temporal order
            hidden = hidden.gather(1, order.argsort(dim=1)[:, :, None].expand_as(hidden))
        return self.decoder.head(hidden[attention_mask & ~encoded_mask])

    def pseudo_label_logits(self, features: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Center scores ``[B, K]`` of the full, unmasked videos, used to refresh pseudo-labels.

        Paper: ``C·h̄ / (L·τ_c)`` with the hash LayerNorm. With ``config.refresh_skips_hash_norm`` (release):
        the hash LayerNorm is skipped and the scores are not scaled.
        """
        features, attention_mask = _check_batch(features, attention_mask, self.config.feature_dim, self.validate_inputs)
        skip_norm = self.config.refresh_skips_hash_norm
        frame_logits = self._frame_logits(features.to(self.dtype), attention_mask, apply_hash_norm=not skip_norm)
        video_codes = self._video_code(frame_logits, attention_mask, pooling=training_code_pooling(self.config))[1]
        return self._center_scores(video_codes) if skip_norm else self.center_logits(video_codes)

    # -- inference ---------------------------------------------------------------------------------------------

    @torch.no_grad()
    def hash_batch(self, features: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """±1 video codes ``[B, L]`` (float; 0 possible only with ``sign_tie_rule="zero"``) of a padded batch,
        all frames visible: sign of the code read as ``config.code_pooling`` says."""
        features, attention_mask = _check_batch(features, attention_mask, self.config.feature_dim, self.validate_inputs)
        reads_ends = self.config.code_pooling in ("ends", "mean+ends")  # else the ends' own encoder is not read
        frame_logits, _, _, ends_logits = self._encode_frames(
            features.to(self.dtype), attention_mask, with_ends=reads_ends
        )
        video_codes = self._video_code(frame_logits, attention_mask, ends_logits=ends_logits)[1]
        return sign_with_tie_rule(video_codes, self.config.sign_tie_rule)

    @torch.no_grad()
    def encode(
        self,
        videos: np.ndarray | torch.Tensor | Sequence[np.ndarray | torch.Tensor],
        batch_size: int = 256,
        output: CodeOutput = "pm1",
        show_progress_bar: bool | None = None,
        device: str | torch.device | None = None,
        precision: Literal["ubinary", "binary"] | None = None,
    ) -> np.ndarray:
        """Hash videos into binary codes.

        Args:
            videos: ``[N, T, D]`` array or tensor, or a list of ``[T_i, D]`` arrays/tensors of any lengths
                (float16, bfloat16, float32 or float64).
            batch_size: Videos per forward pass (similar lengths are batched together).
            output: ``"pm1"`` → ``int8`` ±1 ``[N, L]``; ``"packed"`` → ``uint8`` ``[N, L/8]`` (bit 1 = +1, most
                significant bit first, as ``np.packbits``); ``"bool"`` → ``bool`` ``[N, L]`` (True = +1).
                sentence-transformers' precision names work too: ``"ubinary"`` is ``"packed"`` bit for bit, and
                ``"binary"`` is the same bytes shifted to ``int8`` (``packed − 128``).
            show_progress_bar: Show a tqdm bar; default: when there is more than one batch.
            device: Device to run on (default: the model's).
            precision: sentence-transformers' keyword for the same choice (``"ubinary"`` or ``"binary"``).

        A video whose mean frame code is exactly 0 in a bit gets the bit of ``config.sign_tie_rule`` (+1 by
        default).
        """
        if precision is not None:
            if precision not in ("ubinary", "binary"):
                raise ValueError(f"precision must be 'ubinary' or 'binary', got {precision!r}")
            if output not in ("pm1", precision):
                raise ValueError(f"output={output!r} and precision={precision!r} disagree; pass one of them")
            output = precision
        if output not in ("pm1", "bool", *PACKED_OUTPUTS):
            raise ValueError(f"output must be 'pm1', 'packed' (= 'ubinary'), 'binary' or 'bool', got {output!r}")
        if isinstance(batch_size, (bool, np.bool_)) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        batch_size = int(batch_size)
        if self.config.sign_tie_rule == "zero" and output != "pm1":
            raise ValueError("sign_tie_rule='zero' yields 0 bits, which only output='pm1' can hold")
        video_list = _as_video_list(videos, self.config.feature_dim)
        code_length = self.config.code_length
        codes = np.empty((len(video_list), code_length), dtype=np.int8)
        if video_list:
            if device is not None:
                self.to(device)
            was_training = self.training
            self.eval()
            order = np.argsort([-len(v) for v in video_list], kind="stable")
            starts = range(0, len(order), batch_size)
            progress = show_progress_bar if show_progress_bar is not None else len(starts) > 1
            try:
                for start in progress_bar(starts, progress, "Encoding"):
                    indices = order[start : start + batch_size]
                    features, attention_mask = pad_videos([video_list[i] for i in indices], self.device)
                    codes[indices] = self.hash_batch(features, attention_mask).to(torch.int8).cpu().numpy()
            finally:
                self.train(was_training)
        if output in ("packed", "ubinary"):
            return pack_codes(codes)
        if output == "binary":
            return (pack_codes(codes).astype(np.int16) - 128).astype(np.int8)
        if output == "bool":
            return codes > 0
        return codes


# --------------------------------------------------------------------------------------------------------------
# Input handling
# --------------------------------------------------------------------------------------------------------------

_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _scatter_to_frames(
    values: torch.Tensor, positions: torch.Tensor | None, lengths: torch.Tensor, steps: int
) -> torch.Tensor:
    """Per-encoded-frame ``values`` ``[B, V, C]`` at frame ``positions`` ``[B, V]`` (the first ``lengths[b]``
    are real) → ``[B, steps, C]``, 0 at frames not encoded. ``positions=None``: every frame was encoded."""
    if positions is None:
        return values
    valid = torch.arange(values.shape[1], device=values.device)[None, :] < lengths[:, None]
    scattered = values.new_zeros(values.shape[0], steps, values.shape[-1])
    index = torch.where(valid, positions, torch.zeros_like(positions))
    scattered.scatter_add_(1, index[:, :, None].expand_as(values), values * valid[:, :, None])
    return scattered


def _check_batch(
    features: torch.Tensor, mask: torch.Tensor | None, feature_dim: int, validate_values: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Shape and type checks of a padded batch (no device synchronisation); the padding mask as bool, all-True
    when ``None``. With ``validate_values`` also the checks that read the data (one device→host copy each):
    no empty video, padding last, no NaN/Inf in real frames — ``encode()`` and the collator make them on their
    inputs instead, so the training step does not pay for them."""
    if not isinstance(features, torch.Tensor):
        raise TypeError(f"features must be a torch.Tensor [B, T, D], got {type(features).__name__}")
    if features.ndim != 3:
        raise ValueError(f"features must have shape [B, T, D], got {tuple(features.shape)}")
    if features.shape[-1] != feature_dim:
        raise ValueError(f"feature dimension mismatch: expected D={feature_dim}, got {features.shape[-1]}")
    if features.shape[0] == 0 or features.shape[1] == 0:
        raise ValueError(f"features must hold at least one video with one frame, got {tuple(features.shape)}")
    if features.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"features must be a floating-point tensor, got {features.dtype}")
    if mask is None:
        mask = torch.ones(features.shape[:2], dtype=torch.bool, device=features.device)
    mask = mask.to(device=features.device, dtype=torch.bool)
    if mask.shape != features.shape[:2]:
        raise ValueError(f"attention_mask must have shape {tuple(features.shape[:2])}, got {tuple(mask.shape)}")
    if validate_values:
        validate_batch_values(features, mask)
    return features, mask


def validate_batch_values(features: torch.Tensor, mask: torch.Tensor) -> None:
    """Raise ``ValueError`` when a video of the padded batch ``features`` ``[B, T, D]`` has no real frame, its
    padding (``mask`` ``[B, T]`` False) is not last, or a real frame holds NaN/Inf."""
    lengths = mask.sum(1)
    if bool((lengths == 0).any()):
        raise ValueError(f"videos {torch.nonzero(lengths == 0).flatten().tolist()} have no real frames")
    steps = torch.arange(mask.shape[1], device=mask.device)[None, :]
    if not bool(torch.equal(mask, steps < lengths[:, None])):
        raise ValueError("attention_mask must mark real frames first and padding last in every video")
    bad = _non_finite_videos(features, mask)
    if bad:
        raise ValueError(f"features of videos {bad} contain NaN or Inf")


def _non_finite_videos(features: torch.Tensor, attention_mask: torch.Tensor) -> list[int]:
    """Indices of videos with a NaN/Inf in a real frame. One min/max pass (NaN propagates through both)."""
    low, high = torch.aminmax(features.flatten(1), dim=1)
    suspects = torch.nonzero(~(torch.isfinite(low) & torch.isfinite(high))).flatten().tolist()
    return [i for i in suspects if not bool(torch.isfinite(features[i][attention_mask[i]]).all())]


def _as_video_list(
    videos: np.ndarray | torch.Tensor | Sequence[np.ndarray | torch.Tensor], feature_dim: int
) -> list[torch.Tensor]:
    """Normalise user input to a list of float ``[T_i, D]`` CPU tensors, with clear errors."""
    if isinstance(videos, np.ndarray) and videos.dtype == object:
        videos = list(videos)
    if isinstance(videos, (np.ndarray, torch.Tensor)):
        if videos.ndim == 2:
            raise ValueError(
                f"got a 2-D array {tuple(videos.shape)}; pass one video as [1, T, D] or a list of [T, D] arrays"
            )
        if videos.ndim != 3:
            raise ValueError(f"videos must have shape [N, T, D], got {tuple(videos.shape)}")
        videos = list(videos)
    elif not isinstance(videos, Sequence) or isinstance(videos, (str, bytes)):
        raise TypeError(f"videos must be an array [N, T, D] or a list of [T, D] arrays, got {type(videos).__name__}")
    result = []
    for index, video in enumerate(videos):
        tensor = _to_float_tensor(video, index)
        if tensor.ndim != 2:
            raise ValueError(f"video {index} must have shape [T, D], got {tuple(tensor.shape)}")
        if tensor.shape[0] == 0:
            raise ValueError(f"video {index} has no frames (T = 0)")
        if tensor.shape[1] != feature_dim:
            raise ValueError(
                f"feature dimension mismatch in video {index}: expected D={feature_dim}, got {tensor.shape[1]}"
            )
        if not bool(torch.isfinite(tensor).all()):
            raise ValueError(f"video {index} contains NaN or Inf features")
        result.append(tensor)
    return result


def _to_float_tensor(video: Any, index: int) -> torch.Tensor:
    if isinstance(video, torch.Tensor):
        tensor = video.detach().cpu()
    else:
        try:
            array = np.asarray(video)
        except ValueError as error:
            raise ValueError(f"video {index} is a ragged array; pass frames as a [T, D] numeric array") from error
        if array.dtype == object:
            raise ValueError(f"video {index} is a ragged array; pass frames as a [T, D] numeric array")
        if array.dtype.kind != "f":
            raise TypeError(f"video {index} must hold floating-point features, got dtype {array.dtype}")
        tensor = torch.from_numpy(np.ascontiguousarray(array))
    if tensor.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"video {index} must hold floating-point features, got dtype {tensor.dtype}")
    return tensor


class _DropLoadReport(logging.Filter):
    """Drops transformers' multi-line weight-loading report (S5VH raises a one-line error instead)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "LOAD REPORT" not in str(record.msg)


def _check_loading_info(info: dict[str, Any], source: Any) -> None:
    """Refuse weights that do not fit the config: mismatched shapes, missing or unexpected tensors (any of them
    would leave randomly initialised weights in the model), in one line naming the first few."""

    def listed(keys: list[str]) -> str:
        return ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")

    mismatched = sorted(info.get("mismatched_keys") or [])
    if mismatched:
        key, stored, expected = mismatched[0]
        raise ValueError(
            f"{source}: the weights do not match config.json: {key} is {list(stored)} in the checkpoint but "
            f"{list(expected)} for the config ({len(mismatched)} tensor(s) differ); was config.json edited or "
            "copied from another model?"
        )
    for kind in ("missing_keys", "unexpected_keys"):
        keys = sorted(info.get(kind) or [])
        if keys:
            what = (
                "lacks tensors the config needs"
                if kind == "missing_keys"
                else "holds tensors the config has no place for"
            )
            raise ValueError(f"{source}: the checkpoint {what}: {listed(keys)}; config.json and weights disagree")


LEGACY_KEY_RENAMES = {
    r"\.(?:mamba|lstm|gru)1\.": ".forward_mixer.",
    r"\.(?:mamba|lstm|gru)2\.": ".backward_mixer.",
}
"""Checkpoint key renames applied at load (regex → replacement): the mixer names of the authors' release and of
s5vh-hf ≤ 0.2 (``mamba1``/``mamba2``, ``lstm1``/…) → ``forward_mixer``/``backward_mixer``."""


def rename_legacy_key(key: str) -> str:
    """``key`` with :data:`LEGACY_KEY_RENAMES` applied."""
    for pattern, replacement in LEGACY_KEY_RENAMES.items():
        key = re.sub(pattern, replacement, key)
    return key


CARD_STATE_FILE = "s5vh_card_state.json"
"""Saved beside the weights: the model's card state (evaluation, training health, base model, dataset)."""
CARD_STATE_FIELDS = (
    "evaluation_results", "training_health", "training_arguments", "fine_tuned_from", "train_dataset_id"
)  # fmt: skip


def _write_json_atomically(path: Path, value: Any) -> None:
    write_file_atomically(path, json.dumps(value, indent=2, sort_keys=True, default=float))


def _read_card_state(name_or_path: str | os.PathLike, load_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The card state saved with a model (local folder or Hub repo); ``{}`` when there is none or it is
    unreadable (the card state never blocks loading weights)."""
    path = Path(name_or_path) / CARD_STATE_FILE
    if not Path(name_or_path).is_dir():
        try:
            from transformers.utils import cached_file

            options = {k: load_kwargs[k] for k in ("cache_dir", "revision", "token", "local_files_only")
                       if k in load_kwargs}  # fmt: skip
            found = cached_file(
                str(name_or_path),
                CARD_STATE_FILE,
                _raise_exceptions_for_missing_entries=False,
                _raise_exceptions_for_connection_errors=False,
                **options,
            )
        except Exception:  # noqa: BLE001 - optional metadata
            return {}
        if found is None:
            return {}
        path = Path(found)
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def register_with_transformers() -> None:
    """Let ``AutoConfig``/``AutoModel`` build S5VH models, and make ``save_pretrained`` write the self-contained
    remote-code files and ``auto_map``, so that ``AutoModel.from_pretrained(repo, trust_remote_code=True)``
    works where s5vh-hf is not installed. Runs once when the package's model module is imported."""
    AutoConfig.register(S5VHConfig.model_type, S5VHConfig, exist_ok=True)
    AutoModel.register(S5VHConfig, S5VHModel, exist_ok=True)
    S5VHConfig.register_for_auto_class()
    S5VHModel.register_for_auto_class("AutoModel")


if _IS_PACKAGE_COPY:
    register_with_transformers()
