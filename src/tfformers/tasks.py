"""The one task registry: what each head predicts, how it is trained, named and shown.

Model files name their task (`task = "masked-lm"`); everything else about a task is read from here: the
label names and the outputs they score, the default loss, the class-name suffix (`TFBertForMaskedLM`,
`TFAutoModelForMaskedLM`), the Hub pipeline tag, and the usage lines of a model card.
"""

from dataclasses import dataclass
from typing import Callable, Optional

from tfformers import losses

_EXAMPLE_INPUTS = 'inputs = tokenizer(["Hello, this is an example."], return_tensors="tf")'
_PRINT_SHAPES = ("outputs = model(inputs)", "print({name: value.shape for name, value in outputs.items()})")


@dataclass(frozen=True)
class Task:
    name: str
    # class-name suffix: "TF" + architecture + suffix, and "TFAutoModel" + suffix ("Model" -> "TFAutoModel")
    class_suffix: str
    pipeline_tag: str
    # label name -> the output field it is scored against (also what Keras metrics and user losses see)
    label_outputs: dict
    # (labels dict, outputs, config, sample_weight) -> scalar float32 loss; None for headless models
    loss: Optional[Callable] = None
    # model-card usage: the line building `inputs` from `tokenizer`, then the lines using `model`
    usage_inputs: str = _EXAMPLE_INPUTS
    usage_outputs: tuple = _PRINT_SHAPES
    # older suffixes some architectures keep for this task (GPT-2's `GPT2LMHeadModel` is a causal LM)
    suffix_aliases: tuple = ()
    # the Auto class's suffix when it differs from the class suffix (`TFAutoModelForSeq2SeqLM`)
    auto_suffix: str = None

    @property
    def class_suffixes(self):
        return (self.class_suffix,) + self.suffix_aliases

    @property
    def label_names(self):
        return tuple(self.label_outputs)

    @property
    def auto_class_name(self):
        suffix = self.auto_suffix or self.class_suffix
        return "TFAutoModel" + ("" if suffix == "Model" else suffix)


def _sequence_classification(labels, out, config, sample_weight):
    return losses.sequence_classification_loss(
        labels["labels"],
        out["logits"],
        num_labels=config.num_labels,
        problem_type=config.problem_type,
        sample_weight=sample_weight,
    )


def _pretraining(labels, out, config, sample_weight):
    return losses.pretraining_loss(
        labels.get("labels"),
        labels.get("next_sentence_label"),
        out["prediction_logits"],
        out["seq_relationship_logits"],
    )


def _question_answering(labels, out, config, sample_weight):
    return losses.question_answering_loss(
        labels["start_positions"],
        labels["end_positions"],
        out["start_logits"],
        out["end_logits"],
        sample_weight=sample_weight,
    )


def _on_logits(loss_fn):
    return lambda labels, out, config, sample_weight: loss_fn(
        labels["labels"], out["logits"], sample_weight=sample_weight
    )


_FILL_MASK_INPUTS = 'inputs = tokenizer([f"Paris is the {tokenizer.mask_token} of France."], return_tensors="tf")'

_REGISTRY = (
    Task("base", "Model", "feature-extraction", {}),
    Task(
        "pretraining", "ForPreTraining", "fill-mask",
        {"labels": "prediction_logits", "next_sentence_label": "seq_relationship_logits"}, _pretraining,
        usage_inputs=_FILL_MASK_INPUTS,
    ),
    Task(
        "masked-lm", "ForMaskedLM", "fill-mask", {"labels": "logits"}, _on_logits(losses.masked_lm_loss),
        usage_inputs=_FILL_MASK_INPUTS,
    ),
    Task(
        "causal-lm", "ForCausalLM", "text-generation", {"labels": "logits"}, _on_logits(losses.causal_lm_loss),
        usage_inputs='inputs = tokenizer(["Once upon a time"], return_tensors="tf")',
        usage_outputs=(
            "tokens = model.generate(**inputs, max_new_tokens=32)",
            "print(tokenizer.decode(tokens[0], skip_special_tokens=True))",
        ),
        suffix_aliases=("LMHeadModel",),
    ),
    Task(
        "seq2seq-lm", "ForConditionalGeneration", "text2text-generation", {"labels": "logits"},
        _on_logits(losses.seq2seq_lm_loss),
        usage_inputs='inputs = tokenizer(["translate English to German: How are you?"], return_tensors="tf")',
        usage_outputs=(
            "tokens = model.generate(**inputs, max_new_tokens=32)",
            "print(tokenizer.decode(tokens[0], skip_special_tokens=True))",
        ),
        auto_suffix="ForSeq2SeqLM",
    ),
    Task(
        "sequence-classification", "ForSequenceClassification", "text-classification",
        {"labels": "logits"}, _sequence_classification,
        usage_outputs=(
            "outputs = model(inputs)",
            "predicted = int(outputs.logits.numpy().argmax(-1)[0])",
            "print(model.config.id2label[predicted])",
        ),
    ),
    Task(
        "image-classification", "ForImageClassification", "image-classification",
        {"labels": "logits"}, _sequence_classification,
        usage_inputs='inputs = image_processor(images, return_tensors="tf")',
        usage_outputs=(
            "outputs = model(inputs)",
            "predicted = int(outputs.logits.numpy().argmax(-1)[0])",
            "print(model.config.id2label[predicted])",
        ),
    ),
    Task(
        "token-classification", "ForTokenClassification", "token-classification",
        {"labels": "logits"}, _on_logits(losses.token_classification_loss),
    ),
    Task(
        "question-answering", "ForQuestionAnswering", "question-answering",
        {"start_positions": "start_logits", "end_positions": "end_logits"}, _question_answering,
        usage_inputs='inputs = tokenizer(["Where is the Hub?"], ["The Hub is online."], return_tensors="tf")',
    ),
    Task(
        "multiple-choice", "ForMultipleChoice", "multiple-choice",
        {"labels": "logits"}, _on_logits(losses.multiple_choice_loss),
        usage_inputs='inputs = tokenizer([["A first choice.", "A second choice."]], return_tensors="tf")',
    ),
)

TASKS = {task.name: task for task in _REGISTRY}


def task_of_architecture(architecture):
    """The task of a PyTorch/tfformers class name (`"BertForMaskedLM"` -> masked-lm), by its suffix; None
    when no registered suffix fits. The longest suffix wins (`...Model` is every class's last letters)."""
    name = architecture.removeprefix("TF")
    fitting = [
        (len(suffix), task.name) for task in _REGISTRY for suffix in task.class_suffixes if name.endswith(suffix)
    ]
    return max(fitting)[1] if fitting else None
