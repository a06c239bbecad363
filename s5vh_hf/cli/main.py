"""The ``s5vh`` command: thin argument parsing over the library (each subcommand calls one or two functions)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ..model.commits import write_file_atomically

EXAMPLES = {
    "demo": "s5vh demo                       # everything, on the embedded synthetic dataset\n"
    "s5vh demo --epochs 3 --out /tmp/demo\n"
    "s5vh demo --videos                # from synthetic video files: extract, train, index, search with a video",
    "convert-features": "s5vh convert-features fcv_train_feats.h5 --split train --labels fcv_train_labels.mat --out fcvid/",
    "preprocess": "s5vh preprocess fcvid/ --code-length 64 --clusters 450 --out fcvid-centers/",
    "train": "s5vh train fcvid/ --preset fcvid-64 --centers fcvid-centers/hash_centers_64.safetensors --out runs/fcvid-64",
    "encode": "s5vh encode runs/fcvid-64 fcvid/ --split database --out codes/\n"
    "accelerate launch --multi_gpu --num_processes 2 -m s5vh_hf.cli encode runs/fcvid-64 fcvid/ --split database "
    "--out codes/   # 2 processes, GPU or not",
    "evaluate": "s5vh evaluate runs/fcvid-64 fcvid/ --protocol fcvid --json report.json --plot curves.png",
    "search": "s5vh search runs/fcvid-64 fcvid/ --database-split database --query-split query --k 10 --limit 3\n"
    "s5vh search my-index/ --query-video clip.mp4 --k 10   # search an index with a video\n"
    "s5vh search runs/fcvid-64 fcvid/ --database-codes codes/   # reuse the codes of `s5vh encode`",
    "push": "s5vh push runs/fcvid-64 me/s5vh-fcvid-64 --private",
    "app": "s5vh app my-index/                            # the search page on http://127.0.0.1:7860\n"
    "s5vh app runs/fcvid-64 --features fcvid/ --split database   # a feature collection: ids, labels, distances",
    "extract": "s5vh extract my-videos/ --extractor vgg16 --frames 25 --out my-features/ --split database",
    "index": "s5vh index s5vh-fcvid-64 my-videos/ --extractor vgg16 --out my-index/",
    "convert-checkpoint": "s5vh convert-checkpoint fcvid_64.pth --preset fcvid-64 --centers hash_center_64.h5 --out s5vh-fcvid-64",
}


DEMO_OUT = "s5vh-output/demo"


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


# ------------------------------------------------------------------------------------------------ subcommands


def _demo(args: argparse.Namespace) -> int:
    if args.videos:
        from ..recipes.video_demo import run_video_demo

        out = Path(args.out) if args.out != DEMO_OUT else Path("s5vh-output/video-demo")
        run_video_demo(out_dir=out, epochs=args.epochs or 40, seed=args.seed, show_progress=not args.quiet)
        return 0
    from ..recipes.demo import run_demo

    run_demo(out_dir=Path(args.out), epochs=args.epochs or 12, seed=args.seed, show_progress=not args.quiet)
    return 0


def _convert_features(args: argparse.Namespace) -> int:
    from ..data.import_hdf5 import import_h5_features

    shards = import_h5_features(
        args.features,
        args.out,
        args.split,
        labels_mat=args.labels,
        label_key=args.label_key,
        shard_size=args.shard_size,
        dtype=args.dtype,
        read_chunk=args.read_chunk,
        show_progress_bar=True,
        feature_extractor=args.feature_extractor,
    )
    print(f"wrote {len(shards)} shard(s) of split {args.split!r} under {Path(args.out) / 'data'}")
    return 0


def _preprocess(args: argparse.Namespace) -> int:
    from ..data.hash_centers import clusters_and_centers, save_hash_centers
    from ..data.loading import load_feature_dataset
    from ..model.configuration_s5vh import S5VHConfig

    S5VHConfig(
        code_length=args.code_length, num_hash_centers=args.clusters
    )  # the config's rules for L and K, checked once
    dataset = load_feature_dataset(args.dataset, split=args.split)
    print(f"clustering {len(dataset)} videos into {args.clusters} clusters …")
    clusters, centers = clusters_and_centers(
        dataset, args.clusters, args.code_length, pca_dim=args.pca_dim, seed=args.seed
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"hash_centers_{args.code_length}.safetensors"
    save_hash_centers(path, centers.centers, clusters.pseudo_labels, seed=args.seed, source=str(args.dataset))
    print(centers.report.summary())
    if not centers.report.constraint_satisfied:
        print("warning: the minimum-distance bound was not reached", file=sys.stderr)
    print(f"wrote {path}")
    return 0


def _load_model(path: str):
    """A model folder written by ``save_pretrained``, or a Hub repo id (downloaded, or read from the cache)."""
    from ..hub.sharing import is_hub_id
    from ..model.modeling_s5vh import S5VHModel

    if not Path(path).exists() and not is_hub_id(path):
        raise CLIError(f"no model at {path} (expected a folder written by save_pretrained or a Hub repo id)")
    if Path(path).exists() and not Path(path, "config.json").is_file():
        raise CLIError(f"{path} is not a saved model (no config.json)")
    try:
        return S5VHModel.from_pretrained(path)
    except OSError as error:
        if Path(path).exists():
            raise
        raise CLIError(f"could not load the Hub model {path}: {str(error).splitlines()[0]}") from error


def _key_values(pairs: Sequence[str], option: str, allowed: set[str] | None = None) -> dict[str, object]:
    """``NAME=VALUE`` pairs of a repeatable option → a dict; values are read as JSON (numbers, true/false, lists),
    else kept as strings. ``allowed`` names the accepted names (others are a one-line error)."""
    values: dict[str, object] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip().replace("-", "_") if allowed is not None else key.strip()
        if not sep or not key:
            raise CLIError(f"{option} expects key=value, got {pair!r}")
        if allowed is not None and key not in allowed:
            raise CLIError(f"{option} {key}: TrainingArguments has no such field")
        try:
            values[key] = json.loads(text)
        except json.JSONDecodeError:
            values[key] = text
    return values


def _training_arg_overrides(pairs: Sequence[str]) -> dict[str, object]:
    """``--training-arg name=value`` pairs → ``TrainingArguments`` fields."""
    import dataclasses

    from transformers import TrainingArguments

    return _key_values(pairs, "--training-arg", {f.name for f in dataclasses.fields(TrainingArguments)})


def _train(args: argparse.Namespace) -> int:
    from ..recipes.training_run import TrainingRun, train_on_features

    for name in ("epochs", "max_steps", "batch_size"):
        value = getattr(args, name)
        if value is not None and value <= (1 if name == "batch_size" else 0):
            least = "at least 2 (the contrastive loss pairs videos)" if name == "batch_size" else "positive"
            raise CLIError(f"--{name.replace('_', '-')} must be {least}, got {value:g}")
    _limit_threads(args.threads)
    named = {"num_hash_centers": args.clusters, "warmup_epochs": args.warmup_epochs, "mask_ratio": args.mask_ratio,
             "temporal_mixer": args.backbone}  # fmt: skip
    training = {"save_strategy": "epoch", "save_total_limit": args.save_total_limit, "logging_steps": args.logging_steps,
                "dataloader_drop_last": args.drop_last, "num_train_epochs": args.epochs,
                "per_device_train_batch_size": args.batch_size, "max_steps": args.max_steps,
                "learning_rate": args.learning_rate}  # fmt: skip
    run = TrainingRun(
        dataset=args.dataset, out=args.out, split=args.split, preset=args.preset, config=args.config,
        model_size=args.model_size, release_compatible=args.release_compatible,
        config_overrides={**{k: v for k, v in named.items() if v is not None}, **_key_values(args.set or [], "--set")},
        centers=args.centers, seed=args.seed,
        training_overrides={**{k: v for k, v in training.items() if v is not None},
                            **_training_arg_overrides(args.training_arg or [])},
        resume=args.resume, inexact_resume=args.inexact_resume,
    )  # fmt: skip
    trainer = train_on_features(run)
    print(f"saved the trained model to {args.out}")
    if trainer.args.push_to_hub:
        print(f"pushed to {trainer.push_to_hub()}")
    return 0


def _limit_threads(threads: int | None) -> None:
    """At most one torch thread per core this process may run on (a shared or restricted CPU otherwise
    oversubscribes, which doubles the step time), or ``threads`` when given."""
    import os

    import torch

    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(max(1, threads if threads else min(torch.get_num_threads(), available)))


def _encode(args: argparse.Namespace) -> int:
    from ..data.loading import load_feature_dataset
    from ..recipes.encoding import encode_dataset_to_files

    model = _load_model(args.model)
    dataset = load_feature_dataset(args.dataset, split=args.split)
    result = encode_dataset_to_files(model, dataset, args.out, chunk_size=args.chunk_size, batch_size=args.batch_size)
    if result is not None:
        print(f"wrote {result}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from ..data.loading import load_feature_dataset, videos_and_labels
    from ..retrieval.evaluation import evaluate_retrieval, resolve_protocol

    model = _load_model(args.model)
    protocol = resolve_protocol(args.protocol)
    database = videos_and_labels(load_feature_dataset(args.dataset, split=args.database_split))
    queries = None
    if protocol == "query_database":
        queries = videos_and_labels(load_feature_dataset(args.dataset, split=args.query_split))
    ks = tuple(int(k) for k in args.ks.split(","))
    largest = len(database[0])
    if max(ks) > largest:
        kept = tuple(k for k in ks if k <= largest) or (largest,)
        print(f"the database has {largest} videos: mAP@K for K in {kept} (asked for {ks})")
        ks = kept
    report = evaluate_retrieval(model, database, queries, ks=ks, protocol=protocol, pr_curve=bool(args.plot))
    print(report.table())
    if args.json:
        report.save_json(args.json)
        print(f"wrote {args.json}")
    if args.plot:
        report.plot(args.plot)
        print(f"wrote {args.plot}")
    if args.record and Path(args.model).is_dir():
        model.evaluation_results = report.to_dict()
        model.save_card_state(args.model)  # the next `s5vh push` carries these results in its card
        print(f"recorded the evaluation in {args.model} (model card and s5vh_card_state.json)")
    return 0


def _search(args: argparse.Namespace) -> int:
    if args.query_video:
        return _search_by_video(args)
    if args.dataset is None:
        raise CLIError("search needs MODEL DATASET, or INDEX --query-video CLIP")
    from ..data.loading import load_feature_dataset, videos_and_labels
    from ..recipes.encoding import load_codes_for_model
    from ..retrieval.hamming_index import HammingIndex

    model = _load_model(args.model)
    queries = load_feature_dataset(args.dataset, split=args.query_split)
    if args.limit:
        queries = queries.select(range(min(args.limit, len(queries))))
    features = lambda split: videos_and_labels(split, require_labels=False)[0]  # noqa: E731
    if args.database_codes:  # written by `s5vh encode`: no re-encoding, refused if another model wrote them
        database_ids, packed = load_codes_for_model(args.database_codes, model)
        index = HammingIndex.from_codes(packed, model.config.code_length)
    else:
        database = load_feature_dataset(args.dataset, split=args.database_split)
        index = HammingIndex.from_codes(model.encode(features(database), output="packed"))
        database_ids = database["video_id"]
    distances, ids = index.search(model.encode(features(queries), output="packed"), min(args.k, index.ntotal))
    results = []
    for query_id, row_d, row_i in zip(queries["video_id"], distances, ids):
        hits = [{"video_id": database_ids[i], "hamming": int(d)} for d, i in zip(row_d, row_i)]
        results.append({"query": query_id, "results": hits})
        if not args.json:
            print(f"{query_id}: " + ", ".join(f"{h['video_id']} ({h['hamming']})" for h in hits))
    if args.json:
        write_file_atomically(args.json, json.dumps(results, indent=2))
        print(f"wrote {args.json}")
    return 0


def _emit_json(target: str, data: object) -> None:
    """JSON to stdout (``-``) or to a file (written atomically)."""
    text = json.dumps(data, indent=2)
    if target == "-":
        print(text)
    else:
        write_file_atomically(target, text)
        print(f"wrote {target}", file=sys.stderr)


def _index_model(index, override: str | None, device: str | None):
    """The model an index names (or ``override``), on ``device``."""
    source = override or index.manifest["model"].get("source")
    if not source:
        raise CLIError(f"{index.folder} records no model; pass --with-model")
    from ..hub.sharing import is_hub_id

    if not override and not Path(source).exists() and not is_hub_id(source):
        raise CLIError(f"the model {index.folder} was built with ({source}) is not there any more; pass --with-model")
    model = _load_model(source)
    return model.to(device) if device else model


def _index_encoder(index, extractor: str | None, device: str | None):
    from ..video.frame_encoders import load_frame_encoder

    extractor = extractor or (index.manifest.get("extractor") or {}).get("source")
    if not extractor:
        raise CLIError(f"{index.folder} records no frame extractor; pass --extractor")
    return load_frame_encoder(extractor, device=device)


def _search_by_video(args: argparse.Namespace) -> int:
    from ..video.index import VideoIndex

    index = VideoIndex(args.model)
    encoder = _index_encoder(index, args.extractor, args.device)
    model = _index_model(index, args.with_model, args.device or str(encoder.device))
    answers = index.query_videos(args.query_video, model, encoder, k=args.k)
    for answer in answers:
        if answer.error is not None:
            print(f"s5vh search: error: {answer.query}: {answer.error}", file=sys.stderr)
        elif args.json is None:
            print(f"{answer.query}:")
            for rank, hit in enumerate(answer.hits, 1):
                print(f"  {rank}. {hit.path or hit.video_id}  (Hamming {hit.hamming})")
    if args.json:
        _emit_json(args.json, [answer.to_dict() for answer in answers])
    return 2 if any(answer.error is not None for answer in answers) else 0


def _extract(args: argparse.Namespace) -> int:
    from ..video.extraction import extract_video_features
    from ..video.frame_encoders import load_frame_encoder

    labels = json.loads(Path(args.labels).read_text()) if args.labels else None
    videos = args.videos
    if args.path_split:  # a Hub or local dataset whose rows name the video files
        import datasets

        videos = datasets.load_dataset(args.videos, split=args.path_split)
    encoder = load_frame_encoder(args.extractor, device=args.device)
    report = extract_video_features(
        videos, args.out, encoder, split=args.split, num_frames=None if args.fps else args.frames,
        fps=args.fps, labels=labels, chunk_size=args.chunk_size, batch_frames=args.batch_frames,
        decode_workers=args.decode_workers,
    )  # fmt: skip
    if report.written:
        out = sys.stderr if args.json == "-" else sys.stdout
        print(report.summary(), file=out)
        print(f"report: {Path(args.out).absolute() / f'extraction_report_{args.split}.json'}", file=out)
        if args.json:
            _emit_json(args.json, report.to_dict())
    return 0


def _index(args: argparse.Namespace) -> int:
    if args.add or args.remove or args.list or args.info:
        return _change_or_show_index(args)
    if not args.model or not args.source or not args.out:
        raise CLIError("building an index needs MODEL SOURCE --out INDEX (or INDEX with --add/--remove/--list/--info)")
    from ..recipes.indexing import index_collection

    model = _load_model(args.model)
    if args.device:
        model = model.to(args.device)
    folder = index_collection(model, args.source, args.out, extractor=args.extractor, split=args.split,
                              num_frames=args.frames, decode_workers=args.decode_workers,
                              device=args.device)  # fmt: skip
    if args.json:
        from ..video.index import VideoIndex

        _emit_json(args.json, VideoIndex(folder).info())
    return 0


def _change_or_show_index(args: argparse.Namespace) -> int:
    from ..video.decoding import find_videos
    from ..video.index import VideoIndex

    folder = args.out or args.model
    if not folder or (args.out and args.model) or args.source:
        raise CLIError("name the index once: s5vh index INDEX --add/--remove/--list/--info")
    index = VideoIndex(folder)
    report: dict[str, object] = {}
    if args.remove:
        change = index.remove(args.remove)
        print(f"{index.folder}: {change.summary()}", file=sys.stderr)
        report["remove"] = change.__dict__
    if args.add:
        encoder = _index_encoder(index, args.extractor, args.device)
        model = _index_model(index, None, args.device or str(encoder.device))
        videos = [video for item in args.add for video in find_videos(item)]
        change = index.add_videos(videos, model, encoder, decode_workers=args.decode_workers)
        print(f"{index.folder}: {change.summary()} ({change.frames_decoded} frames decoded)", file=sys.stderr)
        for path, reason in change.skipped.items():
            print(f"  skipped {path}: {reason}", file=sys.stderr)
        report["add"] = change.__dict__
    if args.info or args.list:
        report["info"] = index.info()
        if args.list:
            report["entries"] = index.entries()
        if not args.json:
            info = report["info"]
            print(f"{info['folder']}: {info['count']} videos, {info['code_length']}-bit codes")
            print(f"  model: {info['model']}")
            extractor = info["extractor"] or {}
            print(f"  extractor: {extractor.get('name')} ({extractor.get('source')}, D = {extractor.get('feature_dim')}),"
                  f" {info['num_frames']} frames per video")  # fmt: skip
            print(f"  skipped: {len(info['skipped'])} unreadable files")
            for path, reason in info["skipped"].items():
                print(f"    {path}: {reason}")
            for entry in report.get("entries", []):
                print(f"{entry['video_id']}\t{entry['path'] or ''}")
    if args.json:
        _emit_json(args.json, report)
    return 0


def _app(args: argparse.Namespace) -> int:
    try:
        import gradio  # noqa: F401
    except ImportError as error:
        raise CLIError("the search page needs Gradio: pip install 's5vh-hf[app]'") from error
    from ..app.collection import SearchCollection
    from ..app.page import launch_search_page

    if args.features:
        if args.with_model is None and args.index_or_model is None:
            raise CLIError("a feature collection needs the model: s5vh app MODEL --features DATASET")
        collection = SearchCollection.from_features(_load_model(args.with_model or args.index_or_model),
                                                    args.features, split=args.split)  # fmt: skip
    else:
        if args.index_or_model is None:
            raise CLIError("name the index: s5vh app INDEX (or MODEL --features DATASET)")
        model = _load_model(args.with_model) if args.with_model else None
        collection = SearchCollection.from_index(args.index_or_model, model=model, device=args.device)
    print(f"serving the search page on http://{args.host}:{args.port} (Ctrl-C stops it)", flush=True)
    launch_search_page(collection, host=args.host, port=args.port, max_file_size=args.max_file_size)
    return 0


def _push(args: argparse.Namespace) -> int:
    from ..hub.sharing import push_model_folder

    url = push_model_folder(args.model, args.repo_id, token=args.token, private=args.private)
    print(f"pushed {args.model} to {url}")
    return 0


def _convert_checkpoint(args: argparse.Namespace) -> int:
    from ..hub.convert import convert_original_checkpoint

    model = convert_original_checkpoint(args.checkpoint, args.preset, hash_centers=args.centers)
    model.save_pretrained(args.out)
    print(f"converted {args.checkpoint} → {args.out}")
    return 0


# ----------------------------------------------------------------------------------------------------- parser


def positive_int(text: str) -> int:
    """An argparse type: a positive integer (``--batch-size 0`` or ``--limit -1`` is a usage error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="s5vh", description="Self-supervised video hashing with S5VH.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, handler) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog="example:\n  " + EXAMPLES[name].replace("\n", "\n  "),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.set_defaults(handler=handler)
        return sub

    demo_parser = command("demo", "run the end-to-end demo on the embedded synthetic dataset", _demo)
    demo_parser.add_argument("--out", default=DEMO_OUT, help="output folder (default s5vh-output/demo, or "
                      "s5vh-output/video-demo with --videos)")  # fmt: skip
    demo_parser.add_argument(
        "--epochs", type=positive_int, help="training epochs (default 12, about 20 s here; 40 with --videos)"
    )
    demo_parser.add_argument("--seed", type=int, default=0)
    demo_parser.add_argument("--quiet", action="store_true", help="no progress bars")
    demo_parser.add_argument("--videos", action="store_true", help="the raw-video demo: synthetic video files → extract → "
                      "train → index → search with a video")  # fmt: skip

    convert_features_parser = command(
        "convert-features", "convert HDF5 (+ .mat labels) features to parquet shards", _convert_features
    )
    convert_features_parser.add_argument("features", help="HDF5 file with a 'feats' dataset [N, T, D]")
    convert_features_parser.add_argument("--split", required=True, help="split name, e.g. train, database, query")
    convert_features_parser.add_argument("--out", required=True, help="dataset folder to write (data/ + README.md)")
    convert_features_parser.add_argument("--labels", help=".mat file with multi-hot labels")
    convert_features_parser.add_argument(
        "--label-key", help="key in the .mat file (default labels, or re_label/q_label)"
    )
    convert_features_parser.add_argument("--shard-size", type=positive_int, default=2048)
    convert_features_parser.add_argument("--dtype", choices=("float16", "float32"), default="float16")
    convert_features_parser.add_argument(
        "--read-chunk", type=positive_int, default=64, help="videos read from the HDF5 at a time"
    )
    convert_features_parser.add_argument("--feature-extractor", help="what produced the features, e.g. 'VGG16 fc7 (ImageNet)' "
                         "(recorded in the dataset card)")  # fmt: skip

    preprocess_parser = command("preprocess", "cluster the training videos and generate hash centers", _preprocess)
    preprocess_parser.add_argument("dataset", help="feature dataset folder or Hub repo id")
    preprocess_parser.add_argument("--split", default="train")
    preprocess_parser.add_argument(
        "--code-length",
        "--bits",
        dest="code_length",
        type=positive_int,
        required=True,
        help="code length L (bits; --bits is the old name)",
    )
    preprocess_parser.add_argument(
        "--clusters", type=positive_int, required=True, help="number of clusters / hash centers K"
    )
    preprocess_parser.add_argument("--pca-dim", type=positive_int, default=512)
    preprocess_parser.add_argument("--seed", type=int, default=0)
    preprocess_parser.add_argument("--out", required=True, help="folder for hash_centers_<L>.safetensors")

    train_parser = command("train", "train S5VH self-supervised on a feature dataset", _train)
    train_parser.add_argument("dataset", help="feature dataset folder or Hub repo id")
    train_parser.add_argument("--split", default="train")
    train_parser.add_argument("--preset", default="fcvid-64", help="config preset <dataset>-<bits> (default fcvid-64)")
    train_parser.add_argument("--model-size", choices=("mini", "small", "base"), help="encoder depth 1 / 6 / 12 (default: "
                       "the preset's small, or the --config's depth)")  # fmt: skip
    train_parser.add_argument("--config", help="a config folder/json instead of a preset")
    train_parser.add_argument("--release-compatible", action="store_true",
                       help="behave as the authors' released code instead of the package's defaults")  # fmt: skip
    train_parser.add_argument("--clusters", type=positive_int, help="number K of clusters / hash centers")
    train_parser.add_argument("--warmup-epochs", type=int, help="epoch from which pseudo-labels are refreshed")
    train_parser.add_argument("--mask-ratio", type=float, help="fraction of frames hidden in each view")
    train_parser.add_argument("--backbone", choices=("mamba", "transformer", "lstm", "gru"), help="temporal mixer")
    train_parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="any S5VHConfig field, e.g. --set contrastive_weight=0.5 (repeatable)")  # fmt: skip
    train_parser.add_argument("--learning-rate", type=float)
    train_parser.add_argument("--save-total-limit", type=int, default=2, help="checkpoints kept in --out (default 2)")
    train_parser.add_argument(
        "--threads", type=positive_int, help="torch threads (default: the cores this process may use)"
    )
    train_parser.add_argument(
        "--centers", help="hash_centers_<L>.safetensors from `s5vh preprocess` (default: compute)"
    )
    train_parser.add_argument("--out", required=True, help="output folder (checkpoints and final model)")
    train_parser.add_argument("--epochs", type=float)
    train_parser.add_argument("--batch-size", type=int)
    train_parser.add_argument("--max-steps", type=int)
    train_parser.add_argument("--logging-steps", type=positive_int, default=50)
    train_parser.add_argument("--seed", type=int, default=0)
    train_parser.add_argument(
        "--resume",
        action="store_true",
        help="continue from the last complete checkpoint in --out (same data, centers and options)",
    )
    train_parser.add_argument("--inexact-resume", action="store_true",
                       help="--resume, also from a checkpoint without optimizer, scheduler or RNG state (not bit "
                       "for bit)")  # fmt: skip
    train_parser.add_argument("--drop-last", action=argparse.BooleanOptionalAction, default=None,
                       help="drop the last incomplete batch of each epoch (default: on)")  # fmt: skip
    train_parser.add_argument("--training-arg", action="append", metavar="NAME=VALUE",
                       help="any TrainingArguments field, e.g. --training-arg push_to_hub=true --training-arg "
                       "hub_model_id=me/s5vh --training-arg report_to=tensorboard (repeatable)")  # fmt: skip

    encode_parser = command("encode", "encode a dataset split into binary codes (resumable, multi-process)", _encode)
    encode_parser.add_argument("model", help="model folder or Hub repo id")
    encode_parser.add_argument("dataset", help="feature dataset folder or Hub repo id")
    encode_parser.add_argument("--split", default="database")
    encode_parser.add_argument("--out", required=True, help="output folder: codes.parquet (video_id, code) when done")
    encode_parser.add_argument("--chunk-size", type=positive_int, default=8192, help="videos per resumable chunk")
    encode_parser.add_argument("--batch-size", type=positive_int, default=256)

    evaluate_parser = command("evaluate", "mAP@K of a model on a dataset with the paper's protocol", _evaluate)
    evaluate_parser.add_argument("model", help="model folder or Hub repo id")
    evaluate_parser.add_argument("dataset", help="feature dataset folder or Hub repo id")
    evaluate_parser.add_argument(
        "--protocol", default="query_database", help="query_database, all_vs_all or a dataset name"
    )
    evaluate_parser.add_argument("--database-split", default="database")
    evaluate_parser.add_argument("--query-split", default="query")
    evaluate_parser.add_argument("--ks", default="5,20,40,60,80,100", help="capped by the database size")
    evaluate_parser.add_argument("--json", help="write the report as JSON")
    evaluate_parser.add_argument("--plot", help="write mAP@K and PR curves as PNG")
    evaluate_parser.add_argument("--record", action=argparse.BooleanOptionalAction, default=True,
                    help="record the results in a local model folder's card (default: on)")  # fmt: skip

    search_parser = command("search", "top-k database videos for query videos", _search)
    search_parser.add_argument("model", metavar="MODEL_OR_INDEX", help="model folder or Hub repo id (or, with --query-video, "
                    "an index folder from `s5vh index`)")  # fmt: skip
    search_parser.add_argument("dataset", nargs="?", help="feature dataset folder or Hub repo id")
    search_parser.add_argument("--query-video", action="append", help="a video file to search with (repeatable)")
    search_parser.add_argument("--with-model", help="the model, when the index's manifest does not point to it")
    search_parser.add_argument("--extractor", help="the frame extractor (default: the one the index records)")
    search_parser.add_argument("--database-split", default="database")
    search_parser.add_argument("--query-split", default="query")
    search_parser.add_argument("--k", type=positive_int, default=10)
    search_parser.add_argument("--limit", type=positive_int, help="only the first N queries")
    search_parser.add_argument(
        "--json", metavar="FILE", help="write the results as JSON instead of printing ('-': to stdout)"
    )
    search_parser.add_argument("--device", help="device of the frame encoder and the model, e.g. cuda (default: "
                    "cuda when present)")  # fmt: skip
    search_parser.add_argument("--database-codes", help="codes.parquet written by `s5vh encode` (or its --out folder) for the "
                    "database: no re-encoding")  # fmt: skip

    extract_parser = command("extract", "extract frame features from video files into a feature dataset", _extract)
    extract_parser.add_argument("videos", help="a folder of videos (recursive), a .txt list of paths, one video, or (with "
                    "--path-split) a Hub/local dataset with a path column")  # fmt: skip
    extract_parser.add_argument("--path-split", help="read VIDEOS as a dataset and take the video paths of this split")
    extract_parser.add_argument("--extractor", default="vgg16", help="vgg16 (4096-d, FCVID/UCF101/HMDB51), resnet50 (2048-d, "
                    "ActivityNet), dinov2, clip, or any Hub id / local folder")  # fmt: skip
    extract_parser.add_argument("--out", required=True, help="feature dataset folder")
    extract_parser.add_argument("--split", default="train")
    extract_parser.add_argument(
        "--frames", type=positive_int, default=25, help="frames sampled per video (25; 30 for ActivityNet)"
    )
    extract_parser.add_argument("--fps", type=float, help="sample this many frames per second instead of --frames")
    extract_parser.add_argument("--labels", help="JSON file: video path (relative to the folder) → class id(s)")
    extract_parser.add_argument("--chunk-size", type=positive_int, default=64, help="videos per resumable chunk")
    extract_parser.add_argument("--batch-frames", type=positive_int, default=128, help="frames per encoder call")
    extract_parser.add_argument(
        "--decode-workers", type=positive_int, default=2, help="decoding threads (they overlap the encoder)"
    )
    extract_parser.add_argument("--device", help="device of the frame encoder (default: cuda when present)")
    extract_parser.add_argument("--json", metavar="FILE", help="also write the report as JSON ('-': to stdout)")

    index_parser = command("index", "build a Hamming index of a video collection (extracting features when given videos), "
                 "add or remove videos, or show what it holds", _index)  # fmt: skip
    index_parser.add_argument("model", nargs="?", metavar="MODEL_OR_INDEX", help="model folder or Hub repo id (to "
                    "build); the index folder (with --add, --remove, --list, --info)")  # fmt: skip
    index_parser.add_argument("source", nargs="?", help="a folder of videos, or a feature dataset folder")
    index_parser.add_argument("--out", help="index folder")
    index_parser.add_argument("--add", nargs="+", metavar="VIDEO", help="add these video files (or folders) to the "
                    "index: only they are decoded and encoded")  # fmt: skip
    index_parser.add_argument("--remove", nargs="+", metavar="ID_OR_PATH", help="remove these videos from the index")
    index_parser.add_argument("--list", action="store_true", help="list the videos the index holds")
    index_parser.add_argument("--info", action="store_true", help="show the model, extractor, count and skipped files")
    index_parser.add_argument("--json", metavar="FILE", help="write what the command reports as JSON ('-': to stdout)")
    index_parser.add_argument("--device", help="device of the frame encoder and the model (default: cuda when present)")
    index_parser.add_argument("--extractor", help="frame extractor for video files (see `s5vh extract`)")
    index_parser.add_argument("--split", default="database")
    index_parser.add_argument("--frames", type=positive_int, default=25)
    index_parser.add_argument("--decode-workers", type=positive_int, default=2)

    app_parser = command("app", "serve a search page (Gradio) over a video index or a feature collection", _app)
    app_parser.add_argument("index_or_model", nargs="?", metavar="INDEX_OR_MODEL", help="a video index folder (`s5vh "
                    "index`), or with --features the model (folder or Hub repo id)")  # fmt: skip
    app_parser.add_argument(
        "--features", help="a feature dataset (folder or Hub repo id) to search instead of an index"
    )
    app_parser.add_argument("--split", default="database", help="the split of --features (default database)")
    app_parser.add_argument("--with-model", help="the model, when the index's manifest does not point to it")
    app_parser.add_argument("--host", default="127.0.0.1", help="address to serve on (0.0.0.0: every interface)")
    app_parser.add_argument("--port", type=positive_int, default=7860)
    app_parser.add_argument("--max-file-size", default="500mb", help="largest upload (default 500mb)")
    app_parser.add_argument("--device", help="device of the frame encoder and the model (default: cuda when present)")

    push_parser = command("push", "push a saved model (with its model card) to the Hub", _push)
    push_parser.add_argument("model", help="model folder")
    push_parser.add_argument("repo_id", help="target repo, e.g. me/s5vh-fcvid-64")
    push_parser.add_argument("--private", action="store_true")
    push_parser.add_argument("--token")

    convert_checkpoint_parser = command(
        "convert-checkpoint", "convert an authors' .pth checkpoint to a Hugging Face model", _convert_checkpoint
    )
    convert_checkpoint_parser.add_argument("checkpoint", help="<dataset>_<bits>.pth from the authors' release")
    convert_checkpoint_parser.add_argument("--preset", required=True, help="preset of the checkpoint, e.g. fcvid-64")
    convert_checkpoint_parser.add_argument("--centers", help="hash_center_<L>.h5 of the release (optional)")
    convert_checkpoint_parser.add_argument("--out", required=True, help="output folder")
    return parser


class _StdoutHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` is when a record arrives (not the stream of when it was made)."""

    to_stderr = False

    @property
    def stream(self):  # noqa: D102
        return sys.stderr if self.to_stderr else sys.stdout

    @stream.setter
    def stream(self, value) -> None:
        pass


def _show_recipe_progress(stream_name: str = "stdout") -> None:
    """The library's recipes report progress (``s5vh_hf.recipes`` loggers, INFO): the command line prints it."""
    recipes = logging.getLogger("s5vh_hf.recipes")
    handlers = [handler for handler in recipes.handlers if isinstance(handler, _StdoutHandler)]
    if not handlers:
        handlers = [_StdoutHandler()]
        handlers[0].setFormatter(logging.Formatter("%(message)s"))
        recipes.addHandler(handlers[0])
        recipes.setLevel(logging.INFO)
    handlers[0].to_stderr = stream_name == "stderr"  # stdout carries JSON (--json -)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _show_recipe_progress("stderr" if getattr(args, "json", None) == "-" else "stdout")
    if args.command in ("train", "encode"):
        from ..training.launch import warn_on_launch_mismatch

        warn_on_launch_mismatch()
    start = time.perf_counter()
    succeeded = False
    try:
        status = args.handler(args)
        succeeded = True
    except (
        CLIError,
        ValueError,
        TypeError,
        FileNotFoundError,
        KeyError,
        OSError,
        FloatingPointError,
        ImportError,
    ) as error:
        if args.debug:
            raise
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(f"s5vh {args.command}: error: {message}", file=sys.stderr)
        return 2
    finally:
        _shutdown_distributed(synchronize=succeeded)
    if sys.stdout.isatty():
        print(f"done in {time.perf_counter() - start:.1f} s")
    return status


def _shutdown_distributed(synchronize: bool) -> None:
    """Under ``accelerate launch``, tear the process group down before exit (avoids aborts at interpreter exit).
    After a success the processes first wait for each other; after an error they do not (a peer may never come)."""
    import torch.distributed

    if torch.distributed.is_available() and torch.distributed.is_initialized():
        if synchronize:
            torch.distributed.barrier()  # nobody tears the group down while a peer still uses it
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
