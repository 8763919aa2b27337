"""image-classification: the top labels and their scores per image, the image processed by tfformers' own
image processor (TF ops) from the checkpoint's preprocessor_config.json."""

import numpy as np
import tensorflow as tf

from tfformers.errors import InputError
from tfformers.pipelines.base import Pipeline
from tfformers.pipelines.registry import PipelineTask, register
from tfformers.pipelines.text_classification import FUNCTIONS, default_function


class ImageClassificationPipeline(Pipeline):
    """Images (PIL, numpy arrays, TF tensors, encoded bytes, file paths) -> [{"label", "score"}] sorted by
    score. Options: `top_k` (default 5, as transformers; capped at num_labels), `function_to_apply`
    ("softmax", "sigmoid", "none"; default by the head's problem type). The image processor is held where
    text pipelines hold their tokenizer."""

    task = "image-classification"

    def _sanitize_parameters(self, top_k=None, function_to_apply=None):
        post = {}
        if top_k is not None:
            if not isinstance(top_k, int) or top_k < 1:
                raise InputError(f"top_k must be a positive int, got {top_k!r}.")
            post["top_k"] = top_k
        if function_to_apply is not None:
            name = str(getattr(function_to_apply, "value", function_to_apply)).lower()
            if name not in FUNCTIONS:
                raise InputError(f"function_to_apply must be one of {sorted(FUNCTIONS)}, got {function_to_apply!r}.")
            post["function_to_apply"] = name
        return {}, {}, post

    def _is_single(self, inputs):
        return not isinstance(inputs, (list, tuple)) and (
            isinstance(inputs, (str, bytes, np.ndarray, tf.Tensor, dict)) or not hasattr(inputs, "__iter__")
        )

    def preprocess(self, item):
        return [{"pixel_values": self.tokenizer(item, return_tensors="np")["pixel_values"][0]}]

    def postprocess(self, rows, top_k=5, function_to_apply=None):
        config = self.model.config
        scores = FUNCTIONS[function_to_apply or default_function(config)](rows[0]["logits"].astype(np.float32))
        order = np.argsort(-scores, kind="stable")[: min(top_k, config.num_labels)]
        return [{"label": config.id2label[int(i)], "score": float(scores[i])} for i in order]


register(PipelineTask("image-classification", ImageClassificationPipeline, "image-classification"))
