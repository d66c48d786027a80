#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite, lint included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV="${MATBRAIN_VENV:-.venv}"
export OPENBLAS_NUM_THREADS=1  # two OpenBLAS threads make small linear algebra ~100x slower here
"$VENV/bin/ruff" check src tests bench
"$VENV/bin/mypy" src  # configured in pyproject.toml
"$VENV/bin/python" -m pytest "$@"
