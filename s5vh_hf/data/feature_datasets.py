"""Frame-feature datasets: the parquet-shard schema, loading from the Hub or a local folder, import of the
literature's HDF5 + ``.mat`` files, publishing, and the two-view training collator.

Schema of a feature dataset (one row per video)::

    video_id    string
    features    Array2D(shape=(None, D)), float16 or float32   — [T, D], T may differ between videos
    num_frames  int32
    labels      Sequence(int64)                               — class ids (multi-label allowed); null if unknown
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..model.batching import pad_videos, progress_bar
from ..model.commits import is_inside, reading
from .dataset_card import render_dataset_card
from .masking import two_view_visible_masks
from .shards import (
    StagedSplit,
    cast_features,
    check_split_name,
    verify_shard_rows,
    verify_split_shards,
)

REQUIRED_COLUMNS = ("video_id", "features", "num_frames")
FEATURES_DTYPES = ("float16", "float32")


# --------------------------------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------------------------------


def feature_dataset_features(feature_dim: int, dtype: str = "float16", with_labels: bool = True):
    """The ``datasets.Features`` of a feature dataset with D = ``feature_dim``."""
    import datasets

    if dtype not in FEATURES_DTYPES:
        raise ValueError(f"features dtype must be one of {FEATURES_DTYPES}, got {dtype!r}")
    columns = {
        "video_id": datasets.Value("string"),
        "features": datasets.Array2D(shape=(None, feature_dim), dtype=dtype),
        "num_frames": datasets.Value("int32"),
    }
    if with_labels:
        columns["labels"] = datasets.Sequence(datasets.Value("int64"))
    return datasets.Features(columns)


def feature_dim_of(dataset: Any) -> int:
    """D of a loaded feature dataset (from its ``features`` column type)."""
    column = dataset.features.get("features") if dataset.features is not None else None
    shape = getattr(column, "shape", None)
    if shape is None or len(shape) != 2 or shape[1] is None:
        raise ValueError(f"column 'features' must be Array2D(shape=(None, D)); got {column!r}")
    return int(shape[1])


def validate_feature_dataset(dataset: Any, name: str = "dataset") -> int:
    """Check the columns and feature type of one split; returns D."""
    columns = list(dataset.features or {})
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise ValueError(f"{name} is missing column(s) {missing}; expected {list(REQUIRED_COLUMNS)} (+ 'labels')")
    return feature_dim_of(dataset)


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


# --------------------------------------------------------------------------------------------------------------
# HDF5 + .mat import
# --------------------------------------------------------------------------------------------------------------


def read_mat_labels(labels_mat: str | os.PathLike, key: str | None = None, split: str | None = None) -> np.ndarray:
    """Read a multi-hot label matrix ``[N, C]`` from a MATLAB file (v5 via scipy, v7.3 via h5py).

    ``key`` defaults to ``labels``; ActivityNet's ``re_label`` (database) and ``q_label`` (queries) are found
    automatically when ``labels`` is absent (``split`` picks between them).
    """
    path = Path(labels_mat)
    if not path.is_file():
        raise FileNotFoundError(f"no label file at {path}")
    variables = _read_mat_variables(path)
    if key is None:
        candidates = ["labels"]
        if split in ("query", "queries", "test"):
            candidates += ["q_label", "re_label"]
        else:
            candidates += ["re_label", "q_label"]
        key = next((c for c in candidates if c in variables), None)
        if key is None:
            raise ValueError(f"{path} has none of the label keys {candidates} (found {sorted(variables)})")
    if key not in variables:
        raise ValueError(f"{path} has no key {key!r} (found {sorted(variables)})")
    matrix = np.asarray(variables[key])
    if matrix.ndim != 2:
        raise ValueError(f"{path}[{key!r}] must be a 2-D multi-hot matrix, got shape {matrix.shape}")
    if not np.all(np.isin(np.unique(matrix), (0, 1))):
        raise ValueError(f"{path}[{key!r}] must be multi-hot (0/1)")
    return matrix.astype(bool)


def _read_mat_variables(path: Path) -> dict[str, Any]:
    import h5py
    import scipy.io

    if h5py.is_hdf5(path):  # MATLAB v7.3 files are HDF5; their matrices are stored transposed
        with h5py.File(path, "r") as handle:
            return {k: np.asarray(handle[k]).T for k in handle.keys() if isinstance(handle[k], h5py.Dataset)}
    try:
        return {k: v for k, v in scipy.io.loadmat(path).items() if not k.startswith("__")}
    except Exception as error:  # noqa: BLE001 - scipy raises many types for corrupt files (MatReadError, TypeError, …)
        raise ValueError(f"{path} is not a readable MATLAB file: {error}") from error


def import_h5_features(
    features_h5: str | os.PathLike,
    out_dir: str | os.PathLike,
    split: str,
    labels_mat: str | os.PathLike | None = None,
    label_key: str | None = None,
    shard_size: int = 2048,
    dtype: str = "float16",
    feats_key: str = "feats",
    video_ids: Sequence[str] | None = None,
    read_chunk: int = 64,
    show_progress_bar: bool | None = None,
    feature_extractor: str | None = None,
) -> list[Path]:
    """Convert the literature's HDF5 features (+ ``.mat`` labels) into parquet shards of one split.

    Writes ``out_dir/data/<split>-XXXXX-of-YYYYY.parquet`` and (re)writes ``out_dir/README.md`` so that
    ``datasets`` and the Hub read the folder as-is. Reads ``read_chunk`` videos at a time (memory stays at a
    few chunks, whatever the file size). Shards are written to a temporary folder and moved into place only
    when the whole split converted, so a failure never leaves a partial split behind.

    Returns the written shard paths.
    """
    import h5py
    import pyarrow.parquet as pq

    features_h5, out_dir = Path(features_h5), Path(out_dir)
    if not features_h5.is_file():
        raise FileNotFoundError(f"no HDF5 feature file at {features_h5}")
    check_split_name(split)
    for name, value in (("shard_size", shard_size), ("read_chunk", read_chunk)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    try:
        handle = h5py.File(features_h5, "r")
    except OSError as error:
        raise ValueError(f"{features_h5} is not a readable HDF5 file (truncated or corrupt?): {error}") from error
    with handle:
        if feats_key not in handle:
            raise ValueError(f"{features_h5} has no dataset {feats_key!r} (found {list(handle.keys())})")
        feats = handle[feats_key]
        if feats.ndim != 3:
            raise ValueError(f"{features_h5}[{feats_key!r}] must be [N, T, D], got shape {feats.shape}")
        n_videos, n_frames, feature_dim = feats.shape
        if n_videos == 0:
            raise ValueError(f"{features_h5}[{feats_key!r}] holds no videos (empty split)")
        if n_frames == 0 or feature_dim == 0:
            raise ValueError(f"{features_h5}[{feats_key!r}] has shape {feats.shape}: videos with no frames (T = 0) or "
                             "frames with no values (D = 0) are refused")  # fmt: skip
        if feats.dtype.kind not in "fiu":
            raise ValueError(f"{features_h5}[{feats_key!r}] holds {feats.dtype} values; frame features must be real "
                             "numbers (complex values would lose their imaginary part)")  # fmt: skip
        labels = None
        if labels_mat is not None:
            labels = read_mat_labels(labels_mat, label_key, split)
            if len(labels) != n_videos:
                raise ValueError(f"{labels_mat} has {len(labels)} label rows but {features_h5} has {n_videos} videos")
        if video_ids is None:
            video_ids = [f"{split}-{i:06d}" for i in range(n_videos)]
        elif len(video_ids) != n_videos:
            raise ValueError(f"{len(video_ids)} video ids for {n_videos} videos")
        # Every split carries a labels column (null where unknown): splits of one config share one schema.
        schema = feature_dataset_features(feature_dim, dtype).arrow_schema
        n_shards = max(1, math.ceil(n_videos / shard_size))
        with StagedSplit(out_dir, split, n_shards, feature_extractor) as staged:
            progress = progress_bar(
                None, show_progress_bar, f"Converting {features_h5.name}", total=n_videos, unit="video"
            )
            for shard in range(n_shards):
                first, last = shard * shard_size, min(n_videos, (shard + 1) * shard_size)
                with pq.ParquetWriter(staged.shard_path(shard), schema) as writer:
                    for start in range(first, last, read_chunk):
                        stop = min(last, start + read_chunk)
                        try:
                            block = np.asarray(feats[start:stop])
                        except (OSError, RuntimeError) as error:
                            raise ValueError(
                                f"{features_h5}: cannot read videos {start}–{stop - 1} (truncated or corrupt?): {error}"
                            ) from error
                        ids = list(video_ids[start:stop])
                        rows = {
                            "video_id": ids,
                            "features": cast_features(block, dtype, ids, str(features_h5)),
                            "num_frames": np.full(stop - start, n_frames, dtype=np.int32),
                            "labels": [np.flatnonzero(row).tolist() for row in labels[start:stop]]
                            if labels is not None
                            else [None] * (stop - start),
                        }
                        writer.write_table(_arrow_table(rows, schema))
                        progress.update(stop - start)
            progress.close()
            final = staged.commit()
        return final


def write_feature_split(
    out_dir: str | os.PathLike,
    split: str,
    videos: Sequence[np.ndarray],
    video_ids: Sequence[str],
    labels: Sequence[Sequence[int]] | None = None,
    shard_size: int = 2048,
    dtype: str = "float16",
    feature_extractor: str | None = None,
) -> list[Path]:
    """Write in-memory videos (a list of ``[T_i, D]`` arrays) as parquet shards of one split, same layout and
    atomicity as :func:`import_h5_features`."""
    import pyarrow.parquet as pq

    out_dir = Path(out_dir)
    check_split_name(split)
    if not videos:
        raise ValueError(f"split {split!r} has no videos")
    if len(video_ids) != len(videos) or (labels is not None and len(labels) != len(videos)):
        raise ValueError("videos, video_ids and labels must have the same length")
    if isinstance(shard_size, bool) or not isinstance(shard_size, (int, np.integer)) or shard_size < 1:
        raise ValueError(f"shard_size must be a positive integer, got {shard_size!r}")
    feature_dim = int(np.asarray(videos[0]).shape[-1])
    schema = feature_dataset_features(feature_dim, dtype).arrow_schema
    n_shards = max(1, math.ceil(len(videos) / shard_size))
    with StagedSplit(out_dir, split, n_shards, feature_extractor) as staged:
        for shard in range(n_shards):
            part = slice(shard * shard_size, (shard + 1) * shard_size)
            ids = list(video_ids[part])
            features = []
            for index, (video_id, video) in enumerate(zip(ids, videos[part])):
                video = np.asarray(video)
                if video.ndim != 2 or video.shape[1] != feature_dim or len(video) == 0:
                    raise ValueError(f"video {shard * shard_size + index} ({video_id}) has shape {video.shape}, "
                                     f"expected [T ≥ 1, {feature_dim}]")  # fmt: skip
                if video.dtype.kind not in "fiu":
                    raise ValueError(f"video {shard * shard_size + index} ({video_id}) holds {video.dtype} values; "
                                     "frame features must be real numbers")  # fmt: skip
                features.append(cast_features(video[None], dtype, [video_id], "write_feature_split")[0])
            rows = {
                "video_id": ids,
                "features": features,
                "num_frames": np.array([len(v) for v in features], dtype=np.int32),
                "labels": [list(map(int, np.atleast_1d(row))) for row in labels[part]]
                if labels is not None
                else [None] * len(ids),
            }
            pq.write_table(_arrow_table(rows, schema), staged.shard_path(shard))
        final = staged.commit()
    return final


def _arrow_table(rows: dict[str, Any], schema):
    """Build an Arrow table for the schema; ``features`` may be a ``[n, T, D]`` array or a list of ``[T_i, D]``."""
    import pyarrow as pa

    features = rows["features"]
    if isinstance(features, np.ndarray) and features.ndim == 3:  # one block [n, T, D]: no per-video copies
        feature_dim = features.shape[2]
        row_lengths = np.full(len(features), features.shape[1], dtype=np.int32)
        flat = pa.array(np.ascontiguousarray(features).reshape(-1))
    else:
        frames = [np.ascontiguousarray(v) for v in features]
        feature_dim = frames[0].shape[1]
        row_lengths = np.array([len(f) for f in frames], dtype=np.int32)
        flat = pa.array(np.concatenate([f.reshape(-1) for f in frames]))
    # datasets stores Array2D(shape=(None, D)) as list<list<value>>; build the nested offsets directly.
    frame_offsets = pa.array(np.arange(0, row_lengths.sum() * feature_dim + 1, feature_dim, dtype=np.int32))
    frame_lists = pa.ListArray.from_arrays(frame_offsets, flat)
    video_offsets = pa.array(np.concatenate([[0], np.cumsum(row_lengths)]).astype(np.int32))
    video_lists = pa.ListArray.from_arrays(video_offsets, frame_lists)
    columns = {name: rows[name] for name in schema.names if name != "features"}
    arrays = []
    for field in schema:
        if field.name == "features":
            storage = video_lists.cast(field.type.storage_type)
            arrays.append(pa.ExtensionArray.from_storage(field.type, storage))
        else:
            arrays.append(pa.array(columns[field.name], type=field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


# --------------------------------------------------------------------------------------------------------------
# Publishing
# --------------------------------------------------------------------------------------------------------------


def push_feature_dataset(
    out_dir: str | os.PathLike,
    repo_id: str,
    token: str | None = None,
    private: bool = False,
    revision: str | None = None,
    commit_message: str = "Upload frame-feature dataset",
    endpoint: str | None = None,
) -> list[str]:
    """Upload a converted feature folder (data/*.parquet and a dataset card rendered for ``repo_id``) to a Hub
    dataset repo, as one commit. Shards on the Hub that the folder no longer has (e.g. after re-converting a
    split into fewer shards) are deleted in the same commit, so the remote split never mixes two conversions.

    Returns the repository paths that were uploaded.
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

    out_dir = Path(out_dir)
    shards = sorted(p.relative_to(out_dir).as_posix() for p in (out_dir / "data").glob("*.parquet"))
    if not shards or not (out_dir / "README.md").is_file():
        raise ValueError(f"{out_dir} is not a converted feature dataset (needs README.md and data/*.parquet)")
    verify_split_shards(out_dir)
    api = HfApi(endpoint=endpoint, token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    if revision is not None:
        api.create_branch(repo_id, branch=revision, repo_type="dataset", exist_ok=True)
    remote = api.list_repo_files(repo_id, repo_type="dataset", revision=revision)
    card = str(render_dataset_card(out_dir, repo_id=repo_id)).encode()
    operations: list[Any] = [CommitOperationAdd("README.md", card)]
    operations += [CommitOperationAdd(shard, str(out_dir / shard)) for shard in shards]
    operations += [
        CommitOperationDelete(path)
        for path in remote
        if path.startswith("data/") and path.endswith(".parquet") and path not in shards
    ]
    api.create_commit(repo_id, operations, commit_message=commit_message, repo_type="dataset", revision=revision)
    return ["README.md", *shards]


# --------------------------------------------------------------------------------------------------------------
# Training collator
# --------------------------------------------------------------------------------------------------------------


class IndexedFeatureDataset(torch.utils.data.Dataset):
    """A map-style view of a feature dataset that yields ``{"features", "video_index", ...}`` per video, the
    dataset index being what the pseudo-label store is keyed by."""

    def __init__(self, dataset: Any) -> None:
        validate_feature_dataset(dataset)
        self.dataset = dataset.with_format("numpy", columns=["features", "num_frames"])

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        row = self.dataset[int(index)]
        return {"features": row["features"], "num_frames": int(row["num_frames"]), "video_index": int(index)}


class TwoViewCollator:
    """Collate videos into a padded batch with the two MAE views of spec §2.

    Input: a list of dicts with ``features`` ``[T_i, D]`` (and optionally ``video_index``). Output tensors:
    ``features`` ``[B, T, D]`` float32, ``frame_mask`` ``[B, T]``, ``visible_mask_1`` / ``visible_mask_2``
    ``[B, T]`` and ``video_index`` ``[B]`` int64.

    Randomness comes from a private generator when ``seed`` is given, else from torch's global generator. With
    ``draw_views=False`` the collator only pads, and the views are left to the consumer: ``S5VHTrainer`` draws
    them inside the training step, after the Trainer has restored the checkpointed RNG on resume, which a
    dataloader-side draw would precede.
    """

    def __init__(
        self, mask_ratio: float, seed: int | None = None, feature_dim: int | None = None, draw_views: bool = True
    ) -> None:
        if draw_views and not (isinstance(mask_ratio, (int, float)) and 0 < mask_ratio < 1):
            raise ValueError(f"mask_ratio must be in (0, 1) to draw training views, got {mask_ratio!r}")
        self.mask_ratio = mask_ratio
        self.draw_views = draw_views
        self.feature_dim = feature_dim
        self.generator = torch.Generator().manual_seed(seed) if seed is not None else None

    def __call__(self, examples: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if not examples:
            raise ValueError("cannot collate an empty batch")
        videos = []
        for position, example in enumerate(examples):
            if "features" not in example:
                raise ValueError(f"example {position} has no 'features' (keys: {sorted(example)})")
            video = torch.as_tensor(np.asarray(example["features"]), dtype=torch.float32)
            if video.ndim != 2 or video.shape[0] < 2:
                raise ValueError(f"example {position}: features must be [T ≥ 2, D], got {tuple(video.shape)}")
            if self.feature_dim is not None and video.shape[1] != self.feature_dim:
                raise ValueError(
                    f"example {position}: feature dimension mismatch, expected D={self.feature_dim}, got {video.shape[1]}"
                )
            if not bool(torch.isfinite(video).all()):  # checked here, on the CPU, so the model need not
                name = example.get("video_id", example.get("video_index", position))
                raise ValueError(f"video {name!r} of the batch has NaN or Inf features")
            videos.append(video)
        dims = {v.shape[1] for v in videos}
        if len(dims) > 1:
            raise ValueError(f"examples disagree on the feature dimension: {sorted(dims)}")
        features, frame_mask = pad_videos(videos)
        indices = [example.get("video_index", position) for position, example in enumerate(examples)]
        batch = {
            "features": features,
            "frame_mask": frame_mask,
            "video_index": torch.tensor(indices, dtype=torch.int64),
        }
        if self.draw_views:
            batch["visible_mask_1"], batch["visible_mask_2"] = two_view_visible_masks(
                frame_mask, self.mask_ratio, self.generator
            )
        return batch
