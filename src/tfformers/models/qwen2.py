"""Qwen2 (Qwen team, 2024): Llama's network with biases on the query, key and value projections (none on
the output projection) and sliding-window attention on the layers `config.layer_types` names. Everything
else comes from `llama`."""

from transformers import Qwen2Config

from tfformers.models.llama import (
    LlamaAttention,
    LlamaDecoderLayer,
    LlamaModel,
    TFLlamaForCausalLM,
    TFLlamaForSequenceClassification,
    TFLlamaModel,
    TFLlamaPreTrainedModel,
)


class Qwen2Attention(LlamaAttention):
    qkv_bias = True
    output_bias = False


class Qwen2DecoderLayer(LlamaDecoderLayer):
    attention_class = Qwen2Attention


class Qwen2Model(LlamaModel):
    decoder_layer_class = Qwen2DecoderLayer


class TFQwen2PreTrainedModel(TFLlamaPreTrainedModel):
    config_class = Qwen2Config
    main_layer_class = Qwen2Model


class TFQwen2Model(TFQwen2PreTrainedModel, TFLlamaModel):
    pass


class TFQwen2ForCausalLM(TFQwen2PreTrainedModel, TFLlamaForCausalLM):
    pass


class TFQwen2ForSequenceClassification(TFQwen2PreTrainedModel, TFLlamaForSequenceClassification):
    pass
