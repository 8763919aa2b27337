"""The TFAuto* classes: the configuration's `model_type` picks the architecture, the Auto class the head."""

import importlib

from tfformers.config import load_config
from tfformers.errors import ConfigError
from tfformers.lora import adapter_base_model
from tfformers.modeling import refuse_remote_code
from tfformers.tasks import TASKS

# model_type -> (module in tfformers.models, class-name stem)
ARCHITECTURES = {
    "bart": ("bart", "Bart"),
    "bert": ("bert", "Bert"),
    "distilbert": ("distilbert", "DistilBert"),
    "roberta": ("roberta", "Roberta"),
    "xlm-roberta": ("roberta", "Roberta"),
    "gpt2": ("gpt2", "GPT2"),
    "llama": ("llama", "Llama"),
    "mistral": ("mistral", "Mistral"),
    "qwen2": ("qwen2", "Qwen2"),
    "vit": ("vit", "ViT"),
    "t5": ("t5", "T5"),
}

_LOADING_OPTIONS = (
    "ignore_mismatched_sizes", "dtype", "output_loading_info", "gguf_file", "trust_remote_code", "from_pt"
)


def model_class_for(config, task):
    """The tfformers class for `config.model_type` and `task`; ConfigError naming what is supported."""
    model_type = getattr(config, "model_type", None)
    if model_type not in ARCHITECTURES:
        raise ConfigError(
            f"model_type {model_type!r} is not supported by tfformers; supported: {sorted(ARCHITECTURES)}."
        )
    module_name, stem = ARCHITECTURES[model_type]
    module = importlib.import_module(f"tfformers.models.{module_name}")
    names = [f"TF{stem}{suffix}" for suffix in TASKS[task].class_suffixes]
    for name in names:
        if hasattr(module, name):
            return getattr(module, name)
    raise ConfigError(f"model_type {model_type!r} has no {task} head in tfformers ({names[0]}).")


class _AutoModel:
    task = "base"

    def __init__(self):
        raise TypeError(f"{type(self).__name__} is created with from_pretrained() or from_config().")

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path,
        *,
        config=None,
        revision=None,
        cache_dir=None,
        token=None,
        local_files_only=False,
        **kwargs,
    ):
        """Loads the architecture named by the checkpoint's config, with this class's head.

        Takes the same arguments as `TFPreTrainedModel.from_pretrained`."""
        hub_kwargs = dict(
            revision=revision, cache_dir=cache_dir, token=token, local_files_only=local_files_only
        )
        loading = {name: kwargs.pop(name) for name in _LOADING_OPTIONS if name in kwargs}
        refuse_remote_code(loading.get("trust_remote_code"), pretrained_model_name_or_path)
        base = adapter_base_model(pretrained_model_name_or_path, **hub_kwargs) or pretrained_model_name_or_path
        config = load_config(base, config, kwargs, loading.get("gguf_file"), **hub_kwargs)
        model_class = model_class_for(config, cls.task)
        return model_class.from_pretrained(
            pretrained_model_name_or_path, config=config, **hub_kwargs, **loading
        )

    @classmethod
    def from_config(cls, config, *, trust_remote_code=False, token=None, **kwargs):
        """A randomly initialized, built model for `config`; `kwargs` go to the model class (Keras' `name`,
        ...). As in transformers 4.x, `token` is accepted (nothing is downloaded) and `trust_remote_code=True`
        is refused as in `from_pretrained`."""
        refuse_remote_code(trust_remote_code, f"config of model_type {getattr(config, 'model_type', None)!r}")
        model = model_class_for(config, cls.task)(config, **kwargs)
        model.build_with_dummy_inputs()
        return model


class TFAutoModel(_AutoModel):
    task = "base"


class TFAutoModelForPreTraining(_AutoModel):
    task = "pretraining"


class TFAutoModelForMaskedLM(_AutoModel):
    task = "masked-lm"


class TFAutoModelForCausalLM(_AutoModel):
    task = "causal-lm"


class TFAutoModelForSequenceClassification(_AutoModel):
    task = "sequence-classification"


class TFAutoModelForTokenClassification(_AutoModel):
    task = "token-classification"


class TFAutoModelForQuestionAnswering(_AutoModel):
    task = "question-answering"


class TFAutoModelForMultipleChoice(_AutoModel):
    task = "multiple-choice"


class TFAutoModelForImageClassification(_AutoModel):
    task = "image-classification"


class TFAutoModelForSeq2SeqLM(_AutoModel):
    task = "seq2seq-lm"
