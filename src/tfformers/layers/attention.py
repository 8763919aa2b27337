"""Multi-head attention mechanics shared by every architecture (the projections stay in the model files,
named as in their checkpoints)."""

import tensorflow as tf


def split_heads(x, num_heads):
    """[batch, seq, heads * head_dim] -> [batch, heads, seq, head_dim]."""
    batch, seq = tf.shape(x)[0], tf.shape(x)[1]
    x = tf.reshape(x, [batch, seq, num_heads, x.shape[-1] // num_heads])
    return tf.transpose(x, [0, 2, 1, 3])


def merge_heads(x):
    """[batch, heads, seq, head_dim] -> [batch, seq, heads * head_dim]."""
    batch, seq = tf.shape(x)[0], tf.shape(x)[2]
    x = tf.transpose(x, [0, 2, 1, 3])
    return tf.reshape(x, [batch, seq, x.shape[2] * x.shape[3]])


def attention_bias(attention_mask, dtype=tf.float32):
    """[batch, key_len] mask of 1 (attend) / 0 (padding) -> additive bias [batch, 1, 1, key_len].

    The dtype's most negative value rather than -inf keeps a fully masked row finite (uniform), as
    PyTorch transformers does.
    """
    mask = tf.cast(attention_mask, dtype)[:, None, None, :]
    return (1.0 - mask) * tf.constant(dtype.min, dtype=dtype)


def scaled_dot_product_attention(query, key, value, bias=None, dropout=None, training=False):
    """softmax(q k^T / sqrt(d) + bias) v over [batch, heads, seq, head_dim] tensors.

    Returns (context [batch, heads, q_len, head_dim], probabilities [batch, heads, q_len, k_len]).
    The softmax runs in float32 so half-precision policies neither overflow nor lose the mask.
    """
    query = query * tf.cast(1.0 / float(query.shape[-1]) ** 0.5, query.dtype)
    scores = tf.cast(tf.matmul(query, key, transpose_b=True), tf.float32)
    if bias is not None:
        scores += tf.cast(bias, tf.float32)
    probs = tf.nn.softmax(scores, axis=-1)
    probs = tf.cast(probs, value.dtype)
    if dropout is not None:
        probs = dropout(probs, training=training)
    return tf.matmul(probs, value), probs
