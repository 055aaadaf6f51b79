#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run every check and test: ruff, mypy --strict, pytest
# (unit and integration tests; integration tests start their own mosquitto on a free port).
# Extra arguments go to pytest, e.g. scripts/check.sh -k merkle
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
echo "== ruff" >&2
ruff check .
ruff format --check .
echo "== mypy --strict" >&2
mypy
echo "== pytest" >&2
pytest "$@"
