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
        """The permutation from Keras' layout to PyTorch's, None when they are equal."""
        if self.transpose is True:
            return tuple(reversed(range(len(self.variable.shape))))
        return self.transpose or None

    @property
    def shape(self):
        """The shape in PyTorch layout."""
        shape = tuple(self.variable.shape)
        return shape if self._axes is None else tuple(shape[axis] for axis in self._axes)

    def to_numpy(self):
        value = keras.ops.convert_to_numpy(self.variable)
        return value if self._axes is None else np.ascontiguousarray(np.transpose(value, self._axes))

    def assign(self, array):
        value = tf.convert_to_tensor(array)
        if self._axes is not None:  # tf.transpose is multi-threaded: 2-3x faster than numpy's strided copy
            value = tf.transpose(value, np.argsort(self._axes))
        self.variable.assign(tf.cast(value, self.variable.dtype))

    def initialize(self):
        """Draws fresh initial values (weights a checkpoint did not provide, built deferred)."""
        if self.initializer is not None:
            self.variable.assign(self.initializer(tuple(self.variable.shape), dtype=self.variable.dtype))


def _leaf_parameters(layer):
    if isinstance(layer, keras.layers.Dense):
        transpose = not isinstance(layer, Conv1D)  # GPT-2's Conv1D stores [in, out], as Keras does
        # `_kernel` is the stored variable: `kernel` adds the LoRA update when an adapter is enabled
        params = {"weight": Parameter(layer._kernel, transpose=transpose, initializer=layer.kernel_initializer)}
        if layer.use_bias:
            params["bias"] = Parameter(layer.bias, initializer=layer.bias_initializer)
        return params
    if isinstance(layer, keras.layers.Conv2D):
        params = {"weight": Parameter(layer.kernel, transpose=_CONV2D_TO_PYTORCH, initializer=layer.kernel_initializer)}
        if layer.use_bias:
            params["bias"] = Parameter(layer.bias, initializer=layer.bias_initializer)
        return params
    if isinstance(layer, keras.layers.LayerNormalization):
        params = {}
        if layer.scale:
            params["weight"] = Parameter(layer.gamma, initializer=layer.gamma_initializer)
        if layer.center:
            params["bias"] = Parameter(layer.beta, initializer=layer.beta_initializer)
        return params
    if isinstance(layer, keras.layers.Embedding):
        return {"weight": Parameter(layer.embeddings, initializer=layer.embeddings_initializer)}
    return None


def named_modules(layer, prefix=""):
    """(PyTorch module name, layer) for `layer` and every layer under it, parents first, as PyTorch's
    `named_modules()`; `prefix` is the name of `layer` itself ("" for the root)."""
    yield prefix, layer
    if _leaf_parameters(layer) is not None:
        return
    for attribute, value in vars(layer).items():
        if attribute.startswith("_"):
            continue
        name = _child_name(prefix, attribute.rstrip("_"))
        if isinstance(value, keras.layers.Layer):
            yield from named_modules(value, name)
        elif isinstance(value, (list, tuple)) and value and isinstance(value[0], keras.layers.Layer):
            for index, item in enumerate(value):
                yield from named_modules(item, f"{name}.{index}")


def _child_name(prefix, name):
    return f"{prefix}.{name}" if prefix else name


def named_parameters(layer, prefix=""):
    """{PyTorch key: Parameter} for every variable under `layer`, by the rule in the module docstring."""
    params = {}
    for module_name, module in named_modules(layer, prefix.rstrip(".")):
        leaf = _leaf_parameters(module)
        if leaf is not None:
            params.update({_child_name(module_name, name): param for name, param in leaf.items()})
            continue
        for attribute, value in vars(module).items():
            if isinstance(value, keras.Variable) and not attribute.startswith("_"):
                params[_child_name(module_name, attribute.rstrip("_"))] = Parameter(value)
    return params


# ---------------------------------------------------------------------------------------------- loading

_LEGACY_SUFFIXES = {".gamma": ".weight", ".beta": ".bias"}


def _modern_key(key):
    for old, new in _LEGACY_SUFFIXES.items():
        if key.endswith(old):
            return key[: -len(old)] + new
    return key


def _float_values(reader, key, param):
    """The tensor `key`, refused when integers or booleans are stored for a floating-point weight: casting
    them would load silently wrong values (a quantized or mislabelled tensor, not the weights)."""
    array = reader.get(key)
    if array.dtype.kind in "biu" and param.variable.dtype.startswith(("float", "bfloat")):
        raise CheckpointError(
            f"Tensor {key!r} in {reader.file_of(key)} holds {array.dtype} values, but the model's weight is "
            f"{param.variable.dtype}: a floating-point weight cannot be loaded from integers or booleans. The "
            "file is not a float checkpoint of this model (quantized, or written wrongly); use the original "
            "float weights."
        )
    return array


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
):
    """Assigns checkpoint tensors to `params` ({PyTorch key: Parameter}) and reports what did not fit.

    A base-model checkpoint (no `bert.` prefix) loads into a head model and a head checkpoint into a base
    model: the prefix is added or stripped, and head tensors a base model lacks are reported unused.
    `tied_keys` maps an alias to the key it is tied to (e.g. an LM decoder to the word embeddings): an
    alias is read in place of its target when the checkpoint lacks the target, and is otherwise consumed
    silently; an alias that is a weight of its own in the model (T5 v1.1's `lm_head`) is read from its
    target when the checkpoint was saved tied. Keys matching `ignored_unexpected` (regexes) are buffers PyTorch saved.
    """
    tied_keys = tied_keys or {}
    checkpoint = {_modern_key(key): key for key in reader.keys()}
    prefix = base_model_prefix + "."
    model_has_prefix = any(key.startswith(prefix) for key in params)
    checkpoint_has_prefix = any(key.startswith(prefix) for key in checkpoint)
    if model_has_prefix and not checkpoint_has_prefix:
        checkpoint = {
            (key if key in params else prefix + key): original for key, original in checkpoint.items()
        }
    elif checkpoint_has_prefix and not model_has_prefix:
        checkpoint = {
            (key[len(prefix):] if key.startswith(prefix) else key): original
            for key, original in checkpoint.items()
        }

    for alias, target in tied_keys.items():
        if alias in checkpoint and target not in checkpoint:
            checkpoint[target] = checkpoint.pop(alias)
        elif alias in params and target in checkpoint and alias not in checkpoint:
            checkpoint[alias] = checkpoint[target]  # a weight of its own here, tied where it was saved

    report = LoadingReport()
    for key, original in checkpoint.items():
        param = params.get(key)
        if param is None:
            if key not in tied_keys and not any(re.search(p, key) for p in ignored_unexpected):
                report.unexpected_keys.append(original)
            continue
        shape = reader.shape(original)
        if shape != param.shape:
            report.mismatched_keys.append((key, shape, param.shape))
            continue
        param.assign(_float_values(reader, original, param))
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


