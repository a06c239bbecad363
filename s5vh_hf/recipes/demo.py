"""``s5vh demo``: the whole pipeline on the embedded synthetic dataset, in a few CPU minutes.

generate data → feature shards → clusters + hash centers → train → evaluate against LSH and PCA-sign →
Hamming index + search → checkpoint with model card, PR-curve plot, summary.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from transformers import PrinterCallback, set_seed

from ..data.hash_centers import save_hash_centers
from ..data.loading import load_feature_dataset, videos_and_labels
from ..model.commits import write_file_atomically
from ..model.modeling_s5vh import S5VHModel
from ..retrieval.hamming_index import HammingIndex
from ..training.arguments import s5vh_training_arguments
from ..training.trainer import S5VHTrainer
from .experiments import DEMO_RECIPE, demo_config, evaluate_with_baselines, preprocess, write_embedded_dataset


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def run_demo(out_dir: Path, epochs: int = 12, seed: int = 0, show_progress: bool = True) -> dict:
    """Run the demo and return its summary (also printed and written to ``out_dir/summary.json``)."""
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    set_seed(seed)
    print("1/6 generating the embedded synthetic dataset (10 classes, 64-d frame features) …")
    data_dir = write_embedded_dataset(out_dir / "data", seed=seed)
    splits = load_feature_dataset(data_dir)
    sizes = {name: len(split) for name, split in splits.items()}
    print(f"    splits: {sizes} → {data_dir}")

    config = demo_config()
    print(f"2/6 clustering the training videos and generating {config.num_hash_centers} hash centers …")
    clusters, centers = preprocess(splits["train"], config.num_hash_centers, config.code_length, pca_dim=64, seed=seed)
    centers_path = out_dir / f"hash_centers_{config.code_length}.safetensors"
    save_hash_centers(centers_path, centers.centers, clusters.pseudo_labels, seed=seed, source="embedded synthetic")
    print(f"    {centers.report.summary()}")

    print(f"3/6 training S5VH ({config.encoder_depth} blocks, width {config.hidden_size}) for {epochs} epochs …")
    model = S5VHModel(config)
    model.set_hash_centers(centers.centers)
    args = s5vh_training_arguments(
        config,
        str(out_dir / "run"),
        recipe=DEMO_RECIPE,
        num_train_epochs=epochs,
        save_strategy="no",
        logging_steps=20,
        seed=seed,
        dataloader_drop_last=True,
        disable_tqdm=not show_progress,
    )
    trainer = S5VHTrainer(model, args, splits["train"], clusters.pseudo_labels)
    if not show_progress:
        trainer.remove_callback(PrinterCallback)
    train_started = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - train_started

    print("4/6 evaluating mAP@K against mean-pooling baselines (LSH, PCA-sign) …")
    scores = evaluate_with_baselines(model, splits, ks=(5, 20, 40, 60, 80, 100), seed=seed, pr_curve=True)
    print(_table(["method", "mAP@5", "mAP@20", "mAP@100"], scores.rows()))

    print("5/6 building a Hamming index of the database and searching …")
    database, queries = videos_and_labels(splits["database"]), videos_and_labels(splits["query"])
    index = HammingIndex.from_codes(model.encode(database[0], output="packed", show_progress_bar=show_progress))
    distances, ids = index.search(model.encode(queries[0][:1], output="packed", show_progress_bar=False), 5)
    query_id = splits["query"][0]["video_id"]
    database_ids = splits["database"]["video_id"]
    print(f"    query {query_id} (label {queries[1][0][0]}): top 5 of {index.ntotal} database videos")
    for rank, (d, i) in enumerate(zip(distances[0], ids[0]), 1):
        print(f"      {rank}. {database_ids[i]}  label {database[1][i][0]}  Hamming {d}")

    print("6/6 saving the model with its model card, the evaluation and the PR-curve plot …")
    report = scores.model  # the evaluation of step 4 (also recorded for the model card)
    model_dir = out_dir / "model"
    model.save_pretrained(model_dir)
    report.save_json(out_dir / "evaluation.json")
    report.plot(out_dir / "retrieval_curves.png")
    summary = {
        "mAP@20": {
            "S5VH": scores.model.map_at_k[20],
            "PCA-sign": scores.pca.map_at_k[20],
            "LSH": scores.lsh.map_at_k[20],
        },
        "train_seconds": round(train_seconds, 1),
        "total_seconds": round(time.perf_counter() - started, 1),
        "paths": {
            "dataset": str(data_dir),
            "hash_centers": str(centers_path),
            "model": str(model_dir),
            "model_card": str(model_dir / "README.md"),
            "evaluation": str(out_dir / "evaluation.json"),
            "plot": str(out_dir / "retrieval_curves.png"),
        },
    }
    write_file_atomically(out_dir / "summary.json", json.dumps(summary, indent=2))
    rows = [
        ["mAP@20 S5VH / PCA-sign / LSH", " / ".join(f"{v:.3f}" for v in summary["mAP@20"].values())],
        ["training time", f"{summary['train_seconds']} s ({epochs} epochs, {sizes['train']} videos)"],
        ["total time", f"{summary['total_seconds']} s"],
        *[[name, path] for name, path in summary["paths"].items()],
    ]
    print("\nSummary\n" + _table(["item", "value"], rows))
    return summary
