"""From video files to codes: decoding by seeking, bad videos skipped with reasons, frame encoders (tiny random
models of the real families, saved as Hub-style folders), extraction that resumes, an index that refuses other
models, search with a video, and the raw-video demo."""

import json
import sys

import numpy as np
import pytest
import torch

av = pytest.importorskip("av", reason="the video extra (PyAV) is installed by the quickstart")

from s5vh_hf.cli.main import main  # noqa: E402
from s5vh_hf.video.decoding import BadVideo, read_frames  # noqa: E402
from s5vh_hf.video.extraction import extract_video_features  # noqa: E402
from s5vh_hf.video.frame_encoders import VGGFeatures, load_frame_encoder, save_vgg  # noqa: E402
from s5vh_hf.video.synthetic import class_names, make_synthetic_video_collection, render_frames, write_video  # noqa: E402


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    labels = make_synthetic_video_collection(folder / "videos", videos_per_class=3, num_frames=16, size=48, seed=0)
    torch.manual_seed(0)
    encoder_dir = save_vgg(VGGFeatures(width=1 / 32, hidden=24), folder / "tiny-vgg")
    return folder, labels, encoder_dir


def _bad_files(folder, good_video):
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "text.mp4").write_text("not a video at all")
    good = good_video.read_bytes()
    (folder / "truncated.mp4").write_bytes(good[: len(good) // 5])
    with av.open(str(folder / "audio_only.mp4"), mode="w") as container:  # an audio track and nothing else
        stream = container.add_stream("aac", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    write_video(folder / "short.mp4", render_frames("grow", 4, 48, np.random.default_rng(1)))  # 4 < T frames


def test_seeking_samples_the_same_frames_as_decoding_everything(collection):
    folder, _, _ = collection
    path = next((folder / "videos").rglob("*.mp4"))
    seeked, decoded = read_frames(path, num_frames=8), read_frames(path, num_frames=8, seek=False)
    assert seeked.frames.shape == (8, 48, 48, 3) and seeked.frames.dtype == np.uint8
    np.testing.assert_allclose(seeked.times, decoded.times)
    assert np.abs(seeked.frames.astype(int) - decoded.frames.astype(int)).mean() < 1.0
    assert 1.9 < seeked.duration < 2.1  # 16 frames at 8 fps
    assert len(read_frames(path, num_frames=None, fps=2).frames) == 4


def test_every_kind_of_bad_video_is_refused_with_its_reason(collection, tmp_path):
    _bad_files(tmp_path, next((collection[0] / "videos").rglob("*.mp4")))
    reasons = {}
    for name in ("empty.mp4", "text.mp4", "truncated.mp4", "audio_only.mp4", "missing.mp4"):
        with pytest.raises(BadVideo) as error:
            read_frames(tmp_path / name, num_frames=8)
        reasons[name] = error.value.reason
    assert "no such file" in reasons["missing.mp4"] and "no video stream" in reasons["audio_only.mp4"]
    assert "empty file" in reasons["empty.mp4"] and "not a readable video" in reasons["text.mp4"]
    assert all(reasons.values())
    # A video with fewer frames than T is not bad: a held frame is sampled more than once (duplicate frames are frames).
    short = read_frames(tmp_path / "short.mp4", num_frames=8)
    assert len(short.frames) == 8 and len({frame.tobytes() for frame in short.frames}) <= 4


def test_frame_encoders_of_the_literatures_families_load_from_local_folders(tmp_path, collection):
    from transformers import ConvNextImageProcessor, ResNetConfig, ResNetModel

    frames = read_frames(next((collection[0] / "videos").rglob("*.mp4")), num_frames=4).frames
    vgg = load_frame_encoder(collection[2], device="cpu")
    assert vgg.encode(frames).shape == (4, 24) and vgg.identity["feature_dim"] == 24
    # A tiny random ResNet, saved with its image processor as a Hub repo would be (the resnet50 family).
    torch.manual_seed(0)
    resnet = ResNetModel(ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic"))
    resnet.save_pretrained(tmp_path / "tiny-resnet")
    ConvNextImageProcessor(size={"shortest_edge": 64}).save_pretrained(tmp_path / "tiny-resnet")
    encoder = load_frame_encoder(tmp_path / "tiny-resnet", device="cpu")
    assert encoder.encode(frames).shape == (4, 16) and encoder.feature_dim == 16


def test_vgg_weights_load_from_torchvision_and_timm_layouts():
    torch.manual_seed(0)
    model = VGGFeatures(width=1 / 32, hidden=24)
    state = model.state_dict()
    torchvision_layout = {
        k.replace("fc6.", "classifier.0.").replace("fc7.", "classifier.3."): v for k, v in state.items()
    }
    torchvision_layout["classifier.6.weight"] = torch.randn(1000, 24)  # fc8 is not a feature: ignored
    timm_layout = {k: v for k, v in state.items() if k.startswith("features.")}
    timm_layout["pre_logits.fc1.weight"] = state["fc6.weight"].view(24, -1, 7, 7)
    timm_layout["pre_logits.fc1.bias"] = state["fc6.bias"]
    timm_layout["pre_logits.fc2.weight"] = state["fc7.weight"].view(24, 24, 1, 1)
    timm_layout["pre_logits.fc2.bias"] = state["fc7.bias"]
    images = torch.randn(2, 3, 224, 224)
    for layout in (torchvision_layout, timm_layout):
        other = VGGFeatures(width=1 / 32, hidden=24)
        other.load_checkpoint(layout)
        torch.testing.assert_close(other(images), model(images))


def test_extraction_skips_bad_videos_reports_them_and_resumes(collection, tmp_path):
    folder, labels, encoder_dir = collection
    mixed = tmp_path / "mixed"
    for relative in sorted(labels)[:6]:
        (mixed / relative).parent.mkdir(parents=True, exist_ok=True)
        (mixed / relative).write_bytes((folder / "videos" / relative).read_bytes())
    _bad_files(mixed, folder / "videos" / sorted(labels)[0])
    encoder = load_frame_encoder(encoder_dir, device="cpu")
    report = extract_video_features(mixed, tmp_path / "features", encoder, split="database", num_frames=8,
                                    labels=labels, chunk_size=4)  # fmt: skip
    assert report.written == 7 and len(report.skipped) == 4
    written = json.loads((tmp_path / "features" / "extraction_report_database.json").read_text())
    assert set(written["skipped"]) == {str(mixed / n) for n in ("empty.mp4", "text.mp4", "truncated.mp4",
                                                                 "audio_only.mp4")}  # fmt: skip
    from s5vh_hf.data.loading import load_feature_dataset

    split = load_feature_dataset(tmp_path / "features", split="database")
    assert len(split) == 7 and set(split.column_names) >= {"path", "duration", "frame_times", "labels"}
    assert split[0]["num_frames"] == 8 and len(split[0]["frame_times"]) == 8
    assert split[0]["labels"] == [labels[split[0]["video_id"]]]
    # A rerun with the same settings reuses every chunk; other settings redo them.
    chunks = sorted((tmp_path / "features" / ".extract" / "database").glob("chunk-*.parquet"))
    stamps = [c.stat().st_mtime_ns for c in chunks]
    extract_video_features(mixed, tmp_path / "features", encoder, split="database", num_frames=8, chunk_size=4)
    assert [c.stat().st_mtime_ns for c in chunks] == stamps
    extract_video_features(mixed, tmp_path / "features", encoder, split="database", num_frames=6, chunk_size=4)
    assert load_feature_dataset(tmp_path / "features", split="database")[0]["num_frames"] == 6


def test_index_and_search_with_a_video_refuse_another_model(collection, tmp_path, capsys):
    from s5vh_hf import S5VHConfig, S5VHModel

    folder, labels, encoder_dir = collection
    torch.manual_seed(0)
    config = S5VHConfig(feature_dim=24, hidden_size=16, encoder_depth=1, decoder_hidden_size=16, code_length=16,
                        num_hash_centers=4)  # fmt: skip
    S5VHModel(config).save_pretrained(tmp_path / "model")
    assert main(["index", str(tmp_path / "model"), str(folder / "videos"), "--extractor", str(encoder_dir),
                 "--frames", "8", "--out", str(tmp_path / "index")]) == 0  # fmt: skip
    manifest = json.loads((tmp_path / "index" / "manifest.json").read_text())
    assert manifest["count"] == len(labels) and manifest["extractor"]["feature_dim"] == 24
    query = folder / "videos" / sorted(labels)[0]
    assert main(["search", str(tmp_path / "index"), "--query-video", str(query), "--k", "3",
                 "--json", str(tmp_path / "hits.json")]) == 0  # fmt: skip
    hits = json.loads((tmp_path / "hits.json").read_text())[0]["results"]
    assert len(hits) == 3 and hits[0]["video_id"] == sorted(labels)[0] and hits[0]["hamming"] == 0
    torch.manual_seed(1)
    S5VHModel(config).save_pretrained(tmp_path / "other")
    capsys.readouterr()
    assert main(["search", str(tmp_path / "index"), "--query-video", str(query), "--with-model",
                 str(tmp_path / "other")]) == 2  # fmt: skip
    assert "another model" in capsys.readouterr().err


def test_the_video_demo_runs_end_to_end(tmp_path):
    from s5vh_hf.recipes.video_demo import run_video_demo

    summary = run_video_demo(tmp_path / "demo", epochs=4, show_progress=False, videos_per_class=4, num_frames=8)
    assert summary["videos"] == 4 * len(class_names()) and summary["queries"] == len(class_names())
    assert 0 <= summary["precision@5"]["S5VH"] <= 1


def test_a_missing_pyav_names_the_extra(monkeypatch):
    from s5vh_hf.video.decoding import import_av

    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(ImportError, match=r"s5vh-hf\[video\]"):
        import_av()


def test_two_processes_share_the_extraction_and_write_what_one_writes(collection, tmp_path):
    import os
    import subprocess
    from pathlib import Path

    from s5vh_hf.data.loading import load_feature_dataset

    folder, labels, encoder_dir = collection
    argv = ["-m", "s5vh_hf.cli", "extract", str(folder / "videos"), "--extractor", str(encoder_dir), "--frames", "6",
            "--chunk-size", "4"]  # fmt: skip
    assert main(argv[2:] + ["--out", str(tmp_path / "one")]) == 0
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", *argv,
               "--out", str(tmp_path / "two")]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(command, capture_output=True, text=True, cwd=root, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("extracted") == 1  # only the main process merges and reports
    one, two = (load_feature_dataset(tmp_path / name, split="train") for name in ("one", "two"))
    assert one["video_id"] == two["video_id"] and len(one) == len(labels)
    # equal up to one float16 step: the processes ran one thread each, which sums convolutions in another order
    np.testing.assert_allclose(np.asarray(one.with_format("numpy")["features"], np.float32),
                               np.asarray(two.with_format("numpy")["features"], np.float32), atol=1e-4)  # fmt: skip


def test_a_dataset_with_a_path_column_is_an_input_too(collection, tmp_path):
    import datasets

    from s5vh_hf.data.loading import load_feature_dataset

    folder, labels, encoder_dir = collection
    rows = sorted(labels)[:4]
    table = datasets.Dataset.from_dict({"path": [str(folder / "videos" / r) for r in rows],
                                        "label": [labels[r] for r in rows]})  # fmt: skip
    table.to_parquet(str(tmp_path / "list.parquet"))
    assert main(["extract", str(tmp_path), "--path-split", "train", "--extractor", str(encoder_dir), "--frames", "4",
                 "--out", str(tmp_path / "f")]) == 0  # fmt: skip
    extracted = load_feature_dataset(tmp_path / "f", split="train")
    assert len(extracted) == 4 and extracted[0]["labels"] == [labels[rows[0]]]
