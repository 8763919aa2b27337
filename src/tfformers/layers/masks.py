"""Attention masks, built here and nowhere else: additive biases for the attention scores.

A bias is 0 where a query may attend to a key and the dtype's most negative value where it may not. One
most-negative value per masked entry (never a sum of two) keeps the arithmetic finite, so a row with no
allowed key (a left-padding query) becomes uniform, exactly as PyTorch transformers' eager attention does.
Models build the bias in their compute dtype (`dtype`): Keras casts a block's floating inputs to that dtype,
and float32's most negative value would become -inf in bfloat16 or float16, turning such a row into NaN.
"""

import tensorflow as tf


def _bias(allowed, dtype):
    return tf.where(allowed, tf.constant(0.0, dtype), tf.constant(dtype.min, dtype))


def attention_bias(attention_mask, dtype=tf.float32):
    """[batch, key_len] mask of 1 (attend) / 0 (padding) -> additive bias [batch, 1, 1, key_len] for
    bidirectional (encoder) attention."""
    return _bias(tf.not_equal(attention_mask, 0)[:, None, None, :], dtype)


def causal_attention_bias(attention_mask, query_slots, sliding_window=None, dtype=tf.float32):
    """The bias of causal (decoder) self-attention: [batch, 1, queries, keys].

    Keys are slots 0 .. keys-1 (a sequence, or the slots of a static KV cache); `query_slots` [queries]
    gives the slot of each query (0 .. seq-1 for a full forward; the cache position onwards when decoding).
    A query at slot i attends to key slot j when j <= i, the key is not padding (`attention_mask` [batch,
    keys], 1 = token, 0 = padding) and, with a `sliding_window` w, when j > i - w — positions counted in
    slots, as transformers' `sliding_window_overlay` does. Slots not yet written are after every query.
    """
    key_slots = tf.range(tf.shape(attention_mask)[1])
    query_slots = tf.convert_to_tensor(query_slots, tf.int32)
    allowed = key_slots[None, :] <= query_slots[:, None]  # [queries, keys]
    if sliding_window is not None:
        allowed &= key_slots[None, :] > query_slots[:, None] - sliding_window
    allowed = allowed[None, None] & tf.not_equal(attention_mask, 0)[:, None, None, :]
    return _bias(allowed, dtype)


def decoder_attention_mask(attention_mask, batch_size, num_keys):
    """The [batch, keys] padding mask of a decoder: all ones when none is given; a mask shorter than the
    keys (the slots written so far, when decoding into a static cache) is extended with ones, which the
    causal rule makes irrelevant since those slots lie after every query."""
    if attention_mask is None:
        return tf.ones([batch_size, num_keys], tf.int32)
    missing = num_keys - tf.shape(attention_mask)[1]
    return tf.pad(tf.cast(attention_mask, tf.int32), [[0, 0], [0, missing]], constant_values=1)
