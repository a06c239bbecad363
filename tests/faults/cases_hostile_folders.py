"""Folders from elsewhere: crafted journals, cards and links aimed outside, shards that disagree."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .harness import case, cli, expect_clear, expect_raise, saved_model, split_contents, tiny_model, videos, write_split


def _hostile_journals(folder: Path, victim: Path) -> list[dict]:
    """Journals a hostile folder could carry, each aimed at ``victim`` (a folder of the user's outside it):
    well-formed in every other way (this package's format, this machine's name, a dead writer)."""
    import socket

    writer = {"pid": 999_999_999, "host": socket.gethostname(), "started": None}
    staging = ".staging-model-999999999-0123456789ab"
    (folder / staging).mkdir(exist_ok=True)
    (folder / staging / "payload").write_text("planted")
    base = {"format": "s5vh-commit-v2", "tag": "model", "staging": staging, "moves": [], "remove": [],
            "writer": writer}  # fmt: skip
    return [
        {**base, "staging": str(victim)},  # an absolute staging folder, removed with rmtree
        {**base, "remove": ["../victim/keep.txt"]},
        {**base, "remove": [str(victim / "keep.txt")]},
        {**base, "moves": [[f"{staging}/payload", "../victim/.bashrc"]]},
        {**base, "moves": [[f"{staging}/payload", "escape/.bashrc"]]},  # escape -> victim, a link leading out
        {**base, "moves": [["../victim/keep.txt", "stolen.txt"]]},
        {key: value for key, value in base.items() if key != "moves"},  # a missing key
        {**base, "writer": {**writer, "host": "elsewhere"}, "remove": ["config.json"]},  # another machine's
        ["not", "a", "journal"],
    ]


def _victim(tmp: Path) -> Path:
    victim = tmp / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("the user's file")
    (victim / ".bashrc").write_text("the user's shell")
    return victim


def _victim_intact(victim: Path) -> bool:
    return (victim.is_dir() and (victim / "keep.txt").read_text() == "the user's file"
            and (victim / ".bashrc").read_text() == "the user's shell")  # fmt: skip


def _hostile_journal_outcome(folder: Path, victim: Path, load: Callable[[], object]) -> tuple[str, str]:
    (folder / ".s5vh-lock").write_text("")  # a lock file nobody holds: the writer looks dead
    (folder / "escape").symlink_to(victim)
    for journal in _hostile_journals(folder, victim):
        (folder / ".commit-model.json").write_text(json.dumps(journal))
        try:
            load()
        except Exception as error:  # noqa: BLE001
            return "crash", f"{type(error).__name__}: {str(error)[:120]} for {json.dumps(journal)[:80]}"
        if not _victim_intact(victim):
            return "lost", f"a file outside the folder was changed by {json.dumps(journal)[:100]}"
        if not (folder / ".commit-model.json").exists():
            return "lost", f"the journal {json.dumps(journal)[:100]} was applied"
    return "clear", "9 hostile journals ignored with a warning; nothing outside the folder touched; loads"


@case("hostile folder")
def crafted_journals_in_a_model_folder(tmp: Path):
    from s5vh_hf import S5VHModel

    folder, victim = saved_model(tmp / "m"), _victim(tmp)
    probe, expected = videos(3), tiny_model(0).encode(videos(3))

    def load():
        if not np.array_equal(S5VHModel.from_pretrained(folder).encode(probe), expected):
            raise AssertionError("the model changed")

    return _hostile_journal_outcome(folder, victim, load)


@case("hostile folder")
def crafted_journals_in_a_dataset_folder(tmp: Path):
    write_split(tmp / "ds", "train", 5)
    victim = _victim(tmp)
    return _hostile_journal_outcome(tmp / "ds", victim, lambda: split_contents(tmp / "ds", "train"))


@case("hostile folder")
def dataset_card_pointing_outside(tmp: Path):
    write_split(tmp / "outside", "train", 4, seed=7)
    write_split(tmp / "ds", "train", 4)
    card = (tmp / "ds" / "README.md").read_text()
    if "path: data/train-*" not in card:
        return "crash", "the card has no data_files entry to aim elsewhere"
    (tmp / "ds" / "README.md").write_text(card.replace("path: data/train-*", "path: ../outside/data/train-*"))
    return expect_clear(*cli("encode", str(saved_model(tmp / "m")), str(tmp / "ds"), "--split", "train", "--out",
                             str(tmp / "c")), "outside")  # fmt: skip


@case("hostile folder")
def symlinked_secret_in_a_folder_to_push(tmp: Path):
    from s5vh_hf.hub.sharing import push_model_folder

    folder = saved_model(tmp / "m")
    (tmp / "id_ed25519").write_text("-----BEGIN OPENSSH PRIVATE KEY-----")
    (folder / "notes.txt").symlink_to(tmp / "id_ed25519")
    return expect_raise(lambda: push_model_folder(folder, "me/model", token="t", endpoint="http://127.0.0.1:9"),
                        ValueError, "symbolic link", "notes.txt")  # fmt: skip


@case("hostile folder")
def symlinked_shard_in_a_dataset_to_push(tmp: Path):
    from s5vh_hf.hub.datasets import push_feature_dataset

    write_split(tmp / "ds", "train", 4)
    (tmp / "secret.parquet").write_text("not yours")
    (tmp / "ds" / "data" / "query-00000-of-00001.parquet").symlink_to(tmp / "secret.parquet")
    return expect_raise(lambda: push_feature_dataset(tmp / "ds", "me/feats", token="t", endpoint="http://127.0.0.1:9"),
                        ValueError, "symbolic link", "query-00000-of-00001.parquet")  # fmt: skip


@case("hostile folder")
def shards_that_disagree_on_d(tmp: Path):
    import pyarrow.parquet as pq

    write_split(tmp / "ds", "database", 6, shard_size=3)
    other = tmp / "other"
    from s5vh_hf.data.writing import write_feature_split

    write_feature_split(other, "database", [v[:, :20] for v in videos(6)], [f"x{i}" for i in range(6)],
                        shard_size=3, dtype="float32")  # fmt: skip
    name = "database-00001-of-00002.parquet"
    pq.write_table(pq.read_table(other / "data" / name), tmp / "ds" / "data" / name)
    return expect_clear(*cli("encode", str(saved_model(tmp / "m")), str(tmp / "ds"), "--out", str(tmp / "c")),
                        "disagree")  # fmt: skip
