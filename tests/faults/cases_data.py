"""Feature data: empty, torn, mixed and mis-shaped shards; HDF5/.mat import faults; hostile ids and split names."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .harness import case, cli, expect_clear, expect_raise, saved_model, split_contents, videos, write_split


@case("load data")
def empty_split(tmp: Path):
    import pyarrow.parquet as pq

    from s5vh_hf.data.dataset_card import write_dataset_card
    from s5vh_hf.data.schema import feature_dataset_features

    write_split(tmp / "ds", "train", 4)
    pq.write_table(feature_dataset_features(24).arrow_schema.empty_table(),
                   tmp / "ds" / "data" / "query-00000-of-00001.parquet")  # fmt: skip
    write_dataset_card(tmp / "ds")
    return expect_clear(*cli("encode", str(saved_model(tmp / "m")), str(tmp / "ds"), "--split", "query",
                             "--out", str(tmp / "c")), "no videos")  # fmt: skip


@case("load data")
def row_shape_disagrees_with_its_column(tmp: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    write_split(tmp / "ds", "database", 6)
    shard = tmp / "ds" / "data" / "database-00000-of-00001.parquet"
    table = pq.read_table(shard)
    rows = table.to_pylist()
    rows[2]["features"] = [[0.0] * 20 for _ in range(6)]
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), shard)
    return expect_clear(*cli("encode", str(saved_model(tmp / "m")), str(tmp / "ds"), "--out", str(tmp / "c")),
                        "database-0-2")  # fmt: skip


@case("load data")
def truncated_parquet_shard(tmp: Path):
    write_split(tmp / "ds", "database", 6)
    shard = tmp / "ds" / "data" / "database-00000-of-00001.parquet"
    shard.write_bytes(shard.read_bytes()[:200])
    return expect_clear(*cli("encode", str(saved_model(tmp / "m")), str(tmp / "ds"), "--out", str(tmp / "c")),
                        "parquet")  # fmt: skip


@case("load data")
def shard_missing_from_a_split(tmp: Path):
    write_split(tmp / "ds", "database", 9, shard_size=3)
    (tmp / "ds" / "data" / "database-00001-of-00003.parquet").unlink()
    return expect_clear(*cli("encode", str(saved_model(tmp / "m")), str(tmp / "ds"), "--out", str(tmp / "c")),
                        "incomplete")  # fmt: skip


@case("load data")
def shards_of_two_conversions_mixed(tmp: Path):
    write_split(tmp / "ds", "database", 9, shard_size=3)
    kept = (tmp / "ds" / "data" / "database-00002-of-00003.parquet").read_bytes()
    write_split(tmp / "ds", "database", 8, seed=1, shard_size=4)
    (tmp / "ds" / "data" / "database-00002-of-00003.parquet").write_bytes(kept)  # a leftover of the old split
    return expect_clear(*cli("encode", str(saved_model(tmp / "m")), str(tmp / "ds"), "--out", str(tmp / "c")),
                        "mixes")  # fmt: skip


@case("write data")
def nan_video_in_write_feature_split(tmp: Path):
    from s5vh_hf.data.writing import write_feature_split

    data = videos(4)
    data[2][3, 5] = np.nan
    outcome = expect_raise(lambda: write_feature_split(tmp / "ds", "train", data, list("abcd")), ValueError, "'c'")
    return ("lost", "a partial split was left") if (tmp / "ds" / "data").glob("*.parquet") and any(
        (tmp / "ds" / "data").glob("*.parquet")) else outcome  # fmt: skip


@case("write data")
def float16_overflow_in_convert_features(tmp: Path):
    import h5py

    feats = np.random.default_rng(0).standard_normal((5, 4, 24)).astype(np.float32)
    feats[3] *= 1e6
    with h5py.File(tmp / "f.h5", "w") as handle:
        handle["feats"] = feats
    return expect_clear(*cli("convert-features", str(tmp / "f.h5"), "--split", "train", "--out", str(tmp / "ds")),
                        "train-000003", "float32")  # fmt: skip


@case("write data")
def nan_in_an_hdf5_file(tmp: Path):
    import h5py

    feats = np.random.default_rng(0).standard_normal((5, 4, 24)).astype(np.float32)
    feats[1, 2, 3] = np.nan
    with h5py.File(tmp / "f.h5", "w") as handle:
        handle["feats"] = feats
    return expect_clear(*cli("convert-features", str(tmp / "f.h5"), "--split", "train", "--out", str(tmp / "ds")),
                        "train-000001")  # fmt: skip


@case("write data")
def truncated_hdf5_file(tmp: Path):
    import h5py

    with h5py.File(tmp / "f.h5", "w") as handle:
        handle["feats"] = np.random.default_rng(0).standard_normal((50, 4, 24)).astype(np.float32)
    data = (tmp / "f.h5").read_bytes()
    (tmp / "f.h5").write_bytes(data[: len(data) // 2])
    return expect_clear(*cli("convert-features", str(tmp / "f.h5"), "--split", "train", "--out", str(tmp / "ds")),
                        "f.h5")  # fmt: skip


@case("write data")
def corrupt_mat_labels(tmp: Path):
    import h5py

    with h5py.File(tmp / "f.h5", "w") as handle:
        handle["feats"] = np.random.default_rng(0).standard_normal((5, 4, 24)).astype(np.float32)
    for seed in range(20):  # several corruptions: scipy fails in different places (and exception types)
        noise = np.random.default_rng(seed).integers(0, 256, 300, dtype=np.uint8).tobytes()
        (tmp / "labels.mat").write_bytes(b"MATLAB 5.0 MAT-file" + noise)
        outcome = expect_clear(*cli("convert-features", str(tmp / "f.h5"), "--split", "train", "--labels",
                                    str(tmp / "labels.mat"), "--out", str(tmp / "ds")), "labels.mat")  # fmt: skip
        if outcome[0] != "clear":
            return outcome
    (tmp / "labels.mat").write_bytes(b"MATLAB 5.0 MAT-file" + os.urandom(300))
    return expect_clear(*cli("convert-features", str(tmp / "f.h5"), "--split", "train", "--labels",
                             str(tmp / "labels.mat"), "--out", str(tmp / "ds")), "labels.mat")  # fmt: skip


@case("write data")
def hostile_video_ids_and_split_names(tmp: Path):
    from s5vh_hf.data.writing import write_feature_split

    outcome = expect_raise(lambda: write_feature_split(tmp / "ds", "../escape", videos(2), ["a", "b"]),
                           ValueError, "split")  # fmt: skip
    if outcome[0] != "clear":
        return outcome
    ids = ["../../etc/passwd", "x" * 10_000]  # ids are data, never paths
    write_feature_split(tmp / "ds", "train", videos(2), ids)
    got, _ = split_contents(tmp / "ds", "train")
    return ("intact", "ids stored verbatim, split names checked") if got == ids else ("lost", f"ids {got!r:.80}")
