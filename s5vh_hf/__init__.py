"""s5vh-hf: self-supervised video hashing with selective state spaces (S5VH, AAAI 2025), Hugging Face–native."""

from transformers import AutoConfig, AutoModel

from .configuration_s5vh import MODEL_SIZES, S5VHConfig
from .data import TwoViewCollator, import_h5_features, load_feature_dataset, push_feature_dataset  # noqa: E402
from .evaluation import evaluate_codes, evaluate_retrieval  # noqa: E402
from .hash_centers import (  # noqa: E402
    compute_semantic_clusters,
    generate_hash_centers,
    load_hash_centers,
    save_hash_centers,
)
from .hub import enable_remote_code, render_model_card, write_model_card  # noqa: E402
from .modeling_s5vh import S5VHModel, S5VHModelOutput, S5VHPreTrainedModel, binarize, pack_codes
from .retrieval import HammingIndex  # noqa: E402
from .selective_scan import selective_scan, selective_scan_fast, selective_scan_reference
from .trainer import PseudoLabelStore, RetrievalEvaluationCallback, S5VHTrainer, s5vh_training_arguments  # noqa: E402

AutoConfig.register(S5VHConfig.model_type, S5VHConfig, exist_ok=True)
AutoModel.register(S5VHConfig, S5VHModel, exist_ok=True)
enable_remote_code()
S5VHModel.model_card_writer = write_model_card

__version__ = "0.1.0"

__all__ = [
    "HammingIndex",
    "PseudoLabelStore",
    "RetrievalEvaluationCallback",
    "S5VHTrainer",
    "TwoViewCollator",
    "compute_semantic_clusters",
    "enable_remote_code",
    "evaluate_codes",
    "evaluate_retrieval",
    "generate_hash_centers",
    "import_h5_features",
    "load_feature_dataset",
    "load_hash_centers",
    "push_feature_dataset",
    "render_model_card",
    "s5vh_training_arguments",
    "save_hash_centers",
    "write_model_card",
    "MODEL_SIZES",
    "S5VHConfig",
    "S5VHModel",
    "S5VHModelOutput",
    "S5VHPreTrainedModel",
    "binarize",
    "pack_codes",
    "selective_scan",
    "selective_scan_fast",
    "selective_scan_reference",
]
