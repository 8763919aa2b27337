"""Vision speed: ViT-Base-sized (random) forward and training throughput of tfformers against PyTorch
transformers on the same weights, and image-preprocessing throughput (TF ops against transformers' processor).

1. Forward: `ViTForImageClassification` (12 layers, hidden 768, 224x224 images, patch 16: 197 tokens), a batch
   of random pixels: tfformers under XLA (`tf.function(jit_compile=True)`), tfformers as a tf.function graph,
   and PyTorch (`torch.no_grad()`, SDPA attention). Interleaved rounds, medians (see common.py).
2. Training: one step (forward, default loss, backward, AdamW) on a batch: tfformers `train_on_batch` with
   `jit_compile=True` and with `jit_compile=False`, and PyTorch (`loss.backward()`, `torch.optim.AdamW`).
3. Preprocessing: the photographs of scikit-image's wheel to 224x224 pixel values (ViT's preprocessor config):
   transformers' `ViTImageProcessor` (its PIL backend) on PIL images, tfformers' processor on the same PIL
   images, and tfformers' Keras layer on the encoded PNG files (decoding included) in one graph call.

    .venv/bin/python benchmarks/bench_vision.py            # ViT-Base, for docs/benchmarks.md
    .venv/bin/python benchmarks/bench_vision.py --quick    # smoke test: a tiny ViT, one round
"""

import argparse
import io
import tempfile
from pathlib import Path

import numpy as np  # noqa: I001  (after common, which sets the Keras backend and TF's log level)
from common import environment, interleaved, pin_torch_threads, quiet_libraries, summarize, timed_first_call

VIT_BASE = dict(image_size=224, patch_size=16, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                intermediate_size=3072)
VIT_TINY = dict(image_size=32, patch_size=8, hidden_size=36, num_hidden_layers=2, num_attention_heads=3,
                intermediate_size=37)
NUM_LABELS = 10
PROCESSOR = {"image_processor_type": "ViTImageProcessor", "do_resize": True, "size": {"height": 224, "width": 224},
             "resample": 2, "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
             "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}


def vit_flops(config, batch):
    """Multiply-adds x 2 of one forward: patch projection, then per token the projections and MLP, plus
    q k^T and p v over the patches and [CLS]."""
    patches = (config.image_size // config.patch_size) ** 2
    tokens, h, i = patches + 1, config.hidden_size, config.intermediate_size
    patch = 2 * patches * config.num_channels * config.patch_size**2 * h
    per_layer = 2 * tokens * (4 * h * h + 2 * h * i) + 2 * 2 * tokens * tokens * h
    return batch * (patch + config.num_hidden_layers * per_layer)


def models(settings, folder):
    """(tfformers XLA model, tfformers graph model, PyTorch model) with the same random weights."""
    import torch
    import transformers

    import tfformers

    torch.manual_seed(0)
    config = transformers.ViTConfig(**settings, num_labels=NUM_LABELS)
    transformers.ViTForImageClassification(config).save_pretrained(folder)
    pt_model = transformers.ViTForImageClassification.from_pretrained(folder)  # SDPA attention, its default
    return (tfformers.TFViTForImageClassification.from_pretrained(folder),
            tfformers.TFViTForImageClassification.from_pretrained(folder), pt_model)


def bench_model(settings, batch, rounds, folder):
    import keras
    import tensorflow as tf
    import torch

    xla_model, graph_model, pt_model = models(settings, folder)
    config = xla_model.config
    rng = np.random.default_rng(0)
    pixels = rng.standard_normal((batch, 3, config.image_size, config.image_size)).astype(np.float32)
    labels = rng.integers(0, NUM_LABELS, size=batch)
    tf_pixels, tf_labels = tf.constant(pixels), tf.constant(labels, tf.int32)
    pt_pixels, pt_labels = torch.as_tensor(pixels), torch.as_tensor(labels)

    xla_forward = tf.function(lambda x: xla_model(x, training=False).logits, jit_compile=True)
    graph_forward = tf.function(lambda x: graph_model(x, training=False).logits)

    def pt_forward():
        with torch.no_grad():
            return pt_model.eval()(pixel_values=pt_pixels).logits

    forward = {
        "tfformers XLA": lambda: xla_forward(tf_pixels).numpy(),
        "tfformers tf.function": lambda: graph_forward(tf_pixels).numpy(),
        "PyTorch": pt_forward,
    }
    forward_first = {name: timed_first_call(step) for name, step in forward.items()}
    forward_times = interleaved(forward, rounds)

    for model, jit in ((xla_model, True), (graph_model, False)):
        model.compile(optimizer=keras.optimizers.AdamW(1e-4, weight_decay=0.01), jit_compile=jit)
    pt_optimizer = torch.optim.AdamW(pt_model.parameters(), lr=1e-4, weight_decay=0.01)

    def pt_step():
        loss = pt_model.train()(pixel_values=pt_pixels, labels=pt_labels).loss
        loss.backward()
        pt_optimizer.step()
        pt_optimizer.zero_grad(set_to_none=True)
        return loss.item()

    training = {
        "tfformers XLA": lambda: float(xla_model.train_on_batch(tf_pixels, tf_labels)),
        "tfformers tf.function": lambda: float(graph_model.train_on_batch(tf_pixels, tf_labels)),
        "PyTorch": pt_step,
    }
    training_first = {name: timed_first_call(step) for name, step in training.items()}
    training_times = interleaved(training, rounds)
    flops = vit_flops(config, batch)
    return {
        "forward": {**summarize(forward_times, batch, flops), "first_call": forward_first},
        "training": {**summarize(training_times, batch, 3 * flops), "first_call": training_first},
    }


def print_model(results, batch, size):
    for kind in ("forward", "training"):
        result = results[kind]
        print(f"\n### ViT {size} {kind}, batch {batch} (median)\n")
        print("| contender | s / step | images/s | GFLOP/s | vs PyTorch | first call |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, seconds in result["seconds"].items():
            print(f"| {name} | {seconds:.3f} | {result['throughput'][name]:.1f} | {result['gflops'][name]:.0f} "
                  f"| {result['speedup'][name]:.2f}x | {result['first_call'][name]:.1f} s |")


def bench_preprocessing(rounds, folder):
    import skimage
    import tensorflow as tf
    import transformers
    from PIL import Image

    import tfformers

    Path(folder, "preprocessor_config.json").write_text(__import__("json").dumps(PROCESSOR))
    photos = sorted(Path(skimage.__file__).parent.joinpath("data").glob("*.png"))
    images = [Image.open(path).convert("RGB") for path in photos]
    for image in images:
        image.load()
    encoded = []
    for image in images:
        data = io.BytesIO()
        image.save(data, format="PNG")
        encoded.append(data.getvalue())
    theirs = transformers.AutoImageProcessor.from_pretrained(folder)
    ours = tfformers.AutoImageProcessor.from_pretrained(folder)
    layer = tf.function(ours.as_layer(), input_signature=[tf.TensorSpec([None], tf.string)])
    files = tf.constant(encoded)
    contenders = {
        "transformers (PIL)": lambda: theirs(images, return_tensors="np"),
        "tfformers processor": lambda: ours(images, return_tensors="np"),
        "tfformers layer, from PNG bytes": lambda: layer(files).numpy(),
    }
    for step in contenders.values():
        step()
    times = interleaved(contenders, rounds)
    seconds = {name: float(np.median(values)) for name, values in times.items()}
    print(f"\n### Preprocessing {len(images)} photographs to 224x224 (median)\n")
    print("| contender | s / batch | images/s |")
    print("|---|---:|---:|")
    for name, value in seconds.items():
        print(f"| {name} | {value:.3f} | {len(images) / value:.0f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tiny ViT and one round (a smoke test)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    import torch  # noqa: F401  (both libraries imported before any timing)

    import tfformers  # noqa: F401

    quiet_libraries()
    pin_torch_threads()
    print(environment())
    settings, rounds, size = (VIT_TINY, 1, "tiny") if args.quick else (VIT_BASE, args.rounds, "Base")
    with tempfile.TemporaryDirectory() as folder:
        print_model(bench_model(settings, args.batch, rounds, folder), args.batch, size)
        bench_preprocessing(rounds, folder)


if __name__ == "__main__":
    main()
