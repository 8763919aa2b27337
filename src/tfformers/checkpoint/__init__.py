"""Checkpoints: the key rule (`keys`) and the file formats that feed it (safetensors, transformers 4.x
TensorFlow's `tf_model.h5`, GGUF)."""

from tfformers.checkpoint.building import bare_variable_handle_names, build_from_checkpoint
from tfformers.checkpoint.h5 import H5Reader, is_h5_file
from tfformers.checkpoint.keys import LoadingReport, Parameter, load_parameters, named_parameters
from tfformers.checkpoint.safetensors import (
    SAFE_WEIGHTS_INDEX_NAME,
    SAFE_WEIGHTS_NAME,
    SafetensorsReader,
    checkpoint_files,
    parse_size,
    write_safetensors,
)


def open_reader(files):
    """The reader of `checkpoint_files`' result: `H5Reader` for transformers 4.x TensorFlow files, else
    `SafetensorsReader`."""
    if any(is_h5_file(path) for path in files):
        return H5Reader(files)
    return SafetensorsReader(files)


__all__ = [
    "SAFE_WEIGHTS_INDEX_NAME",
    "SAFE_WEIGHTS_NAME",
    "H5Reader",
    "LoadingReport",
    "Parameter",
    "SafetensorsReader",
    "bare_variable_handle_names",
    "build_from_checkpoint",
    "checkpoint_files",
    "load_parameters",
    "named_parameters",
    "open_reader",
    "parse_size",
    "write_safetensors",
]
