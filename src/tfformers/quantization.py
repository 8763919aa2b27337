"""Keras' own weight quantization (`model.quantize("int8")`) on tfformers models: which modes apply, the
checks around it, and reading a quantized word-embedding table for tied LM heads.

Keras' `Model.quantize` replaces the float variables of its leaves (`Dense`, GPT-2's `Conv1D`, `Embedding`)
with integer ones and a scale per output channel (per vocabulary row for an Embedding). Everything else
(norms, biases, position tables held in custom layers) stays in float.
"""

import gc
import warnings

import tensorflow as tf

from tfformers.errors import ConfigError

# The modes Keras quantizes a built model into without calibration data. GPTQ and AWQ calibrate block by
# block on a dataset and need the model's block structure, which tfformers models do not declare.
SUPPORTED_MODES = ("int8", "int4", "float8")

# Keras warns once per leaf without a quantized form (norms, dropout, activations): for a transformer that
# is dozens of lines saying nothing; `numpy.asarray(..., copy=False)` on TF tensors adds one per weight.
_QUIET = (r"Layer .* does not have a `quantize` method implemented", r"__array__ implementation doesn't accept")


def check_mode(mode):
    """Refuses a Keras quantization mode tfformers models cannot take (`mode` as Keras resolved it)."""
    if mode not in SUPPORTED_MODES:
        raise ConfigError(
            f"quantize(mode={mode!r}) is not supported on tfformers models: {mode} calibrates on data block by "
            f"block and needs a layer structure these models do not declare. Use one of {SUPPORTED_MODES} "
            "(int8: 8-bit weights with a scale per output channel)."
        )


def run_keras_quantize(quantize, *args, **kwargs):
    """Runs Keras' `quantize` without its per-leaf warnings about layers that have nothing to quantize, and
    with the heap frozen: Keras runs a full `gc.collect()` for every float variable it deletes (0.4 s each
    beside TensorFlow's objects, minutes for a 30-layer decoder); frozen, each one scans only new objects.
    One collection after unfreezing releases the float weights."""
    gc.freeze()
    try:
        with warnings.catch_warnings():
            for message in _QUIET:
                warnings.filterwarnings("ignore", message=message)
            return quantize(*args, **kwargs)
    finally:
        gc.unfreeze()
        gc.collect()


def quantized_leaves(model):
    """{layer path: quantization mode} of every leaf of `model` that holds quantized weights."""
    return {
        layer.path: layer.quantization_mode
        for layer in model._flatten_layers(include_self=False)
        if getattr(layer, "quantization_mode", None) is not None
    }


def refuse_float_checkpoint(model, action):
    """Raises when `model` holds quantized weights: `action` (save_pretrained, push_to_hub) writes PyTorch's
    float layout, and quantized integers written there would be wrong weights."""
    quantized = quantized_leaves(model)
    if quantized:
        path, mode = next(iter(quantized.items()))
        raise ConfigError(
            f"{action} writes float weights in PyTorch's layout, but {type(model).__name__} was quantized "
            f"({len(quantized)} layers, e.g. {path}: {mode}). Save the model before `quantize()` and quantize "
            "again after `from_pretrained`; or keep the quantized weights with Keras' "
            "`model.save_weights('model.weights.h5')` and `tfformers.export` for serving."
        )


def embedding_table(embedding):
    """(table [vocab, hidden], row scale [vocab] or None) of a Keras `Embedding`: its vectors are
    `table / scale[:, None]`, so a product with the table can be scaled back after it (the int8 table is read
    as stored: a quarter of the float bytes). Other quantized forms (int4 in groups, an adapter on top) give
    their float vectors through the layer's own lookup of every id."""
    mode = embedding.quantization_mode
    if mode is None:
        return embedding.embeddings, None
    if mode == "int8" and not embedding.lora_enabled:
        return embedding.embeddings, embedding.embeddings_scale
    return embedding(tf.range(embedding.input_dim)), None

