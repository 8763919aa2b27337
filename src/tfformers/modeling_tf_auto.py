"""transformers 4.x's `TF_MODEL_FOR_*_MAPPING` objects and their `*_MAPPING_NAMES`, for tfformers' models.

`TF_MODEL_FOR_MASKED_LM_MAPPING_NAMES` maps a `model_type` to the name of the tfformers class with that head
(`{"bert": "TFBertForMaskedLM", ...}`); `TF_MODEL_FOR_MASKED_LM_MAPPING` maps the configuration class to the
model class (`{BertConfig: TFBertForMaskedLM, ...}`), so 4.x scripts' `MODEL_TYPES = tuple(c.model_type for c
in TF_MODEL_FOR_MASKED_LM_MAPPING.keys())` lists the architectures tfformers can train. Both are read from the
one architecture registry (`tfformers.models.auto.ARCHITECTURES`) and the task registry (`tfformers.tasks`):
an architecture added there appears here. XLM-RoBERTa uses the RoBERTa classes (`"xlm-roberta":
"TFRobertaForMaskedLM"`; 4.x had `TFXLMRobertaForMaskedLM`).
"""

import importlib
from collections import OrderedDict
from collections.abc import Mapping
from types import SimpleNamespace

from tfformers.errors import ConfigError
from tfformers.models.auto import ARCHITECTURES, model_class_for

__all__ = [
    "TF_MODEL_FOR_CAUSAL_LM_MAPPING",
    "TF_MODEL_FOR_CAUSAL_LM_MAPPING_NAMES",
    "TF_MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING",
    "TF_MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES",
    "TF_MODEL_FOR_MASKED_LM_MAPPING",
    "TF_MODEL_FOR_MASKED_LM_MAPPING_NAMES",
    "TF_MODEL_FOR_MULTIPLE_CHOICE_MAPPING",
    "TF_MODEL_FOR_MULTIPLE_CHOICE_MAPPING_NAMES",
    "TF_MODEL_FOR_PRETRAINING_MAPPING",
    "TF_MODEL_FOR_PRETRAINING_MAPPING_NAMES",
    "TF_MODEL_FOR_QUESTION_ANSWERING_MAPPING",
    "TF_MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES",
    "TF_MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING",
    "TF_MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES",
    "TF_MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING",
    "TF_MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES",
    "TF_MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING",
    "TF_MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES",
    "TF_MODEL_MAPPING",
    "TF_MODEL_MAPPING_NAMES",
    "TF_MODEL_WITH_LM_HEAD_MAPPING",
    "TF_MODEL_WITH_LM_HEAD_MAPPING_NAMES",
    "TFAutoMapping",
    "mapping_names_for_task",
]


def mapping_names_for_task(*tasks):
    """model_type -> class name of its head for the first of `tasks` it has, in the registry's order."""
    names = OrderedDict()
    for model_type in ARCHITECTURES:
        for task in tasks:
            try:
                names[model_type] = model_class_for(SimpleNamespace(model_type=model_type), task).__name__
                break
            except ConfigError:  # no such head for this architecture
                continue
    return names


class TFAutoMapping(Mapping):
    """Configuration class -> tfformers model class, over a `model_type -> class name` table (4.x's
    `_LazyAutoMapping`). Keys are transformers' configuration classes; a configuration class whose
    `model_type` is in the table but is not its registered class (a subclass, a custom config) is accepted
    by `[]` too."""

    def __init__(self, names):
        self._names = names

    @staticmethod
    def _config_class(model_type):
        from transformers import CONFIG_MAPPING

        return CONFIG_MAPPING[model_type]

    @staticmethod
    def _model_class(model_type, class_name):
        module_name, _ = ARCHITECTURES[model_type]
        return getattr(importlib.import_module(f"tfformers.models.{module_name}"), class_name)

    def __getitem__(self, config_class):
        model_type = getattr(config_class, "model_type", None)
        if model_type not in self._names:
            raise KeyError(config_class)
        return self._model_class(model_type, self._names[model_type])

    def __iter__(self):
        return (self._config_class(model_type) for model_type in self._names)

    def __len__(self):
        return len(self._names)

    def __contains__(self, config_class):
        return getattr(config_class, "model_type", None) in self._names

    def __repr__(self):
        return f"{type(self).__name__}({dict(self._names)})"


TF_MODEL_MAPPING_NAMES = mapping_names_for_task("base")
TF_MODEL_FOR_PRETRAINING_MAPPING_NAMES = mapping_names_for_task("pretraining")
TF_MODEL_FOR_MASKED_LM_MAPPING_NAMES = mapping_names_for_task("masked-lm")
TF_MODEL_FOR_CAUSAL_LM_MAPPING_NAMES = mapping_names_for_task("causal-lm")
TF_MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES = mapping_names_for_task("sequence-classification")
TF_MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES = mapping_names_for_task("token-classification")
TF_MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES = mapping_names_for_task("question-answering")
TF_MODEL_FOR_MULTIPLE_CHOICE_MAPPING_NAMES = mapping_names_for_task("multiple-choice")
TF_MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES = mapping_names_for_task("image-classification")
TF_MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES = mapping_names_for_task("seq2seq-lm")  # 4.x's name
# 4.x's deprecated "model with an LM head": the masked-LM head where there is one, else the causal one
TF_MODEL_WITH_LM_HEAD_MAPPING_NAMES = mapping_names_for_task("masked-lm", "causal-lm")

TF_MODEL_MAPPING = TFAutoMapping(TF_MODEL_MAPPING_NAMES)
TF_MODEL_FOR_PRETRAINING_MAPPING = TFAutoMapping(TF_MODEL_FOR_PRETRAINING_MAPPING_NAMES)
TF_MODEL_FOR_MASKED_LM_MAPPING = TFAutoMapping(TF_MODEL_FOR_MASKED_LM_MAPPING_NAMES)
TF_MODEL_FOR_CAUSAL_LM_MAPPING = TFAutoMapping(TF_MODEL_FOR_CAUSAL_LM_MAPPING_NAMES)
TF_MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING = TFAutoMapping(TF_MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES)
TF_MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING = TFAutoMapping(TF_MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES)
TF_MODEL_FOR_QUESTION_ANSWERING_MAPPING = TFAutoMapping(TF_MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES)
TF_MODEL_FOR_MULTIPLE_CHOICE_MAPPING = TFAutoMapping(TF_MODEL_FOR_MULTIPLE_CHOICE_MAPPING_NAMES)
TF_MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING = TFAutoMapping(TF_MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES)
TF_MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING = TFAutoMapping(TF_MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES)
TF_MODEL_WITH_LM_HEAD_MAPPING = TFAutoMapping(TF_MODEL_WITH_LM_HEAD_MAPPING_NAMES)
