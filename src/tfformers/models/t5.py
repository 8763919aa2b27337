"""T5 (Raffel et al., 2020): an encoder–decoder Transformer with relative position buckets, pre-norm
blocks on an RMS layer norm without bias or mean subtraction, and no scaling of the attention scores.
T5 v1.1 (and FLAN-T5) use a gated-GELU feed-forward and do not rescale the decoder output.

Attribute names equal PyTorch transformers' module names (`shared`, `encoder.block.0.layer.0.SelfAttention.q`,
`layer.0.layer_norm`, `DenseReluDense.wi`, `decoder.block.0.layer.1.EncDecAttention`, `final_layer_norm`,
`lm_head`). The embeddings are stored once, as `shared.weight`; `encoder.embed_tokens.weight` and
`decoder.embed_tokens.weight` are its aliases in checkpoints. The decoder's KV cache is reached only
through `cache.update` and `cache.cross_attention` in the attention layer; masks come from `layers.masks`.
"""

import math

import keras
import tensorflow as tf
from transformers import T5Config

from tfformers.errors import InputError
from tfformers.generation.seq2seq_lm import Seq2SeqLMMixin
from tfformers.layers import (
    attention_bias,
    causal_attention_bias,
    check_token_ids,
    get_activation,
    merge_heads,
    scaled_dot_product_attention,
    split_heads,
)
from tfformers.layers.core import Linear, RMSNorm, TruncatedNormal
from tfformers.layers.decoder import DecoderInputs, run_blocks
from tfformers.layers.heads import tied_logits
from tfformers.layers.seq2seq import as_encoder_output, seq2seq_fields
from tfformers.modeling import TFPreTrainedModel
from tfformers.outputs import (
    BaseModelOutputWithCrossAttentions,
    Seq2SeqLMOutput,
    Seq2SeqModelOutput,
)

# ------------------------------------------------------------------------------------ initialization


def _normal(config, stddev):
    """T5's initialization: std `stddev` scaled by `initializer_factor` (transformers draws from a plain
    normal; the deferrable truncated one keeps `from_pretrained` from drawing values it overwrites)."""
    return TruncatedNormal(stddev=config.initializer_factor * stddev)


def _linear(units, config, stddev):
    """A bias-free projection, as every T5 linear layer is."""
    return Linear(units, use_bias=False, kernel_initializer=_normal(config, stddev))


def _embedding(rows, dim, config, stddev):
    return keras.layers.Embedding(rows, dim, embeddings_initializer=_normal(config, stddev))


# ------------------------------------------------------------------------------- relative positions


def relative_position_bucket(relative_position, bidirectional, num_buckets, max_distance):
    """Key position minus query position (int32, any shape) -> bucket in [0, num_buckets).

    Half the buckets hold exact distances 0 .. max_exact-1, the rest log-spaced distances up to
    `max_distance` (farther ones share the last bucket). Bidirectional (encoder) attention gives keys
    after the query their own half of the buckets; the decoder sees only keys at or before its query.
    """
    buckets = tf.zeros_like(relative_position)
    if bidirectional:
        num_buckets //= 2
        buckets += tf.cast(relative_position > 0, tf.int32) * num_buckets
        distance = tf.abs(relative_position)
    else:
        distance = -tf.minimum(relative_position, 0)
    max_exact = num_buckets // 2
    # float32 logarithm truncated toward zero, as PyTorch computes it (distance 0 gives -inf, never picked)
    log_ratio = tf.math.log(tf.cast(distance, tf.float32) / max_exact) / math.log(max_distance / max_exact)
    far = max_exact + tf.cast(log_ratio * (num_buckets - max_exact), tf.int32)
    far = tf.minimum(far, num_buckets - 1)
    return buckets + tf.where(distance < max_exact, distance, far)


# ------------------------------------------------------------------------------------------- attention


class T5Attention(keras.layers.Layer):
    """Multi-head attention without score scaling (T5 folds it into the initialization). Self-attention
    of a stack's first block owns `relative_attention_bias` [num_buckets, heads], the position bias every
    block of the stack adds; cross-attention has no position bias."""

    def __init__(self, config, is_decoder, has_relative_attention_bias=False, layer_idx=0, **kwargs):
        super().__init__(**kwargs)
        self.is_decoder = is_decoder
        self.layer_idx = layer_idx
        self.num_heads = config.num_heads
        self.num_buckets = config.relative_attention_num_buckets
        self.max_distance = config.relative_attention_max_distance
        inner_dim = config.num_heads * config.d_kv
        self.q = _linear(inner_dim, config, (config.d_model * config.d_kv) ** -0.5)
        self.k = _linear(inner_dim, config, config.d_model**-0.5)
        self.v = _linear(inner_dim, config, config.d_model**-0.5)
        self.o = _linear(config.d_model, config, inner_dim**-0.5)
        if has_relative_attention_bias:
            self.relative_attention_bias = _embedding(
                self.num_buckets, self.num_heads, config, config.d_model**-0.5
            )
        self.dropout = keras.layers.Dropout(config.dropout_rate)

    def compute_bias(self, query_slots, num_keys):
        """The position bias [1, heads, queries, keys] of queries at `query_slots` [queries] over key
        slots 0 .. num_keys-1 (with a cache, the cache's slots)."""
        relative_position = tf.range(num_keys)[None, :] - query_slots[:, None]  # [queries, keys]
        buckets = relative_position_bucket(
            relative_position, not self.is_decoder, self.num_buckets, self.max_distance
        )
        values = self.relative_attention_bias(buckets)  # [queries, keys, heads]
        return tf.transpose(values, [2, 0, 1])[None]  # in the compute dtype, as the masks

    def call(self, hidden_states, bias, key_value_states=None, cache=None, training=False):
        """hidden_states [batch, seq, d_model]; bias: position bias plus mask, [batch or 1, heads or 1,
        seq, keys]; key_value_states: the encoder's output [batch, source, d_model] for cross-attention."""
        query = split_heads(self.q(hidden_states), self.num_heads)  # [batch, heads, seq, d_kv]
        if key_value_states is None:
            key = split_heads(self.k(hidden_states), self.num_heads)
            value = split_heads(self.v(hidden_states), self.num_heads)
            if cache is not None:
                key, value = cache.update(self.layer_idx, key, value)  # [batch * heads, cache slots, d_kv]
        else:
            def project():
                return (split_heads(self.k(key_value_states), self.num_heads),
                        split_heads(self.v(key_value_states), self.num_heads))

            key, value = project() if cache is None else cache.cross_attention(self.layer_idx, project)
        context, probs = scaled_dot_product_attention(
            query, key, value, bias, self.dropout, training, scale=1.0
        )
        return self.o(merge_heads(context)), probs


class T5LayerSelfAttention(keras.layers.Layer):
    """x + dropout(attention(norm(x)))."""

    def __init__(self, config, is_decoder, has_relative_attention_bias, layer_idx, **kwargs):
        super().__init__(**kwargs)
        self.SelfAttention = T5Attention(config, is_decoder, has_relative_attention_bias, layer_idx)
        self.layer_norm = RMSNorm(config.d_model, config.layer_norm_epsilon)
        self.dropout = keras.layers.Dropout(config.dropout_rate)

    def call(self, hidden_states, bias, cache=None, training=False):
        attention_output, probs = self.SelfAttention(
            self.layer_norm(hidden_states), bias, cache=cache, training=training
        )
        return hidden_states + self.dropout(attention_output, training=training), probs


class T5LayerCrossAttention(keras.layers.Layer):
    """x + dropout(attention(norm(x), encoder output)): the decoder reads the source."""

    def __init__(self, config, layer_idx, **kwargs):
        super().__init__(**kwargs)
        self.EncDecAttention = T5Attention(config, is_decoder=True, layer_idx=layer_idx)
        self.layer_norm = RMSNorm(config.d_model, config.layer_norm_epsilon)
        self.dropout = keras.layers.Dropout(config.dropout_rate)

    def call(self, hidden_states, encoder_hidden_states, bias, cache=None, training=False):
        attention_output, probs = self.EncDecAttention(
            self.layer_norm(hidden_states), bias, key_value_states=encoder_hidden_states, cache=cache,
            training=training,
        )
        return hidden_states + self.dropout(attention_output, training=training), probs


# ---------------------------------------------------------------------------------------- feed-forward


class T5DenseActDense(keras.layers.Layer):
    """T5 v1.0: wo(dropout(act(wi(x))))."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.wi = _linear(config.d_ff, config, config.d_model**-0.5)
        self.wo = _linear(config.d_model, config, config.d_ff**-0.5)
        self.dropout = keras.layers.Dropout(config.dropout_rate)
        self.act = get_activation(config.dense_act_fn)

    def call(self, hidden_states, training=False):
        return self.wo(self.dropout(self.act(self.wi(hidden_states)), training=training))


class T5DenseGatedActDense(keras.layers.Layer):
    """T5 v1.1: wo(dropout(act(wi_0(x)) * wi_1(x))) (gated GELU)."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.wi_0 = _linear(config.d_ff, config, config.d_model**-0.5)
        self.wi_1 = _linear(config.d_ff, config, config.d_model**-0.5)
        self.wo = _linear(config.d_model, config, config.d_ff**-0.5)
        self.dropout = keras.layers.Dropout(config.dropout_rate)
        self.act = get_activation(config.dense_act_fn)

    def call(self, hidden_states, training=False):
        gated = self.act(self.wi_0(hidden_states)) * self.wi_1(hidden_states)
        return self.wo(self.dropout(gated, training=training))


class T5LayerFF(keras.layers.Layer):
    """x + dropout(feed_forward(norm(x)))."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        feed_forward = T5DenseGatedActDense if config.is_gated_act else T5DenseActDense
        self.DenseReluDense = feed_forward(config)
        self.layer_norm = RMSNorm(config.d_model, config.layer_norm_epsilon)
        self.dropout = keras.layers.Dropout(config.dropout_rate)

    def call(self, hidden_states, training=False):
        forwarded = self.DenseReluDense(self.layer_norm(hidden_states), training=training)
        return hidden_states + self.dropout(forwarded, training=training)


# ----------------------------------------------------------------------------------------------- block


class T5Block(keras.layers.Layer):
    """layer[0] self-attention, in the decoder layer[1] cross-attention, then layer[-1] feed-forward."""

    def __init__(self, config, is_decoder, has_relative_attention_bias, layer_idx, **kwargs):
        super().__init__(**kwargs)
        self.layer = [T5LayerSelfAttention(config, is_decoder, has_relative_attention_bias, layer_idx)]
        if is_decoder:
            self.layer.append(T5LayerCrossAttention(config, layer_idx))
        self.layer.append(T5LayerFF(config))

    def call(self, hidden_states, self_bias, encoder_hidden_states=None, cross_bias=None, cache=None,
             training=False):
        """Returns (hidden states, (self-attention probs, cross-attention probs or None))."""
        hidden_states, self_probs = self.layer[0](hidden_states, self_bias, cache=cache, training=training)
        cross_probs = None
        if encoder_hidden_states is not None:
            hidden_states, cross_probs = self.layer[1](
                hidden_states, encoder_hidden_states, cross_bias, cache=cache, training=training
            )
        return self.layer[-1](hidden_states, training=training), (self_probs, cross_probs)


# ----------------------------------------------------------------------------------------------- stack


class T5Stack(keras.layers.Layer):
    """The encoder or the decoder: embeddings, dropout, the blocks, final_layer_norm, dropout.

    `embed_tokens` is a function returning the model's `shared` embedding layer, looked up on every call
    (so a resized vocabulary replaces it in both stacks; it is stored once, as `shared.weight`).
    """

    def __init__(self, config, embed_tokens, is_decoder, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.is_decoder = is_decoder
        self._embed_tokens = embed_tokens
        num_layers = config.num_decoder_layers if is_decoder else config.num_layers
        self.block = [T5Block(config, is_decoder, i == 0, i) for i in range(num_layers)]
        self.final_layer_norm = RMSNorm(config.d_model, config.layer_norm_epsilon)
        self.dropout = keras.layers.Dropout(config.dropout_rate)

    @property
    def embed_tokens(self):
        return self._embed_tokens()

    def call(
        self,
        input_ids=None,
        attention_mask=None,
        inputs_embeds=None,
        encoder_hidden_states=None,
        encoder_attention_mask=None,
        cache=None,
        training=False,
        output_attentions=False,
        output_hidden_states=False,
    ):
        if inputs_embeds is None:
            inputs_embeds = self.embed_tokens(check_token_ids(input_ids, self.config.vocab_size))
        self_bias, cross_bias = self.attention_biases(
            inputs_embeds, attention_mask, encoder_hidden_states, encoder_attention_mask, cache
        )

        def call_block(block, hidden_states):
            return block(hidden_states, self_bias, encoder_hidden_states, cross_bias, cache=cache,
                         training=training)

        def final_norm(hidden_states):
            return self.dropout(self.final_layer_norm(hidden_states), training=training)

        hidden_states = self.dropout(inputs_embeds, training=training)
        out = run_blocks(self.block, hidden_states, call_block, final_norm, output_hidden_states, output_attentions)
        if cache is not None:
            cache.advance(tf.shape(inputs_embeds)[1])
        if not output_attentions:
            return out
        return BaseModelOutputWithCrossAttentions(
            last_hidden_state=out.last_hidden_state,
            hidden_states=out.hidden_states,
            attentions=tuple(self_probs for self_probs, _ in out.attentions),
            cross_attentions=tuple(cross for _, cross in out.attentions) if self.is_decoder else None,
        )

    def attention_biases(self, inputs_embeds, attention_mask, encoder_hidden_states, encoder_attention_mask, cache):
        """(self-attention bias [batch, heads, seq, keys]: the first block's position bias plus the mask,
        shared by every block; cross-attention bias [batch, 1, 1, source], None in the encoder)."""
        position_bias = self.block[0].layer[0].SelfAttention.compute_bias
        dtype = inputs_embeds.dtype  # the compute dtype: the blocks cast the biases to it anyway
        if not self.is_decoder:
            seq = tf.shape(inputs_embeds)[1]
            padding = attention_bias(_mask_or_ones(attention_mask, inputs_embeds), dtype)  # [batch, 1, 1, seq]
            return position_bias(tf.range(seq), seq) + padding, None
        where = DecoderInputs(inputs_embeds, attention_mask, None, cache)  # keys: the cache's slots, if any
        causal = causal_attention_bias(where.attention_mask, where.query_slots, dtype=dtype)
        self_bias = position_bias(where.query_slots, tf.shape(where.attention_mask)[1]) + causal
        return self_bias, attention_bias(_mask_or_ones(encoder_attention_mask, encoder_hidden_states), dtype)


def _mask_or_ones(attention_mask, hidden_states):
    """The [batch, seq] padding mask, all ones when none is given."""
    return tf.ones(tf.shape(hidden_states)[:2], tf.int32) if attention_mask is None else attention_mask


# ----------------------------------------------------------------------------------------------- models


def scales_decoder_output(config):
    """T5 v1.0 rescales the decoder output by d_model**-0.5 before its tied LM head; v1.1 does not.
    transformers v5 reads that from config.json's `tie_word_embeddings` (false for v1.1) into
    `scale_decoder_outputs`, and always sets `tie_word_embeddings`."""
    return config.scale_decoder_outputs


class TFT5PreTrainedModel(TFPreTrainedModel):
    config_class = T5Config
    base_model_prefix = "transformer"  # PyTorch's; T5 checkpoints have no prefix, the stacks sit at the top
    # PyTorch's T5 once saved a position bias in the first cross-attention, which is never used
    ignored_unexpected_keys = (
        r"position_ids$", r"^decoder\.block\.0\.layer\.1\.EncDecAttention\.relative_attention_bias\.weight$"
    )
    input_names = (
        "input_ids", "attention_mask", "decoder_input_ids", "decoder_attention_mask", "inputs_embeds",
        "decoder_inputs_embeds",
    )
    call_options = ("cache", "encoder_outputs")
    has_decoder = True

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.shared = _embedding(config.vocab_size, config.d_model, config, 1.0)
        self.encoder = T5Stack(config, self.get_input_embeddings, is_decoder=False)
        if self.has_decoder:
            self.decoder = T5Stack(config, self.get_input_embeddings, is_decoder=True)

    @property
    def tied_weights_keys(self):
        stacks = ("encoder", "decoder") if self.has_decoder else ("encoder",)
        return {f"{stack}.embed_tokens.weight": "shared.weight" for stack in stacks}

    @property
    def dummy_inputs(self):
        ids = tf.constant([[7, 6, 0, 0, 1], [1, 2, 3, 0, 0]], tf.int32)
        return {"input_ids": ids, "decoder_input_ids": ids} if self.has_decoder else {"input_ids": ids}

    def get_input_embeddings(self):
        return self.shared

    def get_encoder(self):
        return self.encoder

    def get_decoder(self):
        return self.decoder

    def decoder_cache_dimensions(self):
        return self.config.num_decoder_layers, self.config.num_heads, self.config.d_kv

    def encode_and_decode(self, inputs, training, output_attentions, output_hidden_states, cache=None,
                          encoder_outputs=None):
        """(decoder output, encoder output): the encoder runs unless `encoder_outputs` is given."""
        if encoder_outputs is None:
            encoder_outputs = self.encoder(
                input_ids=inputs.get("input_ids"),
                attention_mask=inputs.get("attention_mask"),
                inputs_embeds=inputs.get("inputs_embeds"),
                training=training,
                output_attentions=output_attentions,
                output_hidden_states=output_hidden_states,
            )
        else:
            encoder_outputs = as_encoder_output(encoder_outputs)
        if inputs.get("decoder_input_ids") is None and inputs.get("decoder_inputs_embeds") is None:
            raise InputError(
                f"{type(self).__name__} needs decoder_input_ids (or decoder_inputs_embeds, or labels, which are "
                "shifted right to make them); got " + str(sorted(inputs)) + "."
            )
        decoder_outputs = self.decoder(
            input_ids=inputs.get("decoder_input_ids"),
            attention_mask=inputs.get("decoder_attention_mask"),
            inputs_embeds=inputs.get("decoder_inputs_embeds"),
            encoder_hidden_states=encoder_outputs.last_hidden_state,
            encoder_attention_mask=inputs.get("attention_mask"),
            cache=cache,
            training=training,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
        )
        return decoder_outputs, encoder_outputs


class TFT5Model(TFT5PreTrainedModel):
    is_base_model = True

    def forward(self, inputs, training, output_attentions, output_hidden_states, cache=None,
                encoder_outputs=None):
        decoder_outputs, encoder_outputs = self.encode_and_decode(
            inputs, training, output_attentions, output_hidden_states, cache, encoder_outputs
        )
        return Seq2SeqModelOutput(
            last_hidden_state=decoder_outputs.last_hidden_state,
            **seq2seq_fields(decoder_outputs, encoder_outputs),
        )


class TFT5ForConditionalGeneration(Seq2SeqLMMixin, TFT5PreTrainedModel):
    """Text-to-text: the decoder's vocabulary logits. T5 v1.0 projects the rescaled decoder output onto
    the shared embeddings; v1.1 has an `lm_head` of its own (transformers v5 ties it unless the checkpoint
    holds a different one: from a checkpoint saved tied, it starts as a copy of `shared.weight`)."""

    task = "seq2seq-lm"
    call_options = ("cache", "logits_to_keep", "encoder_outputs")

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.lm_head = None if scales_decoder_output(config) else _linear(config.vocab_size, config, 1.0)

    @property
    def tied_weights_keys(self):
        return {**super().tied_weights_keys, "lm_head.weight": "shared.weight"}

    @property
    def vocabulary_output_keys(self):
        return () if self.lm_head is None else ("lm_head.weight",)

    def forward(self, inputs, training, output_attentions, output_hidden_states, cache=None, logits_to_keep=0,
                encoder_outputs=None):
        decoder_outputs, encoder_outputs = self.encode_and_decode(
            inputs, training, output_attentions, output_hidden_states, cache, encoder_outputs
        )
        hidden_states = decoder_outputs.last_hidden_state  # [batch, target, d_model]
        if logits_to_keep:
            hidden_states = hidden_states[:, -logits_to_keep:]
        if scales_decoder_output(self.config):
            hidden_states = hidden_states * tf.cast(self.config.d_model**-0.5, hidden_states.dtype)
        if self.lm_head is None:
            logits = tied_logits(hidden_states, self.get_input_embeddings())
        else:
            logits = self.lm_head(hidden_states)
        return Seq2SeqLMOutput(logits=logits, **seq2seq_fields(decoder_outputs, encoder_outputs))


class TFT5EncoderModel(TFT5PreTrainedModel):
    """The encoder alone (sentence embeddings, classifiers built on T5's encoder)."""

    is_base_model = True
    has_decoder = False
    ignored_unexpected_keys = (r"position_ids$", r"^decoder\.", r"^lm_head\.")  # a full T5's other half
    input_names = ("input_ids", "attention_mask", "inputs_embeds")
    call_options = ()

    def forward(self, inputs, training, output_attentions, output_hidden_states):
        return self.encoder(
            **inputs, training=training, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
        )
