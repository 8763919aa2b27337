"""text-classification (alias sentiment-analysis): a label and its score per text or text pair."""

import numpy as np

from tfformers.errors import InputError
from tfformers.pipelines.base import Pipeline
from tfformers.pipelines.registry import PipelineTask, register
from tfformers.pipelines.scores import sigmoid, softmax

FUNCTIONS = {"sigmoid": sigmoid, "softmax": softmax, "none": lambda logits: logits}
_OPTIONS = ("top_k", "function_to_apply")


def default_function(config):
    """The score function transformers' pipeline picks: none for regression, sigmoid for multi-label heads or a
    single label, softmax otherwise."""
    if config.problem_type == "regression":
        return "none"
    if config.problem_type == "multi_label_classification" or config.num_labels == 1:
        return "sigmoid"
    return "softmax"


class TextClassificationPipeline(Pipeline):
    """Options: `top_k` (default: the best label alone, as a dict; an int: the best k as a list, None: all),
    `function_to_apply` ("softmax", "sigmoid", "none"; default by the head's problem type), and tokenizer
    keyword arguments (`truncation`, `max_length`, ...). A text pair is {"text": ..., "text_pair": ...}."""

    task = "text-classification"

    def _sanitize_parameters(self, top_k="", function_to_apply=None, **tokenizer_kwargs):
        # "" marks top_k as not given: then the answer is the best label as a dict (transformers' legacy form)
        post = {}
        if top_k is None or isinstance(top_k, int):
            post["top_k"] = top_k
        elif top_k != "":
            raise InputError(f"top_k must be an int or None, got {top_k!r}.")
        if function_to_apply is not None:
            name = str(getattr(function_to_apply, "value", function_to_apply)).lower()
            if name not in FUNCTIONS:
                raise InputError(f"function_to_apply must be one of {sorted(FUNCTIONS)}, got {function_to_apply!r}.")
            post["function_to_apply"] = name
        return tokenizer_kwargs, {}, post

    def __call__(self, inputs, **kwargs):
        result = super().__call__(inputs, **kwargs)
        # transformers' shape: a single text without top_k at call time still answers a one-element list
        if isinstance(inputs, str) and "top_k" not in kwargs:
            return [result]
        return result

    def preprocess(self, item, **tokenizer_kwargs):
        if isinstance(item, dict):
            unknown = set(item) - {"text", "text_pair"}
            if "text" not in item or unknown:
                raise InputError(
                    f'A text pair is a dict {{"text": ..., "text_pair": ...}}; got the keys {sorted(item)}.'
                )
            encoded = self.tokenizer(**item, **tokenizer_kwargs)
        elif isinstance(item, list) and len(item) == 1 and isinstance(item[0], list) and len(item[0]) == 2:
            encoded = self.tokenizer(text=item[0][0], text_pair=item[0][1], **tokenizer_kwargs)
        elif isinstance(item, str):
            encoded = self.tokenizer(item, **tokenizer_kwargs)
        else:
            raise InputError(
                f"text-classification takes texts, or text pairs as {{\"text\": ..., \"text_pair\": ...}}; got "
                f"{type(item).__name__} {item!r:.80}."
            )
        return [dict(encoded)]

    def postprocess(self, rows, top_k="", function_to_apply=None):
        config = self.model.config
        logits = rows[0]["logits"].astype(np.float32)
        scores = FUNCTIONS[function_to_apply or default_function(config)](logits)
        if top_k == "":
            best = int(scores.argmax())
            return {"label": config.id2label[best], "score": float(scores[best])}
        answers = [{"label": config.id2label[i], "score": float(score)} for i, score in enumerate(scores)]
        answers.sort(key=lambda answer: answer["score"], reverse=True)
        return answers if top_k is None else answers[:top_k]


register(PipelineTask("text-classification", TextClassificationPipeline, "sequence-classification",
                      aliases=("sentiment-analysis",)))
