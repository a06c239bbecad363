"""Copies of videos that a browser plays: H.264/VP8/VP9/AV1 in MP4 or WebM as they are, anything else (MPEG-4 Part 2,
MPEG-2, MJPEG, HEVC, …) re-encoded to H.264 in MP4 with PyAV (no ffmpeg program needed), at most 480 lines high."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..model.commits import atomic_path
from .decoding import import_av

PLAYABLE = {("mp4", "h264"), ("mp4", "av1"), ("mp4", "vp9"), ("webm", "vp8"), ("webm", "vp9"), ("webm", "av1")}
MAX_HEIGHT = 480


def _container_kind(container) -> str:
    names = set(container.format.name.split(","))
    return "webm" if "webm" in names else "mp4" if "mp4" in names else container.format.name


def browser_playable_copy(source: str | os.PathLike, stem: str | os.PathLike) -> Path:
    """Write ``<stem>.mp4`` or ``<stem>.webm`` (once) that a browser plays, and return it."""
    av = import_av()
    source = Path(source)
    Path(stem).parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        kind, codec = _container_kind(container), stream.codec_context.name
        if (kind, codec) in PLAYABLE:
            target = Path(f"{stem}.{kind}")
            if not target.exists():
                with atomic_path(target) as temporary:
                    shutil.copyfile(source, temporary)
            return target
        target = Path(f"{stem}.mp4")
        if target.exists():
            return target
        rate = stream.average_rate or 25
        height = min(MAX_HEIGHT, stream.codec_context.height) // 2 * 2
        width = max(2, round(stream.codec_context.width * height / stream.codec_context.height) // 2 * 2)
        with atomic_path(target) as temporary, av.open(str(temporary), "w", format="mp4") as output:
            encoded = output.add_stream("libx264", rate=rate)
            encoded.width, encoded.height, encoded.pix_fmt = width, height, "yuv420p"
            encoded.options = {"preset": "veryfast", "crf": "23", "movflags": "faststart"}
            for frame in container.decode(stream):
                picture = frame.reformat(width=width, height=height, format="yuv420p")
                picture.pts = None
                for packet in encoded.encode(picture):
                    output.mux(packet)
            for packet in encoded.encode():
                output.mux(packet)
    return target
