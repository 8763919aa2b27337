"""transformers 4.x TensorFlow checkpoints (`tf_model.h5`, or shards and `tf_model.h5.index.json`), read
with h5py - no pickle, no TensorFlow model - as a PyTorch-named state dict.

The layout, as transformers 4.46 writes it (`modeling_tf_utils.py`):

- `tf_model.h5` is tf.keras' `save_weights` file: the root attribute `layer_names` lists the model's
  top-level layers (`bert`, `classifier`, `dropout_37`); each has a group whose attribute `weight_names`
  lists its variables' full names, and the dataset of each name sits at that path inside the group
  (`bert/tf_bert_for_sequence_classification/bert/encoder/layer_._0/attention/self/query/kernel:0`). A
  layer that refers to another's variables lists them again (DistilBERT's `vocab_projector` repeats the
  word embeddings); such copies are read once. A long attribute is split into `layer_names0`, `1`, ...
- A sharded save writes `tf_model-0000N-of-0000M.h5`, each with `layer_names` listing its datasets by
  name without the model's own scope (`bert/encoder/...`), and `tf_model.h5.index.json`, whose
  `weight_map` names the shards.

Names map to PyTorch keys as transformers' `convert_tf_weight_name_to_pt_weight_name` maps them (PyTorch
transformers' `from_pretrained(..., from_tf=True)`): drop `:0` and the model scope, `$1___$2` -> `$2`
(BERT's `mlm___cls` is `cls`), `_._` -> `.` (list items: `layer_._0` is `layer.0`), `/` -> `.`, and the
last part `kernel` -> `weight` (transposed: TF [in, out], PyTorch [out, in]), `embeddings` -> `weight`,
`gamma` -> `weight`, `beta` -> `bias`; a [1, n] bias (GPT-2's Conv1D) is PyTorch's [n], as 4.x reshaped
it. A name that is already PyTorch's (`word_embeddings/weight`, GPT-2's
`c_attn/weight`, the MLM heads' `predictions/bias`, `lm_head/bias`, `vocab_projector/bias`) keeps it.
The result is a reader with the `SafetensorsReader` interface, so `keys.load_parameters` assigns it and
reports missing and unexpected keys as for any checkpoint. `convert_folder` (`tfformers convert`) writes
these tensors as safetensors, without building a model: any architecture 4.x saved converts.
"""

import re

import h5py
import numpy as np

from tfformers.errors import CheckpointError

__all__ = ["TF2_WEIGHTS_INDEX_NAME", "TF2_WEIGHTS_NAME", "H5Reader", "convert_folder", "is_h5_file", "pytorch_key"]

TF2_WEIGHTS_NAME = "tf_model.h5"
TF2_WEIGHTS_INDEX_NAME = "tf_model.h5.index.json"
_KERNELS = ("kernel", "pointwise_kernel", "depthwise_kernel")


def is_h5_file(path):
    return str(path).endswith(".h5")


def pytorch_key(tf_name, shape):
    """(PyTorch state-dict key, layout change) of a 4.x TF variable name with its model scope
    (`tf_bert_model/bert/encoder/layer_._0/output/dense/kernel:0`) and its shape, as transformers 4.x
    converts it. The layout change is True (transpose a kernel), "squeeze" (a [1, n] bias, which 4.x
    reshaped to PyTorch's [n]) or False."""
    name = tf_name.replace(":0", "")
    name = re.sub(r"/[^/]*___([^/]*)/", r"/\1/", name)  # '$1___$2' -> '$2'
    name = name.replace("_._", "/")  # list items
    name = re.sub(r"//+", "/", name)
    parts = name.split("/")
    if len(parts) > 1:
        parts = parts[1:]  # the model's own scope
    last = parts[-1]
    if last in _KERNELS and len(shape) > 2:
        raise CheckpointError(
            f"Variable {tf_name!r} is a {len(shape)}-D convolution kernel; tfformers models have none, so this "
            "checkpoint is of an architecture tfformers does not load."
        )
    transpose = last in _KERNELS
    if last == "bias" and len(shape) == 2 and shape[0] == 1:
        transpose = "squeeze"  # 4.x TF GPT-2's Conv1D bias is [1, n], PyTorch's [n]
    if last in ("kernel", "embeddings", "gamma"):
        parts[-1] = "weight"
    elif last == "beta":
        parts[-1] = "bias"
    elif last in ("pointwise_kernel", "depthwise_kernel"):
        parts[-1] = last.replace("_kernel", ".weight")
    return ".".join(parts), transpose


def _pytorch_shape(shape, change):
    if change == "squeeze":
        return shape[1:]
    return shape[::-1] if change else shape


def _attribute_list(group, name):
    """An attribute that Keras may have split into `name0`, `name1`, ... (HDF5's 64 KB header limit)."""
    if name in group.attrs:
        values = list(group.attrs[name])
    else:
        values, chunk = [], 0
        while f"{name}{chunk}" in group.attrs:
            values.extend(group.attrs[f"{name}{chunk}"])
            chunk += 1
    return [value.decode("utf8") if isinstance(value, bytes) else str(value) for value in values]


def _unreadable(path, error):
    detail = f"{error}"
    try:
        with open(path, "rb") as handle:
            if handle.read(7) == b"version":
                detail = "it is a Git LFS pointer, not the weights (the repository was cloned without git-lfs)"
    except OSError:
        pass
    return CheckpointError(
        f"Cannot read the transformers 4.x TensorFlow weights file {path}: {detail}. The file is truncated or "
        "corrupt; download or copy it again (with `git lfs pull` for a cloned repository)."
    )


class H5Reader:
    """Lazy access to the tensors of `tf_model.h5` or its shards, by PyTorch key, in PyTorch layout."""

    def __init__(self, files):
        self._files = {}
        self._entries = {}  # PyTorch key -> (file, dataset path, transpose)
        sharded = len(files) > 1 or re.search(r"-\d{5}-of-\d{5}\.h5$", str(files[0])) is not None
        for path in files:
            path = str(path)
            try:
                handle = h5py.File(path, "r")
                self._files[path] = handle
                for dataset, tf_name in self._datasets(handle, path, sharded):
                    key, transpose = pytorch_key(tf_name, handle[dataset].shape)
                    self._entries.setdefault(key, (path, dataset, transpose))
            except CheckpointError:
                self.close()
                raise
            except (OSError, KeyError, ValueError, RuntimeError) as error:
                self.close()
                raise _unreadable(path, error) from None

    @staticmethod
    def _datasets(handle, path, sharded):
        """(dataset path in the file, TF variable name with the model scope) of every weight in a file."""
        layer_names = _attribute_list(handle, "layer_names")
        if not layer_names:
            raise CheckpointError(
                f"{path} has no 'layer_names' attribute: it is not a weights file written by transformers 4.x "
                "TensorFlow's save_pretrained (a Keras 3 `.weights.h5` or a whole-model `.h5` is not one)."
            )
        if sharded:
            for name in layer_names:
                # 4.x stripped the model scope from shard names unless the name holds "model." or no "/"
                full = name if ("model." in name or "/" not in name) else "scope/" + name
                yield name, full
            return
        for layer in layer_names:
            group = handle[layer]
            for name in _attribute_list(group, "weight_names"):
                yield f"{layer}/{name}", name

    def close(self):
        for handle in self._files.values():
            handle.close()
        self._files = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def keys(self):
        return self._entries.keys()

    def file_of(self, key):
        return self._entries[key][0]

    def shape(self, key):
        path, dataset, transpose = self._entries[key]
        return _pytorch_shape(tuple(self._files[path][dataset].shape), transpose)

    def get(self, key):
        path, dataset, transpose = self._entries[key]
        try:
            array = self._files[path][dataset][()]
        except (OSError, KeyError, ValueError, RuntimeError) as error:
            raise CheckpointError(
                f"Cannot read tensor {key!r} ({dataset}) from {path}: {error}. The file is truncated or corrupt; "
                "download or copy it again."
            ) from None
        array = np.asarray(array)
        if transpose == "squeeze":
            return array.reshape(array.shape[1:])
        return np.ascontiguousarray(array.T) if transpose else array


# ------------------------------------------------------------------------------------------- converting


def convert_folder(old_dir, new_dir, max_shard_size="5GB"):
    """Writes `new_dir`: the safetensors of `old_dir`'s transformers 4.x TensorFlow weights (PyTorch names
    and layouts, as PyTorch transformers saves them) and every other file of `old_dir`'s top level (config,
    tokenizer) copied. `new_dir` must not exist or be empty; it is written atomically. Returns (the weight
    files read, the names written)."""
    import os
    import shutil

    from tfformers.checkpoint.safetensors import checkpoint_files, write_safetensors
    from tfformers.fileio import atomic_directory

    old_dir, new_dir = os.fspath(old_dir), os.fspath(new_dir)
    if not os.path.isdir(old_dir):
        raise CheckpointError(f"No such folder: {old_dir}.")
    if os.path.exists(new_dir) and (not os.path.isdir(new_dir) or os.listdir(new_dir)):
        raise CheckpointError(
            f"{new_dir} already exists and is not an empty folder; choose a new folder (the converted model is "
            "written there, never over existing files)."
        )

    def resolve(name, required):
        path = os.path.join(old_dir, name)
        return path if os.path.isfile(path) else None

    files = checkpoint_files(resolve, old_dir, legacy_h5=True)
    if not any(is_h5_file(path) for path in files):
        raise CheckpointError(
            f"{old_dir} already holds safetensors weights ({os.path.basename(files[0])}); there is no "
            f"{TF2_WEIGHTS_NAME} to convert."
        )
    with H5Reader(files) as reader:
        state = {key: reader.get(key) for key in reader.keys()}
    weight_files = {os.path.basename(path) for path in files} | {TF2_WEIGHTS_INDEX_NAME}
    with atomic_directory(new_dir) as staging:
        written = write_safetensors(state, staging, max_shard_size)
        for name in sorted(os.listdir(old_dir)):
            path = os.path.join(old_dir, name)
            if name not in weight_files and name not in written and os.path.isfile(path):
                shutil.copy2(path, os.path.join(staging, name))
                written.append(name)
    return [os.path.basename(path) for path in files], written
