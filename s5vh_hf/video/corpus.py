"""Small real-world video cases, made with PyAV's encoders, each with what a correct decoder must return.

Every frame is one flat grey level that encodes its index (:func:`frame_index`), so that a test can tell which
frame was sampled at which time, through any codec. The cases are the ones real collections hold: an MKV that
starts at 10 s, an MPEG-TS and an MPEG-PS file, a frame held for seconds (variable frame rate), a phone video with
a display-matrix rotation, a streamed WebM that records no duration, a 4K clip, H.264 with B-frames, HEVC, VP9,
MJPEG — and the bad ones: a truncated file, an audio file with cover art, a dangling link.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from .decoding import import_av

LEVEL_BASE, LEVEL_STEP = 16, 12
MAX_FRAMES = (255 - LEVEL_BASE) // LEVEL_STEP + 1


@dataclass
class VideoCase:
    """A written case: ``frame_times`` (seconds from the first frame) of its frames, the ``duration`` a decoder
    should find, the clockwise ``rotation`` that makes it upright, and the reason it must be refused (``None``: it
    must decode)."""

    path: Path
    frame_times: list[float]
    duration: float
    rotation: int = 0
    refused_because: str | None = None

    def expected_indices(self, count: int) -> list[int]:
        """The index of the frame shown at each of ``count`` uniform sample times."""
        times = (np.arange(count) + 0.5) * (self.duration / count)
        return [max(0, int(np.searchsorted(self.frame_times, t + 1e-6, side="right")) - 1) for t in times]


def frame_index(frame: np.ndarray) -> int:
    """The index a frame of this corpus encodes (its mean grey level; the marker corner is left out)."""
    height, width = frame.shape[:2]
    centre = frame[height // 4 : 3 * height // 4, width // 4 : 3 * width // 4]
    return int(round((float(centre.mean()) - LEVEL_BASE) / LEVEL_STEP))


def _image(index: int, height: int, width: int, marker: bool = False) -> np.ndarray:
    image = np.full((height, width, 3), LEVEL_BASE + LEVEL_STEP * index, np.uint8)
    if marker:  # a white block in the top-left corner shows which way is up
        image[: height // 5, : width // 5] = 255
    return image


def write_case(
    path: str | os.PathLike,
    codec: str = "libx264",
    container_format: str | None = None,
    frame_times: list[float] | None = None,
    start: float = 0.0,
    size: tuple[int, int] = (48, 64),
    rate: int = 5,
    codec_options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
    marker: bool = False,
    time_base: Fraction = Fraction(1, 1000),
) -> list[float]:
    """Encode frames ``i`` at ``start + frame_times[i]`` (default ``i / rate``); returns the frame times."""
    av = import_av()
    frame_times = frame_times if frame_times is not None else [i / rate for i in range(10)]
    if len(frame_times) > MAX_FRAMES:
        raise ValueError(f"at most {MAX_FRAMES} frames")
    height, width = size
    with av.open(str(path), "w", format=container_format, options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        stream.options = codec_options or {}
        stream.codec_context.time_base = time_base
        for index, time in enumerate(frame_times):
            frame = av.VideoFrame.from_ndarray(_image(index, height, width, marker), format="rgb24")
            frame.pts, frame.time_base = round((start + time) / time_base), time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return frame_times


def set_mp4_rotation(path: str | os.PathLike, clockwise_degrees: int) -> None:
    """Write a display matrix into the first track header of an MP4, as a phone does for a video shot upright
    (the pixels stay as stored; players turn them ``clockwise_degrees`` clockwise)."""
    matrices = {90: (0, 65536, 0, -65536, 0, 0), 180: (-65536, 0, 0, 0, -65536, 0), 270: (0, -65536, 0, 65536, 0, 0)}
    data = bytearray(Path(path).read_bytes())
    at = data.find(b"tkhd")
    version = data[at + 4]
    matrix_at = at + 8 + (32 if version == 1 else 20) + 16
    data[matrix_at : matrix_at + 36] = struct.pack(">9i", *matrices[clockwise_degrees], 0, 0, 1 << 30)
    Path(path).write_bytes(bytes(data))


def _cover_art_audio(path: Path) -> None:
    """An MP3 file with a cover picture (FFmpeg shows it as a video stream marked as an attached picture)."""
    av = import_av()
    with av.open(str(path), "w", format="mp3") as container:
        audio = container.add_stream("libmp3lame", rate=8000)
        picture = container.add_stream("png", rate=1)
        picture.width, picture.height, picture.pix_fmt = 32, 32, "rgb24"
        picture.disposition = av.stream.Disposition.attached_pic
        for packet in picture.encode(av.VideoFrame.from_ndarray(_image(3, 32, 32), format="rgb24")):
            container.mux(packet)
        for packet in picture.encode():
            container.mux(packet)
        samples = av.AudioFrame.from_ndarray(np.zeros((1, 8000), np.float32), format="fltp", layout="mono")
        samples.sample_rate = 8000
        for packet in audio.encode(samples):
            container.mux(packet)
        for packet in audio.encode():
            container.mux(packet)


def make_real_world_corpus(folder: str | os.PathLike, uhd: bool = True) -> dict[str, VideoCase]:
    """Write every case under ``folder``; returns name → :class:`VideoCase`. ``uhd=False`` leaves out the 4K clip
    (the slowest to encode)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cases: dict[str, VideoCase] = {}

    def add(name: str, frame_times: list[float], duration: float | None = None, **extra) -> None:
        end = duration if duration is not None else frame_times[-1] + (frame_times[-1] - frame_times[-2])
        cases[name] = VideoCase(folder / name, frame_times, end, **extra)

    add("offset_start.mkv", write_case(folder / "offset_start.mkv", start=10.0))
    add("b_frames.mp4", write_case(folder / "b_frames.mp4", codec_options={"bf": "3", "g": "4"}))
    add("mpeg_ts.ts", write_case(folder / "mpeg_ts.ts", "mpeg2video", "mpegts", rate=25, time_base=Fraction(1, 25),
                                 frame_times=[i / 25 for i in range(12)], start=1.4))  # fmt: skip
    add("mpeg_ps.mpg", write_case(folder / "mpeg_ps.mpg", "mpeg2video", "mpeg", rate=25, time_base=Fraction(1, 25),
                                  frame_times=[i / 25 for i in range(12)], start=0.6))  # fmt: skip
    held = [0.0, 0.2, 0.4, 5.4, 5.6, 5.8]  # frame 2 is shown for five seconds
    add("held_frame.mkv", write_case(folder / "held_frame.mkv", frame_times=held))
    add("streamed.webm", write_case(folder / "streamed.webm", "libvpx", "webm", container_options={"live": "1"}))
    add("hevc.mp4", write_case(folder / "hevc.mp4", "libx265", codec_options={"x265-params": "log-level=none"}))
    add("vp9.webm", write_case(folder / "vp9.webm", "libvpx-vp9"))
    add("mjpeg.avi", write_case(folder / "mjpeg.avi", "mjpeg", time_base=Fraction(1, 5)))
    write_case(folder / "rotated.mp4", marker=True)
    set_mp4_rotation(folder / "rotated.mp4", 90)
    add("rotated.mp4", [i / 5 for i in range(10)], rotation=90)
    if uhd:
        add("uhd.mp4", write_case(folder / "uhd.mp4", size=(2160, 3840), rate=2, frame_times=[i / 2 for i in range(4)],
                                  codec_options={"preset": "ultrafast"}))  # fmt: skip
    whole = folder / "whole.mp4"
    write_case(whole, frame_times=[i / 5 for i in range(16)], codec_options={"movflags": "faststart"},
               container_options={"movflags": "faststart"})  # fmt: skip
    data = whole.read_bytes()
    (folder / "truncated.mp4").write_bytes(data[: len(data) // 3])
    whole.unlink()
    cases["truncated.mp4"] = VideoCase(folder / "truncated.mp4", [], 3.2, refused_because="truncated")
    _cover_art_audio(folder / "cover_art.mp3")
    cases["cover_art.mp3"] = VideoCase(folder / "cover_art.mp3", [], 0.0, refused_because="cover art")
    (folder / "dangling.mp4").symlink_to(folder / "gone.mp4")
    cases["dangling.mp4"] = VideoCase(folder / "dangling.mp4", [], 0.0, refused_because="missing file")
    return cases
