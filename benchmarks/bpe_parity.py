"""Byte-level BPE parity: TFByteLevelBPETokenizer's ids against transformers' fast tokenizer's, counted.

Every family of tests/test_tf_bpe.py (GPT-2, Qwen2 and Llama-3 style tokenizers trained on BBC News, the real
SmolLM2 vocabulary) tokenizes every BBC News paragraph and article opening (15,016 strings), and the same
strings with three insertions each (test_tf_bpe.perturbed: whitespace runs, non-ASCII, random code points),
both ways; the script prints, per family and set, how many strings differ, the first few, and the time each
side took.

    .venv/bin/python benchmarks/bpe_parity.py [--families gpt2 smollm2] [--limit 10000]
"""

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_tf_bpe import FAMILIES, bbc_strings, family, mismatches, perturbed, python_ids  # noqa: E402


def parity(name, texts):
    """(mismatches, seconds in TF, seconds in Python) of one family over `texts`."""
    tokenizer, _ = family(name)
    start = time.perf_counter()
    wrong = mismatches(name, texts)
    both = time.perf_counter() - start
    start = time.perf_counter()
    python_ids(tokenizer, texts)
    python_seconds = time.perf_counter() - start
    return wrong, both - python_seconds, python_seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument("--limit", type=int, default=None, help="only the first N strings")
    args = parser.parse_args()
    texts = bbc_strings()[:args.limit]
    for name in args.families:
        for label, strings in (("bbc", texts), ("perturbed", perturbed(texts))):
            wrong, tf_seconds, python_seconds = parity(name, strings)
            print(f"{name:8s} {label:9s} {len(wrong)} of {len(strings)} strings differ "
                  f"(TF {tf_seconds:.1f} s, Python {python_seconds:.1f} s)", flush=True)
            for text, expected, got in wrong[:3]:
                print(f"    {text[:80]!r}\n      expected {expected[:20]}\n      got      {got[:20]}")


if __name__ == "__main__":
    main()
