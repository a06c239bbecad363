"""An index that grows: build a 1,000-video index, then add one video and remove one, counting what each step
decodes and how long it takes (a rebuild of the whole collection, as before #23, is the comparison).

    python -m benchmarks.video_index_growth [--videos 1000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import machine_description, markdown_table, write_section
from s5vh_hf import S5VHConfig, S5VHModel
from s5vh_hf.recipes.indexing import index_collection
from s5vh_hf.video.corpus import write_case
from s5vh_hf.video.frame_encoders import VGGFeatures, load_frame_encoder, save_vgg
from s5vh_hf.video.index import VideoIndex

FRAMES = 8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="s5vh-index-growth-") as folder:
        folder = Path(folder)
        for index in range(args.videos + 1):
            target = folder / ("videos" if index < args.videos else "new") / f"clip-{index:05d}.mp4"
            target.parent.mkdir(exist_ok=True)
            write_case(target, frame_times=[t / 5 for t in range(10)], size=(32, 32 + 4 * (index % 16)))
        torch.manual_seed(0)
        encoder = load_frame_encoder(save_vgg(VGGFeatures(width=1 / 32, hidden=24), folder / "vgg"), device="cpu")
        config = S5VHConfig(feature_dim=24, hidden_size=16, encoder_depth=1, decoder_hidden_size=16, code_length=16,
                            num_hash_centers=4)  # fmt: skip
        model = S5VHModel(config)
        model.save_pretrained(folder / "model")
        model = S5VHModel.from_pretrained(folder / "model")
        rows = []
        started = time.perf_counter()
        index_collection(model, folder / "videos", folder / "index", extractor=str(folder / "vgg"),
                         num_frames=FRAMES)  # fmt: skip
        rows.append([f"build ({args.videos} videos)", args.videos * FRAMES, f"{time.perf_counter() - started:.1f}"])
        started = time.perf_counter()
        change = VideoIndex(folder / "index").add_videos([folder / "new" / f"clip-{args.videos:05d}.mp4"], model,
                                                         encoder, show_progress_bar=False)  # fmt: skip
        rows.append(["add one video", change.frames_decoded, f"{time.perf_counter() - started:.2f}"])
        started = time.perf_counter()
        change = VideoIndex(folder / "index").remove(["clip-00000.mp4"])
        rows.append(["remove one video", 0, f"{time.perf_counter() - started:.2f}"])
        assert len(VideoIndex(folder / "index")) == args.videos
        started = time.perf_counter()
        index_collection(model, folder / "videos", folder / "rebuild", extractor=str(folder / "vgg"),
                         num_frames=FRAMES)  # fmt: skip
        rows.append(["rebuild from scratch (the only way before)", args.videos * FRAMES,
                     f"{time.perf_counter() - started:.1f}"])  # fmt: skip
    body = (
        f"## An index that grows (`python -m benchmarks.video_index_growth`)\n\nMachine: {machine_description()}.\n\n"
        f"{args.videos} short clips, {FRAMES} frames each, a tiny VGG (so that decoding, not the encoder, dominates):"
        "\n\n" + markdown_table(["step", "frames decoded", "seconds"], rows)
    )
    write_section("video-index-growth", body)
    print(body)


if __name__ == "__main__":
    main()
