"""Encoding datasets larger than RAM: chunked, resumable, and split across processes (``accelerate launch``).

Each chunk of ``chunk_size`` videos is encoded and written atomically to ``<out>/chunks/codes-XXXXX.parquet``,
recording the model and dataset fingerprints, its rows and the code length; a rerun skips only chunks that match.
With several processes, chunk c belongs to process c mod world-size; the main process then merges the chunks in
order into ``<out>/codes.parquet`` with columns ``video_id`` and ``code`` (packed bits, L/8 bytes) and the same
identity in its metadata (``s5vh search --database-codes`` checks it against the model).
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..model.commits import atomic_path, folder_lock
from ..model.fingerprint import model_fingerprint
from ..training.launch import process_state

CODES_FORMAT = "s5vh-codes-v2"


def _chunk_path(out_dir: Path, chunk: int) -> Path:
    return out_dir / "chunks" / f"codes-{chunk:05d}.parquet"


def dataset_fingerprint(dataset: Any) -> str:
    """The ``datasets`` fingerprint of a split (changes whenever its content or row selection does) and its
    size."""
    return f"{getattr(dataset, '_fingerprint', 'unknown')}:{len(dataset)}"


def _write_table_atomically(table: Any, target: Path) -> None:
    import pyarrow.parquet as pq

    with atomic_path(target) as temporary:
        pq.write_table(table, temporary)


def _chunk_is_current(path: Path, expected: dict[str, str]) -> bool:
    """Whether a finished chunk file was written for exactly these inputs (model, dataset, chunk bounds, L)."""
    import pyarrow.parquet as pq

    try:
        metadata = pq.read_schema(path).metadata or {}
    except Exception:  # noqa: BLE001 - a torn or foreign file is simply redone
        return False
    return all(metadata.get(key.encode()) == value.encode() for key, value in expected.items())


def encode_dataset_to_files(
    model: Any,
    dataset: Any,
    out_dir: str | os.PathLike,
    chunk_size: int = 8192,
    batch_size: int = 256,
    show_progress_bar: bool | None = None,
) -> Path | None:
    """Encode every video of a feature dataset split; returns the merged file on the main process (else None).

    Each chunk file records what it belongs to (model fingerprint, dataset fingerprint, chunk bounds, code
    length); a rerun reuses only chunks that match and redoes the others, so another model, dataset or
    ``chunk_size`` never yields stale or missing codes. Memory is bounded by one batch of ``batch_size`` videos,
    not by the chunk. Every writer uses its own temporary file names, so concurrent runs into one folder are safe.
    """

    from ..data.schema import validate_feature_dataset

    validate_feature_dataset(dataset)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    state = process_state()
    out_dir = Path(out_dir)
    with contextlib.ExitStack() as stack:
        if state.is_main_process:  # one writer per folder: a second `s5vh encode` into it waits, then reuses chunks
            stack.enter_context(folder_lock(out_dir))
        return _encode_chunks_and_merge(model, dataset, out_dir, state, chunk_size, batch_size)


def _encode_chunks_and_merge(
    model: Any, dataset: Any, out_dir: Path, state: Any, chunk_size: int, batch_size: int
) -> Path | None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    (out_dir / "chunks").mkdir(parents=True, exist_ok=True)
    total = len(dataset)
    chunks = max(1, math.ceil(total / chunk_size))
    code_bytes = model.config.code_length // 8
    identity = {
        "format": CODES_FORMAT,
        "code_length": str(model.config.code_length),
        "model_fingerprint": model_fingerprint(model),
        "dataset_fingerprint": dataset_fingerprint(dataset),
    }
    schema = pa.schema([("video_id", pa.string()), ("code", pa.binary(code_bytes))])
    rows = dataset.with_format("numpy", columns=["features"])
    ids = dataset.select_columns(["video_id"])
    model.to(state.device)
    for chunk in range(state.process_index, chunks, state.num_processes):
        start, stop = chunk * chunk_size, min(total, (chunk + 1) * chunk_size)
        expected = {**identity, "rows": f"{start}-{stop}"}
        target = _chunk_path(out_dir, chunk)
        if target.exists() and _chunk_is_current(target, expected):
            continue  # finished by an earlier (interrupted) run with the same inputs
        pieces = []
        for first in range(start, stop, batch_size):  # one batch of features in memory at a time
            videos = rows[first : min(stop, first + batch_size)]["features"]  # [n, T, D], or n [T_i, D] arrays
            pieces.append(model.encode(videos, batch_size=batch_size, output="packed", show_progress_bar=False))
        codes = np.concatenate(pieces)
        table = pa.table(
            {"video_id": ids[start:stop]["video_id"], "code": pa.array(list(map(bytes, codes)), pa.binary(code_bytes))},
            schema=schema.with_metadata(expected),
        )
        _write_table_atomically(table, target)
    state.wait_for_everyone()
    if not state.is_main_process:
        return None
    merged = out_dir / "codes.parquet"
    with atomic_path(merged) as temporary, pq.ParquetWriter(temporary, schema.with_metadata(identity)) as writer:
        for chunk in range(chunks):
            start, stop = chunk * chunk_size, min(total, (chunk + 1) * chunk_size)
            path = _chunk_path(out_dir, chunk)
            if not _chunk_is_current(path, {**identity, "rows": f"{start}-{stop}"}):
                raise RuntimeError(f"{path} is missing or belongs to other inputs; rerun `s5vh encode`")
            writer.write_table(pq.read_table(path).cast(schema.with_metadata(identity)))
    return merged


def load_codes(path: str | os.PathLike) -> tuple[list[str], np.ndarray]:
    """Read ``codes.parquet`` (or the folder holding it) → (video ids, packed codes ``uint8`` ``[N, L/8]``)."""
    import pyarrow.parquet as pq

    path = Path(path)
    if path.is_dir():
        path = path / "codes.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"no codes file at {path} (write one with `s5vh encode`)")
    try:
        table = pq.read_table(path)
    except Exception as error:  # noqa: BLE001 - pyarrow raises several types for torn files
        raise ValueError(f"{path} is not a readable parquet codes file: {str(error).splitlines()[0]}") from error
    if {"video_id", "code"} - set(table.column_names):
        raise ValueError(f"{path} is not a codes file (needs columns video_id and code)")
    codes = table.column("code").to_pylist()
    packed = (
        np.frombuffer(b"".join(codes), dtype=np.uint8).reshape(len(codes), -1) if codes else np.empty((0, 0), np.uint8)
    )
    return table.column("video_id").to_pylist(), packed


def codes_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The identity a codes file records (format, code length, model and dataset fingerprints)."""
    import pyarrow.parquet as pq

    path = Path(path)
    path = path / "codes.parquet" if path.is_dir() else path
    metadata = pq.read_schema(path).metadata or {}
    return {key.decode(): value.decode() for key, value in metadata.items() if not key.startswith(b"ARROW")}


def load_codes_for_model(path: str | os.PathLike, model: Any) -> tuple[list[str], np.ndarray]:
    """:func:`load_codes`, refused unless the file was written by this very model (same weights and L)."""
    ids, packed = load_codes(path)
    recorded = codes_metadata(path).get("model_fingerprint")
    if recorded is None:
        raise ValueError(f"{path} records no model fingerprint; re-encode it with this version's `s5vh encode`")
    if recorded != model_fingerprint(model):
        raise ValueError(f"{path} was encoded by another model (or other weights); re-encode with this model")
    return ids, packed
