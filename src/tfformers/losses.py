"""Task losses: the same scalar PyTorch transformers computes for each head.

Every function takes TensorFlow tensors (or anything ``tf.convert_to_tensor`` accepts) and returns a
float32 scalar that matches what PyTorch transformers 5 computes for the same head, logits and labels
(``transformers/loss/loss_utils.py`` and the BERT heads in ``models/bert/modeling_bert.py``).

Shared conventions:

* **float32 math.** Logits are upcast to float32 before any reduction, as transformers does, so a
  float16/bfloat16 model under Keras mixed precision still gets a float32 loss.
* **Label ``-100`` is ignored** by every cross-entropy, as in ``torch.nn.CrossEntropyLoss``; the loss
  is the mean over the remaining entries. (Question answering ignores ``seq_len`` instead, see there.)
* **Nothing left to average gives 0.0, not NaN.** PyTorch returns NaN (0/0) when every label is
  ignored; a single such batch would poison training with NaN weights, so we return 0.0 (and a zero
  gradient) instead. Wherever PyTorch's value is finite, ours is the same.
* **``sample_weight``** of shape ``[batch]`` weights each example. Losses are then weighted means:
  ``sum(w * loss * mask) / sum(w * mask)`` over every entry that is not ignored, so a weight of all
  ones gives exactly the unweighted loss, and for token-level losses an example's weight applies to
  each of its non-ignored tokens. A weight with more dimensions (e.g. ``[batch, seq_len]``) is
  broadcast against the labels, which gives per-token weights.
* **XLA-friendly.** No data-dependent shapes (masks multiply instead of gathering), dynamic shapes
  are read with ``tf.shape``, so every function traces under ``tf.function(jit_compile=True)`` with
  unknown batch and sequence dimensions.
* Integer labels may be int32 or int64; float labels are truncated to integers where a class index
  is meant (Keras sometimes hands labels over as floats).
"""

from __future__ import annotations

import tensorflow as tf

__all__ = [
    "IGNORE_INDEX",
    "causal_lm_loss",
    "masked_lm_loss",
    "seq2seq_lm_loss",
    "multiple_choice_loss",
    "pretraining_loss",
    "question_answering_loss",
    "sequence_classification_loss",
    "token_classification_loss",
]

IGNORE_INDEX = -100
"""Label value that cross-entropy losses skip, as ``torch.nn.CrossEntropyLoss(ignore_index=-100)``."""

_PROBLEM_TYPES = ("regression", "single_label_classification", "multi_label_classification")


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


def _class_ids(labels):
    labels = tf.convert_to_tensor(labels)
    # int32 is what sparse CE is fastest with everywhere (TPU included); class ids never exceed it.
    return tf.cast(labels, tf.int32)


def _float32(x):
    return tf.cast(tf.convert_to_tensor(x), tf.float32)


def _broadcast_weight(sample_weight, like):
    """A ``[batch]`` (or ``[batch, ...]``) weight, right-padded with size-1 dims to broadcast to ``like``."""
    w = _float32(sample_weight)
    rank = like.shape.rank
    if w.shape.rank is None or rank is None:
        raise ValueError("sample_weight and labels need a known rank")
    if w.shape.rank > rank:
        # [batch, 1] weights for [batch] labels (a common Keras shape)
        w = tf.reshape(w, tf.shape(like))
    for _ in range(rank - w.shape.rank):
        w = w[..., tf.newaxis]
    return w


def _weighted_mean(values, mask=None, sample_weight=None, num_items_in_batch=None):
    """``sum(w * values * mask) / sum(w * mask)``; 0.0 where the denominator is 0 (torch: NaN)."""
    weight = tf.ones_like(values) if mask is None else mask
    if sample_weight is not None:
        weight = weight * _broadcast_weight(sample_weight, values)
    total = tf.reduce_sum(values * weight)
    if num_items_in_batch is not None:
        # Gradient accumulation: transformers divides the summed loss by the token count of the
        # whole accumulated batch rather than of this micro-batch.
        return tf.math.divide_no_nan(total, _float32(num_items_in_batch))
    return tf.math.divide_no_nan(total, tf.reduce_sum(weight))


def _sparse_ce(labels, logits, ignore_index=IGNORE_INDEX):
    """Per-entry cross-entropy (float32) and the float mask of entries that count.

    ``labels`` has the shape of ``logits`` without its last (class) axis. Ignored labels are swapped
    for class 0 before the op, because an out-of-range id makes it fail on CPU and give NaN on GPU;
    their loss is then zeroed by the mask.
    """
    logits = _float32(logits)
    labels = _class_ids(labels)
    keep = tf.not_equal(labels, ignore_index)
    safe_labels = tf.where(keep, labels, tf.zeros_like(labels))
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=safe_labels, logits=logits)
    return ce, tf.cast(keep, tf.float32)


def _cross_entropy(labels, logits, sample_weight=None, num_items_in_batch=None, ignore_index=IGNORE_INDEX):
    ce, mask = _sparse_ce(labels, logits, ignore_index)
    return _weighted_mean(ce, mask, sample_weight, num_items_in_batch)


# --------------------------------------------------------------------------------------------------
# task losses
# --------------------------------------------------------------------------------------------------


def sequence_classification_loss(labels, logits, *, num_labels, problem_type=None, sample_weight=None):
    """Loss of a ``*ForSequenceClassification`` head (also image/audio/video classification).

    Args:
        labels: ``[batch]`` class ids, ``[batch]``/``[batch, 1]`` regression targets (``num_labels == 1``),
            or ``[batch, num_labels]`` targets (multi-label: 0/1 or probabilities; multi-output regression).
        logits: ``[batch, num_labels]``, any float dtype.
        num_labels: the config's ``num_labels``.
        problem_type: the config's ``problem_type``; when None it is inferred as transformers does:
            ``"regression"`` if ``num_labels == 1``, else ``"single_label_classification"`` for integer
            labels, else ``"multi_label_classification"``. (transformers also writes the inferred
            value back to the config; the caller does that if wanted.)
        sample_weight: optional ``[batch]`` per-example weights (weighted mean; see module docstring).

    Returns:
        float32 scalar: cross-entropy with ``-100`` ignored (single label), mean squared error
        (regression; with one label both sides are flattened, torch's ``squeeze()`` rule), or mean
        binary cross-entropy with logits over all ``batch * num_labels`` entries (multi-label).
    """
    labels = tf.convert_to_tensor(labels)
    logits = _float32(logits)
    if problem_type is None:
        if num_labels == 1:
            problem_type = "regression"
        elif num_labels > 1 and labels.dtype.is_integer:
            problem_type = "single_label_classification"
        else:
            problem_type = "multi_label_classification"
    if problem_type not in _PROBLEM_TYPES:
        raise ValueError(f"Invalid problem_type {problem_type!r}; expected one of {_PROBLEM_TYPES} or None")

    if sample_weight is not None:
        sample_weight = tf.reshape(_float32(sample_weight), [-1])

    if problem_type == "regression":
        if num_labels == 1:
            # torch: MSELoss()(logits.squeeze(), labels.squeeze()) -- one value per example.
            logits = tf.reshape(logits, [-1])
            labels = tf.reshape(labels, [-1])
        return _weighted_mean(tf.math.squared_difference(logits, _float32(labels)), None, sample_weight)

    if problem_type == "single_label_classification":
        return _cross_entropy(tf.reshape(labels, [-1]), tf.reshape(logits, [-1, num_labels]), sample_weight)

    # multi_label_classification: BCEWithLogitsLoss, mean over every (example, label) entry.
    bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=_float32(labels), logits=logits)
    return _weighted_mean(bce, None, sample_weight)


def token_classification_loss(labels, logits, *, sample_weight=None, num_items_in_batch=None):
    """Loss of a ``*ForTokenClassification`` head.

    Args:
        labels: ``[batch, seq_len]`` class ids, ``-100`` for tokens to skip (padding, sub-word pieces).
        logits: ``[batch, seq_len, num_labels]``, any float dtype.
        sample_weight: optional ``[batch]`` per-example weights: the loss is
            ``sum(w * ce * mask) / sum(w * mask)`` over all non-ignored tokens.
        num_items_in_batch: optional divisor replacing the non-ignored token count (transformers'
            gradient-accumulation convention).

    Returns:
        float32 scalar: mean cross-entropy over the non-ignored tokens; 0.0 if every token is ignored
        (torch: NaN).
    """
    return _cross_entropy(labels, logits, sample_weight, num_items_in_batch)


def masked_lm_loss(labels, logits, *, sample_weight=None, num_items_in_batch=None):
    """Loss of a ``*ForMaskedLM`` head (transformers' ``ForMaskedLMLoss``).

    Args:
        labels: ``[batch, seq_len]`` token ids at masked positions, ``-100`` elsewhere.
        logits: ``[batch, seq_len, vocab_size]``, any float dtype.
        sample_weight: optional ``[batch]`` per-example weights (weighted mean over non-ignored tokens).
        num_items_in_batch: optional divisor replacing the non-ignored token count.

    Returns:
        float32 scalar: mean cross-entropy over the non-ignored tokens; 0.0 if there are none
        (torch: NaN).
    """
    return _cross_entropy(labels, logits, sample_weight, num_items_in_batch)


def seq2seq_lm_loss(labels, logits, *, sample_weight=None, num_items_in_batch=None):
    """Loss of a ``*ForConditionalGeneration`` head (T5, BART): transformers' cross-entropy with
    ``ignore_index=-100`` over the decoder's positions. The decoder's inputs are the labels shifted right
    (``layers.seq2seq.shift_tokens_right``), so position ``t``'s logits are scored against ``labels[:, t]``
    with no further shift.

    Args:
        labels: ``[batch, target_len]`` token ids; ``-100`` entries (padding) are ignored.
        logits: ``[batch, target_len, vocab_size]``, any float dtype.
        sample_weight: optional ``[batch]`` per-example weights (weighted mean over non-ignored tokens).
        num_items_in_batch: optional divisor replacing the non-ignored token count.

    Returns:
        float32 scalar: mean cross-entropy over the non-ignored tokens; 0.0 if there are none.
    """
    return _cross_entropy(labels, logits, sample_weight, num_items_in_batch)


def causal_lm_loss(labels, logits, *, sample_weight=None, num_items_in_batch=None):
    """Loss of a ``*ForCausalLM`` head (transformers' ``ForCausalLMLoss``).

    The logits at position ``t`` are scored against ``labels[..., t + 1]``: labels are shifted left
    by one and padded with ``-100``, so ``labels`` is normally just the ``input_ids`` (with padding set
    to ``-100``) and the last position never counts.

    Args:
        labels: ``[batch, seq_len]`` token ids, unshifted; ``-100`` entries are ignored.
        logits: ``[batch, seq_len, vocab_size]``, any float dtype.
        sample_weight: optional ``[batch]`` per-example weights (weighted mean over non-ignored tokens).
            A ``[batch, seq_len]`` weight is aligned with ``labels`` and shifted with them.
        num_items_in_batch: optional divisor replacing the non-ignored token count.

    Returns:
        float32 scalar: mean next-token cross-entropy; 0.0 if no token counts (torch: NaN).
    """
    labels = _class_ids(labels)
    # Shifting the labels (not the logits) keeps both at seq_len, as transformers does.
    shift_labels = tf.concat([labels[..., 1:], tf.fill(tf.shape(labels[..., :1]), IGNORE_INDEX)], axis=-1)
    if sample_weight is not None:
        # Per-token weights belong to the label positions, so they move with the labels; per-example
        # ones ([batch] or [batch, 1]) are the same at every position once broadcast.
        sample_weight = tf.broadcast_to(_broadcast_weight(sample_weight, labels), tf.shape(labels))
        sample_weight = tf.concat([sample_weight[..., 1:], tf.zeros_like(sample_weight[..., :1])], axis=-1)
    return _cross_entropy(shift_labels, logits, sample_weight, num_items_in_batch)


def question_answering_loss(start_positions, end_positions, start_logits, end_logits, *, sample_weight=None):
    """Loss of a ``*ForQuestionAnswering`` (extractive span) head.

    Exactly transformers' rule: positions are clamped to ``[0, seq_len]`` and ``seq_len`` is then the
    ignored index, so answers beyond the input are skipped -- while negative positions become 0 (the
    [CLS] "no answer" slot) and do count. The loss is the mean of the start and end cross-entropies.

    Args:
        start_positions, end_positions: ``[batch]`` (or ``[batch, 1]``) token indices.
        start_logits, end_logits: ``[batch, seq_len]``, any float dtype.
        sample_weight: optional ``[batch]`` per-example weights (weighted mean of each cross-entropy).

    Returns:
        float32 scalar ``(start_ce + end_ce) / 2``; a side whose positions are all ignored contributes
        0.0 (torch: NaN).
    """
    start_logits = _float32(start_logits)
    end_logits = _float32(end_logits)
    seq_len = tf.shape(start_logits)[1]

    def side(positions, logits):
        positions = tf.reshape(_class_ids(positions), [-1])
        positions = tf.clip_by_value(positions, 0, seq_len)
        return _cross_entropy(positions, logits, sample_weight, ignore_index=seq_len)

    if sample_weight is not None:
        sample_weight = tf.reshape(_float32(sample_weight), [-1])
    return (side(start_positions, start_logits) + side(end_positions, end_logits)) / 2.0


def multiple_choice_loss(labels, logits, *, sample_weight=None):
    """Loss of a ``*ForMultipleChoice`` head.

    Args:
        labels: ``[batch]`` index of the right choice; ``-100`` skips an example.
        logits: ``[batch, num_choices]``, any float dtype.
        sample_weight: optional ``[batch]`` per-example weights.

    Returns:
        float32 scalar mean cross-entropy over the choices.
    """
    if sample_weight is not None:
        sample_weight = tf.reshape(_float32(sample_weight), [-1])
    return _cross_entropy(tf.reshape(labels, [-1]), logits, sample_weight)


def pretraining_loss(
    labels, next_sentence_label, prediction_logits, seq_relationship_logits, *, sample_weight=None
):
    """Loss of ``BertForPreTraining``: masked-LM cross-entropy + next-sentence cross-entropy.

    Each part is a plain ``CrossEntropyLoss`` (``-100`` ignored). Unlike PyTorch -- where
    ``BertForPreTraining`` returns no loss at all unless *both* labels are given -- a missing label
    only drops its own part, so MLM-only data (no NSP pairs) trains too. With both labels present the
    value is torch's.

    Args:
        labels: ``[batch, seq_len]`` masked-LM labels, or None.
        next_sentence_label: ``[batch]`` (0 = continuation, 1 = random sentence), or None.
        prediction_logits: ``[batch, seq_len, vocab_size]``.
        seq_relationship_logits: ``[batch, 2]``.
        sample_weight: optional ``[batch]`` per-example weights, applied to both parts.

    Returns:
        float32 scalar, or None if both labels are None.
    """
    if labels is None and next_sentence_label is None:
        return None
    total = tf.constant(0.0, tf.float32)
    if labels is not None:
        total += masked_lm_loss(labels, prediction_logits, sample_weight=sample_weight)
    if next_sentence_label is not None:
        nsp_logits = tf.reshape(_float32(seq_relationship_logits), [-1, 2])
        total += multiple_choice_loss(next_sentence_label, nsp_logits, sample_weight=sample_weight)
    return total
