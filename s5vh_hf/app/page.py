"""The search page (Gradio, the convention of Hugging Face Spaces) over a :class:`SearchCollection`.

Query by uploading a clip, by recording one (where the browser allows a webcam), or by picking a video of the
collection; the top-k results come as cards (a strip of thumbnails at the sampled frame times, the id, the
Hamming distance, hits and misses when labels exist) with a player for the chosen one. Every handler turns a
failure into a message in the page; the server keeps serving. The page reaches the file system only through the
uploaded file and the index's thumbnail folder (chosen results are copied into a private folder for the player).

(No ``from __future__ import annotations`` here: Gradio reads the event-data annotation of a handler at runtime.)
"""

import logging
from typing import Any

import numpy as np

from ..video.decoding import VIDEO_EXTENSIONS
from .collection import Answer, SearchCollection

logger = logging.getLogger(__name__)
DEFAULT_MAX_FILE_SIZE = "500mb"
MEMBER_CHOICES = 1000  # ids listed in the picker; any other id can be typed
PAGE_CSS = """
#results .thumbnail-item { aspect-ratio: 4 / 1; }
#results .thumbnail-item img { object-fit: contain; background: #111; }
@media (max-width: 640px) { #results .grid-container { grid-template-columns: minmax(0, 1fr) !important; } }
#results .thumbnail-item { min-width: 0; max-width: 100%; }
"""


def _placeholder() -> np.ndarray:
    image = np.full((72, 128, 3), 235, np.uint8)
    image[30:42, 40:88] = 200
    return image


def _outputs(answer: Answer) -> tuple[str, list, list[list[Any]], list[int], None]:
    """(status, gallery items, table rows, rows of the cards, player) for an answer."""
    status = f"⚠️ {answer.message}" if answer.error else answer.message
    gallery = [(card.thumbnail or _placeholder(), card.caption) for card in answer.cards]
    table = [[card.rank, card.video_id, card.hamming, ", ".join(map(str, card.labels or [])) or "",
              "" if card.hit is None else ("hit" if card.hit else "miss")] for card in answer.cards]  # fmt: skip
    return status, gallery, table, [card.row for card in answer.cards], None


def build_search_page(collection: SearchCollection, title: str = "S5VH video search"):
    """The ``gr.Blocks`` of the page (launch it with :func:`launch_search_page`, or let a Space launch it)."""
    import gradio as gr

    size, bits = len(collection), collection.code_length
    with gr.Blocks(title=title, fill_width=True, analytics_enabled=False) as page:
        gr.Markdown(f"# {title}")
        gr.Markdown(collection.summary(), elem_id="collection-info")
        with gr.Row():
            k = gr.Slider(1, max(1, min(50, size - 1)), value=min(10, max(1, size - 1)), step=1, label="results (k)",
                          elem_id="k")  # fmt: skip
            radius = gr.Slider(0, bits, value=bits, step=1, label="Hamming radius", elem_id="radius")
        with gr.Tabs():
            if collection.has_videos:
                with gr.Tab("Upload a clip", id="upload"):
                    upload = gr.File(label="Query video", file_types=list(VIDEO_EXTENSIONS), type="filepath",
                                     elem_id="upload")  # fmt: skip
                    upload_button = gr.Button("Search with this clip", variant="primary", elem_id="search-upload")
                with gr.Tab("Record", id="record"):
                    webcam = gr.Video(sources=["webcam"], format=None, include_audio=True, label="Record a clip",
                                      webcam_options=gr.WebcamOptions(mirror=False), elem_id="webcam")  # fmt: skip
                    record_button = gr.Button("Search with the recording", elem_id="search-record")
            with gr.Tab("Pick from the collection", id="pick"):
                member = gr.Dropdown(choices=collection.video_ids[:MEMBER_CHOICES], value=None, allow_custom_value=True,
                                     filterable=True, label="a video of the collection (type any id)",
                                     elem_id="member")  # fmt: skip
                member_button = gr.Button("Search with this video", elem_id="search-member")
        status = gr.Markdown("", elem_id="status")
        gallery = gr.Gallery(label="Results (a strip of each video's sampled frames; select one to play it)",
                             columns=2, height="auto", allow_preview=False, object_fit="contain",
                             visible=collection.has_videos, elem_id="results")  # fmt: skip
        table = gr.Dataframe(headers=["rank", "video id", "Hamming", "labels", "hit"], interactive=False,
                             elem_id="result-table")  # fmt: skip
        player = gr.Video(label="Chosen result", interactive=False, format=None, visible=collection.has_videos,
                          height=360, elem_id="player")  # fmt: skip
        rows = gr.State([])
        outputs = [status, gallery, table, rows, player]

        def guarded(search):
            def handler(*args):
                try:
                    return _outputs(search(*args))
                except Exception as error:  # noqa: BLE001 - a message in the page, never a stack trace
                    logger.exception("search failed")
                    return _outputs(Answer(message=f"Search failed ({type(error).__name__}).", error=True))

            return handler

        if collection.has_videos:
            upload_button.click(guarded(collection.search_upload), [upload, k, radius], outputs)
            record_button.click(guarded(collection.search_upload), [webcam, k, radius], outputs)
        member_button.click(guarded(collection.search_member), [member, k, radius], outputs)

        def play(shown: list[int], event: gr.SelectData):
            try:
                return collection.playable_copy(shown[event.index])
            except Exception:  # noqa: BLE001
                logger.exception("player failed")
                return None

        gallery.select(play, [rows], player)
    return page


def launch_options(collection: SearchCollection, max_file_size: str = DEFAULT_MAX_FILE_SIZE) -> dict[str, Any]:
    """The ``launch()`` settings the page needs: its style, the upload limit, the thumbnail folder as the only
    folder it may serve, no tracebacks in the page."""
    allowed = [str(collection.thumbnail_folder)] if collection.thumbnail_folder is not None else []
    return {"css": PAGE_CSS, "max_file_size": max_file_size, "allowed_paths": allowed, "show_error": False,
            "footer_links": [], "ssr_mode": False}  # fmt: skip


def launch_search_page(collection: SearchCollection, host: str = "127.0.0.1", port: int | None = None,
                       max_file_size: str = DEFAULT_MAX_FILE_SIZE, block: bool = True, **launch_kwargs: Any):  # fmt: skip
    """Serve the page; returns the ``gr.Blocks`` (with ``block=False``, the server runs in a thread)."""
    page = build_search_page(collection)
    options = {**launch_options(collection, max_file_size), **launch_kwargs}
    page.queue(default_concurrency_limit=2).launch(server_name=host, server_port=port, prevent_thread_lock=not block,
                                                   quiet=True, **options)  # fmt: skip
    return page
