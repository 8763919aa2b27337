"""Building a model's Keras leaves from a checkpoint: each variable is created holding its tensor.

A Keras leaf (Dense, Conv2D, LayerNormalization, Embedding) creates its variables in `build(input_shape)`.
Its input size is the size of its checkpoint weight (a Dense weight [out, in] gives `in`), so the leaves
are built from the checkpoint's shapes, without a forward pass, each variable initialized with its tensor
in Keras' layout: no zeros written first, no assignment after, at most one tensor in flight. The sizes a
leaf takes from its configuration (a Dense's units, an Embedding's table) must agree with the checkpoint;
when one does not, nothing is built here and `load_parameters` reports the mismatch as it does for any
model. Leaves the checkpoint lacks (a new head) stay unbuilt for the caller's forward pass, except
Embeddings, whose size is their configuration. Leaves are built inside the Keras name scopes of their
ancestors, so variable paths are those a forward pass gives.
"""

import contextlib

import keras
import tensorflow as tf
from keras.layers import Conv2D, Dense, Embedding, LayerNormalization

from tfformers.checkpoint.keys import children, float_tensor, keras_layout, leaf_slots, match_keys
from tfformers.errors import CheckpointError
from tfformers.layers.core import Conv1D


def _dense_input(layer, shapes):
    weight = shapes["weight"]
    if len(weight) != 2:
        return None
    features, units = weight if isinstance(layer, Conv1D) else reversed(weight)
    if units != layer.units or shapes.get("bias", (units,)) != (units,):
        return None
    return (None, features)


def _conv2d_input(layer, shapes):
    weight = shapes["weight"]  # PyTorch's [out, in, kh, kw]
    if len(weight) != 4 or layer.groups != 1:
        return None
    filters, channels, *kernel_size = weight
    if filters != layer.filters or tuple(kernel_size) != tuple(layer.kernel_size):
        return None
    if shapes.get("bias", (filters,)) != (filters,):
        return None
    return (None, None, None, channels) if layer.data_format == "channels_last" else (None, channels, None, None)


def _layer_norm_input(layer, shapes):
    if layer.axis not in (-1, [-1]) or len(set(shapes.values())) != 1:
        return None
    (size,) = set(shapes.values())
    return (None, *size) if len(size) == 1 else None


def _embedding_input(layer, shapes):
    if shapes.get("weight", (layer.input_dim, layer.output_dim)) != (layer.input_dim, layer.output_dim):
        return None
    return (None, None)  # ids [batch, seq]; the table's size is the configuration's


# (leaf class, the slots that size it, its input shape from its checkpoint shapes or None when they disagree
# with its configuration); Conv1D is a Dense. An Embedding is sized by its configuration alone.
_SIZERS = (
    (Dense, ("weight",), _dense_input),
    (Conv2D, ("weight",), _conv2d_input),
    (LayerNormalization, ("weight", "bias"), _layer_norm_input),
    (Embedding, (), _embedding_input),
)


def _bare_handle_name(next_creator, **kwargs):
    with tf.name_scope(""):  # eager: back to the root scope
        return next_creator(**kwargs)


@contextlib.contextmanager
def bare_variable_handle_names():
    """Inside, a TensorFlow variable's handle is named by the variable's own name (`kernel`, `bias`), not its
    full scope (`tf_bert_model/.../dense_139/kernel`).

    TensorFlow runs each eager op as a function, instantiated and optimized (about 0.5-1 ms) once per
    distinct set of attributes, and a variable's handle op carries its name as one: with scoped names,
    which Keras makes unique per layer, every variable of every model instantiates a function of its own,
    most of the time of creating it. With bare names the handle ops of all kernels share one function.
    Keras' variable names and paths, which saving, tracking and optimizers use, are unchanged; only the
    TensorFlow variable's `name` is bare."""
    with tf.variable_creator_scope(_bare_handle_name):
        yield


class _Disagreement(Exception):
    """A checkpoint tensor's shape disagrees with its leaf's configuration."""


class _CheckpointValue:
    """A Keras initializer giving one checkpoint tensor, in Keras' layout and the variable's dtype."""

    def __init__(self, reader, key, transpose):
        self.reader, self.key, self.transpose = reader, key, transpose

    def __call__(self, shape, dtype=None):
        value = keras_layout(float_tensor(self.reader, self.key, dtype), self.transpose, dtype)
        if tuple(value.shape) != tuple(shape):
            raise CheckpointError(
                f"Tensor {self.key!r} of {self.reader.file_of(self.key)} became shape {list(value.shape)} in "
                f"Keras' layout, but the layer built from it asks for {list(shape)}."
            )
        return value


def _plan(layer, keys, checkpoint, reader):
    """(input shape, {slot: checkpoint key}) to build `layer` from the checkpoint, or None to leave it to
    the forward pass. `keys` is {slot: model key}. Raises _Disagreement."""
    found = {slot: checkpoint[key] for slot, key in keys.items() if key in checkpoint}
    _, sizing, input_shape = next(sizer for sizer in _SIZERS if isinstance(layer, sizer[0]))
    if sizing and not any(slot.name in sizing for slot in found):
        return None  # nothing in the checkpoint sizes its input: a new head, built by the forward pass
    shape = input_shape(layer, {slot.name: reader.shape(key) for slot, key in found.items()})
    if shape is None:
        raise _Disagreement
    return shape, found


def _build(layer, shape, found, reader):
    """Builds `layer` for input `shape`, the variables of the `found` slots holding their tensors."""
    originals = {slot.initializer: getattr(layer, slot.initializer) for slot in found}
    try:
        for slot, key in found.items():
            setattr(layer, slot.initializer, _CheckpointValue(reader, key, slot.transpose))
        layer.build(shape)
    finally:
        for attribute, initializer in originals.items():
            setattr(layer, attribute, initializer)


def _unbuilt_leaves(layer, prefix="", ancestors=()):
    """(key prefix, leaf, its ancestors) for every unbuilt leaf under `layer` (`layer` included)."""
    if leaf_slots(layer) is not None:
        if not layer.built:
            yield prefix, layer, ancestors
        return
    for key, value in children(layer, prefix):
        if isinstance(value, keras.layers.Layer):
            yield from _unbuilt_leaves(value, key, (*ancestors, layer))


def _variable_keys(layer, prefix=""):
    """The layer-tree keys of every variable under `layer`, built or not (a leaf's from its slots)."""
    slots = leaf_slots(layer)
    if slots is not None:
        return [prefix + slot.name for slot in slots]
    keys = []
    for key, value in children(layer, prefix):
        keys.extend([key] if isinstance(value, keras.Variable) else _variable_keys(value, key))
    return keys


def build_from_checkpoint(model, reader, *, checkpoint_key, base_model_prefix, tied_keys=None):
    """Builds the unbuilt leaves of `model` that the checkpoint sizes, their variables holding its tensors.

    `checkpoint_key` maps a layer-tree key to the model's checkpoint key (a base model drops its prefix).
    Returns {model key: checkpoint key} of the variables created holding their tensor, for
    `load_parameters(preloaded=...)`; empty, with nothing built, when a tensor's shape disagrees with the
    configuration."""
    model_keys = {checkpoint_key(key) for key in _variable_keys(model)}
    checkpoint = match_keys(model_keys, reader, base_model_prefix, tied_keys)
    plans = []
    for prefix, leaf, ancestors in _unbuilt_leaves(model):
        keys = {slot: checkpoint_key(prefix + slot.name) for slot in leaf_slots(leaf)}
        try:
            plan = _plan(leaf, keys, checkpoint, reader)
        except _Disagreement:
            return {}
        if plan is not None:
            plans.append((leaf, ancestors, keys, *plan))
    preloaded = {}
    for leaf, ancestors, keys, shape, found in plans:
        with contextlib.ExitStack() as scopes:
            for ancestor in ancestors:
                scopes.enter_context(keras.name_scope(ancestor.name, caller=ancestor))
            _build(leaf, shape, found, reader)
        preloaded.update({keys[slot]: key for slot, key in found.items()})
    return preloaded
