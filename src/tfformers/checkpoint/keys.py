"""The key rule: PyTorch state-dict keys <-> Keras variables, by walking the layer tree.

One rule maps every key. Layer attributes are named like the PyTorch modules, so walking the layer tree
yields the PyTorch key of each variable: `bert.encoder.layer.3.attention.self.query.weight` is attribute
`bert`, then `encoder`, list `layer` item 3, and so on down to a Keras leaf:

    keras.layers.Dense               kernel -> weight (transposed: Keras is [in, out], PyTorch [out, in]); bias
                                     (`layers.core.Conv1D`, GPT-2's, is stored [in, out]: not transposed)
    keras.layers.Conv2D              kernel -> weight (Keras [kh, kw, in, out], PyTorch [out, in, kh, kw]); bias
    keras.layers.LayerNormalization  gamma -> weight; beta -> bias
    keras.layers.Embedding           embeddings -> weight
    any other variable               its attribute name

An attribute with a trailing underscore stands for a PyTorch name that Keras reserves (`output_` is
`output`). `load_parameters` assigns a checkpoint's tensors (from any reader: safetensors, GGUF) by key and
reports what did not fit.
"""

import re
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from tfformers.errors import CheckpointError
from tfformers.layers.core import Conv1D

_CONV2D_TO_PYTORCH = (3, 2, 0, 1)  # Keras' [kh, kw, in, out] -> PyTorch's [out, in, kh, kw]


@dataclass(frozen=True)
class Parameter:
    variable: keras.Variable
    # False; True: reversed axes (a Dense kernel); or the permutation of Keras' axes into PyTorch's order
    transpose: object = False
    initializer: object = None  # the leaf's initializer, re-run for weights a checkpoint lacks

    @property
    def _axes(self):
        return pytorch_axes(self.transpose, len(self.variable.shape))

    @property
    def shape(self):
        """The shape in PyTorch layout."""
        shape = tuple(self.variable.shape)
        return shape if self._axes is None else tuple(shape[axis] for axis in self._axes)

    def to_numpy(self):
        value = keras.ops.convert_to_numpy(self.variable)
        return value if self._axes is None else np.ascontiguousarray(np.transpose(value, self._axes))

    def assign(self, value):
        """Assigns `value` (array or tensor, PyTorch layout)."""
        self.variable.assign(keras_layout(value, self.transpose, self.variable.dtype))

    def initialize(self):
        """Draws fresh initial values (weights a checkpoint did not provide, built deferred)."""
        if self.initializer is not None:
            self.variable.assign(self.initializer(tuple(self.variable.shape), dtype=self.variable.dtype))


def pytorch_axes(transpose, rank):
    """The permutation from Keras' layout to PyTorch's (a `Parameter.transpose`), None when they are equal."""
    if transpose is True:
        return tuple(reversed(range(rank)))
    return transpose or None


def keras_layout(value, transpose, dtype):
    """`value` (PyTorch layout) as a tensor in Keras' layout and `dtype`."""
    value = tf.convert_to_tensor(value)
    axes = pytorch_axes(transpose, len(value.shape))
    if axes is not None:  # tf.transpose is multi-threaded: 2-3x faster than numpy's strided copy
        value = tf.transpose(value, np.argsort(axes))
    return tf.cast(value, dtype)


@dataclass(frozen=True)
class Slot:
    """One variable of a Keras leaf layer, as the key rule names it."""

    name: str  # PyTorch's: "weight", "bias"
    attribute: str  # the Keras variable's attribute: "kernel", "gamma", ...
    initializer: str  # the layer attribute holding its initializer: "kernel_initializer", ...
    transpose: object = False  # as `Parameter.transpose`


def leaf_slots(layer):
    """The variables of a Keras leaf layer, built or not (Dense, Conv2D, LayerNormalization, Embedding); None
    for any other layer."""
    if isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D)):
        if isinstance(layer, keras.layers.Conv2D):
            transpose = _CONV2D_TO_PYTORCH
        else:
            transpose = not isinstance(layer, Conv1D)  # GPT-2's Conv1D stores [in, out], as Keras does
        # `_kernel` is the stored variable: `kernel` adds the LoRA update when an adapter is enabled
        slots = [Slot("weight", "_kernel", "kernel_initializer", transpose)]
        if layer.use_bias:
            slots.append(Slot("bias", "bias", "bias_initializer"))
        return slots
    if isinstance(layer, keras.layers.LayerNormalization):
        slots = []
        if layer.scale:
            slots.append(Slot("weight", "gamma", "gamma_initializer"))
        if layer.center:
            slots.append(Slot("bias", "beta", "beta_initializer"))
        return slots
    if isinstance(layer, keras.layers.Embedding):
        return [Slot("weight", "embeddings", "embeddings_initializer")]
    return None


def children(layer, prefix=""):
    """(key, value) of each attribute of `layer` the key rule follows: a variable (its key), a layer (its
    key prefix, ending in "."), or each layer of a list of layers."""
    for attribute, value in vars(layer).items():
        if attribute.startswith("_"):
            continue
        name = prefix + attribute.rstrip("_")
        if isinstance(value, keras.Variable):
            yield name, value
        elif isinstance(value, keras.layers.Layer):
            yield name + ".", value
        elif isinstance(value, (list, tuple)) and value and isinstance(value[0], keras.layers.Layer):
            for index, item in enumerate(value):
                yield f"{name}.{index}.", item


def named_modules(layer, prefix=""):
    """(PyTorch module name, layer) for `layer` and every layer under it, parents first, as PyTorch's
    `named_modules()`; `prefix` is the name of `layer` itself ("" for the root)."""
    yield prefix, layer
    if leaf_slots(layer) is not None:
        return
    for key, value in children(layer, f"{prefix}." if prefix else ""):
        if isinstance(value, keras.layers.Layer):
            yield from named_modules(value, key.rstrip("."))


def named_parameters(layer, prefix=""):
    """{PyTorch key: Parameter} for every variable under `layer`, by the rule in the module docstring."""
    slots = leaf_slots(layer)
    if slots is not None:
        return {
            prefix + slot.name: Parameter(
                getattr(layer, slot.attribute), transpose=slot.transpose, initializer=getattr(layer, slot.initializer)
            )
            for slot in slots
        }
    params = {}
    for key, value in children(layer, prefix):
        if isinstance(value, keras.Variable):
            params[key] = Parameter(value)
        else:
            params.update(named_parameters(value, key))
    return params


# ---------------------------------------------------------------------------------------------- loading

_LEGACY_SUFFIXES = {".gamma": ".weight", ".beta": ".bias"}


def _modern_key(key):
    for old, new in _LEGACY_SUFFIXES.items():
        if key.endswith(old):
            return key[: -len(old)] + new
    return key


def read_tensor(reader, key):
    """The tensor `key` as a tf.Tensor: from the reader's `tensor` (safetensors: read without a copy through
    numpy), else its numpy `get` (h5, GGUF) converted."""
    if hasattr(reader, "tensor"):
        return reader.tensor(key)
    return tf.convert_to_tensor(reader.get(key))


def float_tensor(reader, key, dtype):
    """The tensor `key` for a weight of `dtype`, refused when integers or booleans are stored for a
    floating-point weight: casting them would load silently wrong values (a quantized or mislabelled
    tensor, not the weights)."""
    value = read_tensor(reader, key)
    if (value.dtype.is_integer or value.dtype.is_bool) and keras.backend.is_float_dtype(dtype):
        raise CheckpointError(
            f"Tensor {key!r} in {reader.file_of(key)} holds {value.dtype.name} values, but the model's weight is "
            f"{keras.backend.standardize_dtype(dtype)}: a floating-point weight cannot be loaded from integers "
            "or booleans. The file is not a float checkpoint of this model (quantized, or written wrongly); use "
            "the original float weights."
        )
    return value


def match_keys(model_keys, reader, base_model_prefix, tied_keys=None):
    """{model key: checkpoint key} for every tensor of `reader`. A base-model checkpoint's keys gain the
    `base_model_prefix` when the model's carry it and a head checkpoint's lose it when the model's do not;
    legacy `gamma`/`beta` names are PyTorch's `weight`/`bias`; a tied alias stands for its target when the
    checkpoint lacks the target, and an alias that is a weight of its own in the model (T5 v1.1's `lm_head`) is
    read from its target when the checkpoint was saved tied. Keys the model lacks map to themselves
    (unexpected, or a tied alias)."""
    checkpoint = {_modern_key(key): key for key in reader.keys()}
    prefix = base_model_prefix + "."
    model_has_prefix = any(key.startswith(prefix) for key in model_keys)
    checkpoint_has_prefix = any(key.startswith(prefix) for key in checkpoint)
    if model_has_prefix and not checkpoint_has_prefix:
        checkpoint = {
            (key if key in model_keys else prefix + key): original for key, original in checkpoint.items()
        }
    elif checkpoint_has_prefix and not model_has_prefix:
        checkpoint = {
            (key[len(prefix):] if key.startswith(prefix) else key): original
            for key, original in checkpoint.items()
        }
    for alias, target in (tied_keys or {}).items():
        if alias in checkpoint and target not in checkpoint:
            checkpoint[target] = checkpoint.pop(alias)
        elif alias in model_keys and target in checkpoint and alias not in checkpoint:
            checkpoint[alias] = checkpoint[target]  # a weight of its own here, tied where it was saved
    return checkpoint


@dataclass
class LoadingReport:
    """What loading a checkpoint did, in PyTorch key names (as transformers reports it)."""

    missing_keys: list = field(default_factory=list)
    unexpected_keys: list = field(default_factory=list)
    mismatched_keys: list = field(default_factory=list)  # (key, checkpoint shape, model shape)

    def as_dict(self):
        return {
            "missing_keys": self.missing_keys,
            "unexpected_keys": self.unexpected_keys,
            "mismatched_keys": self.mismatched_keys,
        }


def load_parameters(
    params,
    reader,
    *,
    base_model_prefix,
    tied_keys=None,
    ignored_unexpected=(),
    ignore_mismatched_sizes=False,
    preloaded=None,
):
    """Assigns checkpoint tensors to `params` ({PyTorch key: Parameter}) and reports what did not fit.

    A base-model checkpoint (no `bert.` prefix) loads into a head model and a head checkpoint into a base
    model: the prefix is added or stripped, and head tensors a base model lacks are reported unused.
    `tied_keys` maps an alias to the key it is tied to (e.g. an LM decoder to the word embeddings): an
    alias is read in place of its target when the checkpoint lacks the target, and is otherwise consumed
    silently. Keys matching `ignored_unexpected` (regexes) are buffers PyTorch saved. `preloaded`
    ({model key: checkpoint key}, `building.build_from_checkpoint`'s result) names variables created with
    their tensor's values already: they are not read again.
    """
    checkpoint = match_keys(params, reader, base_model_prefix, tied_keys)
    tied_keys = tied_keys or {}
    preloaded = preloaded or {}

    report = LoadingReport()
    for key, original in checkpoint.items():
        param = params.get(key)
        if param is None:
            if key not in tied_keys and not any(re.search(p, key) for p in ignored_unexpected):
                report.unexpected_keys.append(original)
            continue
        if preloaded.get(key) == original:  # the variable was created with this tensor's values
            continue
        shape = reader.shape(original)
        if shape != param.shape:
            report.mismatched_keys.append((key, shape, param.shape))
            continue
        param.assign(float_tensor(reader, original, param.variable.dtype))
    if report.mismatched_keys and not ignore_mismatched_sizes:
        conflicts = "; ".join(
            f"{key!r} is {list(old)} in {reader.file_of(checkpoint[key])} but the model expects {list(new)}"
            for key, old, new in report.mismatched_keys
        )
        raise CheckpointError(
            f"The checkpoint does not fit the model built from its config: {conflicts}. Check that "
            "config.json matches the weights, or pass ignore_mismatched_sizes=True to re-initialize these "
            "tensors (e.g. a classifier with a different num_labels)."
        )
    mismatched = {key for key, _, _ in report.mismatched_keys}
    report.missing_keys = [key for key in params if key not in checkpoint or key in mismatched]
    return report


