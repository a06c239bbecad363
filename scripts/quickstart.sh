#!/usr/bin/env bash
# Set up the virtual environment (idempotent) and run the demo or the tests.
#   bash scripts/quickstart.sh demo [s5vh demo options]
#   bash scripts/quickstart.sh test [pytest options]
# S5VH_VENV picks the environment folder (default .venv); S5VH_TORCH picks the torch requirement
# (default torch==2.13.0, the CPU build this project is tested with).
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${S5VH_VENV:-.venv}"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${S5VH_TORCH:-torch==2.13.0}"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[dev,video]"
export HF_HUB_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False
task="${1:-}"
if [ "$task" = test ] && [ -z "${S5VH_CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then
    # The search page's tests drive Debian's Chromium through Playwright (which could not download its own browser).
    if command -v apt-get >/dev/null 2>&1; then
        sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
        $sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq chromium >/dev/null
    fi
fi
shift || true
case "$task" in
    demo) exec "$venv/bin/s5vh" demo "$@" ;;
    test) "$venv/bin/lint-imports" --no-cache >/dev/null || "$venv/bin/lint-imports" --no-cache  # layers (pyproject)
          exec "$venv/bin/python" -m pytest "$@" ;;
    *) echo "usage: bash scripts/quickstart.sh demo|test [options]" >&2; exit 2 ;;
esac
