"""Fine-tune a saved S5VH checkpoint on new frame features.

    python examples/fine_tune.py --model s5vh-output/demo/model [--data new-features/] [--epochs 3]

Re-clusters the new training split so that pseudo-labels follow the new data; the hash centers of the checkpoint
(its center head) are kept, so codes stay comparable with an index built by the original model.
"""

import argparse

from transformers import set_seed

from s5vh_hf import S5VHModel, S5VHTrainer, compute_semantic_clusters, load_feature_dataset, s5vh_training_arguments
from s5vh_hf.recipes import evaluate_with_baselines, write_embedded_dataset

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--model", required=True, help="saved model folder or Hub repo id")
parser.add_argument("--data", help="feature dataset (default: embedded synthetic data, another seed)")
parser.add_argument("--out", default="s5vh-output/fine-tune-example")
parser.add_argument("--epochs", type=float, default=3)
parser.add_argument("--learning-rate", type=float, default=2e-4)
args = parser.parse_args()

set_seed(0)
data = args.data or str(write_embedded_dataset(f"{args.out}/data", num_train=600, seed=7))
splits = load_feature_dataset(data)
model = S5VHModel.from_pretrained(args.model)
clusters = compute_semantic_clusters(splits["train"], n_clusters=model.config.num_hash_centers, pca_dim=64)
training_args = s5vh_training_arguments(
    model.config,
    args.out,
    num_train_epochs=args.epochs,
    learning_rate=args.learning_rate,
    per_device_train_batch_size=64,
    save_strategy="no",
    logging_steps=10,
    dataloader_drop_last=True,
    use_cpu=True,
    disable_tqdm=True,
)
S5VHTrainer(model, training_args, splits["train"], clusters.pseudo_labels).train()
if {"database", "query"} <= set(splits):
    for row in evaluate_with_baselines(model, splits).rows():
        print("mAP@5/@20/@100", *row)
model.save_pretrained(f"{args.out}/final")
print(f"saved {args.out}/final")
