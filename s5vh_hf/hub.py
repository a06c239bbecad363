"""Sharing on the Hub: model cards rendered from ``model_cards/``, self-contained custom code, and pushing."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

from .modeling_s5vh import S5VHModel, register_with_transformers

TEMPLATE_NAME = "s5vh_model_card.md"
CARD_TAGS = ["video-hashing", "video-retrieval", "mamba", "state-space-model", "self-supervised", "s5vh"]


def enable_remote_code() -> None:
    """Register S5VH with transformers' Auto classes and remote-code saving (already done when the model module
    is imported; kept for explicit calls)."""
    register_with_transformers()


def render_model_card(model: S5VHModel, repo_id: str | None = None, evaluation: dict[str, Any] | None = None):
    """A ``huggingface_hub.ModelCard`` for ``model`` from the package template.

    ``evaluation`` (a ``RetrievalReport.to_dict()``) defaults to ``model.last_evaluation``, the last
    ``evaluate_retrieval`` run on the model; its mAP@K values become ``model-index`` results.
    """
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    config = model.config
    evaluation = evaluation if evaluation is not None else getattr(model, "last_evaluation", None)
    name = repo_id.split("/")[-1] if repo_id else f"s5vh-{config.dataset_name or 'custom'}-{config.code_length}"
    dataset_name = config.dataset_name or "custom"
    eval_results, table = None, ""
    if evaluation:
        eval_results = [
            EvalResult(
                task_type="video-retrieval",
                task_name="Video retrieval by Hamming ranking",
                dataset_type=dataset_name,
                dataset_name=dataset_name,
                metric_type=f"map_at_{k}",
                metric_name=f"mAP@{k} (÷K)",
                metric_value=round(float(v), 4),
            )
            for k, v in evaluation["map_at_k"].items()
        ]
        ks = list(evaluation["map_at_k"])
        table = "\n".join(
            [
                "| metric | " + " | ".join(f"@{k}" for k in ks) + " |",
                "|---|" + "---|" * len(ks),
                "| mAP@K | " + " | ".join(f"{evaluation['map_at_k'][k]:.3f}" for k in ks) + " |",
                "| standard mAP@K | " + " | ".join(f"{evaluation['standard_map_at_k'][k]:.3f}" for k in ks) + " |",
            ]
        )
    card_data = ModelCardData(
        library_name="s5vh-hf",
        license="mit",
        tags=CARD_TAGS,
        datasets=[config.dataset_name] if config.dataset_name else None,
        metrics=["map"],
        model_name=name,
        eval_results=eval_results,
    )
    template = resources.files("s5vh_hf.model_cards").joinpath(TEMPLATE_NAME).read_text()
    return ModelCard.from_template(
        card_data,
        template_str=template,
        model_name=name,
        repo_id=repo_id or f"<user>/{name}",
        feature_dim=config.feature_dim,
        code_length=config.code_length,
        encoder_depth=config.encoder_depth,
        hidden_size=config.hidden_size,
        state_size=config.state_size,
        conv_kernel=config.conv_kernel,
        expand=config.expand,
        tie_rule={"positive": "+1", "negative": "−1", "zero": "0"}[config.sign_tie_rule],
        num_hash_centers=config.num_hash_centers,
        num_parameters=f"{model.num_parameters():,}",
        dataset_name=config.dataset_name,
        contrastive_weight=config.contrastive_weight,
        tau_plus=config.debias_tau_plus,
        contrastive_temperature=config.contrastive_temperature,
        center_weight=config.center_weight,
        center_temperature=config.center_temperature,
        mask_ratio=config.mask_ratio,
        warmup_epochs=config.warmup_epochs,
        smoothing=config.pseudo_label_smoothing,
        training_defaults=config.training_defaults,
        evaluation_table=table,
        evaluation_protocol=(evaluation or {}).get("protocol", ""),
        health=model.training_health,
        initialization=config.initialization,
        feature_normalization=config.feature_normalization,
    )


def write_model_card(model: S5VHModel, save_directory: str | os.PathLike, repo_id: str | None = None) -> Path:
    """Render the card into ``save_directory/README.md``."""
    path = Path(save_directory) / "README.md"
    render_model_card(model, repo_id=repo_id).save(path)
    return path


def push_model_folder(
    folder: str | os.PathLike,
    repo_id: str,
    token: str | None = None,
    private: bool = False,
    endpoint: str | None = None,
) -> str:
    """Push a folder written by ``save_pretrained`` (config, weights, custom code, card) to a model repo."""
    from huggingface_hub import HfApi

    folder = Path(folder)
    if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
        raise ValueError(f"{folder} is not a saved S5VH model (needs config.json and model.safetensors)")
    if not (folder / "README.md").is_file():
        write_model_card(S5VHModel.from_pretrained(folder), folder, repo_id=repo_id)
    api = HfApi(endpoint=endpoint, token=token)
    url = api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model", commit_message="Upload S5VH model")
    return str(url)
