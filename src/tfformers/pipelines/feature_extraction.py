"""feature-extraction: a base model's last hidden state for each text."""

import tensorflow as tf

from tfformers.errors import InputError
from tfformers.pipelines.base import Pipeline, require_options
from tfformers.pipelines.registry import PipelineTask, register


class FeatureExtractionPipeline(Pipeline):
    """Options: `return_tensors` (False: nested lists [1, tokens, hidden]; True: a tf.Tensor of that shape),
    `truncation`, `tokenize_kwargs` (tokenizer keyword arguments)."""

    task = "feature-extraction"
    token_outputs = ("last_hidden_state",)

    def _sanitize_parameters(self, truncation=None, tokenize_kwargs=None, return_tensors=None, **kwargs):
        require_options(self.task, (), kwargs)
        tokenize_kwargs = dict(tokenize_kwargs or {})
        if truncation is not None:
            if "truncation" in tokenize_kwargs:
                raise InputError("truncation is given twice: as an option and in tokenize_kwargs; keep one.")
            tokenize_kwargs["truncation"] = truncation
        post = {} if return_tensors is None else {"return_tensors": return_tensors}
        return tokenize_kwargs, {}, post

    def preprocess(self, item, **tokenize_kwargs):
        if not isinstance(item, str):
            raise InputError(f"feature-extraction takes texts (str), got {type(item).__name__} {item!r:.80}.")
        return [dict(self.tokenizer(item, **tokenize_kwargs))]

    def postprocess(self, rows, return_tensors=False):
        features = rows[0]["last_hidden_state"][None]  # [1, tokens, hidden], as transformers answers
        return tf.constant(features) if return_tensors else features.tolist()


register(PipelineTask("feature-extraction", FeatureExtractionPipeline, "base"))
