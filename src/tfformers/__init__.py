"""tfformers: Hugging Face Hub models as native Keras 3 models on TensorFlow."""

from tfformers import _backend  # noqa: F401  (must run before keras is used)
from tfformers.callbacks import KerasMetricCallback, PushToHubCallback
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
from tfformers.models.distilbert import (
    TFDistilBertForMaskedLM,
    TFDistilBertForMultipleChoice,
    TFDistilBertForQuestionAnswering,
    TFDistilBertForSequenceClassification,
    TFDistilBertForTokenClassification,
    TFDistilBertModel,
)
from tfformers.models.roberta import (
    TFRobertaForMaskedLM,
    TFRobertaForMultipleChoice,
    TFRobertaForQuestionAnswering,
    TFRobertaForSequenceClassification,
    TFRobertaForTokenClassification,
    TFRobertaModel,
)
from tfformers.tokenization import AutoTokenizer
from transformers import (  # torch-free parts
    AutoConfig,
    BertConfig,
    DistilBertConfig,
    RobertaConfig,
    XLMRobertaConfig,
)

__version__ = "0.1.0"
