"""s5vh-hf: self-supervised video hashing with selective state spaces (S5VH, AAAI 2025), Hugging Face–native.

Names are imported on first use (``from s5vh_hf import S5VHModel`` loads torch and transformers; ``s5vh --help``
does not). Importing the model module registers S5VH with transformers' ``AutoConfig``/``AutoModel``; taking the
model from here also installs the Hub integration (model cards on save, pushes), which the Hub layer provides.

The package is laid out by role, each folder a layer that imports only the ones below it (checked by
``lint-imports``): ``model`` → ``data`` → ``retrieval`` → ``hub`` → ``training`` → ``video`` → ``recipes`` →
``cli``. See ``docs/ARCHITECTURE.md``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

_EXPORTS: dict[str, str] = {
    "MODEL_SIZES": "model.configuration_s5vh",
    "RELEASE_COMPATIBILITY": "model.configuration_s5vh",
    "S5VHConfig": "model.configuration_s5vh",
    "S5VHModel": "model.modeling_s5vh",
    "S5VHModelOutput": "model.modeling_s5vh",
    "S5VHPreTrainedModel": "model.modeling_s5vh",
    "binarize": "model.modeling_s5vh",
    "pack_codes": "model.codes",
    "TwoViewCollator": "data.collator",
    "import_h5_features": "data.import_hdf5",
    "load_feature_dataset": "data.loading",
    "push_feature_dataset": "hub.datasets",
    "evaluate_codes": "retrieval.evaluation",
    "evaluate_retrieval": "retrieval.evaluation",
    "compute_semantic_clusters": "data.clustering",
    "frame_feature_statistics": "data.clustering",
    "generate_hash_centers": "data.hash_centers",
    "load_hash_centers": "data.hash_centers",
    "save_hash_centers": "data.hash_centers",
    "code_health": "training.health",
    "enable_remote_code": "hub.sharing",
    "render_model_card": "hub.sharing",
    "write_model_card": "hub.sharing",
    "convert_original_checkpoint": "hub.convert",
    "HammingIndex": "retrieval.hamming_index",
    "selective_scan": "model.selective_scan",
    "selective_scan_fast": "model.selective_scan",
    "selective_scan_reference": "model.selective_scan",
    "PseudoLabelStore": "training.pseudo_labels",
    "RetrievalEvaluationCallback": "training.callbacks",
    "S5VHTrainer": "training.trainer",
    "s5vh_training_arguments": "training.arguments",
    "clusters_and_centers": "data.hash_centers",
    "push_model_folder": "hub.sharing",
    "write_feature_split": "data.writing",
    "extract_video_features": "video.extraction",
    "load_frame_encoder": "video.frame_encoders",
    "read_frames": "video.decoding",
    "VideoIndex": "video.index",
    "build_video_index": "video.index",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 's5vh_hf' has no attribute {name!r}")
    module = _EXPORTS[name]
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    if module == "model.modeling_s5vh":  # the package's model cards and pushes (the model never imports the Hub)
        importlib.import_module(".hub.sharing", __name__)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # what type checkers and IDEs see
    from .data.clustering import compute_semantic_clusters, frame_feature_statistics
    from .data.collator import TwoViewCollator
    from .data.hash_centers import clusters_and_centers, generate_hash_centers, load_hash_centers, save_hash_centers
    from .data.import_hdf5 import import_h5_features
    from .data.loading import load_feature_dataset
    from .data.writing import write_feature_split
    from .hub.convert import convert_original_checkpoint
    from .hub.datasets import push_feature_dataset
    from .hub.sharing import (
        enable_remote_code,
        push_model_folder,
        render_model_card,
        write_model_card,
    )
    from .model.codes import pack_codes
    from .model.configuration_s5vh import MODEL_SIZES, RELEASE_COMPATIBILITY, S5VHConfig
    from .model.modeling_s5vh import S5VHModel, S5VHModelOutput, S5VHPreTrainedModel, binarize
    from .model.selective_scan import selective_scan, selective_scan_fast, selective_scan_reference
    from .retrieval.evaluation import evaluate_codes, evaluate_retrieval
    from .retrieval.hamming_index import HammingIndex
    from .training.arguments import s5vh_training_arguments
    from .training.callbacks import RetrievalEvaluationCallback
    from .training.health import code_health
    from .training.pseudo_labels import PseudoLabelStore
    from .training.trainer import S5VHTrainer
    from .video.decoding import read_frames
    from .video.extraction import extract_video_features
    from .video.frame_encoders import load_frame_encoder
    from .video.index import VideoIndex, build_video_index
