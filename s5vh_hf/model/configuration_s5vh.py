"""Configuration of S5VH (self-supervised video hashing with selective state spaces).

Holds only :class:`S5VHConfig` and preset loading; no torch modules live here.
"""

from __future__ import annotations

import json
import math
from importlib import resources
from typing import Any

from transformers import PretrainedConfig

from .codes import CODE_LENGTHS, check_code_length  # noqa: F401 - CODE_LENGTHS is part of this module's API

MODEL_SIZES: dict[str, int] = {"mini": 1, "small": 6, "base": 12}
"""Encoder depth (number of bidirectional Mamba blocks) of each named model size."""

CONFIG_FORMAT_VERSION = 4
"""Version of the config layout this package writes; a config from a newer version is refused clearly.
Version 2 added ``initialization`` and ``feature_normalization``; a version-1 config without them keeps the
behaviour it was trained with (``"trunc_normal"``, ``"none"``). Version 3 reads codes from the mean frame code and
the ends by default (``code_pooling="mean+ends"``); a config of an earlier version without the field keeps the mean
frame code it was trained with. Version 4 trains the ends apart by default (``ends_term_weight=1``) and gives them a
third of the code (``code_ends_weight=1/3``); a config of an earlier version without these fields keeps one half
and no ends term."""
DEFAULT_CODE_ENDS_WEIGHT = 1 / 3
"""The ends' share of a ``"mean+ends"`` code since config format 4 (one half before)."""


def suggested_ends_encoder_width(hidden_size: int) -> int:
    """A width for the ends' own encoder (``ends_encoder_width``, off by default): a quarter of the main encoder's
    width (64 for the presets' 256), at least 32 and at most the main width (at 16 the CI test's short videos kept
    0.76× the order-aware kNN, at 32 0.92×: see the order ablation's eighth round)."""
    return min(hidden_size, max(32, hidden_size // 4))


SUPPORTED_TEMPORAL_MIXERS = ("mamba", "transformer", "lstm", "gru")
SIGN_TIE_RULES = ("positive", "negative", "zero")
DECODER_TOKEN_ORDERS = ("temporal", "visible_first")
INITIALIZATIONS = ("scaled", "release", "trunc_normal")
RELEASE_COMPATIBILITY: dict[str, Any] = dict(
    share_direction_weights=True,
    trainable_center_head=True,
    refresh_skips_hash_norm=True,
    decoder_token_order="visible_first",
    sign_tie_rule="zero",
    code_pooling="mean",
    ends_term_weight=0.0,
    ends_encoder_width=0,
    initialization="release",
    refresh_in_train_mode=True,
    feature_normalization="none",
)
"""The one definition of release-compatible behaviour: the config options that reproduce the authors' released code
(raw features included). :meth:`S5VHConfig.release_compatible_copy` applies them, for the checkpoint converter
and ``S5VHConfig.from_preset(..., release_compatible=True)``; the package's defaults train better."""
FEATURE_NORMALIZATIONS = ("standardize", "none")
CLUSTER_POOLINGS = ("mean", "segments")
ENDS_ENCODER_INPUTS = ("features", "encoder", "both")
CODE_POOLINGS = ("mean", "attention", "ends", "mean+ends", "segments")
ORDER_NEGATIVES = ("none", "reversed")

MAXIMA = {
    "feature_dim": 65536, "hidden_size": 16384, "decoder_hidden_size": 16384, "encoder_depth": 256,
    "decoder_depth": 256, "state_size": 1024, "conv_kernel": 64, "expand": 16,
    "num_hash_centers": 1 << 20, "warmup_epochs": 1_000_000,
}  # fmt: skip
"""Largest accepted value of each size field: beyond these a typo, not a model (checked before any allocation)."""
MAX_PARAMETERS = 4_000_000_000
"""Largest accepted :meth:`S5VHConfig.estimated_parameters` (16 GiB of float32 weights)."""

SCAN_IMPLEMENTATIONS = ("auto", "cuda", "cpu_kernel", "fast", "reference")
"""Names of ``scan_implementation``; :func:`~s5vh_hf.model.selective_scan.resolve_scan_backend` turns them into the scan
that runs."""


class S5VHConfig(PretrainedConfig):
    r"""Configuration of an :class:`~s5vh_hf.S5VHModel`.

    The defaults are the published S5VH-small model for FCVID-shaped features at 64 bits; the loss
    weights default to the UCF101 row of the paper. Use :meth:`from_preset` for a dataset × code length.

    Args:
        feature_dim: Dimension D of the input frame features (4096 VGG, 2048 ResNet-50).
        hidden_size: Encoder width (256).
        encoder_depth: Number of bidirectional Mamba blocks in the encoder (mini 1, small 6, base 12).
        decoder_hidden_size: Decoder width (192).
        decoder_depth: Number of bidirectional Mamba blocks in the decoder (1).
        code_length: Number of bits L of a hash code.
        mask_ratio: Fraction of frames hidden from the encoder in each training view (0.5; the dataset presets
            carry the paper's 0.5 or 0.75). A video of two frames or more always hides at least one.
        drop_path_rate: Stochastic-depth rate of the last encoder block (linearly spaced from 0).
        state_size: Mamba state dimension N (16).
        conv_kernel: Width of Mamba's causal depthwise convolution (4).
        expand: Mamba expansion factor, inner width E = expand * width (2).
        time_step_rank: Rank R of Mamba's Δ projection; ``None`` means ceil(width / 16).
        time_step_min, time_step_max, time_step_floor: Range of Mamba's initial Δ.
        layer_norm_eps: Epsilon of every LayerNorm but the hash layer's (1e-6).
        hash_layer_norm_eps: Epsilon of the hash layer's LayerNorm (1e-5).
        initializer_range: Std of the truncated-normal initialisation (``initialization="trunc_normal"``) and of
            the mask token.
        initialization: How linear layers start. ``"scaled"`` (default): the authors' scheme — xavier-uniform
            weights and zero biases for every linear layer of the encoder and decoder, Mamba projections
            included, PyTorch's default for the hash layer, the decoder input and the center head — except that
            the Δ bias keeps mamba-ssm's range [time_step_min, time_step_max] and the frame embedding has std
            1/√D (unit output variance for standardised input, whatever D is). ``"release"``: the authors'
            scheme exactly (Δ bias 0; the embedding's scale shrinks with small D). ``"trunc_normal"``:
            transformers' truncated normal (``initializer_range``) with mamba-ssm's defaults inside the mixers
            (s5vh-hf ≤ 0.1).
        feature_normalization: ``"standardize"`` (default): frames are standardised per dimension with the
            training set's mean and standard deviation (``S5VHModel.set_feature_statistics``, stored with the
            weights) before the embedding, and reconstructed in that space, so that neither the scale nor the
            dimension of the features changes training. ``"none"``: raw features, as the authors' code.
        num_hash_centers: Number K of hash centers (= semantic clusters).
        contrastive_weight: α, weight of the debiased contrastive term.
        center_weight: β, weight of the center-alignment term.
        debias_tau_plus: τ⁺, positive-class prior of the debiased contrastive loss.
        contrastive_temperature: t, temperature of the contrastive loss.
        center_temperature: τ_c, temperature of the center logits.
        warmup_epochs: Epoch from which pseudo-labels are refreshed.
        pseudo_label_smoothing: s, step of the pseudo-label refresh.
        temporal_mixer: Sequence model of the encoder and decoder blocks: ``"mamba"`` (bidirectional Mamba, the
            paper), ``"transformer"`` (ConMH-style self-attention blocks), ``"lstm"`` or ``"gru"`` (bidirectional,
            same block layout as Mamba). Same width and depth for a fair comparison.
        share_direction_weights: Release compatibility — both scan directions use the forward mixer (the release's
            ``mamba1``).
        trainable_center_head: Release compatibility — the center head is trained instead of frozen.
        refresh_skips_hash_norm: Release compatibility — the pseudo-label refresh skips the hash LayerNorm and
            uses unscaled center scores.
        refresh_in_train_mode: Release compatibility — pseudo-labels are refreshed with the model in train mode
            (stochastic depth active) instead of eval mode.
        decoder_token_order: ``"temporal"`` (paper) or ``"visible_first"`` (release) ordering of decoder tokens.
        sign_tie_rule: Bit given to a video whose mean frame code is exactly 0 at inference: ``"positive"``
            (+1, default), ``"negative"`` (−1) or ``"zero"`` (0, the release's behaviour; ±1 output only).
        scan_implementation: ``"auto"`` (mamba-ssm's CUDA kernels on a GPU when installed; on CPU the fused C
            kernel when a C compiler is available; else the blocked PyTorch scan), ``"cuda"`` (always mamba-ssm
            and causal-conv1d; an error naming what to install where they cannot run), ``"cpu_kernel"`` (always
            the C kernel; an error where it cannot run), ``"fast"`` (always the PyTorch scan) or ``"reference"``
            (sequential oracle; slow). A backend asked for by name never falls back to another.
        code_pooling: Where a video's code is read from its frames' codes: ``"mean+ends"`` (default: a blend of the
            mean frame code and the mean of the first and last frames' codes, where the two scan directions have
            seen the whole video, in order; ``code_ends_weight`` is the ends' share), ``"mean"`` (the paper and the
            release: the sign of the mean frame code, blind to where in the video a frame is), ``"ends"`` (the
            first and last frames alone), ``"attention"`` (a learned attention-weighted mean) or ``"segments"``
            (each group of L/``code_segments`` bits read from one stretch of time, in order). The order ablation in
            ``benchmarks/RESULTS.md`` compares them.
        code_segments: Stretches of time of ``code_pooling="segments"`` (≥ 2, dividing ``code_length``).
        code_ends_weight: Share of the ends in ``code_pooling="mean+ends"`` (in [0, 1], default one third: where the
            first and last frames agree on a bit they set it, unless more than three quarters of the frames disagree;
            elsewhere the mean frame code does; one half in configs before format 4). Ignored by the other readings.
        code_ends_frames: Frames read at each end by ``"ends"`` and ``"mean+ends"``: the mean code of the first k and
            of the last k frames (default 1, the first and the last frame; 3 gives back part of what the ends cost
            real sequences and loses some order, most on short videos: see the order ablation).
        mask_keeps_ends: Show each training video's first and last frames in both masked views (videos of four
            frames or more), so that the two views' codes read the same ends (default False: the paper's views,
            which split every frame at random). Training only; the order ablation found it hurts.
        order_negatives: ``"none"`` (the paper) or ``"reversed"``: each training video played backwards is one more
            negative of the contrastive term, so that a sequence and its reversal get different codes (one more
            encoder pass per step).
        ends_term_weight: Weight of the order term of the training objective (default 1; 0 is the paper, and configs
            before format 4): the contrastive and center terms again, on the code read at each view's first and last
            visible frames. With it a ``"mean+ends"`` code trains its two parts apart: the SLG terms (and the
            pseudo-label refresh) train the mean frame code, the order term the ends, and the code read is their
            blend; trained as one blend, the ends slowed learning on real sequences (see the order ablation).
            Training only: it does not change how a trained model computes codes.
        ends_term_warmup: Fraction of the training steps (in [0, 1]) over which the order term's weight rises
            linearly from 0 to ``ends_term_weight`` (default 0: the full weight from the first step). A warm-up lets
            the mean frame code learn alone at first, which gives back what the order term costs some real
            sequences at a short budget (OSULeaf), but the codes then learn less order: on the hardest
            order-dependent data some seeds fall below 0.8× an order-aware float search (see the order ablation).
            Training only.
        ends_encoder_width: Width of the ends' own encoder (default 0: none, the ends are the main encoder's first
            and last frame codes). Above 0, one bidirectional block of that width and a hash layer of their own give
            the frame codes that the ends of a ``"mean+ends"`` (or ``"ends"``) code are read from; the order term
            (``ends_term_weight`` > 0, which training needs then) trains that encoder alone, and the main encoder
            learns the mean frame code as in the paper. Sharing one encoder, the order term costs some real sequences
            (OSULeaf); with its own encoder they are level with the paper's reading, but the codes order less (see
            the order ablation's eighth round: :func:`suggested_ends_encoder_width` and ``code_ends_weight=1/3``
            give OSULeaf back and keep digits within .01, with five shared scenes below 0.8× the order-aware search
            on some seeds; ``code_ends_weight=3/8`` keeps order and costs digits .03).
        ends_encoder_input: What the ends' own encoder reads (with ``ends_encoder_width`` > 0): ``"features"``
            (default; the standardised frame features), ``"encoder"`` (the main encoder's output, its gradient
            stopped so that the order term still leaves the main encoder alone) or ``"both"`` (the two side by
            side). Changes the codes (and the weights' shapes); see the order ablation's ninth round.
        cluster_pooling: How training videos are pooled for the clustering that gives the first pseudo-labels and
            the hash centers: ``"mean"`` (the paper; blind to frame order, so a sequence and its reversal share a
            cluster) or ``"segments"`` (the concatenated means of ``cluster_segments`` stretches of time).
        cluster_segments: Stretches of time of ``cluster_pooling="segments"`` (≥ 2).
        dataset_name: Name of the dataset preset this config was made from, if any.
    """

    model_type = "s5vh"

    def __init__(
        self,
        feature_dim: int = 4096,
        hidden_size: int = 256,
        encoder_depth: int = 6,
        decoder_hidden_size: int = 192,
        decoder_depth: int = 1,
        code_length: int = 64,
        mask_ratio: float = 0.5,
        drop_path_rate: float = 0.5,
        state_size: int = 16,
        conv_kernel: int = 4,
        expand: int = 2,
        time_step_rank: int | None = None,
        time_step_min: float = 0.001,
        time_step_max: float = 0.1,
        time_step_floor: float = 1e-4,
        layer_norm_eps: float = 1e-6,
        hash_layer_norm_eps: float = 1e-5,
        initializer_range: float = 0.02,
        initialization: str | None = None,
        feature_normalization: str | None = None,
        num_hash_centers: int = 101,
        contrastive_weight: float = 1.0,
        center_weight: float = 0.1,
        debias_tau_plus: float = 0.1,
        contrastive_temperature: float = 0.5,
        center_temperature: float = 0.5,
        warmup_epochs: int = 50,
        pseudo_label_smoothing: float = 0.01,
        temporal_mixer: str = "mamba",
        share_direction_weights: bool = False,
        trainable_center_head: bool = False,
        refresh_skips_hash_norm: bool = False,
        refresh_in_train_mode: bool = False,
        decoder_token_order: str = "temporal",
        sign_tie_rule: str = "positive",
        scan_implementation: str = "auto",
        code_pooling: str | None = None,
        code_segments: int = 4,
        code_ends_weight: float | None = None,
        mask_keeps_ends: bool = False,
        code_ends_frames: int = 1,
        order_negatives: str = "none",
        ends_term_weight: float | None = None,
        ends_term_warmup: float = 0.0,
        ends_encoder_width: int = 0,
        ends_encoder_input: str = "features",
        cluster_pooling: str = "mean",
        cluster_segments: int = 3,
        dataset_name: str | None = None,
        s5vh_format_version: int = CONFIG_FORMAT_VERSION,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("training_defaults", None)  # configs of s5vh-hf ≤ 0.2 carried the preset's recipe; now in presets
        if s5vh_format_version > CONFIG_FORMAT_VERSION:
            raise ValueError(
                f"this S5VH config was written by a newer s5vh-hf (format {s5vh_format_version}; this version reads "
                f"up to {CONFIG_FORMAT_VERSION}); upgrade with `pip install -U s5vh-hf`"
            )
        self.s5vh_format_version = s5vh_format_version
        self.feature_dim = feature_dim
        self.hidden_size = hidden_size
        self.encoder_depth = encoder_depth
        self.decoder_hidden_size = decoder_hidden_size
        self.decoder_depth = decoder_depth
        self.code_length = code_length
        self.mask_ratio = mask_ratio
        self.drop_path_rate = drop_path_rate
        self.state_size = state_size
        self.conv_kernel = conv_kernel
        self.expand = expand
        self.time_step_rank = time_step_rank
        self.time_step_min = time_step_min
        self.time_step_max = time_step_max
        self.time_step_floor = time_step_floor
        self.layer_norm_eps = layer_norm_eps
        self.hash_layer_norm_eps = hash_layer_norm_eps
        self.initializer_range = initializer_range
        legacy = s5vh_format_version < 2
        self.initialization = initialization or ("trunc_normal" if legacy else "scaled")
        self.feature_normalization = feature_normalization or ("none" if legacy else "standardize")
        self.num_hash_centers = num_hash_centers
        self.contrastive_weight = contrastive_weight
        self.center_weight = center_weight
        self.debias_tau_plus = debias_tau_plus
        self.contrastive_temperature = contrastive_temperature
        self.center_temperature = center_temperature
        self.warmup_epochs = warmup_epochs
        self.pseudo_label_smoothing = pseudo_label_smoothing
        self.temporal_mixer = temporal_mixer
        self.share_direction_weights = share_direction_weights
        self.trainable_center_head = trainable_center_head
        self.refresh_skips_hash_norm = refresh_skips_hash_norm
        self.refresh_in_train_mode = refresh_in_train_mode
        self.decoder_token_order = decoder_token_order
        self.sign_tie_rule = sign_tie_rule
        self.scan_implementation = scan_implementation
        self.code_pooling = code_pooling or ("mean" if s5vh_format_version < 3 else "mean+ends")
        self.code_segments = code_segments
        before_format_4 = s5vh_format_version < 4
        if code_ends_weight is None:
            code_ends_weight = 0.5 if before_format_4 else DEFAULT_CODE_ENDS_WEIGHT
        self.code_ends_weight = code_ends_weight
        self.mask_keeps_ends = mask_keeps_ends
        self.code_ends_frames = code_ends_frames
        self.order_negatives = order_negatives
        self.ends_term_weight = (0.0 if before_format_4 else 1.0) if ends_term_weight is None else ends_term_weight
        self.ends_term_warmup = ends_term_warmup
        self.ends_encoder_width = ends_encoder_width
        self.ends_encoder_input = ends_encoder_input
        self.cluster_pooling = cluster_pooling
        self.cluster_segments = cluster_segments
        self.dataset_name = dataset_name
        super().__init__(**kwargs)
        self.validate()

    def estimated_parameters(self) -> int:
        """An upper estimate of the parameter count, computed before anything is allocated (the absurd-size check
        of :meth:`validate`)."""

        def stack(width: int, depth: int) -> int:
            inner = self.expand * width
            rank = self.time_step_rank_for(inner)
            mixer = inner * (3 * width + self.conv_kernel + 2 * rank + 3 * self.state_size + 4)
            return depth * 2 * (mixer + 4 * width)  # two directions (or a mixer and its reversed copy)

        return (
            self.feature_dim * (self.hidden_size + self.decoder_hidden_size + 2)
            + stack(self.hidden_size, self.encoder_depth)
            + stack(self.decoder_hidden_size, self.decoder_depth)
            + (self.hidden_size + self.decoder_hidden_size + self.num_hash_centers + 2) * self.code_length
            + (self.feature_dim + self.hidden_size + 1 + self.code_length) * self.ends_encoder_width
            + stack(self.ends_encoder_width, 1)
        )

    def release_compatible_copy(self) -> S5VHConfig:
        """A copy with :data:`RELEASE_COMPATIBILITY` applied, validated like any config."""
        return type(self).from_dict({**self.to_dict(), **RELEASE_COMPATIBILITY})

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any], **kwargs: Any) -> Any:
        """``PretrainedConfig.from_dict``, validated again after the keyword overrides: transformers sets those
        after ``__init__`` (``S5VHModel.from_pretrained(path, code_pooling="mean")`` reads a saved model otherwise),
        so an out-of-range override would otherwise pass unchecked."""
        result = super().from_dict(config_dict, **kwargs)
        (result[0] if isinstance(result, tuple) else result).validate()
        return result

    def time_step_rank_for(self, width: int) -> int:
        """Rank R of Mamba's Δ projection for a block of the given width (ceil(width/16) unless set)."""
        return self.time_step_rank if self.time_step_rank is not None else math.ceil(width / 16)

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first field whose value is out of range."""
        positive_ints = (
            "feature_dim", "hidden_size", "encoder_depth", "decoder_hidden_size", "decoder_depth",
            "code_length", "state_size", "conv_kernel", "expand", "num_hash_centers",
        )  # fmt: skip
        for name in positive_ints:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"S5VHConfig.{name} must be a positive integer, got {value!r}")
        for name, largest in MAXIMA.items():
            if getattr(self, name) > largest:
                raise ValueError(f"S5VHConfig.{name} = {getattr(self, name)} is beyond the supported maximum {largest}")
        ends_width = self.ends_encoder_width
        if not isinstance(ends_width, int) or isinstance(ends_width, bool) or not 0 <= ends_width <= 16384:
            raise ValueError(f"S5VHConfig.ends_encoder_width must be an integer in [0, 16384], got {ends_width!r}")
        rank = self.time_step_rank
        if rank is not None and (not isinstance(rank, int) or isinstance(rank, bool) or not 1 <= rank <= 65536):
            raise ValueError(f"S5VHConfig.time_step_rank must be None (automatic) or an integer in [1, 65536], got "
                             f"{rank!r}")  # fmt: skip
        parameters = self.estimated_parameters()
        if parameters > MAX_PARAMETERS:
            raise ValueError(f"this configuration would hold about {parameters / 1e9:.3g} billion parameters "
                             f"({4 * parameters / 2**30:.3g} GiB in float32), beyond the supported "
                             f"{MAX_PARAMETERS / 1e9:g} billion; check hidden_size, expand and the depths")  # fmt: skip
        check_code_length(self.code_length)
        pieces = self.code_segments
        if not isinstance(pieces, int) or isinstance(pieces, bool) or pieces < 2 or self.code_length % pieces:
            raise ValueError(f"S5VHConfig.code_segments must be an integer ≥ 2 that divides code_length "
                             f"({self.code_length}), got {pieces!r}")  # fmt: skip
        segments = self.cluster_segments
        if not isinstance(segments, int) or isinstance(segments, bool) or not 2 <= segments <= 64:
            raise ValueError(f"S5VHConfig.cluster_segments must be an integer in [2, 64], got {segments!r}")
        ends_frames = self.code_ends_frames
        if not isinstance(ends_frames, int) or isinstance(ends_frames, bool) or ends_frames < 1:
            raise ValueError(f"S5VHConfig.code_ends_frames must be a positive integer, got {ends_frames!r}")
        if not isinstance(self.mask_keeps_ends, bool):
            raise ValueError(f"S5VHConfig.mask_keeps_ends must be True or False, got {self.mask_keeps_ends!r}")
        if not isinstance(self.warmup_epochs, int) or isinstance(self.warmup_epochs, bool) or self.warmup_epochs < 0:
            raise ValueError(f"S5VHConfig.warmup_epochs must be a non-negative integer, got {self.warmup_epochs!r}")
        # (low, high, low inclusive, high inclusive) of every real-valued field
        ranges = {
            "mask_ratio": (0.0, 1.0, True, False),
            "code_ends_weight": (0.0, 1.0, True, True),
            "drop_path_rate": (0.0, 1.0, True, False),
            "debias_tau_plus": (0.0, 1.0, True, False),
            "pseudo_label_smoothing": (0.0, 1.0, True, True),
            "contrastive_temperature": (0.0, math.inf, False, False),
            "center_temperature": (0.0, math.inf, False, False),
            "contrastive_weight": (0.0, math.inf, True, False),
            "center_weight": (0.0, math.inf, True, False),
            "ends_term_weight": (0.0, math.inf, True, False),
            "ends_term_warmup": (0.0, 1.0, True, True),
            "time_step_min": (0.0, math.inf, False, False),
            "time_step_max": (0.0, math.inf, False, False),
            "time_step_floor": (0.0, math.inf, False, False),
            "layer_norm_eps": (0.0, math.inf, False, False),
            "hash_layer_norm_eps": (0.0, math.inf, False, False),
            "initializer_range": (0.0, math.inf, False, False),
        }
        for name, (low, high, low_ok, high_ok) in ranges.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
                raise ValueError(f"S5VHConfig.{name} must be a number, got {value!r}")
            if not ((low <= value) if low_ok else (low < value)) or not (
                (value <= high) if high_ok else (value < high)
            ):
                interval = f"{'[' if low_ok else '('}{low:g}, {high:g}{']' if high_ok else ')'}"
                raise ValueError(f"S5VHConfig.{name} must be in {interval}, got {value!r}")
        if self.time_step_min > self.time_step_max:
            raise ValueError(
                f"S5VHConfig.time_step_min ({self.time_step_min}) must not exceed time_step_max ({self.time_step_max})"
            )
        choices = {
            "temporal_mixer": SUPPORTED_TEMPORAL_MIXERS,
            "sign_tie_rule": SIGN_TIE_RULES,
            "decoder_token_order": DECODER_TOKEN_ORDERS,
            "initialization": INITIALIZATIONS,
            "feature_normalization": FEATURE_NORMALIZATIONS,
            "scan_implementation": SCAN_IMPLEMENTATIONS,
            "cluster_pooling": CLUSTER_POOLINGS,
            "code_pooling": CODE_POOLINGS,
            "order_negatives": ORDER_NEGATIVES,
            "ends_encoder_input": ENDS_ENCODER_INPUTS,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"S5VHConfig.{name} must be one of {allowed}, got {getattr(self, name)!r}")

    @classmethod
    def available_presets(cls) -> list[str]:
        """Names accepted by :meth:`from_preset`, e.g. ``"fcvid-64"``."""
        folder = resources.files("s5vh_hf.presets")
        return sorted(p.name[: -len(".json")] for p in folder.iterdir() if p.name.endswith(".json"))

    @classmethod
    def from_preset(
        cls, name: str, model_size: str = "small", release_compatible: bool = False, **overrides: Any
    ) -> S5VHConfig:
        """Load a named preset ``<dataset>-<bits>`` (see ``configuration/``) at a model size.

        Args:
            name: Preset name, e.g. ``"fcvid-64"`` or ``"ucf101-16"``.
            model_size: ``"mini"`` (1 block), ``"small"`` (6 blocks, published) or ``"base"`` (12 blocks).
            release_compatible: Behave as the authors' released code (:data:`RELEASE_COMPATIBILITY`, raw
                features) instead of the package's defaults.
            **overrides: Config fields to change after loading the preset.
        """
        if model_size not in MODEL_SIZES:
            raise ValueError(f"Unknown model size {model_size!r}; expected one of {sorted(MODEL_SIZES)}")
        presets = cls.available_presets()
        if name not in presets:
            raise ValueError(f"Unknown S5VH preset {name!r}; available presets: {', '.join(presets)}")
        text = resources.files("s5vh_hf.presets").joinpath(f"{name}.json").read_text()
        values = json.loads(text)
        values.pop("training", None)  # the recipe: read by `preset_training_recipe`, not part of the model
        values["encoder_depth"] = MODEL_SIZES[model_size]
        if release_compatible:
            values.update(RELEASE_COMPATIBILITY)
        values.update(overrides)
        return cls(**values)


def preset_training_recipe(preset_or_config: str | S5VHConfig) -> dict[str, Any]:
    """The training recipe (epochs, batch size, learning rate, weight decay, …) of a preset — named, or the one a
    config was made from (``<dataset_name>-<code_length>``) — from the ``"training"`` section of its file;
    ``{}`` when there is no such preset."""
    if isinstance(preset_or_config, str):
        name = preset_or_config
    else:
        name = f"{preset_or_config.dataset_name}-{preset_or_config.code_length}"
    if name not in S5VHConfig.available_presets():
        if isinstance(preset_or_config, str):
            raise ValueError(
                f"Unknown S5VH preset {name!r}; available presets: {', '.join(S5VHConfig.available_presets())}"
            )
        return {}
    text = resources.files("s5vh_hf.presets").joinpath(f"{name}.json").read_text()
    return dict(json.loads(text).get("training", {}))
