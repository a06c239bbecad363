"""Decoding video files into a fixed number of RGB frames sampled uniformly over their duration (PyAV).

Frames are found by *seeking*: the key frames are listed from the packets (no decoding), and for each of the T
sample times the decoder jumps to the last key frame before it only when that key frame lies ahead of where it
stands, then decodes forward to the first frame at or after the time. Long videos with frequent key frames decode
a small fraction of their frames; no video decodes more than all of them.
A file that cannot be decoded raises :class:`BadVideo` with the reason (the extractor skips it and reports it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp")
EXTRA_HINT = "decoding video files needs PyAV: pip install 's5vh-hf[video]'"


class BadVideo(Exception):
    """A video that cannot be turned into frames; ``reason`` says why (one line)."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = str(path), reason


@dataclass
class SampledFrames:
    """``frames`` ``[T, H, W, 3]`` uint8 RGB at ``times`` (seconds) of a video lasting ``duration`` seconds."""

    frames: np.ndarray
    times: np.ndarray
    duration: float


def import_av():
    """The ``av`` module, or an ``ImportError`` naming the extra to install."""
    try:
        import av
    except ImportError as error:
        raise ImportError(EXTRA_HINT) from error
    return av


def sample_times(duration: float, count: int) -> np.ndarray:
    """``count`` times uniformly over ``[0, duration)``: the centres of ``count`` equal segments."""
    return (np.arange(count) + 0.5) * (duration / count)


def _stream_duration(container, stream) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000  # av.time_base
    if stream.frames and stream.average_rate:
        return float(stream.frames / stream.average_rate)
    return 0.0


def read_frames(
    path: str | os.PathLike,
    num_frames: int | None = 25,
    fps: float | None = None,
    seek: bool = True,
    size: int | None = None,
) -> SampledFrames:
    """Sample frames of the video at ``path``: ``num_frames`` uniformly over its duration (the literature uses 25,
    30 for ActivityNet), or one every ``1/fps`` seconds. ``seek=False`` decodes every frame and picks the nearest
    ones (the slow way the benchmark compares against). ``size`` resizes the shorter side (``None``: keep).

    Raises :class:`BadVideo` for an unreadable path, a corrupt file, a file with no video stream (audio only),
    an unsupported codec, zero frames, or fewer decodable frames than asked for.
    """
    av = import_av()
    path = Path(path)
    if (num_frames is None) == (fps is None):
        raise ValueError("give exactly one of num_frames and fps")
    if not path.is_file():
        raise BadVideo(path, "no such file" if not path.exists() else "not a regular file")
    try:
        container = av.open(str(path))
    except Exception as error:  # noqa: BLE001 - FFmpeg reports many kinds of failure
        raise BadVideo(path, f"cannot open ({type(error).__name__}: {str(error).splitlines()[0][:120]})") from error
    with container:
        if not container.streams.video:
            raise BadVideo(path, "no video stream (audio only?)")
        stream = container.streams.video[0]
        if stream.codec_context is None or not stream.codec_context.name:
            raise BadVideo(path, "unsupported video codec")
        stream.thread_type = "AUTO"
        duration = _stream_duration(container, stream)
        if duration <= 0:
            raise BadVideo(path, "zero duration")
        count = num_frames if num_frames is not None else max(1, int(duration * fps))
        times = sample_times(duration, count)
        try:
            frames = _seek_frames(container, stream, times) if seek else _decode_all(container, stream, times)
        except BadVideo:
            raise
        except Exception as error:  # noqa: BLE001
            raise BadVideo(
                path, f"decoding failed ({type(error).__name__}: {str(error).splitlines()[0][:120]})"
            ) from error
    if len(frames) == 0:
        raise BadVideo(path, "no decodable frames")
    distinct = len({frame.pts for frame in frames}) if all(f.pts is not None for f in frames) else len(frames)
    if len(frames) < count or distinct < count:
        raise BadVideo(path, f"only {min(len(frames), distinct)} distinct frames, {count} asked for (a video shorter "
                       "than T frames)")  # fmt: skip
    array = np.stack([_to_rgb(frame, size) for frame in frames])
    return SampledFrames(array, times, duration)


def _to_rgb(frame, size: int | None) -> np.ndarray:
    if size is not None:
        scale = size / min(frame.width, frame.height)
        frame = frame.reformat(width=max(1, round(frame.width * scale)), height=max(1, round(frame.height * scale)))
    return frame.to_ndarray(format="rgb24")


def _frame_time(frame, stream) -> float:
    if frame.pts is None:
        return float(frame.time or 0.0)
    return float(frame.pts * stream.time_base)


def _keyframe_times(container, stream) -> list[float]:
    """Times of the key frames, from the packets alone (demuxing reads the file but decodes nothing)."""
    times = [
        float(packet.pts * stream.time_base)
        for packet in container.demux(stream)
        if packet.is_keyframe and packet.pts is not None
    ]
    return sorted(times)


def _seek_frames(container, stream, times: np.ndarray) -> list:
    """For each time, the first frame at or after it, decoding as little as possible: a seek to the last key
    frame before the time when one lies ahead of the current position (a new group of pictures), else decoding
    on from where the previous sample stopped. Never decodes more frames than decoding everything would."""
    keyframes = _keyframe_times(container, stream)
    frames, decoder, position, chosen = [], None, -np.inf, None
    for target in times:
        if chosen is not None and position >= target - 1e-6:  # two samples within one frame interval
            frames.append(chosen)
            continue
        before = [k for k in keyframes if k <= target + 1e-6]
        keyframe = before[-1] if before else 0.0
        if decoder is None or keyframe > position + 1e-6:
            container.seek(int(keyframe / stream.time_base), stream=stream, backward=True, any_frame=False)
            decoder = container.decode(stream)
        chosen = None
        for frame in decoder:
            chosen, position = frame, _frame_time(frame, stream)
            if position >= target - 1e-6:
                break
        if chosen is None:
            break
        frames.append(chosen)
    return frames


def _decode_all(container, stream, times: np.ndarray) -> list:
    """Decode every frame; keep, for each time, the first frame at or after it."""
    frames, index = [], 0
    last = None
    for frame in container.decode(stream):
        last = frame
        while index < len(times) and _frame_time(frame, stream) >= times[index] - 1e-6:
            frames.append(frame)
            index += 1
        if index == len(times):
            break
    while index < len(times) and last is not None:  # times past the last frame: the last frame
        frames.append(last)
        index += 1
    return frames


def find_videos(source: str | os.PathLike) -> list[Path]:
    """Video files under a folder (recursive, sorted), or the paths listed in a text file (one per line)."""
    source = Path(source)
    if source.is_dir():
        return sorted(p for p in source.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())
    if source.is_file() and source.suffix.lower() in (".txt", ".lst", ".list"):
        lines = [line.strip() for line in source.read_text().splitlines()]
        return [Path(line) if Path(line).is_absolute() else source.parent / line for line in lines if line]
    if source.is_file() and source.suffix.lower() in VIDEO_EXTENSIONS:
        return [source]
    raise FileNotFoundError(f"{source} is neither a folder of videos, a list file (.txt) nor a video file")
