#!/usr/bin/env bash
# Install specdsl with its test extras into .venv and run lint + the test suite.
# This is the README's test command; CI runs it too.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -c constraints.txt -e ".[dev,torch]"
echo "== ruff"
.venv/bin/python -m ruff check specdsl backends grammars specs tests benchmarks
echo "== pytest"
.venv/bin/python -m pytest -p no:cacheprovider "$@"
