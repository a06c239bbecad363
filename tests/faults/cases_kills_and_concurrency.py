"""kill -9 at the worst moments (split and model writes, encode, extraction), concurrent encoders, reruns, the kernel cache, video extraction."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .harness import (
    ROOT,
    case,
    cli,
    cli_process,
    expect_clear,
    expect_raise,
    python_process,
    saved_model,
    split_contents,
    tiny_model,
    videos,
    write_split,
)


def _kill_during_split_rewrite(tmp: Path, point: str) -> tuple[str, str]:
    old_data, old_ids = write_split(tmp / "ds", "train", 9, seed=0, shard_size=3)
    result = python_process(
        f"""
        import numpy as np, sys
        sys.path.insert(0, {str(ROOT)!r})
        from tests.faults.harness import write_split
        from pathlib import Path
        write_split(Path({str(tmp / "ds")!r}), "train", 8, seed=1, shard_size=4)
        """,
        env={"S5VH_FAULT_POINT": point},
    )
    if result.returncode != -signal.SIGKILL:
        return "crash", f"the writer was not killed at {point}: exit {result.returncode} {result.stderr[-200:]}"
    new_data = videos(8, 1)
    new_ids = [f"train-1-{i}" for i in range(8)]
    try:
        ids, features = split_contents(tmp / "ds", "train")
    except Exception as error:  # noqa: BLE001
        return "lost", f"the split no longer loads: {str(error)[:120]}"
    expected = (old_ids, old_data) if point.startswith("staged") else (new_ids, new_data)
    if ids == expected[0] and np.allclose(features, np.stack(expected[1]), atol=1e-6):
        if any(p.name.startswith(".commit") for p in (tmp / "ds").iterdir()):
            return "lost", "a journal was left behind after loading"
        write_split(tmp / "ds", "query", 2)  # a dead writer's staging folder is the next writer's to remove
        leftovers = [p.name for p in (tmp / "ds").iterdir() if p.name.startswith((".staging", ".commit"))]
        if leftovers:
            return "lost", f"leftovers {leftovers}"
        return "intact", ("old split" if point.startswith("staged") else "new split, completed on load") + " whole"
    return "lost", f"the split holds {len(ids)} videos, a mix of two writes"


@case("kill -9")
def kill_before_a_split_rewrite_is_decided(tmp: Path):
    return _kill_during_split_rewrite(tmp, "staged:split.train")


@case("kill -9")
def kill_after_a_split_rewrite_is_decided(tmp: Path):
    return _kill_during_split_rewrite(tmp, "journal:split.train")


def _kill_during_model_save(tmp: Path, point: str) -> tuple[str, str]:
    from s5vh_hf import S5VHModel

    saved_model(tmp / "m", seed=0)
    result = python_process(
        f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from tests.faults.harness import saved_model
        from pathlib import Path
        saved_model(Path({str(tmp / "m")!r}), seed=1)
        """,
        env={"S5VH_FAULT_POINT": point},
    )
    if result.returncode != -signal.SIGKILL:
        return "crash", f"the writer was not killed at {point}: exit {result.returncode} {result.stderr[-200:]}"
    probe = videos(5, 3)
    try:
        loaded = S5VHModel.from_pretrained(tmp / "m").encode(probe)
    except Exception as error:  # noqa: BLE001
        return "lost", f"the model no longer loads: {str(error)[:120]}"
    expected = tiny_model(0 if point.startswith("staged") else 1).encode(probe)
    if np.array_equal(loaded, expected):
        return "intact", ("old model" if point.startswith("staged") else "new model, completed on load") + " whole"
    return "lost", "the folder holds a mix of two models"


@case("kill -9")
def kill_before_save_pretrained_is_decided(tmp: Path):
    return _kill_during_model_save(tmp, "staged:model")


@case("kill -9")
def kill_after_save_pretrained_is_decided(tmp: Path):
    return _kill_during_model_save(tmp, "journal:model")


def _kill_once(argv: list[str], folder: Path, pattern: str, count: int, timeout: float = 300) -> None:
    """Start ``python -m s5vh_hf.cli *argv`` and SIGKILL it as soon as ``count`` files match ``pattern`` under
    ``folder`` (mid-run, with some output already written)."""
    process = subprocess.Popen([sys.executable, "-m", "s5vh_hf.cli", *argv], cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + timeout
    while time.time() < deadline and process.poll() is None and len(list(folder.glob(pattern))) < count:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()


def _codes_outcome(folder: Path, expected: tuple[list[str], np.ndarray], success: str) -> tuple[str, str]:
    from s5vh_hf.recipes.encoding import load_codes

    ids, codes = load_codes(folder)
    same = ids == expected[0] and np.array_equal(codes, expected[1])
    return ("intact", success) if same else ("lost", "codes differ from a clean run")


def _clean_codes(tmp: Path, model: Path, data: Path) -> tuple[list[str], np.ndarray]:
    from s5vh_hf.recipes.encoding import load_codes

    assert cli("encode", str(model), str(data), "--out", str(tmp / "clean"), "--chunk-size", "7")[0] == 0
    return load_codes(tmp / "clean")


@case("kill -9")
def kill_during_encode_then_rerun(tmp: Path):
    model, data = saved_model(tmp / "m"), tmp / "ds"
    write_split(data, "database", 200)
    expected = _clean_codes(tmp, model, data)
    argv = ["encode", str(model), str(data), "--out", str(tmp / "codes"), "--chunk-size", "7"]
    _kill_once([*argv, "--batch-size", "2"], tmp / "codes" / "chunks", "codes-*.parquet", 3)
    status, err = cli(*argv)
    if status != 0:
        return "crash", err.strip()[-160:]
    return _codes_outcome(tmp / "codes", expected, "the rerun finished the codes, equal to a clean run")


@case("concurrency")
def two_encoders_into_one_folder(tmp: Path):

    model, data = saved_model(tmp / "m"), tmp / "ds"
    write_split(data, "database", 120)
    expected = _clean_codes(tmp, model, data)
    command = [sys.executable, "-m", "s5vh_hf.cli", "encode", str(model), str(data), "--out", str(tmp / "codes"),
               "--chunk-size", "5"]  # fmt: skip
    processes = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in "ab"]
    errors = [p.communicate(timeout=600)[1].decode() for p in processes]
    if any(p.returncode for p in processes):
        return "crash", [e.strip().splitlines()[-1] for e in errors if e.strip()][0][:160]
    return _codes_outcome(tmp / "codes", expected, "both finished; codes equal to a clean run")


@case("rerun")
def encode_rerun_with_another_chunk_size(tmp: Path):

    model, data = saved_model(tmp / "m"), tmp / "ds"
    write_split(data, "database", 40)
    assert cli("encode", str(model), str(data), "--out", str(tmp / "codes"), "--chunk-size", "16")[0] == 0
    assert cli("encode", str(model), str(data), "--out", str(tmp / "codes"), "--chunk-size", "7")[0] == 0
    return _codes_outcome(tmp / "codes", _clean_codes(tmp, model, data), "all 40 codes, equal to a clean run")


@case("rerun")
def encode_rerun_with_another_model(tmp: Path):
    from s5vh_hf.recipes.encoding import load_codes

    data = tmp / "ds"
    write_split(data, "database", 20)
    first, second = saved_model(tmp / "m1", seed=0), saved_model(tmp / "m2", seed=1)
    assert cli("encode", str(first), str(data), "--out", str(tmp / "codes"), "--chunk-size", "8")[0] == 0
    assert cli("encode", str(second), str(data), "--out", str(tmp / "codes"), "--chunk-size", "8")[0] == 0
    _, codes = load_codes(tmp / "codes")
    expected = tiny_model(1).encode(videos(20), output="packed")
    return ("intact", "the second model's codes") if np.array_equal(codes, expected) else ("lost", "old model's codes")


@case("kernel cache")
def truncated_cached_kernel(tmp: Path):
    code = "from s5vh_hf.model.cpu_kernels import load_cpu_kernels; print(load_cpu_kernels() is not None)"
    env = {"S5VH_KERNEL_CACHE": str(tmp / "cache")}
    (tmp / "cache").mkdir(mode=0o700)
    first = python_process(code, env)
    libraries = list((tmp / "cache").glob("*.so"))
    if first.returncode != 0 or not libraries:
        return "intact", "no compiler here: nothing cached to damage"
    for library in libraries:
        with open(library, "r+b") as handle:
            handle.truncate(library.stat().st_size // 3)
    second = python_process(code, env)
    if second.returncode != 0:
        return "crash", f"exit {second.returncode} (SIGBUS is -7)"
    return ("intact", "rebuilt, kernels load") if "True" in second.stdout else ("lost", "kernels disabled")


@case("kernel cache")
def planted_library_in_a_shared_cache(tmp: Path):
    from s5vh_hf.model import kernel_cache
    from s5vh_hf.model.commits import sha256_file

    compiler = kernel_cache._compiler()
    if compiler is None:
        return "intact", "no compiler here: nothing is loaded from any cache"
    shared = tmp / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    marker = tmp / "planted-ran"
    source = tmp / "planted.c"
    source.write_text(f'#include <stdio.h>\n__attribute__((constructor)) static void p(void) {{ FILE *f = '
                      f'fopen("{marker}", "w"); if (f) fclose(f); }}\n')  # fmt: skip
    for flags in kernel_cache._FLAG_SETS:
        target = shared / f"s5vh_scan_{kernel_cache._library_key(compiler, flags)}.so"
        subprocess.run([compiler, "-shared", "-fPIC", str(source), "-o", str(target)], check=True)
        Path(str(target) + ".sha256").write_text(sha256_file(target))
    result = python_process("from s5vh_hf.model.cpu_kernels import load_cpu_kernels; load_cpu_kernels()",
                            {"S5VH_KERNEL_CACHE": str(shared)})  # fmt: skip
    if marker.exists():
        return "lost", "a library planted by another user was loaded"
    if result.returncode != 0:
        return "crash", result.stderr.strip()[-160:]
    return "clear", "refused: " + [line for line in result.stderr.splitlines() if "not used" in line][0][-100:]


@case("kernel cache")
def cache_below_a_folder_others_may_write_to(tmp: Path):
    from s5vh_hf.model import kernel_cache

    if kernel_cache._compiler() is None:
        return "intact", "no compiler here: nothing is loaded from any cache"
    parent = tmp / "open-parent"
    parent.mkdir()
    os.chmod(parent, 0o777)
    (parent / "cache").mkdir(mode=0o700)
    result = python_process("from s5vh_hf.model.kernel_cache import kernel_cache_dir; print(kernel_cache_dir())",
                            {"S5VH_KERNEL_CACHE": str(parent / "cache")})  # fmt: skip
    if result.returncode != 0:
        return "crash", result.stderr.strip()[-160:]
    if result.stdout.strip() == str(parent / "cache"):
        return "lost", "a cache another user could rename away was used"
    return "clear", [line for line in result.stderr.splitlines() if "not used" in line][0][-110:]


@case("kernel cache")
def library_swapped_between_check_and_load(tmp: Path):
    from s5vh_hf.model import kernel_cache

    compiler = kernel_cache._compiler()
    if compiler is None:
        return "intact", "no compiler here: nothing is loaded from any cache"
    code = f"""
    import os, subprocess
    from pathlib import Path
    import s5vh_hf.model.kernel_cache as c
    flags = c._FLAG_SETS[-1]
    c.build_library((flags,))
    target = c.kernel_cache_dir() / f"s5vh_scan_{{c._library_key(c._compiler(), flags)}}.so"
    descriptor = c._open_verified(target)
    source = Path({str(tmp)!r}) / "planted.c"
    source.write_text('#include <stdio.h>\\n__attribute__((constructor)) static void p(void) {{ FILE *f = '
                      'fopen("{tmp}/planted-ran", "w"); if (f) fclose(f); }}\\n')
    subprocess.run([c._compiler(), "-shared", "-fPIC", str(source), "-o", str(target) + ".new"], check=True)
    os.replace(str(target) + ".new", target)
    library = c._load_descriptor(descriptor)
    print(hasattr(library, "s5vh_scan_forward"), c._verified(target))
    """
    result = python_process(code, {"S5VH_KERNEL_CACHE": str(tmp / "cache")})
    if (tmp / "planted-ran").exists():
        return "lost", "the library swapped in after the check was loaded"
    if result.returncode != 0:
        return "crash", result.stderr.strip()[-160:]
    if result.stdout.split() != ["True", "False"]:
        return "lost", f"loaded/verified: {result.stdout.strip()}"
    return "intact", "the checked file was loaded through its descriptor; the swapped one fails the next check"


def _video_folder(tmp: Path, count: int = 6) -> tuple[Path, Path]:
    """A few synthetic videos and a tiny random VGG frame encoder."""
    import torch

    from s5vh_hf.video.frame_encoders import VGGFeatures, save_vgg
    from s5vh_hf.video.synthetic import class_names, render_frames, write_video

    rng = np.random.default_rng(0)
    for index in range(count):
        name = class_names()[index % len(class_names())]
        write_video(tmp / "videos" / f"{index:03d}.mp4", render_frames(name, 12, 48, rng))
    torch.manual_seed(0)
    return tmp / "videos", save_vgg(VGGFeatures(width=1 / 32, hidden=24), tmp / "vgg")


@case("extract videos")
def corrupt_and_audio_only_videos_among_good_ones(tmp: Path):
    videos, encoder = _video_folder(tmp)
    (videos / "zz-corrupt.mp4").write_bytes((videos / "000.mp4").read_bytes()[:300])
    (videos / "zz-empty.mp4").write_bytes(b"")
    status, err = cli("extract", str(videos), "--extractor", str(encoder), "--frames", "6", "--out", str(tmp / "f"),
                      "--chunk-size", "3")  # fmt: skip
    if status != 0:
        return "crash", err.strip()[-160:]
    report = json.loads((tmp / "f" / "extraction_report_train.json").read_text())
    skipped = sorted(Path(p).name for p in report["skipped"])
    ids, _ = split_contents(tmp / "f", "train")
    if skipped != ["zz-corrupt.mp4", "zz-empty.mp4"] or len(ids) != 6:
        return "lost", f"skipped {skipped}, {len(ids)} videos written"
    return "clear", f"6 videos written, 2 skipped with reasons: {list(report['skipped'].values())[0][:60]}"


@case("kill -9")
def kill_during_extraction_then_rerun(tmp: Path):
    videos, encoder = _video_folder(tmp, count=10)
    argv = ["extract", str(videos), "--extractor", str(encoder), "--frames", "6", "--chunk-size", "2"]
    assert cli(*argv, "--out", str(tmp / "clean"))[0] == 0
    _kill_once([*argv, "--out", str(tmp / "f")], tmp / "f" / ".extract" / "train", "chunk-*.parquet", 2)
    status, err = cli(*argv, "--out", str(tmp / "f"))
    if status != 0:
        return "crash", err.strip()[-160:]
    clean_ids, clean = split_contents(tmp / "clean", "train")
    ids, features = split_contents(tmp / "f", "train")
    same = ids == clean_ids and np.array_equal(features, clean)
    return ("intact", "the rerun finished; features equal to a clean run") if same else ("lost", "features differ")


@case("write data")
def hdf5_videos_with_no_frames(tmp: Path):
    import h5py

    with h5py.File(tmp / "f.h5", "w") as handle:
        handle["feats"] = np.zeros((3, 0, 24), np.float32)
    outcome = expect_clear(*cli("convert-features", str(tmp / "f.h5"), "--split", "train", "--out", str(tmp / "ds")),
                           "T = 0")  # fmt: skip
    return ("lost", "a split was written") if (tmp / "ds" / "data").exists() and any((tmp / "ds" / "data").iterdir()) \
        else outcome  # fmt: skip


@case("write data")
def complex_hdf5_features(tmp: Path):
    import h5py

    feats = np.random.default_rng(0).standard_normal((3, 4, 24)) * (1 + 1j)
    with h5py.File(tmp / "f.h5", "w") as handle:
        handle["feats"] = feats.astype(np.complex64)
    return expect_clear(*cli("convert-features", str(tmp / "f.h5"), "--split", "train", "--out", str(tmp / "ds")),
                        "complex")  # fmt: skip


@case("write data")
def float32_overflow_names_float32s_limit(tmp: Path):
    from s5vh_hf.data.shards import cast_features

    block = np.full((1, 2, 3), 1e300)
    outcome = expect_raise(lambda: cast_features(block, "float32", ["v"]), ValueError, "float32", "3.40282e+38")
    if outcome[0] == "clear" and "65504" in outcome[1]:
        return "crash", "the float32 message cites float16's limit"
    return outcome


@case("validate")
def absurd_configs_refused_before_allocating(tmp: Path):
    from s5vh_hf import S5VHConfig

    for overrides, words in (({"hidden_size": 10**9}, ("hidden_size",)), ({"time_step_rank": -1}, ("time_step_rank",)),
                             ({"encoder_depth": 10**6}, ("encoder_depth",)),
                             ({"ends_encoder_width": 10**9}, ("ends_encoder_width",)),
                             ({"hidden_size": 16384, "expand": 16, "encoder_depth": 256}, ("billion",))):  # fmt: skip
        start = time.perf_counter()
        outcome = expect_raise(lambda o=overrides: S5VHConfig(**o), ValueError, *words)
        if outcome[0] != "clear":
            return outcome
        if time.perf_counter() - start > 5:
            return "crash", f"{overrides} took {time.perf_counter() - start:.0f} s to refuse"
    return outcome


@case("validate")
def zero_and_negative_counts_on_the_command_line(tmp: Path):
    model, data = saved_model(tmp / "m"), tmp / "ds"
    write_split(data, "database", 4)
    for argv, word in ((["encode", str(model), str(data), "--out", str(tmp / "c"), "--batch-size", "0"], "--batch-size"),
                       (["search", str(model), str(data), "--query-split", "database", "--limit", "-1"], "--limit"),
                       (["encode", str(model), str(data), "--out", str(tmp / "c"), "--chunk-size", "-3"], "--chunk-size")):  # fmt: skip
        result = cli_process(*argv)
        outcome = expect_clear(result.returncode, result.stderr, word, "positive integer")
        if outcome[0] != "clear":
            return outcome
    return outcome


@case("rerun")
def encode_rerun_after_a_config_edit(tmp: Path):
    from s5vh_hf.recipes.encoding import load_codes

    model, data = saved_model(tmp / "m"), tmp / "ds"
    write_split(data, "database", 20)
    assert cli("encode", str(model), str(data), "--out", str(tmp / "codes"), "--chunk-size", "8")[0] == 0
    config = json.loads((model / "config.json").read_text())
    config["layer_norm_eps"] = 0.5  # changes codes, not weights
    (model / "config.json").write_text(json.dumps(config))
    assert cli("encode", str(model), str(data), "--out", str(tmp / "codes"), "--chunk-size", "8")[0] == 0
    assert cli("encode", str(model), str(data), "--out", str(tmp / "clean"), "--chunk-size", "8")[0] == 0
    same = np.array_equal(load_codes(tmp / "codes")[1], load_codes(tmp / "clean")[1])
    return ("intact", "chunks of the old config redone; equal to a clean run") if same else ("lost", "stale chunks")
