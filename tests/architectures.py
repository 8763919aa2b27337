"""The registry the shared test harness runs over: each architecture with its heads, a small random
config, and inputs (padding, attention masks, token types where the architecture has them).

Adding an architecture means adding an entry here; every parity, loading and saving test then runs on it.
"""

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Architecture:
    name: str
    make_config: callable  # (**overrides) -> transformers config for a tiny random model
    heads: tuple  # PyTorch transformers class names; tfformers' are the same with a "TF" prefix
    has_token_type_ids: bool = True
    pad_token_id: int = 0
    decoder: bool = False  # decoders get left- and right-padded rows; encoders right-padded ones
    extra: dict = field(default_factory=dict)


def _bert_config(**overrides):
    from transformers import BertConfig

    settings = dict(
        vocab_size=99,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=64,
        type_vocab_size=2,
        attn_implementation="eager",
    )
    settings.update(overrides)
    return BertConfig(**settings)


def _distilbert_config(**overrides):
    from transformers import DistilBertConfig

    settings = dict(
        vocab_size=99,
        dim=32,
        n_layers=2,
        n_heads=4,
        hidden_dim=37,
        max_position_embeddings=64,
        attn_implementation="eager",
    )
    settings.update(overrides)
    return DistilBertConfig(**settings)


def _roberta_config(**overrides):
    from transformers import RobertaConfig

    settings = dict(
        vocab_size=99,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        # positions run from pad_token_id + 1, so the table needs seq + pad_token_id + 1 rows
        max_position_embeddings=64,
        type_vocab_size=2,
        pad_token_id=1,
        attn_implementation="eager",
    )
    settings.update(overrides)
    return RobertaConfig(**settings)


def _gpt2_config(**overrides):
    from transformers import GPT2Config

    settings = dict(
        vocab_size=211,
        n_embd=36,
        n_layer=2,
        n_head=3,
        n_inner=37,
        n_positions=64,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        attn_implementation="eager",
    )
    settings.update(overrides)
    return GPT2Config(**settings)


def _llama_settings(**overrides):
    """Odd on purpose: 3 query heads over 1 key/value head, head_dim 24 != hidden / heads, intermediate 37,
    vocab 211, linear RoPE scaling, attention biases, untied LM head."""
    settings = dict(
        vocab_size=211,
        hidden_size=48,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=3,
        num_key_value_heads=1,
        head_dim=24,
        max_position_embeddings=64,
        rope_scaling={"rope_type": "linear", "factor": 2.0},
        attention_bias=True,
        tie_word_embeddings=False,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        attn_implementation="eager",
    )
    settings.update(overrides)
    return settings


def _llama_config(**overrides):
    from transformers import LlamaConfig

    return LlamaConfig(**_llama_settings(**overrides))


def _llama3_config(**overrides):
    """Llama 3 RoPE scaling, tied embeddings, no biases."""
    rope = {"rope_type": "llama3", "factor": 4.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": 16, "rope_theta": 500.0}
    return _llama_config(**{"rope_scaling": rope, "tie_word_embeddings": True, "attention_bias": False,
                            **overrides})


def _llama_dynamic_config(**overrides):
    """Dynamic NTK RoPE with sequences longer than max_position_embeddings, where it changes the base."""
    return _llama_config(**{"rope_scaling": {"rope_type": "dynamic", "factor": 2.0},
                            "max_position_embeddings": 6, **overrides})


def _mistral_config(**overrides):
    from transformers import MistralConfig

    settings = _llama_settings(sliding_window=4, rope_scaling=None)
    for name in ("attention_bias",):
        settings.pop(name)
    settings.update(overrides)
    return MistralConfig(**settings)


def _qwen2_config(**overrides):
    """q/k/v biases; the second layer slides a window of 4 over the keys."""
    from transformers import Qwen2Config

    settings = _llama_settings(rope_scaling=None, use_sliding_window=True, sliding_window=4,
                               max_window_layers=1, num_hidden_layers=2)
    for name in ("attention_bias", "head_dim"):
        settings.pop(name)
    settings.update(overrides)
    return Qwen2Config(**settings)


ARCHITECTURES = [
    Architecture(
        name="bert",
        make_config=_bert_config,
        heads=(
            "BertModel",
            "BertForPreTraining",
            "BertForMaskedLM",
            "BertForSequenceClassification",
            "BertForTokenClassification",
            "BertForQuestionAnswering",
            "BertForMultipleChoice",
        ),
    ),
    Architecture(
        name="distilbert",
        make_config=_distilbert_config,
        heads=(
            "DistilBertModel",
            "DistilBertForMaskedLM",
            "DistilBertForSequenceClassification",
            "DistilBertForTokenClassification",
            "DistilBertForQuestionAnswering",
            "DistilBertForMultipleChoice",
        ),
        has_token_type_ids=False,
    ),
    Architecture(
        name="roberta",
        make_config=_roberta_config,
        heads=(
            "RobertaModel",
            "RobertaForMaskedLM",
            "RobertaForSequenceClassification",
            "RobertaForTokenClassification",
            "RobertaForQuestionAnswering",
            "RobertaForMultipleChoice",
        ),
        pad_token_id=1,
    ),
    Architecture(
        name="gpt2",
        make_config=_gpt2_config,
        heads=("GPT2Model", "GPT2LMHeadModel", "GPT2ForSequenceClassification", "GPT2ForTokenClassification"),
        decoder=True,
    ),
    Architecture(
        name="llama",
        make_config=_llama_config,
        heads=("LlamaModel", "LlamaForCausalLM", "LlamaForSequenceClassification"),
        has_token_type_ids=False,
        decoder=True,
    ),
    Architecture(
        name="llama3-rope-tied",
        make_config=_llama3_config,
        heads=("LlamaModel", "LlamaForCausalLM"),
        has_token_type_ids=False,
        decoder=True,
    ),
    Architecture(
        name="llama-dynamic-rope",
        make_config=_llama_dynamic_config,
        heads=("LlamaModel", "LlamaForCausalLM"),
        has_token_type_ids=False,
        decoder=True,
    ),
    Architecture(
        name="mistral",
        make_config=_mistral_config,
        heads=("MistralModel", "MistralForCausalLM", "MistralForSequenceClassification"),
        has_token_type_ids=False,
        decoder=True,
    ),
    Architecture(
        name="qwen2",
        make_config=_qwen2_config,
        heads=("Qwen2Model", "Qwen2ForCausalLM", "Qwen2ForSequenceClassification"),
        has_token_type_ids=False,
        decoder=True,
    ),
]

DECODERS = [arch for arch in ARCHITECTURES if arch.decoder]

HEAD_CASES = [(arch, head) for arch in ARCHITECTURES for head in arch.heads]


def case_id(case):
    arch, head = case
    return head if arch.name == head.lower()[: len(arch.name)] else f"{arch.name}-{head}"


def config_for(arch, head, **overrides):
    """The tiny config for `head`: three labels for classifiers, so a label-count mix-up shows."""
    if head.endswith(("ForSequenceClassification", "ForTokenClassification")):
        overrides.setdefault("num_labels", 3)
    return arch.make_config(**overrides)


def make_inputs(arch, config, head, batch=3, seq=9, seed=0):
    """A padded batch: example i has i*2 positions masked and filled with the pad id, at the end (encoders;
    decoders: odd rows) or at the start (decoders: even rows after the first, left padding)."""
    rng = np.random.default_rng(seed)
    input_ids = rng.integers(3, config.vocab_size, size=(batch, seq))
    attention_mask = np.ones((batch, seq), dtype=np.int64)
    for i in range(1, batch):
        padding = slice(0, 2 * i) if arch.decoder and i % 2 == 0 else slice(seq - 2 * i, seq)
        attention_mask[i, padding] = 0
        input_ids[i, padding] = arch.pad_token_id
    inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
    if arch.has_token_type_ids:
        token_type_ids = np.zeros((batch, seq), dtype=np.int64)
        token_type_ids[:, seq // 2:] = 1
        inputs["token_type_ids"] = token_type_ids * attention_mask
    if head.endswith("ForMultipleChoice"):
        # [batch, choices, seq]: two choices per example, the second a rolled copy
        inputs = {k: np.stack([v, np.roll(v, 1, axis=0)], axis=1) for k, v in inputs.items()}
    return inputs
