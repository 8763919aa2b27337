"""Helpers that are not about models: `logging`, the one verbosity knob, and the `transformers.utils` names that
transformers 4.x's TensorFlow example scripts import (`from tfformers.utils import check_min_version, ...`).

Nothing here imports transformers when this package is imported: `tfformers/__init__.py` imports
`tfformers.utils.logging` first, before transformers, so that transformers' PyTorch notice is filtered.
"""

import os

from tfformers.utils import logging

__all__ = [
    "CONFIG_NAME",
    "SAFE_WEIGHTS_NAME",
    "TF2_WEIGHTS_NAME",
    "TF_WEIGHTS_NAME",
    "WEIGHTS_NAME",
    "PaddingStrategy",
    "check_min_version",
    "is_offline_mode",
    "logging",
    "send_example_telemetry",
]

# The file names transformers 4.x used (transformers 5 dropped the TF ones). tfformers saves `model.safetensors`
# and reads `tf_model.h5` checkpoints too; scripts use these to tell whether a folder holds a saved model.
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "pytorch_model.bin"
SAFE_WEIGHTS_NAME = "model.safetensors"
TF2_WEIGHTS_NAME = "tf_model.h5"
TF_WEIGHTS_NAME = "model.ckpt"

_TRUE = {"1", "ON", "YES", "TRUE"}


def send_example_telemetry(example_name, *example_args, framework="tensorflow"):
    """Does nothing: tfformers sends no telemetry. (transformers 4.x reported which example script ran.)"""
    return None


def check_min_version(min_version):
    """Checks that `min_version` is a version string and returns; any transformers 4.x version passes.

    The example scripts call `check_min_version("4.46.0.dev0")` to ask for a transformers 4.x recent enough
    for the API they use: tfformers provides that API (4.46's, for the names it has), whatever version is
    asked for. A string that is not a version is an error, as in 4.x."""
    from packaging.version import InvalidVersion, Version

    try:
        Version(str(min_version))
    except InvalidVersion:
        raise ValueError(f"check_min_version() needs a version string such as '4.46.0', got {min_version!r}.") from None


def is_offline_mode():
    """Whether the Hub is not to be reached: `HF_HUB_OFFLINE` (as huggingface_hub read it) or 4.x's
    `TRANSFORMERS_OFFLINE` set to 1/ON/YES/TRUE."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("TRANSFORMERS_OFFLINE", "0").upper() in _TRUE


def __getattr__(name):
    # transformers' own (torch-free) enum, imported on first use so that importing this package stays light
    if name == "PaddingStrategy":
        from transformers.utils import PaddingStrategy

        return PaddingStrategy
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
