"""Building blocks shared by the architectures in `tfformers.models`."""

from tfformers.layers.activations import get_activation
from tfformers.layers.attention import (
    attention_bias,
    merge_heads,
    scaled_dot_product_attention,
    split_heads,
)
from tfformers.layers.core import (
    check_sequence_length,
    check_token_ids,
    dense,
    embedding,
    layer_norm,
)

__all__ = [
    "attention_bias",
    "check_sequence_length",
    "check_token_ids",
    "dense",
    "embedding",
    "get_activation",
    "layer_norm",
    "merge_heads",
    "scaled_dot_product_attention",
    "split_heads",
]
