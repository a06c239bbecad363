"""s5vh-hf: self-supervised video hashing with selective state spaces (S5VH, AAAI 2025), Hugging Face–native."""

from transformers import AutoConfig, AutoModel

from .configuration_s5vh import MODEL_SIZES, S5VHConfig
from .modeling_s5vh import S5VHModel, S5VHModelOutput, S5VHPreTrainedModel, binarize, pack_codes
from .selective_scan import selective_scan, selective_scan_fast, selective_scan_reference

AutoConfig.register(S5VHConfig.model_type, S5VHConfig, exist_ok=True)
AutoModel.register(S5VHConfig, S5VHModel, exist_ok=True)

__version__ = "0.1.0"

__all__ = [
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
