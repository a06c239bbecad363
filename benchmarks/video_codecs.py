"""Extraction on real codecs and resolutions: frames/s of sampling 25 frames per video and the peak memory of a
whole extraction, with frames shrunk to the encoder's input as they are decoded (today) against keeping the
decoded resolution and resizing in the encoder (before #23), side by side in one run.

    python -m benchmarks.video_codecs [--seconds 4]

Peak memory is the resident peak of a fresh process extracting 6 such videos with a tiny VGG (so that it measures
the frames, not the encoder's weights); the full VGG16 costs the same on top in both columns.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import machine_description, markdown_table, median_seconds, run_in_child, write_section
from s5vh_hf.video.decoding import import_av, read_frames

RESOLUTIONS = {"360p": (360, 640), "720p": (720, 1280), "1080p": (1080, 1920), "4K": (2160, 3840)}
CODECS = {"H.264": ("libx264", "mp4", {"preset": "veryfast"}), "HEVC": ("libx265", "mp4", {"preset": "ultrafast",
          "x265-params": "log-level=none"}), "VP9": ("libvpx-vp9", "webm", {"deadline": "realtime", "cpu-used": "8"}),
          "MPEG-2 (TS)": ("mpeg2video", "ts", {}), "MJPEG": ("mjpeg", "avi", {})}  # fmt: skip


def write_clip(path: Path, codec: str, options: dict, size: tuple[int, int], seconds: int, fps: int = 25) -> None:
    """A moving textured clip (the content codecs work on: motion, edges, noise)."""
    av = import_av()
    height, width = size
    rng = np.random.default_rng(0)
    tile = rng.integers(0, 255, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    base = np.repeat(np.repeat(tile, 8, 0), 8, 1)[:height, :width]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        stream.options = options
        for index in range(seconds * fps):
            frame = av.VideoFrame.from_ndarray(np.roll(base, index * 4, axis=1), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _peak_of_extraction(paths: list[str], out: str, shrink: bool, queue) -> None:
    import torch

    from s5vh_hf.video.extraction import extract_video_features
    from s5vh_hf.video.frame_encoders import FrameEncoder, VGGFeatures

    torch.manual_seed(0)
    torch.set_num_threads(2)
    model = VGGFeatures(width=1 / 32, hidden=24).eval()
    encoder = FrameEncoder("tiny-vgg", "random", 24, model, None, "vgg", frame_side=256 if shrink else 100_000)
    extract_video_features(paths, out, encoder, num_frames=25, show_progress_bar=False)
    queue.put(peak_resident_mib())


def peak_resident_mib() -> float:
    """This process's resident peak (``VmHWM``; ``ru_maxrss`` would carry the parent's peak across fork + exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=4, help="length of each clip")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="s5vh-codec-bench-") as folder:
        folder = Path(folder)
        plan = [("H.264", name) for name in RESOLUTIONS] + [(codec, "720p") for codec in CODECS if codec != "H.264"]
        for codec_name, resolution in plan:
            codec, extension, options = CODECS[codec_name]
            clip = folder / f"{codec}-{resolution}.{extension}"
            write_clip(clip, codec, options, RESOLUTIONS[resolution], args.seconds)
            shrunk = median_seconds(lambda clip=clip: read_frames(clip, num_frames=25, size=256), repeats=3)
            full = median_seconds(lambda clip=clip: read_frames(clip, num_frames=25), repeats=3)
            copies = []
            for copy in range(6):  # six videos (links: six paths, six cache keys)
                copies.append(folder / f"copy-{copy}{clip.suffix}")
                copies[-1].symlink_to(clip)
            peaks = []
            for shrink in (True, False):
                out = folder / f"out-{time.monotonic_ns()}"
                peaks.append(run_in_child(_peak_of_extraction, [str(c) for c in copies], str(out), shrink))
            rows.append([codec_name, resolution, f"{25 / shrunk:.0f}", f"{25 / full:.0f}", f"{full / shrunk:.2f}×",
                         f"{peaks[0]:.0f}", f"{peaks[1]:.0f}"])  # fmt: skip
            print(rows[-1], flush=True)
            for path in [clip, *copies]:
                path.unlink()
    header = ["codec", "resolution", "frames/s, shrunk at decode", "frames/s, full resolution", "speed-up",
              "peak MiB, shrunk at decode", "peak MiB, full resolution"]  # fmt: skip
    body = (
        f"## Extraction on real codecs (`python -m benchmarks.video_codecs`)\n\nMachine: {machine_description()}.\n\n"
        f"Sampling 25 frames of a {args.seconds} s, 25 fps clip (decode + rotate + RGB, median of 3), and the peak "
        "resident memory (VmHWM) of a fresh process extracting six such clips (tiny VGG: the frames' memory, not the "
        "encoder's):\n\n" + markdown_table(header, rows)
    )
    write_section("video-codecs", body)


if __name__ == "__main__":
    main()
