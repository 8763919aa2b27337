"""text2text-generation, summarization and translation: an encoder–decoder writes a text for each input text.

transformers 4.x's pipelines (transformers 5 removed them): the input gets the model's prefix (T5's
"summarize: "; from `config.task_specific_params[task]["prefix"]`, else `config.prefix`), rows run through the
model's compiled `generate()` (sources right-padded), and each generated sequence is decoded with special
tokens skipped. The checkpoint's `task_specific_params` for the task (T5's beam settings for summarization)
are the generation defaults, which a call's options override. "translation_xx_to_yy" names pick the
`task_specific_params` entry of that language pair.
"""

import numpy as np

from tfformers.errors import InputError
from tfformers.pipelines.base import Pipeline
from tfformers.pipelines.registry import PipelineTask, register

_TOKENIZER_OPTIONS = ("truncation", "max_length")


class Text2TextGenerationPipeline(Pipeline):
    """Inputs: a text or a list of texts. Options: `return_tensors` (token ids instead of text),
    `return_text`, `clean_up_tokenization_spaces` (default False), `truncation`, and every `generate()` option
    (`max_new_tokens`, `num_beams`, `no_repeat_ngram_size`, `num_return_sequences`, ...). Each answer is a list
    of {"<name>_text"} (or {"<name>_token_ids"}) dicts, one per returned sequence; for a list of texts with
    one sequence each, a flat list of dicts, as transformers 4.x returned."""

    task = "text2text-generation"
    return_name = "generated"

    def __init__(self, model, tokenizer, task=None, **kwargs):
        self.task = task or self.task
        task_params = dict((getattr(model.config, "task_specific_params", None) or {}).get(self.task) or {})
        self.prefix = task_params.pop("prefix", None) or getattr(model.config, "prefix", None) or ""
        self.task_generate_defaults = task_params
        super().__init__(model, tokenizer, **kwargs)

    def _sanitize_parameters(self, return_tensors=None, return_text=None, clean_up_tokenization_spaces=False,
                             truncation=None, **generate_kwargs):
        pre = {"truncation": truncation} if truncation is not None else {}
        if "max_length" in generate_kwargs and truncation:
            pre["max_length"] = generate_kwargs["max_length"]
        text = not return_tensors if return_text is None else return_text
        post = {"return_text": bool(text), "clean_up_tokenization_spaces": clean_up_tokenization_spaces}
        return pre, {**self.task_generate_defaults, **generate_kwargs}, post

    def __call__(self, inputs, **kwargs):
        answers = super().__call__(inputs, **kwargs)
        if isinstance(inputs, (list, tuple)) and all(len(answer) == 1 for answer in answers):
            return [answer[0] for answer in answers]
        return answers

    def preprocess(self, item, **tokenizer_kwargs):
        if not isinstance(item, str):
            raise InputError(f"The {self.task} pipeline takes texts (str), got {type(item).__name__} {item!r:.80}.")
        encoded = self.tokenizer(self.prefix + item, **tokenizer_kwargs)
        return [{"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}]

    def forward(self, batch, **generate_kwargs):
        with self._device():
            sequences = np.asarray(self.model.generate(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **generate_kwargs
            ))
        rows = len(batch["input_ids"])
        return {"sequences": sequences.reshape(rows, len(sequences) // rows, -1)}

    def postprocess(self, rows, return_text=True, clean_up_tokenization_spaces=False):
        if not return_text:
            return [{f"{self.return_name}_token_ids": tokens.tolist()} for tokens in rows[0]["sequences"]]
        return [
            {f"{self.return_name}_text": self.tokenizer.decode(
                tokens, skip_special_tokens=True, clean_up_tokenization_spaces=clean_up_tokenization_spaces
            )}
            for tokens in rows[0]["sequences"]
        ]


class SummarizationPipeline(Text2TextGenerationPipeline):
    task = "summarization"
    return_name = "summary"


class TranslationPipeline(Text2TextGenerationPipeline):
    task = "translation"
    return_name = "translation"


register(PipelineTask("text2text-generation", Text2TextGenerationPipeline, "seq2seq-lm"))
register(PipelineTask("summarization", SummarizationPipeline, "seq2seq-lm"))
register(PipelineTask("translation", TranslationPipeline, "seq2seq-lm"))
