"""Conversion of the authors' released checkpoints (``torch.save({'model_state_dict': …}, '<dataset>_<bits>.pth')``)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import torch

from ..model.configuration_s5vh import S5VHConfig
from ..model.modeling_s5vh import S5VHModel, rename_legacy_key

_RENAMES = (("binary.", "hash_layer.projection."), ("ln.", "hash_layer.norm."), ("classifier.", "center_head."))
_UNUSED_PREFIXES = ("get_token_probs.",)


def read_original_state_dict(pth_path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load an authors' ``.pth`` safely (``weights_only=True``) and return its state dict.

    Accepts ``{'model_state_dict': state_dict}`` (the release) or a bare state dict; refuses anything else.
    """
    path = Path(pth_path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, AttributeError) as error:
        raise ValueError(
            f"{path} is not a plain tensor checkpoint (refused by weights_only loading): {str(error).splitlines()[0]}"
        ) from error
    state = loaded.get("model_state_dict", loaded) if isinstance(loaded, dict) else None
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} does not hold a state dict of tensors (expected {{'model_state_dict': …}})")
    return state


def map_original_keys(state: dict[str, torch.Tensor], shared_directions: bool) -> dict[str, torch.Tensor]:
    """Rename the release's keys to this package's and drop the unused ones (``get_token_probs``, and the
    never-used ``mamba2`` weights when both directions share ``mamba1``)."""
    mapped = {}
    for key, value in state.items():
        if key.startswith(_UNUSED_PREFIXES) or (shared_directions and ".mamba2." in key):
            continue
        for old, new in _RENAMES:
            if key.startswith(old):
                key = new + key[len(old) :]
                break
        mapped[rename_legacy_key(key)] = value
    return mapped


def convert_original_checkpoint(
    pth_path: str | os.PathLike,
    preset_or_config: str | S5VHConfig,
    hash_centers: str | os.PathLike | np.ndarray | None = None,
    release_compatible: bool = True,
    release_behaviour: bool | None = None,
) -> S5VHModel:
    """Build an :class:`S5VHModel` from an authors' checkpoint.

    Args:
        pth_path: ``<dataset>_<bits>.pth`` of the release.
        preset_or_config: The preset it was trained with (e.g. ``"fcvid-64"``) or a config.
        hash_centers: Optional ``hash_center_{L}.h5`` (or a ±1 array) to put into the center head instead of the
            release's trained classifier (encoding is unaffected).
        release_compatible: Apply :data:`RELEASE_COMPATIBILITY` (:meth:`S5VHConfig.release_compatible_copy`), so
            that ``encode`` gives the codes the authors' inference gives (including 0 for a tied bit,
            ``sign_tie_rule="zero"``; set ``model.config.sign_tie_rule = "positive"`` for packed codes). Without
            it, only raw features are kept (the release's weights expect them).
        release_behaviour: The old name of ``release_compatible`` (still accepted).
    """
    if release_behaviour is not None:
        release_compatible = release_behaviour
    if isinstance(preset_or_config, S5VHConfig):
        config = S5VHConfig.from_dict(preset_or_config.to_dict())
    else:
        config = S5VHConfig.from_preset(preset_or_config)
    if release_compatible:
        config = config.release_compatible_copy()
    else:  # the release reads raw features; its weights expect them
        config = S5VHConfig.from_dict({**config.to_dict(), "feature_normalization": "none"})
    state = map_original_keys(read_original_state_dict(pth_path), config.share_direction_weights)
    model = S5VHModel(config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"{pth_path} does not match preset {preset_or_config if isinstance(preset_or_config, str) else 'config'}: "
            f"missing keys {missing[:20]}{' …' if len(missing) > 20 else ''}, "
            f"unexpected keys {unexpected[:20]}{' …' if len(unexpected) > 20 else ''}"
        )
    for key, value in state.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise ValueError(
                f"{pth_path}: {key} has shape {tuple(value.shape)} but the preset expects {tuple(expected[key].shape)}"
            )
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=True)
    if hash_centers is not None:
        from ..data.hash_centers import load_hash_centers

        centers = hash_centers if isinstance(hash_centers, np.ndarray) else load_hash_centers(hash_centers).centers
        model.set_hash_centers(centers)
    model.apply_center_head_trainability()
    return model.eval()
