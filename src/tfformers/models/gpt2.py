"""GPT-2 (Radford et al., 2019): learned token and position embeddings, a stack of pre-norm decoder blocks
(LayerNorm, causal self-attention, LayerNorm, GELU MLP), a final LayerNorm and heads.

Attribute names equal PyTorch transformers' module names (`transformer.h.0.attn.c_attn`, `mlp.c_fc`,
`ln_f`, `wte`, `wpe`). GPT-2's projections are `Conv1D` layers that store their weight [in, out]: they
are `layers.core.Conv1D` here, the one declared exception to the transposing key rule. The KV cache is
reached only through `cache.update`; masks come from `layers.masks`.
"""

import keras
import tensorflow as tf
from transformers import GPT2Config

from tfformers.errors import ConfigError
from tfformers.generation import GenerationMixin
from tfformers.layers import (
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
from tfformers.layers.core import conv1d
from tfformers.layers.decoder import DecoderInputs, run_blocks
from tfformers.layers.heads import (
    causal_lm_head,
    causal_lm_output,
    classifier_dropout,
    last_token_classification_output,
    tied_lm_head_keys,
    token_classification_output,
)
from tfformers.modeling import TFPreTrainedModel

# ------------------------------------------------------------------------------------------- attention


class GPT2Attention(keras.layers.Layer):
    """Causal self-attention with fused query/key/value projection (`c_attn`) and output `c_proj`."""

    def __init__(self, config, layer_idx, **kwargs):
        super().__init__(**kwargs)
        if config.hidden_size % config.num_attention_heads:
            raise ConfigError(
                f"n_embd={config.hidden_size} is not a multiple of n_head={config.num_attention_heads}."
            )
        self.layer_idx = layer_idx
        self.num_heads = config.num_attention_heads
        head_dim = config.hidden_size // self.num_heads
        self.scale = head_dim**-0.5 if config.scale_attn_weights else 1.0
        if config.scale_attn_by_inverse_layer_idx:
            self.scale /= float(layer_idx + 1)
        self.c_attn = conv1d(3 * config.hidden_size, config)
        self.c_proj = conv1d(config.hidden_size, config)
        self.attn_dropout = keras.layers.Dropout(config.attn_pdrop)
        self.resid_dropout = keras.layers.Dropout(config.resid_pdrop)

    def call(self, hidden_states, bias, cache=None, training=False):
        query, key, value = (
            split_heads(projection, self.num_heads)  # [batch, heads, seq, head_dim]
            for projection in tf.split(self.c_attn(hidden_states), 3, axis=-1)
        )
        if cache is not None:
            key, value = cache.update(self.layer_idx, key, value)  # [batch, heads, cache slots, head_dim]
        context, probs = scaled_dot_product_attention(
            query, key, value, bias, self.attn_dropout, training, scale=self.scale
        )
        return self.resid_dropout(self.c_proj(merge_heads(context)), training=training), probs


# ----------------------------------------------------------------------------------------------- block


class GPT2MLP(keras.layers.Layer):
    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.c_fc = conv1d(config.n_inner or 4 * config.hidden_size, config)
        self.c_proj = conv1d(config.hidden_size, config)
        self.act = get_activation(config.activation_function)
        self.dropout = keras.layers.Dropout(config.resid_pdrop)

    def call(self, hidden_states, training=False):
        return self.dropout(self.c_proj(self.act(self.c_fc(hidden_states))), training=training)


class GPT2Block(keras.layers.Layer):
    """Pre-norm block: x + attn(ln_1(x)), then h + mlp(ln_2(h))."""

    def __init__(self, config, layer_idx, **kwargs):
        super().__init__(**kwargs)
        self.ln_1 = layer_norm(config.layer_norm_epsilon)
        self.attn = GPT2Attention(config, layer_idx)
        self.ln_2 = layer_norm(config.layer_norm_epsilon)
        self.mlp = GPT2MLP(config)

    def call(self, hidden_states, bias, cache=None, training=False):
        attention_output, probs = self.attn(self.ln_1(hidden_states), bias, cache=cache, training=training)
        hidden_states = hidden_states + attention_output
        return hidden_states + self.mlp(self.ln_2(hidden_states), training=training), probs


# ----------------------------------------------------------------------------------------------- stack


class GPT2Model(keras.layers.Layer):
    """The backbone: token + position (+ token-type, through the token table) embeddings, the blocks,
    the final LayerNorm."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        if config.add_cross_attention:
            raise ConfigError(
                "add_cross_attention=True is set in the config, but tfformers implements GPT-2 as a decoder-only "
                "model; set it to False."
            )
        self.config = config
        self.wte = embedding(config.vocab_size, config.hidden_size, config)
        self.wpe = embedding(config.max_position_embeddings, config.hidden_size, config)
        self.drop = keras.layers.Dropout(config.embd_pdrop)
        self.h = [GPT2Block(config, i) for i in range(config.num_hidden_layers)]
        self.ln_f = layer_norm(config.layer_norm_epsilon)

    def call(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        inputs_embeds=None,
        cache=None,
        training=False,
        output_attentions=False,
        output_hidden_states=False,
    ):
        if inputs_embeds is None:
            inputs_embeds = self.wte(check_token_ids(input_ids, self.config.vocab_size))
        if cache is None:
            check_sequence_length(inputs_embeds.shape[1], self.config.max_position_embeddings)
        where = DecoderInputs(inputs_embeds, attention_mask, position_ids, cache)
        hidden_states = inputs_embeds + self.wpe(where.position_ids)
        if token_type_ids is not None:  # GPT-2 embeds token types with the token table
            hidden_states += self.wte(check_token_ids(token_type_ids, self.config.vocab_size, "token_type_ids"))
        hidden_states = self.drop(hidden_states, training=training)
        # [batch, 1, seq, keys]
        bias = causal_attention_bias(where.attention_mask, where.query_slots, dtype=hidden_states.dtype)

        def call_block(block, hidden_states):
            return block(hidden_states, bias, cache=cache, training=training)

        out = run_blocks(self.h, hidden_states, call_block, self.ln_f, output_hidden_states, output_attentions)
        if cache is not None:
            cache.advance(tf.shape(inputs_embeds)[1])
        return out


# ----------------------------------------------------------------------------------------------- models


class TFGPT2PreTrainedModel(TFPreTrainedModel):
    config_class = GPT2Config
    base_model_prefix = "transformer"
    main_layer_class = GPT2Model
    # old checkpoints store the causal mask as a buffer
    ignored_unexpected_keys = (r"position_ids$", r"attn\.bias$", r"attn\.masked_bias$")
    call_options = ("cache",)

    def get_input_embeddings(self):
        return self.transformer.wte


class TFGPT2Model(TFGPT2PreTrainedModel):
    is_base_model = True

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.transformer = self.main_layer_class(config)


class TFGPT2LMHeadModel(GenerationMixin, TFGPT2PreTrainedModel):
    task = "causal-lm"
    call_options = ("cache", "logits_to_keep")

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.transformer = self.main_layer_class(config)
        self.lm_head = causal_lm_head(config)

    @property
    def tied_weights_keys(self):
        return tied_lm_head_keys(self.config, "transformer.wte.weight")

    @property
    def vocabulary_output_keys(self):
        return () if self.config.tie_word_embeddings else ("lm_head.weight",)

    def forward(self, inputs, training, output_attentions, output_hidden_states, cache=None, logits_to_keep=0):
        out = self.backbone(inputs, training, output_attentions, output_hidden_states, cache=cache)
        return causal_lm_output(self, out, logits_to_keep)


class TFGPT2ForSequenceClassification(TFGPT2PreTrainedModel):
    """Classifies a sequence by its last non-padding token (`score` has no bias)."""

    task = "sequence-classification"
    call_options = ()

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.transformer = self.main_layer_class(config)
        self.score = dense(config.num_labels, config, use_bias=False)

    def forward(self, inputs, training, output_attentions, output_hidden_states):
        out = self.backbone(inputs, training, output_attentions, output_hidden_states)
        return last_token_classification_output(out, self.score, inputs.get("input_ids"), self.config.pad_token_id)


class TFGPT2ForTokenClassification(TFGPT2PreTrainedModel):
    task = "token-classification"
    call_options = ()

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.transformer = self.main_layer_class(config)
        hidden_dropout = getattr(config, "hidden_dropout", None)
        self.dropout = classifier_dropout(config, default=0.1 if hidden_dropout is None else hidden_dropout)
        self.classifier = dense(config.num_labels, config)

    def forward(self, inputs, training, output_attentions, output_hidden_states):
        out = self.backbone(inputs, training, output_attentions, output_hidden_states)
        return token_classification_output(out, self.dropout, self.classifier, training)
