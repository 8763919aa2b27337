"""What each head predicts and how it is trained: label names, the outputs they score, the default loss.

Model files name their task; the training machinery in `modeling` reads everything else from here, so a
loss or a label convention is defined once for every architecture.
"""

from dataclasses import dataclass
from typing import Callable, Optional

from tfformers import losses


@dataclass(frozen=True)
class Task:
    # label name -> the output field it is scored against (also what Keras metrics and user losses see)
    label_outputs: dict
    # (labels dict, outputs, config, sample_weight) -> scalar float32 loss; None for headless models
    loss: Optional[Callable] = None

    @property
    def label_names(self):
        return tuple(self.label_outputs)


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


TASKS = {
    "base": Task(label_outputs={}),
    "masked-lm": Task({"labels": "logits"}, _on_logits(losses.masked_lm_loss)),
    "causal-lm": Task({"labels": "logits"}, _on_logits(losses.causal_lm_loss)),
    "pretraining": Task(
        {"labels": "prediction_logits", "next_sentence_label": "seq_relationship_logits"}, _pretraining
    ),
    "sequence-classification": Task({"labels": "logits"}, _sequence_classification),
    "token-classification": Task({"labels": "logits"}, _on_logits(losses.token_classification_loss)),
    "question-answering": Task(
        {"start_positions": "start_logits", "end_positions": "end_logits"}, _question_answering
    ),
    "multiple-choice": Task({"labels": "logits"}, _on_logits(losses.multiple_choice_loss)),
}
