"""Regenerate ``s5vh_hf/model/cpu_kernels_source.py`` from ``s5vh_hf/model/csrc/cpu_kernels.c``.

The C file is the source of truth (compiled with -Wall -Wextra -Werror in the tests); the generated module carries
the same text as a Python string so that a model saved for ``trust_remote_code`` (which ships .py files only) can
still build the kernels. ``tests/test_cpu_kernels.py`` fails when the two differ.

    python scripts/sync_kernel_source.py
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
C_FILE = ROOT / "s5vh_hf" / "model" / "csrc" / "cpu_kernels.c"
PY_FILE = ROOT / "s5vh_hf" / "model" / "cpu_kernels_source.py"


def render(c_source: str) -> str:
    if '"""' in c_source:  # a raw string keeps everything else as it is
        raise ValueError("the C source must not contain triple quotes")
    return (
        '"""The C source of the fused CPU kernels, generated from ``csrc/cpu_kernels.c`` by\n'
        '``scripts/sync_kernel_source.py`` — do not edit; edit the .c file and regenerate."""\n\n'
        f'C_SOURCE = r"""{c_source}"""\n'
    )


def main() -> int:
    PY_FILE.write_text(render(C_FILE.read_text()))
    print(f"wrote {PY_FILE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
