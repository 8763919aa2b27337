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
    origin = "the configuration passed as config="
    if config is None and gguf_file is not None:
        origin = hub.resolve_file(source, gguf_file, **hub_kwargs)
        config = gguf_config(origin)
    if config is None:
        origin = hub.resolve_file(source, "config.json", **hub_kwargs)
        try:
            config, unused = AutoConfig.from_pretrained(origin, return_unused_kwargs=True, **overrides)
        except (ValueError, KeyError, OSError, StrictDataclassError) as error:
            message = " ".join(str(error).split())  # transformers' validation errors span lines
            raise ConfigError(f"Cannot build a configuration from {origin}: {message}") from None
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
    check_sizes(config, origin, overrides)
    return config


# Sizes and counts a model is built from (GPT-2's and DistilBERT's own names reach these through the
# config's attribute_map; their other names are listed as they appear in config.json)
_SIZE_FIELDS = (
    "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
    "head_dim", "intermediate_size", "max_position_embeddings", "num_labels", "n_inner", "hidden_dim",
)


def check_sizes(config, origin, overrides=()):
    """ConfigError naming `origin` (config.json, a GGUF file) and the field when a size or count is not a
    positive integer, or the attention heads do not divide what they split: transformers accepts both for
    some architectures, and the model would fail later with an unrelated shape error."""
    for name in _SIZE_FIELDS:
        value = getattr(config, name, None)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            field = config.attribute_map.get(name, name)
            given = f" (given as from_pretrained's {name}=)" if name in overrides else ""
            raise ConfigError(
                f"{origin}: {field} is {value!r}{given}, but it is a size or a count and must be a positive "
                f"integer. Fix {field} in the configuration."
            )
    heads = getattr(config, "num_attention_heads", None)
    kv_heads = getattr(config, "num_key_value_heads", None)
    if heads and kv_heads and heads % kv_heads:
        raise ConfigError(
            f"{origin}: num_attention_heads ({heads}) is not a multiple of num_key_value_heads ({kv_heads}); "
            "each key/value head serves the same number of query heads. Fix one of them in the configuration."
        )
    hidden = getattr(config, "hidden_size", None)
    if heads and hidden and getattr(config, "head_dim", None) is None and hidden % heads:
        field = config.attribute_map.get("hidden_size", "hidden_size")
        raise ConfigError(
            f"{origin}: {field} ({hidden}) is not a multiple of the number of attention heads ({heads}), so "
            f"the heads cannot split it. Fix {field} or the number of heads in the configuration."
        )


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
