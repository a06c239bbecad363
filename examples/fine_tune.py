"""Fine-tune a saved S5VH checkpoint on new frame features.

    python examples/fine_tune.py --model s5vh-output/demo/model [--data new-features/] [--num_train_epochs 3]

Re-clusters the new training split so that pseudo-labels follow the new data; the hash centers of the checkpoint
(its center head) are kept, so codes stay comparable with an index built by the original model. Every
`TrainingArguments` option is accepted (`--push_to_hub`, `--report_to`, `--bf16`, …); the device is the Trainer's
choice. A model loaded from a Hub repo is named as the base model in the fine-tuned model's card.
"""

import sys
from dataclasses import dataclass, field

from transformers import HfArgumentParser, TrainingArguments, set_seed

from s5vh_hf import S5VHModel, S5VHTrainer, compute_semantic_clusters, load_feature_dataset, s5vh_training_arguments
from s5vh_hf.recipes.experiments import evaluate_with_baselines, write_embedded_dataset
from s5vh_hf.training.arguments import explicit_training_options


@dataclass
class FineTuneArguments:
    model: str = field(metadata={"help": "saved model folder or Hub repo id"})
    data: str | None = field(default=None, metadata={"help": "feature dataset (default: embedded data, seed 7)"})


parser = HfArgumentParser((FineTuneArguments, TrainingArguments), description=__doc__.splitlines()[0])
example, parsed = parser.parse_args_into_dataclasses()
explicit = explicit_training_options(sys.argv[1:], parsed)
output_dir = explicit.pop("output_dir", None) or "s5vh-output/fine-tune-example"

set_seed(parsed.seed)
data = example.data or str(write_embedded_dataset(f"{output_dir}/data", num_train=600, seed=7))
splits = load_feature_dataset(data)
model = S5VHModel.from_pretrained(example.model)
clusters = compute_semantic_clusters(splits["train"], n_clusters=model.config.num_hash_centers, pca_dim=64)
recipe = dict(num_train_epochs=3, learning_rate=2e-4, save_strategy="no", logging_steps=10, disable_tqdm=True)
training_args = s5vh_training_arguments(
    model.config, output_dir, num_train_examples=len(splits["train"]), **{**recipe, **explicit}
)
trainer = S5VHTrainer(model, training_args, splits["train"], clusters.pseudo_labels)
trainer.train()
if {"database", "query"} <= set(splits):
    for row in evaluate_with_baselines(model, splits).rows():
        print("mAP@5/@20/@100", *row)
model.save_pretrained(f"{output_dir}/final")
print(f"saved {output_dir}/final (device: {training_args.device})")
if training_args.push_to_hub:
    trainer.push_to_hub()
