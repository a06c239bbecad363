"""The parquet shards of a feature dataset: names, writing one split so that it changes atomically (old or new,
never a mix; see :mod:`.commits`), and the checks run before loading — every split holds exactly the shards its
names promise (``<split>-XXXXX-of-YYYYY``), and every row matches the declared shape. One writer per split at a
time; writers of different splits may run concurrently.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from ..model.commits import StagedFiles

SHARD_NAME = re.compile(r"^(?P<split>[^-/]+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.parquet$")


def shard_name(split: str, index: int, count: int) -> str:
    return f"{split}-{index:05d}-of-{count:05d}.parquet"


def check_split_name(split: str) -> None:
    if not isinstance(split, str) or not re.fullmatch(r"[A-Za-z0-9_.]+", split) or split.startswith("."):
        raise ValueError(f"split must be a plain name such as 'train' (letters, digits, _ and .), got {split!r}")


def verify_split_shards(out_dir: str | os.PathLike) -> dict[str, int]:
    """Check that every split under ``out_dir/data`` holds shards ``0 … N−1`` of one count N; returns the
    shard count of each split. Raises ``ValueError`` naming the split and the missing or foreign shards."""
    counts: dict[str, set[int]] = {}
    indices: dict[str, set[int]] = {}
    for path in Path(out_dir, "data").glob("*.parquet"):
        match = SHARD_NAME.match(path.name)
        if match is None:
            raise ValueError(f"{path}: not a shard name <split>-XXXXX-of-YYYYY.parquet")
        split = match.group("split")
        counts.setdefault(split, set()).add(int(match.group("count")))
        indices.setdefault(split, set()).add(int(match.group("index")))
    result = {}
    for split, found in counts.items():
        if len(found) > 1:
            raise ValueError(f"{out_dir}: split {split!r} mixes shards of {sorted(found)} — two conversions; "
                             "re-convert it")  # fmt: skip
        count = found.pop()
        missing = sorted(set(range(count)) - indices[split])
        if missing:
            raise ValueError(f"{out_dir}: split {split!r} is incomplete: shard(s) {missing[:10]} of {count} missing")
        result[split] = count
    return result


class StagedSplit(StagedFiles):
    """Stage the shards of one split (:meth:`shard_path`), then :meth:`commit` them: the split's old shards are
    replaced as one step (:class:`~s5vh_hf.model.commits.StagedFiles`)."""

    def __init__(
        self, out_dir: str | os.PathLike, split: str, num_shards: int, feature_extractor: str | None = None
    ) -> None:
        check_split_name(split)
        super().__init__(out_dir, f"split.{split}")
        self.split, self.num_shards, self.feature_extractor = split, num_shards, feature_extractor

    def shard_path(self, index: int) -> Path:
        """Where to write shard ``index`` (in the staging folder)."""
        return self.staging / shard_name(self.split, index, self.num_shards)

    def commit(self) -> list[Path]:  # type: ignore[override]
        """Replace the split's shards and the dataset card (whose split sizes ``datasets`` checks) by the staged
        ones, as one step; returns the shards' final paths."""
        from .dataset_card import render_dataset_card

        names = [shard_name(self.split, i, self.num_shards) for i in range(self.num_shards)]
        old = sorted(f"data/{p.name}" for p in (self.folder / "data").glob(f"{self.split}-*.parquet"))
        view: dict[str, list[Path]] = {}
        for path in sorted((self.folder / "data").glob("*.parquet")):
            if path.name.split("-")[0] != self.split:
                view.setdefault(path.name.split("-")[0], []).append(path)
        view[self.split] = [self.staging / name for name in names]
        card = render_dataset_card(self.folder, feature_extractor=self.feature_extractor, shards=view)
        (self.staging / "README.md").write_text(str(card))
        super().commit([(name, f"data/{name}") for name in names] + [("README.md", "README.md")], remove=old)
        return [self.folder / "data" / name for name in names]


def cast_features(block: np.ndarray, dtype: str, video_ids: list[str], source: str = "features") -> np.ndarray:
    """``block`` ``[n, T, D]`` (or ``[T, D]`` for one video) cast to ``dtype``, refused when a video holds NaN or
    Inf before or after the cast (float16 turns values beyond ±65504 into ±Inf), naming the videos."""
    with np.errstate(over="ignore", invalid="ignore"):  # checked right below, naming the videos
        cast = np.asarray(block).astype(dtype, copy=False)
    batched = cast.reshape(len(video_ids), -1)
    bad = np.flatnonzero(~np.isfinite(batched).all(1))
    if len(bad) == 0:
        return cast
    original = np.asarray(block).reshape(len(video_ids), -1)
    names = [video_ids[i] for i in bad[:10]]
    if np.isfinite(original[bad]).all():
        largest = float(np.abs(original[bad]).max())
        limit = float(np.finfo(dtype).max)
        advice = "store them as float32 (--dtype float32) or rescale" if dtype == "float16" else "rescale them"
        raise ValueError(f"{source}: videos {names} hold values up to {largest:.4g}, beyond the range of {dtype} "
                         f"(±{limit:.6g}); {advice}")  # fmt: skip
    raise ValueError(f"{source}: NaN or Inf features in videos {names}")


def verify_shard_rows(path: str | os.PathLike, feature_dim: int) -> int:
    """Check every row of a feature shard against its declared shape, one row group at a time (memory bounded
    by a row group): each frame holds ``feature_dim`` values and ``num_frames`` equals the frames stored.
    Returns the number of rows; raises ``ValueError`` naming the shard and the video."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        shard = pq.ParquetFile(path)
    except Exception as error:  # noqa: BLE001 - pyarrow raises several types for torn files
        raise ValueError(
            f"{path} is not a readable parquet shard (truncated?): {str(error).splitlines()[0]}"
        ) from error
    rows = 0
    for group in range(shard.num_row_groups):
        try:
            table = shard.read_row_group(group, columns=["video_id", "features", "num_frames"])
        except Exception as error:  # noqa: BLE001
            raise ValueError(f"{path}: row group {group} is unreadable: {str(error).splitlines()[0]}") from error
        features = table.column("features").combine_chunks()
        features = getattr(features, "storage", features)  # datasets' Array2D extension type wraps list<list<…>>
        frames = pc.list_value_length(features)
        widths = pc.list_value_length(pc.list_flatten(features))
        bad_width = pc.not_equal(widths, feature_dim)
        if pc.any(bad_width).as_py():
            frame = pc.index(bad_width, True).as_py()
            starts = np.cumsum(np.concatenate([[0], frames.fill_null(0).to_numpy()]))
            row = int(np.searchsorted(starts, frame, side="right") - 1)
            raise ValueError(f"{path}: video {table.column('video_id')[row].as_py()!r} (row {rows + row}) has frames of "
                             f"{widths[frame].as_py()} values; the features column is [T, {feature_dim}]")  # fmt: skip
        mismatch = pc.not_equal(frames, table.column("num_frames").cast(frames.type))
        if pc.any(mismatch).as_py():
            row = pc.index(mismatch, True).as_py()
            raise ValueError(f"{path}: video {table.column('video_id')[row].as_py()!r} (row {rows + row}) stores "
                             f"{frames[row].as_py()} frames but num_frames says {table.column('num_frames')[row].as_py()}")  # fmt: skip
        rows += table.num_rows
    return rows
