"""tfformers: Hugging Face Hub models as native Keras 3 models on TensorFlow."""

# First: TensorFlow starts quietly on Keras' TensorFlow backend, and transformers' "PyTorch was not found"
# notice, logged when transformers is imported, is dropped.
from tfformers import _backend
from tfformers.utils import logging

# isort: split

from transformers import (  # torch-free parts
    CONFIG_MAPPING,
    AutoConfig,
    BartConfig,
    BertConfig,
    BertTokenizerFast,
    DistilBertConfig,
    GenerationConfig,
    GPT2Config,
    HfArgumentParser,
    LlamaConfig,
    M2M100Tokenizer,
    MBart50Tokenizer,
    MBart50TokenizerFast,
    MBartTokenizer,
    MBartTokenizerFast,
    MistralConfig,
    PretrainedConfig,
    PreTrainedTokenizer,
    PreTrainedTokenizerFast,
    Qwen2Config,
    RobertaConfig,
    T5Config,
    ViTConfig,
    XLMRobertaConfig,
)

from tfformers import export, keras_compat
from tfformers.callbacks import KerasMetricCallback, PushToHubCallback
from tfformers.data.collators import (
    DataCollatorForLanguageModeling,
    DataCollatorForMultipleChoice,
    DataCollatorForSeq2Seq,
    DataCollatorForTokenClassification,
    DataCollatorWithPadding,
    DefaultDataCollator,
)
from tfformers.errors import (
    BackendError,
    CheckpointError,
    ConfigError,
    HubError,
    InputError,
    TFFormersError,
)
from tfformers.generation import GenerationMixin, StaticCache
from tfformers.image_processing import AutoFeatureExtractor, AutoImageProcessor, ViTImageProcessor
from tfformers.modeling import TFPreTrainedModel
from tfformers.modeling_tf_auto import (
    TF_MODEL_FOR_CAUSAL_LM_MAPPING,
    TF_MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
    TF_MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING,
    TF_MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES,
    TF_MODEL_FOR_MASKED_LM_MAPPING,
    TF_MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    TF_MODEL_FOR_MULTIPLE_CHOICE_MAPPING,
    TF_MODEL_FOR_MULTIPLE_CHOICE_MAPPING_NAMES,
    TF_MODEL_FOR_PRETRAINING_MAPPING,
    TF_MODEL_FOR_PRETRAINING_MAPPING_NAMES,
    TF_MODEL_FOR_QUESTION_ANSWERING_MAPPING,
    TF_MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES,
    TF_MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING,
    TF_MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES,
    TF_MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING,
    TF_MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES,
    TF_MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING,
    TF_MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES,
    TF_MODEL_MAPPING,
    TF_MODEL_MAPPING_NAMES,
    TF_MODEL_WITH_LM_HEAD_MAPPING,
    TF_MODEL_WITH_LM_HEAD_MAPPING_NAMES,
)
from tfformers.modeling_tf_utils import shape_list
from tfformers.models.auto import (
    TFAutoModel,
    TFAutoModelForCausalLM,
    TFAutoModelForImageClassification,
    TFAutoModelForMaskedLM,
    TFAutoModelForMultipleChoice,
    TFAutoModelForPreTraining,
    TFAutoModelForQuestionAnswering,
    TFAutoModelForSeq2SeqLM,
    TFAutoModelForSequenceClassification,
    TFAutoModelForTokenClassification,
)
from tfformers.models.bart import TFBartForConditionalGeneration, TFBartForSequenceClassification, TFBartModel
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
from tfformers.models.t5 import TFT5EncoderModel, TFT5ForConditionalGeneration, TFT5Model
from tfformers.models.vit import TFViTForImageClassification, TFViTModel
from tfformers.optimization import AdamWeightDecay, WarmUp, create_optimizer
from tfformers.pipelines import pipeline
from tfformers.tokenization import AutoTokenizer
from tfformers.tokenization.tf_auto import TFAutoTokenizer
from tfformers.tokenization.tf_bpe import TFByteLevelBPETokenizer, TFGPT2Tokenizer
from tfformers.tokenization.tf_sentencepiece import TFSentencePieceTokenizer
from tfformers.tokenization.tf_wordpiece import TFBertTokenizer
from tfformers.trainer_utils import EvalPrediction, set_seed
from tfformers.training_args import TFTrainingArguments
from tfformers.utils import (
    CONFIG_NAME,
    SAFE_WEIGHTS_NAME,
    TF2_WEIGHTS_NAME,
    TF_WEIGHTS_NAME,
    WEIGHTS_NAME,
)

__version__ = "0.1.0"

keras_compat.install()
