"""s5vh-hf: self-supervised video hashing with selective state spaces (S5VH, AAAI 2025), Hugging Face–native.

Names are imported on first use (``from s5vh_hf import S5VHModel`` loads torch and transformers; ``s5vh --help``
does not). Importing the model module registers S5VH with transformers' ``AutoConfig``/``AutoModel``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

_EXPORTS: dict[str, str] = {
    "MODEL_SIZES": "configuration_s5vh",
    "RELEASE_COMPATIBILITY": "configuration_s5vh",
    "S5VHConfig": "configuration_s5vh",
    "S5VHModel": "modeling_s5vh",
    "S5VHModelOutput": "modeling_s5vh",
    "S5VHPreTrainedModel": "modeling_s5vh",
    "binarize": "modeling_s5vh",
    "pack_codes": "modeling_s5vh",
    "TwoViewCollator": "data",
    "import_h5_features": "data",
    "load_feature_dataset": "data",
    "push_feature_dataset": "data",
    "evaluate_codes": "evaluation",
    "evaluate_retrieval": "evaluation",
    "compute_semantic_clusters": "hash_centers",
    "frame_feature_statistics": "hash_centers",
    "generate_hash_centers": "hash_centers",
    "load_hash_centers": "hash_centers",
    "save_hash_centers": "hash_centers",
    "code_health": "health",
    "enable_remote_code": "hub",
    "render_model_card": "hub",
    "write_model_card": "hub",
    "convert_original_checkpoint": "convert",
    "HammingIndex": "retrieval",
    "selective_scan": "selective_scan",
    "selective_scan_fast": "selective_scan",
    "selective_scan_reference": "selective_scan",
    "PseudoLabelStore": "trainer",
    "RetrievalEvaluationCallback": "trainer",
    "S5VHTrainer": "trainer",
    "s5vh_training_arguments": "trainer",
    "clusters_and_centers": "hash_centers",
    "push_model_folder": "hub",
    "write_feature_split": "data",
    "extract_video_features": "extraction",
    "load_frame_encoder": "frame_encoders",
    "read_frames": "video_decoding",
    "VideoIndex": "video_index",
    "build_video_index": "video_index",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 's5vh_hf' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # what type checkers and IDEs see
    from .configuration_s5vh import MODEL_SIZES, RELEASE_COMPATIBILITY, S5VHConfig  # noqa: F401
    from .convert import convert_original_checkpoint  # noqa: F401
    from .data import (  # noqa: F401
        TwoViewCollator,
        import_h5_features,
        load_feature_dataset,
        push_feature_dataset,
        write_feature_split,  # noqa: F401
    )
    from .evaluation import evaluate_codes, evaluate_retrieval  # noqa: F401
    from .extraction import extract_video_features  # noqa: F401
    from .frame_encoders import load_frame_encoder  # noqa: F401
    from .hash_centers import (  # noqa: F401
        clusters_and_centers,  # noqa: F401
        compute_semantic_clusters,
        frame_feature_statistics,
        generate_hash_centers,
        load_hash_centers,
        save_hash_centers,
    )
    from .health import code_health  # noqa: F401
    from .hub import (  # noqa: F401
        enable_remote_code,
        push_model_folder,  # noqa: F401
        render_model_card,
        write_model_card,
    )
    from .modeling_s5vh import S5VHModel, S5VHModelOutput, S5VHPreTrainedModel, binarize, pack_codes  # noqa: F401
    from .retrieval import HammingIndex  # noqa: F401
    from .selective_scan import selective_scan, selective_scan_fast, selective_scan_reference  # noqa: F401
    from .trainer import PseudoLabelStore, RetrievalEvaluationCallback, S5VHTrainer, s5vh_training_arguments  # noqa: F401
    from .video_decoding import read_frames  # noqa: F401
    from .video_index import VideoIndex, build_video_index  # noqa: F401
