"""Checkpoints: the key rule (`keys`) and the file formats that feed it (`safetensors`, GGUF)."""

from tfformers.checkpoint.keys import LoadingReport, Parameter, load_parameters, named_parameters
from tfformers.checkpoint.safetensors import (
    SAFE_WEIGHTS_INDEX_NAME,
    SAFE_WEIGHTS_NAME,
    SafetensorsReader,
    checkpoint_files,
    parse_size,
    write_safetensors,
)

__all__ = [
    "SAFE_WEIGHTS_INDEX_NAME",
    "SAFE_WEIGHTS_NAME",
    "LoadingReport",
    "Parameter",
    "SafetensorsReader",
    "checkpoint_files",
    "load_parameters",
    "named_parameters",
    "parse_size",
    "write_safetensors",
]
