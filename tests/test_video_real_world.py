"""Real-world video files (made here with PyAV's encoders): offset starts, MPEG-TS/PS, held frames, rotation tags,
streamed WebM, 4K, several codecs, and bad files; an index that grows and shrinks; query errors as one line."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("av", reason="the video extra (PyAV) is installed by the quickstart")

from s5vh_hf.cli.main import main  # noqa: E402
from s5vh_hf.video.corpus import frame_index, make_real_world_corpus, write_case  # noqa: E402
from s5vh_hf.video.decoding import BadVideo, find_videos, read_frames  # noqa: E402
from s5vh_hf.video.frame_encoders import VGGFeatures, save_vgg  # noqa: E402

FRAMES = 8


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    return folder, make_real_world_corpus(folder / "videos")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from s5vh_hf import S5VHConfig, S5VHModel

    folder = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    encoder_dir = save_vgg(VGGFeatures(width=1 / 32, hidden=24), folder / "tiny-vgg")
    config = S5VHConfig(feature_dim=24, hidden_size=16, encoder_depth=1, decoder_hidden_size=16, code_length=16,
                        num_hash_centers=4)  # fmt: skip
    S5VHModel(config).save_pretrained(folder / "model")
    return folder / "model", encoder_dir


def test_every_decodable_case_gives_the_frames_shown_at_the_sample_times(corpus):
    _, cases = corpus
    decodable = {name: case for name, case in cases.items() if case.refused_because is None}
    assert {"offset_start.mkv", "mpeg_ts.ts", "mpeg_ps.mpg", "held_frame.mkv", "rotated.mp4", "streamed.webm",
            "uhd.mp4"} <= set(decodable)  # fmt: skip
    for name, case in decodable.items():
        for seek in (True, False):
            sampled = read_frames(case.path, num_frames=FRAMES, seek=seek, size=256)
            assert [frame_index(f) for f in sampled.frames] == case.expected_indices(FRAMES), (name, seek)
            assert sampled.duration == pytest.approx(case.duration, abs=0.05), name
            assert sampled.times[0] == pytest.approx(case.duration / FRAMES / 2, abs=1e-6)
            assert min(sampled.frames.shape[1:3]) <= 256


def test_a_held_frame_is_sampled_for_every_time_it_covers(corpus):
    _, cases = corpus
    indices = [frame_index(f) for f in read_frames(cases["held_frame.mkv"].path, num_frames=FRAMES).frames]
    assert indices.count(2) >= 5  # frame 2 is shown for 5 of the 6 seconds


def test_a_rotated_phone_video_comes_out_upright(corpus):
    _, cases = corpus
    sampled = read_frames(cases["rotated.mp4"].path, num_frames=2)
    frame = sampled.frames[0]
    assert sampled.rotation == 90 and frame.shape[:2] == (64, 48)  # stored 48×64 landscape, shown 64×48 portrait
    # The marker stored top-left is top-right once turned 90° clockwise, as players show it.
    assert frame[:6, -6:].mean() > 200 and frame[:6, :6].mean() < 200 and frame[-6:, -6:].mean() < 200


def test_a_4k_frame_is_shrunk_as_it_is_decoded(corpus):
    _, cases = corpus
    sampled = read_frames(cases["uhd.mp4"].path, num_frames=4, size=256)
    assert sampled.frames.shape == (4, 256, 455, 3)


def test_bad_files_are_refused_with_what_really_happened(corpus):
    _, cases = corpus
    reasons = {}
    for name in ("truncated.mp4", "cover_art.mp3", "dangling.mp4"):
        with pytest.raises(BadVideo) as error:
            read_frames(cases[name].path, num_frames=FRAMES)
        reasons[name] = error.value.reason
    assert reasons["truncated.mp4"].startswith("truncated")
    assert "cover art" in reasons["cover_art.mp3"] and "PermissionError" not in reasons["cover_art.mp3"]
    assert "symbolic link to a missing file" in reasons["dangling.mp4"]


def test_folders_list_every_container_and_dangling_links(corpus):
    folder, cases = corpus
    found = {path.name for path in find_videos(folder / "videos")}
    assert {"mpeg_ts.ts", "mpeg_ps.mpg", "streamed.webm", "dangling.mp4"} <= found
    assert "cover_art.mp3" not in found  # an audio file is not looked for
    assert find_videos(cases["mpeg_ts.ts"].path) == [cases["mpeg_ts.ts"].path]  # .ts as a single argument


def test_extracting_the_corpus_writes_every_decodable_file_and_reports_the_rest(corpus, tiny_model, tmp_path):
    from s5vh_hf.data.loading import load_feature_dataset

    folder, cases = corpus
    _, encoder_dir = tiny_model
    argv = ["extract", str(folder / "videos"), "--extractor", str(encoder_dir), "--frames", str(FRAMES),
            "--out", str(tmp_path / "features"), "--split", "database", "--device", "cpu"]  # fmt: skip
    assert main(argv) == 0
    report = json.loads((tmp_path / "features" / "extraction_report_database.json").read_text())
    decodable = [c for c in cases.values() if c.refused_because is None]
    assert report["written"] == len(decodable)
    assert set(report["skipped"]) == {str(cases[n].path) for n in ("truncated.mp4", "dangling.mp4")}
    split = load_feature_dataset(tmp_path / "features", split="database")
    assert all(os.path.isabs(path) for path in split["path"])


def test_the_report_is_written_when_nothing_decodes(tiny_model, tmp_path, capsys):
    _, encoder_dir = tiny_model
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "a.mp4").write_text("not a video")
    (tmp_path / "videos" / "b.ts").write_bytes(b"\x47" * 10)
    assert main(["extract", str(tmp_path / "videos"), "--extractor", str(encoder_dir), "--out",
                 str(tmp_path / "out")]) == 2  # fmt: skip
    assert "none of the 2 videos could be decoded" in capsys.readouterr().err
    report = json.loads((tmp_path / "out" / "extraction_report_train.json").read_text())
    assert set(report["skipped"]) == {str(tmp_path / "videos" / n) for n in ("a.mp4", "b.ts")}


def _video_folder(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        times = [t / 5 for t in range(10)]
        path = folder / f"clip-{index:02d}.mp4"
        write_case(path, frame_times=times, size=(32, 32 + 8 * index))
        paths.append(path)
    return paths


def test_an_index_grows_and_shrinks_decoding_only_what_changed(tiny_model, tmp_path, capsys):
    from s5vh_hf.video.index import VideoIndex

    model_dir, encoder_dir = tiny_model
    paths = _video_folder(tmp_path / "videos", 5)
    extra = _video_folder(tmp_path / "more", 1)[0]
    assert main(["index", str(model_dir), str(tmp_path / "videos"), "--extractor", str(encoder_dir), "--frames",
                 str(FRAMES), "--out", str(tmp_path / "index")]) == 0  # fmt: skip
    before = VideoIndex(tmp_path / "index")
    codes_before = dict(zip(before.paths, before.index.codes().tolist()))
    capsys.readouterr()
    assert main(["index", str(tmp_path / "index"), "--add", str(extra), str(paths[0]), "--json", "-"]) == 0
    output = capsys.readouterr()
    change = json.loads(output.out)["add"]
    assert change["added"] == [str(extra)] and change["unchanged"] == [str(paths[0])]
    assert change["frames_decoded"] == FRAMES  # the new video alone was decoded
    after = VideoIndex(tmp_path / "index")
    assert len(after) == 6 and all(after.index.codes()[after.paths.index(p)].tolist() == c
                                   for p, c in codes_before.items())  # fmt: skip
    # A changed file replaces its entry; a removed one leaves the others as they were.
    write_case(paths[1], frame_times=[t / 5 for t in range(12)], size=(40, 40))
    change = VideoIndex(tmp_path / "index").add_videos([paths[1]], *_model_and_encoder(model_dir, encoder_dir))
    assert change.replaced == [str(paths[1])] and change.frames_decoded == FRAMES
    assert main(["index", str(tmp_path / "index"), "--remove", "clip-02.mp4", str(paths[3]), "nope"]) == 0
    assert "2 removed, 1 not in the index" in capsys.readouterr().err
    assert main(["index", str(tmp_path / "index"), "--list", "--json", "-"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["info"]["count"] == 4 and len(listed["entries"]) == 4
    ids = [e["video_id"] for e in listed["entries"]]
    assert sorted(ids) == sorted(["clip-00.mp4", "clip-01.mp4", "clip-04.mp4", str(extra)])  # a taken id: the path
    assert listed["info"]["extractor"]["feature_dim"] == 24 and os.path.isabs(listed["info"]["model"])


def _model_and_encoder(model_dir, encoder_dir):
    from s5vh_hf import S5VHModel
    from s5vh_hf.video.frame_encoders import load_frame_encoder

    return S5VHModel.from_pretrained(model_dir), load_frame_encoder(encoder_dir, device="cpu")


def test_query_errors_are_one_line_and_the_other_queries_are_answered(tiny_model, tmp_path, capsys):
    model_dir, encoder_dir = tiny_model
    paths = _video_folder(tmp_path / "videos", 3)
    (tmp_path / "bad.mp4").write_text("garbage")
    assert main(["index", str(model_dir), str(tmp_path / "videos"), "--extractor", str(encoder_dir), "--frames",
                 str(FRAMES), "--out", str(tmp_path / "index")]) == 0  # fmt: skip
    capsys.readouterr()
    other = tmp_path / "elsewhere"
    other.mkdir()
    cwd = os.getcwd()
    try:  # from another folder: the manifest's paths are absolute
        os.chdir(other)
        status = main(["search", str(tmp_path / "index"), "--query-video", str(tmp_path / "bad.mp4"),
                       "--query-video", str(paths[1]), "--k", "3", "--json", "-"])  # fmt: skip
    finally:
        os.chdir(cwd)
    output = capsys.readouterr()
    assert status == 2
    errors = [line for line in output.err.splitlines() if "error" in line]
    assert len(errors) == 1 and "bad.mp4" in errors[0] and "Traceback" not in output.err
    answers = json.loads(output.out)
    assert answers[0]["error"] and answers[0]["results"] == []
    assert {"video_id": "clip-01.mp4", "path": str(paths[1]), "hamming": 0} in answers[1]["results"]  # clips tie


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda m: "{not json", "not valid JSON"),
        (lambda m: json.dumps({k: v for k, v in m.items() if k != "model"}), "names no model fingerprint"),
        (lambda m: json.dumps([1, 2]), "not a JSON object"),
    ],
)
def test_a_damaged_index_says_which_file_and_what_is_wrong(tiny_model, tmp_path, capsys, damage, message):
    model_dir, encoder_dir = tiny_model
    _video_folder(tmp_path / "videos", 2)
    assert main(["index", str(model_dir), str(tmp_path / "videos"), "--extractor", str(encoder_dir), "--frames", "4",
                 "--out", str(tmp_path / "index")]) == 0  # fmt: skip
    manifest = tmp_path / "index" / "manifest.json"
    manifest.write_text(damage(json.loads(manifest.read_text())))
    capsys.readouterr()
    assert main(["search", str(tmp_path / "index"), "--query-video", str(tmp_path / "videos" / "clip-00.mp4")]) == 2
    error = capsys.readouterr().err
    assert str(manifest) in error and message in error and len(error.strip().splitlines()) == 1


def test_a_4k_clip_extracts_in_bounded_memory(corpus, tiny_model, tmp_path):
    """Peak resident memory (VmHWM) of a whole extraction of the 4K clip in a fresh process: under 1 GB."""
    _, cases = corpus
    _, encoder_dir = tiny_model
    script = (
        "from pathlib import Path\n"
        "from s5vh_hf.video.extraction import extract_video_features\n"
        "from s5vh_hf.video.frame_encoders import load_frame_encoder\n"
        f"encoder = load_frame_encoder({str(encoder_dir)!r}, device='cpu')\n"
        f"extract_video_features([{str(cases['uhd.mp4'].path)!r}] * 1, {str(tmp_path / 'f')!r}, encoder, num_frames=25,"
        " show_progress_bar=False)\n"
        "print([l.split()[1] for l in Path('/proc/self/status').read_text().splitlines() if l.startswith('VmHWM')][0])\n"
    )  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    peak_mib = int(result.stdout.strip().splitlines()[-1]) / 1024
    assert peak_mib < 1024, peak_mib
    np.testing.assert_array_less(0, peak_mib)
