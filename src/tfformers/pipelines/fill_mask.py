"""fill-mask: the most likely tokens at each mask token, and the text they make."""

import logging

import numpy as np

from tfformers.errors import InputError
from tfformers.pipelines.base import Pipeline, require_options
from tfformers.pipelines.registry import PipelineTask, register
from tfformers.pipelines.scores import softmax

logger = logging.getLogger("tfformers")


class FillMaskPipeline(Pipeline):
    """Options: `top_k` (5) and `targets` (words or tokens to score instead of the whole vocabulary; one
    outside the vocabulary stands for its first token, with a warning), `tokenizer_kwargs`. Each answer is a
    list of {"score", "token", "token_str", "sequence"}; a list of such lists when the text has several masks."""

    task = "fill-mask"
    token_outputs = ("logits",)

    def _sanitize_parameters(self, top_k=None, targets=None, tokenizer_kwargs=None, **kwargs):
        require_options(self.task, (), kwargs)
        if self.tokenizer.mask_token_id is None:
            raise InputError("fill-mask needs a tokenizer with a mask token; this one defines none.")
        post = {}
        if top_k is not None:
            if not isinstance(top_k, int) or top_k < 1:
                raise InputError(f"top_k must be an int >= 1, got {top_k!r}.")
            post["top_k"] = top_k
        if targets is not None:
            post["target_ids"] = self._target_ids([targets] if isinstance(targets, str) else targets)
        return {"tokenizer_kwargs": tokenizer_kwargs or {}}, {}, post

    def __call__(self, inputs, **kwargs):
        answers = super().__call__(inputs, **kwargs)
        return answers[0] if isinstance(inputs, list) and len(inputs) == 1 else answers

    def _target_ids(self, targets):
        vocabulary = self.tokenizer.get_vocab()
        ids = []
        for target in targets:
            token_id = vocabulary.get(target)
            if token_id is None:
                pieces = self.tokenizer(target, add_special_tokens=False, return_attention_mask=False,
                                        return_token_type_ids=False, max_length=1, truncation=True)["input_ids"]
                if not pieces:
                    logger.warning(f"The target {target!r} is not in the vocabulary and has no tokens; ignored.")
                    continue
                token_id = pieces[0]
                logger.warning(f"The target {target!r} is not in the vocabulary; scoring its first token "
                               f"{self.tokenizer.convert_ids_to_tokens(token_id)!r} instead.")
            ids.append(token_id)
        if not ids:
            raise InputError(f"None of the targets {targets!r} maps to a token; pass at least one that does.")
        return np.array(list(set(ids)))  # transformers' order: the set's

    def preprocess(self, item, tokenizer_kwargs):
        if not isinstance(item, str):
            raise InputError(f"fill-mask takes texts (str), got {type(item).__name__} {item!r:.80}.")
        encoded = self.tokenizer(item, **tokenizer_kwargs)
        if self.tokenizer.mask_token_id not in encoded["input_ids"]:
            raise InputError(f"No mask token ({self.tokenizer.mask_token}) found in the input {item!r:.80}.")
        return [dict(encoded)]

    def postprocess(self, rows, top_k=5, target_ids=None):
        input_ids = np.asarray(rows[0]["input_ids"])
        masks = np.flatnonzero(input_ids == self.tokenizer.mask_token_id)
        probabilities = softmax(rows[0]["logits"][masks].astype(np.float32))  # [masks, vocab]
        if target_ids is not None:
            probabilities = probabilities[:, target_ids]
            top_k = min(top_k, len(target_ids))
        single = len(masks) == 1
        answers = []
        for mask, mask_probabilities in zip(masks, probabilities):
            best = np.argsort(-mask_probabilities, kind="stable")[:top_k]
            row = []
            for index in best:
                token = int(target_ids[index]) if target_ids is not None else int(index)
                filled = input_ids.copy()
                filled[mask] = token
                filled = filled[filled != self.tokenizer.pad_token_id]
                row.append({
                    "score": float(mask_probabilities[index]),
                    "token": token,
                    "token_str": self.tokenizer.decode([token]),
                    # several masks: the others stay visible, so special tokens are kept
                    "sequence": self.tokenizer.decode(filled, skip_special_tokens=single),
                })
            answers.append(row)
        return answers[0] if single else answers


register(PipelineTask("fill-mask", FillMaskPipeline, "masked-lm"))
