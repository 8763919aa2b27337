"""In-graph tokenizer parity: each family's ids against transformers' fast tokenizer's, counted.

Every non-empty line of the BBC News corpus (12,860), and the same lines with three non-ASCII or random
characters inserted (tests/test_tf_tokenizers.py's `perturbed`), are tokenized both ways; the script prints,
per family, how many strings differ, the first few, and the time each side took. A family is a name and a
function returning (reference tokenizer, in-graph layer): add one to FAMILIES. The reference is transformers'
fast tokenizer, except for "sentencepiece-library" (the sentencepiece package).

    .venv/bin/python benchmarks/tokenizer_parity.py [--families wordpiece sentencepiece] [--limit 10000]
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

# tfformers first, so TensorFlow starts quietly
from tfformers import AutoTokenizer, TFBertTokenizer, TFSentencePieceTokenizer  # noqa: E402

# isort: split

import tensorflow as tf  # noqa: E402
from assets import minilm_dir  # noqa: E402
from test_tf_tokenizers import bbc_lines, perturbed, wordpiece_tokenizer, write_sentencepiece_folder  # noqa: E402


def wordpiece():
    """all-MiniLM-L6-v2's uncased WordPiece."""
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir())
    return tokenizer, TFBertTokenizer.from_tokenizer(tokenizer)


def wordpiece_cased():
    """MiniLM's vocabulary with a cased BertNormalizer (no lower-casing, accents kept)."""
    tokenizer = wordpiece_tokenizer(lowercase=False)
    return tokenizer, TFBertTokenizer.from_tokenizer(tokenizer)


def sentencepiece():
    """Mistral-7B-v0.1's SentencePiece model as transformers' LlamaTokenizer reads it."""
    folder = write_sentencepiece_folder(Path(tempfile.mkdtemp()))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    return tokenizer, TFSentencePieceTokenizer.from_tokenizer(tokenizer)


def sentencepiece_library():
    """The same layer against the sentencepiece library itself (with BOS), the reference its ids follow."""
    import sentencepiece as spm

    folder = write_sentencepiece_folder(Path(tempfile.mkdtemp()))
    processor = spm.SentencePieceProcessor(model_file=str(folder / "tokenizer.model"))
    layer = TFSentencePieceTokenizer.from_tokenizer(AutoTokenizer.from_pretrained(folder))
    return (lambda texts: {"input_ids": [[1, *ids] for ids in processor.encode(texts)]}), layer


FAMILIES = {"wordpiece": wordpiece, "wordpiece-cased": wordpiece_cased, "sentencepiece": sentencepiece,
            "sentencepiece-library": sentencepiece_library}


def parity(tokenizer, layer, texts):
    """([(text, expected, got)] that differ, seconds in TF, seconds in Python)."""
    start = time.perf_counter()
    expected = tokenizer(texts)["input_ids"]
    python_seconds = time.perf_counter() - start
    start = time.perf_counter()
    got = layer(tf.constant(texts), padding=False)["input_ids"].to_list()
    tf_seconds = time.perf_counter() - start
    return [(t, e, g) for t, e, g in zip(texts, expected, got) if e != g], tf_seconds, python_seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument("--limit", type=int, default=None, help="only the first N lines")
    args = parser.parse_args()
    lines = bbc_lines()[:args.limit]
    for name in args.families:
        tokenizer, layer = FAMILIES[name]()
        for kind, texts in (("lines", lines), ("perturbed lines", perturbed(lines))):
            wrong, tf_seconds, python_seconds = parity(tokenizer, layer, texts)
            print(f"{name:16s} {kind:16s} {len(wrong)} of {len(texts)} strings differ "
                  f"(TF {tf_seconds:.1f} s, Python {python_seconds:.1f} s)")
            for text, expected, got in wrong[:3]:
                print(f"    {text[:80]!r}\n      expected {expected[:20]}\n      got      {got[:20]}")


if __name__ == "__main__":
    main()
