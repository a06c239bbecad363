"""Import of the video-hashing literature's files: HDF5 frame features ``[N, T, D]`` and ``.mat`` labels, converted
into the shards of one split (read a chunk of videos at a time)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..model.batching import progress_bar
from .schema import feature_dataset_features
from .shards import StagedSplit, cast_features, check_split_name
from .writing import arrow_table


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
                        writer.write_table(arrow_table(rows, schema))
                        progress.update(stop - start)
            progress.close()
            final = staged.commit()
        return final
