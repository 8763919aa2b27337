"""BERT (Devlin et al., 2018): embeddings, a stack of post-norm Transformer encoder blocks, task heads.

Attribute names equal PyTorch transformers' module names, so `bert.encoder.layer.0.attention.self.query`
is the same path in both (`output_` stands for `output`, a reserved Keras property).
"""

import keras
import tensorflow as tf
from transformers import BertConfig

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
    classifier_dropout,
    flatten_choices,
    multiple_choice_output,
    question_answering_output,
    span_logits,
    tied_logits,
    token_classification_output,
)
from tfformers.modeling import TFPreTrainedModel
from tfformers.outputs import (
    BaseModelOutputWithPooling,
    MaskedLMOutput,
    PreTrainingOutput,
    SequenceClassifierOutput,
)

# ------------------------------------------------------------------------------------------ embeddings


class BertEmbeddings(keras.layers.Layer):
    """word + position + token-type embeddings, then LayerNorm and dropout."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        if getattr(config, "position_embedding_type", "absolute") != "absolute":
            raise ConfigError(
                f"position_embedding_type={config.position_embedding_type!r} is not supported; "
                "tfformers implements 'absolute'."
            )
        self.config = config
        self.word_embeddings = embedding(config.vocab_size, config.hidden_size, config)
        self.position_embeddings = embedding(config.max_position_embeddings, config.hidden_size, config)
        self.token_type_embeddings = embedding(config.type_vocab_size, config.hidden_size, config)
        self.LayerNorm = layer_norm(config.layer_norm_eps)
        self.dropout = keras.layers.Dropout(config.hidden_dropout_prob)

    def default_position_ids(self, input_ids, seq_length):
        """Positions when the caller gives none: [1, seq] of 0, 1, 2, ... (RoBERTa overrides this)."""
        return tf.range(seq_length)[None, :]

    @property
    def max_sequence_length(self):
        """The longest input the position table covers."""
        return self.config.max_position_embeddings

    def call(self, input_ids=None, token_type_ids=None, position_ids=None, inputs_embeds=None, training=False):
        if inputs_embeds is None:
            input_ids = check_token_ids(input_ids, self.config.vocab_size)
            inputs_embeds = self.word_embeddings(input_ids)
        check_sequence_length(inputs_embeds.shape[1], self.max_sequence_length)
        if position_ids is None:
            position_ids = self.default_position_ids(input_ids, tf.shape(inputs_embeds)[1])
        if token_type_ids is None:
            token_type_ids = tf.zeros(tf.shape(inputs_embeds)[:2], dtype=tf.int32)
        else:
            token_type_ids = check_token_ids(token_type_ids, self.config.type_vocab_size, "token_type_ids")
        embeddings = (
            inputs_embeds
            + self.token_type_embeddings(token_type_ids)
            + self.position_embeddings(position_ids)
        )
        return self.dropout(self.LayerNorm(embeddings), training=training)


# ------------------------------------------------------------------------------------------- attention


class BertSelfAttention(keras.layers.Layer):
    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        if config.hidden_size % config.num_attention_heads:
            raise ConfigError(
                f"hidden_size={config.hidden_size} is not a multiple of "
                f"num_attention_heads={config.num_attention_heads}."
            )
        self.num_heads = config.num_attention_heads
        use_bias = getattr(config, "qkv_bias", True)  # ViT's configs may drop the biases
        self.query = dense(config.hidden_size, config, use_bias=use_bias)
        self.key = dense(config.hidden_size, config, use_bias=use_bias)
        self.value = dense(config.hidden_size, config, use_bias=use_bias)
        self.dropout = keras.layers.Dropout(config.attention_probs_dropout_prob)

    def call(self, hidden_states, bias, training=False):
        query, key, value = (
            split_heads(projection(hidden_states), self.num_heads)
            for projection in (self.query, self.key, self.value)
        )
        context, probs = scaled_dot_product_attention(query, key, value, bias, self.dropout, training)
        return merge_heads(context), probs


class BertOutput(keras.layers.Layer):
    """Projection, dropout, then LayerNorm over the residual sum (post-norm). PyTorch has two identical
    classes for this (BertSelfOutput after attention, BertOutput after the MLP)."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.dense = dense(config.hidden_size, config)
        self.LayerNorm = layer_norm(config.layer_norm_eps)
        self.dropout = keras.layers.Dropout(config.hidden_dropout_prob)

    def call(self, hidden_states, residual, training=False):
        return self.LayerNorm(self.dropout(self.dense(hidden_states), training=training) + residual)


class BertAttention(keras.layers.Layer):
    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.self = BertSelfAttention(config)
        self.output_ = BertOutput(config)

    def call(self, hidden_states, bias, training=False):
        context, probs = self.self(hidden_states, bias, training=training)
        return self.output_(context, hidden_states, training=training), probs


# ----------------------------------------------------------------------------------------------- block


class BertIntermediate(keras.layers.Layer):
    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.dense = dense(config.intermediate_size, config, activation=get_activation(config.hidden_act))

    def call(self, hidden_states):
        return self.dense(hidden_states)


class BertLayer(keras.layers.Layer):
    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output_ = BertOutput(config)

    def call(self, hidden_states, bias, training=False):
        attention_output, probs = self.attention(hidden_states, bias, training=training)
        return self.output_(self.intermediate(attention_output), attention_output, training=training), probs


# ----------------------------------------------------------------------------------------------- stack


class BertEncoder(keras.layers.Layer):
    """The stack of blocks; every block maps (hidden_states, bias) to (hidden_states, attention probs)."""

    layer_class = BertLayer

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.layer = [self.layer_class(config) for i in range(config.num_hidden_layers)]

    def call(self, hidden_states, bias, training=False, output_attentions=False, output_hidden_states=False):
        all_hidden_states, all_attentions = [hidden_states], []
        for block in self.layer:
            hidden_states, probs = block(hidden_states, bias, training=training)
            all_hidden_states.append(hidden_states)
            all_attentions.append(probs)
        return (
            hidden_states,
            tuple(all_hidden_states) if output_hidden_states else None,
            tuple(all_attentions) if output_attentions else None,
        )


class BertPooler(keras.layers.Layer):
    """tanh(dense(first token)): the sentence representation the NSP and classification heads use."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.dense = dense(config.hidden_size, config, activation="tanh")

    def call(self, hidden_states):
        return self.dense(hidden_states[:, 0])


class BertMainLayer(keras.layers.Layer):
    """The backbone (PyTorch's BertModel): embeddings, encoder and the optional pooler."""

    embeddings_class = BertEmbeddings

    def __init__(self, config, add_pooling_layer=True, **kwargs):
        super().__init__(**kwargs)
        if getattr(config, "is_decoder", False) or getattr(config, "add_cross_attention", False):
            raise ConfigError(
                "is_decoder / add_cross_attention are set in the config, but tfformers implements this "
                "architecture as a bidirectional encoder only; set them to False."
            )
        self.embeddings = self.embeddings_class(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None

    def call(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        inputs_embeds=None,
        training=False,
        output_attentions=False,
        output_hidden_states=False,
    ):
        hidden_states = self.embeddings(
            input_ids, token_type_ids, position_ids, inputs_embeds, training=training
        )
        if attention_mask is None:
            attention_mask = tf.ones(tf.shape(hidden_states)[:2], dtype=tf.int32)
        sequence_output, hidden, attentions = self.encoder(
            hidden_states,
            attention_bias(attention_mask, hidden_states.dtype),
            training=training,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
        )
        return BaseModelOutputWithPooling(
            last_hidden_state=sequence_output,
            pooler_output=self.pooler(sequence_output) if self.pooler is not None else None,
            hidden_states=hidden,
            attentions=attentions,
        )


# ----------------------------------------------------------------------------------------------- heads


class BertPredictionHeadTransform(keras.layers.Layer):
    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.dense = dense(config.hidden_size, config, activation=get_activation(config.hidden_act))
        self.LayerNorm = layer_norm(config.layer_norm_eps)

    def call(self, hidden_states):
        return self.LayerNorm(self.dense(hidden_states))


class BertLMPredictionHead(keras.layers.Layer):
    """Vocabulary logits through the (tied) word-embedding layer's table plus an output bias. The
    `word_embeddings` layer comes as a keyword: Keras takes only tensors as positional arguments."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.transform = BertPredictionHeadTransform(config)
        self.bias = self.add_weight(shape=(config.vocab_size,), initializer="zeros", name="bias")

    def call(self, hidden_states, word_embeddings):
        return tied_logits(self.transform(hidden_states), word_embeddings, self.bias)


class BertOnlyMLMHead(keras.layers.Layer):
    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.predictions = BertLMPredictionHead(config)

    def call(self, sequence_output, word_embeddings):
        return self.predictions(sequence_output, word_embeddings=word_embeddings)


class BertPreTrainingHeads(keras.layers.Layer):
    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.predictions = BertLMPredictionHead(config)
        self.seq_relationship = dense(2, config)

    def call(self, sequence_output, pooled_output, word_embeddings):
        return self.predictions(sequence_output, word_embeddings=word_embeddings), self.seq_relationship(pooled_output)


# ----------------------------------------------------------------------------------------------- models


class TFBertPreTrainedModel(TFPreTrainedModel):
    config_class = BertConfig
    base_model_prefix = "bert"
    main_layer_class = BertMainLayer

    def get_input_embeddings(self):
        return getattr(self, self.base_model_prefix).embeddings.word_embeddings


class TFBertModel(TFBertPreTrainedModel):
    is_base_model = True

    def __init__(self, config, add_pooling_layer=True, **kwargs):
        super().__init__(config, **kwargs)
        self.bert = self.main_layer_class(config, add_pooling_layer=add_pooling_layer)

    def get_config(self):
        return {**super().get_config(), "add_pooling_layer": self.bert.pooler is not None}


_TIED_LM_KEYS = {
    "cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
    "cls.predictions.decoder.bias": "cls.predictions.bias",
}


class TFBertForPreTraining(TFBertPreTrainedModel):
    task = "pretraining"
    tied_weights_keys = _TIED_LM_KEYS
    vocabulary_output_keys = ("cls.predictions.bias",)

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.bert = self.main_layer_class(config)
        self.cls = BertPreTrainingHeads(config)

    def forward(self, inputs, training, output_attentions, output_hidden_states):
        out = self.backbone(inputs, training, output_attentions, output_hidden_states)
        prediction_logits, seq_relationship_logits = self.cls(
            out.last_hidden_state, out.pooler_output, word_embeddings=self.get_input_embeddings()
        )
        return PreTrainingOutput(
            prediction_logits=prediction_logits,
            seq_relationship_logits=seq_relationship_logits,
            hidden_states=out.hidden_states,
            attentions=out.attentions,
        )


class TFBertForMaskedLM(TFBertPreTrainedModel):
    task = "masked-lm"
    tied_weights_keys = _TIED_LM_KEYS
    vocabulary_output_keys = ("cls.predictions.bias",)

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.bert = self.main_layer_class(config, add_pooling_layer=False)
        self.cls = BertOnlyMLMHead(config)

    def forward(self, inputs, training, output_attentions, output_hidden_states):
        out = self.backbone(inputs, training, output_attentions, output_hidden_states)
        return MaskedLMOutput(
            logits=self.cls(out.last_hidden_state, word_embeddings=self.get_input_embeddings()),
            hidden_states=out.hidden_states,
            attentions=out.attentions,
        )


class TFBertForSequenceClassification(TFBertPreTrainedModel):
    task = "sequence-classification"

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.bert = self.main_layer_class(config)
        self.dropout = classifier_dropout(config)
        self.classifier = dense(config.num_labels, config)

    def forward(self, inputs, training, output_attentions, output_hidden_states):
        out = self.backbone(inputs, training, output_attentions, output_hidden_states)
        return SequenceClassifierOutput(
            logits=self.classifier(self.dropout(out.pooler_output, training=training)),
            hidden_states=out.hidden_states,
            attentions=out.attentions,
        )


class TFBertForTokenClassification(TFBertPreTrainedModel):
    task = "token-classification"

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.bert = self.main_layer_class(config, add_pooling_layer=False)
        self.dropout = classifier_dropout(config)
        self.classifier = dense(config.num_labels, config)

    def forward(self, inputs, training, output_attentions, output_hidden_states):
        out = self.backbone(inputs, training, output_attentions, output_hidden_states)
        return token_classification_output(out, self.dropout, self.classifier, training)


class TFBertForQuestionAnswering(TFBertPreTrainedModel):
    task = "question-answering"

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.bert = self.main_layer_class(config, add_pooling_layer=False)
        self.qa_outputs = span_logits(config)

    def forward(self, inputs, training, output_attentions, output_hidden_states):
        out = self.backbone(inputs, training, output_attentions, output_hidden_states)
        return question_answering_output(out, self.qa_outputs)


class TFBertForMultipleChoice(TFBertPreTrainedModel):
    task = "multiple-choice"

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.bert = self.main_layer_class(config)
        self.dropout = classifier_dropout(config)
        self.classifier = dense(1, config)

    def forward(self, inputs, training, output_attentions, output_hidden_states):
        flat, num_choices = flatten_choices(inputs)
        out = self.backbone(flat, training, output_attentions, output_hidden_states)
        logits = self.classifier(self.dropout(out.pooler_output, training=training))
        return multiple_choice_output(out, logits, num_choices)
