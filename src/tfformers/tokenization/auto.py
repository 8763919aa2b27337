"""AutoTokenizer: transformers' tokenizers, which also return TensorFlow tensors.

transformers 5 dropped `return_tensors="tf"`. The tokenizers loaded here are the same objects with that
option restored (they compute NumPy arrays and convert), so `model(tokenizer(texts, return_tensors="tf"))`
works as it did in transformers 4, and `decode` / `batch_decode` take TensorFlow tensors again. They also
take any sequence of strings, such as a 🤗 datasets column (`tokenizer(dataset["text"])`), which
transformers 5 accepts only as a list. Everything else, saving included, is transformers' own.

`from_pretrained(folder_or_repo, gguf_file="x.gguf")` builds the tokenizer a GGUF file describes, chat
template included, as transformers does but without torch (transformers' own GGUF reader imports it).
"""

import functools
import os
from collections.abc import Sequence

import tensorflow as tf
import transformers
from transformers import BatchEncoding

from tfformers import hub
from tfformers.errors import CheckpointError, HubError

# from_pretrained keywords that locate the GGUF file rather than configure the tokenizer
_HUB_KWARGS = ("revision", "cache_dir", "token", "local_files_only", "subfolder")
# tokenizer attribute -> the metadata key holding its token id
_SPECIAL_TOKEN_IDS = {
    "bos_token": "tokenizer.ggml.bos_token_id",
    "eos_token": "tokenizer.ggml.eos_token_id",
    "unk_token": "tokenizer.ggml.unknown_token_id",
    "pad_token": "tokenizer.ggml.padding_token_id",
}


def _as_tf(encoding):
    return BatchEncoding(
        {key: tf.convert_to_tensor(value) for key, value in encoding.items()},
        encoding=encoding.encodings,
        n_sequences=encoding.n_sequences,
    )


def _as_list(text):
    if isinstance(text, Sequence) and not isinstance(text, (str, list, tuple)):
        return list(text)
    return text


def _with_tf_tensors(method):
    @functools.wraps(method)
    def wrapper(self, *args, return_tensors=None, **kwargs):
        if method.__name__ == "__call__":
            args = tuple(_as_list(arg) for arg in args)
            kwargs = {k: _as_list(v) if k in ("text", "text_pair") else v for k, v in kwargs.items()}
        if return_tensors == "tf":
            return _as_tf(method(self, *args, return_tensors="np", **kwargs))
        return method(self, *args, return_tensors=return_tensors, **kwargs)

    return wrapper


def _reading_tf_tensors(method):
    """`decode` / `batch_decode` that also take TensorFlow tensors (what `generate` returns)."""

    def numpy(value):
        return value.numpy() if isinstance(value, tf.Tensor) else value

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        return method(self, *map(numpy, args), **{name: numpy(value) for name, value in kwargs.items()})

    return wrapper


@functools.cache
def _tf_tokenizer_class(base):
    # Same __name__ so saved tokenizer configs name transformers' class, not ours.
    methods = {name: _with_tf_tensors(getattr(base, name)) for name in ("__call__", "pad")}
    methods.update({name: _reading_tf_tensors(getattr(base, name)) for name in ("decode", "batch_decode")})
    return type(base.__name__, (base,), {**methods, "__module__": base.__module__})


def with_tf_tensors(tokenizer):
    """Returns `tokenizer` with `return_tensors="tf"` supported (the object is changed in place)."""
    if not getattr(type(tokenizer), "_tfformers_tf_tensors", False):
        tokenizer.__class__ = _tf_tokenizer_class(type(tokenizer))
        type(tokenizer)._tfformers_tf_tensors = True
    return tokenizer


# ---------------------------------------------------------------------------------------------- GGUF


def _gguf_tokenizer_fields(metadata):
    """(tokenizer_dict, tokenizer_config) from GGUF metadata, read as transformers' `get_gguf_tokenizer`
    reads them: the first is what `convert_gguf_tokenizer` builds the backend from, the second the
    tokenizer's init arguments (special tokens, chat template, add_bos_token)."""
    from transformers.integrations.gguf import GGUF_TOKENIZER_MAPPING

    def renamed(group):
        renames = GGUF_TOKENIZER_MAPPING[group]  # key after "tokenizer." -> argument name
        return {name: metadata[f"tokenizer.{key}"] for key, name in renames.items() if f"tokenizer.{key}" in metadata}

    tokenizer_dict, tokenizer_config = renamed("tokenizer"), renamed("tokenizer_config")
    if tokenizer_dict.get("tokenizer_type") == "llama":
        # sentencepiece files often omit the flag, and llama.cpp then adds BOS
        tokenizer_config.setdefault("add_bos_token", True)
    tokens = tokenizer_dict["tokens"]
    for name, key in _SPECIAL_TOKEN_IDS.items():
        tokenizer_config[name] = tokens[metadata[key]] if key in metadata else None
    return tokenizer_dict, tokenizer_config


def _gguf_tokenizer_class(config):
    """The class transformers' AutoTokenizer picks for a GGUF file of this config."""
    from transformers import TokenizersBackend
    from transformers.models.auto.tokenization_auto import TOKENIZER_MAPPING

    tokenizer_class = TOKENIZER_MAPPING.get(type(config), TokenizersBackend)
    # Mistral's own backend reads Mistral's tokenizer files, which a GGUF repo does not ship
    if tokenizer_class.__name__ == "MistralCommonBackend":
        return TokenizersBackend
    return tokenizer_class


def _gguf_tokenizer(source, gguf_file, args, kwargs):
    """The tokenizer of `gguf_file` in the folder or Hub repo `source`, built from its metadata."""
    from transformers.integrations.gguf import convert_gguf_tokenizer

    from tfformers.checkpoint.gguf import gguf_config, gguf_metadata

    hub_kwargs = {name: kwargs.pop(name) for name in _HUB_KWARGS if name in kwargs}
    path = hub.resolve_file(source, gguf_file, **hub_kwargs)
    tokenizer_class = _gguf_tokenizer_class(gguf_config(path))  # also rejects unsupported architectures
    metadata = gguf_metadata(path)
    if "tokenizer.ggml.tokens" not in metadata:
        raise CheckpointError(
            f"{path} has no vocabulary (no 'tokenizer.ggml.tokens' in its metadata). Load the tokenizer from "
            "the original model repository instead."
        )
    tokenizer_dict, tokenizer_config = _gguf_tokenizer_fields(metadata)
    try:
        backend, backend_kwargs = convert_gguf_tokenizer(metadata["general.architecture"], tokenizer_dict)
    except ValueError as error:
        raise CheckpointError(f"Cannot build the tokenizer of {path}: {error}") from None
    # the caller's keywords win over the file's (transformers lets the file's win)
    init_kwargs = {**tokenizer_config, **backend_kwargs, **kwargs}
    return tokenizer_class(*args, tokenizer_object=backend, name_or_path=str(source), **init_kwargs)


# A folder holding one of these has a vocabulary (vocab.json: with merges.txt for byte-level BPE, alone for
# character vocabularies)
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "tokenizer.model", "spiece.model",
                   "sentencepiece.bpe.model", "spm.model", "tekken.json")


def _check_tokenizer_files(source, subfolder):
    """A local folder must hold a vocabulary: without one, transformers builds a tokenizer of only its special
    tokens, and every word becomes the unknown token. Git LFS pointers in their place are named as such."""
    folder = os.path.join(os.fspath(source), subfolder) if subfolder else os.fspath(source)
    if not os.path.isdir(folder):
        return  # a Hub repo: transformers downloads what the repo has
    if not any(os.path.isfile(os.path.join(folder, name)) for name in TOKENIZER_FILES):
        raise HubError(
            f"The folder '{folder}' has no tokenizer files (looked for {', '.join(TOKENIZER_FILES)}). Save the "
            "tokenizer with the model (model.save_pretrained(folder, tokenizer=tokenizer) or "
            "tokenizer.save_pretrained(folder)), or load it from the model it was fine-tuned from."
        )
    for name in (*TOKENIZER_FILES, "merges.txt", "tokenizer_config.json"):
        if os.path.isfile(os.path.join(folder, name)):
            hub.refuse_lfs_pointer(os.path.join(folder, name))


class AutoTokenizer:
    """`transformers.AutoTokenizer` whose tokenizers also accept `return_tensors="tf"`."""

    def __init__(self):
        raise TypeError("AutoTokenizer is created with AutoTokenizer.from_pretrained().")

    @staticmethod
    def from_pretrained(pretrained_model_name_or_path, *args, gguf_file=None, **kwargs):
        """`gguf_file=` names a GGUF file in the folder or repo; its metadata is then the tokenizer."""
        if gguf_file is not None:
            tokenizer = _gguf_tokenizer(pretrained_model_name_or_path, gguf_file, args, kwargs)
        else:
            _check_tokenizer_files(pretrained_model_name_or_path, kwargs.get("subfolder", ""))
            tokenizer = transformers.AutoTokenizer.from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        return with_tf_tensors(tokenizer)
