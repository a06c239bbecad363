"""Every push path uploads the S5VH card rendered for its repo id, through a Hub stand-in that behaves like the
Hub where pushes differ (tokens, LFS, revisions, byte ranges); the model API follows transformers'."""

import hashlib
import json

import numpy as np
import pytest
import torch
from huggingface_hub import ModelCard
from huggingface_hub.errors import HfHubHTTPError

from s5vh_hf import S5VHModel
from s5vh_hf.cli.main import main
from s5vh_hf.hub.sharing import push_model_folder
from s5vh_hf.retrieval.evaluation import evaluate_retrieval

from .conftest import make_tiny_config
from .hub_stub import fake_hub


def _card(hub, repo_id: str, revision: str = "main") -> ModelCard:
    return ModelCard(hub.tree(repo_id, revision)["README.md"].content.decode())


def _evaluate(model, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    videos = rng.standard_normal((30, 5, model.config.feature_dim)).astype(np.float32)
    labels = rng.integers(0, 3, 30)
    model.evaluation_results = evaluate_retrieval(model, (videos[:20], labels[:20]), (videos[20:], labels[20:]),
                                                  ks=(5, 10)).to_dict()  # fmt: skip


def test_push_to_hub_uploads_the_s5vh_card_for_that_repo_and_updates_it(tmp_path, monkeypatch, tiny_model):
    with fake_hub(monkeypatch, tmp_path / "cache") as hub:
        tiny_model.push_to_hub("me/tiny", token="hf_test")
        card = _card(hub, "me/tiny")
        assert card.data.library_name == "transformers" and "custom_code" in card.data.tags
        assert card.data.pipeline_tag == "feature-extraction"
        assert 'from_pretrained("me/tiny")' in card.text and "<user>" not in card.text
        assert "Model Card for Model ID" not in card.text and "No evaluation was recorded" in card.text
        # Weights go the LFS route, byte for byte.
        stored = hub.tree("me/tiny")["model.safetensors"]
        assert stored.lfs and stored.sha256 in hub.lfs_objects
        tiny_model.save_pretrained(tmp_path / "local")
        assert stored.sha256 == hashlib.sha256((tmp_path / "local" / "model.safetensors").read_bytes()).hexdigest()
        assert not hub.tree("me/tiny")["config.json"].lfs
        # A re-push after an evaluation replaces the card: the results arrive.
        _evaluate(tiny_model)
        tiny_model.push_to_hub("me/tiny", token="hf_test", tags=["my-tag"])
        card = _card(hub, "me/tiny")
        results = card.data.to_dict()["model-index"][0]["results"]
        assert {m["type"] for r in results for m in r["metrics"]} >= {"map_at_5", "map_at_10"}
        assert "my-tag" in card.data.tags and "| mAP@K |" in card.text
        assert len(hub.state["me/tiny"].commit_messages) == 2


def test_writes_need_a_token_and_private_repos_hide_from_anonymous_readers(tmp_path, monkeypatch, tiny_model):
    with fake_hub(monkeypatch, tmp_path / "cache") as hub:
        with pytest.raises(HfHubHTTPError) as error:
            tiny_model.push_to_hub("me/tiny")
        assert error.value.response.status_code == 401 and "me/tiny" not in hub.state
        tiny_model.push_to_hub("me/secret", token="hf_test", private=True)
        with pytest.raises(OSError):
            S5VHModel.from_pretrained("me/secret", cache_dir=str(tmp_path / "anon"))
        loaded = S5VHModel.from_pretrained("me/secret", token="hf_test", cache_dir=str(tmp_path / "auth"))
        assert loaded.config.code_length == tiny_model.config.code_length


def test_branches_keep_main_intact_and_load_by_revision(tmp_path, monkeypatch, tiny_config):
    torch.manual_seed(0)
    first, second = S5VHModel(tiny_config), S5VHModel(tiny_config)
    videos = np.random.default_rng(3).standard_normal((6, 5, tiny_config.feature_dim)).astype(np.float32)
    with fake_hub(monkeypatch, tmp_path / "cache") as hub:
        first.push_to_hub("me/tiny", token="hf_test")
        main_sha = hub.head("me/tiny")
        second.push_to_hub("me/tiny", token="hf_test", revision="experiment")
        assert hub.head("me/tiny") == main_sha  # main untouched
        on_branch = S5VHModel.from_pretrained("me/tiny", revision="experiment", token="hf_test")
        on_main = S5VHModel.from_pretrained("me/tiny", token="hf_test")
        pinned = S5VHModel.from_pretrained("me/tiny", revision=main_sha, token="hf_test")
        with pytest.raises(OSError):
            S5VHModel.from_pretrained("me/tiny", revision="no-such-branch", token="hf_test")
    np.testing.assert_array_equal(on_branch.encode(videos), second.encode(videos))
    np.testing.assert_array_equal(on_main.encode(videos), first.encode(videos))
    np.testing.assert_array_equal(pinned.encode(videos), first.encode(videos))


def test_save_pretrained_with_push_to_hub_and_the_card_state_round_trip(tmp_path, monkeypatch, tiny_model):
    _evaluate(tiny_model)
    health = {"epoch": 3.0, "step": 9, "distinct_codes": 10.0, "distinct_fraction": 1.0, "bit_entropy": 0.9,
              "constant_bits": 0.0, "bit_imbalance": 0.1, "probe_size": 10, "warnings": []}  # fmt: skip
    tiny_model.training_health = health
    with fake_hub(monkeypatch, tmp_path / "cache") as hub:
        tiny_model.save_pretrained(tmp_path / "m", push_to_hub=True, repo_id="me/saved", token="hf_test")
        card = _card(hub, "me/saved")
        assert 'from_pretrained("me/saved")' in card.text and "## Training health" in card.text
        remote = S5VHModel.from_pretrained("me/saved", token="hf_test")
    state = json.loads((tmp_path / "m" / "s5vh_card_state.json").read_text())
    assert state["evaluation_results"]["map_at_k"] == tiny_model.evaluation_results["map_at_k"]
    local = S5VHModel.from_pretrained(tmp_path / "m")
    for loaded in (local, remote):
        assert loaded.evaluation_results == json.loads(json.dumps(tiny_model.evaluation_results))
        assert loaded.training_health == health


def test_folder_push_renders_the_card_for_the_target_repo(tmp_path, monkeypatch, tiny_model):
    _evaluate(tiny_model)
    tiny_model.save_pretrained(tmp_path / "model")
    saved_card = (tmp_path / "model" / "README.md").read_text()
    assert "<user>/" in saved_card  # a local save does not know its future repo
    with fake_hub(monkeypatch, tmp_path / "cache") as hub:
        push_model_folder(tmp_path / "model", "me/folder", token="hf_test")
        assert main(["push", str(tmp_path / "model"), "me/cli", "--token", "hf_test"]) == 0
        for repo in ("me/folder", "me/cli"):
            card = _card(hub, repo)
            assert f'from_pretrained("{repo}")' in card.text and "<user>" not in card.text
            assert card.data.to_dict()["model-index"][0]["name"] == repo.split("/")[1]
    assert (tmp_path / "model" / "README.md").read_text() == saved_card  # the folder itself is left alone


def test_trainer_push_uploads_the_s5vh_card_and_names_the_base_model(tmp_path, monkeypatch):
    from s5vh_hf.data.clustering import compute_semantic_clusters
    from s5vh_hf.data.synthetic import make_synthetic_videos
    from s5vh_hf.training.arguments import s5vh_training_arguments
    from s5vh_hf.training.trainer import S5VHTrainer

    config = make_tiny_config(num_hash_centers=4)
    data = make_synthetic_videos(num_videos=32, num_classes=4, feature_dim=24, num_frames=6, seed=0)
    with fake_hub(monkeypatch, tmp_path / "cache") as hub:
        torch.manual_seed(0)
        S5VHModel(config).push_to_hub("me/base", token="hf_test")
        model = S5VHModel.from_pretrained("me/base", token="hf_test")
        from s5vh_hf.data.loading import load_feature_dataset
        from s5vh_hf.data.writing import write_feature_split

        write_feature_split(tmp_path / "ds", "train", data.videos(), data.video_ids, [[int(x)] for x in data.labels])
        train = load_feature_dataset(tmp_path / "ds", split="train")
        clusters = compute_semantic_clusters(train, n_clusters=4, pca_dim=8, seed=0)
        args = s5vh_training_arguments(
            config, str(tmp_path / "run"), max_steps=2, per_device_train_batch_size=8, save_strategy="no",
            push_to_hub=True, hub_model_id="me/tuned", hub_token="hf_test", disable_tqdm=True,
        )  # fmt: skip
        trainer = S5VHTrainer(model, args, train, clusters.pseudo_labels, eval_database=train,
                              eval_protocol="all_vs_all", eval_ks=(5,))  # fmt: skip
        trainer.train()
        trainer.evaluate()
        trainer.push_to_hub()
        card = _card(hub, "me/tuned")
        files = set(hub.files["me/tuned"])
    assert "generated_from_trainer" not in card.data.tags and "S5VH video-hashing model" in card.text
    assert card.data.base_model == "me/base" and "fine-tuned from" in card.text
    assert 'from_pretrained("me/tuned")' in card.text and "map_at_5" in json.dumps(card.data.to_dict())
    assert {"model.safetensors", "config.json", "modeling_s5vh.py", "s5vh_card_state.json"} <= files


def test_streaming_a_feature_dataset_reads_byte_ranges(tmp_path, monkeypatch):
    from s5vh_hf.data.loading import load_feature_dataset
    from s5vh_hf.data.synthetic import make_synthetic_videos
    from s5vh_hf.data.writing import write_feature_split
    from s5vh_hf.hub.datasets import push_feature_dataset

    data = make_synthetic_videos(num_videos=9, num_classes=3, feature_dim=8, num_frames=5, seed=4)
    write_feature_split(tmp_path / "ds", "train", data.videos(), data.video_ids, shard_size=4)
    with fake_hub(monkeypatch, tmp_path / "hub-cache") as hub:
        push_feature_dataset(tmp_path / "ds", "me/feats", token="hf_test")
        assert all(f.lfs for p, f in hub.tree("me/feats").items() if p.endswith(".parquet"))
        streamed = load_feature_dataset("me/feats", split="train", streaming=True, token="hf_test")
        rows = list(streamed)
    assert [row["video_id"] for row in rows] == data.video_ids
    np.testing.assert_allclose(np.asarray(rows[8]["features"], np.float32), data.videos()[8], atol=5e-3)


def test_the_stub_answers_byte_ranges_like_the_hub(tmp_path, monkeypatch, tiny_model):
    from huggingface_hub import HfFileSystem

    with fake_hub(monkeypatch, tmp_path / "cache"):
        tiny_model.push_to_hub("me/tiny", token="hf_test")
        fs = HfFileSystem(token="hf_test")
        with fs.open("me/tiny/model.safetensors", "rb", block_size=64) as handle:
            handle.seek(100)
            middle = handle.read(50)
    tiny_model.save_pretrained(tmp_path / "local")
    assert middle == (tmp_path / "local" / "model.safetensors").read_bytes()[100:150]


# ------------------------------------------------------------------------------------------- transformers API


def test_forward_takes_attention_mask_refuses_unknown_arguments_and_returns_hidden_states(tiny_model, tiny_config):
    features = torch.randn(2, 6, tiny_config.feature_dim)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    padded = features.clone()
    padded[0, 4:] = 1e3  # padding that would change the codes if it were read
    with_mask = tiny_model(padded, attention_mask=mask)
    alone = tiny_model(features[:1, :4])
    torch.testing.assert_close(with_mask.video_codes[0], alone.video_codes[0])
    torch.testing.assert_close(tiny_model(padded, frame_mask=mask.bool()).video_codes, with_mask.video_codes)
    with pytest.raises(TypeError, match="older name"):
        tiny_model(features, attention_mask=mask, frame_mask=mask)
    with pytest.raises(TypeError, match="unexpected keyword"):
        tiny_model(features, atention_mask=mask)
    out = tiny_model(features, output_hidden_states=True)
    assert out.last_hidden_state.shape == (2, 6, tiny_config.hidden_size)
    assert len(out.hidden_states) == tiny_config.encoder_depth + 1
    assert all(h.shape == (2, 6, tiny_config.hidden_size) for h in out.hidden_states)
    torch.testing.assert_close(tiny_model.hash_layer(out.last_hidden_state), out.frame_logits)
    assert tiny_model(features).hidden_states is None


def test_encode_precision_names_match_sentence_transformers(tiny_model, tiny_config):
    videos = np.random.default_rng(0).standard_normal((5, 4, tiny_config.feature_dim)).astype(np.float32)
    pm1 = tiny_model.encode(videos)
    packed = tiny_model.encode(videos, output="packed")
    np.testing.assert_array_equal(tiny_model.encode(videos, precision="ubinary"), packed)
    np.testing.assert_array_equal(tiny_model.encode(videos, output="ubinary"), packed)
    binary = tiny_model.encode(videos, precision="binary")
    assert binary.dtype == np.int8
    # sentence-transformers' quantize_embeddings: packbits(x > 0) − 128 as int8
    np.testing.assert_array_equal(binary, (np.packbits(pm1 > 0, axis=-1).astype(np.int16) - 128).astype(np.int8))
    with pytest.raises(ValueError, match="disagree"):
        tiny_model.encode(videos, output="bool", precision="binary")
    np.testing.assert_array_equal(tiny_model.encode(videos, batch_size=np.int64(2)), pm1)
    with pytest.raises(ValueError, match="batch_size"):
        tiny_model.encode(videos, batch_size=True)


def test_trainer_predict_returns_codes_and_evaluate_takes_a_split(tmp_path):
    from s5vh_hf.data.loading import load_feature_dataset
    from s5vh_hf.data.synthetic import make_synthetic_videos
    from s5vh_hf.data.writing import write_feature_split
    from s5vh_hf.training.arguments import s5vh_training_arguments
    from s5vh_hf.training.trainer import S5VHTrainer

    config = make_tiny_config(num_hash_centers=4)
    data = make_synthetic_videos(num_videos=24, num_classes=4, feature_dim=24, num_frames=6, seed=1)
    write_feature_split(tmp_path / "ds", "train", data.videos(), data.video_ids, [[int(x)] for x in data.labels])
    train = load_feature_dataset(tmp_path / "ds", split="train")
    model = S5VHModel(config)
    args = s5vh_training_arguments(config, str(tmp_path / "run"), report_to="none", disable_tqdm=True)
    trainer = S5VHTrainer(model, args, train, data.labels % 4, eval_ks=(5,))
    prediction = trainer.predict(train)
    np.testing.assert_array_equal(prediction.predictions, model.encode(data.videos()))
    assert prediction.label_ids == [[int(x)] for x in data.labels]
    assert prediction.metrics["test_num_videos"] == 24
    metrics = trainer.evaluate(train)
    assert 0 <= metrics["eval_map@5"] <= 1
    both = trainer.evaluate({"database": train, "query": train.select(range(5))}, metric_key_prefix="val")
    assert set(both) >= {"val_map@5", "val_precision@5"}
