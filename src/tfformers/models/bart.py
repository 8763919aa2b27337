"""BART (Lewis et al., 2019): a post-norm Transformer encoder–decoder with learned positions, trained to
reconstruct corrupted text; summarization, translation and classification heads.

Attribute names equal PyTorch transformers' module names (`model.shared`, `model.encoder.layers.0.self_attn.
k_proj`, `model.decoder.layers.0.encoder_attn`, `model.encoder.layernorm_embedding`, `final_logits_bias`).
The encoder and decoder read the one `shared` embedding table (PyTorch's `embed_tokens` are aliases of it,
unless the config sets tie_word_embeddings=False).
The decoder's KV cache is reached only through `cache.update` (self-attention) and `cache.cross_attention`
(the encoder's keys and values, projected once); masks come from `layers.masks`. LayerDrop (dropping whole
layers at random in training) is not applied.
"""

import types

import keras
import numpy as np
import tensorflow as tf
from transformers import BartConfig

from tfformers.errors import ConfigError, InputError
from tfformers.generation.seq2seq_lm import Seq2SeqLMMixin
from tfformers.layers import (
    attention_bias,
    causal_attention_bias,
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
from tfformers.layers.core import TruncatedNormal
from tfformers.layers.decoder import DecoderInputs, run_blocks
from tfformers.layers.heads import tied_lm_head_keys, tied_logits
from tfformers.layers.resize import replace_variable, resized_rows
from tfformers.layers.seq2seq import as_encoder_output, decoder_start_token_id, seq2seq_fields, shift_tokens_right
from tfformers.modeling import TFPreTrainedModel
from tfformers.outputs import (
    BaseModelOutputWithCrossAttentions,
    Seq2SeqLMOutput,
    Seq2SeqModelOutput,
    Seq2SeqSequenceClassifierOutput,
)

LAYER_NORM_EPS = 1e-5  # PyTorch's nn.LayerNorm default, which BART uses


def initialization(config):
    """What `dense` / `embedding` read to initialize weights: BART names the standard deviation `init_std`."""
    return types.SimpleNamespace(initializer_range=config.init_std)


# ------------------------------------------------------------------------------------------ embeddings


class BartLearnedPositionalEmbedding(keras.layers.Embedding):
    """Learned positions with BART's offset: position p reads row p + 2 (fairseq kept two rows for the
    padding scheme), so the table has max_position_embeddings + 2 rows."""

    offset = 2

    def __init__(self, num_positions, dim, config, **kwargs):
        initializer = TruncatedNormal(stddev=config.init_std)
        super().__init__(num_positions + self.offset, dim, embeddings_initializer=initializer, **kwargs)

    def call(self, position_ids):
        return super().call(position_ids + self.offset)


def embed_scale(config):
    """Token embeddings are multiplied by sqrt(d_model) when `scale_embedding` is set (BartScaledWordEmbedding)."""
    return config.d_model**0.5 if config.scale_embedding else 1.0


def check_decoder_length(inputs_embeds, cache, config):
    """The decoder's positions end at max_position_embeddings: a longer target, or a KV cache with more
    slots (positions are its slots), is refused by name."""
    if cache is not None:
        name, length = "the decoder's KV cache (generation's max_length)", cache.max_length
    else:
        name, length = "decoder_input_ids (the labels shifted right, when given labels)", inputs_embeds.shape[1]
    check_sequence_length(length, config.max_position_embeddings, name)


# ------------------------------------------------------------------------------------------- attention


class BartAttention(keras.layers.Layer):
    """Multi-head attention with biased q/k/v/out projections. Self-attention when `key_value_states` is
    None; cross-attention over the encoder's output otherwise."""

    def __init__(self, config, num_heads, layer_idx=None, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.layer_idx = layer_idx
        if config.d_model % num_heads:
            raise ConfigError(f"d_model={config.d_model} is not a multiple of the {num_heads} attention heads.")
        self.head_dim = config.d_model // num_heads
        init = initialization(config)
        self.k_proj = dense(config.d_model, init)
        self.v_proj = dense(config.d_model, init)
        self.q_proj = dense(config.d_model, init)
        self.out_proj = dense(config.d_model, init)
        self.dropout = keras.layers.Dropout(config.attention_dropout)

    def _keys_and_values(self, states):
        """[batch, len, d_model] -> keys, values [batch, heads, len, head_dim]."""
        return split_heads(self.k_proj(states), self.num_heads), split_heads(self.v_proj(states), self.num_heads)

    def call(self, hidden_states, bias, key_value_states=None, cache=None, training=False):
        query = split_heads(self.q_proj(hidden_states), self.num_heads)  # [batch, heads, tgt, head_dim]
        if key_value_states is None:
            key, value = self._keys_and_values(hidden_states)
            if cache is not None:  # flat [batch * heads, cache slots, head_dim]
                key, value = cache.update(self.layer_idx, key, value)
        elif cache is not None:  # the encoder's keys and values, projected on the prefill only
            key, value = cache.cross_attention(self.layer_idx, lambda: self._keys_and_values(key_value_states))
        else:
            key, value = self._keys_and_values(key_value_states)
        context, probs = scaled_dot_product_attention(
            query, key, value, bias, self.dropout, training, scale=self.head_dim**-0.5
        )
        return self.out_proj(merge_heads(context)), probs


# ---------------------------------------------------------------------------------------------- blocks


class BartBlock(keras.layers.Layer):
    """What encoder and decoder blocks share: self-attention and the MLP (fc2(act(fc1(x)))), each
    sub-layer post-norm: norm(x + dropout(sublayer(x)))."""

    def __init__(self, config, num_heads, ffn_dim, layer_idx, **kwargs):
        super().__init__(**kwargs)
        init = initialization(config)
        self.self_attn = BartAttention(config, num_heads, layer_idx)
        self.self_attn_layer_norm = layer_norm(LAYER_NORM_EPS)
        self.activation_fn = get_activation(config.activation_function)
        self.fc1 = dense(ffn_dim, init)
        self.fc2 = dense(config.d_model, init)
        self.final_layer_norm = layer_norm(LAYER_NORM_EPS)
        self.dropout = keras.layers.Dropout(config.dropout)
        self.activation_dropout = keras.layers.Dropout(config.activation_dropout)

    def residual(self, norm, hidden_states, sublayer_output, training):
        return norm(hidden_states + self.dropout(sublayer_output, training=training))

    def feed_forward(self, hidden_states, training):
        inner = self.activation_dropout(self.activation_fn(self.fc1(hidden_states)), training=training)
        return self.residual(self.final_layer_norm, hidden_states, self.fc2(inner), training)


class BartEncoderLayer(BartBlock):
    def __init__(self, config, layer_idx, **kwargs):
        super().__init__(config, config.encoder_attention_heads, config.encoder_ffn_dim, layer_idx, **kwargs)

    def call(self, hidden_states, bias, training=False):
        attention_output, probs = self.self_attn(hidden_states, bias, training=training)
        hidden_states = self.residual(self.self_attn_layer_norm, hidden_states, attention_output, training)
        return self.feed_forward(hidden_states, training), probs


class BartDecoderLayer(BartBlock):
    """Causal self-attention, then cross-attention over the encoder's output (encoder_attn), then the MLP."""

    def __init__(self, config, layer_idx, **kwargs):
        super().__init__(config, config.decoder_attention_heads, config.decoder_ffn_dim, layer_idx, **kwargs)
        self.encoder_attn = BartAttention(config, config.decoder_attention_heads, layer_idx)
        self.encoder_attn_layer_norm = layer_norm(LAYER_NORM_EPS)

    def call(self, hidden_states, causal_bias, encoder_hidden_states, encoder_bias, cache=None, training=False):
        attention_output, self_probs = self.self_attn(hidden_states, causal_bias, cache=cache, training=training)
        hidden_states = self.residual(self.self_attn_layer_norm, hidden_states, attention_output, training)
        attention_output, cross_probs = self.encoder_attn(
            hidden_states, encoder_bias, key_value_states=encoder_hidden_states, cache=cache, training=training
        )
        hidden_states = self.residual(self.encoder_attn_layer_norm, hidden_states, attention_output, training)
        return self.feed_forward(hidden_states, training), (self_probs, cross_probs)


# ---------------------------------------------------------------------------------------------- stacks


class BartStack(keras.layers.Layer):
    """What the encoder and the decoder share: scaled token embeddings from the model's `shared` table
    plus learned positions, layernorm_embedding, dropout, then the blocks.

    `shared_embeddings()` gives the `shared` table, looked up at each call so that a replaced table
    (resize_token_embeddings) is the one read. Without it (a config with tie_word_embeddings=False) the
    stack has its own `embed_tokens`, as PyTorch's untied BART has."""

    def __init__(self, config, shared_embeddings, layer_class, num_layers, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        if shared_embeddings is None:
            self.embed_tokens = embedding(config.vocab_size, config.d_model, initialization(config))
            shared_embeddings = lambda: self.embed_tokens  # noqa: E731 (the same interface as the tied case)
        self._shared_embeddings = shared_embeddings
        self.embed_positions = BartLearnedPositionalEmbedding(config.max_position_embeddings, config.d_model, config)
        self.layers = [layer_class(config, i) for i in range(num_layers)]
        self.layernorm_embedding = layer_norm(LAYER_NORM_EPS)
        self.dropout = keras.layers.Dropout(config.dropout)

    def token_embeddings(self, input_ids, name):
        input_ids = check_token_ids(input_ids, self.config.vocab_size, name)
        return self._shared_embeddings()(input_ids) * embed_scale(self.config)  # [batch, seq, d_model]

    def block_inputs(self, inputs_embeds, position_ids, training):
        """layernorm_embedding(tokens + positions [1, seq]), then dropout: the first block's input."""
        positions = tf.cast(self.embed_positions(position_ids), inputs_embeds.dtype)
        return self.dropout(self.layernorm_embedding(inputs_embeds + positions), training=training)


class BartEncoder(BartStack):
    def __init__(self, config, shared_embeddings, **kwargs):
        super().__init__(config, shared_embeddings, BartEncoderLayer, config.encoder_layers, **kwargs)

    def call(
        self,
        input_ids=None,
        attention_mask=None,
        inputs_embeds=None,
        training=False,
        output_attentions=False,
        output_hidden_states=False,
    ):
        if inputs_embeds is None:
            inputs_embeds = self.token_embeddings(input_ids, "input_ids")
        check_sequence_length(inputs_embeds.shape[1], self.config.max_position_embeddings)
        hidden_states = self.block_inputs(inputs_embeds, tf.range(tf.shape(inputs_embeds)[1])[None, :], training)
        # [batch, 1, 1, src]
        bias = attention_bias(attention_mask, hidden_states.dtype) if attention_mask is not None else None

        def call_block(block, hidden_states):
            return block(hidden_states, bias, training=training)

        return run_blocks(
            self.layers, hidden_states, call_block, tf.identity, output_hidden_states, output_attentions
        )


class BartDecoder(BartStack):
    """Positions count from the cache position when decoding step by step; every block attends to the
    encoder's output."""

    def __init__(self, config, shared_embeddings, **kwargs):
        super().__init__(config, shared_embeddings, BartDecoderLayer, config.decoder_layers, **kwargs)

    def call(
        self,
        input_ids=None,
        attention_mask=None,
        encoder_hidden_states=None,
        encoder_attention_mask=None,
        inputs_embeds=None,
        cache=None,
        training=False,
        output_attentions=False,
        output_hidden_states=False,
    ):
        if inputs_embeds is None:
            inputs_embeds = self.token_embeddings(input_ids, "decoder_input_ids")
        check_decoder_length(inputs_embeds, cache, self.config)
        where = DecoderInputs(inputs_embeds, attention_mask, None, cache)
        dtype = inputs_embeds.dtype
        causal_bias = causal_attention_bias(where.attention_mask, where.query_slots, dtype=dtype)  # [batch, 1, tgt, k]
        encoder_bias = attention_bias(encoder_attention_mask, dtype) if encoder_attention_mask is not None else None
        hidden_states = self.block_inputs(inputs_embeds, where.position_ids, training)

        def call_block(block, hidden_states):
            return block(
                hidden_states, causal_bias, encoder_hidden_states, encoder_bias, cache=cache, training=training
            )

        out = run_blocks(self.layers, hidden_states, call_block, tf.identity, output_hidden_states, output_attentions)
        if cache is not None:
            cache.advance(tf.shape(inputs_embeds)[1])
        self_attentions, cross_attentions = zip(*out.attentions) if output_attentions else (None, None)
        return BaseModelOutputWithCrossAttentions(
            last_hidden_state=out.last_hidden_state,
            hidden_states=out.hidden_states,
            attentions=self_attentions,
            cross_attentions=cross_attentions,
        )


class BartModel(keras.layers.Layer):
    """The backbone: the `shared` embeddings, the encoder and the decoder. Without decoder inputs the
    decoder reads `input_ids` shifted right (BART's denoising setup)."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.shared = embedding(config.vocab_size, config.d_model, initialization(config))
        tied = config.tie_word_embeddings
        self.encoder = BartEncoder(config, (lambda: self.shared) if tied else None)
        self.decoder = BartDecoder(config, (lambda: self.shared) if tied else None)
        if not tied:
            self.shared.build()  # a checkpoint weight that no forward pass reads, so no call builds it

    def call(
        self,
        input_ids=None,
        attention_mask=None,
        decoder_input_ids=None,
        decoder_attention_mask=None,
        inputs_embeds=None,
        decoder_inputs_embeds=None,
        encoder_outputs=None,
        cache=None,
        training=False,
        output_attentions=False,
        output_hidden_states=False,
    ):
        if decoder_input_ids is None and decoder_inputs_embeds is None:
            if input_ids is None:
                raise InputError(
                    "BART's decoder needs decoder_input_ids (or decoder_inputs_embeds, or labels to shift right); "
                    "without them it reads input_ids shifted right, and no input_ids were given either."
                )
            decoder_input_ids = shift_tokens_right(
                input_ids, self.config.pad_token_id, decoder_start_token_id(self.config)
            )
        if encoder_outputs is None:
            encoder_outputs = self.encoder(
                input_ids,
                attention_mask,
                inputs_embeds,
                training=training,
                output_attentions=output_attentions,
                output_hidden_states=output_hidden_states,
            )
        else:
            encoder_outputs = as_encoder_output(encoder_outputs)
        decoder_out = self.decoder(
            decoder_input_ids,
            decoder_attention_mask,
            encoder_outputs.last_hidden_state,
            attention_mask,
            decoder_inputs_embeds,
            cache=cache,
            training=training,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
        )
        return Seq2SeqModelOutput(
            last_hidden_state=decoder_out.last_hidden_state, **seq2seq_fields(decoder_out, encoder_outputs)
        )


# ----------------------------------------------------------------------------------------------- heads


class BartClassificationHead(keras.layers.Layer):
    """out_proj(dropout(tanh(dense(dropout(x))))) on the sentence representation."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        init = initialization(config)
        self.dense = dense(config.d_model, init, activation="tanh")
        self.dropout = keras.layers.Dropout(config.classifier_dropout)
        self.out_proj = dense(config.num_labels, init)

    def call(self, hidden_states, training=False):
        hidden_states = self.dense(self.dropout(hidden_states, training=training))
        return self.out_proj(self.dropout(hidden_states, training=training))


def last_eos_states(hidden_states, input_ids, eos_token_id):
    """[batch, seq, d_model] -> [batch, d_model]: each row's decoder state at its last eos token.

    transformers requires every row to hold the same number of eos tokens (at least one); eager inputs are
    checked here, with the same rule."""
    is_eos = tf.cast(tf.equal(input_ids, eos_token_id), tf.int32)  # [batch, seq]
    if tf.executing_eagerly():
        counts = np.unique(np.asarray(tf.reduce_sum(is_eos, axis=1)))
        if len(counts) != 1 or counts[0] == 0:
            raise InputError(
                f"BART classifies a sequence by the decoder state at its last eos token (eos_token_id="
                f"{eos_token_id}): every row of input_ids must hold the same number of eos tokens, at least "
                f"one; the rows hold {sorted(counts.tolist())}. Tokenize with the tokenizer's special tokens "
                "(it ends every text with eos)."
            )
    last = tf.argmax(tf.range(tf.shape(is_eos)[1])[None, :] * is_eos, axis=-1, output_type=tf.int32)
    return tf.gather(hidden_states, last, batch_dims=1)


def seq2seq_output(output_class, out, **head_outputs):
    """A head's Seq2Seq output: its own fields plus the backbone's decoder and encoder outputs."""
    backbone = {k: v for k, v in out.items() if k != "last_hidden_state"}
    return output_class(**head_outputs, **backbone)


# ----------------------------------------------------------------------------------------------- models


def tied_embedding_keys(config, prefix):
    """PyTorch's `embed_tokens` of both stacks are aliases of `shared` (keys under `prefix`) unless the
    config unties them."""
    if not config.tie_word_embeddings:
        return {}
    return {f"{prefix}{stack}.embed_tokens.weight": f"{prefix}shared.weight" for stack in ("encoder", "decoder")}


class TFBartPreTrainedModel(TFPreTrainedModel):
    config_class = BartConfig
    base_model_prefix = "model"
    main_layer_class = BartModel
    input_names = (
        "input_ids",
        "attention_mask",
        "decoder_input_ids",
        "decoder_attention_mask",
        "inputs_embeds",
        "decoder_inputs_embeds",
    )
    call_options = ("encoder_outputs",)
    # fairseq's version counters, which old checkpoints carry (transformers ignores them as well)
    ignored_unexpected_keys = (r"position_ids$", r"(encoder|decoder)\.version$")

    @property
    def tied_weights_keys(self):
        return tied_embedding_keys(self.config, "model.")

    def get_input_embeddings(self):
        return self.model.shared

    def resize_token_embeddings(self, new_num_tokens=None):
        if new_num_tokens is not None and not self.config.tie_word_embeddings:
            raise ConfigError(
                "resize_token_embeddings needs BART's tied embeddings: with tie_word_embeddings=False the encoder "
                "and decoder have embed_tokens tables of their own, which it does not resize."
            )
        return super().resize_token_embeddings(new_num_tokens)

    def get_encoder(self):
        return self.model.encoder

    def get_decoder(self):
        return self.model.decoder

    @property
    def dummy_inputs(self):
        """transformers' BART dummy batch: rows end with eos (2), the second is padded (pad 1)."""
        return {"input_ids": tf.constant([[0, 6, 10, 4, 2], [0, 8, 12, 2, 1]], tf.int32)}


class TFBartModel(TFBartPreTrainedModel):
    is_base_model = True

    @property
    def tied_weights_keys(self):
        return tied_embedding_keys(self.config, "")

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.model = self.main_layer_class(config)


class TFBartForConditionalGeneration(Seq2SeqLMMixin, TFBartPreTrainedModel):
    """Vocabulary logits through the shared embeddings (or an untied `lm_head`) plus `final_logits_bias`,
    a [1, vocab] buffer that checkpoints carry (fine-tuned BART models set it to ban tokens)."""

    task = "seq2seq-lm"
    call_options = ("cache", "logits_to_keep", "encoder_outputs")

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.model = self.main_layer_class(config)
        # tied: the logits go through `shared` and no lm_head.weight is stored
        untied = not config.tie_word_embeddings
        self.lm_head = dense(config.vocab_size, initialization(config), use_bias=False) if untied else None
        self.final_logits_bias = self.add_weight(
            shape=(1, config.vocab_size), initializer="zeros", trainable=False, name="final_logits_bias"
        )

    @property
    def tied_weights_keys(self):
        return {**tied_embedding_keys(self.config, "model."), **tied_lm_head_keys(self.config, "model.shared.weight")}

    @property
    def vocabulary_output_keys(self):
        return () if self.config.tie_word_embeddings else ("lm_head.weight",)

    def decoder_cache_dimensions(self):
        config = self.config
        return config.decoder_layers, config.decoder_attention_heads, config.d_model // config.decoder_attention_heads

    def resize_token_embeddings(self, new_num_tokens=None):
        """As every model, plus `final_logits_bias` (kept entries kept, new ones zero), as transformers does."""
        embeddings = super().resize_token_embeddings(new_num_tokens)
        if new_num_tokens is not None:
            bias = keras.ops.convert_to_numpy(self.final_logits_bias)  # [1, vocab]
            replace_variable(self, "final_logits_bias", resized_rows(bias.T, new_num_tokens, np.zeros).T)
        return embeddings

    def forward(
        self, inputs, training, output_attentions, output_hidden_states, cache=None, logits_to_keep=0,
        encoder_outputs=None,
    ):
        out = self.backbone(
            inputs, training, output_attentions, output_hidden_states, cache=cache, encoder_outputs=encoder_outputs
        )
        hidden_states = out.last_hidden_state  # [batch, tgt, d_model]
        if logits_to_keep:
            hidden_states = hidden_states[:, -logits_to_keep:]
        if self.lm_head is not None:
            logits = self.lm_head(hidden_states) + tf.cast(self.final_logits_bias, hidden_states.dtype)
        else:
            logits = tied_logits(hidden_states, self.get_input_embeddings(), self.final_logits_bias)
        return seq2seq_output(Seq2SeqLMOutput, out, logits=logits)


class TFBartForSequenceClassification(TFBartPreTrainedModel):
    """Classifies a sequence by the decoder's state at its last eos token (the decoder reads the input
    shifted right, so that state has seen the whole text)."""

    task = "sequence-classification"

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.model = self.main_layer_class(config)
        self.classification_head = BartClassificationHead(config)

    def forward(self, inputs, training, output_attentions, output_hidden_states, encoder_outputs=None):
        input_ids = inputs.get("input_ids")
        if input_ids is None:
            raise InputError(
                "TFBartForSequenceClassification needs input_ids: it finds each row's last eos token in them "
                "(inputs_embeds alone cannot be classified, as in transformers)."
            )
        out = self.backbone(
            inputs, training, output_attentions, output_hidden_states, encoder_outputs=encoder_outputs
        )
        sentence = last_eos_states(out.last_hidden_state, input_ids, self.config.eos_token_id)
        return seq2seq_output(
            Seq2SeqSequenceClassifierOutput, out, logits=self.classification_head(sentence, training=training)
        )
