"""Train S5VH self-supervised on frame features, with plain `python` or `accelerate launch`.

    python examples/train.py                                   # embedded synthetic data, demo-sized model
    accelerate launch --cpu --num_processes 2 examples/train.py --epochs 2
    python examples/train.py --data fcvid/ --preset fcvid-64 --out runs/fcvid-64

The data is a feature-shard folder or Hub repo id with a train split (and database/query splits to evaluate).
"""

import argparse
from pathlib import Path

import torch
from accelerate import PartialState
from transformers import set_seed

from s5vh_hf import S5VHConfig, S5VHModel, S5VHTrainer, load_feature_dataset, s5vh_training_arguments
from s5vh_hf.recipes import demo_config, evaluate_with_baselines, preprocess, write_embedded_dataset

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--data", help="feature dataset folder or repo id (default: the embedded synthetic data)")
parser.add_argument("--preset", help="config preset, e.g. fcvid-64 (default: the demo config)")
parser.add_argument("--out", default="s5vh-output/train-example")
parser.add_argument("--epochs", type=float, default=10)
parser.add_argument("--batch-size", type=int, default=64)
parser.add_argument("--max-steps", type=int, default=-1)
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()

state = PartialState(cpu=not torch.cuda.is_available())  # GPU-less: join the gloo group
set_seed(args.seed)
data = args.data
if data is None:
    data = str(Path(args.out) / "data")
    with state.main_process_first():  # one process writes the embedded data, the others wait and read it
        if state.is_main_process and not Path(data, "README.md").exists():
            write_embedded_dataset(data, seed=args.seed)
splits = load_feature_dataset(data)
config = S5VHConfig.from_preset(args.preset) if args.preset else demo_config()

# One clustering gives the pseudo-labels and the semantic centers; the hash centers come from the latter.
clusters, centers = preprocess(splits["train"], config.num_hash_centers, config.code_length, pca_dim=64, seed=args.seed)
model = S5VHModel(config)
model.set_hash_centers(centers.centers)

training_args = s5vh_training_arguments(
    config,
    args.out,
    num_train_epochs=args.epochs,
    max_steps=args.max_steps,
    per_device_train_batch_size=args.batch_size,
    save_strategy="epoch",
    save_total_limit=2,
    logging_steps=10,
    seed=args.seed,
    dataloader_drop_last=True,
    use_cpu=True,
    disable_tqdm=True,
)
trainer = S5VHTrainer(model, training_args, splits["train"], clusters.pseudo_labels)
trainer.train(resume_from_checkpoint=any(Path(args.out).glob("checkpoint-*")) or None)

if state.is_main_process:
    if {"database", "query"} <= set(splits):
        scores = evaluate_with_baselines(model, splits)
        for row in scores.rows():
            print("mAP@5/@20/@100", *row)
    model.save_pretrained(Path(args.out) / "final")
    print(f"saved {Path(args.out) / 'final'} (processes: {state.num_processes})")
state.wait_for_everyone()  # nobody tears the group down while a peer still uses it
state.destroy_process_group()
