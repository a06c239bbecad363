import numpy as np
import pytest
import scipy.io
import torch

from s5vh_hf.data.collator import IndexedFeatureDataset, TwoViewCollator
from s5vh_hf.data.import_hdf5 import import_h5_features, read_mat_labels
from s5vh_hf.data.loading import load_feature_dataset
from s5vh_hf.data.synthetic import make_synthetic_videos
from s5vh_hf.data.writing import write_feature_split
from s5vh_hf.hub.datasets import push_feature_dataset


def _write_h5(path, feats, key="feats"):
    import h5py

    with h5py.File(path, "w") as handle:
        handle[key] = feats


def _literature_files(tmp_path, n=23, frames=5, dim=16, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    feats = rng.standard_normal((n, frames, dim)).astype(np.float32)
    labels = np.zeros((n, classes), dtype=np.uint8)
    labels[np.arange(n), rng.integers(0, classes, n)] = 1
    labels[0, (labels[0].argmax() + 1) % classes] = 1  # one multi-label video
    _write_h5(tmp_path / "train_feats.h5", feats)
    scipy.io.savemat(tmp_path / "train_labels.mat", {"labels": labels})
    return feats, labels


def test_h5_and_mat_round_trip_to_model_forward(tmp_path, tiny_model):
    feats, labels = _literature_files(tmp_path, dim=24)
    out = tmp_path / "dataset"
    shards = import_h5_features(
        tmp_path / "train_feats.h5", out, "train", tmp_path / "train_labels.mat", shard_size=10, read_chunk=4
    )
    assert [p.name for p in shards] == [f"train-0000{i}-of-00003.parquet" for i in range(3)]
    assert "path: data/train-*" in (out / "README.md").read_text()
    assert not list(out.glob(".staging-*"))
    dataset = load_feature_dataset(out, split="train")
    assert len(dataset) == 23 and dataset[0]["num_frames"] == 5
    assert dataset[0]["labels"] == np.flatnonzero(labels[0]).tolist() and len(dataset[0]["labels"]) == 2
    row = dataset.with_format("numpy")[7]
    np.testing.assert_allclose(row["features"], feats[7], atol=2e-3)  # stored as float16
    batch = TwoViewCollator(0.5, seed=0)([IndexedFeatureDataset(dataset)[i] for i in (3, 9, 11)])
    assert batch["video_index"].tolist() == [3, 9, 11]
    out1 = tiny_model(batch["features"], batch["attention_mask"], batch["visible_mask_1"])
    out2 = tiny_model(batch["features"], batch["attention_mask"], batch["visible_mask_2"])
    assert out1.reconstruction.shape == out2.reconstruction.shape == (3 * 2, 24)


def test_two_splits_and_activitynet_label_keys(tmp_path):
    rng = np.random.default_rng(1)
    _write_h5(tmp_path / "db.h5", rng.standard_normal((6, 3, 8)).astype(np.float32))
    _write_h5(tmp_path / "q.h5", rng.standard_normal((4, 3, 8)).astype(np.float32))
    re_label = np.eye(3, dtype=np.uint8)[rng.integers(0, 3, 6)]
    q_label = np.eye(3, dtype=np.uint8)[rng.integers(0, 3, 4)]
    scipy.io.savemat(tmp_path / "anet.mat", {"re_label": re_label, "q_label": q_label})
    import_h5_features(tmp_path / "db.h5", tmp_path / "out", "database", tmp_path / "anet.mat")
    import_h5_features(tmp_path / "q.h5", tmp_path / "out", "query", tmp_path / "anet.mat")
    both = load_feature_dataset(tmp_path / "out")
    assert sorted(both) == ["database", "query"]
    assert [r["labels"][0] for r in both["query"]] == q_label.argmax(1).tolist()
    assert [r["labels"][0] for r in both["database"]] == re_label.argmax(1).tolist()


def test_variable_length_videos_and_streaming(tmp_path):
    data = make_synthetic_videos(num_videos=20, feature_dim=8, num_frames=9, min_frames=3, seed=2)
    write_feature_split(tmp_path, "train", data.videos(), data.video_ids, [[int(x)] for x in data.labels], shard_size=6)
    dataset = load_feature_dataset(tmp_path, split="train")
    assert [r["num_frames"] for r in dataset] == data.lengths.tolist()
    streamed = load_feature_dataset(tmp_path, split="train", streaming=True)
    first = next(iter(streamed))
    assert first["video_id"] == data.video_ids[0] and len(first["features"]) == data.lengths[0]
    batch = TwoViewCollator(0.5, seed=1)([IndexedFeatureDataset(dataset)[i] for i in range(4)])
    assert torch.equal(batch["attention_mask"].sum(1), torch.as_tensor(data.lengths[:4]))
    assert not (batch["visible_mask_1"] & ~batch["attention_mask"]).any()


def test_collator_is_reproducible_and_uses_global_rng_without_seed():
    examples = [{"features": np.random.default_rng(i).standard_normal((6, 4)), "video_index": i} for i in range(3)]
    a, b = TwoViewCollator(0.5, seed=3)(examples), TwoViewCollator(0.5, seed=3)(examples)
    assert torch.equal(a["visible_mask_1"], b["visible_mask_1"])
    torch.manual_seed(0)
    c = TwoViewCollator(0.5)(examples)
    torch.manual_seed(0)
    d = TwoViewCollator(0.5)(examples)
    assert torch.equal(c["visible_mask_2"], d["visible_mask_2"])


@pytest.mark.parametrize(
    "examples, match",
    [
        ([], "empty batch"),
        ([{"frames": np.zeros((3, 4))}], "no 'features'"),
        ([{"features": np.zeros((1, 4))}], "T ≥ 2"),
        ([{"features": np.zeros((3, 4))}, {"features": np.zeros((3, 5))}], "disagree"),
    ],
)
def test_collator_bad_batches(examples, match):
    with pytest.raises(ValueError, match=match):
        TwoViewCollator(0.5)(examples)
    with pytest.raises(ValueError, match="expected D=4, got 6"):
        TwoViewCollator(0.5, feature_dim=4)([{"features": np.zeros((3, 6))}])


def test_import_bad_input_leaves_nothing_behind(tmp_path):
    feats, _ = _literature_files(tmp_path)
    out = tmp_path / "out"
    bad = feats.copy()
    bad[13, 2, 1] = np.nan
    _write_h5(tmp_path / "nan.h5", bad)
    with pytest.raises(ValueError, match="train-000013"):
        import_h5_features(tmp_path / "nan.h5", out, "train", shard_size=5, read_chunk=3)
    assert not list((out / "data").glob("*.parquet")) and not list(out.glob(".staging-*"))
    assert not (out / "README.md").exists()
    _write_h5(tmp_path / "wrongkey.h5", feats, key="features")
    with pytest.raises(ValueError, match="no dataset 'feats'"):
        import_h5_features(tmp_path / "wrongkey.h5", out, "train")
    scipy.io.savemat(tmp_path / "short.mat", {"labels": np.eye(4, dtype=np.uint8)})
    with pytest.raises(ValueError, match="4 label rows but .* 23 videos"):
        import_h5_features(tmp_path / "train_feats.h5", out, "train", tmp_path / "short.mat")
    scipy.io.savemat(tmp_path / "nolabels.mat", {"other": np.eye(4)})
    with pytest.raises(ValueError, match="none of the label keys"):
        import_h5_features(tmp_path / "train_feats.h5", out, "train", tmp_path / "nolabels.mat")
    _write_h5(tmp_path / "empty.h5", np.zeros((0, 5, 16), np.float32))
    with pytest.raises(ValueError, match="empty split"):
        import_h5_features(tmp_path / "empty.h5", out, "train")
    (tmp_path / "corrupt.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 100)
    with pytest.raises(ValueError, match="not a readable HDF5"):
        import_h5_features(tmp_path / "corrupt.h5", out, "train")


def test_truncated_h5_is_reported(tmp_path):
    feats = np.random.default_rng(0).standard_normal((400, 5, 64)).astype(np.float32)
    _write_h5(tmp_path / "full.h5", feats)
    data = (tmp_path / "full.h5").read_bytes()
    (tmp_path / "cut.h5").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.h5"):
        import_h5_features(tmp_path / "cut.h5", tmp_path / "out", "train")
    assert not list((tmp_path / "out").glob("data/*.parquet"))


def test_load_feature_dataset_errors(tmp_path):
    import datasets

    with pytest.raises(ValueError, match="no parquet shards"):
        load_feature_dataset(tmp_path)
    datasets.Dataset.from_dict({"video_id": ["a"], "num_frames": [2]}).to_parquet(str(tmp_path / "x.parquet"))
    with pytest.raises(ValueError, match="missing column"):
        load_feature_dataset(str(tmp_path / "x.parquet").replace("x.parquet", ""), split="train")


def test_mat_v73_labels(tmp_path):
    import h5py

    labels = np.eye(3, dtype=np.float64)[[0, 2, 1, 1]]
    with h5py.File(tmp_path / "v73.mat", "w") as handle:
        handle["labels"] = labels.T  # MATLAB stores column-major
    assert read_mat_labels(tmp_path / "v73.mat").tolist() == labels.astype(bool).tolist()


def test_push_uploads_the_shards_and_card(tmp_path, monkeypatch):
    """huggingface_hub's real upload code, against a fake Hub behind a mocked HTTP transport."""
    from .hub_stub import fake_hub

    data = make_synthetic_videos(num_videos=12, feature_dim=8, num_frames=4, seed=3)
    write_feature_split(tmp_path / "ds", "train", data.videos(), data.video_ids, shard_size=5)
    (tmp_path / "ds" / "notes.txt").write_text("not part of the dataset")
    with fake_hub(monkeypatch, tmp_path / "hub-cache") as hub:
        uploaded = push_feature_dataset(tmp_path / "ds", "me/features", token="hf_test", private=True)
    expected = ["README.md"] + [f"data/train-0000{i}-of-00003.parquet" for i in range(3)]
    assert sorted(uploaded) == sorted(expected)
    assert sorted(hub.files["me/features"]) == sorted(expected)
    from huggingface_hub import DatasetCard

    card = DatasetCard(hub.files["me/features"]["README.md"].decode())
    assert 'load_feature_dataset("me/features"' in card.text and "http" not in card.text.replace(
        "https://arxiv.org/abs/2412.14518", ""
    )
    data_card = card.data.to_dict()
    assert data_card["license"] == "other" and data_card["task_categories"] == ["feature-extraction"]
    assert data_card["size_categories"] == ["n<1K"] and data_card["feature_dim"] == 8
    info = data_card["dataset_info"]
    assert {f["name"] for f in info["features"]} == {"video_id", "features", "num_frames", "labels"}
    assert info["splits"] == [{"name": "train", "num_bytes": info["splits"][0]["num_bytes"], "num_examples": 12}]
    assert hub.repos["me/features"]["type"] == "dataset", hub.repos
    assert hub.repos["me/features"].get("private") is True or hub.repos["me/features"].get("visibility") == "private"
    with pytest.raises(ValueError, match="not a converted feature dataset"):
        push_feature_dataset(tmp_path, "me/features")


def test_load_by_hub_repo_id_through_the_fake_hub(tmp_path, monkeypatch):
    from .hub_stub import fake_hub

    data = make_synthetic_videos(num_videos=9, num_classes=3, feature_dim=8, num_frames=5, min_frames=2, seed=4)
    labels = [[int(x)] for x in data.labels]
    write_feature_split(tmp_path / "ds", "train", data.videos(), data.video_ids, labels, shard_size=4)
    with fake_hub(monkeypatch, tmp_path / "hub-cache") as hub:
        push_feature_dataset(tmp_path / "ds", "me/feats", token="hf_test")
        remote = load_feature_dataset("me/feats", split="train", cache_dir=str(tmp_path / "cache"), token="hf_test")
    assert any(path.endswith("train-00000-of-00003.parquet") for _, path in hub.requests), hub.requests
    local = load_feature_dataset(tmp_path / "ds", split="train")
    assert remote["video_id"] == local["video_id"] == data.video_ids
    assert remote["labels"] == labels
    np.testing.assert_array_equal(remote.with_format("numpy")[8]["features"], local.with_format("numpy")[8]["features"])


def test_rewritten_folder_is_never_served_from_a_stale_cache(tmp_path):
    for seed in (1, 2):
        folder = tmp_path / f"run{seed}" / "ds"  # same folder name each time
        data = make_synthetic_videos(num_videos=9, num_classes=3, feature_dim=8, num_frames=4 + seed, seed=seed)
        write_feature_split(folder, "train", data.videos(), data.video_ids)
        loaded = load_feature_dataset(folder, split="train")
        assert loaded[0]["num_frames"] == 4 + seed
        np.testing.assert_allclose(loaded.with_format("numpy")[8]["features"], data.videos()[8], atol=5e-3)
