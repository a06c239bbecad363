"""Decoding video files into a fixed number of RGB frames sampled uniformly over their time span (PyAV).

The time span is the stream's own: from its start time (MPEG-TS/PS and many MKV files do not start at 0) over its
duration, or, where the container records none (a streamed WebM), from the packets, which are listed anyway.
Frames are found by *seeking*: the key frames are listed from the packets (no decoding), and for each of the T
sample times the decoder jumps to the last key frame before it only when that key frame lies ahead of where it
stands, then decodes forward to the frame shown at that time. A frame held for seconds (screen recordings,
variable frame rate) is the frame of every time it covers: duplicate frames are frames.

Each kept frame is turned upright (the display matrix of phone videos) and shrunk as it is decoded, so that its
shorter side is at most ``size`` pixels: memory is bounded by the encoder's input, not by the video's resolution.
A file that cannot be decoded raises :class:`BadVideo` with what really happened (the extractor skips it and
reports it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

VIDEO_EXTENSIONS = (
    ".mp4", ".m4v", ".mov", ".3gp", ".3g2", ".mkv", ".webm", ".avi", ".wmv", ".asf", ".flv", ".f4v", ".ogv",
    ".ts", ".mts", ".m2ts", ".mpg", ".mpeg", ".m2v", ".vob", ".mxf", ".dv", ".y4m", ".nut", ".ivf",
)  # fmt: skip
EXTRA_HINT = "decoding video files needs PyAV: pip install 's5vh-hf[video]'"
TIME_TOLERANCE = 1e-6


class BadVideo(ValueError):
    """A video that cannot be turned into frames; ``reason`` says why (one line)."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = str(path), reason


@dataclass
class SampledFrames:
    """``frames`` ``[T, H, W, 3]`` uint8 RGB, upright, at ``times`` (seconds from the video's first frame) of a video
    lasting ``duration`` seconds; ``rotation`` is the clockwise turn (degrees) that made them upright."""

    frames: np.ndarray
    times: np.ndarray
    duration: float
    rotation: int = 0


@dataclass
class TimeSpan:
    """Where a stream's frames lie: ``start`` and ``end`` in seconds of the stream's clock, and what the packets
    say (key frame times, the end of the last packet)."""

    start: float
    end: float
    keyframes: list[float]
    packets_end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


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


def _one_line(error: BaseException) -> str:
    text = str(error).splitlines()[0][:120] if str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def check_video_path(path: Path) -> None:
    """Raise :class:`BadVideo` for a path that is not a readable regular file, saying which case it is."""
    if path.is_symlink() and not path.exists():
        raise BadVideo(path, f"a symbolic link to a missing file ({os.readlink(path)})")
    if not path.exists():
        raise BadVideo(path, "no such file")
    if not path.is_file():
        raise BadVideo(path, "not a regular file")
    if not os.access(path, os.R_OK):
        raise BadVideo(path, "not readable (permission denied)")
    if path.stat().st_size == 0:
        raise BadVideo(path, "empty file (0 bytes)")


def video_stream(container, path: Path):
    """The first real video stream: cover art (an attached picture of an audio file) is not a video."""
    streams = list(container.streams.video)
    moving = [s for s in streams if not _is_attached_picture(s)]
    if not moving:
        if streams:
            raise BadVideo(path, "no video stream, only a still picture (an audio file with cover art?)")
        kinds = sorted({s.type for s in container.streams})
        raise BadVideo(path, f"no video stream (streams: {', '.join(kinds) or 'none'})")
    stream = moving[0]
    if stream.codec_context is None or not stream.codec_context.name:
        raise BadVideo(path, "unsupported video codec")
    return stream


def _is_attached_picture(stream) -> bool:
    try:
        import av

        return bool(stream.disposition & av.stream.Disposition.attached_pic)
    except (AttributeError, TypeError):
        return False


def time_span(container, stream, path: Path) -> TimeSpan:
    """The stream's time span: its start time and duration where the container records them, else the packets'
    (demuxing reads the file but decodes nothing). The key frames are listed on the way."""
    base = stream.time_base
    keyframes, first, last_end = [], None, None
    try:
        for packet in container.demux(stream):
            if packet.pts is None:
                continue
            time = float(packet.pts * base)
            end = time + float((packet.duration or 0) * base)
            first = time if first is None else min(first, time)
            last_end = end if last_end is None else max(last_end, end)
            if packet.is_keyframe:
                keyframes.append(time)
    except Exception as error:  # noqa: BLE001 - the packets up to a damaged part still count
        if first is None:
            raise BadVideo(path, f"cannot read any packet ({_one_line(error)})") from error
    if first is None:
        raise BadVideo(path, "no video packets (an empty or damaged stream)")
    packets_end = max(last_end, first + _frame_interval(stream))
    start = float(stream.start_time * base) if stream.start_time is not None else first
    end = packets_end
    if stream.duration:  # what the container announces: longer than the packets means a truncated file
        announced = start + float(stream.duration * base)
        end = announced if announced > packets_end - 0.5 * _frame_interval(stream) else packets_end
    return TimeSpan(start, end, sorted(keyframes), packets_end)


def _frame_interval(stream) -> float:
    rate = stream.average_rate or stream.base_rate or stream.guessed_rate
    return float(1 / rate) if rate else 1 / 25


def read_frames(
    path: str | os.PathLike,
    num_frames: int | None = 25,
    fps: float | None = None,
    seek: bool = True,
    size: int | None = None,
) -> SampledFrames:
    """Sample frames of the video at ``path``: ``num_frames`` uniformly over its time span (the literature uses 25,
    30 for ActivityNet), or one every ``1/fps`` seconds. ``seek=False`` decodes every frame and picks the same
    ones (the slow way the benchmark compares against). ``size``: shrink each kept frame so that its shorter side is
    at most this many pixels, as it is decoded (``None``: keep the decoded size).

    Raises :class:`BadVideo` for an unreadable path or a dangling link, a corrupt or truncated file, a file with no
    video stream (audio only, or cover art), an unsupported codec, or no decodable frame.
    """
    av = import_av()
    path = Path(path)
    if (num_frames is None) == (fps is None):
        raise ValueError("give exactly one of num_frames and fps")
    check_video_path(path)
    try:
        container = av.open(str(path))
    except EOFError as error:
        raise BadVideo(path, f"truncated: the file ends before its data does ({_one_line(error)})") from error
    except Exception as error:  # noqa: BLE001 - FFmpeg reports many kinds of failure
        raise BadVideo(path, f"not a readable video ({_one_line(error)})") from error
    with container:
        stream = video_stream(container, path)
        stream.thread_type = "AUTO"
        span = time_span(container, stream, path)
        if span.packets_end < span.end - max(1.0, 0.05 * span.duration):
            raise BadVideo(path, f"truncated: its packets end at {span.packets_end - span.start:.2f} s of the "
                           f"{span.duration:.2f} s it announces")  # fmt: skip
        count = num_frames if num_frames is not None else max(1, int(span.duration * fps))
        times = sample_times(span.duration, count)
        converter = _FrameConverter(size)
        try:
            pick = _seek_frames if seek else _decode_all
            frames = pick(container, stream, span, span.start + times, converter)
        except BadVideo:
            raise
        except Exception as error:  # noqa: BLE001
            raise BadVideo(path, f"decoding failed ({_one_line(error)})") from error
    if not frames:
        raise BadVideo(path, "no decodable frames")
    if len(frames) < count:
        reached = converter.last_time - span.start if converter.last_time is not None else 0.0
        raise BadVideo(path, f"damaged: frames decode up to {reached:.2f} s of {span.duration:.2f} s")
    return SampledFrames(np.stack(frames), times, span.duration, converter.rotation)


class _FrameConverter:
    """Decoded frames → upright RGB arrays with the shorter side at most ``size``; the last conversion is kept, so a
    frame sampled twice is converted once."""

    def __init__(self, size: int | None) -> None:
        self.size, self.rotation, self.last_time = size, 0, None
        self._frame, self._array = None, None

    def __call__(self, frame) -> np.ndarray:
        if frame is self._frame:
            return self._array
        width, height = frame.width, frame.height
        if self.size is not None and min(width, height) > self.size:
            scale = self.size / min(width, height)
            width, height = max(1, round(width * scale)), max(1, round(height * scale))
        array = frame.to_ndarray(format="rgb24", width=width, height=height, interpolation="AREA")
        turns = round((getattr(frame, "rotation", 0) or 0) / 90) % 4  # counter-clockwise quarter turns to undo
        if turns:
            array = np.ascontiguousarray(np.rot90(array, turns))
        self.rotation = (-90 * turns) % 360
        self._frame, self._array = frame, array
        return array


def _frame_time(frame, stream) -> float:
    if frame.pts is None:
        return float(frame.time or 0.0)
    return float(frame.pts * stream.time_base)


def _seek_frames(container, stream, span: TimeSpan, targets: np.ndarray, convert: _FrameConverter) -> list:
    """For each target time, the frame shown then (the last frame at or before it; the first frame for a time
    before it), decoding as little as possible: a seek to the last key frame before the time when that key frame
    lies ahead of what is decoded (a new group of pictures), else decoding on. Never decodes more than all frames.
    """
    frames: list[np.ndarray] = []
    decoder, shown, upcoming, ended = None, None, None, False  # upcoming: decoded, due after the last target

    def time_of(frame) -> float:
        return _frame_time(frame, stream)

    for target in targets:
        before = [k for k in span.keyframes if k <= target + TIME_TOLERANCE]
        keyframe = before[-1] if before else span.start
        needs_more = upcoming is None or time_of(upcoming) <= target + TIME_TOLERANCE
        decoded_to = time_of(upcoming) if upcoming is not None else time_of(shown) if shown is not None else -np.inf
        if decoder is None or (needs_more and not ended and keyframe > decoded_to + TIME_TOLERANCE):
            decoder, upcoming = _seek_before(container, stream, span, target, keyframe)
            shown, ended = None, upcoming is None
        while not ended and (upcoming is None or time_of(upcoming) <= target + TIME_TOLERANCE):
            if upcoming is not None:
                shown = upcoming
                convert.last_time = time_of(shown)
            upcoming = next(decoder, None)
            ended = upcoming is None
        if ended and upcoming is None and shown is None:
            break  # nothing decodes
        frame = shown if shown is not None else upcoming
        if ended and _stops_early(time_of(frame), span):
            break  # the frames stop well before the packets do: damaged data
        frames.append(convert(frame))
    return frames


def _seek_before(container, stream, span: TimeSpan, target: float, keyframe: float):
    """Seek so that the first decoded frame is at or before ``target``. MPEG-TS/PS seeks can land late or past the
    end: then seek to earlier key frames, down to the stream's first. Returns the decoder and its first frame."""
    earlier = [k for k in span.keyframes if k < keyframe - TIME_TOLERANCE]
    candidates = [keyframe] + earlier[::-1][:3] + [span.keyframes[0] if span.keyframes else span.start]
    decoder, first = None, None
    for candidate in candidates:  # a seek that lands past the target, or past the end, tries an earlier key frame
        container.seek(int(candidate / stream.time_base), stream=stream, backward=True, any_frame=False)
        decoder = container.decode(stream)
        first = next(decoder, None)
        if first is not None and _frame_time(first, stream) <= target + TIME_TOLERANCE:
            return decoder, first
    return decoder, first


def _stops_early(last_frame_time: float, span: TimeSpan) -> bool:
    return last_frame_time < span.packets_end - 1.0 - 0.05 * span.duration


def _decode_all(container, stream, span: TimeSpan, targets: np.ndarray, convert: _FrameConverter) -> list:
    """Decode every frame; keep, for each time, the frame shown then (as :func:`_seek_frames`)."""
    frames, index, current = [], 0, None
    container.seek(int((span.keyframes[0] if span.keyframes else span.start) / stream.time_base), stream=stream,
                   backward=True, any_frame=False)  # fmt: skip
    for frame in container.decode(stream):
        time = _frame_time(frame, stream)
        while index < len(targets) and time > targets[index] + TIME_TOLERANCE:
            frames.append(convert(current if current is not None else frame))
            index += 1
        current = frame
        convert.last_time = time
        if index == len(targets):
            break
    while index < len(targets) and current is not None:  # times in the last frame's display: the last frame
        frames.append(convert(current))
        index += 1
    return frames


def find_videos(source: str | os.PathLike) -> list[Path]:
    """Video files under a folder (recursive, sorted; dangling links included, so that they are reported), the
    paths listed in a text file (one per line), or one file (any extension: FFmpeg decides)."""
    source = Path(source)
    if source.is_dir():
        return sorted(p for p in source.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS
                      and (p.is_file() or (p.is_symlink() and not p.exists())))  # fmt: skip
    if source.is_file() and source.suffix.lower() in (".txt", ".lst", ".list"):
        lines = [line.strip() for line in source.read_text().splitlines()]
        return [Path(line) if Path(line).is_absolute() else source.parent / line for line in lines if line]
    if source.is_file() or source.is_symlink():
        return [source]
    raise FileNotFoundError(f"{source} is neither a folder of videos, a list file (.txt) nor a video file")
