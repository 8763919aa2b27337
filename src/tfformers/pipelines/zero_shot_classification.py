"""zero-shot-classification: candidate labels ranked by a natural-language-inference model.

Each (text, "This example is {label}.") pair is one row through a sequence-classification head trained on
NLI; the entailment logit ranks the labels (softmax over labels), or with `multi_label` each label's
entailment against contradiction is scored on its own. The entailment class is the first label in
`config.label2id` starting with "entail", as in transformers.
"""

import logging

import numpy as np

from tfformers.errors import InputError
from tfformers.pipelines.base import Pipeline, require_options
from tfformers.pipelines.registry import PipelineTask, register
from tfformers.pipelines.scores import softmax

logger = logging.getLogger("tfformers")


def parse_labels(labels):
    """A list of labels, or one string of comma-separated labels."""
    if isinstance(labels, str):
        labels = [label.strip() for label in labels.split(",") if label.strip()]
    return list(labels)


class ZeroShotClassificationPipeline(Pipeline):
    """Called as `classifier(texts, candidate_labels, ...)`. Options: `candidate_labels` (required: a list or
    a comma-separated string), `hypothesis_template` ("This example is {}."), `multi_label` (False). Each
    answer: {"sequence", "labels" (best first), "scores"}."""

    task = "zero-shot-classification"

    def __init__(self, model, tokenizer, **kwargs):
        super().__init__(model, tokenizer, **kwargs)
        if self.entailment_id == -1:
            logger.warning("No label of the model's config.label2id starts with 'entail'; the last class stands "
                           "for entailment. Name the classes (e.g. entailment, neutral, contradiction).")

    @property
    def entailment_id(self):
        for label, index in self.model.config.label2id.items():
            if label.lower().startswith("entail"):
                return int(index)
        return -1

    def _sanitize_parameters(self, candidate_labels=None, hypothesis_template=None, multi_label=None, **kwargs):
        require_options(self.task, (), kwargs)
        pre = {}
        if candidate_labels is not None:
            pre["candidate_labels"] = parse_labels(candidate_labels)
        if hypothesis_template is not None:
            pre["hypothesis_template"] = hypothesis_template
        return pre, {}, {} if multi_label is None else {"multi_label": multi_label}

    def __call__(self, sequences, *args, **kwargs):
        if len(args) == 1 and "candidate_labels" not in kwargs:
            kwargs["candidate_labels"] = args[0]
        elif args:
            raise InputError(f"zero-shot-classification takes (sequences, candidate_labels); got extra {args}.")
        return super().__call__(sequences, **kwargs)

    def preprocess(self, item, candidate_labels=None, hypothesis_template="This example is {}."):
        if not candidate_labels:
            raise InputError("zero-shot-classification needs candidate_labels: pass e.g. "
                             "candidate_labels=['sports', 'politics'] (a list, or one comma-separated string).")
        if not isinstance(item, str) or not item:
            raise InputError(f"zero-shot-classification takes non-empty texts, got {item!r:.80}.")
        if hypothesis_template.format(candidate_labels[0]) == hypothesis_template:
            raise InputError(f"hypothesis_template {hypothesis_template!r} has no {{}} where the label goes.")
        return [self._pair(item, hypothesis_template.format(label)) | {"label": label, "sequence": item}
                for label in candidate_labels]

    def _pair(self, sequence, hypothesis):
        """The tokenized pair, truncating only the text so the hypothesis stays whole."""
        try:
            return dict(self.tokenizer(sequence, hypothesis, truncation="only_first"))
        except Exception as error:  # the text is already too short to truncate: keep it whole
            if "too short" not in str(error):
                raise
            return dict(self.tokenizer(sequence, hypothesis, truncation=False))

    def postprocess(self, rows, multi_label=False):
        logits = np.stack([row["logits"] for row in rows]).astype(np.float32)  # [labels, classes]
        entailment = self.entailment_id
        if multi_label or len(rows) == 1:
            contradiction = -1 if entailment == 0 else 0
            scores = softmax(logits[:, [contradiction, entailment]])[:, 1]
        else:
            scores = softmax(logits[:, entailment])
        order = list(reversed(scores.argsort()))
        return {"sequence": rows[0]["sequence"], "labels": [rows[i]["label"] for i in order],
                "scores": [float(scores[i]) for i in order]}


register(PipelineTask("zero-shot-classification", ZeroShotClassificationPipeline, "sequence-classification"))
