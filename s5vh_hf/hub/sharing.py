"""Sharing on the Hub: model cards rendered from ``model_cards/``, self-contained custom code, and pushing."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from ..model.commits import is_inside, write_file_atomically
from ..model.modeling_s5vh import HubIntegration, S5VHModel, install_hub_integration, register_with_transformers

TEMPLATE_NAME = "s5vh_model_card.md"
CARD_TAGS = [
    "custom_code",
    "s5vh-hf",
    "video-hashing",
    "video-retrieval",
    "mamba",
    "state-space-model",
    "self-supervised",
    "s5vh",
]


CODE_READINGS = {
    "mean": "sign of the mean per-frame code (the paper)",
    "mean+ends": "sign of the mean per-frame code blended with the {frames} codes ({ends:.0%} ends)",
    "ends": "sign of the mean of the {frames} codes",
    "attention": "sign of an attention-weighted mean of the per-frame codes",
    "segments": "each group of bits the sign of the mean code of one stretch of time",
}
"""How a config's ``code_pooling`` reads a code, in the card's words."""


def code_reading_words(config: Any) -> str:
    """How ``config`` reads a code, in the card's words (the ends' share and frames filled in)."""
    frames = getattr(config, "code_ends_frames", 1)
    ends = "first and last frames'" if frames == 1 else f"first {frames} and last {frames} frames'"
    pooling = getattr(config, "code_pooling", "mean")
    words = CODE_READINGS.get(pooling, pooling).format(ends=getattr(config, "code_ends_weight", 0.5), frames=ends)
    width = getattr(config, "ends_encoder_width", 0)
    if width and pooling in ("ends", "mean+ends"):
        words += f", the ends read from their own one-block encoder of width {width}"
        source = getattr(config, "ends_encoder_input", "features")
        words += {"encoder": " over the main encoder's output",
                  "both": " over the frames and the main encoder's output"}.get(source, "")  # fmt: skip
    return words


def enable_remote_code() -> None:
    """Register S5VH with transformers' Auto classes and remote-code saving (already done when the model module
    is imported; kept for explicit calls)."""
    register_with_transformers()


HUB_ID_PATTERN = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def is_hub_id(name: str | os.PathLike | None) -> bool:
    """Whether ``name`` is a Hub repo id (``owner/name``) and not an existing local path."""
    if not name:
        return False
    text = str(name)
    return bool(HUB_ID_PATTERN.match(text)) and ".." not in text and not Path(text).exists()


def render_model_card(
    model: S5VHModel,
    repo_id: str | None = None,
    evaluation: dict[str, Any] | None = None,
    extra_tags: Sequence[str] = (),
):
    """A ``huggingface_hub.ModelCard`` for ``model`` from the package template, rendered for ``repo_id``.

    Metadata: ``library_name: transformers`` with the ``custom_code`` tag (the Hub shows the ``AutoModel``
    snippet), ``pipeline_tag: feature-extraction``, the training dataset and ``base_model`` when they are Hub ids,
    and ``model-index`` results from ``evaluation`` (a ``RetrievalReport.to_dict()``, default: the model's
    ``evaluation_results``, its last evaluation).
    """
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    config = model.config
    evaluation = evaluation if evaluation is not None else model.evaluation_results
    name = repo_id.split("/")[-1] if repo_id else f"s5vh-{config.dataset_name or 'custom'}-{config.code_length}"
    dataset_id = model.train_dataset_id if is_hub_id(model.train_dataset_id) else None
    dataset_label = dataset_id or config.dataset_name or "custom"
    base_model = (
        model.fine_tuned_from if is_hub_id(model.fine_tuned_from) and model.fine_tuned_from != repo_id else None
    )
    eval_results, table = None, ""
    if evaluation:
        eval_results = [
            EvalResult(
                task_type="feature-extraction",
                task_name="Video retrieval by Hamming ranking",
                dataset_type=dataset_label,
                dataset_name=dataset_label,
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
    tags = list(dict.fromkeys([*CARD_TAGS, *(model.model_tags or []), *extra_tags]))
    card_data = ModelCardData(
        library_name="transformers",
        pipeline_tag="feature-extraction",
        license="mit",
        tags=tags,
        datasets=[dataset_id] if dataset_id else None,
        base_model=base_model,
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
        code_reading=code_reading_words(config),
        num_hash_centers=config.num_hash_centers,
        num_parameters=f"{model.num_parameters():,}",
        dataset_name=dataset_label if (dataset_id or config.dataset_name) else None,
        base_model=base_model,
        contrastive_weight=config.contrastive_weight,
        tau_plus=config.debias_tau_plus,
        contrastive_temperature=config.contrastive_temperature,
        center_weight=config.center_weight,
        center_temperature=config.center_temperature,
        mask_ratio=config.mask_ratio,
        warmup_epochs=config.warmup_epochs,
        smoothing=config.pseudo_label_smoothing,
        training_arguments=model.training_arguments or {},
        evaluation_table=table,
        evaluation_protocol=(evaluation or {}).get("protocol", ""),
        health=model.training_health,
        initialization=config.initialization,
        feature_normalization=config.feature_normalization,
    )


def write_model_card(
    model: S5VHModel, save_directory: str | os.PathLike, repo_id: str | None = None, extra_tags: Sequence[str] = ()
) -> Path:
    """Render the card for ``repo_id`` into ``save_directory/README.md`` (atomically)."""
    card = render_model_card(model, repo_id=repo_id, extra_tags=extra_tags)
    return write_file_atomically(Path(save_directory) / "README.md", str(card))


WEIGHT_PATTERNS = ["*.safetensors", "*.safetensors.index.json"]
"""Deleted from the repo by a push before the new weights arrive (in the same commit), so that a re-push with
another sharding leaves no stale shard behind."""


UPLOAD_IGNORED = [".*", "checkpoint-*/**", "_*"]
"""Never uploaded from a model folder: hidden files (locks, journals, staging), checkpoints, private files."""


def refuse_links_out(folder: str | os.PathLike, root: str | os.PathLike | None = None) -> None:
    """Raise ``ValueError`` when a file or folder that an upload of ``folder`` would read is a symbolic link
    leading outside it, or outside ``root`` when given (``notes.txt -> ~/.ssh/id_ed25519`` would publish the
    key). Links inside are fine."""
    folder = Path(folder)
    allowed = Path(root) if root is not None else folder
    for current, directories, files in os.walk(folder):
        relative = Path(current).relative_to(folder)
        if relative.parts and relative.parts[0].startswith((".", "_", "checkpoint-")):
            directories[:] = []
            continue
        for name in [*directories, *files]:
            path = Path(current, name)
            if not relative.parts and name.startswith((".", "_")):
                continue
            if path.is_symlink() and not is_inside(allowed, path):
                raise ValueError(f"{path} is a symbolic link to {os.path.realpath(path)}, outside {allowed}; refusing "
                                 "to upload what it points to (copy the file in or remove the link)")  # fmt: skip


def upload_model_folder(
    folder: str | os.PathLike,
    repo_id: str,
    token: str | None = None,
    private: bool | None = None,
    revision: str | None = None,
    commit_message: str | None = None,
    commit_description: str | None = None,
    create_pr: bool = False,
    endpoint: str | None = None,
    links_may_lead_to: str | os.PathLike | None = None,
) -> str:
    """Create ``repo_id`` when needed and upload a saved model folder as one commit (creating the branch
    ``revision`` when it does not exist). A symbolic link leading outside ``folder`` (or outside
    ``links_may_lead_to`` when given) is refused (:func:`refuse_links_out`). Returns the commit URL."""
    from huggingface_hub import HfApi

    refuse_links_out(folder, links_may_lead_to)
    api = HfApi(endpoint=endpoint, token=token)
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    if revision is not None and not revision.startswith("refs/pr"):
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    info = api.upload_folder(
        folder_path=str(folder),
        repo_id=repo_id,
        repo_type="model",
        revision=revision,
        commit_message=commit_message or "Upload S5VH model",
        commit_description=commit_description,
        create_pr=create_pr,
        delete_patterns=WEIGHT_PATTERNS,
        ignore_patterns=UPLOAD_IGNORED,
    )
    return str(info)


def push_model(
    model: S5VHModel,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool | None = None,
    revision: str | None = None,
    commit_message: str | None = None,
    commit_description: str | None = None,
    create_pr: bool = False,
    max_shard_size: int | str | None = "50GB",
    tags: Sequence[str] | None = None,
    endpoint: str | None = None,
) -> str:
    """Save ``model`` with its card rendered for ``repo_id`` (plus ``tags``) into a temporary folder and upload
    it (what ``S5VHModel.push_to_hub`` does). Returns the commit URL."""
    with tempfile.TemporaryDirectory() as folder:
        tags = [tags] if isinstance(tags, str) else list(tags or [])
        model.save_pretrained(folder, max_shard_size=max_shard_size, model_card_repo_id=repo_id, model_card_tags=tags)
        return upload_model_folder(
            folder, repo_id, token=token, private=private, revision=revision, commit_message=commit_message,
            commit_description=commit_description, create_pr=create_pr, endpoint=endpoint,
        )  # fmt: skip


def push_model_folder(
    folder: str | os.PathLike,
    repo_id: str,
    token: str | None = None,
    private: bool = False,
    endpoint: str | None = None,
    revision: str | None = None,
) -> str:
    """Push a folder written by ``save_pretrained`` (config, weights, custom code) to a model repo, with the model
    card rendered anew for ``repo_id`` from the folder's config and card state (the folder's own README.md is
    replaced in the upload, not on disk). Returns the commit URL."""
    folder = Path(folder)
    if not (folder / "config.json").is_file() or not any(folder.glob("model*.safetensors")):
        raise ValueError(f"{folder} is not a saved S5VH model (needs config.json and model.safetensors)")
    refuse_links_out(folder)
    model = S5VHModel.from_pretrained(folder)
    with tempfile.TemporaryDirectory() as staging:
        for item in folder.iterdir():
            if item.is_file() and item.name != "README.md" and not item.name.startswith((".", "_")):
                if not is_inside(folder, item):  # checked above; re-checked at the moment it is linked
                    raise ValueError(f"{item} leads outside {folder}; refusing to upload it")
                os.symlink(item.resolve(), Path(staging) / item.name)
        write_model_card(model, staging, repo_id=repo_id)
        return upload_model_folder(staging, repo_id, token=token, private=private, endpoint=endpoint,
                                   revision=revision, links_may_lead_to=folder)  # fmt: skip


install_hub_integration(
    HubIntegration(write_card=write_model_card, upload_folder=upload_model_folder, push_model=push_model)
)
