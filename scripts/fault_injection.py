"""Fault injection over every stage that reads or writes user data: corrupt and hostile files, bad values,
kill -9 at the worst moments, concurrent writers, huge inputs.

    python scripts/fault_injection.py            # every case (a few minutes)
    python scripts/fault_injection.py --fast     # the cases CI runs (about a minute)
    python scripts/fault_injection.py --report report.md

Each case ends in one of:
    clear    the fault was refused with a clear one-line error (exit 2 for the CLI) naming the file, video or field
    intact   the fault happened (kill, concurrency, rerun) and the data is whole and belongs to its inputs
    crash    a traceback, a signal, or an error that names nothing
    silent   bad input accepted without a word
    lost     data torn, stale, mixed or gone
The script exits 1 unless crash, silent and lost are all zero. The cases live in ``tests/faults/``: the harness
(``harness.py``) and one module per stage (``cases_*.py``); extend them with every new writer or loader. This
script runs them; ``tests/test_fault_injection.py`` runs the fast ones.

A full disk is a small tmpfs mounted for the case where this process may mount (root), else a file-size limit
(``S5VH_FAULT_NO_MOUNT=1`` forces the latter).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.faults import (  # noqa: E402, F401 - importing a case module registers its cases
    cases_concurrent_writers,
    cases_data,
    cases_hostile_folders,
    cases_index,
    cases_kills_and_concurrency,
    cases_model_files,
    cases_resume,
    cases_slow,
    cases_validation,
    cases_video_files,
)
from tests.faults.harness import CASES, OUTCOMES, Case  # noqa: E402


def run_cases(fast: bool) -> list[tuple[Case, str, str, float]]:
    logging.disable(logging.WARNING)  # library warnings would interleave with the table (cases capture their own)
    results = []
    for item in CASES:
        if fast and not item.fast:
            continue
        start = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="s5vh-fault-") as folder:
            logging.disable(logging.NOTSET)
            try:
                outcome, detail = item.run(Path(folder))
            except Exception as error:  # noqa: BLE001
                outcome, detail = "crash", f"{type(error).__name__}: {error}".splitlines()[0][:160]
                if os.environ.get("S5VH_FAULT_DEBUG"):
                    traceback.print_exc()
            finally:
                logging.disable(logging.WARNING)
        results.append((item, outcome, detail, time.perf_counter() - start))
        print(f"{outcome:>6}  {item.stage:<18} {item.name:<48} {detail}", flush=True)
    logging.disable(logging.NOTSET)
    return results


def summary(results) -> dict[str, int]:
    counts = {name: 0 for name in OUTCOMES}
    for _, outcome, _, _ in results:
        counts[outcome] += 1
    return {"cases tried": len(results), **counts}


def report(results) -> str:
    counts = summary(results)
    lines = ["| stage | case | outcome | detail |", "|---|---|---|---|"]
    lines += [f"| {c.stage} | {c.name} | {o} | {d.replace('|', '/')} |" for c, o, d, _ in results]
    totals = " · ".join(f"{name} {value}" for name, value in counts.items())
    return f"**{totals}**\n\n" + "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="only the cases CI runs")
    parser.add_argument("--report", help="write the results as a markdown table")
    parser.add_argument("--only", help="run the cases whose name contains this text")
    args = parser.parse_args(argv)
    if args.only:
        CASES[:] = [c for c in CASES if args.only in c.name]
    results = run_cases(args.fast)
    counts = summary(results)
    print("\n" + " · ".join(f"{name} {value}" for name, value in counts.items()))
    if args.report:
        Path(args.report).write_text(report(results))
    return 0 if counts["crash"] == counts["silent"] == counts["lost"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
