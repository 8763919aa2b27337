"""The static KV cache: keys and values of every layer, preallocated and written in place.

A decoder knows the cache through two calls only: `update(layer_idx, key, value)` in each attention layer
(write this step's keys and values, get the whole cache back) and `advance(steps)` once per forward pass.
Shapes never change, so the generation loop is one XLA program and the write is an in-place
`DynamicUpdateSlice` of the loop-carried buffer.

keys[i], values[i]: [batch * kv_heads, max_length, head_dim], the flat layout
`layers.attention.scaled_dot_product_attention` reads without reshaping (a [batch, kv_heads, ...] view of
the updated buffer makes XLA copy the whole cache on every step). `position` (scalar int32) is the slot the
next token goes to; slots at and after it hold zeros or stale values that the causal mask never lets a
query see.
"""

import tensorflow as tf
from tensorflow.compiler.tf2xla.python.xla import dynamic_update_slice as _xla_dynamic_update_slice

from tfformers.layers.rotary import head_dim_of


def dynamic_update_slice(buffer, update, start):
    """`buffer` with `update` written at index `start` (a list of scalars, traced or not): XLA's
    DynamicUpdateSlice, in place on a loop-carried buffer; it also runs outside XLA."""
    return _xla_dynamic_update_slice(buffer, update, tf.stack(start))


class StaticCache:
    def __init__(self, keys, values, position=0, kv_heads=1):
        self.keys = list(keys)
        self.values = list(values)
        self.position = tf.convert_to_tensor(position, tf.int32)
        self.kv_heads = kv_heads

    @classmethod
    def allocate(cls, config, batch_size, max_length, dtype=tf.float32):
        """Zeros for `config.num_hidden_layers` layers of [batch * kv_heads, max_length, head_dim]."""
        kv_heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
        return cls.zeros(config.num_hidden_layers, kv_heads, head_dim_of(config), batch_size, max_length, dtype)

    @classmethod
    def zeros(cls, num_layers, kv_heads, head_dim, batch_size, max_length, dtype=tf.float32):
        shape = [batch_size * kv_heads, max_length, head_dim]
        layers = range(num_layers)
        return cls([tf.zeros(shape, dtype) for _ in layers], [tf.zeros(shape, dtype) for _ in layers],
                   kv_heads=kv_heads)

    @property
    def max_length(self):
        return self.keys[0].shape[1]

    def update(self, layer_idx, key, value):
        """Writes key, value [batch, kv_heads, new, head_dim] at slots position .. position + new - 1 and
        returns the layer's whole keys and values, flat: [batch * kv_heads, max_length, head_dim]."""
        start = [0, self.position, 0]
        keys, values = self.keys[layer_idx], self.values[layer_idx]
        self.keys[layer_idx] = dynamic_update_slice(keys, _flat(key, keys.dtype), start)
        self.values[layer_idx] = dynamic_update_slice(values, _flat(value, values.dtype), start)
        return self.keys[layer_idx], self.values[layer_idx]

    def advance(self, steps):
        """Moves the write position past the `steps` tokens a forward pass has just written."""
        self.position = self.position + tf.cast(steps, tf.int32)

    def query_slots(self, steps):
        """[steps] slots of the tokens a forward pass is about to write."""
        return self.position + tf.range(steps)

    def reorder(self, indices):
        """Keeps sequences `indices` [batch] of every layer (beam search follows its surviving beams)."""
        rows = tf.reshape(indices[:, None] * self.kv_heads + tf.range(self.kv_heads)[None, :], [-1])
        self.keys = [tf.gather(k, rows) for k in self.keys]
        self.values = [tf.gather(v, rows) for v in self.values]

    # The loop carries the cache as plain tensors.
    def to_state(self):
        return (tuple(self.keys), tuple(self.values), self.position)

    @classmethod
    def from_state(cls, state, kv_heads):
        keys, values, position = state
        return cls(keys, values, position, kv_heads)

    def from_same_layout(self, state):
        """A cache like this one holding the loop state `state` (what `to_state` gave)."""
        return type(self).from_state(state, self.kv_heads)


class EncoderDecoderCache:
    """An encoder–decoder's cache: the decoder's self-attention in a `StaticCache` and each layer's
    cross-attention keys and values, computed from the encoder's output once.

    A decoder layer calls `update(layer_idx, key, value)` for self-attention exactly as a causal LM's does
    (the slots, `advance` and `query_slots` are the self-attention cache's), and
    `cross_attention(layer_idx, project)` for cross-attention: on the first call `project()` gives the
    layer's keys and values [sources, heads, source_len, head_dim], kept; later calls return them. generate()
    keeps one row per source, which all its decoder rows (beams, returned sequences) read. Beam search
    reorders only the self-attention cache: a beam always stays within its source's rows.
    """

    def __init__(self, self_attention, cross_keys=None, cross_values=None):
        self.self_attention = self_attention
        num_layers = len(self_attention.keys)
        self.cross_keys = list(cross_keys) if cross_keys is not None else [None] * num_layers
        self.cross_values = list(cross_values) if cross_values is not None else [None] * num_layers

    @property
    def position(self):
        return self.self_attention.position

    @property
    def max_length(self):
        return self.self_attention.max_length

    def update(self, layer_idx, key, value):
        return self.self_attention.update(layer_idx, key, value)

    def advance(self, steps):
        self.self_attention.advance(steps)

    def query_slots(self, steps):
        return self.self_attention.query_slots(steps)

    def cross_attention(self, layer_idx, project):
        if self.cross_keys[layer_idx] is None:
            self.cross_keys[layer_idx], self.cross_values[layer_idx] = project()
        return self.cross_keys[layer_idx], self.cross_values[layer_idx]

    def reorder(self, indices):
        self.self_attention.reorder(indices)

    def to_state(self):
        if any(key is None for key in self.cross_keys):
            raise ValueError("The cross-attention keys are computed by the first forward pass (the prefill).")
        return (self.self_attention.to_state(), tuple(self.cross_keys), tuple(self.cross_values))

    def from_same_layout(self, state):
        self_state, cross_keys, cross_values = state
        return EncoderDecoderCache(self.self_attention.from_same_layout(self_state), cross_keys, cross_values)


def _flat(x, dtype):
    """[batch, kv_heads, new, head_dim] -> [batch * kv_heads, new, head_dim] in `dtype`."""
    return tf.reshape(tf.cast(x, dtype), tf.concat([[-1], tf.shape(x)[2:]], axis=0))
