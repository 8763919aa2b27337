"""Changing the vocabulary size of a built model: the word embeddings and the weights that follow them.

Keras variables have a fixed shape, so a resized weight is a new layer (an `Embedding`, a `Dense`) or a new
variable put where the old one was, in the layer tree (which gives the PyTorch keys) and in Keras' tracking
(which gives `trainable_variables`). Rows that exist in both sizes keep their values; new rows are drawn by
the weight's own initializer (biases: zeros), as transformers 4.x TensorFlow did.
"""

import keras
import numpy as np

from tfformers.errors import InputError
from tfformers.layers.core import Linear


def _owner_of(root, target):
    """(layer, attribute) under `root` whose attribute is `target` (a layer or a variable), by the walk that
    names parameters; None when absent."""
    for attribute, value in vars(root).items():
        if attribute.startswith("_"):
            continue
        if value is target:
            return root, attribute
        children = value if isinstance(value, (list, tuple)) else (value,)
        for child in children:
            if isinstance(child, keras.layers.Layer):
                found = _owner_of(child, target)
                if found is not None:
                    return found
    return None


def replace_layer(root, old, new):
    """Puts layer `new` where `old` is under `root` (same attribute, same place in Keras' tracking)."""
    found = _owner_of(root, old)
    if found is None:
        raise ValueError(f"{old.name!r} is not an attribute of any layer under {root.name!r}.")
    owner, attribute = found
    owner._tracker.replace_tracked_value("layers", old, new)
    setattr(owner, attribute, new)


def replace_variable(owner, attribute, value):
    """A new variable holding `value` in place of `owner.<attribute>` (same name, trainability, dtype)."""
    old = getattr(owner, attribute)
    new = owner.add_weight(shape=value.shape, initializer="zeros", dtype=old.dtype, trainable=old.trainable,
                           name=old.name)
    new.assign(value.astype(new.dtype))
    owner._untrack_variable(old)
    setattr(owner, attribute, new)


def resized_rows(value, num_rows, new_rows):
    """`value` [rows, ...] with `num_rows` rows: the first rows kept, the rest from `new_rows(shape)`."""
    value = np.asarray(value)
    kept = min(num_rows, value.shape[0])
    added = new_rows((num_rows - kept, *value.shape[1:])) if num_rows > kept else value[:0]
    return np.concatenate([value[:kept], np.asarray(added, value.dtype)])


def _drawn(initializer, dtype):
    return lambda shape: keras.ops.convert_to_numpy(initializer(shape, dtype=dtype))


def check_num_tokens(num_tokens):
    if isinstance(num_tokens, bool) or not isinstance(num_tokens, (int, np.integer)) or num_tokens < 1:
        raise InputError(f"new_num_tokens must be a positive integer, got {num_tokens!r}.")
    return int(num_tokens)


def resized_embedding(embedding, num_tokens):
    """A built `keras.layers.Embedding` with `num_tokens` rows: the old rows, then new ones drawn by its
    initializer."""
    old = keras.ops.convert_to_numpy(embedding.embeddings)
    new = keras.layers.Embedding(num_tokens, old.shape[1], embeddings_initializer=embedding.embeddings_initializer,
                                 dtype=embedding.dtype_policy, name=embedding.name)
    new.build()
    initial = _drawn(embedding.embeddings_initializer, embedding.embeddings.dtype)
    new.embeddings.assign(resized_rows(old, num_tokens, initial))
    return new


def resized_dense(dense, units):
    """A built `Linear` with `units` outputs (PyTorch rows): the old kernel columns and biases,
    then new ones drawn by its initializers."""
    kernel = keras.ops.convert_to_numpy(dense.kernel)  # [in, out]
    new = Linear(units, use_bias=dense.use_bias, kernel_initializer=dense.kernel_initializer,
                 bias_initializer=dense.bias_initializer, activation=dense.activation,
                 dtype=dense.dtype_policy, name=dense.name)
    new.build((None, kernel.shape[0]))
    new_columns = _drawn(dense.kernel_initializer, dense.kernel.dtype)
    new.kernel.assign(resized_rows(kernel.T, units, lambda shape: new_columns(shape[::-1]).T).T)
    if dense.use_bias:
        new.bias.assign(resized_rows(keras.ops.convert_to_numpy(dense.bias), units, np.zeros))
    return new
