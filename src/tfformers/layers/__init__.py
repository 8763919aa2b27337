"""Building blocks shared by the architectures in `tfformers.models`."""

from tfformers.inputs import check_sequence_length, check_token_ids
from tfformers.layers.activations import get_activation
from tfformers.layers.attention import merge_heads, scaled_dot_product_attention, split_heads
from tfformers.layers.core import dense, embedding, layer_norm
from tfformers.layers.masks import attention_bias, causal_attention_bias

__all__ = [
    "attention_bias",
    "causal_attention_bias",
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
