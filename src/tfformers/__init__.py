"""tfformers: Hugging Face Hub models as native Keras 3 models on TensorFlow."""

# First: TensorFlow starts quietly on Keras' TensorFlow backend, and transformers' "PyTorch was not found"
# notice, logged when transformers is imported, is dropped.
from tfformers import _backend
from tfformers.utils import logging

# isort: split

from transformers import (  # torch-free parts
    AutoConfig,
    BertConfig,
    DistilBertConfig,
    GenerationConfig,
    GPT2Config,
    LlamaConfig,
    MistralConfig,
    Qwen2Config,
    RobertaConfig,
    XLMRobertaConfig,
)

from tfformers import export, keras_compat
from tfformers.callbacks import KerasMetricCallback, PushToHubCallback
from tfformers.errors import (
    BackendError,
    CheckpointError,
    ConfigError,
    HubError,
    InputError,
    TFFormersError,
)
from tfformers.generation import GenerationMixin, StaticCache
from tfformers.modeling import TFPreTrainedModel
from tfformers.models.auto import (
    TFAutoModel,
    TFAutoModelForCausalLM,
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
from tfformers.models.gpt2 import (
    TFGPT2ForSequenceClassification,
    TFGPT2ForTokenClassification,
    TFGPT2LMHeadModel,
    TFGPT2Model,
)
from tfformers.models.llama import TFLlamaForCausalLM, TFLlamaForSequenceClassification, TFLlamaModel
from tfformers.models.mistral import TFMistralForCausalLM, TFMistralForSequenceClassification, TFMistralModel
from tfformers.models.qwen2 import TFQwen2ForCausalLM, TFQwen2ForSequenceClassification, TFQwen2Model
from tfformers.models.roberta import (
    TFRobertaForMaskedLM,
    TFRobertaForMultipleChoice,
    TFRobertaForQuestionAnswering,
    TFRobertaForSequenceClassification,
    TFRobertaForTokenClassification,
    TFRobertaModel,
)
from tfformers.tokenization import AutoTokenizer
from tfformers.tokenization.tf_auto import TFAutoTokenizer
from tfformers.tokenization.tf_bpe import TFByteLevelBPETokenizer, TFGPT2Tokenizer
from tfformers.tokenization.tf_sentencepiece import TFSentencePieceTokenizer
from tfformers.tokenization.tf_wordpiece import TFBertTokenizer

__version__ = "0.1.0"

keras_compat.install()
