"""The schema of a feature dataset (one row per video)::

video_id    string
features    Array2D(shape=(None, D)), float16 or float32   — [T, D], T may differ between videos
num_frames  int32
labels      Sequence(int64)                               — class ids (multi-label allowed); null if unknown
"""

from __future__ import annotations

from typing import Any

REQUIRED_COLUMNS = ("video_id", "features", "num_frames")
FEATURES_DTYPES = ("float16", "float32")


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
