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

    query: [batch, heads, q_len, head_dim]. key, value: [batch, kv_heads, k_len, head_dim], or flattened
    [batch * kv_heads, k_len, head_dim] as the static KV cache stores them (so the cache feeds the
    matmuls as it is: reshaping it would make XLA copy it on every decoding step). heads is a multiple of
    kv_heads (grouped-query attention: each key/value head serves heads / kv_heads query heads, without
    copying the keys). bias: broadcastable to [batch, heads, q_len, k_len].
    Keys and values [items, kv_heads, k_len, head_dim] for a query batch of items * group rows are shared
    by each item's group of rows (an encoder's output by the beams of its source); bias is then
    [items or 1, 1, 1, k_len].
    Returns (context [batch, heads, q_len, head_dim], probabilities [batch, heads, q_len, k_len]).
    The softmax runs in float32 so half-precision policies neither overflow nor lose the mask.
    """
    if key.shape.rank == 4 and None not in (query.shape[0], key.shape[0]) and query.shape[0] != key.shape[0]:
        return _attention_shared_by_rows(query, key, value, bias, dropout, training, scale)
    scale = float(query.shape[-1]) ** -0.5 if scale is None else scale
    query = query * tf.cast(scale, query.dtype)
    if key.shape.rank == 4 and key.shape[1] == query.shape[1]:  # one key/value head per query head
        scores = tf.matmul(query, key, transpose_b=True)
    else:
        key = _flat(key)
        scores = tf.matmul(_rows(query, key), key, transpose_b=True)  # [batch * kv_heads, groups * q_len, k_len]
        scores = tf.reshape(scores, tf.concat([tf.shape(query)[:3], tf.shape(key)[1:2]], axis=0))
    probs = tf.nn.softmax(_add_bias(scores, bias), axis=-1)
    probs = tf.cast(probs, value.dtype)
    if dropout is not None:
        probs = dropout(probs, training=training)
    if value.shape.rank == 4 and value.shape[1] == query.shape[1]:
        return tf.matmul(probs, value), probs
    value = _flat(value)
    context = tf.matmul(_rows(probs, value), value)  # [batch * kv_heads, groups * q_len, head_dim]
    return tf.reshape(context, tf.concat([tf.shape(probs)[:3], tf.shape(value)[2:]], axis=0)), probs


def _attention_shared_by_rows(query, key, value, bias, dropout, training, scale):
    """Attention of query rows [items * group, heads, q_len, head_dim] over keys and values with one row
    per item: each item's rows become query positions of one row, so every key is read once per item,
    not once per beam, on each decoding step."""
    items = key.shape[0]
    if query.shape[0] % items:
        raise ValueError(f"query rows ({query.shape[0]}) are not a multiple of the key rows ({items}).")
    group = query.shape[0] // items
    context, probs = scaled_dot_product_attention(
        _group_rows(query, items), key, value, bias, dropout, training, scale
    )
    return _ungroup_rows(context, group), _ungroup_rows(probs, group)


def _group_rows(x, items):
    """[items * group, heads, q_len, last] -> [items, heads, group * q_len, last]."""
    _, heads, q_len, last = x.shape
    x = tf.reshape(x, [items, -1, heads, q_len, last])
    return tf.reshape(tf.transpose(x, [0, 2, 1, 3, 4]), [items, heads, -1, last])


def _ungroup_rows(x, group):
    """[items, heads, group * q_len, last] -> [items * group, heads, q_len, last]."""
    items, heads, _, last = x.shape
    x = tf.reshape(x, [items, heads, group, -1, last])
    return tf.reshape(tf.transpose(x, [0, 2, 1, 3, 4]), [items * group, heads, -1, last])


def _flat(x):
    """[batch, kv_heads, k_len, head_dim] -> [batch * kv_heads, k_len, head_dim] (flat ones as they are)."""
    return x if x.shape.rank == 3 else tf.reshape(x, tf.concat([[-1], tf.shape(x)[2:]], axis=0))


def _rows(x, flat_kv):
    """[batch, heads, q_len, last] -> [batch * kv_heads, groups * q_len, last]: each row holds the query
    heads one key/value head serves (heads are kv_head-major, as transformers' repeat_kv orders them)."""
    return tf.reshape(x, tf.stack([tf.shape(flat_kv)[0], -1, tf.shape(x)[-1]]))


def _add_bias(scores, bias):
    scores = tf.cast(scores, tf.float32)
    return scores if bias is None else scores + tf.cast(bias, tf.float32)
