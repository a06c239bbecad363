"""The search page at scale: a 1,000,000-code index (synthetic codes) — how long it takes to load the index and
the page's collection, and to answer a query (picking a collection video: faiss's binary index) against a NumPy
brute-force Hamming scan of the same codes, side by side.

    python -m benchmarks.search_page [--codes 1000000] [--bits 64]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import machine_description, markdown_table, median_seconds, write_section


def write_synthetic_index(folder: Path, model, count: int, bits: int, seed: int = 0) -> None:
    """An index of ``count`` random codes with ids, paths and keys, committed as `s5vh index` commits one."""
    from s5vh_hf.model.commits import StagedFiles
    from s5vh_hf.model.fingerprint import model_fingerprint
    from s5vh_hf.video.index import _commit_index, _entries_table

    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 256, (count, bits // 8), dtype=np.uint8)
    ids = [f"clip-{i:07d}.mp4" for i in range(count)]
    entries = _entries_table(ids, [f"/data/videos/{v}" for v in ids], [f"{i:032x}" for i in range(count)])
    manifest = {"model": {"fingerprint": model_fingerprint(model), "source": None, "code_length": bits},
                "extractor": None, "num_frames": 25, "split": "database", "skipped": {}}  # fmt: skip
    with StagedFiles(folder, "index") as staged:
        _commit_index(staged, codes, bits, entries, manifest)


def numpy_search(codes: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    """Brute force: popcount of XOR over every code, then the k smallest."""
    table = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).sum(1).astype(np.uint8)
    distances = table[np.bitwise_xor(codes, query)].sum(1, dtype=np.int32)
    top = np.argpartition(distances, k)[:k]
    return top[np.argsort(distances[top], kind="stable")]


def main() -> None:
    from s5vh_hf import S5VHConfig, S5VHModel
    from s5vh_hf.app.collection import SearchCollection
    from s5vh_hf.video.index import VideoIndex

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codes", type=int, default=1_000_000)
    parser.add_argument("--bits", type=int, default=64)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = S5VHModel(S5VHConfig(feature_dim=24, hidden_size=16, encoder_depth=1, decoder_hidden_size=16,
                                 code_length=args.bits, num_hash_centers=4))  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="s5vh-page-bench-") as folder:
        folder = Path(folder)
        started = time.perf_counter()
        write_synthetic_index(folder / "index", model, args.codes, args.bits)
        written = time.perf_counter() - started
        load_index = median_seconds(lambda: VideoIndex(folder / "index"), repeats=3, warmup=0)
        load_page = median_seconds(lambda: SearchCollection.from_index(folder / "index", model=model), repeats=3,
                                   warmup=0)  # fmt: skip
        collection = SearchCollection.from_index(folder / "index", model=model)
        rng = np.random.default_rng(1)
        members = [collection.video_ids[i] for i in rng.integers(0, args.codes, 20)]
        answers = iter(members * 100)
        page_query = median_seconds(lambda: collection.search_member(next(answers), k=10), repeats=20)
        rows_numpy = iter(rng.integers(0, args.codes, 100))
        numpy_query = median_seconds(lambda: numpy_search(collection.codes, collection.codes[next(rows_numpy)], 11),
                                     repeats=10)  # fmt: skip
        table = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).sum(1)
        for row in rng.integers(0, args.codes, 3):  # the page's answer has the distances of the brute force
            found = [card.hamming for card in collection.search_member(collection.video_ids[row], k=10).cards]
            brute = [i for i in numpy_search(collection.codes, collection.codes[row], 11) if i != row][:10]
            expected = [int(table[collection.codes[i] ^ collection.codes[row]].sum()) for i in brute]
            assert found == expected, (found, expected)
    rows = [
        ["write the index (synthetic codes, ids, paths)", f"{written:.2f} s", ""],
        ["load the index (`VideoIndex`: hash checks, codes, entries)", f"{load_index:.2f} s", ""],
        ["load the page's collection (`SearchCollection.from_index`)", f"{load_page:.2f} s", ""],
        ["a query: pick a collection video, top 10 (faiss binary index)", f"{page_query * 1000:.1f} ms",
         f"{numpy_query / page_query:.1f}× faster"],
        ["the same query, NumPy brute-force popcount", f"{numpy_query * 1000:.1f} ms", "1.0×"],
    ]  # fmt: skip
    body = (
        f"## The search page at scale (`python -m benchmarks.search_page`)\n\nMachine: {machine_description()}.\n\n"
        f"{args.codes:,} random {args.bits}-bit codes (medians; loads of 3, queries of 20):\n\n"
        + markdown_table(["step", "time", "speed-up"], rows)
    )
    write_section("search-page", body)
    print(body)


if __name__ == "__main__":
    main()
