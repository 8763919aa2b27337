"""text-generation: a decoder continues prompts, or answers chats through the tokenizer's chat template.

The rows run through the model's own `generate()` (one compiled XLA program per prompt bucket), left-padded.
As in transformers 5, options the model's generation config does not set default to max_new_tokens=256 and
sampling at temperature 0.7; the answer decodes the new tokens and, by default, puts the prompt before them
(a chat gets the assistant's message appended).
"""

import numpy as np
from transformers import GenerationConfig

from tfformers.errors import InputError
from tfformers.pipelines.base import Pipeline
from tfformers.pipelines.registry import PipelineTask, register

PIPELINE_DEFAULTS = {"max_new_tokens": 256, "do_sample": True, "temperature": 0.7}
_SAMPLING_OPTIONS = ("temperature", "top_k", "top_p", "min_p", "typical_p", "epsilon_cutoff", "eta_cutoff")
_TOKENIZER_OPTIONS = ("add_special_tokens", "truncation", "padding", "max_length")


def is_chat(value):
    """A chat: a list of {"role", "content"} messages."""
    return isinstance(value, (list, tuple)) and bool(value) and all(
        isinstance(message, dict) and "role" in message for message in value
    )


class TextGenerationPipeline(Pipeline):
    """Inputs: a prompt, a chat (list of {"role", "content"} dicts), or a list of either. Options:
    `return_full_text` (True: the prompt then the new text; False: the new text only), `return_tensors`
    (the token ids instead of text), `prefix`, `skip_special_tokens`, `clean_up_tokenization_spaces`,
    `continue_final_message`, tokenizer options (`add_special_tokens`, `truncation`, `max_length`) and every
    `generate()` option (`max_new_tokens`, `do_sample`, `temperature`, `top_k`, `num_return_sequences`,
    `seed`, ...). Each answer is a list of {"generated_text"} (or {"generated_token_ids"}), one per returned
    sequence."""

    task = "text-generation"

    def __init__(self, model, tokenizer, **kwargs):
        super().__init__(model, tokenizer, **kwargs)
        self.padding_side = "left"  # prompts end where generation starts

    def _is_single(self, inputs):
        return isinstance(inputs, str) or is_chat(inputs)

    def _sanitize_parameters(self, return_full_text=None, return_tensors=None, prefix="", skip_special_tokens=True,
                             clean_up_tokenization_spaces=None, continue_final_message=None, **generate_kwargs):
        if return_full_text is not None and return_tensors:
            raise InputError("return_full_text and return_tensors exclude each other; pass one.")
        pre = {name: generate_kwargs.pop(name) for name in _TOKENIZER_OPTIONS if name in generate_kwargs}
        if "max_length" in pre:
            generate_kwargs["max_length"] = pre["max_length"]
        pre.update(prefix=prefix, continue_final_message=continue_final_message)
        post = {"return_text": "ids" if return_tensors else ("full" if return_full_text in (None, True) else "new"),
                "skip_special_tokens": skip_special_tokens,
                "clean_up_tokenization_spaces": clean_up_tokenization_spaces,
                "continue_final_message": continue_final_message}
        return pre, self._generate_options(generate_kwargs), post

    def _generate_options(self, options):
        """The call's options plus the pipeline defaults for what neither they nor the model's generation
        config set (the sampling ones only when sampling), as transformers 5 merges them."""
        config = options.get("generation_config") or getattr(self.model, "generation_config", None)
        already = {**(config or GenerationConfig()).to_diff_dict(), **options}
        added = {name: value for name, value in PIPELINE_DEFAULTS.items()
                 if name not in already and not (name == "max_new_tokens" and "max_length" in already)}
        if not {**already, **added}.get("do_sample"):
            added = {name: value for name, value in added.items() if name not in _SAMPLING_OPTIONS}
        return {**options, **added}

    def preprocess(self, item, prefix="", continue_final_message=None, **tokenizer_kwargs):
        if is_chat(item):
            if continue_final_message is None:
                continue_final_message = item[-1]["role"] == "assistant"
            tokenizer_kwargs.pop("add_special_tokens", None)
            encoded = self.tokenizer.apply_chat_template(
                list(item), add_generation_prompt=not continue_final_message,
                continue_final_message=continue_final_message, return_dict=True, **tokenizer_kwargs,
            )
        elif isinstance(item, str):
            encoded = self.tokenizer(prefix + item, **tokenizer_kwargs)
        else:
            raise InputError(
                f"text-generation takes prompts (str) or chats (lists of {{'role', 'content'}} dicts), got "
                f"{type(item).__name__} {item!r:.80}."
            )
        if not len(encoded["input_ids"]):
            raise InputError("The prompt is empty after tokenization; text-generation needs at least one token.")
        row = {name: encoded[name] for name in ("input_ids", "attention_mask") if name in encoded}
        return [{**row, "prompt": item}]

    def forward(self, batch, **generate_kwargs):
        with self._device():
            sequences = np.asarray(self.model.generate(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **generate_kwargs
            ))
        rows = len(batch["input_ids"])
        new_tokens = sequences[:, batch["input_ids"].shape[1]:]  # after the left-padded prompts
        return {"new_tokens": new_tokens.reshape(rows, len(sequences) // rows, -1)}

    def postprocess(self, rows, return_text="full", skip_special_tokens=True, clean_up_tokenization_spaces=None,
                    continue_final_message=None):
        prompt = rows[0]["prompt"]
        answers = []
        for tokens in rows[0]["new_tokens"]:
            if return_text == "ids":
                answers.append({"generated_token_ids": list(rows[0]["input_ids"]) + tokens.tolist()})
                continue
            text = self.tokenizer.decode(tokens, skip_special_tokens=skip_special_tokens,
                                         clean_up_tokenization_spaces=clean_up_tokenization_spaces)
            if return_text == "full":
                text = _with_prompt(prompt, text, continue_final_message)
            answers.append({"generated_text": text})
        return answers


def _with_prompt(prompt, text, continue_final_message):
    """The prompt followed by the generated text: a string, or the chat with the answer added."""
    if isinstance(prompt, str):
        return prompt + text
    if continue_final_message is None:
        continue_final_message = prompt[-1]["role"] == "assistant"
    if continue_final_message:  # the model went on writing the last message
        last = prompt[-1]
        return list(prompt[:-1]) + [{"role": last["role"], "content": last["content"] + text}]
    return list(prompt) + [{"role": "assistant", "content": text}]


register(PipelineTask("text-generation", TextGenerationPipeline, "causal-lm"))
