"""GGUF checkpoints (llama.cpp's single-file format): weights, config and tokenizer metadata, torch-free.

A GGUF file holds a model's tensors, under llama.cpp's names and usually quantized, and metadata that
stands in for `config.json` and `tokenizer.json`. This module reads them with the `gguf` package:

- `GGUFReader(path)`: the tensors as a PyTorch-named float32 state dict, dequantized lazily, one tensor
  per `get` (the `SafetensorsReader` interface, so `keys.load_parameters` takes it as it is).
- `gguf_config(path)`: the transformers config (`LlamaConfig`, `MistralConfig`, `Qwen2Config`), equal to
  the one `AutoConfig.from_pretrained(folder, gguf_file=...)` builds.
- `gguf_metadata(path)`: every metadata value, for the tokenizer (`tokenization.auto`).

transformers reads these files only with torch installed (its GGUF reader and tensor loader import it),
so the rules below are taken from its `modeling_gguf_pytorch_utils.py` and `integrations/ggml.py`.
"""

import functools
import logging
import os
import re

import gguf
import numpy as np

from tfformers.errors import CheckpointError

__all__ = ["SUPPORTED_ARCHITECTURES", "GGUFReader", "gguf_config", "gguf_metadata", "open_gguf"]

logger = logging.getLogger("tfformers")

# The GGUF architectures transformers builds a Llama, Mistral or Qwen2 config for. llama.cpp writes Mistral
# models as "llama" (see `_model_type`); transformers also names a "mistral" architecture, but llama.cpp
# never writes one and transformers cannot map its tensors.
SUPPORTED_ARCHITECTURES = ("llama", "qwen2")

# llama.cpp rotates query/key halves interleaved and so permutes the q/k rows of "llama" files on export
# (convert_hf_to_gguf.py, LlamaModel.permute); qwen2 files keep the Hugging Face (NeoX) order.
_PERMUTED_ARCHITECTURES = ("llama",)

# metadata key after "<architecture>." -> transformers config attribute
_CONFIG_KEYS = {
    "context_length": "max_position_embeddings",
    "block_count": "num_hidden_layers",
    "feed_forward_length": "intermediate_size",
    "embedding_length": "hidden_size",
    "rope.freq_base": "rope_theta",
    "attention.head_count": "num_attention_heads",
    "attention.head_count_kv": "num_key_value_heads",
    "attention.layer_norm_rms_epsilon": "rms_norm_eps",
    "vocab_size": "vocab_size",
}
# The rotary width is the head size only where RoPE covers the whole head: transformers reads it as
# head_dim for llama, and ignores it for qwen2.
_HEAD_DIM_ARCHITECTURES = ("llama",)
_TOKEN_ID_KEYS = {
    "tokenizer.ggml.bos_token_id": "bos_token_id",
    "tokenizer.ggml.eos_token_id": "eos_token_id",
    "tokenizer.ggml.unknown_token_id": "unk_token_id",
    "tokenizer.ggml.padding_token_id": "pad_token_id",
}

# llama.cpp tensor name -> PyTorch module path (the ".weight"/".bias" suffix is kept)
_TOP_LEVEL_NAMES = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}
_BLOCK_NAMES = {
    "attn_norm": "input_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_norm": "post_attention_layernorm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
_TENSOR_NAME = re.compile(r"(?:blk\.(?P<layer>\d+)\.)?(?P<module>\w+)\.(?P<kind>weight|bias)")


# ---------------------------------------------------------------------------------------------- the file


@functools.lru_cache(maxsize=2)
def _parsed(path, modified, size):
    # gguf parses every metadata string up front (~3 s for a 49k-token vocabulary); the config, the
    # tokenizer and the weights of one from_pretrained call share one parse. `modified` and `size` are
    # in the key so that a rewritten file is parsed again.
    return gguf.GGUFReader(path)


def open_gguf(path):
    """The file parsed by `gguf.GGUFReader` (tensor data memory-mapped, not read)."""
    path = os.fspath(path)
    try:
        stat = os.stat(path)
        return _parsed(os.path.realpath(path), stat.st_mtime_ns, stat.st_size)
    except (ValueError, KeyError, IndexError, OSError) as error:
        raise CheckpointError(
            f"{path} is not a readable GGUF file ({error}). A GGUF file starts with the bytes 'GGUF'; "
            "check the file name passed as gguf_file=, or download the file again if it is truncated."
        ) from None


def _metadata_value(reader, key, default=None):
    field = reader.fields.get(key)
    return default if field is None else field.contents()


def gguf_metadata(path):
    """{metadata key: value} of a GGUF file: strings, numbers, booleans and lists of them."""
    return {key: field.contents() for key, field in open_gguf(path).fields.items()}


def _architecture(reader, path):
    """The file's architecture, checked against those tfformers loads."""
    architecture = _metadata_value(reader, "general.architecture")
    if architecture is None:
        raise CheckpointError(
            f"{path} has no 'general.architecture' in its metadata, so its model is unknown. "
            "Convert the model again with llama.cpp's convert_hf_to_gguf.py."
        )
    if architecture not in SUPPORTED_ARCHITECTURES:
        raise CheckpointError(
            f"{path} holds a GGUF model of architecture {architecture!r}, which tfformers does not load. "
            f"Supported GGUF architectures: {', '.join(SUPPORTED_ARCHITECTURES)}. Load the original "
            "safetensors checkpoint of this model instead."
        )
    return architecture


def _model_type(reader, architecture):
    # transformers makes a llama file a Mistral one when "mistral" is in the list it read general.name
    # into, i.e. only when the name is exactly "mistral"; matched here so the configs stay equal.
    if architecture == "llama" and _metadata_value(reader, "general.name") == "mistral":
        return "mistral"
    return architecture


# ---------------------------------------------------------------------------------------------- config


def _config_dict(reader, path):
    """The transformers config dict that the file's metadata describes."""
    architecture = _architecture(reader, path)
    config = {
        "model_type": _model_type(reader, architecture),
        # llama.cpp writes the output projection only when it is not the embedding matrix
        "tie_word_embeddings": all(tensor.name != "output.weight" for tensor in reader.tensors),
    }
    name = _metadata_value(reader, "general.name")
    if name is not None:
        config["_model_name_or_path"] = name
    keys = dict(_CONFIG_KEYS)
    if architecture in _HEAD_DIM_ARCHITECTURES:
        keys["rope.dimension_count"] = "head_dim"
    for key, attribute in keys.items():
        value = _metadata_value(reader, f"{architecture}.{key}")
        if value is not None:
            config[attribute] = value
    for key, attribute in _TOKEN_ID_KEYS.items():
        value = _metadata_value(reader, key)
        if value is not None:
            config[attribute] = value
    if "vocab_size" not in config and "tokenizer.ggml.tokens" in reader.fields:
        config["vocab_size"] = len(reader.fields["tokenizer.ggml.tokens"].data)
    return config


def gguf_config(path):
    """The transformers config of a GGUF file (torch-free), as transformers builds it from the metadata."""
    from transformers import AutoConfig

    config_dict = _config_dict(open_gguf(path), path)
    return AutoConfig.for_model(**config_dict)


# ---------------------------------------------------------------------------------------------- tensors


def _pytorch_key(gguf_name):
    """`blk.3.attn_q.weight` -> `model.layers.3.self_attn.q_proj.weight`; None for a name with no module."""
    match = _TENSOR_NAME.fullmatch(gguf_name)
    if match is None:
        return None
    layer, module, kind = match.group("layer", "module", "kind")
    if layer is None:
        path = _TOP_LEVEL_NAMES.get(module)
    elif module in _BLOCK_NAMES:
        path = f"model.layers.{layer}.{_BLOCK_NAMES[module]}"
    else:
        path = None
    return None if path is None else f"{path}.{kind}"


@functools.cache
def _can_dequantize(tensor_type):
    """Whether `gguf.quants.dequantize` handles this type (tried on one zero block: unsupported types
    raise NotImplementedError, and the package has no public list of the supported ones)."""
    block_bytes = gguf.GGML_QUANT_SIZES[tensor_type][1]
    try:
        gguf.quants.dequantize(np.zeros((1, block_bytes), np.uint8), tensor_type)
    except NotImplementedError:
        return False
    return True


def _unpermute_rows(weight, heads):
    """Undoes llama.cpp's q/k export permutation. weight: [heads * head_dim, ...] (a weight or a bias).

    llama.cpp stores each head's rows as (head_dim/2 pairs, 2); Hugging Face as (2 halves, head_dim/2).
    """
    rows = weight.shape[0]
    pairs = weight.reshape(heads, rows // heads // 2, 2, *weight.shape[1:])
    return pairs.swapaxes(1, 2).reshape(weight.shape)


class GGUFReader:
    """The tensors of a GGUF file under PyTorch transformers' key names, as float32 in PyTorch layout.

    Same interface as `SafetensorsReader`: `keys()`, `shape(key)`, `get(key)`, `file_of(key)`. Linear
    weights are [out, in] as in PyTorch; `lm_head.weight` is absent when the embeddings are tied.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        reader = open_gguf(self.path)
        self.architecture = _architecture(reader, self.path)
        self._tensors = self._map_tensors(reader)
        self._heads = self._permuted_heads(reader)

    def _map_tensors(self, reader):
        tensors = {}
        for tensor in reader.tensors:
            key = _pytorch_key(tensor.name)
            if key is None:
                # transformers skips these too (e.g. llama 3.1's precomputed rope_freqs)
                logger.warning("GGUF tensor %r of %s has no PyTorch counterpart: not loaded.", tensor.name, self.path)
                continue
            if not _can_dequantize(tensor.tensor_type):
                readable = [kind.name for kind in gguf.GGMLQuantizationType if _can_dequantize(kind)]
                raise CheckpointError(
                    f"Tensor {tensor.name!r} of {self.path} is stored as {tensor.tensor_type.name}, which the gguf "
                    f"package cannot dequantize. Use a file of another quantization ({', '.join(readable)}) "
                    "or the original safetensors checkpoint."
                )
            tensors[key] = tensor
        return tensors

    def _permuted_heads(self, reader):
        """{key: heads} for the q and k tensors stored permuted by llama.cpp."""
        if self.architecture not in _PERMUTED_ARCHITECTURES:
            return {}
        heads = _metadata_value(reader, f"{self.architecture}.attention.head_count")
        # the key/value head count is optional in GGUF and then equals the head count (as in llama.cpp)
        kv_heads = _metadata_value(reader, f"{self.architecture}.attention.head_count_kv", heads)
        permuted = {}
        for key in self._tensors:
            if ".self_attn.q_proj." in key:
                permuted[key] = heads
            elif ".self_attn.k_proj." in key:
                permuted[key] = kv_heads
        return permuted

    def keys(self):
        return self._tensors.keys()

    def file_of(self, key):
        return self.path

    def shape(self, key):
        # ggml lists dimensions fastest-moving first: [in, out] is PyTorch's [out, in]
        return tuple(int(size) for size in reversed(self._tensors[key].shape))

    def get(self, key):
        """The tensor as an owned float32 array in PyTorch layout."""
        tensor = self._tensors[key]
        # the numpy view of the data is already [out, in] (rows first), blocks of a row expanded in place
        values = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
        if key in self._heads:
            values = _unpermute_rows(values, self._heads[key])
        return np.array(values, dtype=np.float32)  # a copy: never a view of the memory-mapped file
