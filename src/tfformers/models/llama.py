"""Llama (Touvron et al., 2023): a pre-norm decoder with RMSNorm, rotary positions, grouped-query
attention and a SwiGLU MLP. Mistral (sliding-window attention) and Qwen2 (q/k/v biases) are the same
network and reuse these layers from their own modules.

Attribute names equal PyTorch transformers' module names (`model.layers.0.self_attn.q_proj`,
`mlp.gate_proj`, `input_layernorm`, `model.norm`, `lm_head`). The KV cache is reached only through
`cache.update` in the attention layer; masks come from `layers.masks`.
"""

import keras
import tensorflow as tf
from transformers import LlamaConfig

from tfformers.errors import ConfigError
from tfformers.generation import GenerationMixin
from tfformers.layers import (
    causal_attention_bias,
    check_token_ids,
    dense,
    embedding,
    get_activation,
    merge_heads,
    scaled_dot_product_attention,
    split_heads,
)
from tfformers.layers.core import RMSNorm
from tfformers.layers.decoder import DecoderInputs, run_blocks
from tfformers.layers.heads import (
    causal_lm_head,
    causal_lm_output,
    last_token_classification_output,
    tied_lm_head_keys,
)
from tfformers.layers.rotary import RotaryEmbedding, apply_rotary, head_dim_of
from tfformers.modeling import TFPreTrainedModel

# ------------------------------------------------------------------------------------------- attention


class LlamaAttention(keras.layers.Layer):
    """Grouped-query self-attention: num_attention_heads query heads over num_key_value_heads key/value
    heads, rotary positions on queries and keys."""

    qkv_bias = None  # None: the config's `attention_bias` (Qwen2 sets q/k/v biases on, o_proj's off)
    output_bias = None

    def __init__(self, config, layer_idx, sliding_window=None, **kwargs):
        super().__init__(**kwargs)
        self.layer_idx = layer_idx
        self.sliding_window = sliding_window
        self.num_heads = config.num_attention_heads
        self.num_key_value_heads = config.num_key_value_heads
        if self.num_heads % self.num_key_value_heads:
            raise ConfigError(
                f"num_attention_heads={self.num_heads} is not a multiple of "
                f"num_key_value_heads={self.num_key_value_heads}."
            )
        self.head_dim = head_dim_of(config)
        bias = getattr(config, "attention_bias", False)
        qkv_bias = bias if self.qkv_bias is None else self.qkv_bias
        self.q_proj = dense(self.num_heads * self.head_dim, config, use_bias=qkv_bias)
        self.k_proj = dense(self.num_key_value_heads * self.head_dim, config, use_bias=qkv_bias)
        self.v_proj = dense(self.num_key_value_heads * self.head_dim, config, use_bias=qkv_bias)
        self.o_proj = dense(config.hidden_size, config, use_bias=bias if self.output_bias is None else self.output_bias)
        self.dropout = keras.layers.Dropout(config.attention_dropout)

    def call(self, hidden_states, rope, bias, cache=None, training=False):
        query = split_heads(self.q_proj(hidden_states), self.num_heads)  # [batch, heads, seq, head_dim]
        key = split_heads(self.k_proj(hidden_states), self.num_key_value_heads)  # [batch, kv_heads, ...]
        value = split_heads(self.v_proj(hidden_states), self.num_key_value_heads)
        query, key = apply_rotary(query, key, *rope)
        if cache is not None:
            key, value = cache.update(self.layer_idx, key, value)  # [batch, kv_heads, cache slots, head_dim]
        context, probs = scaled_dot_product_attention(
            query, key, value, bias, self.dropout, training, scale=self.head_dim**-0.5
        )
        return self.o_proj(merge_heads(context)), probs


# ----------------------------------------------------------------------------------------------- block


class LlamaMLP(keras.layers.Layer):
    """SwiGLU: down_proj(act(gate_proj(x)) * up_proj(x))."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        bias = getattr(config, "mlp_bias", False)
        self.gate_proj = dense(config.intermediate_size, config, use_bias=bias)
        self.up_proj = dense(config.intermediate_size, config, use_bias=bias)
        self.down_proj = dense(config.hidden_size, config, use_bias=bias)
        self.act_fn = get_activation(config.hidden_act)

    def call(self, hidden_states):
        return self.down_proj(self.act_fn(self.gate_proj(hidden_states)) * self.up_proj(hidden_states))


class LlamaDecoderLayer(keras.layers.Layer):
    """Pre-norm block: x + attention(norm(x)), then h + mlp(norm(h))."""

    attention_class = LlamaAttention

    def __init__(self, config, layer_idx, sliding_window=None, **kwargs):
        super().__init__(**kwargs)
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.self_attn = self.attention_class(config, layer_idx, sliding_window)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.mlp = LlamaMLP(config)

    def call(self, hidden_states, rope, bias, cache=None, training=False):
        attention_output, probs = self.self_attn(
            self.input_layernorm(hidden_states), rope, bias, cache=cache, training=training
        )
        hidden_states = hidden_states + attention_output
        return hidden_states + self.mlp(self.post_attention_layernorm(hidden_states)), probs


# ----------------------------------------------------------------------------------------------- stack


def sliding_windows(config):
    """Each layer's attention window (None: full causal attention). Qwen2-style configs list `layer_types`;
    Mistral's `sliding_window` applies to every layer; Llama has none."""
    window = getattr(config, "sliding_window", None)
    layer_types = getattr(config, "layer_types", None)
    if layer_types:
        return [window if kind == "sliding_attention" else None for kind in layer_types]
    return [window] * config.num_hidden_layers


class LlamaModel(keras.layers.Layer):
    """The backbone: token embeddings, the decoder blocks, the final RMSNorm."""

    decoder_layer_class = LlamaDecoderLayer

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.embed_tokens = embedding(config.vocab_size, config.hidden_size, config)
        windows = sliding_windows(config)
        self.layers = [self.decoder_layer_class(config, i, windows[i]) for i in range(config.num_hidden_layers)]
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.rotary_emb = RotaryEmbedding(config)

    def call(
        self,
        input_ids=None,
        attention_mask=None,
        position_ids=None,
        inputs_embeds=None,
        cache=None,
        training=False,
        output_attentions=False,
        output_hidden_states=False,
    ):
        if inputs_embeds is None:
            inputs_embeds = self.embed_tokens(check_token_ids(input_ids, self.config.vocab_size))
        where = DecoderInputs(inputs_embeds, attention_mask, position_ids, cache)
        biases = {  # [batch, 1, seq, keys], one per distinct window
            window: causal_attention_bias(where.attention_mask, where.query_slots, window, inputs_embeds.dtype)
            for window in {layer.self_attn.sliding_window for layer in self.layers}
        }
        rope = self.rotary_emb(where.position_ids, inputs_embeds.dtype)

        def call_block(block, hidden_states):
            bias = biases[block.self_attn.sliding_window]
            return block(hidden_states, rope, bias, cache=cache, training=training)

        out = run_blocks(
            self.layers, inputs_embeds, call_block, self.norm, output_hidden_states, output_attentions
        )
        if cache is not None:
            cache.advance(tf.shape(inputs_embeds)[1])
        return out


# ----------------------------------------------------------------------------------------------- models


class TFLlamaPreTrainedModel(TFPreTrainedModel):
    config_class = LlamaConfig
    base_model_prefix = "model"
    main_layer_class = LlamaModel
    input_names = ("input_ids", "attention_mask", "position_ids", "inputs_embeds")
    call_options = ("cache",)

    def get_input_embeddings(self):
        return self.model.embed_tokens


class TFLlamaModel(TFLlamaPreTrainedModel):
    is_base_model = True

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.model = self.main_layer_class(config)


class TFLlamaForCausalLM(GenerationMixin, TFLlamaPreTrainedModel):
    task = "causal-lm"
    call_options = ("cache", "logits_to_keep")

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.model = self.main_layer_class(config)
        self.lm_head = causal_lm_head(config)

    @property
    def tied_weights_keys(self):
        return tied_lm_head_keys(self.config, "model.embed_tokens.weight")

    @property
    def vocabulary_output_keys(self):
        return () if self.config.tie_word_embeddings else ("lm_head.weight",)

    def forward(self, inputs, training, output_attentions, output_hidden_states, cache=None, logits_to_keep=0):
        out = self.backbone(inputs, training, output_attentions, output_hidden_states, cache=cache)
        return causal_lm_output(self, out, logits_to_keep)


class TFLlamaForSequenceClassification(TFLlamaPreTrainedModel):
    """Classifies a sequence by its last non-padding token (`score` has no bias)."""

    task = "sequence-classification"
    call_options = ()

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.model = self.main_layer_class(config)
        self.score = dense(config.num_labels, config, use_bias=False)

    def forward(self, inputs, training, output_attentions, output_hidden_states):
        out = self.backbone(inputs, training, output_attentions, output_hidden_states)
        return last_token_classification_output(out, self.score, inputs.get("input_ids"), self.config.pad_token_id)
