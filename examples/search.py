"""Build a Hamming index over a database split, save it, and search it with query videos.

python examples/search.py --model s5vh-output/demo/model --data s5vh-output/demo/data
"""

import argparse
from pathlib import Path

from s5vh_hf import HammingIndex, S5VHModel, load_feature_dataset
from s5vh_hf.data.loading import videos_and_labels

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--model", required=True)
parser.add_argument("--data", required=True, help="feature dataset with database and query splits")
parser.add_argument("--k", type=int, default=5)
parser.add_argument("--index", default="s5vh-output/search-example/database.faissindex")
args = parser.parse_args()

model = S5VHModel.from_pretrained(args.model)
splits = load_feature_dataset(args.data)
database_videos, database_labels = videos_and_labels(splits["database"])
query_videos, query_labels = videos_and_labels(splits["query"].select(range(3)))

index = HammingIndex.from_codes(model.encode(database_videos, output="packed"))
Path(args.index).parent.mkdir(parents=True, exist_ok=True)
index.save(args.index)
index = HammingIndex.load(args.index)  # what a search service would do at start-up
distances, ids = index.search(model.encode(query_videos, output="packed"), k=args.k)
database_ids = splits["database"]["video_id"]
for query_id, labels, row_d, row_i in zip(splits["query"]["video_id"], query_labels, distances, ids):
    print(
        f"{query_id} {labels}: "
        + ", ".join(f"{database_ids[i]} {database_labels[i]} d={d}" for d, i in zip(row_d, row_i))
    )
