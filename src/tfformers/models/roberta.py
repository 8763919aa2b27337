"""RoBERTa (Liu et al., 2019): BERT's network, pretrained better; XLM-RoBERTa is the same network.

Only two things differ from BERT, so the encoder, pooler and plumbing are imported from `bert`:
- position ids count from `padding_idx + 1` over real tokens while padding keeps `padding_idx` (fairseq's
  `make_positions`), so the position table has `padding_idx + 1` extra rows (514 for 512 tokens);
- the heads: `lm_head` (dense, GELU, layer_norm, tied decoder) and `classifier.dense` / `out_proj`.
Attribute names equal PyTorch transformers' module names (`roberta.encoder.layer.0.attention.self.query`).
"""

import keras
import tensorflow as tf
from transformers import RobertaConfig, XLMRobertaConfig

from tfformers.errors import ConfigError
from tfformers.layers import dense, get_activation, layer_norm
from tfformers.layers.heads import (
    classifier_dropout,
    flatten_choices,
    multiple_choice_output,
    question_answering_output,
    span_logits,
    tied_logits,
    token_classification_output,
)
from tfformers.models.bert import BertEmbeddings, BertMainLayer, TFBertPreTrainedModel
from tfformers.outputs import MaskedLMOutput, SequenceClassifierOutput

# ------------------------------------------------------------------------------------------ embeddings


class RobertaEmbeddings(BertEmbeddings):
    """BERT's embeddings with padding-aware position ids."""

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.padding_idx = config.pad_token_id

    def default_position_ids(self, input_ids, seq_length):
        """[batch, seq]: padding_idx + 1, + 2, ... over real tokens, padding_idx on padding tokens. From
        inputs_embeds padding cannot be seen: [1, seq] of padding_idx + 1, + 2, ..."""
        if input_ids is None:
            return tf.range(self.padding_idx + 1, seq_length + self.padding_idx + 1)[None, :]
        mask = tf.cast(tf.not_equal(input_ids, self.padding_idx), tf.int32)
        return tf.cumsum(mask, axis=1) * mask + self.padding_idx

    @property
    def max_sequence_length(self):
        return self.config.max_position_embeddings - self.padding_idx - 1


# ------------------------------------------------------------------------------------ encoder and stack
# BERT's (BertEncoder of BertLayer blocks, BertPooler), under the same names.


class RobertaMainLayer(BertMainLayer):
    """The backbone (PyTorch's RobertaModel): RoBERTa embeddings, BERT encoder, optional pooler."""

    embeddings_class = RobertaEmbeddings


# ----------------------------------------------------------------------------------------------- heads


class RobertaLMHead(keras.layers.Layer):
    """dense, exact GELU (whatever hidden_act says), layer_norm, then vocabulary logits through the tied
    word embeddings (`decoder`, not stored) plus `bias`."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.dense = dense(config.hidden_size, config, activation=get_activation("gelu"))
        self.layer_norm = layer_norm(config.layer_norm_eps)
        self.bias = self.add_weight(shape=(config.vocab_size,), initializer="zeros", name="bias")

    def call(self, features, word_embeddings):
        return tied_logits(self.layer_norm(self.dense(features)), word_embeddings, self.bias)


class RobertaClassificationHead(keras.layers.Layer):
    """out_proj(dropout(tanh(dense(dropout(first token))))): RoBERTa classifies without BERT's pooler."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.dense = dense(config.hidden_size, config, activation="tanh")
        self.dropout = classifier_dropout(config)
        self.out_proj = dense(config.num_labels, config)

    def call(self, features, training=False):
        hidden_states = self.dropout(features[:, 0], training=training)
        hidden_states = self.dropout(self.dense(hidden_states), training=training)
        return self.out_proj(hidden_states)


# ----------------------------------------------------------------------------------------------- models


class TFRobertaPreTrainedModel(TFBertPreTrainedModel):
    config_class = (RobertaConfig, XLMRobertaConfig)
    base_model_prefix = "roberta"
    main_layer_class = RobertaMainLayer

    @property
    def pytorch_architecture(self):
        """`RobertaForMaskedLM`, or `XLMRobertaForMaskedLM` for an XLM-RoBERTa config."""
        name = super().pytorch_architecture
        return "XLM" + name if self.config.model_type == "xlm-roberta" else name


class TFRobertaModel(TFRobertaPreTrainedModel):
    is_base_model = True

    def __init__(self, config, add_pooling_layer=True, **kwargs):
        super().__init__(config, **kwargs)
        self.roberta = self.main_layer_class(config, add_pooling_layer=add_pooling_layer)

    def get_config(self):
        return {**super().get_config(), "add_pooling_layer": self.roberta.pooler is not None}


class TFRobertaForMaskedLM(TFRobertaPreTrainedModel):
    task = "masked-lm"
    tied_weights_keys = {
        "lm_head.decoder.weight": "roberta.embeddings.word_embeddings.weight",
        "lm_head.decoder.bias": "lm_head.bias",
    }
    vocabulary_output_keys = ("lm_head.bias",)

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        if not config.tie_word_embeddings:
            raise ConfigError(
                "The config sets tie_word_embeddings=False, but tfformers' RoBERTa always ties "
                "lm_head.decoder to the word embeddings (a separate decoder would be ignored)."
            )
        self.roberta = self.main_layer_class(config, add_pooling_layer=False)
        self.lm_head = RobertaLMHead(config)

    def forward(self, inputs, training, output_attentions, output_hidden_states):
        out = self.backbone(inputs, training, output_attentions, output_hidden_states)
        return MaskedLMOutput(
            logits=self.lm_head(out.last_hidden_state, word_embeddings=self.get_input_embeddings()),
            hidden_states=out.hidden_states,
            attentions=out.attentions,
        )


class TFRobertaForSequenceClassification(TFRobertaPreTrainedModel):
    task = "sequence-classification"

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.roberta = self.main_layer_class(config, add_pooling_layer=False)
        self.classifier = RobertaClassificationHead(config)

    def forward(self, inputs, training, output_attentions, output_hidden_states):
        out = self.backbone(inputs, training, output_attentions, output_hidden_states)
        return SequenceClassifierOutput(
            logits=self.classifier(out.last_hidden_state, training=training),
            hidden_states=out.hidden_states,
            attentions=out.attentions,
        )


class TFRobertaForTokenClassification(TFRobertaPreTrainedModel):
    task = "token-classification"

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.roberta = self.main_layer_class(config, add_pooling_layer=False)
        self.dropout = classifier_dropout(config)
        self.classifier = dense(config.num_labels, config)

    def forward(self, inputs, training, output_attentions, output_hidden_states):
        out = self.backbone(inputs, training, output_attentions, output_hidden_states)
        return token_classification_output(out, self.dropout, self.classifier, training)


class TFRobertaForQuestionAnswering(TFRobertaPreTrainedModel):
    task = "question-answering"

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.roberta = self.main_layer_class(config, add_pooling_layer=False)
        self.qa_outputs = span_logits(config)

    def forward(self, inputs, training, output_attentions, output_hidden_states):
        out = self.backbone(inputs, training, output_attentions, output_hidden_states)
        return question_answering_output(out, self.qa_outputs)


class TFRobertaForMultipleChoice(TFRobertaPreTrainedModel):
    task = "multiple-choice"

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.roberta = self.main_layer_class(config)
        self.dropout = keras.layers.Dropout(config.hidden_dropout_prob)  # not classifier_dropout, as PyTorch
        self.classifier = dense(1, config)

    def forward(self, inputs, training, output_attentions, output_hidden_states):
        flat, num_choices = flatten_choices(inputs)
        out = self.backbone(flat, training, output_attentions, output_hidden_states)
        logits = self.classifier(self.dropout(out.pooler_output, training=training))
        return multiple_choice_output(out, logits, num_choices)
