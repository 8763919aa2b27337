"""Task-head mechanics shared by every architecture: the layers a head is built from and the outputs it
returns. A model file builds its heads from these (named as in its checkpoint) and calls them; it never
borrows another architecture's methods.
"""

import keras
import tensorflow as tf

from tfformers.errors import ConfigError, InputError
from tfformers.layers.core import dense, int8_product
from tfformers.outputs import (
    CausalLMOutput,
    MultipleChoiceModelOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from tfformers.quantization import embedding_table


def tied_logits(hidden_states, embedding, bias=None):
    """Vocabulary logits through the word-embedding layer's [vocab, hidden] table: [batch, seq, hidden] x
    [vocab, hidden]^T (+ bias [vocab]) -> [batch, seq, vocab], in the hidden states' dtype. A table quantized
    by `model.quantize` is multiplied as stored and each vocabulary column scaled back after."""
    table, row_scale = embedding_table(embedding)
    # as a 2-D product: XLA streams the [vocab, hidden] matrix faster than through a batched matmul
    flat = tf.reshape(hidden_states, [-1, hidden_states.shape[-1]])
    if row_scale is None:
        logits = tf.matmul(flat, tf.cast(table, flat.dtype), transpose_b=True)
    else:  # an int8 table, read as a Linear's int8 kernel [vocab, hidden] with its scale per vocabulary row
        logits = int8_product(flat, table, row_scale, inputs_quantizer=None)
    logits = tf.reshape(logits, tf.concat([tf.shape(hidden_states)[:-1], tf.shape(logits)[-1:]], axis=0))
    return logits if bias is None else logits + tf.cast(bias, logits.dtype)


def classifier_dropout(config, default=None):
    """The classifier's dropout: `config.classifier_dropout` when set, else `default` (the model's hidden
    dropout, `config.hidden_dropout_prob` for the BERT family)."""
    rate = getattr(config, "classifier_dropout", None)
    if rate is None:
        rate = config.hidden_dropout_prob if default is None else default
    return keras.layers.Dropout(rate)


def span_logits(config):
    """Question answering's projection to (start, end) logits per token."""
    if config.num_labels != 2:
        raise ConfigError(
            f"Question answering predicts start and end logits: num_labels must be 2, not {config.num_labels}."
        )
    return dense(config.num_labels, config)


def flatten_choices(inputs):
    """[batch, choices, ...] inputs -> [batch * choices, ...], and the number of choices."""
    first = inputs.get("input_ids", inputs.get("inputs_embeds"))
    num_choices = first.shape[1] if first.shape[1] is not None else tf.shape(first)[1]
    flat = {}
    for name, value in inputs.items():
        keep = 2 if name == "inputs_embeds" else 1
        flat[name] = tf.reshape(value, tf.concat([[-1], tf.shape(value)[-keep:]], axis=0))
    return flat, num_choices


def token_classification_output(out, dropout, classifier, training):
    """classifier(dropout(last_hidden_state)): one label distribution per token."""
    return TokenClassifierOutput(
        logits=classifier(dropout(out.last_hidden_state, training=training)),
        hidden_states=out.hidden_states,
        attentions=out.attentions,
    )


def question_answering_output(out, qa_outputs, hidden_states=None):
    """Start and end logits per token from `qa_outputs` over `hidden_states` (default: the last)."""
    hidden_states = out.last_hidden_state if hidden_states is None else hidden_states
    start_logits, end_logits = tf.unstack(qa_outputs(hidden_states), axis=-1)
    return QuestionAnsweringModelOutput(
        start_logits=start_logits,
        end_logits=end_logits,
        hidden_states=out.hidden_states,
        attentions=out.attentions,
    )


def multiple_choice_output(out, logits, num_choices):
    """One logit per flattened (example, choice) row -> [batch, num_choices]."""
    return MultipleChoiceModelOutput(
        logits=tf.reshape(logits, [-1, num_choices]),
        hidden_states=out.hidden_states,
        attentions=out.attentions,
    )



# ---------------------------------------------------------------------------------------------- decoders


def causal_lm_head(config):
    """`lm_head`: a bias-free projection to the vocabulary, or None when the config ties it to the input
    embeddings (then the logits go through the embedding matrix and no `lm_head.weight` is stored)."""
    return None if config.tie_word_embeddings else dense(config.vocab_size, config, use_bias=False)


def tied_lm_head_keys(config, embeddings_key):
    """`tied_weights_keys` of a causal LM: `lm_head.weight` is an alias of the embeddings when tied."""
    return {"lm_head.weight": embeddings_key} if config.tie_word_embeddings else {}


def causal_lm_output(model, out, logits_to_keep=0):
    """Next-token logits [batch, seq, vocab] from the backbone's output; only the last `logits_to_keep`
    positions when it is positive (generation needs the last one only)."""
    hidden_states = out.last_hidden_state
    if logits_to_keep:
        hidden_states = hidden_states[:, -logits_to_keep:]
    lm_head = getattr(model, "lm_head", None)
    logits = lm_head(hidden_states) if lm_head is not None else tied_logits(hidden_states, model.get_input_embeddings())
    return CausalLMOutput(logits=logits, hidden_states=out.hidden_states, attentions=out.attentions)


def last_token_logits(logits, input_ids, pad_token_id):
    """[batch, seq, labels] -> [batch, labels] at each row's rightmost token that is not `pad_token_id`, so
    left and right padding both work (transformers' rule for decoder classifiers). Without a pad id, or
    from `inputs_embeds`, the last position is taken, which is only right for unpadded batches."""
    seq_length = tf.shape(logits)[1]
    if input_ids is None or pad_token_id is None:
        if pad_token_id is None and logits.shape[0] not in (None, 1):
            raise InputError(
                f"A batch of {logits.shape[0]} sequences cannot be classified without a pad token: the config's "
                "pad_token_id is None, so the last real token of a padded row cannot be found. Set "
                "model.config.pad_token_id (e.g. to the tokenizer's pad or eos id) or classify one at a time."
            )
        return logits[:, -1]
    not_padding = tf.cast(tf.not_equal(input_ids, pad_token_id), tf.int32)
    last = tf.argmax(tf.range(seq_length)[None, :] * not_padding, axis=-1, output_type=tf.int32)
    return tf.gather(logits, last, batch_dims=1)


def last_token_classification_output(out, score, input_ids, pad_token_id):
    """A decoder's sequence classification: `score` [batch, seq, labels] read at the last real token."""
    return SequenceClassifierOutput(
        logits=last_token_logits(score(out.last_hidden_state), input_ids, pad_token_id),
        hidden_states=out.hidden_states,
        attentions=out.attentions,
    )
