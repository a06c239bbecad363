"""Real-world video files and the index that grows: hostile and truncated video files, kills during an extraction
and during `index --add`, two writers adding to one index, damaged index manifests."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from .harness import ROOT, case, cli, cli_process, expect_clear, saved_model


def _write_clip(path: Path, size: tuple[int, int]) -> Path:
    """An 8-frame H.264 clip at ``path`` (folders made)."""
    from s5vh_hf.video.corpus import write_case

    path.parent.mkdir(parents=True, exist_ok=True)
    write_case(path, frame_times=[t / 5 for t in range(8)], size=size)
    return path


def _setup(tmp: Path, count: int = 4) -> tuple[Path, Path, list[Path]]:
    import torch

    from s5vh_hf.video.frame_encoders import VGGFeatures, save_vgg

    torch.manual_seed(0)
    encoder = save_vgg(VGGFeatures(width=1 / 32, hidden=24), tmp / "vgg")
    model = saved_model(tmp / "model")
    paths = [_write_clip(tmp / "videos" / f"clip-{index}.mp4", (32, 32 + 8 * index)) for index in range(count)]
    return model, encoder, paths


def _build(tmp: Path, model: Path, encoder: Path, source: Path) -> None:
    status, err = cli("index", str(model), str(source), "--extractor", str(encoder), "--frames", "4", "--out",
                      str(tmp / "index"))  # fmt: skip
    assert status == 0, err


@case("hostile file")
def hostile_and_truncated_video_files(tmp: Path):
    from s5vh_hf.video.corpus import make_real_world_corpus

    model, encoder, _ = _setup(tmp, 2)
    cases = make_real_world_corpus(tmp / "corpus", uhd=False)
    hostile = tmp / "corpus" / "hostile.mkv"
    hostile.write_bytes(b"\x1a\x45\xdf\xa3" + b"\xff" * 64 + b"\x00" * 4096)  # an EBML header, then garbage
    (tmp / "corpus" / "folder.mp4").mkdir()
    _build(tmp, model, encoder, tmp / "videos")
    bad = [cases[n].path for n in ("truncated.mp4", "cover_art.mp3", "dangling.mp4")] + [hostile]
    for path in bad:
        result = cli_process("search", str(tmp / "index"), "--query-video", str(path))
        outcome = expect_clear(result.returncode, result.stderr, path.name)
        if outcome[0] != "clear":
            return outcome[0], f"{path.name}: {outcome[1]}"
    status, err = cli("extract", str(tmp / "corpus"), "--extractor", str(encoder), "--frames", "4", "--out",
                      str(tmp / "features"))  # fmt: skip
    report = json.loads((tmp / "features" / "extraction_report_train.json").read_text())
    expected = {str(p) for p in (cases["truncated.mp4"].path, cases["dangling.mp4"].path, hostile)}
    if status != 0 or set(report["skipped"]) != expected:
        return "crash", f"extract exit {status}; skipped {sorted(report['skipped'])}"
    return "clear", f"4 bad queries: one line each, exit 2; extract skipped {len(expected)} with reasons"


@case("kill -9")
def kill_during_an_extraction_then_rerun(tmp: Path):
    model, encoder, _ = _setup(tmp, 4)
    argv = ("extract", str(tmp / "videos"), "--extractor", str(encoder), "--frames", "4", "--chunk-size", "1",
            "--decode-workers", "1", "--out", str(tmp / "features"))  # fmt: skip
    result = cli_process(*argv, env={"S5VH_FAULT_POINT": "extract:chunk"})
    if result.returncode != -signal.SIGKILL:
        return "crash", f"not killed: exit {result.returncode} {result.stderr[-160:]}"
    result = cli_process(*argv, "--json", "-")
    if result.returncode != 0:
        return "crash", result.stderr[-160:]
    report = json.loads(result.stdout)
    if report["written"] != 4 or report["reused"] != 1:
        return "lost", f"rerun wrote {report['written']}, reused {report['reused']} (expected 4 and 1)"
    return "intact", "killed after the first cached video; the rerun reused it and decoded the other 3"


@case("kill -9")
def kill_during_index_add(tmp: Path):
    from s5vh_hf.video.index import VideoIndex

    model, encoder, paths = _setup(tmp, 3)
    _build(tmp, model, encoder, tmp / "videos")
    extra = _write_clip(tmp / "more" / "new.mp4", (40, 40))
    for point, expected in (("staged:index", 3), ("journal:index", 4)):
        result = cli_process("index", str(tmp / "index"), "--add", str(extra), env={"S5VH_FAULT_POINT": point})
        if result.returncode != -signal.SIGKILL:
            return "crash", f"not killed at {point}: exit {result.returncode} {result.stderr[-160:]}"
        try:
            index = VideoIndex(tmp / "index")
        except Exception as error:  # noqa: BLE001
            return "lost", f"the index no longer loads after a kill at {point}: {str(error)[:120]}"
        if len(index) != expected or index.index.ntotal != expected:
            return "lost", f"after a kill at {point}: {len(index)} entries, {index.index.ntotal} codes"
    return "intact", "killed before the commit: old index whole; after it: the grown index whole"


@case("concurrent writers")
def two_writers_add_to_one_index(tmp: Path):
    from s5vh_hf.video.index import VideoIndex

    model, encoder, paths = _setup(tmp, 2)
    _build(tmp, model, encoder, tmp / "videos")
    extra = [_write_clip(tmp / name / f"{name}.mp4", (40, 48)) for name in ("a", "b")]
    command = [sys.executable, "-m", "s5vh_hf.cli", "index", str(tmp / "index"), "--add"]
    runs = [subprocess.Popen(command + [str(p)], cwd=ROOT, stderr=subprocess.PIPE, text=True) for p in extra]
    errors = [run.communicate(timeout=600)[1] for run in runs]
    if any(run.returncode != 0 for run in runs):
        return "crash", " | ".join(e.strip().splitlines()[-1][:80] for e in errors if e.strip())
    index = VideoIndex(tmp / "index")
    if sorted(index.paths) != sorted(str(p) for p in paths + extra):
        return "lost", f"the index holds {len(index)} videos, not 4: one addition was lost"
    return "intact", "both additions are in the index (the second writer waited for the first)"


@case("hostile folder")
def damaged_index_manifests(tmp: Path):
    model, encoder, paths = _setup(tmp, 2)
    _build(tmp, model, encoder, tmp / "videos")
    manifest = tmp / "index" / "manifest.json"
    good = json.loads(manifest.read_text())
    damages = {
        "truncated JSON": manifest.read_text()[:40],
        "no model": json.dumps({k: v for k, v in good.items() if k != "model"}),
        "model not an object": json.dumps({**good, "model": "x"}),
        "a list": "[]",
        "binary": "\x00\xff\xfe",
        "code length a string": json.dumps({**good, "model": {**good["model"], "code_length": "16"}}),
    }
    for name, text in damages.items():
        manifest.write_bytes(text.encode("utf-8", "surrogateescape") if name != "binary" else b"\x00\xff\xfe")
        for argv in (("search", str(tmp / "index"), "--query-video", str(paths[0])), ("index", str(tmp / "index"),
                                                                                      "--info")):  # fmt: skip
            status, err = cli(*argv)
            outcome = expect_clear(status, err, "manifest.json")
            if outcome[0] != "clear":
                return outcome[0], f"{name}, {argv[0]}: {outcome[1]}"
    return "clear", f"{len(damages)} damaged manifests: one line naming manifest.json for search and index --info"


@case("hostile file")
def hostile_uploads_to_the_search_page(tmp: Path):
    """What a stranger can send the page: corrupt, truncated, empty, huge, audio, a link to a secret, a folder."""
    import os

    try:
        import gradio  # noqa: F401
    except ImportError:
        return "clear", "Gradio is not installed: no page to attack (the app extra)"
    import s5vh_hf.app.collection as module
    from s5vh_hf.app.collection import SearchCollection
    from s5vh_hf.video.corpus import make_real_world_corpus

    model, encoder, paths = _setup(tmp, 2)
    _build(tmp, model, encoder, tmp / "videos")
    collection = SearchCollection.from_index(tmp / "index", device="cpu")
    cases = make_real_world_corpus(tmp / "corpus", uhd=False)
    secret = tmp / "secret.txt"
    secret.write_text("password")
    (tmp / "link.mp4").symlink_to(secret)
    (tmp / "empty.mp4").write_bytes(b"")
    (tmp / "folder.mp4").mkdir()
    uploads = [cases["truncated.mp4"].path, cases["cover_art.mp3"].path, cases["dangling.mp4"].path, tmp / "link.mp4",
               tmp / "empty.mp4", tmp / "folder.mp4", tmp / "missing.mp4"]  # fmt: skip
    for upload in uploads:
        answer = collection.search_upload(str(upload))
        if not answer.error or answer.cards or "password" in answer.message:
            return "silent", f"{upload.name}: {answer.message[:120]}"
    original, module.MAX_UPLOAD_BYTES = module.MAX_UPLOAD_BYTES, 100
    try:
        huge = collection.search_upload(str(paths[0]))
    finally:
        module.MAX_UPLOAD_BYTES = original
    if not huge.error:
        return "silent", "a file over the limit was searched"
    for member in ("../../etc/passwd", str(secret), "", "\x00"):
        if not collection.search_member(member).error:
            return "silent", f"member {member!r} accepted"
    if collection.search_upload(str(paths[1])).error:
        return "crash", "a good query failed after the bad ones"
    os.unlink(tmp / "link.mp4")
    return "clear", f"{len(uploads) + 1} hostile uploads and 4 hostile ids: messages only; the next query answered"
