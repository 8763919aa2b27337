"""Multi-head attention mechanics shared by every architecture (the projections stay in the model files,
named as in their checkpoints; masks come from `layers.masks`)."""

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


def scaled_dot_product_attention(query, key, value, bias=None, dropout=None, training=False, scale=None):
    """softmax(q k^T * scale + bias) v, with scale 1/sqrt(head_dim) unless given.

    query: [batch, heads, q_len, head_dim]; key, value: [batch, kv_heads, k_len, head_dim], where heads is
    a multiple of kv_heads (grouped-query attention: each key/value head serves heads / kv_heads query
    heads, without copying the keys). bias: broadcastable to [batch, heads, q_len, k_len].
    Returns (context [batch, heads, q_len, head_dim], probabilities [batch, heads, q_len, k_len]).
    The softmax runs in float32 so half-precision policies neither overflow nor lose the mask.
    """
    scale = float(query.shape[-1]) ** -0.5 if scale is None else scale
    query = query * tf.cast(scale, query.dtype)
    heads, kv_heads = query.shape[1], key.shape[1]
    if heads == kv_heads:
        scores = tf.matmul(query, key, transpose_b=True)
    else:  # [batch, kv_heads, groups, q_len, head_dim] against [batch, kv_heads, k_len, head_dim]
        grouped = tf.reshape(query, _grouped_shape(query, kv_heads))
        scores = tf.einsum("bkgqd,bksd->bkgqs", grouped, key)
        scores = tf.reshape(scores, tf.concat([tf.shape(query)[:3], tf.shape(key)[2:3]], axis=0))
    scores = tf.cast(scores, tf.float32)
    if bias is not None:
        scores += tf.cast(bias, tf.float32)
    probs = tf.cast(tf.nn.softmax(scores, axis=-1), value.dtype)
    if dropout is not None:
        probs = dropout(probs, training=training)
    if heads == kv_heads:
        return tf.matmul(probs, value), probs
    grouped = tf.reshape(probs, _grouped_shape(probs, kv_heads))
    context = tf.einsum("bkgqs,bksd->bkgqd", grouped, value)
    return tf.reshape(context, tf.concat([tf.shape(probs)[:3], tf.shape(value)[3:]], axis=0)), probs


def _grouped_shape(x, kv_heads):
    """[batch, heads, q, last] -> the shape [batch, kv_heads, heads / kv_heads, q, last]."""
    shape = tf.shape(x)
    return tf.stack([shape[0], kv_heads, x.shape[1] // kv_heads, shape[2], shape[3]])
