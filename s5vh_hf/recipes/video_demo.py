"""The raw-video demo (``s5vh demo --videos``): synthetic video files → frame features → S5VH → a Hamming index
→ search with a video. Runs offline: the frame encoder is a small randomly initialised VGG (spatially aware random
features; a pretrained ``vgg16`` takes its place on real videos)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from transformers import PrinterCallback, set_seed

from ..data.clustering import mean_pool
from ..data.hash_centers import clusters_and_centers
from ..data.loading import load_feature_dataset, videos_and_labels
from ..model.commits import write_file_atomically
from ..model.modeling_s5vh import S5VHModel
from ..retrieval.baselines import lsh_codes
from ..training.arguments import s5vh_training_arguments
from ..training.trainer import S5VHTrainer
from ..video.extraction import extract_video_features
from ..video.frame_encoders import VGGFeatures, load_frame_encoder, save_vgg
from ..video.index import THUMBNAILS, VideoIndex, build_video_index
from ..video.synthetic import class_names, make_synthetic_video_collection
from .experiments import demo_config


def _precision_at(hits: list[list[int]], query_labels: list[int], k: int) -> float:
    return float(np.mean([[label == q for label in row[:k]] for row, q in zip(hits, query_labels)]))


def run_video_demo(
    out_dir: Path,
    epochs: int = 40,
    seed: int = 0,
    show_progress: bool = True,
    videos_per_class: int = 16,
    num_frames: int = 12,
) -> dict:
    """Run the raw-video demo; returns its summary (also written to ``out_dir/summary.json``)."""
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    set_seed(seed)
    names = class_names()
    print(f"1/5 writing {videos_per_class * len(names)} synthetic videos ({len(names)} motion classes, half of them "
          "another class played backwards) …")  # fmt: skip
    labels = make_synthetic_video_collection(out_dir / "videos", videos_per_class=videos_per_class,
                                             num_frames=2 * num_frames, seed=seed)  # fmt: skip
    queries = {path for path in labels if int(path.rsplit("-", 1)[1][:3]) >= videos_per_class * 3 // 4}
    for split, keep in (("database", lambda p: p not in queries), ("query", lambda p: p in queries)):
        write_file_atomically(out_dir / f"{split}.txt", "\n".join(f"videos/{p}" for p in sorted(labels) if keep(p)))

    print("2/5 extracting frame features (a small random VGG, no download) …")
    torch.manual_seed(seed)
    encoder_dir = save_vgg(VGGFeatures(width=1 / 16, hidden=64), out_dir / "frame-encoder")
    encoder = load_frame_encoder(encoder_dir, device="cpu")
    relative = {f"videos/{p}": [c] for p, c in labels.items()}
    for split in ("database", "query"):
        thumbnails = out_dir / "index" / THUMBNAILS if split == "database" else None  # for the search page
        report = extract_video_features(out_dir / f"{split}.txt", out_dir / "features", encoder, split=split,
                                        num_frames=num_frames, labels=relative, show_progress_bar=show_progress,
                                        thumbnails=thumbnails)  # fmt: skip
        print(f"    {report.summary()}")
    splits = load_feature_dataset(out_dir / "features")

    print(f"3/5 training S5VH on the database videos for {epochs} epochs (no labels) …")
    config = demo_config(code_length=32, num_hash_centers=len(names), warmup_epochs=epochs // 2)
    config.feature_dim = encoder.feature_dim
    model = S5VHModel(config)
    clusters, centers = clusters_and_centers(splits["database"], len(names), 32, pca_dim=32, seed=seed,
                                             pooling=config.cluster_pooling, segments=config.cluster_segments)  # fmt: skip
    model.set_hash_centers(centers.centers)
    args = s5vh_training_arguments(config, str(out_dir / "run"), num_train_examples=len(splits["database"]),
                                   num_train_epochs=epochs, save_strategy="no", logging_strategy="no", seed=seed,
                                   disable_tqdm=not show_progress)  # fmt: skip
    trainer = S5VHTrainer(model, args, splits["database"], clusters.pseudo_labels)
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    model.save_pretrained(out_dir / "model")
    model = S5VHModel.from_pretrained(out_dir / "model")

    print("4/5 indexing the database videos …")
    build_video_index(model, splits["database"], out_dir / "index", encoder.identity, num_frames=num_frames)
    index = VideoIndex(out_dir / "index")

    print("5/5 searching with the query videos (decoded and encoded like the database) …")
    query_paths = [out_dir / line for line in (out_dir / "query.txt").read_text().splitlines()]
    results = index.search_videos(query_paths, model, encoder, k=5)
    label_of = {f"videos/{p}": c for p, c in labels.items()}
    database_ids = index.video_ids
    hit_labels = [[label_of[h.video_id] for h in hits] for hits in results]
    query_labels = [label_of[str(p.relative_to(out_dir))] for p in query_paths]
    s5vh_precision = _precision_at(hit_labels, query_labels, 5)
    db_videos, db_labels = videos_and_labels(splits["database"])
    q_videos, _ = videos_and_labels(splits["query"])
    pooled = mean_pool(list(db_videos) + list(q_videos))
    lsh = lsh_codes(pooled, 32, seed=seed)
    distances = (lsh[len(db_videos) :, None, :] != lsh[None, : len(db_videos), :]).sum(-1)
    order = np.argsort(distances, axis=1, kind="stable")[:, :5]
    query_ids = splits["query"]["video_id"]
    lsh_labels = [[db_labels[i][0] for i in row] for row in order]
    lsh_precision = _precision_at(lsh_labels, [label_of[v] for v in query_ids], 5)
    first = query_paths[0]
    print(f"    query {first.relative_to(out_dir)} ({names[query_labels[0]]}):")
    for rank, hit in enumerate(results[0], 1):
        print(f"      {rank}. {hit.video_id}  ({names[label_of[hit.video_id]]}, Hamming {hit.hamming})")
    print(f"    precision@5 over {len(query_paths)} query videos: S5VH {s5vh_precision:.2f}, "
          f"LSH on mean-pooled frames {lsh_precision:.2f} (chance {1 / len(names):.2f})")  # fmt: skip
    summary = {
        "precision@5": {"S5VH": s5vh_precision, "LSH": lsh_precision},
        "videos": len(labels),
        "database": len(database_ids),
        "queries": len(query_paths),
        "total_seconds": round(time.perf_counter() - started, 1),
        "paths": {name: str(out_dir / name) for name in ("videos", "features", "model", "index")},
    }
    write_file_atomically(out_dir / "summary.json", json.dumps(summary, indent=2))
    print(f"done in {summary['total_seconds']} s; summary in {out_dir / 'summary.json'}")
    print(f"open the search page on this collection:  s5vh app {out_dir / 'index'}")
    return summary
