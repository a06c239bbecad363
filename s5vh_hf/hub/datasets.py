"""Publishing a feature dataset on the Hub: shards and a dataset card rendered for the repo, as one commit."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..data.dataset_card import render_dataset_card
from ..data.shards import verify_split_shards
from ..model.commits import is_inside, reading


def push_feature_dataset(
    out_dir: str | os.PathLike,
    repo_id: str,
    token: str | None = None,
    private: bool = False,
    revision: str | None = None,
    commit_message: str = "Upload frame-feature dataset",
    endpoint: str | None = None,
) -> list[str]:
    """Upload a converted feature folder (data/*.parquet and a dataset card rendered for ``repo_id``) to a Hub
    dataset repo, as one commit. Shards on the Hub that the folder no longer has (e.g. after re-converting a
    split into fewer shards) are deleted in the same commit, so the remote split never mixes two conversions.

    Returns the repository paths that were uploaded. A shard that is a symbolic link leading outside the folder is
    refused.
    """
    out_dir = Path(out_dir)
    with reading(out_dir):  # a split write in progress is waited for
        return _push(out_dir, repo_id, token, private, revision, commit_message, endpoint)


def _push(out_dir: Path, repo_id: str, token: str | None, private: bool, revision: str | None, commit_message: str,
          endpoint: str | None) -> list[str]:  # fmt: skip
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

    shards = sorted(p.relative_to(out_dir).as_posix() for p in (out_dir / "data").glob("*.parquet"))
    if not shards or not (out_dir / "README.md").is_file():
        raise ValueError(f"{out_dir} is not a converted feature dataset (needs README.md and data/*.parquet)")
    outside = [shard for shard in shards if not is_inside(out_dir, out_dir / shard)]
    if outside:
        raise ValueError(f"{out_dir / outside[0]} is a symbolic link leading outside {out_dir}; refusing to upload "
                         "what it points to")  # fmt: skip
    verify_split_shards(out_dir)
    api = HfApi(endpoint=endpoint, token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    if revision is not None:
        api.create_branch(repo_id, branch=revision, repo_type="dataset", exist_ok=True)
    remote = api.list_repo_files(repo_id, repo_type="dataset", revision=revision)
    card = str(render_dataset_card(out_dir, repo_id=repo_id)).encode()
    operations: list[Any] = [CommitOperationAdd("README.md", card)]
    operations += [CommitOperationAdd(shard, str(out_dir / shard)) for shard in shards]
    operations += [
        CommitOperationDelete(path)
        for path in remote
        if path.startswith("data/") and path.endswith(".parquet") and path not in shards
    ]
    api.create_commit(repo_id, operations, commit_message=commit_message, repo_type="dataset", revision=revision)
    return ["README.md", *shards]
