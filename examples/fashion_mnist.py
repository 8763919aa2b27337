"""Fashion-MNIST as a 🤗 `Image` dataset, and a small ViT trained on it from scratch with compile()/fit().

The data is Debian's `dataset-fashion-mnist` package (`apt-get install dataset-fashion-mnist`): 60,000 + 10,000
labelled 28x28 grayscale images as IDX files. The recipe (`train`) is what the demo's vision section runs and
what `tests/test_vision_training.py` checks (at least 85% test accuracy):

16 patches of 7x7 + [CLS], width 64, 2 blocks of 4 heads, MLP 128 (about 70k weights); AdamW (weight decay
0.05), learning rate warmed up over the first 10% of steps to 5e-3 then cosine-decayed to 0; batches of 128;
3 epochs; XLA; pixels normalized with the training images' mean and std. It reached 85.98% test accuracy; fit
took 185-264 s on a shared 2-core machine under a load average of 5-9, about 75 s when the machine is quiet
(estimated from its fastest epoch). Patch 4 (50 tokens) learned slower per second (81.7% after 2 epochs), 3
blocks for 2 epochs reached 85.6%.
"""

import gzip
import time
from pathlib import Path

import tfformers

FOLDER = Path("/usr/share/datasets/fashion-mnist")
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
VIT = dict(image_size=28, patch_size=7, num_channels=1, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
           intermediate_size=128, num_labels=10, id2label=dict(enumerate(CLASSES)))
MEAN, STD = 0.2860, 0.3530  # the training images' pixel mean and std (of x / 255)
INSTALL = "apt-get install dataset-fashion-mnist (as root; scripts/setup.sh test does it)"


def load(split):
    """The "train" (60,000) or "t10k" (10,000) split: an `Image` column of 28x28 grayscale images and a
    `label` ClassLabel. The images are stored as PGM files (netpbm: a header, then the raw bytes), which need
    no compression to build and decode faster than PNG."""
    import datasets
    import numpy as np
    import pyarrow as pa

    if not FOLDER.is_dir():
        raise FileNotFoundError(f"{FOLDER} is missing: {INSTALL}.")
    with gzip.open(FOLDER / f"{split}-images-idx3-ubyte.gz") as file:
        images = np.frombuffer(file.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(FOLDER / f"{split}-labels-idx1-ubyte.gz") as file:
        labels = np.frombuffer(file.read(), np.uint8, offset=8)
    files = pa.array([b"P5 28 28 255\n" + image.tobytes() for image in images], pa.binary())
    image_column = pa.StructArray.from_arrays([files, pa.nulls(len(files), pa.string())], names=["bytes", "path"])
    table = pa.table({"image": image_column, "label": pa.array(labels.astype(np.int64))})
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=CLASSES)})
    return datasets.Dataset(table).cast(features)


def processor():
    """The images' preprocessing: no resize, pixels rescaled to [0, 1] and normalized."""
    return tfformers.ViTImageProcessor(do_resize=False, image_mean=[MEAN], image_std=[STD])


def train(train_split, epochs=3, seed=0, verbose=0):
    """(model, seconds of fit): the recipe above on `train_split`, its images processed when rows are read."""
    import keras

    keras.utils.set_random_seed(seed)
    model = tfformers.TFAutoModelForImageClassification.from_config(tfformers.ViTConfig(**VIT))
    batches = model.prepare_tf_dataset(train_split.with_transform(processor().transform()), batch_size=128,
                                       seed=seed, drop_remainder=True)
    steps = len(batches) * epochs
    schedule = keras.optimizers.schedules.CosineDecay(0.0, steps, warmup_target=5e-3, warmup_steps=steps // 10)
    model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=0.05), metrics=["accuracy"],
                  jit_compile=True)  # the default loss: cross-entropy
    start = time.perf_counter()
    model.fit(batches, epochs=epochs, verbose=verbose)
    return model, time.perf_counter() - start


def predict(model, split):
    """The predicted class of every image of `split`, in order."""
    batches = model.prepare_tf_dataset(split.with_transform(processor().transform()), batch_size=500,
                                       shuffle=False)
    return model.predict(batches, verbose=0).logits.argmax(-1)
