"""AutoTokenizer: transformers' tokenizers, which also return TensorFlow tensors.

transformers 5 dropped `return_tensors="tf"`. The tokenizers loaded here are the same objects with that
option restored (they compute NumPy arrays and convert), so `model(tokenizer(texts, return_tensors="tf"))`
works as it did in transformers 4. They also take any sequence of strings, such as a 🤗 datasets column
(`tokenizer(dataset["text"])`), which transformers 5 accepts only as a list. Everything else, saving
included, is transformers' own.
"""

import functools
from collections.abc import Sequence

import tensorflow as tf
import transformers
from transformers import BatchEncoding


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


@functools.cache
def _tf_tokenizer_class(base):
    # Same __name__ so saved tokenizer configs name transformers' class, not ours.
    methods = {name: _with_tf_tensors(getattr(base, name)) for name in ("__call__", "pad")}
    return type(base.__name__, (base,), {**methods, "__module__": base.__module__})


def with_tf_tensors(tokenizer):
    """Returns `tokenizer` with `return_tensors="tf"` supported (the object is changed in place)."""
    if not getattr(type(tokenizer), "_tfformers_tf_tensors", False):
        tokenizer.__class__ = _tf_tokenizer_class(type(tokenizer))
        type(tokenizer)._tfformers_tf_tensors = True
    return tokenizer


class AutoTokenizer:
    """`transformers.AutoTokenizer` whose tokenizers also accept `return_tensors="tf"`."""

    def __init__(self):
        raise TypeError("AutoTokenizer is created with AutoTokenizer.from_pretrained().")

    @staticmethod
    def from_pretrained(pretrained_model_name_or_path, *args, **kwargs):
        tokenizer = transformers.AutoTokenizer.from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        return with_tf_tensors(tokenizer)
