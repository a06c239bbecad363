"""Model folders: empty, truncated and mismatched weights and configs; pickles in .pth files."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .harness import case, cli, expect_clear, saved_model, write_split


@case("load model")
def empty_weights_file(tmp: Path):
    model = saved_model(tmp / "m")
    (model / "model.safetensors").write_bytes(b"")
    write_split(tmp / "ds", "database", 4)
    return expect_clear(*cli("encode", str(model), str(tmp / "ds"), "--out", str(tmp / "c")), "safetensors")


@case("load model")
def truncated_weights_file(tmp: Path):
    model = saved_model(tmp / "m")
    data = (model / "model.safetensors").read_bytes()
    (model / "model.safetensors").write_bytes(data[: len(data) // 2])
    write_split(tmp / "ds", "database", 4)
    return expect_clear(*cli("encode", str(model), str(tmp / "ds"), "--out", str(tmp / "c")), "safetensors")


@case("load model")
def config_that_does_not_match_the_weights(tmp: Path):
    model = saved_model(tmp / "m")
    config = json.loads((model / "config.json").read_text())
    config["hidden_size"] = 32
    (model / "config.json").write_text(json.dumps(config))
    write_split(tmp / "ds", "database", 4)
    return expect_clear(*cli("encode", str(model), str(tmp / "ds"), "--out", str(tmp / "c")), "config.json")


@case("load model")
def config_with_more_blocks_than_the_weights(tmp: Path):
    model = saved_model(tmp / "m")
    config = json.loads((model / "config.json").read_text())
    config["encoder_depth"] = 2  # the second block would start from random weights
    (model / "config.json").write_text(json.dumps(config))
    write_split(tmp / "ds", "database", 4)
    return expect_clear(*cli("encode", str(model), str(tmp / "ds"), "--out", str(tmp / "c")), "lacks tensors")


@case("load model")
def config_and_weights_that_disagree_on_the_ends_encoder(tmp: Path):
    model = saved_model(tmp / "m", ends_encoder_width=16)
    config = json.loads((model / "config.json").read_text())
    config["ends_encoder_width"] = 0  # weights with the ends' own encoder, read by a config without it
    (model / "config.json").write_text(json.dumps(config))
    write_split(tmp / "ds", "database", 4)
    fewer = expect_clear(*cli("encode", str(model), str(tmp / "ds"), "--out", str(tmp / "c")), "ends_encoder")
    if fewer[0] != "clear":
        return fewer
    config["ends_encoder_width"] = 48  # an ends encoder of another width than the weights'
    (model / "config.json").write_text(json.dumps(config))
    other = expect_clear(*cli("encode", str(model), str(tmp / "ds"), "--out", str(tmp / "c2")), "ends_encoder")
    if other[0] != "clear":
        return other
    # An ends encoder said to read the main encoder's output, with weights of one that reads the frame features.
    config["ends_encoder_width"], config["ends_encoder_input"] = 16, "encoder"
    (model / "config.json").write_text(json.dumps(config))
    return expect_clear(*cli("encode", str(model), str(tmp / "ds"), "--out", str(tmp / "c3")), "ends_encoder")


@case("load model")
def truncated_config_json(tmp: Path):
    model = saved_model(tmp / "m")
    text = (model / "config.json").read_text()
    (model / "config.json").write_text(text[: len(text) // 2])
    write_split(tmp / "ds", "database", 4)
    return expect_clear(*cli("encode", str(model), str(tmp / "ds"), "--out", str(tmp / "c")))


@case("convert checkpoint")
def pickle_with_code_in_a_pth(tmp: Path):
    import pickle

    marker = tmp / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (tmp / "evil.pth").write_bytes(pickle.dumps({"state_dict": Payload()}))
    outcome = expect_clear(*cli("convert-checkpoint", str(tmp / "evil.pth"), "--preset", "ucf101-16",
                                "--out", str(tmp / "out")))  # fmt: skip
    return ("lost", "the pickle ran code") if marker.exists() else outcome
