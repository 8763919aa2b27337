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
        shape = [batch_size * kv_heads, max_length, head_dim_of(config)]
        layers = range(config.num_hidden_layers)
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


def _flat(x, dtype):
    """[batch, kv_heads, new, head_dim] -> [batch * kv_heads, new, head_dim] in `dtype`."""
    return tf.reshape(tf.cast(x, dtype), tf.concat([[-1], tf.shape(x)[2:]], axis=0))
