"""safetensors checkpoints: a reader (single file or shards) and a sharding writer.

A reader gives `keys()`, `shape(key)`, `tensor(key)` (a tf.Tensor), `get(key)` (numpy) and `file_of(key)`;
`keys.load_parameters` and `building.build_from_checkpoint` take any such reader. Tensors are read one at
a time, so shards are never all in memory.
"""

import json
import os
import re
import struct

import numpy as np
import tensorflow as tf
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from tfformers.errors import CheckpointError

SAFE_WEIGHTS_NAME = "model.safetensors"
SAFE_WEIGHTS_INDEX_NAME = "model.safetensors.index.json"


# ---------------------------------------------------------------------------------------------- reading

# safetensors' dtype names -> (the numpy type the bytes are read as, the TensorFlow dtype). numpy has no
# bfloat16: its bits are read as uint16 and bitcast by TensorFlow (no copy).
_DTYPES = {
    "F64": (np.float64, tf.float64),
    "F32": (np.float32, tf.float32),
    "F16": (np.float16, tf.float16),
    "BF16": (np.uint16, tf.bfloat16),
    "I64": (np.int64, tf.int64),
    "I32": (np.int32, tf.int32),
    "I16": (np.int16, tf.int16),
    "I8": (np.int8, tf.int8),
    "U8": (np.uint8, tf.uint8),
    "BOOL": (np.bool_, tf.bool),
}
# TensorFlow's CPU kernels (Eigen) and XLA expect tensor buffers aligned to 64 bytes.
_ALIGNMENT = 64


def _data_layout(path):
    """{key: (dtype name, shape, first byte, end byte)} from the file's header (8 bytes of little-endian
    header size, then the JSON header; offsets count from the end of the header). safetensors validates
    the header when the file is opened; it does not expose these offsets."""
    with open(path, "rb") as handle:
        (header_size,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(header_size))
    start = 8 + header_size
    return {
        key: (entry["dtype"], tuple(entry["shape"]), start + entry["data_offsets"][0], start + entry["data_offsets"][1])
        for key, entry in header.items()
        if key != "__metadata__"
    }


def _aligned_buffer(size):
    """An uninitialized uint8 array of `size` bytes whose data starts on an `_ALIGNMENT` boundary."""
    raw = np.empty(size + _ALIGNMENT, np.uint8)
    offset = -raw.ctypes.data % _ALIGNMENT
    return raw[offset:offset + size]


def _read_into(path, buffer, position):
    """Fills `buffer` with the file's bytes from `position` on; False when the file ends first."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        done = 0
        while done < buffer.size:  # one read returns at most ~2 GiB
            count = os.preadv(descriptor, [buffer[done:]], position + done)
            if count == 0:
                return False
            done += count
        return True
    finally:
        os.close(descriptor)


class SafetensorsReader:
    """The tensors of one or more safetensors files, by key, read on demand."""

    def __init__(self, files):
        self._entries = {}
        self._key_to_file = {}
        for path in files:
            try:
                with safe_open(path, framework="np"):  # validates the header against the file's size
                    pass
                layout = _data_layout(path)
            except (SafetensorError, OSError, ValueError) as error:
                raise CheckpointError(
                    f"Cannot read the safetensors file {path}: {error}. The file is truncated or corrupt; "
                    "delete it (or its Hub cache entry) and download or save it again."
                ) from None
            self._entries.update(layout)
            self._key_to_file.update(dict.fromkeys(layout, path))

    def keys(self):
        return self._key_to_file.keys()

    def file_of(self, key):
        return self._key_to_file[key]

    def shape(self, key):
        return self._entries[key][1]

    def tensor(self, key):
        """The tensor as a tf.Tensor, read from the file straight into a buffer that TensorFlow then owns
        (DLPack): one copy, and no memory-mapped pages that would count in the process's memory."""
        path = self._key_to_file[key]
        dtype, shape, first, end = self._entries[key]
        if dtype not in _DTYPES:
            raise CheckpointError(
                f"Tensor {key!r} in {path} is stored as {dtype}, which tfformers does not load; use a checkpoint "
                f"in one of {', '.join(_DTYPES)}."
            )
        storage, tf_dtype = _DTYPES[dtype]
        buffer = _aligned_buffer(end - first)
        try:
            complete = _read_into(path, buffer, first)
        except OSError as error:
            raise CheckpointError(
                f"Cannot read tensor {key!r} from {path}: {error}. The file is corrupt; download or save "
                "it again."
            ) from None
        if not complete:
            raise CheckpointError(
                f"{path} ends inside tensor {key!r}: the file was truncated after it was opened. Download or "
                "save it again."
            )
        array = buffer.view(storage).reshape(shape)
        if storage is np.bool_:  # DLPack has no portable boolean type
            return tf.constant(array)
        value = tf.experimental.dlpack.from_dlpack(array.__dlpack__())
        return value if value.dtype == tf_dtype else tf.bitcast(value, tf_dtype)

    def get(self, key):
        """The tensor as a numpy array (bfloat16 as TensorFlow's numpy bfloat16 type)."""
        return self.tensor(key).numpy()


# Weight files tfformers recognises but does not load: (names, why and what to do instead).
_REFUSED_WEIGHTS = (
    (("pytorch_model.bin", "pytorch_model.bin.index.json"),
     "has only {name}, which tfformers does not load: PyTorch pickles can execute arbitrary code when "
     "unpickled. Convert it to safetensors where you trust the file (e.g. load it with PyTorch transformers "
     "and call save_pretrained(..., safe_serialization=True)), or use a revision that has model.safetensors."),
)
# transformers 4.x TensorFlow weights: read by from_pretrained (`legacy_h5=True`); elsewhere (restoring a
# training checkpoint) refused with this.
_LEGACY_H5_REFUSAL = (
    "holds {name}, transformers 4.x TensorFlow weights, which only from_pretrained reads. Convert the folder "
    "to safetensors with `tfformers convert OLD_DIR NEW_DIR` (or load it with from_pretrained and call "
    "save_pretrained)."
)
_H5_NAME, _H5_INDEX_NAME = "tf_model.h5", "tf_model.h5.index.json"


def _shard_files(resolve, source, index_name):
    """The files a shard index (safetensors' or tf_model.h5's) names, resolved; None without an index."""
    index_path = resolve(index_name, required=False)
    if not index_path:
        return None
    try:
        with open(index_path) as handle:
            weight_map = json.load(handle)["weight_map"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CheckpointError(
            f"The shard index {index_path} is not valid JSON with a 'weight_map': {error}."
        ) from None
    files = []
    for shard in dict.fromkeys(weight_map.values()):
        path = resolve(shard, required=False)
        if path is None:
            raise CheckpointError(
                f"Shard {shard!r} is listed in {index_name} of {source} but is missing. "
                "The checkpoint is incomplete: upload or copy every shard the index names."
            )
        files.append(path)
    return files


def checkpoint_files(resolve, source, legacy_h5=False):
    """Weight files of a checkpoint. `resolve(filename, required)` returns a local path or None.

    Prefers `model.safetensors`, then a sharded index; with `legacy_h5`, then transformers 4.x TensorFlow's
    `tf_model.h5`, then its shard index (read them with `checkpoint.open_reader`). PyTorch pickles are never
    loaded.
    """
    single = resolve(SAFE_WEIGHTS_NAME, required=False)
    if single:
        return [single]
    shards = _shard_files(resolve, source, SAFE_WEIGHTS_INDEX_NAME)
    if shards:
        return shards
    if legacy_h5:
        single = resolve(_H5_NAME, required=False)
        if single:
            return [single]
        shards = _shard_files(resolve, source, _H5_INDEX_NAME)
        if shards:
            return shards
    for names, refusal in _REFUSED_WEIGHTS:
        for name in names:
            if resolve(name, required=False):
                raise CheckpointError(f"{source} " + refusal.format(name=name))
    if not legacy_h5:
        for name in (_H5_NAME, _H5_INDEX_NAME):
            if resolve(name, required=False):
                raise CheckpointError(f"{source} " + _LEGACY_H5_REFUSAL.format(name=name))
    expected = f"{SAFE_WEIGHTS_NAME} or {SAFE_WEIGHTS_INDEX_NAME}"
    if legacy_h5:
        expected = f"{SAFE_WEIGHTS_NAME}, {SAFE_WEIGHTS_INDEX_NAME}, {_H5_NAME} or {_H5_INDEX_NAME}"
    raise CheckpointError(f"No weights found in {source}: expected {expected}.")


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
