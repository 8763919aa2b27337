"""What every encoder–decoder shares around its stacks: the decoder's inputs made from the labels.

Training a sequence-to-sequence model feeds the decoder the target shifted right by one (teacher forcing):
`decoder_input_ids[:, 0]` is the model's `decoder_start_token_id` and position t sees target tokens < t, so
its logits are scored against `labels[:, t]`. Padding in the labels is -100 (ignored by the loss); the
decoder reads the pad token there instead.
"""

from collections.abc import Mapping

import tensorflow as tf

from tfformers.errors import ConfigError
from tfformers.inputs import IGNORE_INDEX
from tfformers.outputs import BaseModelOutput


def decoder_start_token_id(config):
    """The token every decoder sequence begins with; a ConfigError when the config has none."""
    start = getattr(config, "decoder_start_token_id", None)
    if start is None:
        raise ConfigError(
            f"The {getattr(config, 'model_type', 'model')} config has no decoder_start_token_id, which starts "
            "every decoder sequence (T5 uses its pad token, BART its eos token). Set "
            "model.config.decoder_start_token_id (and generation_config.decoder_start_token_id) to that id."
        )
    return int(start)


def shift_tokens_right(labels, pad_token_id, start_token_id):
    """[batch, target_len] labels -> decoder_input_ids: the start token, then labels[:, :-1], with -100
    replaced by the pad token (transformers' `shift_tokens_right`)."""
    labels = tf.cast(labels, tf.int32)
    if pad_token_id is None:
        raise ConfigError("The config has no pad_token_id, which the decoder reads where the labels are -100.")
    start = tf.fill([tf.shape(labels)[0], 1], tf.constant(start_token_id, tf.int32))
    shifted = tf.concat([start, labels[:, :-1]], axis=1)
    return tf.where(tf.equal(shifted, IGNORE_INDEX), tf.constant(pad_token_id, tf.int32), shifted)


def decoder_inputs_from_labels(features, labels, config):
    """`features` with `decoder_input_ids` made from the labels when neither decoder ids nor decoder
    embeddings are given (transformers' behaviour when a seq2seq LM gets `labels`). `labels` is a dict
    with "labels", a tensor, or None."""
    if isinstance(labels, Mapping):
        labels = labels.get("labels")
    if labels is None or "decoder_input_ids" in features or "decoder_inputs_embeds" in features:
        return features
    if isinstance(labels, tf.TensorSpec):  # a symbolic batch: Keras builds the optimizer's state from specs
        decoder_ids = tf.TensorSpec(labels.shape, tf.int32, "decoder_input_ids")
    else:
        decoder_ids = shift_tokens_right(labels, config.pad_token_id, decoder_start_token_id(config))
    return {**features, "decoder_input_ids": decoder_ids}


def as_encoder_output(encoder_outputs):
    """`encoder_outputs` given by the caller (a BaseModelOutput, or a tuple whose [0] is the last hidden
    state, then optionally hidden states and attentions) as a BaseModelOutput."""
    if isinstance(encoder_outputs, BaseModelOutput):
        return encoder_outputs
    parts = tuple(encoder_outputs) if isinstance(encoder_outputs, (tuple, list)) else (encoder_outputs,)
    names = ("last_hidden_state", "hidden_states", "attentions")
    return BaseModelOutput(zip(names, parts))


def seq2seq_fields(decoder_outputs, encoder_outputs):
    """The per-layer outputs of both stacks under transformers' Seq2Seq output names (the decoder's last
    hidden state excluded: a head replaces it with its logits)."""
    return dict(
        decoder_hidden_states=decoder_outputs.hidden_states,
        decoder_attentions=decoder_outputs.attentions,
        cross_attentions=getattr(decoder_outputs, "cross_attentions", None),
        encoder_last_hidden_state=encoder_outputs.last_hidden_state,
        encoder_hidden_states=encoder_outputs.hidden_states,
        encoder_attentions=encoder_outputs.attentions,
    )
