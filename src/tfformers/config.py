"""Configurations: transformers' own classes (torch-free), read from a folder or the Hub.

`load_config` gives the model configuration with keyword overrides applied; `load_generation_config` gives
the decoding defaults a checkpoint ships in `generation_config.json` (or derives from its config).
"""

import os

from huggingface_hub.errors import StrictDataclassError

from tfformers import hub
from tfformers.checkpoint.gguf import gguf_config
from tfformers.errors import ConfigError


def load_config(source, config=None, overrides=None, gguf_file=None, **hub_kwargs):
    """The transformers configuration of `source` (its `config.json`, or the metadata of `gguf_file` in
    it), with `overrides` applied.

    Unknown override names raise, so a misspelt argument is never silently ignored.
    """
    from transformers import AutoConfig

    overrides = dict(overrides or {})
    if config is None and gguf_file is not None:
        config = gguf_config(hub.resolve_file(source, gguf_file, **hub_kwargs))
    if config is None:
        path = hub.resolve_file(source, "config.json", **hub_kwargs)
        try:
            config, unused = AutoConfig.from_pretrained(path, return_unused_kwargs=True, **overrides)
        except (ValueError, KeyError, OSError, StrictDataclassError) as error:
            raise ConfigError(f"Cannot build a configuration from {path}: {error}") from None
    else:
        unused = {}
        for key, value in overrides.items():
            if hasattr(config, key) or key in ("num_labels",):
                setattr(config, key, value)
            else:
                unused[key] = value
    if unused:
        raise TypeError(
            f"from_pretrained got unexpected arguments {sorted(unused)}: they are neither loading "
            "options nor attributes of the configuration."
        )
    return config


def load_generation_config(source, config, **hub_kwargs):
    """The checkpoint's `generation_config.json` as a `GenerationConfig`, or one derived from `config` (its
    bos/eos/pad ids) when the checkpoint has none."""
    from transformers import GenerationConfig

    path = hub.resolve_file(source, "generation_config.json", required=False, **hub_kwargs)
    if path is None:
        return GenerationConfig.from_model_config(config)
    try:
        return GenerationConfig.from_pretrained(os.path.dirname(path), config_file_name=os.path.basename(path))
    except (ValueError, OSError) as error:
        raise ConfigError(f"Cannot read the generation config {path}: {error}") from None
