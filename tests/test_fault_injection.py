"""The fast part of ``scripts/fault_injection.py``, one test per case: every fault is refused clearly or leaves
whole data behind (no crash, nothing silently accepted, nothing lost)."""

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "fault_injection.py"
_spec = importlib.util.spec_from_file_location("fault_injection", SCRIPT)
fault_injection = importlib.util.module_from_spec(_spec)
sys.modules["fault_injection"] = fault_injection  # dataclasses look their module up there
_spec.loader.exec_module(fault_injection)

FAST_CASES = [case for case in fault_injection.CASES if case.fast]


@pytest.mark.parametrize("case", FAST_CASES, ids=[case.name.replace(" ", "-") for case in FAST_CASES])
def test_fault(case, tmp_path):
    outcome, detail = case.run(tmp_path)
    assert outcome in ("clear", "intact"), f"{case.stage} / {case.name}: {outcome}: {detail}"


def test_the_script_covers_every_stage_and_reports_all_outcomes():
    stages = {case.stage for case in fault_injection.CASES}
    assert {"load model", "load data", "write data", "validate", "kill -9", "concurrency", "rerun",
            "kernel cache", "huge input", "hostile folder"} <= stages  # fmt: skip
    results = [(fault_injection.CASES[0], "clear", "x", 0.0), (fault_injection.CASES[1], "lost", "y", 0.0)]
    assert fault_injection.summary(results) == {"cases tried": 2, "clear": 1, "intact": 0, "crash": 0,
                                                "silent": 0, "lost": 1}  # fmt: skip
    assert "lost 1" in fault_injection.report(results)
