"""Strips of thumbnails: a few of a video's sampled frames side by side, as one JPEG (made with PyAV's MJPEG
encoder, no imaging library needed). The extraction writes one per video from the frames it decoded anyway, so a
search page never decodes the database videos to show them."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..model.commits import write_file_atomically
from .decoding import import_av, read_frames

STRIP_FRAMES = 8
THUMBNAIL_HEIGHT = 72


def strip_image(frames: np.ndarray, count: int = STRIP_FRAMES, height: int = THUMBNAIL_HEIGHT) -> np.ndarray:
    """``count`` of ``frames`` ``[T, H, W, 3]`` (evenly spaced), each resized to ``height``, side by side:
    ``[height, ≈count·W·height/H, 3]`` uint8."""
    av = import_av()
    picks = np.linspace(0, len(frames) - 1, min(count, len(frames))).round().astype(int)
    width = max(2, round(frames.shape[2] * height / frames.shape[1]) // 2 * 2)
    tiles = []
    for index in picks:
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frames[index]), format="rgb24")
        tiles.append(frame.to_ndarray(format="rgb24", width=width, height=height, interpolation="AREA"))
    return np.concatenate(tiles, axis=1)


def jpeg_bytes(image: np.ndarray) -> bytes:
    """``image`` ``[H, W, 3]`` uint8 RGB as JPEG bytes (full chroma, a high bit rate: sharp small thumbnails)."""
    av = import_av()
    codec = av.CodecContext.create("mjpeg", "w")
    codec.width, codec.height, codec.pix_fmt = image.shape[1], image.shape[0], "yuvj444p"
    codec.time_base = Fraction(1, 1)
    codec.bit_rate = 8_000_000
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24").reformat(format="yuvj444p")
    frame.pts = 0
    packets = list(codec.encode(frame)) + list(codec.encode(None))
    return b"".join(bytes(packet) for packet in packets)


def write_thumbnail_strip(path: str | os.PathLike, frames: np.ndarray) -> Path:
    """Write the strip of ``frames`` as a JPEG at ``path`` (atomically)."""
    image = strip_image(frames)
    image = image[: image.shape[0] // 2 * 2, : image.shape[1] // 2 * 2]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return write_file_atomically(path, jpeg_bytes(image))


def make_thumbnail_strip(video: str | os.PathLike, path: str | os.PathLike, num_frames: int = STRIP_FRAMES) -> Path:
    """Decode ``num_frames`` of ``video`` (small) and write their strip at ``path``: for videos indexed without one."""
    frames = read_frames(video, num_frames=num_frames, size=THUMBNAIL_HEIGHT * 2).frames
    return write_thumbnail_strip(path, frames)
