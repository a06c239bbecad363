"""Video files on this CPU: sampling frames by seeking vs decoding every frame, frame-encoder throughput of the
real-size VGG16 and ResNet-50 architectures (random weights: the speed does not depend on them), and `s5vh index`
end to end (decode + VGG16 + S5VH + index) with how many cores it kept busy.

    python -m benchmarks.video [--videos 12]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import machine_description, markdown_table, median_seconds, write_section
from s5vh_hf.video.decoding import import_av, read_frames


def write_long_video(
    path: Path, seconds: int, fps: int = 25, width: int = 640, height: int = 360, gop: int = 250
) -> None:
    """A moving-gradient video with a key frame every ``gop`` frames (H.264 encoders' usual 10 s at 25 fps)."""
    av = import_av()
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = gop
        for index in range(seconds * fps):
            frame = np.roll(base, index * 3, axis=1)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=12, help="videos for the end-to-end `s5vh index` run")
    parser.add_argument("--seconds", type=int, default=60, help="length of the decoding benchmark's video")
    args = parser.parse_args()
    sections = [f"## Video files (`python -m benchmarks.video`)\n\nMachine: {machine_description()}.\n"]
    with tempfile.TemporaryDirectory(prefix="s5vh-video-bench-") as folder:
        folder = Path(folder)
        long_video = folder / "long.mp4"
        rows = []
        for gop in (50, 250):
            write_long_video(long_video, args.seconds, gop=gop)
            seek = median_seconds(lambda: read_frames(long_video, num_frames=25, seek=True), repeats=3)
            decode_all = median_seconds(lambda: read_frames(long_video, num_frames=25, seek=False), repeats=3)
            for method, seconds in (("seek (key-frame aware)", seek), ("decode every frame", decode_all)):
                rows.append([f"{gop // 25} s", method, f"{seconds:.3f}", f"{1 / seconds:.1f}",
                             f"{decode_all / seconds:.1f}×"])  # fmt: skip
        sections.append(
            f"Sampling 25 frames of a {args.seconds} s, 640×360, 25 fps MPEG-4 video, median of 3:\n\n"
            + markdown_table(["key frame every", "method", "seconds per video", "videos/s", "speed-up"], rows)
        )

        from transformers import ConvNextImageProcessor, ResNetConfig, ResNetModel

        from s5vh_hf.video.frame_encoders import FrameEncoder, VGGFeatures

        frames = read_frames(long_video, num_frames=32).frames
        torch.manual_seed(0)
        vgg = FrameEncoder("vgg16", "random", 4096, VGGFeatures().eval(), None, "vgg")
        resnet = FrameEncoder("resnet50", "random", 2048, ResNetModel(ResNetConfig()).eval(),
                              ConvNextImageProcessor(size={"shortest_edge": 224}), "transformers")  # fmt: skip
        rows = []
        for encoder in (vgg, resnet):
            seconds = median_seconds(lambda encoder=encoder: encoder.encode(frames), repeats=3)
            rows.append([encoder.name, encoder.feature_dim, f"{len(frames) / seconds:.1f}"])
        sections.append(
            "Frame encoders, real-size architectures with random weights, batches of 32 frames (224×224 after "
            "preprocessing):\n\n" + markdown_table(["encoder", "D", "frames/s"], rows)
        )

        from s5vh_hf import S5VHConfig, S5VHModel
        from s5vh_hf.cli.main import main as cli
        from s5vh_hf.video.frame_encoders import save_vgg

        collection = folder / "collection"
        collection.mkdir()
        for index in range(args.videos):
            write_long_video(collection / f"v{index:03d}.mp4", seconds=10)
        save_vgg(VGGFeatures(), folder / "vgg16-random")
        S5VHModel(S5VHConfig.from_preset("fcvid-64", model_size="mini")).save_pretrained(folder / "model")
        wall, cpu = time.perf_counter(), cpu_seconds()
        status = cli(["index", str(folder / "model"), str(collection), "--extractor", str(folder / "vgg16-random"),
                      "--out", str(folder / "index"), "--frames", "25"])  # fmt: skip
        wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
        assert status == 0
        sections.append(
            f"`s5vh index` end to end, {args.videos} videos of 10 s (640×360), 25 frames each, VGG16 (random "
            "weights) + S5VH mini: "
            f"**{args.videos / wall:.2f} videos/s** ({args.videos * 25 / wall:.1f} frames/s), "
            f"{cpu / wall:.2f} cores busy on average (decoding threads overlap the encoder)."
        )
    body = "\n\n".join(sections)
    write_section("video", body)
    print(body)


if __name__ == "__main__":
    main()
