"""The identity of a model's codes: a fingerprint that two models share only if they compute the same codes."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import torch

FINGERPRINT_IGNORED_CONFIG = (
    "_name_or_path", "transformers_version", "_commit_hash", "auto_map", "cluster_pooling", "cluster_segments",
    "order_negatives", "mask_keeps_ends", "ends_term_weight", "ends_term_warmup",
)  # fmt: skip
"""Config fields that say where a model came from, which library saved it, or how its training data was clustered
or which negatives and views its training used (fields added since fingerprints were first recorded, left out so that
existing indexes stay valid) — not how it computes codes."""
FINGERPRINT_LEGACY_DEFAULTS = {
    "code_pooling": "mean",
    "code_segments": 4,
    "code_ends_weight": 0.5,
    "code_ends_frames": 1,
    "ends_encoder_width": 0,
    "ends_encoder_input": "features",
}
"""Fields added after fingerprints were first recorded, left out at the value that reproduces the older behaviour
(so an index of an older model stays valid); any other value changes the codes and the fingerprint."""


def model_fingerprint(model: Any) -> str:
    """sha256 of the model's full configuration (every field that can change a code: ``eps``, ``code_length``,
    ``sign_tie_rule``, …; not where it was loaded from) and of all its weights and buffers: codes from two
    models agree only if this does."""
    config = {k: v for k, v in model.config.to_dict().items() if k not in FINGERPRINT_IGNORED_CONFIG
              and not (k in FINGERPRINT_LEGACY_DEFAULTS and v == FINGERPRINT_LEGACY_DEFAULTS[k])}  # fmt: skip
    pooling = config.get("code_pooling", "mean")
    if pooling != "mean+ends":
        config.pop("code_ends_weight", None)  # read by "mean+ends" only: any other reading computes the same codes
    if pooling not in ("ends", "mean+ends"):
        config.pop("code_ends_frames", None)
    if not config.get("ends_encoder_width"):
        config.pop("ends_encoder_input", None)  # read by the ends' own encoder only
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
