"""tfformers: Hugging Face Hub models as native Keras 3 models on TensorFlow."""

from tfformers import _backend  # noqa: F401  (must run before keras is used)
from tfformers.errors import (
    BackendError,
    CheckpointError,
    ConfigError,
    HubError,
    InputError,
    TFFormersError,
)
from tfformers.modeling import TFPreTrainedModel
from tfformers.models.auto import (
    TFAutoModel,
    TFAutoModelForMaskedLM,
    TFAutoModelForMultipleChoice,
    TFAutoModelForPreTraining,
    TFAutoModelForQuestionAnswering,
    TFAutoModelForSequenceClassification,
    TFAutoModelForTokenClassification,
)
from tfformers.models.bert import (
    TFBertForMaskedLM,
    TFBertForMultipleChoice,
    TFBertForPreTraining,
    TFBertForQuestionAnswering,
    TFBertForSequenceClassification,
    TFBertForTokenClassification,
    TFBertModel,
)
from transformers import AutoConfig, AutoTokenizer, BertConfig  # torch-free parts

__version__ = "0.1.0"
