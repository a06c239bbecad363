"""Quickstart: hash videos with S5VH and search them by Hamming distance.

    python examples/quickstart.py [--model path/or/repo]

Without --model it uses a freshly initialised model on the embedded synthetic data (codes are then random-ish;
run examples/train.py or `s5vh demo` first for a trained model).
"""

import argparse

from s5vh_hf import HammingIndex, S5VHModel
from s5vh_hf.recipes import EMBEDDED_DATASET, demo_config
from s5vh_hf.synthetic import make_synthetic_videos

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--model", help="a saved model folder or Hub repo id")
args = parser.parse_args()

model = S5VHModel.from_pretrained(args.model) if args.model else S5VHModel(demo_config())
data = make_synthetic_videos(num_videos=200, seed=1, **EMBEDDED_DATASET)
videos = data.videos()  # a list of [T_i, D] float arrays, any lengths

codes = model.encode(videos)  # int8 ±1, [200, L]
packed = model.encode(videos, output="packed")  # uint8, [200, L/8]
print(f"codes {codes.shape} {codes.dtype}, packed {packed.shape} {packed.dtype}")

index = HammingIndex.from_codes(packed[20:])  # database: videos 20…199
distances, ids = index.search(packed[:3], k=5)  # queries: videos 0…2
for query, (row_d, row_i) in enumerate(zip(distances, ids)):
    hits = ", ".join(f"{data.video_ids[20 + i]} (label {data.labels[20 + i]}, d={d})" for d, i in zip(row_d, row_i))
    print(f"query {data.video_ids[query]} (label {data.labels[query]}): {hits}")
