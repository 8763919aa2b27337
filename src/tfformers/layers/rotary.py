"""Rotary position embeddings (RoPE, Su et al., 2021) and their scaling variants, as transformers computes
them (`modeling_rope_utils.py`).

`RotaryEmbedding(config)(position_ids)` gives (cos, sin) [batch, seq, head_dim]; `apply_rotary(q, k, cos,
sin)` rotates queries and keys [batch, heads, seq, head_dim]. Scaling comes from `config.rope_parameters`:
`default`, `linear` (positions divided by `factor`), `dynamic` (NTK-aware base growing with the sequence
beyond `max_position_embeddings`) and `llama3` (per-frequency interpolation).
"""

import math

import numpy as np
import tensorflow as tf

from tfformers.errors import ConfigError

SUPPORTED_ROPE_TYPES = ("default", "linear", "dynamic", "llama3")


def rope_parameters(config):
    """The config's RoPE settings as transformers 5 standardizes them (`rope_scaling` folded in)."""
    params = dict(getattr(config, "rope_parameters", None) or {})
    params.setdefault("rope_type", params.pop("type", "default"))
    if params["rope_type"] not in SUPPORTED_ROPE_TYPES:
        raise ConfigError(
            f"rope_type {params['rope_type']!r} in the config's rope_parameters is not supported by tfformers; "
            f"supported: {list(SUPPORTED_ROPE_TYPES)}."
        )
    if params.get("partial_rotary_factor", 1.0) != 1.0:
        raise ConfigError("partial_rotary_factor != 1 is not supported by tfformers' rotary embeddings.")
    return params


def head_dim_of(config):
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


def _exponents(dim):
    """[dim // 2] float32: 0, 2, 4, ... divided by dim (the powers of the base, in float32 as torch)."""
    return np.arange(0, dim, 2, dtype=np.int64).astype(np.float32) / np.float32(dim)


def _llama3_inverse_frequencies(inv_freq, params):
    factor = params["factor"]
    low_freq_factor, high_freq_factor = params["low_freq_factor"], params["high_freq_factor"]
    old_context_len = params["original_max_position_embeddings"]
    low_freq_wavelen = old_context_len / low_freq_factor
    high_freq_wavelen = old_context_len / high_freq_factor
    wavelen = np.float32(2 * math.pi) / inv_freq
    # long wavelengths are interpolated by `factor`, short ones kept, the band between smoothly blended
    scaled = np.where(wavelen > low_freq_wavelen, inv_freq / np.float32(factor), inv_freq)
    smooth = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
    smoothed = (1 - smooth) * scaled / np.float32(factor) + smooth * scaled
    medium = ~(wavelen < high_freq_wavelen) & ~(wavelen > low_freq_wavelen)
    return np.where(medium, smoothed, scaled).astype(np.float32)


class RotaryEmbedding:
    """cos/sin tables of the rotation for given positions (no weights: nothing is in a checkpoint)."""

    def __init__(self, config):
        self.params = rope_parameters(config)
        self.dim = head_dim_of(config)
        self.max_position_embeddings = config.max_position_embeddings
        base = np.float32(self.params["rope_theta"])
        inv_freq = (np.float32(1.0) / base ** _exponents(self.dim)).astype(np.float32)
        rope_type = self.params["rope_type"]
        if rope_type == "linear":
            inv_freq = inv_freq / np.float32(self.params["factor"])
        elif rope_type == "llama3":
            inv_freq = _llama3_inverse_frequencies(inv_freq, self.params)
        self.inv_freq = inv_freq  # [dim // 2] float32

    def inverse_frequencies(self, position_ids):
        """[dim // 2]: fixed, except for `dynamic`, whose base grows once the longest position in the batch
        passes max_position_embeddings (transformers recomputes it per forward in the same way; it also
        keeps the largest one seen across calls, which a stateless graph does not)."""
        if self.params["rope_type"] != "dynamic":
            return tf.constant(self.inv_freq)
        factor = self.params["factor"]
        seq_len = tf.cast(tf.reduce_max(position_ids) + 1, tf.float32)
        seq_len = tf.maximum(seq_len, float(self.max_position_embeddings))
        base = self.params["rope_theta"] * (
            (factor * seq_len / self.max_position_embeddings) - (factor - 1)
        ) ** (self.dim / (self.dim - 2))
        return 1.0 / base ** tf.constant(_exponents(self.dim))

    def __call__(self, position_ids, dtype=tf.float32):
        """position_ids [batch, seq] -> (cos, sin), each [batch, seq, head_dim] in `dtype`."""
        freqs = tf.cast(position_ids, tf.float32)[..., None] * self.inverse_frequencies(position_ids)
        angles = tf.concat([freqs, freqs], axis=-1)
        return tf.cast(tf.cos(angles), dtype), tf.cast(tf.sin(angles), dtype)


def _rotate_half(x):
    first, second = tf.split(x, 2, axis=-1)
    return tf.concat([-second, first], axis=-1)


def apply_rotary(query, key, cos, sin):
    """Rotates query [batch, heads, seq, head_dim] and key [batch, kv_heads, seq, head_dim] by the angles
    of their positions (cos, sin [batch, seq, head_dim])."""
    cos, sin = cos[:, None], sin[:, None]
    return query * cos + _rotate_half(query) * sin, key * cos + _rotate_half(key) * sin
