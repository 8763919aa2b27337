"""Weights between PyTorch transformers' safetensors checkpoints and Keras variables.

One rule maps every key. Layer attributes are named like the PyTorch modules, so walking the layer tree
yields the PyTorch key of each variable: `bert.encoder.layer.3.attention.self.query.weight` is attribute
`bert`, then `encoder`, list `layer` item 3, and so on down to a Keras leaf:

    keras.layers.Dense               kernel -> weight (transposed: Keras is [in, out], PyTorch [out, in]); bias
    keras.layers.LayerNormalization  gamma -> weight; beta -> bias
    keras.layers.Embedding           embeddings -> weight
    any other variable               its attribute name

An attribute with a trailing underscore stands for a PyTorch name that Keras reserves (`output_` is
`output`). Checkpoint tensors are read lazily with `safe_open`, so shards are never all in memory.
"""

import json
import os
import re
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from tfformers.errors import CheckpointError

SAFE_WEIGHTS_NAME = "model.safetensors"
SAFE_WEIGHTS_INDEX_NAME = "model.safetensors.index.json"


@dataclass(frozen=True)
class Parameter:
    variable: keras.Variable
    transpose: bool = False
    initializer: object = None  # the leaf's initializer, re-run for weights a checkpoint lacks

    @property
    def shape(self):
        """The shape in PyTorch layout."""
        shape = tuple(self.variable.shape)
        return shape[::-1] if self.transpose else shape

    def to_numpy(self):
        value = keras.ops.convert_to_numpy(self.variable)
        return np.ascontiguousarray(value.T) if self.transpose else value

    def assign(self, array):
        value = tf.convert_to_tensor(array)
        if self.transpose:
            value = tf.transpose(value)  # multi-threaded: 2-3x faster than numpy's strided copy
        self.variable.assign(tf.cast(value, self.variable.dtype))

    def initialize(self):
        """Draws fresh initial values (weights a checkpoint did not provide, built deferred)."""
        if self.initializer is not None:
            self.variable.assign(self.initializer(tuple(self.variable.shape), dtype=self.variable.dtype))


def _leaf_parameters(layer):
    if isinstance(layer, keras.layers.Dense):
        params = {"weight": Parameter(layer.kernel, transpose=True, initializer=layer.kernel_initializer)}
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


def named_parameters(layer, prefix=""):
    """{PyTorch key: Parameter} for every variable under `layer`, by the rule in the module docstring."""
    leaf = _leaf_parameters(layer)
    if leaf is not None:
        return {prefix + name: param for name, param in leaf.items()}
    params = {}
    for attribute, value in vars(layer).items():
        if attribute.startswith("_"):
            continue
        name = prefix + attribute.rstrip("_")
        if isinstance(value, keras.Variable):
            params[name] = Parameter(value)
        elif isinstance(value, keras.layers.Layer):
            params.update(named_parameters(value, name + "."))
        elif isinstance(value, (list, tuple)) and value and isinstance(value[0], keras.layers.Layer):
            for index, item in enumerate(value):
                params.update(named_parameters(item, f"{name}.{index}."))
    return params


# ---------------------------------------------------------------------------------------------- reading


class CheckpointReader:
    """Lazy access to the tensors of one or more safetensors files, by key."""

    def __init__(self, files):
        self._files = {}
        self._key_to_file = {}
        for path in files:
            try:
                handle = safe_open(path, framework="np")
            except (SafetensorError, OSError, ValueError) as error:
                raise CheckpointError(
                    f"Cannot read the safetensors file {path}: {error}. The file is truncated or corrupt; "
                    "delete it (or its Hub cache entry) and download or save it again."
                ) from None
            self._files[path] = handle
            for key in handle.keys():
                self._key_to_file[key] = path
        self._size_checked = set()

    def keys(self):
        return self._key_to_file.keys()

    def file_of(self, key):
        return self._key_to_file[key]

    def shape(self, key):
        return tuple(self._files[self._key_to_file[key]].get_slice(key).get_shape())

    def get(self, key):
        path = self._key_to_file[key]
        try:
            return self._files[path].get_tensor(key)
        except (SafetensorError, OSError, ValueError) as error:
            raise CheckpointError(
                f"Cannot read tensor {key!r} from {path}: {error}. The file is corrupt; download or save "
                "it again."
            ) from None


def checkpoint_files(resolve, source):
    """Weight files of a checkpoint. `resolve(filename, required)` returns a local path or None.

    Prefers `model.safetensors`, then a sharded index. PyTorch pickles are never loaded.
    """
    single = resolve(SAFE_WEIGHTS_NAME, required=False)
    if single:
        return [single]
    index_path = resolve(SAFE_WEIGHTS_INDEX_NAME, required=False)
    if index_path:
        try:
            with open(index_path) as handle:
                weight_map = json.load(handle)["weight_map"]
        except (OSError, ValueError, KeyError) as error:
            raise CheckpointError(
                f"The shard index {index_path} is not valid JSON with a 'weight_map': {error}."
            ) from None
        files = []
        for shard in dict.fromkeys(weight_map.values()):
            path = resolve(shard, required=False)
            if path is None:
                raise CheckpointError(
                    f"Shard {shard!r} is listed in {SAFE_WEIGHTS_INDEX_NAME} of {source} but is missing. "
                    "The checkpoint is incomplete: upload or copy every shard the index names."
                )
            files.append(path)
        return files
    for unsafe in ("pytorch_model.bin", "pytorch_model.bin.index.json", "tf_model.h5"):
        if resolve(unsafe, required=False):
            raise CheckpointError(
                f"{source} has only {unsafe}, which tfformers does not load: PyTorch pickles can execute "
                "arbitrary code when unpickled. Convert it to safetensors where you trust the file "
                "(e.g. load it with PyTorch transformers and call save_pretrained(..., "
                "safe_serialization=True)), or use a revision that has model.safetensors."
            )
    raise CheckpointError(
        f"No weights found in {source}: expected {SAFE_WEIGHTS_NAME} or {SAFE_WEIGHTS_INDEX_NAME}."
    )


# ---------------------------------------------------------------------------------------------- loading

_LEGACY_SUFFIXES = {".gamma": ".weight", ".beta": ".bias"}


def _modern_key(key):
    for old, new in _LEGACY_SUFFIXES.items():
        if key.endswith(old):
            return key[: -len(old)] + new
    return key


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
    silently. Keys matching `ignored_unexpected` (regexes) are buffers PyTorch saved.
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
        param.assign(reader.get(original))
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


# ---------------------------------------------------------------------------------------------- writing

_SIZE_UNITS = {"KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}


def parse_size(size):
    """`"5GB"`, `"200MB"`, `"10MiB"` or a byte count -> bytes."""
    if isinstance(size, int):
        return size
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]I?B)\s*", str(size).upper())
    if not match:
        raise ValueError(f"max_shard_size={size!r} is not a size; use bytes or e.g. '5GB', '500MB'.")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2)])


def write_safetensors(state, directory, max_shard_size):
    """Writes `state` ({key: array}) into `directory` as one file, or shards plus an index above
    `max_shard_size`. Returns the written file names."""
    limit = parse_size(max_shard_size)
    shards, current, current_size = [], {}, 0
    for key, array in state.items():
        if current and current_size + array.nbytes > limit:
            shards.append(current)
            current, current_size = {}, 0
        current[key] = array
        current_size += array.nbytes
    shards.append(current)

    metadata = {"format": "pt"}
    if len(shards) == 1:
        save_file(shards[0], os.path.join(directory, SAFE_WEIGHTS_NAME), metadata=metadata)
        return [SAFE_WEIGHTS_NAME]
    names, weight_map = [], {}
    for number, shard in enumerate(shards, start=1):
        name = f"model-{number:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, os.path.join(directory, name), metadata=metadata)
        names.append(name)
        weight_map.update(dict.fromkeys(shard, name))
    index = {"metadata": {"total_size": sum(a.nbytes for a in state.values())}, "weight_map": weight_map}
    with open(os.path.join(directory, SAFE_WEIGHTS_INDEX_NAME), "w") as handle:
        json.dump(index, handle, indent=2, sort_keys=True)
    return names + [SAFE_WEIGHTS_INDEX_NAME]
