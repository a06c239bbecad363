"""Frame encoders: images ``[N, H, W, 3]`` uint8 → features ``[N, D]`` float32, the input of S5VH.

Named choices match the features of the video-hashing literature, plus a modern tower:

- ``"vgg16"``: ImageNet VGG16, fc7 after ReLU, 4096-d — FCVID, UCF101 and HMDB51 features and the authors'
  checkpoints for them. The architecture is built here (no timm needed); weights come from the Hub checkpoint
  ``timm/vgg16.tv_in1k`` (torchvision's ImageNet weights).
- ``"resnet50"``: ImageNet ResNet-50, global-average-pooled, 2048-d — ActivityNet (``microsoft/resnet-50``
  through transformers).
- ``"dinov2"``: DINOv2 ViT-S/14 CLS token, 384-d (``facebook/dinov2-small``); ``"clip"``: CLIP ViT-B/32 image
  embedding, 512-d (``openai/clip-vit-base-patch32``).
- Any other Hub id or local folder loads with ``AutoModel`` + ``AutoImageProcessor``; the feature is the pooled
  output (``pooler_output``, ``image_embeds``), else the mean of the last hidden state.

Preprocessing for ``vgg16``: shorter side to 256, centre crop 224, ImageNet mean/std (torchvision's). Transformers
models use their own image processor. What each preset expects is in the README.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..model.commits import write_file_atomically

NAMED_ENCODERS = {
    "vgg16": "timm/vgg16.tv_in1k",
    "resnet50": "microsoft/resnet-50",
    "dinov2": "facebook/dinov2-small",
    "clip": "openai/clip-vit-base-patch32",
}
VGG_CONFIG_FILE = "s5vh_vgg.json"
DECODE_SIDE = 256  # frames are shrunk to this shorter side as they are decoded (VGG's resize; ViTs crop 224 of it)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
VGG16_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class VGGFeatures(nn.Module):
    """VGG16 up to fc7 + ReLU (torchvision's layout; ``width`` scales the channels and ``hidden`` the fc layers,
    for tests). Input ``[N, 3, 224, 224]`` normalised images → ``[N, hidden]``."""

    def __init__(self, width: float = 1.0, hidden: int = 4096) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for item in VGG16_LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                out = max(1, int(item * width))
                layers += [nn.Conv2d(channels, out, 3, padding=1), nn.ReLU(inplace=True)]
                channels = out
        self.features = nn.Sequential(*layers)
        self.fc6 = nn.Linear(channels * 7 * 7, hidden)
        self.fc7 = nn.Linear(hidden, hidden)
        self.width, self.hidden = width, hidden
        for module in self.modules():  # torchvision's VGG initialisation (random weights keep their scale)
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:  # noqa: D102
        x = F.adaptive_avg_pool2d(self.features(images), 7).flatten(1)
        return F.relu(self.fc7(F.relu(self.fc6(x))))

    def load_checkpoint(self, state: dict[str, torch.Tensor]) -> None:
        """Load torchvision (``classifier.0``/``classifier.3``) or timm (``pre_logits.fc1``/``fc2``, convolutions)
        VGG16 weights, or this module's own keys."""
        mapped = {}
        for key, value in state.items():
            if key.startswith(("classifier.0.", "pre_logits.fc1.")):
                key = "fc6." + key.split(".")[-1]
            elif key.startswith(("classifier.3.", "pre_logits.fc2.")):
                key = "fc7." + key.split(".")[-1]
            elif not key.startswith(("features.", "fc6.", "fc7.")):
                continue  # the classifier head (fc8) is not a feature
            if key.endswith("weight") and key.startswith(("fc6", "fc7")) and value.ndim == 4:
                value = value.flatten(1)  # timm keeps fc6/fc7 as convolutions
            mapped[key] = value
        self.load_state_dict(mapped, strict=True)


@dataclass
class FrameEncoder:
    """A frame encoder ready to run: ``encode(images)`` → ``[N, feature_dim]`` float32 features. ``frame_side``
    is the shorter side frames are decoded at (no larger than the encoder's own resize needs)."""

    name: str
    source: str
    feature_dim: int
    model: nn.Module
    preprocess: Any
    kind: str
    frame_side: int = DECODE_SIDE

    @property
    def identity(self) -> dict[str, Any]:
        """What an index records to refuse queries from another extractor."""
        return {"name": self.name, "source": self.source, "feature_dim": self.feature_dim}

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.inference_mode()
    def encode(self, images: np.ndarray) -> np.ndarray:
        """``images`` ``[N, H, W, 3]`` uint8 RGB → ``[N, feature_dim]`` float32."""
        if self.kind == "vgg":
            batch = _imagenet_tensor(images).to(self.device)
            return self.model(batch).float().cpu().numpy()
        inputs = self.preprocess(images=list(images), return_tensors="pt").to(self.device)
        outputs = self.model(**inputs)
        for name in ("image_embeds", "pooler_output"):
            value = getattr(outputs, name, None)
            if value is not None:
                return value.flatten(1).float().cpu().numpy()
        return outputs.last_hidden_state.mean(1).float().cpu().numpy()


def _imagenet_tensor(images: np.ndarray) -> torch.Tensor:
    """Resize the shorter side to 256, centre-crop 224, scale to [0, 1] and normalise (torchvision's recipe)."""
    tensor = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
    height, width = tensor.shape[-2:]
    scale = 256 / min(height, width)
    tensor = F.interpolate(tensor, size=(round(height * scale), round(width * scale)), mode="bilinear",
                           antialias=True, align_corners=False)  # fmt: skip
    top, left = (tensor.shape[-2] - 224) // 2, (tensor.shape[-1] - 224) // 2
    tensor = tensor[..., top : top + 224, left : left + 224]
    mean = torch.tensor(IMAGENET_MEAN)[None, :, None, None]
    std = torch.tensor(IMAGENET_STD)[None, :, None, None]
    return (tensor - mean) / std


def save_vgg(model: VGGFeatures, folder: str | os.PathLike) -> Path:
    """Save a :class:`VGGFeatures` (e.g. a small random one for tests) as a folder :func:`load_frame_encoder`
    reads."""
    from safetensors.torch import save

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_file_atomically(
        folder / "model.safetensors", save({k: v.contiguous() for k, v in model.state_dict().items()})
    )
    write_file_atomically(folder / VGG_CONFIG_FILE, json.dumps({"width": model.width, "hidden": model.hidden}))
    return folder


def load_frame_encoder(
    name_or_path: str | os.PathLike, device: str | torch.device | None = None, **load_kwargs: Any
) -> FrameEncoder:
    """A named encoder (``vgg16``, ``resnet50``, ``dinov2``, ``clip``), a Hub id or a local folder — a
    transformers vision model with its image processor, or a VGG saved by :func:`save_vgg`."""
    name = str(name_or_path)
    source = NAMED_ENCODERS.get(name, name)
    if Path(source).is_dir():  # a local folder: recorded absolute, so that an index knows it from anywhere
        name = source = os.path.abspath(source)
    device = (
        torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    )
    folder = Path(source)
    if name == "vgg16" or (folder / VGG_CONFIG_FILE).is_file():
        return _load_vgg(name, source, device, load_kwargs)
    from transformers import AutoImageProcessor, AutoModel

    processor = AutoImageProcessor.from_pretrained(source, **load_kwargs)
    model = AutoModel.from_pretrained(source, **load_kwargs)
    if hasattr(model, "vision_model") and hasattr(model, "get_image_features"):  # CLIP-like: the image tower
        from transformers import CLIPVisionModelWithProjection

        model = CLIPVisionModelWithProjection.from_pretrained(source, **load_kwargs)
    model = model.to(device).eval()
    probe = np.zeros((1, 64, 64, 3), dtype=np.uint8)
    encoder = FrameEncoder(name, source, 0, model, processor, "transformers", _processor_side(processor))
    encoder.feature_dim = int(encoder.encode(probe).shape[1])
    return encoder


def _processor_side(processor: Any) -> int:
    """The shorter side an image processor resizes to (at least :data:`DECODE_SIDE`)."""
    size = getattr(processor, "size", None) or {}
    sides = [size.get(key) for key in ("shortest_edge", "height", "width")] if isinstance(size, dict) else [size]
    return max([DECODE_SIDE] + [int(side) for side in sides if isinstance(side, (int, float))])


def _load_vgg(name: str, source: str, device: torch.device, load_kwargs: dict[str, Any]) -> FrameEncoder:
    from safetensors.torch import load_file

    folder = Path(source)
    if folder.is_dir():
        settings = json.loads((folder / VGG_CONFIG_FILE).read_text()) if (folder / VGG_CONFIG_FILE).is_file() else {}
        weights = folder / "model.safetensors"
    else:
        from huggingface_hub import hf_hub_download

        settings, weights = {}, Path(hf_hub_download(source, "model.safetensors", **load_kwargs))
    model = VGGFeatures(**settings)
    model.load_checkpoint(load_file(str(weights)))
    return FrameEncoder(name, source, model.hidden, model.to(device).eval(), None, "vgg")
