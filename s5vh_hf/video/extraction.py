"""From video files to a feature dataset: decode T frames per video, run a frame encoder, write the package's
feature schema (plus ``path``, ``duration``, ``frame_times``).

Work is cached *per video*: each video's features are kept in ``<out>/.extract/<split>/chunk-*.parquet`` under a key
of the video (its absolute path, size and modification time) and the extraction settings. A rerun, a resumed run
after a kill, or a list with videos added or removed decodes only the videos that have no entry yet (a changed
file gets a new key); chunks no video of the list uses are removed when the split is written. Several
``accelerate launch`` processes share the missing videos (chunk c → process c mod N). Decoding runs on a thread
pool ahead of the encoder, so the two overlap (PyAV and torch release the GIL). A video that cannot be decoded is
skipped with its reason in ``<out>/extraction_report_<split>.json`` — one bad file never stops a run, nothing already
extracted is lost, and the report is written even when no video decodes. Frames are shrunk to the encoder's input
as they are decoded, so memory is bounded by the decode window and one batch of frames, whatever the resolution.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..model.batching import progress_bar
from ..model.commits import atomic_path, fault_point, write_file_atomically
from ..training.launch import process_state
from .decoding import BadVideo, find_videos, read_frames
from .frame_encoders import FrameEncoder

EXTRACT_FORMAT = "s5vh-extract-v2"
CACHE_COLUMNS = ("video_key", "features", "num_frames", "duration", "frame_times")


@dataclass
class ExtractionReport:
    """What an extraction did: videos written (``reused`` of them from earlier runs), videos skipped (absolute
    path → reason), frames decoded and encoded by this run, and its wall time."""

    split: str
    written: int = 0
    skipped: dict[str, str] = field(default_factory=dict)
    frames: int = 0
    seconds: float = 0.0
    reused: int = 0

    def summary(self) -> str:
        new = self.written - self.reused
        rate = f"{self.frames / self.seconds:.1f} frames/s" if self.seconds and self.frames else "no frames decoded"
        return (f"extracted {self.written} videos of split {self.split!r} ({new} new, {self.frames} frames, {rate}; "
                f"{self.reused} reused from earlier runs); skipped {len(self.skipped)} unreadable")  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary(), "written": self.written, "reused": self.reused, "frames": self.frames,
                "seconds": round(self.seconds, 3), "skipped": self.skipped}  # fmt: skip


def video_key(path: str | os.PathLike) -> str:
    """What identifies a video file's content cheaply: its absolute path, size and modification time."""
    path = Path(os.path.abspath(path))
    try:
        status = path.stat()
        parts: list[Any] = [str(path), status.st_size, status.st_mtime_ns]
    except OSError:
        parts = [str(path), "missing"]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:32]


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


def _settings_key(encoder: FrameEncoder, options: dict[str, Any]) -> str:
    payload = json.dumps({"format": EXTRACT_FORMAT, "encoder": encoder.identity, "options": options}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def _cache_schema(feature_dim: int, dtype: str, settings: str):
    import pyarrow as pa

    columns = video_feature_columns(feature_dim, dtype).arrow_schema
    fields = [pa.field("video_key", pa.string())] + [columns.field(name) for name in CACHE_COLUMNS[1:]]
    return pa.schema(fields, metadata={"settings": settings, "format": EXTRACT_FORMAT})


def _cached_keys(work: Path, settings: str) -> tuple[set[str], dict[str, tuple[str, str]]]:
    """Keys of the videos extracted under ``settings`` and the ones skipped (key → (path, reason)), from the chunk
    files' key column and metadata alone."""
    import pyarrow.parquet as pq

    done: set[str] = set()
    skipped: dict[str, tuple[str, str]] = {}
    for chunk in sorted(work.glob("chunk-*.parquet")):
        metadata = _metadata(chunk)
        if metadata.get("settings") != settings:
            continue
        try:
            done.update(pq.read_table(chunk, columns=["video_key"]).column("video_key").to_pylist())
            skipped.update({k: tuple(v) for k, v in json.loads(metadata.get("skipped", "{}")).items()})
        except Exception:  # noqa: BLE001 - a torn chunk is redone
            continue
    return done, skipped


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
    thumbnails: str | os.PathLike | None = None,
) -> ExtractionReport:
    """Extract frame features of every video into the feature dataset ``out_dir`` (split ``split``).

    Args:
        videos: A folder (searched recursively), a list file (one path per line), a list of paths, or a
            ``datasets.Dataset`` with a ``path`` column (and optionally ``labels``/``label``).
        encoder: From :func:`~s5vh_hf.video.frame_encoders.load_frame_encoder`.
        num_frames / fps: T frames sampled uniformly over each video, or one every ``1/fps`` seconds.
        labels: Optional class ids per video (keyed by the path as given, or relative to the folder).
        chunk_size: Videos per cache file. batch_frames: frames per encoder call.
        thumbnails: A folder for a strip of thumbnails of each video's sampled frames
            (``<video_key>.jpg``, made from the frames already decoded), e.g. for the search page.

    Returns an :class:`ExtractionReport` (also written to ``out_dir/extraction_report_<split>.json``). Raises
    ``ValueError`` when no video decodes (after writing the report, which says why for each).
    """
    from ..data.shards import check_split_name

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
    options = extraction_options(encoder, num_frames, fps)
    work = Path(out_dir) / ".extract" / split
    keys = [video_key(p) for p in paths]
    report = ExtractionReport(split)
    done = fill_feature_cache(paths, keys, work, encoder, options, report, dtype=dtype, chunk_size=chunk_size,
                              batch_frames=batch_frames, decode_workers=decode_workers,
                              show_progress_bar=show_progress_bar, thumbnails=thumbnails)  # fmt: skip
    state = process_state()
    state.wait_for_everyone()
    if state.is_main_process:
        _write_split(paths, keys, root, labels, out_dir, split, work, encoder, options, dtype, done, report)
    return report


def extraction_options(encoder: FrameEncoder, num_frames: int | None = 25, fps: float | None = None) -> dict:
    """The decoding settings of an extraction: frames per video (or per second) and the decoded frame size."""
    return {"num_frames": num_frames, "fps": fps, "size": encoder.frame_side}


def fill_feature_cache(
    paths: Sequence[Path],
    keys: Sequence[str],
    work: Path,
    encoder: FrameEncoder,
    options: dict[str, Any],
    report: ExtractionReport,
    dtype: str = "float16",
    chunk_size: int = 64,
    batch_frames: int = 128,
    decode_workers: int = 2,
    show_progress_bar: bool | None = None,
    thumbnails: str | os.PathLike | None = None,
) -> set[str]:
    """Decode and encode the videos of ``paths`` (keys ``keys``) that have no cache entry in ``work`` yet, sharing
    them among the processes of a launch; counts this run's frames and time in ``report``. Returns the keys that
    were cached before."""
    state = process_state()
    settings = _settings_key(encoder, options)
    work.mkdir(parents=True, exist_ok=True)
    done, skipped_before = _cached_keys(work, settings)
    state.wait_for_everyone()  # every process listed the cache before anyone adds to it
    missing: dict[str, Path] = {}
    for key, path in zip(keys, paths):
        if key not in done and key not in skipped_before:
            missing.setdefault(key, path)
    todo = list(missing.items())
    started = time.perf_counter()
    schema = _cache_schema(encoder.feature_dim, dtype, settings)
    chunks = math.ceil(len(todo) / chunk_size)
    bar = progress_bar(None, show_progress_bar, f"Extracting {report.split}", total=len(todo), unit="video")
    for chunk in range(state.process_index, chunks, state.num_processes):
        part = todo[chunk * chunk_size : (chunk + 1) * chunk_size]
        report.frames += _extract_chunk(
            part, work, schema, encoder, options, dtype, batch_frames, decode_workers, bar, thumbnails
        )
    bar.close()
    report.seconds += time.perf_counter() - started
    return done | set(skipped_before)


def read_feature_cache(work: Path, encoder: FrameEncoder, options: dict[str, Any], keys: Sequence[str],
                       prune: bool = False):  # fmt: skip
    """The cached rows of ``keys`` (``CACHE_COLUMNS``; a pyarrow table, one row per decodable key, in the order of
    ``keys``, duplicates once) and the skipped keys (key → reason). ``prune`` removes cache files no key uses."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    settings = _settings_key(encoder, options)
    wanted = set(keys)
    tables, where, skipped_by_key, offset = [], {}, {}, 0
    for chunk in sorted(work.glob("chunk-*.parquet")):
        metadata, used, table = _metadata(chunk), False, None
        if metadata.get("settings") == settings:
            try:
                table = pq.read_table(chunk).select(list(CACHE_COLUMNS))
                chunk_skipped = json.loads(metadata.get("skipped", "{}"))
            except Exception:  # noqa: BLE001 - torn: its videos count as not extracted
                table, chunk_skipped = None, {}
            for row, key in enumerate(table.column("video_key").to_pylist() if table is not None else []):
                if key in wanted and key not in where:
                    where[key], used = offset + row, True
            for key, (_, reason) in chunk_skipped.items():
                if key in wanted:
                    skipped_by_key[key], used = reason, True
        if used and table is not None:
            tables.append(table)
            offset += table.num_rows
        elif not used and prune:
            chunk.unlink(missing_ok=True)  # other settings, or videos no longer listed
    if prune:
        for stale in work.glob("skipped-*.json"):  # the per-chunk lists of the format before this one
            stale.unlink(missing_ok=True)
    order = list(dict.fromkeys(key for key in keys if key in where))
    schema = _cache_schema(encoder.feature_dim, "float16", settings)
    rows = pa.concat_tables(tables).take(pa.array([where[k] for k in order], pa.int64())) if tables else None
    return (rows if rows is not None else schema.empty_table()), skipped_by_key


def _extract_chunk(part, work: Path, schema, encoder: FrameEncoder, options: dict[str, Any], dtype: str,
                   batch_frames: int, decode_workers: int, bar, thumbnails: str | os.PathLike | None) -> int:  # fmt: skip
    """Decode and encode the videos of ``part`` (``(key, path)`` pairs) into one cache file; returns the frames."""
    import pyarrow.parquet as pq

    from ..data.shards import cast_features
    from ..data.writing import arrow_table

    rows: dict[str, list] = {name: [] for name in CACHE_COLUMNS}
    skipped: dict[str, list[str]] = {}
    frames = 0
    by_path = dict((str(path), key) for key, path in part)
    for path, result in _decoded([path for _, path in part], decode_workers, 2 * decode_workers + 2, options):
        bar.update(1)
        key, absolute = by_path[str(path)], os.path.abspath(path)
        if isinstance(result, BadVideo):
            skipped[key] = [absolute, result.reason]
            continue
        features = np.concatenate([encoder.encode(result.frames[i : i + batch_frames])
                                   for i in range(0, len(result.frames), batch_frames)])  # fmt: skip
        if thumbnails is not None:
            from .thumbnails import write_thumbnail_strip

            write_thumbnail_strip(Path(thumbnails) / f"{key}.jpg", result.frames)
        try:
            features = cast_features(features[None], dtype, [absolute], absolute)[0]
        except ValueError as error:
            skipped[key] = [absolute, str(error)]
            continue
        rows["video_key"].append(key)
        rows["features"].append(features)
        rows["num_frames"].append(len(features))
        rows["duration"].append(result.duration)
        rows["frame_times"].append(result.times.astype(np.float32).tolist())
        frames += len(features)
    table = arrow_table(rows, schema) if rows["video_key"] else schema.empty_table()
    name = hashlib.sha256("".join(key for key, _ in part).encode()).hexdigest()[:20]
    metadata = {**schema.metadata, b"skipped": json.dumps(skipped).encode()}
    with atomic_path(work / f"chunk-{name}.parquet") as temporary:
        pq.write_table(table.replace_schema_metadata(metadata), temporary)
    fault_point("extract:chunk")
    return frames


def _write_split(paths, keys, root, labels, out_dir, split, work: Path, encoder: FrameEncoder,
                 options: dict[str, Any], dtype: str, done_before: set[str], report: ExtractionReport) -> None:  # fmt: skip
    """Assemble the split from the cache in the order of ``paths`` (a video listed twice once), write it and the
    report, and remove cache files that no video of the list uses."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ..data.shards import StagedSplit

    cached, skipped_by_key = read_feature_cache(work, encoder, options, keys, prune=True)
    found = set(cached.column("video_key").to_pylist())
    ids, row_labels, absolute_paths, seen = [], [], [], set()
    for path, key in zip(paths, keys):
        absolute = os.path.abspath(path)
        if key in seen:
            continue
        seen.add(key)
        if key in found:
            ids.append(_video_id(path, root))
            row_labels.append(_labels_of(path, root, labels))
            absolute_paths.append(absolute)
        elif key in skipped_by_key:
            report.skipped[absolute] = skipped_by_key[key]
        else:
            raise RuntimeError(f"{absolute} was not extracted (a process stopped early?); rerun the extraction")
    report.written = len(ids)
    report.reused = len(found & done_before)
    result = {**report.to_dict(), "encoder": encoder.identity, "options": options}
    write_file_atomically(Path(out_dir) / f"extraction_report_{split}.json", json.dumps(result, indent=1))
    if report.written == 0:
        raise ValueError(f"none of the {len(paths)} videos could be decoded; the reasons are in "
                         f"{Path(out_dir) / f'extraction_report_{split}.json'}")  # fmt: skip
    schema = video_feature_columns(encoder.feature_dim, dtype).arrow_schema
    given = {"video_id": pa.array(ids, pa.string()), "labels": pa.array(row_labels, schema.field("labels").type),
             "path": pa.array(absolute_paths, pa.string())}  # fmt: skip
    merged = pa.table([given[name] if name in given else cached.column(name) for name in schema.names], schema=schema)
    shard_rows = 2048
    shards = max(1, math.ceil(merged.num_rows / shard_rows))
    with StagedSplit(out_dir, split, shards, feature_extractor=f"{encoder.name} ({encoder.source})") as staged:
        for shard in range(shards):
            pq.write_table(merged.slice(shard * shard_rows, shard_rows), staged.shard_path(shard))
        staged.commit()


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
