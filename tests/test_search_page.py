"""The search page: its logic (SearchCollection) and the page itself, driven in a real headless Chromium
(Debian's, through Playwright) as a person would — upload a clip, wait for the results, check they are the right
ones, screenshot at a phone and a desktop size; a corrupt upload gives a message and the next query still works."""

import json
import os
import shutil
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch

pytest.importorskip("av", reason="the video extra (PyAV) is installed by the quickstart")
pytest.importorskip("gradio", reason="the dev extra installs Gradio")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from s5vh_hf.app.collection import SearchCollection  # noqa: E402
from s5vh_hf.cli.main import main  # noqa: E402
from s5vh_hf.video.frame_encoders import VGGFeatures, save_vgg  # noqa: E402
from s5vh_hf.video.synthetic import make_synthetic_video_collection  # noqa: E402

FRAMES = 8


def chromium_path() -> str:
    """Debian's Chromium (installed by scripts/quickstart.sh), or the browser S5VH_CHROMIUM names."""
    for candidate in (os.environ.get("S5VH_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        found = candidate and (shutil.which(candidate) or (Path(candidate).is_file() and candidate))
        if found:
            return str(found)
    pytest.fail("no Chromium: `bash scripts/quickstart.sh test` installs Debian's chromium; or set S5VH_CHROMIUM")


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    """A small video collection, a tiny model and frame encoder, and its index (with thumbnails)."""
    from s5vh_hf import S5VHConfig, S5VHModel

    folder = tmp_path_factory.mktemp("page")
    make_synthetic_video_collection(folder / "videos", videos_per_class=2, num_frames=12, size=48, seed=0)
    torch.manual_seed(0)
    encoder = save_vgg(VGGFeatures(width=1 / 32, hidden=24), folder / "tiny-vgg")
    config = S5VHConfig(feature_dim=24, hidden_size=16, encoder_depth=1, decoder_hidden_size=16, code_length=32,
                        num_hash_centers=4)  # fmt: skip
    S5VHModel(config).save_pretrained(folder / "model")
    assert main(["index", str(folder / "model"), str(folder / "videos"), "--extractor", str(encoder), "--frames",
                 str(FRAMES), "--out", str(folder / "index")]) == 0  # fmt: skip
    return folder


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def served(indexed):
    from s5vh_hf.app.page import launch_search_page

    collection = SearchCollection.from_index(indexed / "index", device="cpu")
    port = _free_port()
    page = launch_search_page(collection, port=port, block=False)
    yield collection, f"http://127.0.0.1:{port}/"
    page.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def _search_with_upload(page, path: Path) -> str:
    clear = page.query_selector("#upload button[aria-label='Clear']")
    if clear is not None:  # the previous upload is still shown: remove it first, as a person would
        clear.click()
        page.wait_for_selector("#upload input[type=file]", state="attached")
    page.set_input_files("#upload input[type=file]", str(path))
    # The file preview names the upload once it has arrived (in a cell labelled with the name; its text splits
    # stem and extension, and the name in the transient progress text can come and go before a busy test looks).
    page.wait_for_selector(f"#upload td.filename[aria-label='{path.name}']", timeout=60000)
    page.click("#search-upload")
    page.wait_for_function("document.querySelector('#status').innerText.includes('" + path.name + "')", timeout=90000)
    return page.inner_text("#status")


@pytest.mark.parametrize("viewport", [{"width": 390, "height": 844}, {"width": 1280, "height": 800}],
                         ids=["phone", "desktop"])  # fmt: skip
def test_a_query_video_finds_the_right_hits_in_a_real_browser(served, browser, viewport, indexed, tmp_path):
    collection, url = served
    query = sorted((indexed / "videos").rglob("*.mp4"))[5]
    page = browser.new_page(viewport=viewport)
    page.goto(url)
    assert "16 videos" in page.inner_text("#collection-info") and "32-bit" in page.inner_text("#collection-info")
    status = _search_with_upload(page, query)
    expected = collection.search_upload(str(query), k=10)  # the same search, without the page
    page.wait_for_selector("#results .caption-label")
    captions = [element.inner_text() for element in page.query_selector_all("#results .caption-label")]
    assert status.startswith("10 results") and captions == [card.caption for card in expected.cards]
    assert expected.cards[0].hamming == 0 and any(card.path == str(query) for card in expected.cards)
    assert all(card.thumbnail for card in expected.cards)  # made at indexing time
    table = page.inner_text("#result-table")
    assert expected.cards[0].video_id in table
    page.query_selector_all("#results .thumbnail-item")[0].click()  # the chosen result plays
    page.wait_for_function(
        "(() => { const v = document.querySelector('#player video'); "
        "return v && v.readyState >= 1 && v.duration > 0; })()",
        timeout=60000,
    )  # it plays
    shot = tmp_path / f"search-page-{viewport['width']}.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("S5VH_SCREENSHOTS"):  # keep them (the README's picture is made this way)
        shutil.copy(shot, Path(os.environ["S5VH_SCREENSHOTS"]) / shot.name)
    page.close()


def test_a_corrupt_upload_shows_a_message_and_the_next_query_works(served, browser, indexed, tmp_path):
    _, url = served
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4000))
    truncated = tmp_path / "truncated.mp4"
    good = sorted((indexed / "videos").rglob("*.mp4"))[0]
    truncated.write_bytes(good.read_bytes()[:600])
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(url)
    for bad in (corrupt, truncated):
        status = _search_with_upload(page, bad)
        assert status.startswith("⚠️ Cannot use " + bad.name) and "Traceback" not in page.content()
    status = _search_with_upload(page, good)
    assert status.startswith("10 results")
    page.get_by_role("tab", name="Pick from the collection").click()
    page.click("#member input")
    page.keyboard.type("no/such/video.mp4")
    page.keyboard.press("Enter")
    page.click("#search-member")
    page.wait_for_function("document.querySelector('#status').innerText.includes('No video')", timeout=30000)
    page.close()


def test_the_page_serves_nothing_outside_the_index_and_the_upload(served, indexed):
    _, url = served
    for path in ("/etc/passwd", str(indexed / "index" / "manifest.json"), str(indexed / "model" / "config.json"),
                 str(sorted((indexed / "videos").rglob("*.mp4"))[0])):  # fmt: skip
        for route in ("gradio_api/file=", "file="):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(url + route + path, timeout=10)
            assert refused.value.code in (403, 404), (route, path)


def test_picking_a_collection_video_leaves_it_out_and_marks_hits(indexed):
    collection = SearchCollection.from_index(indexed / "index", device="cpu")
    labels = json.loads((indexed / "videos" / "labels.json").read_text())
    assert collection.labels[0] is None or collection.labels[0] == []  # built without labels: no marks
    member = collection.video_ids[3]
    answer = collection.search_member(member, k=5)
    assert len(answer.cards) == 5 and member not in [card.video_id for card in answer.cards]
    assert [card.hamming for card in answer.cards] == sorted(card.hamming for card in answer.cards)
    within = collection.search_member(member, k=15, radius=answer.cards[0].hamming)
    assert all(card.hamming <= answer.cards[0].hamming for card in within.cards) and "within Hamming" in within.message
    assert len(labels) == len(collection)


def test_a_feature_collection_shows_ids_labels_and_precision(tmp_path, monkeypatch):
    import tempfile

    from s5vh_hf import S5VHConfig, S5VHModel
    from s5vh_hf.data.synthetic import make_synthetic_videos
    from s5vh_hf.data.writing import write_feature_split

    data = make_synthetic_videos(num_videos=12, num_classes=3, feature_dim=24, num_frames=6, seed=0)
    write_feature_split(tmp_path / "data", "database", data.videos(), data.video_ids, [[int(x)] for x in data.labels])
    torch.manual_seed(0)
    model = S5VHModel(S5VHConfig(feature_dim=24, hidden_size=16, encoder_depth=1, decoder_hidden_size=16,
                                 code_length=16, num_hash_centers=4))  # fmt: skip
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    collection = SearchCollection.from_features(model, tmp_path / "data", split="database")
    assert not collection.has_videos and "feature collection" in collection.summary()
    answer = collection.search_member(collection.video_ids[0], k=4)
    assert answer.precision is not None and all(card.hit is not None for card in answer.cards)
    assert answer.precision == pytest.approx(sum(card.hit for card in answer.cards) / 4)
    assert collection.search_upload("whatever.mp4").error  # no videos to decode in a feature collection
    assert collection.playable_copy(0) is None and not any(temporary.iterdir())  # nothing to play: no player folder


def test_bad_uploads_and_ids_are_messages_not_errors(indexed, tmp_path, monkeypatch):
    import s5vh_hf.app.collection as module

    collection = SearchCollection.from_index(indexed / "index", device="cpu")
    (tmp_path / "text.mp4").write_text("hello")
    assert collection.search_upload(str(tmp_path / "text.mp4")).error
    assert collection.search_upload(None).message.startswith("Upload a video")
    assert collection.search_member("../../etc/passwd").error
    monkeypatch.setattr(module, "MAX_UPLOAD_BYTES", 10)
    huge = collection.search_upload(str(sorted((indexed / "videos").rglob("*.mp4"))[0]))
    assert huge.error and "limit" in huge.message
    assert collection.playable_copy(10_000) is None
    copy = collection.playable_copy(0)  # MPEG-4 Part 2, which browsers do not play: re-encoded to H.264
    assert copy is not None and not Path(copy).is_relative_to(indexed)
    import av

    with av.open(copy) as playable, av.open(collection.paths[0]) as original:
        assert playable.streams.video[0].codec_context.name == "h264"
        assert len(list(playable.decode(video=0))) == len(list(original.decode(video=0)))


def test_a_video_browsers_play_is_copied_as_it_is(tmp_path):
    from s5vh_hf.video.corpus import write_case
    from s5vh_hf.video.playable import browser_playable_copy

    write_case(tmp_path / "h264.mp4")
    copy = browser_playable_copy(tmp_path / "h264.mp4", tmp_path / "player" / "0")
    assert copy.suffix == ".mp4" and copy.read_bytes() == (tmp_path / "h264.mp4").read_bytes()


def test_an_index_of_another_model_is_refused_before_serving(indexed, tmp_path, capsys):
    from s5vh_hf import S5VHConfig, S5VHModel

    torch.manual_seed(5)
    S5VHModel(S5VHConfig(feature_dim=24, hidden_size=16, encoder_depth=1, decoder_hidden_size=16, code_length=32,
                         num_hash_centers=4)).save_pretrained(tmp_path / "other")  # fmt: skip
    assert main(["app", str(indexed / "index"), "--with-model", str(tmp_path / "other")]) == 2
    assert "another model" in capsys.readouterr().err
    assert main(["app", str(tmp_path / "nowhere")]) == 2
