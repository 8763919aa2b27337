#!/usr/bin/env bash
# Sets up .venv (library + offline assets) and runs the main job: examples/demo.py.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python examples/demo.py "$@"
