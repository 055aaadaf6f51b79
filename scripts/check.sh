#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run every check and test: ruff, mypy --strict, pytest
# (unit and integration tests; integration tests start their own mosquitto on a free port).
# Extra arguments go to pytest, e.g. scripts/check.sh -k merkle
# The tests run in VOLTPROOF_TEST_WORKERS worker processes (default 3; 0 runs them in this
# process), one test file per worker at a time: most integration tests wait on the services
# and processes they start, so a 2-core machine runs three files at once.
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
workers="${VOLTPROOF_TEST_WORKERS:-3}"
if [ "$workers" = "0" ]; then
    pytest "$@"
else
    pytest -n "$workers" --dist loadfile "$@"
fi
