#!/usr/bin/env bash
# Sets up .venv with the test extras (pytest, the CPU PyTorch oracle, the SmolLM2 GGUF) and runs the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
exec .venv/bin/python -m pytest "$@"
