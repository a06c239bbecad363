"""Quickstart: hash videos with S5VH and search them by Hamming distance.

    python examples/quickstart.py [--model path/or/repo]

The videos are the embedded synthetic dataset's database split, the data `s5vh demo` trains on, so a model from
`s5vh demo` (or examples/train.py) finds neighbours of the query's class. Without --model it uses a freshly
initialised model (codes are then random-ish).
"""

import argparse

from s5vh_hf import HammingIndex, S5VHModel
from s5vh_hf.recipes.experiments import demo_config, embedded_synthetic_videos

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--model", help="a saved model folder or Hub repo id")
parser.add_argument("--seed", type=int, default=0, help="seed of the embedded data (the demo's --seed)")
args = parser.parse_args()

model = S5VHModel.from_pretrained(args.model) if args.model else S5VHModel(demo_config())
data = embedded_synthetic_videos(seed=args.seed)["database"]
videos, labels, video_ids = data.videos()[:200], data.labels[:200], data.video_ids[:200]  # [T_i, D] arrays

codes = model.encode(videos)  # int8 ±1, [200, L]
packed = model.encode(videos, output="packed")  # uint8, [200, L/8]; the same bytes as precision="ubinary"
print(f"codes {codes.shape} {codes.dtype}, packed {packed.shape} {packed.dtype}")

index = HammingIndex.from_codes(packed[20:])  # database: videos 20…199
distances, ids = index.search(packed[:20], k=5)  # queries: videos 0…19
for query, (row_d, row_i) in enumerate(zip(distances[:3], ids[:3])):
    hits = ", ".join(f"{video_ids[20 + i]} (label {labels[20 + i]}, d={d})" for d, i in zip(row_d, row_i))
    print(f"query {video_ids[query]} (label {labels[query]}): {hits}")
precision = (labels[20 + ids] == labels[:20, None]).mean()
print(f"precision@5 over 20 queries: {precision:.2f} (chance: {1 / len(set(labels)):.2f})")
