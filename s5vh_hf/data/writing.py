"""Writing in-memory videos as the parquet shards of one split (atomically, with the dataset card)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .schema import feature_dataset_features
from .shards import StagedSplit, cast_features, check_split_name


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
            pq.write_table(arrow_table(rows, schema), staged.shard_path(shard))
        final = staged.commit()
    return final


def arrow_table(rows: dict[str, Any], schema):
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
