#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the end-to-end demo on embedded defaults.
# Arguments go to `voltproof demo`, e.g. scripts/demo.sh --duration 120 --workdir ./demo-run
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/voltproof demo "$@"
