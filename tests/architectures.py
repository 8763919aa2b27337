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
]

HEAD_CASES = [(arch, head) for arch in ARCHITECTURES for head in arch.heads]


def case_id(case):
    return case[1]


def config_for(arch, head, **overrides):
    """The tiny config for `head`: three labels for classifiers, so a label-count mix-up shows."""
    if head.endswith(("ForSequenceClassification", "ForTokenClassification")):
        overrides.setdefault("num_labels", 3)
    return arch.make_config(**overrides)


def make_inputs(arch, config, head, batch=3, seq=9, seed=0):
    """A padded batch: example i has its last i*2 positions masked and filled with the pad id."""
    rng = np.random.default_rng(seed)
    input_ids = rng.integers(3, config.vocab_size, size=(batch, seq))
    attention_mask = np.ones((batch, seq), dtype=np.int64)
    for i in range(batch):
        if i:
            attention_mask[i, seq - 2 * i:] = 0
            input_ids[i, seq - 2 * i:] = arch.pad_token_id
    inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
    if arch.has_token_type_ids:
        token_type_ids = np.zeros((batch, seq), dtype=np.int64)
        token_type_ids[:, seq // 2:] = 1
        inputs["token_type_ids"] = token_type_ids * attention_mask
    if head.endswith("ForMultipleChoice"):
        # [batch, choices, seq]: two choices per example, the second a rolled copy
        inputs = {k: np.stack([v, np.roll(v, 1, axis=0)], axis=1) for k, v in inputs.items()}
    return inputs
