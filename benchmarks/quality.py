"""Learning-quality benchmark: S5VH codes against LSH, PCA-sign, ITQ and float kNN on mean-pooled features.

    python -m benchmarks.quality [--sets order,digits,osuleaf,acsf1,shape-25x4096,shape-30x2048] [--seeds 0,1]

The UCR sets (osuleaf, acsf1) are read from aeon's wheel: ``pip install --no-deps aeon==1.6.0`` (skipped without).

Every method gets the same data and, for S5VH, the same budget (epochs of the set). Rows:
- LSH, PCA-sign, ITQ: binary codes of mean-pooled features (fitted on the training split);
- kNN (float, mean-pooled): Euclidean ranking of mean-pooled features, the ceiling of any code made from them
  (it cannot tell a video from the same video played backwards);
- S5VH (defaults): ``S5VHConfig`` defaults + ``s5vh_training_arguments`` defaults, only D, L, K and the epochs set;
- S5VH (release): the authors' behaviour — ``RELEASE_COMPATIBILITY`` options, their initialisation, the paper's
  recipe (batch 128, AdamW 5e-4, cosine to 1e-5).
Both S5VH rows use the mini model (1 block, width 256) so that the whole benchmark fits a 2-core CPU.
The same run with another thread count differs by up to about ±0.03 mAP (floating-point summation order
changes the training trajectory): smaller differences are noise.
Writes the table, the collapse diagnostics and a plot to benchmarks/RESULTS.md (section "quality").
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import RESULTS_PATH, machine_description, markdown_table, write_section
from benchmarks.quality_data import QUALITY_SETS, QualitySet

BASELINES = ("LSH", "PCA-sign", "ITQ", "kNN (float, mean-pooled)")
S5VH_METHODS = ("S5VH (defaults)", "S5VH (release)")


@dataclass
class MethodResult:
    """mAP@K of one method on one set and seed, plus code statistics for the S5VH rows."""

    map_at_k: dict[int, float]
    distinct_codes: int | None = None
    seconds: float | None = None
    health: dict[str, Any] = field(default_factory=dict)
    curve: list[float] = field(default_factory=list)  # mAP at the first K after each epoch (record_curve)
    readings: dict[str, float] = field(default_factory=dict)  # mAP at the first K of the trained model read otherwise


def baseline_results(qset: QualitySet, seed: int) -> dict[str, MethodResult]:
    """The four mean-pooled baselines, fitted on the training split."""
    from s5vh_hf.data.clustering import mean_pool
    from s5vh_hf.retrieval.baselines import euclidean_ranking, itq_codes, lsh_codes, pca_sign_codes
    from s5vh_hf.retrieval.evaluation import evaluate_codes
    from s5vh_hf.retrieval.metrics import map_at_k, relevance_of_ranking

    train, database, query = (
        mean_pool(split[0]).astype(np.float64) for split in (qset.train, qset.database, qset.query)
    )
    n_db, bits = len(database), qset.code_length
    pca_bits = min(bits, train.shape[1] // 8 * 8)  # PCA has at most D axes; codes are whole bytes
    stacked = np.concatenate([database, query])
    codes = {
        "LSH": lsh_codes(stacked, bits, seed=seed),
        "PCA-sign": pca_sign_codes(train, stacked, pca_bits),
        "ITQ": itq_codes(train, stacked, pca_bits, seed=seed),
    }
    results = {}
    for name, code in codes.items():
        report = evaluate_codes(code[:n_db], qset.database[1], code[n_db:], qset.query[1], ks=qset.ks)
        results[name] = MethodResult(report.map_at_k, distinct_codes=len(np.unique(code[:n_db], axis=0)))
    ranked = euclidean_ranking(database, query, max(qset.ks))
    relevance = relevance_of_ranking(ranked, qset.query[1], qset.database[1])
    results["kNN (float, mean-pooled)"] = MethodResult({k: map_at_k(relevance, k) for k in qset.ks})
    return results


def _feature_dataset(split: tuple[list[np.ndarray], list[int]]):
    import datasets

    from s5vh_hf.data.schema import feature_dataset_features

    videos, _ = split
    columns = {
        "video_id": [f"v{i}" for i in range(len(videos))],
        "features": [v.astype(np.float32) for v in videos],
        "num_frames": [len(v) for v in videos],
    }
    return datasets.Dataset.from_dict(columns, features=feature_dataset_features(videos[0].shape[1], "float32", False))


def release_setup(qset: QualitySet) -> tuple[dict[str, Any], dict[str, Any]]:
    """Config and training overrides of the authors' release: its behaviour options and initialisation, and the
    paper's recipe (batch 128, AdamW 5e-4 with weight decay 1e-4, cosine to 1e-5)."""
    from s5vh_hf.model.configuration_s5vh import RELEASE_COMPATIBILITY

    config = dict(RELEASE_COMPATIBILITY)
    config.pop("sign_tie_rule", None)  # evaluation needs ±1 codes; a 0 bit would be a tie either way
    size = len(qset.train[0])
    # The authors' loader keeps the last partial batch (dropped here only when it would hold one video).
    training = dict(per_device_train_batch_size=128, learning_rate=5e-4, weight_decay=1e-4, warmup_steps=0,
                    dataloader_drop_last=size % 128 == 1)  # fmt: skip
    return config, training


def train_s5vh(
    qset: QualitySet,
    seed: int,
    config_overrides: dict[str, Any] | None = None,
    training_overrides: dict[str, Any] | None = None,
    center_generator: str = "semantic",
    record_curve: bool = False,
    readings: dict[str, dict[str, Any]] | None = None,
) -> MethodResult:
    """Cluster, generate centers, train S5VH (mini model) for the set's epochs and evaluate its codes.

    ``center_generator``: ``"semantic"`` (the package's GV-bounded, semantically consistent centers) or
    ``"hadamard"`` (maximally separated Hadamard rows, for the ablation). ``readings``: name → config fields
    (``code_pooling``, ``code_ends_weight``) under which the trained model's codes are also evaluated, at no
    training cost (``MethodResult.readings``)."""
    import torch
    from transformers import PrinterCallback, set_seed

    from s5vh_hf import S5VHConfig, S5VHModel, S5VHTrainer, s5vh_training_arguments
    from s5vh_hf.recipes.experiments import preprocess
    from s5vh_hf.retrieval.evaluation import evaluate_codes

    set_seed(seed)
    train_dataset = _feature_dataset(qset.train)
    from s5vh_hf import S5VHConfig as _Config

    pooling_config = _Config(**{k: v for k, v in (config_overrides or {}).items() if k.startswith("cluster_")})
    clusters, centers = preprocess(qset.train[0], qset.num_clusters, qset.code_length, seed=seed,
                                   pooling=pooling_config.cluster_pooling,
                                   segments=pooling_config.cluster_segments)  # fmt: skip
    center_matrix = centers.centers
    if center_generator == "hadamard":
        from s5vh_hf.data.hash_centers import initial_hash_centers

        center_matrix = initial_hash_centers(qset.num_clusters, qset.code_length, np.random.default_rng(seed))
    values = dict(
        feature_dim=qset.feature_dim,
        code_length=qset.code_length,
        num_hash_centers=qset.num_clusters,
        encoder_depth=1,
        dataset_name=qset.name,
    )
    values.update(config_overrides or {})
    config = S5VHConfig(**values)
    model = S5VHModel(config)
    model.set_hash_centers(center_matrix)
    with tempfile.TemporaryDirectory() as folder:
        args = s5vh_training_arguments(
            config,
            folder,
            num_train_examples=len(train_dataset),
            **dict(
                dict(
                    num_train_epochs=qset.epochs,
                    save_strategy="no",
                    logging_strategy="no",
                    seed=seed,
                    disable_tqdm=True,
                    use_cpu=True,
                ),
                **(training_overrides or {}),
            ),
        )
        trainer = S5VHTrainer(model, args, train_dataset, clusters.pseudo_labels, health_probe=qset.train[0])
        trainer.remove_callback(PrinterCallback)
        curve: list[float] = []
        if record_curve:
            trainer.add_callback(_CurveCallback(model, qset, curve))
        started = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - started
    with torch.no_grad():
        database_codes = model.encode(qset.database[0], show_progress_bar=False)
        query_codes = model.encode(qset.query[0], show_progress_bar=False)
    report = evaluate_codes(database_codes, qset.database[1], query_codes, qset.query[1], ks=qset.ks)
    other_readings = {}
    for name, fields in (readings or {}).items():
        reading = S5VHModel(S5VHConfig(**dict(values, **fields)))
        missing, _ = reading.load_state_dict(model.state_dict(), strict=False)  # an attention reading's weights
        assert not missing, missing
        with torch.no_grad():
            codes = [reading.eval().encode(split[0], show_progress_bar=False) for split in (qset.database, qset.query)]
        other = evaluate_codes(codes[0], qset.database[1], codes[1], qset.query[1], ks=qset.ks)
        other_readings[name] = other.map_at_k[qset.ks[0]]
    health = trainer.health_history[-1] if trainer.health_history else {}
    return MethodResult(
        report.map_at_k,
        distinct_codes=len(np.unique(database_codes, axis=0)),
        seconds=seconds,
        health=health,
        curve=curve,
        readings=other_readings,
    )


def _CurveCallback(model, qset: QualitySet, curve: list[float]):  # noqa: N802 - a class made on demand
    """A ``TrainerCallback`` that appends mAP at the set's first K to ``curve`` after every epoch."""
    import torch
    from transformers import TrainerCallback

    from s5vh_hf.retrieval.evaluation import evaluate_codes

    class CurveCallback(TrainerCallback):
        def on_epoch_end(self, args, state, control, **kwargs):  # noqa: D102
            was_training = model.training
            model.eval()
            with torch.no_grad():
                database = model.encode(qset.database[0], show_progress_bar=False)
                query = model.encode(qset.query[0], show_progress_bar=False)
            model.train(was_training)
            k = qset.ks[0]
            curve.append(evaluate_codes(database, qset.database[1], query, qset.query[1], ks=(k,)).map_at_k[k])

    return CurveCallback()


def s5vh_results(qset: QualitySet, seed: int, methods: tuple[str, ...] = S5VH_METHODS) -> dict[str, MethodResult]:
    runs: dict[str, Callable[[], MethodResult]] = {
        "S5VH (defaults)": lambda: train_s5vh(qset, seed),
        "S5VH (release)": lambda: train_s5vh(qset, seed, *release_setup(qset)),
    }
    return {name: runs[name]() for name in methods}


def mean_and_spread(values: list[float]) -> str:
    return f"{np.mean(values):.3f}" + (f" ± {np.std(values):.3f}" if len(values) > 1 else "")


def summarise(results: dict[str, dict[int, dict[str, MethodResult]]], sets: dict[str, QualitySet]) -> str:
    """Markdown: one table per set (mean ± std over seeds), then the verdict of the issue's goal."""
    parts = []
    verdicts = []
    for name, by_seed in results.items():
        qset = sets[name]
        seeds = sorted(by_seed)
        methods = list(by_seed[seeds[0]])
        header = ["method"] + [f"mAP@{k}" for k in qset.ks] + ["distinct db codes", "train s"]
        rows = []
        for method in methods:
            runs = [by_seed[s][method] for s in seeds]
            cells = [mean_and_spread([r.map_at_k[k] for r in runs]) for k in qset.ks]
            distinct = [r.distinct_codes for r in runs if r.distinct_codes is not None]
            seconds = [r.seconds for r in runs if r.seconds is not None]
            rows.append(
                [method, *cells, f"{np.mean(distinct):.0f} / {len(qset.database[0])}" if distinct else "—",
                 f"{np.mean(seconds):.0f}" if seconds else "—"]
            )  # fmt: skip
        parts.append(f"**{name}** — {qset.description}; {qset.code_length} bits, K = {qset.num_clusters} "
                     f"clusters, {qset.epochs} epochs, {len(qset.train[0])} training videos, seeds {seeds}.\n\n"
                     + markdown_table(header, rows))  # fmt: skip
        k = qset.ks[0]
        score = {m: np.mean([by_seed[s][m].map_at_k[k] for s in seeds]) for m in methods}
        if "S5VH (defaults)" in score:
            rivals = [m for m in ("LSH", "PCA-sign", "ITQ", "S5VH (release)") if m in score]
            if name.startswith(("order", "shape")):
                rivals.append("kNN (float, mean-pooled)")
            beaten = [m for m in rivals if score["S5VH (defaults)"] > score[m]]
            lost = [m for m in rivals if m not in beaten]
            verdicts.append([name, f"{score['S5VH (defaults)']:.3f}", f"{max(score[m] for m in rivals):.3f}",
                             "yes" if not lost else "no: " + ", ".join(lost)])  # fmt: skip
    if verdicts:
        parts.append("Goal (mAP at the first K, mean over seeds): the defaults beat LSH, PCA-sign, ITQ and the release "
                     "configuration, and on the order-dependent sets also float kNN on mean-pooled features.\n\n"
                     + markdown_table(["set", "S5VH (defaults)", "best rival", "beats every rival"], verdicts))  # fmt: skip
    return "\n\n".join(parts)


def plot(results: dict[str, dict[int, dict[str, MethodResult]]], sets: dict[str, QualitySet], path: Path) -> None:
    """Bar chart: mAP at each set's first K, every method, mean over seeds with the spread as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    methods = list(next(iter(results[names[0]].values())))
    width = 0.8 / len(methods)
    figure, axes = plt.subplots(figsize=(max(6, 1.8 * len(names)), 3.6))
    for i, method in enumerate(methods):
        means, spreads = [], []
        for name in names:
            k = sets[name].ks[0]
            values = [runs[method].map_at_k[k] for runs in results[name].values() if method in runs]
            means.append(np.mean(values))
            spreads.append(np.std(values))
        axes.bar(np.arange(len(names)) + (i - len(methods) / 2 + 0.5) * width, means, width, yerr=spreads, label=method)
    axes.set_xticks(np.arange(len(names)), [f"{n}\nmAP@{sets[n].ks[0]}" for n in names])
    axes.set_ylabel("mAP (÷K)")
    axes.legend(fontsize=7, ncols=3)
    axes.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="order,digits,osuleaf,acsf1,shape-25x4096,shape-30x2048")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--methods", default=",".join(S5VH_METHODS), help="S5VH rows to train")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    methods = tuple(m for m in args.methods.split(",") if m)
    results: dict[str, dict[int, dict[str, MethodResult]]] = {}
    sets: dict[str, QualitySet] = {}
    started = time.perf_counter()
    for name in args.sets.split(","):
        for seed in seeds:
            try:
                qset = QUALITY_SETS[name](seed)
            except FileNotFoundError as error:
                print(f"skipping {name}: {error}")
                break
            sets[name] = qset
            runs = baseline_results(qset, seed)
            runs.update(s5vh_results(qset, seed, methods))
            results.setdefault(name, {})[seed] = runs
            line = ", ".join(f"{m} {r.map_at_k[qset.ks[0]]:.3f}" for m, r in runs.items())
            print(f"{name} seed {seed}: mAP@{qset.ks[0]} {line}", flush=True)
    body = summarise(results, sets)
    print(body)
    if args.json:
        raw = {n: {s: {m: vars(r) for m, r in runs.items()} for s, runs in by.items()} for n, by in results.items()}
        args.json.write_text(json.dumps(raw, indent=1, default=str))
    if args.no_write:
        return
    plot_path = RESULTS_PATH.with_name("quality.png")
    plot(results, sets, plot_path)
    minutes = (time.perf_counter() - started) / 60
    write_section(
        "quality",
        "## Learning quality (`python -m benchmarks.quality`)\n\n"
        + __doc__.split("\n\n", 2)[2].split("Writes the table")[0].strip()
        + f"\n\nMachine: {machine_description()}, OMP threads {os.environ.get('OMP_NUM_THREADS', 'default')}. "
        f"Run {datetime.date.today().isoformat()}, {minutes:.0f} min.\n\n"
        + body
        + "\n\n![mAP per set and method](quality.png)",
    )


if __name__ == "__main__":
    main()
