"""Encoding datasets larger than RAM: chunked, resumable, and split across processes (``accelerate launch``).

Each chunk of ``chunk_size`` videos is encoded and written atomically to ``<out>/chunks/codes-XXXXX.parquet``;
a rerun skips finished chunks. With several processes, chunk c belongs to process c mod world-size; the main
process then merges the chunks in order into ``<out>/codes.parquet`` with columns ``video_id`` and ``code``
(packed bits, L/8 bytes).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch


def _chunk_path(out_dir: Path, chunk: int) -> Path:
    return out_dir / "chunks" / f"codes-{chunk:05d}.parquet"


def encode_dataset_to_files(
    model: Any,
    dataset: Any,
    out_dir: str | os.PathLike,
    chunk_size: int = 8192,
    batch_size: int = 256,
    show_progress_bar: bool | None = None,
) -> Path | None:
    """Encode every video of a feature dataset split; returns the merged file on the main process (else None)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from accelerate import PartialState

    from .data import validate_feature_dataset

    validate_feature_dataset(dataset)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    # Without cpu=True a GPU-less machine never joins the process group, and every process would encode and
    # merge everything.
    state = PartialState(cpu=not torch.cuda.is_available())
    out_dir = Path(out_dir)
    (out_dir / "chunks").mkdir(parents=True, exist_ok=True)
    total = len(dataset)
    chunks = max(1, math.ceil(total / chunk_size))
    code_bytes = model.config.code_length // 8
    schema = pa.schema([("video_id", pa.string()), ("code", pa.binary(code_bytes))]).with_metadata(
        {"code_length": str(model.config.code_length)}
    )
    rows = dataset.with_format("numpy", columns=["features"])
    model.to(state.device)
    for chunk in range(state.process_index, chunks, state.num_processes):
        target = _chunk_path(out_dir, chunk)
        if target.exists():
            continue  # finished by an earlier (interrupted) run
        start, stop = chunk * chunk_size, min(total, (chunk + 1) * chunk_size)
        videos = [rows[i]["features"] for i in range(start, stop)]
        codes = model.encode(videos, batch_size=batch_size, output="packed", show_progress_bar=show_progress_bar)
        table = pa.table(
            {
                "video_id": dataset[start:stop]["video_id"],
                "code": pa.array(list(map(bytes, codes)), pa.binary(code_bytes)),
            },
            schema=schema,
        )
        partial = target.with_suffix(f".partial-{state.process_index}")
        pq.write_table(table, partial)
        os.replace(partial, target)
    state.wait_for_everyone()
    if not state.is_main_process:
        return None
    merged = out_dir / "codes.parquet"
    partial = merged.with_suffix(".partial")
    with pq.ParquetWriter(partial, schema) as writer:
        for chunk in range(chunks):
            writer.write_table(pq.read_table(_chunk_path(out_dir, chunk)).cast(schema))
    os.replace(partial, merged)
    return merged


def load_codes(path: str | os.PathLike) -> tuple[list[str], np.ndarray]:
    """Read ``codes.parquet`` → (video ids, packed codes ``uint8`` ``[N, L/8]``)."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    if {"video_id", "code"} - set(table.column_names):
        raise ValueError(f"{path} is not a codes file (needs columns video_id and code)")
    codes = table.column("code").to_pylist()
    packed = (
        np.frombuffer(b"".join(codes), dtype=np.uint8).reshape(len(codes), -1) if codes else np.empty((0, 0), np.uint8)
    )
    return table.column("video_id").to_pylist(), packed
