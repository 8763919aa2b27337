#!/usr/bin/env bash
# Sets up .venv with the test extras (pytest, the CPU PyTorch oracle, the SmolLM2 GGUF) and runs the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
# Two workers (pytest-xdist), one test module at a time each: module fixtures are built once, and the longest
# modules start first (tests/conftest.py). TEST_WORKERS=0 runs the suite in this process.
exec .venv/bin/python -m pytest -n "${TEST_WORKERS:-2}" --dist loadscope --no-loadscope-reorder "$@"
