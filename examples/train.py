"""Train S5VH self-supervised on frame features, with plain `python` or `accelerate launch`.

    python examples/train.py                                   # embedded synthetic data, demo-sized model
    accelerate launch --multi_gpu --num_processes 2 examples/train.py --num_train_epochs 2   # 2 processes, CPU too
    python examples/train.py --data fcvid/ --preset fcvid-64 --output_dir runs/fcvid-64 --bf16 --report_to tensorboard

Every `TrainingArguments` option is accepted (`--push_to_hub --hub_model_id me/s5vh`, `--report_to`,
`--gradient_accumulation_steps`, …); options not given keep the preset's recipe (`s5vh_training_arguments`). The
device is chosen as the Trainer chooses it (a GPU when there is one; `--use_cpu` forces the CPU).
The data is a feature-shard folder or Hub repo id with a train split (and database/query splits to evaluate).
"""

import sys
from dataclasses import dataclass, field
from pathlib import Path

from accelerate import PartialState
from transformers import HfArgumentParser, TrainingArguments, set_seed

from s5vh_hf import S5VHConfig, S5VHModel, S5VHTrainer, load_feature_dataset, s5vh_training_arguments
from s5vh_hf.recipes.experiments import demo_config, evaluate_with_baselines, preprocess, write_embedded_dataset
from s5vh_hf.training.arguments import explicit_training_options
from s5vh_hf.training.launch import has_accelerator, warn_on_launch_mismatch


@dataclass
class ExampleArguments:
    data: str | None = field(default=None, metadata={"help": "feature dataset folder or repo id (default: embedded)"})
    preset: str | None = field(default=None, metadata={"help": "config preset, e.g. fcvid-64 (default: demo)"})


# The Trainer's device choice (a GPU when there is one). Made before TrainingArguments exist (they fix the
# process state when built): without GPUs, cpu=True makes the processes of `accelerate launch --multi_gpu` join
# one gloo group instead of each running alone.
state = PartialState(cpu="--use_cpu" in sys.argv or not has_accelerator())
parser = HfArgumentParser((ExampleArguments, TrainingArguments), description=__doc__.splitlines()[0])
example, parsed = parser.parse_args_into_dataclasses()
explicit = explicit_training_options(sys.argv[1:], parsed)
output_dir = explicit.pop("output_dir", None) or "s5vh-output/train-example"
warn_on_launch_mismatch()

set_seed(parsed.seed)
data = example.data
if data is None:
    data = str(Path(output_dir) / "data")
    with state.main_process_first():  # one process writes the embedded data, the others wait and read it
        if state.is_main_process and not Path(data, "README.md").exists():
            write_embedded_dataset(data, seed=parsed.seed)
splits = load_feature_dataset(data)
config = S5VHConfig.from_preset(example.preset) if example.preset else demo_config()

# One clustering gives the pseudo-labels and the semantic centers; the hash centers come from the latter.
clusters, centers = preprocess(
    splits["train"], config.num_hash_centers, config.code_length, pca_dim=64, seed=parsed.seed
)
model = S5VHModel(config)
model.set_hash_centers(centers.centers)

recipe = dict(num_train_epochs=10, save_strategy="epoch", save_total_limit=2, logging_steps=10, disable_tqdm=True)
training_args = s5vh_training_arguments(
    config, output_dir, num_train_examples=len(splits["train"]), **{**recipe, **explicit}
)
trainer = S5VHTrainer(model, training_args, splits["train"], clusters.pseudo_labels)
trainer.train(resume_from_checkpoint=any(Path(output_dir).glob("checkpoint-*")) or None)

if state.is_main_process:
    if {"database", "query"} <= set(splits):
        scores = evaluate_with_baselines(model, splits)
        for row in scores.rows():
            print("mAP@5/@20/@100", *row)
    model.save_pretrained(Path(output_dir) / "final")
    print(f"saved {Path(output_dir) / 'final'} (processes: {state.num_processes}, device: {training_args.device})")
if training_args.push_to_hub:
    trainer.push_to_hub()  # uploads the S5VH model card, rendered for --hub_model_id
state.wait_for_everyone()  # nobody tears the group down while a peer still uses it
state.destroy_process_group()
