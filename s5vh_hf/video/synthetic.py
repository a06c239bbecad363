"""A small synthetic collection of real video files (PyAV, MPEG-4): coloured shapes whose motion is the class.

Classes come in pairs: a motion and the same motion played backwards (left→right and right→left, a clockwise and
a counter-clockwise orbit, growing and shrinking), with the same colour, so only the order of the frames tells a
pair apart. Every video gets its own start phase, speed jitter, size and background noise. The raw-video path
(decode → extract → train → index → search by video) runs on it offline.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..model.commits import atomic_path, write_file_atomically
from .decoding import import_av

MOTIONS = ("left_to_right", "top_to_bottom", "clockwise", "grow")
COLOURS = ((230, 60, 60), (60, 200, 80), (70, 110, 240), (240, 200, 40))


def class_names() -> list[str]:
    """``<motion>`` and ``<motion>_reversed`` for every motion (8 classes)."""
    return [name for motion in MOTIONS for name in (motion, f"{motion}_reversed")]


def _position(motion: str, progress: float, size: int, radius: int) -> tuple[float, float, float]:
    """Centre (x, y) and radius of the shape at ``progress`` ∈ [0, 1]."""
    low, high = radius + 2, size - radius - 2
    if motion == "left_to_right":
        return low + (high - low) * progress, size / 2, radius
    if motion == "top_to_bottom":
        return size / 2, low + (high - low) * progress, radius
    if motion == "clockwise":
        angle = 2 * np.pi * progress
        return size / 2 + (size / 3) * np.cos(angle), size / 2 + (size / 3) * np.sin(angle), radius
    if motion == "grow":
        return size / 2, size / 2, radius * (0.4 + 1.6 * progress)
    raise ValueError(f"unknown motion {motion!r}")


def render_frames(class_name: str, num_frames: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``[num_frames, size, size, 3]`` uint8 frames of one video of ``class_name``."""
    motion = class_name.removesuffix("_reversed")
    colour = np.array(COLOURS[MOTIONS.index(motion)], dtype=np.float32)
    radius = int(rng.integers(size // 10, size // 6))
    start, span = rng.uniform(0.0, 0.15), rng.uniform(0.7, 0.85)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    frames = np.empty((num_frames, size, size, 3), dtype=np.uint8)
    background = rng.uniform(10, 60, 3).astype(np.float32)
    for index in range(num_frames):
        progress = start + span * index / max(1, num_frames - 1)
        if class_name.endswith("_reversed"):
            progress = 1.0 - progress
        cx, cy, r = _position(motion, progress, size, radius)
        inside = (xx - cx) ** 2 + (yy - cy) ** 2 <= r**2
        image = np.broadcast_to(background, (size, size, 3)).copy()
        image[inside] = colour
        image += rng.normal(0, 8, image.shape).astype(np.float32)
        frames[index] = np.clip(image, 0, 255).astype(np.uint8)
    return frames


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: int = 8) -> Path:
    """Encode ``frames`` ``[T, H, W, 3]`` uint8 as an MPEG-4 video at ``path``."""
    av = import_av()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary, av.open(str(temporary), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"qscale": "3"}
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def make_synthetic_video_collection(
    out_dir: str | os.PathLike,
    videos_per_class: int = 10,
    num_frames: int = 24,
    size: int = 64,
    fps: int = 8,
    seed: int = 0,
) -> dict[str, int]:
    """Write ``videos_per_class`` videos of each of the 8 classes under ``out_dir/<class>/`` and
    ``out_dir/labels.json`` (relative path → class id). Deterministic for a seed; returns the labels."""
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    labels: dict[str, int] = {}
    for class_id, name in enumerate(class_names()):
        for index in range(videos_per_class):
            relative = f"{name}/{name}-{index:03d}.mp4"
            write_video(out_dir / relative, render_frames(name, num_frames, size, rng), fps=fps)
            labels[relative] = class_id
    write_file_atomically(out_dir / "labels.json", json.dumps(labels, indent=1, sort_keys=True))
    return labels
