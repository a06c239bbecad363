"""Loading a feature dataset from the Hub or a local folder, with everything checked before ``datasets`` reads it."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..model.commits import is_inside, reading
from .schema import REQUIRED_COLUMNS, validate_feature_dataset
from .shards import verify_shard_rows, verify_split_shards


def load_feature_dataset(
    path_or_repo_id: str | os.PathLike,
    split: str | None = None,
    streaming: bool = False,
    revision: str | None = None,
    **load_kwargs: Any,
):
    """Load a feature dataset from a Hub dataset repo id or a local folder of parquet shards.

    Returns a ``Dataset`` (memory-mapped Arrow, or ``IterableDataset`` when ``streaming``) when ``split`` is
    given, else a ``DatasetDict``/``IterableDatasetDict`` of every split. Every split is checked for the schema,
    and all splits must share one feature dimension.
    """
    source = str(path_or_repo_id)
    if os.path.isdir(source):
        # waits for a writer in progress; completes a split write a kill interrupted (see commits.reading)
        with reading(source):
            return _load_checked(source, split, streaming, revision, load_kwargs, local=True)
    return _load_checked(source, split, streaming, revision, load_kwargs, local=False)


def _load_checked(source: str, split: str | None, streaming: bool, revision: str | None, load_kwargs: dict[str, Any],
                  local: bool):  # fmt: skip
    import datasets

    if local:
        if Path(source, "data").is_dir():
            verify_split_shards(source)
        check_card_data_files(source)
        shards = sorted(Path(source).rglob("*.parquet"))
        shards = [p for p in shards if not any(part.startswith(".") for part in p.relative_to(source).parts)]
        outside = [str(p) for p in shards if not is_inside(source, p)]
        if outside:
            raise ValueError(f"{source}: {outside[0]} is a link to a file outside the folder; refusing to read it")
        if not shards:
            raise ValueError(f"{source} holds no parquet shards (expected data/<split>-XXXXX-of-YYYYY.parquet)")
        # datasets (5.x) can hand back a stale Arrow cache for a rewritten folder of the same name; keying the
        # cache on the shards' paths, sizes and modification times rules that out.
        cache = os.path.join(datasets.config.HF_DATASETS_CACHE, "s5vh-local", _fingerprint(shards))
        _verify_local_shards(source, shards, split, cache)
        load_kwargs.setdefault("cache_dir", cache)
    try:
        loaded = datasets.load_dataset(source, split=split, streaming=streaming, revision=revision, **load_kwargs)
    except ValueError as error:
        if split is not None and "split" in str(error).lower():
            raise ValueError(f"{source} has no split {split!r}: {error}") from error
        raise
    except datasets.exceptions.DatasetGenerationError as error:
        cause = error.__cause__ or error.__context__
        raise ValueError(f"{source}: the shards could not be read ({type(cause).__name__}: {cause})") from error
    splits = {split: loaded} if split is not None else dict(loaded)
    dims = {}
    for split_name, part in splits.items():
        dims[split_name] = validate_feature_dataset(part, f"split {split_name!r} of {source}")
    if len(set(dims.values())) > 1:
        raise ValueError(f"splits of {source} disagree on the feature dimension: {dims}")
    return loaded


def _verify_local_shards(source: str, shards: list[Path], split: str | None, cache: str) -> None:
    """Before ``datasets`` reads a local folder: every split has videos, and every row matches the declared shape
    (:func:`~s5vh_hf.data.shards.verify_shard_rows`). The result is remembered per content fingerprint, so a
    folder is scanned once."""
    marker = Path(cache) / ".s5vh-verified"
    if marker.exists():
        return
    rows: dict[str, int] = {}
    dims: dict[str, dict[int, str]] = {}
    for path in shards:
        name = path.name.split("-")[0]
        dim = _declared_feature_dim(path)
        dims.setdefault(name, {}).setdefault(dim, path.name)
        if len(dims[name]) > 1:
            found = ", ".join(f"D = {d} in {shard}" for d, shard in dims[name].items())
            raise ValueError(f"{source}: the shards of split {name!r} disagree on the feature dimension ({found})")
        rows[name] = rows.get(name, 0) + verify_shard_rows(path, dim)
    empty = sorted(name for name, count in rows.items() if count == 0 and (split is None or name == split))
    if empty:
        raise ValueError(f"{source}: split(s) {empty} hold no videos")
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()


def _data_file_patterns(data_files: Any) -> list[str]:
    """Every path pattern of a card's ``data_files`` (a string, a list, a list of ``{split, path}``, a dict)."""
    if isinstance(data_files, str):
        return [data_files]
    if isinstance(data_files, dict):
        if "path" in data_files:
            return _data_file_patterns(data_files["path"])
        return [p for value in data_files.values() for p in _data_file_patterns(value)]
    if isinstance(data_files, (list, tuple)):
        return [p for item in data_files for p in _data_file_patterns(item)]
    return [] if data_files is None else [str(data_files)]


def check_card_data_files(folder: str | os.PathLike) -> None:
    """Refuse a local dataset card whose ``configs`` (``data_files``, ``data_dir``) name files outside its folder:
    an absolute path, ``..``, a URL or a link leading out would make ``datasets`` read them."""
    from pathlib import PurePosixPath

    card = Path(folder, "README.md")
    if not card.is_file():
        return
    try:
        from huggingface_hub import DatasetCard

        metadata = DatasetCard.load(card).data.to_dict()
    except Exception as error:  # noqa: BLE001 - yaml and huggingface_hub raise several types
        raise ValueError(f"{card}: the card's metadata is not readable: {str(error).splitlines()[0]}") from error
    configs = metadata.get("configs") or []
    for config in configs if isinstance(configs, list) else [configs]:
        if not isinstance(config, dict):
            raise ValueError(f"{card}: configs entry {config!r} is not a mapping")
        patterns = _data_file_patterns(config.get("data_files")) + _data_file_patterns(config.get("data_dir"))
        for pattern in patterns:
            parts = PurePosixPath(pattern.replace("\\", "/")).parts
            if "://" in pattern or pattern.startswith(("/", "~")) or ".." in parts or ":" in pattern.split("/")[0]:
                raise ValueError(f"{card}: data_files pattern {pattern!r} points outside {folder}; refusing to read it")
            for match in Path(folder).glob(pattern):
                if not is_inside(folder, match):
                    raise ValueError(f"{card}: data_files pattern {pattern!r} reaches {match}, a link leading outside "
                                     f"{folder}; refusing to read it")  # fmt: skip


def _declared_feature_dim(path: Path) -> int:
    """D of a shard, from the ``datasets`` features recorded in its schema metadata."""
    import datasets
    import pyarrow.parquet as pq

    try:
        features = datasets.Features.from_arrow_schema(pq.read_schema(path))
    except Exception as error:  # noqa: BLE001 - pyarrow raises several types for torn or foreign files
        raise ValueError(f"{path} is not a readable parquet shard: {str(error).splitlines()[0]}") from error
    missing = [c for c in REQUIRED_COLUMNS if c not in features]
    if missing:
        raise ValueError(f"{path} is missing column(s) {missing}; expected {list(REQUIRED_COLUMNS)} (+ 'labels')")
    column = features["features"]
    if getattr(column, "shape", None) is None or column.shape[1] is None:
        raise ValueError(f"{path}: no column 'features' of type Array2D(shape=(None, D)); got {column!r}")
    return int(column.shape[1])


def _fingerprint(files: Sequence[Path]) -> str:
    import hashlib

    digest = hashlib.sha256()
    for path in files:
        stat = path.stat()
        digest.update(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def videos_and_labels(split: Any, require_labels: bool = True) -> tuple[list[np.ndarray], list[list[int] | None]]:
    """A loaded split (or a ``(videos, labels)`` pair, passed through) → a list of ``[T_i, D]`` arrays and their
    label lists. With ``require_labels``, a split without labels is a clear error."""
    if isinstance(split, tuple):
        return split
    validate_feature_dataset(split)
    rows = split.with_format("numpy", columns=["features"])
    videos = [rows[i]["features"] for i in range(len(split))]
    labels = split["labels"] if "labels" in split.column_names else [None] * len(split)
    if require_labels:
        missing = [i for i, row in enumerate(labels) if row is None]
        if missing:
            raise ValueError(f"videos {missing[:10]} of the split have no labels; evaluation needs them")
    return videos, labels
