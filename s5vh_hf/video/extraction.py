"""From video files to a feature dataset: decode T frames per video, run a frame encoder, write the package's
feature schema (plus ``path``, ``duration``, ``frame_times``).

The work is cut into chunks of videos. Each chunk's features are written atomically to ``<out>/.extract/<split>/``
with the extraction settings in their metadata, so a killed run resumes where it stopped (chunks of other
settings are redone), and several ``accelerate launch`` processes share the chunks (chunk c → process c mod N).
Decoding runs on a thread pool ahead of the encoder, so the two overlap (PyAV and torch release the GIL). A video
that cannot be decoded is skipped with its reason in ``<out>/extraction_report_<split>.json`` — one bad file never
stops a run, and nothing already extracted is lost. Memory is bounded by the decode window and one batch of frames.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..model.batching import progress_bar
from ..model.commits import atomic_path, write_file_atomically
from ..training.launch import process_state
from .decoding import BadVideo, find_videos, read_frames
from .frame_encoders import FrameEncoder

EXTRACT_FORMAT = "s5vh-extract-v1"


@dataclass
class ExtractionReport:
    """What an extraction did: videos written, videos skipped (path → reason), frames encoded."""

    split: str
    written: int = 0
    skipped: dict[str, str] = field(default_factory=dict)
    frames: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        rate = self.frames / self.seconds if self.seconds else 0.0
        return (f"extracted {self.written} videos of split {self.split!r} ({self.frames} frames, {rate:.0f} frames/s); "
                f"skipped {len(self.skipped)} unreadable")  # fmt: skip


def video_feature_columns(feature_dim: int, dtype: str = "float16"):
    """``datasets.Features`` of an extracted split: the feature schema plus ``path``, ``duration``, ``frame_times``."""
    import datasets

    from ..data.schema import feature_dataset_features

    columns = dict(feature_dataset_features(feature_dim, dtype))
    columns["path"] = datasets.Value("string")
    columns["duration"] = datasets.Value("float32")
    columns["frame_times"] = datasets.Sequence(datasets.Value("float32"))
    return datasets.Features(columns)


def _decoded(paths: Sequence[Path], workers: int, window: int, options: dict[str, Any]) -> Iterator[tuple[Path, Any]]:
    """``(path, SampledFrames or BadVideo)`` in order, decoding up to ``window`` videos ahead on ``workers``
    threads."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="s5vh-decode") as pool:
        pending: list = []
        iterator = iter(paths)
        for path in iterator:
            pending.append((path, pool.submit(_read, path, options)))
            if len(pending) >= window:
                break
        while pending:
            path, future = pending.pop(0)
            nxt = next(iterator, None)
            if nxt is not None:
                pending.append((nxt, pool.submit(_read, nxt, options)))
            yield path, future.result()


def _read(path: Path, options: dict[str, Any]):
    try:
        return read_frames(path, **options)
    except BadVideo as bad:
        return bad
    except Exception as error:  # noqa: BLE001 - one bad file never stops a run
        return BadVideo(path, f"{type(error).__name__}: {str(error).splitlines()[0][:120] if str(error) else ''}")


def _settings_key(encoder: FrameEncoder, options: dict[str, Any], paths: Sequence[Path]) -> str:
    payload = json.dumps({"encoder": encoder.identity, "options": options, "paths": [str(p) for p in paths]},
                         sort_keys=True)  # fmt: skip
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def extract_video_features(
    videos: str | os.PathLike | Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    encoder: FrameEncoder,
    split: str = "train",
    num_frames: int | None = 25,
    fps: float | None = None,
    labels: dict[str, Sequence[int]] | None = None,
    chunk_size: int = 64,
    batch_frames: int = 128,
    decode_workers: int = 2,
    dtype: str = "float16",
    show_progress_bar: bool | None = None,
) -> ExtractionReport:
    """Extract frame features of every video into the feature dataset ``out_dir`` (split ``split``).

    Args:
        videos: A folder (searched recursively), a list file (one path per line), a list of paths, or a
            ``datasets.Dataset`` with a ``path`` column (and optionally ``labels``/``label``).
        encoder: From :func:`~s5vh_hf.video.frame_encoders.load_frame_encoder`.
        num_frames / fps: T frames sampled uniformly over each video, or one every ``1/fps`` seconds.
        labels: Optional class ids per video (keyed by the path as given, or relative to the folder).
        chunk_size: Videos per resumable chunk. batch_frames: frames per encoder call.

    Returns an :class:`ExtractionReport` (also written to ``out_dir/extraction_report_<split>.json``).
    """
    import time

    import pyarrow as pa
    import pyarrow.parquet as pq

    from ..data.shards import StagedSplit, cast_features, check_split_name

    check_split_name(split)
    root = Path(videos) if isinstance(videos, (str, os.PathLike)) else None
    if hasattr(videos, "column_names"):  # a datasets.Dataset with a path column (and perhaps labels)
        if "path" not in videos.column_names:
            raise ValueError(f"the dataset has no 'path' column (columns: {videos.column_names})")
        if labels is None and ("labels" in videos.column_names or "label" in videos.column_names):
            column = "labels" if "labels" in videos.column_names else "label"
            labels = {path: value for path, value in zip(videos["path"], videos[column])}
        videos = list(videos["path"])
    paths = find_videos(root) if root is not None else [Path(p) for p in videos]
    if not paths:
        raise ValueError(f"no video files found in {videos}")
    state = process_state()
    options = {"num_frames": num_frames, "fps": fps}
    key = _settings_key(encoder, options, paths)
    work = Path(out_dir) / ".extract" / split
    work.mkdir(parents=True, exist_ok=True)
    schema = video_feature_columns(encoder.feature_dim, dtype).arrow_schema.with_metadata({"settings": key})
    chunks = math.ceil(len(paths) / chunk_size)
    report = ExtractionReport(split)
    started = time.perf_counter()
    bar = progress_bar(None, show_progress_bar, f"Extracting {split}", total=len(paths), unit="video")
    for chunk in range(state.process_index, chunks, state.num_processes):
        target = work / f"chunk-{chunk:05d}.parquet"
        bad_file = work / f"skipped-{chunk:05d}.json"
        part = paths[chunk * chunk_size : (chunk + 1) * chunk_size]
        if target.exists() and bad_file.exists() and _metadata(target).get("settings") == key:
            bar.update(len(part))
            continue  # finished by an earlier run with the same settings
        rows: dict[str, list] = {name: [] for name in schema.names}
        skipped: dict[str, str] = {}
        for path, result in _decoded(part, decode_workers, 2 * decode_workers + 2, options):
            bar.update(1)
            if isinstance(result, BadVideo):
                skipped[str(path)] = result.reason
                continue
            features = np.concatenate([encoder.encode(result.frames[i : i + batch_frames])
                                       for i in range(0, len(result.frames), batch_frames)])  # fmt: skip
            identifier = _video_id(path, root)
            try:
                features = cast_features(features[None], dtype, [identifier], str(path))[0]
            except ValueError as error:
                skipped[str(path)] = str(error)
                continue
            rows["video_id"].append(identifier)
            rows["features"].append(features)
            rows["num_frames"].append(len(features))
            rows["labels"].append(_labels_of(path, root, labels))
            rows["path"].append(str(path))
            rows["duration"].append(result.duration)
            rows["frame_times"].append(result.times.astype(np.float32).tolist())
            report.frames += len(features)
        from ..data.writing import arrow_table

        table = arrow_table(rows, schema) if rows["video_id"] else schema.empty_table()
        write_file_atomically(bad_file, json.dumps(skipped, indent=1))  # first: a chunk is complete only with it
        with atomic_path(target) as temporary:
            pq.write_table(table.replace_schema_metadata(schema.metadata), temporary)
    bar.close()
    state.wait_for_everyone()
    if state.is_main_process:
        tables, shard_rows = [], 2048
        for chunk in range(chunks):
            target = work / f"chunk-{chunk:05d}.parquet"
            if _metadata(target).get("settings") != key:
                raise RuntimeError(f"{target} is missing or belongs to other settings; rerun the extraction")
            tables.append(pq.read_table(target))
            report.skipped.update(json.loads((work / f"skipped-{chunk:05d}.json").read_text()))
        merged = pa.concat_tables(tables).replace_schema_metadata(None) if tables else schema.empty_table()
        report.written = merged.num_rows
        if merged.num_rows == 0:
            raise ValueError(f"none of the {len(paths)} videos could be decoded; see the reasons in the report")
        report.frames = int(np.sum(merged.column("num_frames").to_numpy()))
        shards = max(1, math.ceil(merged.num_rows / shard_rows))
        with StagedSplit(out_dir, split, shards, feature_extractor=f"{encoder.name} ({encoder.source})") as staged:
            for shard in range(shards):
                pq.write_table(merged.slice(shard * shard_rows, shard_rows), staged.shard_path(shard))
            staged.commit()
        report.seconds = time.perf_counter() - started
        write_file_atomically(
            Path(out_dir) / f"extraction_report_{split}.json",
            json.dumps(
                {
                    "summary": report.summary(),
                    "written": report.written,
                    "skipped": report.skipped,
                    "encoder": encoder.identity,
                    "options": options,
                },
                indent=1,
            ),  # fmt: skip
        )
    return report


def _metadata(path: Path) -> dict[str, str]:
    import pyarrow.parquet as pq

    try:
        metadata = pq.read_schema(path).metadata or {}
    except Exception:  # noqa: BLE001 - missing or torn: redone
        return {}
    return {k.decode(): v.decode() for k, v in metadata.items()}


def _video_id(path: Path, root: Path | None) -> str:
    """The path relative to the folder (or to the list file's folder), else as given."""
    if root is not None:
        base = root if root.is_dir() else root.parent
        try:
            return path.relative_to(base).as_posix()
        except ValueError:
            pass
    return path.as_posix()


def _labels_of(path: Path, root: Path | None, labels: dict[str, Sequence[int]] | None) -> list[int] | None:
    if labels is None:
        return None
    for key in (_video_id(path, root), str(path), path.name):
        if key in labels:
            value = labels[key]
            return [int(v) for v in (value if isinstance(value, (list, tuple)) else [value])]
    return None
