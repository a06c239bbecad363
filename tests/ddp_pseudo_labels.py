"""Run under `accelerate launch` by the tests: after training with label refresh in every step, every process
must hold the same pseudo-labels (each process's updates reach the others)."""

import sys

import numpy as np
import torch
from accelerate import PartialState
from transformers import set_seed

from s5vh_hf import S5VHModel, S5VHTrainer, load_feature_dataset, s5vh_training_arguments
from s5vh_hf.recipes.experiments import demo_config, preprocess

data, out = sys.argv[1], sys.argv[2]
state = PartialState(cpu=not torch.cuda.is_available())  # GPU-less: join the gloo group
set_seed(0)
train = load_feature_dataset(data, split="train").select(range(256))
config = demo_config(warmup_epochs=0, pseudo_label_smoothing=0.5)
clusters, centers = preprocess(train, config.num_hash_centers, config.code_length, pca_dim=32)
model = S5VHModel(config)
model.set_hash_centers(centers.centers)
args = s5vh_training_arguments(
    config, out, max_steps=4, per_device_train_batch_size=32, save_strategy="no", use_cpu=True, disable_tqdm=True,
    report_to="none", seed=0,
)  # fmt: skip
trainer = S5VHTrainer(model, args, train, clusters.pseudo_labels)
initial = trainer.pseudo_labels.soft_labels.clone()
trainer.train()
labels = trainer.pseudo_labels.soft_labels.numpy()
changed = int((~np.isclose(labels, initial.numpy()).all(1)).sum())
np.save(f"{out}/labels-rank{state.process_index}.npy", labels)
print(f"rank {state.process_index}: {changed} videos refreshed")
state.wait_for_everyone()  # nobody tears the group down while a peer still uses it
state.destroy_process_group()
