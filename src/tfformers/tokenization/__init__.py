"""Tokenizers: transformers' Python tokenizers (with TensorFlow tensor output)."""

from tfformers.tokenization.auto import AutoTokenizer

__all__ = ["AutoTokenizer"]
