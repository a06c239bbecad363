"""The README.md of a feature dataset, as a ``huggingface_hub.DatasetCard``: Hub metadata (license, task and
size categories, ``configs``, ``dataset_info`` with features and split sizes) and a body generated from the
shards on disk. Values given once (license, feature extractor, pretty name) are kept when the card is rewritten.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..model.commits import write_file_atomically

CARD_TAGS = ["video-hashing", "video-features", "video-retrieval", "s5vh-hf"]
PAPER_URL = "https://arxiv.org/abs/2412.14518"
KEPT_FIELDS = ("license", "feature_extractor", "pretty_name")


def size_category(num_rows: int) -> str:
    """The Hub's ``size_categories`` bucket of a row count."""
    for bound, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if num_rows < bound:
            return name
    return "1M<n<10M" if num_rows < 10_000_000 else "n>10M"


def _split_shards(folder: Path) -> dict[str, list[Path]]:
    splits: dict[str, list[Path]] = {}
    for path in sorted((folder / "data").glob("*.parquet")):
        splits.setdefault(path.name.split("-")[0], []).append(path)
    return splits


def _existing_values(folder: Path) -> dict[str, Any]:
    from huggingface_hub import DatasetCard

    path = folder / "README.md"
    if not path.is_file():
        return {}
    try:
        data = DatasetCard.load(path).data.to_dict()
    except Exception:  # noqa: BLE001 - an unreadable old card is simply replaced
        return {}
    return {key: data[key] for key in KEPT_FIELDS if data.get(key)}


def render_dataset_card(
    folder: str | os.PathLike,
    repo_id: str | None = None,
    license: str | None = None,
    feature_extractor: str | None = None,
    pretty_name: str | None = None,
    shards: dict[str, list[Path]] | None = None,
):
    """A ``DatasetCard`` for the feature folder ``folder`` (``data/<split>-XXXXX-of-YYYYY.parquet``).

    ``license``, ``feature_extractor`` (e.g. ``"VGG16 fc7, ImageNet"``) and ``pretty_name`` default to the values
    of the folder's current card; the license to ``"other"`` when never given. ``repo_id`` names the dataset in the
    usage snippet (default: a load from the local folder). ``shards`` (split → shard files) describes the
    dataset instead of ``folder/data`` (a writer renders the card of the split it is about to commit).
    """
    import datasets
    import pyarrow.parquet as pq
    from huggingface_hub import DatasetCard, DatasetCardData

    folder = Path(folder)
    splits = shards if shards is not None else _split_shards(folder)
    if not splits:
        raise ValueError(f"{folder} has no feature shards under data/")
    kept = _existing_values(folder)
    license = license or kept.get("license") or "other"
    feature_extractor = feature_extractor or kept.get("feature_extractor")
    pretty_name = pretty_name or kept.get("pretty_name")
    rows = {name: sum(pq.ParquetFile(p).metadata.num_rows for p in paths) for name, paths in splits.items()}
    sizes = {name: sum(p.stat().st_size for p in paths) for name, paths in splits.items()}
    features = datasets.Features.from_arrow_schema(pq.read_schema(next(iter(splits.values()))[0]))
    column = features.get("features")
    feature_dim = int(column.shape[1]) if getattr(column, "shape", None) else None
    dtype = getattr(column, "dtype", None)
    card_data = DatasetCardData(
        license=license,
        pretty_name=pretty_name,
        task_categories=["feature-extraction"],
        size_categories=[size_category(sum(rows.values()))],
        tags=CARD_TAGS,
        configs=[{"config_name": "default", "data_files": [{"split": s, "path": f"data/{s}-*"} for s in splits]}],
        feature_extractor=feature_extractor,
        feature_dim=feature_dim,
    )
    split_infos = datasets.SplitDict()
    for name in splits:
        split_infos.add(datasets.SplitInfo(name=name, num_examples=rows[name], num_bytes=sizes[name]))
    info = datasets.DatasetInfo(features=features, splits=split_infos, config_name="default")
    datasets.info.DatasetInfosDict({"default": info}).to_dataset_card_data(card_data)
    extractor = (
        f"Frame features were extracted with **{feature_extractor}** ({feature_dim}-d, stored as {dtype})."
        if feature_extractor
        else f"Frame features are {feature_dim}-d, stored as {dtype}; the extractor that produced them was not "
        "recorded (pass `feature_extractor=` when writing the dataset). Models trained on it expect the same one."
    )
    table = "\n".join(f"| {name} | {rows[name]:,} | {len(splits[name])} |" for name in splits)
    source = f'"{repo_id}"' if repo_id else f'"{folder.name}"  # the local folder, or its Hub repo id once pushed'
    first = next(iter(splits))
    body = f"""
# {pretty_name or "Frame-feature dataset for video hashing"}

Per-video frame features for self-supervised video hashing with s5vh-hf (S5VH, [AAAI 2025]({PAPER_URL})).
{extractor}

## Structure

One row per video:

| column | type | meaning |
|---|---|---|
| `video_id` | string | the video's identifier |
| `features` | `[T, {feature_dim}]` {dtype} | one feature vector per sampled frame; T may differ between videos |
| `num_frames` | int32 | T |
| `labels` | list of int64 | class ids (multi-label allowed); null when unknown |

| split | videos | shards |
|---|---|---|
{table}

## Use

```python
from s5vh_hf import load_feature_dataset

dataset = load_feature_dataset({source}, split="{first}")
```

Labels, where present, are for evaluation only: S5VH trains without them.
"""
    return DatasetCard(f"---\n{card_data.to_yaml()}\n---\n{body}")


def write_dataset_card(folder: str | os.PathLike, **options: Any) -> Path:
    """Render :func:`render_dataset_card` into ``folder/README.md`` atomically (temporary name + rename)."""
    folder = Path(folder)
    return write_file_atomically(folder / "README.md", str(render_dataset_card(folder, **options)))
