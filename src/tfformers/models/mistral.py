"""Mistral (Jiang et al., 2023): Llama's network with sliding-window attention (`config.sliding_window`
tokens back, counted in cache slots), so every layer comes from `llama`; only the configuration differs."""

from transformers import MistralConfig

from tfformers.models.llama import (
    TFLlamaForCausalLM,
    TFLlamaForSequenceClassification,
    TFLlamaModel,
    TFLlamaPreTrainedModel,
)


class TFMistralPreTrainedModel(TFLlamaPreTrainedModel):
    config_class = MistralConfig


class TFMistralModel(TFMistralPreTrainedModel, TFLlamaModel):
    pass


class TFMistralForCausalLM(TFMistralPreTrainedModel, TFLlamaForCausalLM):
    pass


class TFMistralForSequenceClassification(TFMistralPreTrainedModel, TFLlamaForSequenceClassification):
    pass
