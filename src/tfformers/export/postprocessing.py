"""From a head's raw outputs to what a served model answers, as TensorFlow ops (they run in the exported graph).

Each function takes tensors and plain Python settings read from the config at export time, and returns a dict
of named output tensors; a batch of `b` rows in, `b` rows out. transformers' pipelines are the reference:
softmax scores and `id2label` names (text classification, token classification), the best start/end pair of
a span inside the context (question answering), the top tokens at the mask (fill-mask), and mean-pooled,
L2-normalised embeddings (sentence-transformers' default for feature extraction).
"""

import tensorflow as tf


def label_names(config):
    """tf.string [num_labels]: `id2label` in id order (`LABEL_i` where the config names none)."""
    id2label = {int(i): name for i, name in (config.id2label or {}).items()}
    return tf.constant([id2label.get(i, f"LABEL_{i}") for i in range(config.num_labels)])


def problem_type(config):
    """The config's problem type, inferred as transformers' sequence classification loss does."""
    if config.problem_type:
        return config.problem_type
    return "regression" if config.num_labels == 1 else "single_label_classification"


def text_classification(logits, config):
    """logits [b, num_labels] -> label [b] (tf.string), score [b], probabilities [b, num_labels], logits.

    Multi-label heads score each label with a sigmoid (several may hold); regression heads answer only
    `score`, the predicted value [b]."""
    logits = tf.cast(logits, tf.float32)
    kind = problem_type(config)
    if kind == "regression":
        return {"score": logits[:, 0], "logits": logits}
    probabilities = tf.sigmoid(logits) if kind == "multi_label_classification" else tf.nn.softmax(logits, axis=-1)
    best = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
    return {
        "label": tf.gather(label_names(config), best),
        "score": tf.reduce_max(probabilities, axis=-1),
        "probabilities": probabilities,
        "logits": logits,
    }


def token_classification(logits, tokens, config):
    """logits [b, t, num_labels] and the token texts [b, t] ("" for special tokens and padding) ->
    tokens, labels [b, t] (tf.string, "" where the token is ""), scores [b, t] (0 there), logits."""
    logits = tf.cast(logits, tf.float32)
    probabilities = tf.nn.softmax(logits, axis=-1)
    best = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
    shown = tf.not_equal(tokens, "")
    return {
        "tokens": tokens,
        "labels": tf.where(shown, tf.gather(label_names(config), best), ""),
        "scores": tf.where(shown, tf.reduce_max(probabilities, axis=-1), 0.0),
        "logits": logits,
    }


def answer_span(start_logits, end_logits, sequence_ids, max_answer_length):
    """The best answer span of each row, as transformers' question-answering pipeline chooses it: the
    (start, end) maximising p(start) * p(end) over context tokens (`sequence_ids == 1`) with
    start <= end < start + max_answer_length, probabilities being softmaxes over the context tokens.

    start_logits, end_logits: [b, t]; sequence_ids: int [b, t] (0 question, 1 context, -1 special/padding).
    Returns start, end: int32 [b] token positions (inclusive); score: float32 [b].
    """
    in_context = tf.equal(sequence_ids, 1)
    very_negative = tf.constant(-1e9, tf.float32)
    start_scores = tf.nn.softmax(tf.where(in_context, tf.cast(start_logits, tf.float32), very_negative), axis=-1)
    end_scores = tf.nn.softmax(tf.where(in_context, tf.cast(end_logits, tf.float32), very_negative), axis=-1)
    pairs = tf.expand_dims(start_scores, 2) * tf.expand_dims(end_scores, 1)  # [b, start, end]
    allowed = tf.linalg.band_part(tf.ones_like(pairs[0]), 0, max_answer_length - 1)  # end - start in [0, max)
    both_in_context = tf.logical_and(tf.expand_dims(in_context, 2), tf.expand_dims(in_context, 1))
    pairs = tf.where(both_in_context, pairs * allowed, 0.0)
    length = tf.shape(pairs)[2]
    flat = tf.reshape(pairs, [tf.shape(pairs)[0], -1])
    best = tf.argmax(flat, axis=-1, output_type=tf.int32)
    return {"start": best // length, "end": best % length, "score": tf.reduce_max(flat, axis=-1)}


def mean_pooled_embeddings(last_hidden_state, attention_mask, normalize=True):
    """[b, t, hidden] and the mask [b, t] -> embedding [b, hidden]: the mean over real tokens, L2-normalised."""
    mask = tf.cast(tf.expand_dims(attention_mask, -1), tf.float32)
    hidden = tf.cast(last_hidden_state, tf.float32)
    pooled = tf.reduce_sum(hidden * mask, axis=1) / tf.maximum(tf.reduce_sum(mask, axis=1), 1e-9)
    return tf.math.l2_normalize(pooled, axis=-1, epsilon=1e-12) if normalize else pooled


def fill_mask(logits, input_ids, mask_token_id, top_k):
    """The `top_k` tokens at each row's first mask token: token_id int32 [b, k], score [b, k] (softmax).

    A row without a mask token fails with an InvalidArgumentError naming the mask token id."""
    is_mask = tf.equal(input_ids, mask_token_id)
    tf.debugging.assert_equal(
        tf.reduce_all(tf.reduce_any(is_mask, axis=1)), True,
        message=f"every text must contain the mask token (id {mask_token_id})",
    )
    position = tf.argmax(tf.cast(is_mask, tf.int32), axis=1, output_type=tf.int32)
    at_mask = tf.gather(tf.cast(logits, tf.float32), position, batch_dims=1)  # [b, vocab]
    scores, token_ids = tf.math.top_k(tf.nn.softmax(at_mask, axis=-1), k=top_k)
    return {"token_id": token_ids, "score": scores}
