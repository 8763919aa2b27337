"""DistilBERT (Sanh et al., 2019): BERT distilled to half the depth, without token types or pooler.

Word + position embeddings, a stack of post-norm Transformer blocks, task heads. Attribute names equal
PyTorch transformers' module names (`distilbert.transformer.layer.0.attention.q_lin`, `ffn.lin1`,
`sa_layer_norm`, ...), and the configuration keeps DistilBERT's own names (`dim`, `hidden_dim`,
`n_heads`, `n_layers`, `dropout`, `activation`). The stack loop comes from BERT.
"""

import keras
import numpy as np
import tensorflow as tf
from transformers import DistilBertConfig

from tfformers.errors import ConfigError
from tfformers.layers import (
    attention_bias,
    check_sequence_length,
    check_token_ids,
    dense,
    embedding,
    get_activation,
    layer_norm,
    merge_heads,
    scaled_dot_product_attention,
    split_heads,
)
from tfformers.layers.heads import (
    flatten_choices,
    multiple_choice_output,
    question_answering_output,
    span_logits,
    tied_logits,
    token_classification_output,
)
from tfformers.modeling import TFPreTrainedModel
from tfformers.models.bert import BertEncoder
from tfformers.outputs import BaseModelOutput, MaskedLMOutput, SequenceClassifierOutput

# DistilBERT's LayerNorms use a fixed epsilon; the config has no layer_norm_eps.
LAYER_NORM_EPS = 1e-12

# ------------------------------------------------------------------------------------------ embeddings


def sinusoidal_positions(shape, dtype=None):
    """[positions, dim] table of sin (even columns) / cos (odd columns), the `sinusoidal_pos_embds` init."""
    n_pos, dim = shape
    angles = np.arange(n_pos)[:, None] / np.power(10000, 2 * (np.arange(dim) // 2) / dim)[None, :]
    table = np.where(np.arange(dim) % 2 == 0, np.sin(angles), np.cos(angles))
    return tf.constant(table, dtype=dtype or "float32")


class Embeddings(keras.layers.Layer):
    """word + position embeddings, then LayerNorm and dropout (no token types)."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.word_embeddings = embedding(config.vocab_size, config.dim, config)
        if config.sinusoidal_pos_embds:  # only the initial values differ; checkpoints store the table
            self.position_embeddings = keras.layers.Embedding(
                config.max_position_embeddings, config.dim, embeddings_initializer=sinusoidal_positions
            )
        else:
            self.position_embeddings = embedding(config.max_position_embeddings, config.dim, config)
        self.LayerNorm = layer_norm(LAYER_NORM_EPS)
        self.dropout = keras.layers.Dropout(config.dropout)

    def call(self, input_ids=None, position_ids=None, inputs_embeds=None, training=False):
        if inputs_embeds is None:
            input_ids = check_token_ids(input_ids, self.config.vocab_size)
            inputs_embeds = self.word_embeddings(input_ids)
        check_sequence_length(inputs_embeds.shape[1], self.config.max_position_embeddings)
        if position_ids is None:
            position_ids = tf.range(tf.shape(inputs_embeds)[1])[None, :]
        embeddings = inputs_embeds + self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(embeddings), training=training)


# ------------------------------------------------------------------------------------------- attention


class DistilBertSelfAttention(keras.layers.Layer):
    """Multi-head self-attention with its output projection (`out_lin`) inside, unlike BERT."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        if config.dim % config.n_heads:
            raise ConfigError(f"dim={config.dim} is not a multiple of n_heads={config.n_heads}.")
        self.n_heads = config.n_heads
        self.q_lin = dense(config.dim, config)
        self.k_lin = dense(config.dim, config)
        self.v_lin = dense(config.dim, config)
        self.out_lin = dense(config.dim, config)
        self.dropout = keras.layers.Dropout(config.attention_dropout)

    def call(self, hidden_states, bias, training=False):
        query, key, value = (
            split_heads(projection(hidden_states), self.n_heads)
            for projection in (self.q_lin, self.k_lin, self.v_lin)
        )
        context, probs = scaled_dot_product_attention(query, key, value, bias, self.dropout, training)
        return self.out_lin(merge_heads(context)), probs


# ----------------------------------------------------------------------------------------------- block


class FFN(keras.layers.Layer):
    """lin2(activation(lin1(x))), then dropout."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.dropout = keras.layers.Dropout(config.dropout)
        self.lin1 = dense(config.hidden_dim, config, activation=get_activation(config.activation))
        self.lin2 = dense(config.dim, config)

    def call(self, hidden_states, training=False):
        return self.dropout(self.lin2(self.lin1(hidden_states)), training=training)


class TransformerBlock(keras.layers.Layer):
    """Post-norm block: LayerNorm(x + attention(x)), then LayerNorm(h + ffn(h))."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.attention = DistilBertSelfAttention(config)
        self.sa_layer_norm = layer_norm(LAYER_NORM_EPS)
        self.ffn = FFN(config)
        self.output_layer_norm = layer_norm(LAYER_NORM_EPS)

    def call(self, hidden_states, bias, training=False):
        attention_output, probs = self.attention(hidden_states, bias, training=training)
        attention_output = self.sa_layer_norm(attention_output + hidden_states)
        ffn_output = self.ffn(attention_output, training=training)
        return self.output_layer_norm(ffn_output + attention_output), probs


# ----------------------------------------------------------------------------------------------- stack


class Transformer(BertEncoder):
    """`transformer.layer.N`: BERT's stack loop over DistilBERT blocks (n_layers of them)."""

    layer_class = TransformerBlock


class DistilBertMainLayer(keras.layers.Layer):
    """The backbone (PyTorch's DistilBertModel): embeddings and the transformer stack."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.embeddings = Embeddings(config)
        self.transformer = Transformer(config)

    def call(
        self,
        input_ids=None,
        attention_mask=None,
        position_ids=None,
        inputs_embeds=None,
        training=False,
        output_attentions=False,
        output_hidden_states=False,
    ):
        hidden_states = self.embeddings(input_ids, position_ids, inputs_embeds, training=training)
        if attention_mask is None:
            attention_mask = tf.ones(tf.shape(hidden_states)[:2], dtype=tf.int32)
        last_hidden_state, hidden, attentions = self.transformer(
            hidden_states,
            attention_bias(attention_mask, hidden_states.dtype),
            training=training,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
        )
        return BaseModelOutput(last_hidden_state=last_hidden_state, hidden_states=hidden, attentions=attentions)


# ----------------------------------------------------------------------------------------------- heads


class VocabProjector(keras.layers.Layer):
    """`vocab_projector`: logits through the word-embedding matrix (tied, so only the bias is stored)."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.bias = self.add_weight(shape=(config.vocab_size,), initializer="zeros", name="bias")

    def call(self, hidden_states, word_embeddings):
        return tied_logits(hidden_states, word_embeddings, self.bias)


def first_token_logits(model, sequence_output, training):
    """classifier(dropout(relu(pre_classifier(hidden state of the first token)))): sequence
    classification and multiple choice."""
    pooled = model.pre_classifier(sequence_output[:, 0])
    return model.classifier(model.dropout(pooled, training=training))


# ----------------------------------------------------------------------------------------------- models


class TFDistilBertPreTrainedModel(TFPreTrainedModel):
    config_class = DistilBertConfig
    base_model_prefix = "distilbert"
    main_layer_class = DistilBertMainLayer
    input_names = ("input_ids", "attention_mask", "position_ids", "inputs_embeds")  # no token types

    def get_input_embeddings(self):
        return self.distilbert.embeddings.word_embeddings


class TFDistilBertModel(TFDistilBertPreTrainedModel):
    is_base_model = True

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.distilbert = self.main_layer_class(config)


class TFDistilBertForMaskedLM(TFDistilBertPreTrainedModel):
    task = "masked-lm"
    tied_weights_keys = {"vocab_projector.weight": "distilbert.embeddings.word_embeddings.weight"}
    vocabulary_output_keys = ("vocab_projector.bias",)

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        if not config.tie_word_embeddings:
            raise ConfigError(
                "The config sets tie_word_embeddings=False, but tfformers' DistilBERT always ties "
                "vocab_projector to the word embeddings (a separate projection would be ignored)."
            )
        self.distilbert = self.main_layer_class(config)
        self.vocab_transform = dense(config.dim, config, activation=get_activation(config.activation))
        self.vocab_layer_norm = layer_norm(LAYER_NORM_EPS)
        self.vocab_projector = VocabProjector(config)

    def forward(self, inputs, training, output_attentions, output_hidden_states):
        out = self.backbone(inputs, training, output_attentions, output_hidden_states)
        hidden_states = self.vocab_layer_norm(self.vocab_transform(out.last_hidden_state))
        return MaskedLMOutput(
            logits=self.vocab_projector(hidden_states, word_embeddings=self.get_input_embeddings()),
            hidden_states=out.hidden_states,
            attentions=out.attentions,
        )


class TFDistilBertForSequenceClassification(TFDistilBertPreTrainedModel):
    task = "sequence-classification"

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.distilbert = self.main_layer_class(config)
        self.pre_classifier = dense(config.dim, config, activation="relu")
        self.classifier = dense(config.num_labels, config)
        self.dropout = keras.layers.Dropout(config.seq_classif_dropout)

    def forward(self, inputs, training, output_attentions, output_hidden_states):
        out = self.backbone(inputs, training, output_attentions, output_hidden_states)
        return SequenceClassifierOutput(
            logits=first_token_logits(self, out.last_hidden_state, training),
            hidden_states=out.hidden_states,
            attentions=out.attentions,
        )


class TFDistilBertForTokenClassification(TFDistilBertPreTrainedModel):
    task = "token-classification"

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.distilbert = self.main_layer_class(config)
        self.dropout = keras.layers.Dropout(config.dropout)
        self.classifier = dense(config.num_labels, config)

    def forward(self, inputs, training, output_attentions, output_hidden_states):
        out = self.backbone(inputs, training, output_attentions, output_hidden_states)
        return token_classification_output(out, self.dropout, self.classifier, training)


class TFDistilBertForQuestionAnswering(TFDistilBertPreTrainedModel):
    task = "question-answering"

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.distilbert = self.main_layer_class(config)
        self.qa_outputs = span_logits(config)
        self.dropout = keras.layers.Dropout(config.qa_dropout)

    def forward(self, inputs, training, output_attentions, output_hidden_states):
        out = self.backbone(inputs, training, output_attentions, output_hidden_states)
        hidden_states = self.dropout(out.last_hidden_state, training=training)
        return question_answering_output(out, self.qa_outputs, hidden_states)


class TFDistilBertForMultipleChoice(TFDistilBertPreTrainedModel):
    task = "multiple-choice"

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.distilbert = self.main_layer_class(config)
        self.pre_classifier = dense(config.dim, config, activation="relu")
        self.classifier = dense(1, config)
        self.dropout = keras.layers.Dropout(config.seq_classif_dropout)

    def forward(self, inputs, training, output_attentions, output_hidden_states):
        flat, num_choices = flatten_choices(inputs)
        out = self.backbone(flat, training, output_attentions, output_hidden_states)
        logits = first_token_logits(self, out.last_hidden_state, training)
        return multiple_choice_output(out, logits, num_choices)
