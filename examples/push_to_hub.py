"""Push a trained S5VH model (weights, config, self-contained code, model card) to the Hugging Face Hub.

    python examples/push_to_hub.py --model s5vh-output/demo/model --repo-id me/s5vh-demo [--private]

Needs a token (`huggingface-cli login` or --token). Anyone can then load it with
`AutoModel.from_pretrained("me/s5vh-demo", trust_remote_code=True)`, even without s5vh-hf installed.
"""

import argparse

from s5vh_hf import S5VHModel

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--model", required=True)
parser.add_argument("--repo-id", required=True)
parser.add_argument("--private", action="store_true")
parser.add_argument("--token")
args = parser.parse_args()

model = S5VHModel.from_pretrained(args.model)
url = model.push_to_hub(args.repo_id, private=args.private, token=args.token)  # card written by save_pretrained
print(f"pushed to {url}")
