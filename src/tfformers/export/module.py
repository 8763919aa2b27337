"""ServingModule: a model, its in-graph tokenizer and a task's post-processing as SavedModel signatures.

Two signatures per artifact (all batch dimensions dynamic):
  `serving_default`: raw strings -> what the task answers (`text` [b]; `question` and `context` [b] for
    question answering);
  `from_ids`: token ids -> the same answers (`input_ids`, `attention_mask`, and `token_type_ids` where the
    model and tokenizer use them; int32 [b, t]), for clients that tokenize themselves.
Text generation runs the compiled generation loop inside: prompts are left-padded to `max_prompt_length`
and decoded in chunks of `generation_batch_size` rows, each chunk one XLA program with static shapes.
Text-to-text generation (encoder-decoders: T5, BART) does the same with the source text right-padded to
`max_length` (the encoder is bidirectional; padding is masked), and answers the decoder's sequences.
"""

import functools
import re

import tensorflow as tf

from tfformers.errors import ConfigError
from tfformers.export import postprocessing
from tfformers.tokenization.tf_base import pad

# the model's task -> the export task (transformers' pipeline names) it answers by default
EXPORT_TASKS = {
    "sequence-classification": "text-classification",
    "token-classification": "token-classification",
    "question-answering": "question-answering",
    "base": "feature-extraction",
    "masked-lm": "fill-mask",
    "causal-lm": "text-generation",
    "seq2seq-lm": "text2text-generation",
    "image-classification": "image-classification",
}
# export tasks a head may also serve besides its own (any backbone gives embeddings)
_ALSO_SERVES = {"feature-extraction": ("base",)}
# transformers' other pipeline names for an export task: summarization and translation (also
# "translation_xx_to_yy") are text-to-text
TASK_ALIASES = {"summarization": "text2text-generation", "translation": "text2text-generation"}
GENERATION_TASKS = ("text-generation", "text2text-generation")


def canonical_task(task):
    """The export task a pipeline name stands for ("summarization" -> "text2text-generation")."""
    if re.fullmatch(r"translation_\w+_to_\w+", task):
        return "text2text-generation"
    return TASK_ALIASES.get(task, task)


def export_task(model, task=None):
    """The export task for `model`: its head's by default; `task` must be one the head answers (an alias
    such as "summarization" names its export task)."""
    default = EXPORT_TASKS.get(model.task)
    if task is None:
        if default is None:
            raise ConfigError(
                f"{type(model).__name__} (task {model.task!r}) has no serving task; export one of the heads "
                f"for {sorted(EXPORT_TASKS.values())}."
            )
        return default
    task = canonical_task(task)
    if task not in EXPORT_TASKS.values():
        names = sorted({*EXPORT_TASKS.values(), *TASK_ALIASES})
        raise ConfigError(f"Unknown export task {task!r}; use one of {names}.")
    if task != default and model.task not in _ALSO_SERVES.get(task, ()):
        raise ConfigError(
            f"{type(model).__name__} answers {default!r}, not {task!r}: load the checkpoint with the head for "
            f"{task!r} (e.g. TFAutoModelFor...) or leave task unset."
        )
    return task


class ServingModule(tf.Module):
    """Holds the model (its variables) and the tokenizer (its tables); `signatures()` gives the functions."""

    def __init__(self, model, tokenizer, task, *, max_length=None, max_answer_length=15, top_k=5, mask_token_id=None,
                 max_prompt_length=64, generation_batch_size=8, prompt_template=None, add_special_tokens=True,
                 generation_options=None):
        """`max_length` is the longest input; for text-to-text generation the source text, whose
        `prompt_template[0]` is the prefix (by default `config.prefix`, as in transformers' pipelines)."""
        super().__init__(name="tfformers_serving")
        self.model = model
        self.tokenizer = tokenizer
        self.task = task
        self.max_length = _max_length(model, tokenizer, max_length)
        self.max_answer_length = max_answer_length
        self.top_k = top_k
        self.mask_token_id = mask_token_id
        self.max_prompt_length = max_prompt_length
        self.generation_batch_size = generation_batch_size
        if prompt_template is None:
            prefix = getattr(model.config, "prefix", None) if task == "text2text-generation" else None
            prompt_template = (prefix or "", "")
        self.prompt_template = prompt_template  # (before, after) the text: a chat template, a T5 task prefix
        self.add_special_tokens = add_special_tokens
        self.generation_options = dict(generation_options or {})
        self.id_names = ["input_ids", "attention_mask"]
        if "token_type_ids" in model.input_names and "token_type_ids" in tokenizer.model_input_names:
            self.id_names.insert(1, "token_type_ids")

    # ------------------------------------------------------------------------------------ signatures

    def signatures(self):
        """{"serving_default": strings in, "from_ids": ids in}, concrete functions ready to save."""
        ids_spec = {name: tf.TensorSpec([None, None], tf.int32, name=name) for name in self.id_names}
        if self.task in GENERATION_TASKS:
            length = self.max_prompt_length if self.task == "text-generation" else self.max_length
            ids_spec = {name: tf.TensorSpec([None, length], tf.int32, name=name)
                        for name in ("input_ids", "attention_mask")}
            # serving_default calls from_ids' function: generate() is traced, and compiled, once for both
            from_ids = tf.function(self._generate_from_ids, autograph=False).get_concrete_function(**ids_spec)
            from_text = functools.partial(self._generate_from_text, generate=from_ids)
        else:
            from_text, from_ids = self._answer_text, self._answer_ids
        text_names = ("question", "context") if self.task == "question-answering" else ("text",)
        text_spec = {name: tf.TensorSpec([None], tf.string, name=name) for name in text_names}
        if not isinstance(from_ids, tf.types.experimental.ConcreteFunction):
            from_ids = tf.function(from_ids, autograph=False).get_concrete_function(**ids_spec)
        return {
            "serving_default": tf.function(from_text, autograph=False).get_concrete_function(**text_spec),
            "from_ids": from_ids,
        }

    # ------------------------------------------------------------------------------ encoders' answers

    def _answer_text(self, text=None, question=None, context=None):
        if self.task == "question-answering":
            encoded = self.tokenizer(question, context, truncation="only_second", max_length=self.max_length,
                                     return_sequence_ids=True)
        else:
            encoded = self.tokenizer(text, truncation=True, max_length=self.max_length)
        return self.answer(encoded)

    def _answer_ids(self, **ids):
        return self.answer(ids)

    def answer(self, encoded):
        """The task's outputs for tokenized inputs (`sequence_ids` needed for question answering when the
        ids come without it: then the context is every token after the first separator run)."""
        inputs = {name: encoded[name] for name in self.id_names}
        outputs = self.model(inputs, training=False)
        config = self.model.config
        if self.task == "text-classification":
            return postprocessing.text_classification(outputs["logits"], config)
        if self.task == "token-classification":
            return postprocessing.token_classification(outputs["logits"], self._token_texts(inputs), config)
        if self.task == "feature-extraction":
            hidden = outputs["last_hidden_state"] if "last_hidden_state" in outputs else outputs["hidden_states"][-1]
            return {"embedding": postprocessing.mean_pooled_embeddings(hidden, inputs["attention_mask"])}
        if self.task == "fill-mask":
            top = postprocessing.fill_mask(outputs["logits"], inputs["input_ids"], self.mask_token_id, self.top_k)
            texts = self.tokenizer.detokenize(tf.reshape(top["token_id"], [-1, 1]))
            return {**top, "token_str": tf.reshape(tf.strings.strip(texts), tf.shape(top["token_id"]))}
        # question answering
        sequence_ids = encoded.get("sequence_ids")
        if sequence_ids is None:
            sequence_ids = _context_after_first_separator(inputs["input_ids"], self.tokenizer.special_token_ids,
                                                          inputs["attention_mask"])
        span = postprocessing.answer_span(outputs["start_logits"], outputs["end_logits"], sequence_ids,
                                          self.max_answer_length)
        answer_ids = tf.RaggedTensor.from_tensor(inputs["input_ids"])
        positions = tf.ragged.range(span["start"], span["end"] + 1)
        answer = self.tokenizer.detokenize(tf.gather(answer_ids, positions, batch_dims=1))
        return {"answer": tf.strings.strip(answer), **span}

    def _token_texts(self, inputs):
        """tf.string [b, t]: each token decoded on its own; "" for special tokens and padding."""
        ids = inputs["input_ids"]
        texts = self.tokenizer.detokenize(tf.reshape(ids, [-1, 1]))
        texts = tf.where(tf.reshape(inputs["attention_mask"], [-1]) > 0, texts, "")
        return tf.reshape(texts, tf.shape(ids))

    # ------------------------------------------------------------------------------------- generation

    def _generate_from_text(self, text, generate):
        """`generate`: the from_ids function, called on the padded ids."""
        prompts = tf.strings.join([self.prompt_template[0], text, self.prompt_template[1]])
        if self.task == "text2text-generation":  # the source: its start, with the end-of-sequence token
            ids = self.tokenizer(prompts, padding=False, truncation=True, max_length=self.max_length)["input_ids"]
            return generate(**self._padded(ids, self.max_length, "right"))
        encoded = self.tokenizer(prompts, padding=False, add_special_tokens=self.add_special_tokens)
        ids = encoded["input_ids"][:, -self.max_prompt_length:]  # the prompt's end is what continues
        return generate(**self._padded(ids, self.max_prompt_length, "left"))

    def _padded(self, ids, length, side):
        """Ragged ids [b, None] -> {input_ids, attention_mask} [b, length] padded on `side`."""
        input_ids = pad(ids, length, self.tokenizer.pad_token_id or 0, side)  # masked anyway
        attention_mask = pad(tf.ones_like(ids), length, 0, side)
        return {"input_ids": tf.ensure_shape(input_ids, [None, length]),
                "attention_mask": tf.ensure_shape(attention_mask, [None, length])}

    def _generate_from_ids(self, input_ids, attention_mask):
        """Prompts [b, max_prompt_length] (left-padded) or sources [b, max_length] (an encoder-decoder's,
        right-padded) -> sequences (int32) and the generated text [b], special tokens left out. A causal LM's
        sequences [b, max_prompt_length + new] continue the prompt; an encoder-decoder's [b, 1 + new] are the
        decoder's, from its start token. `generate` runs `generation_batch_size` rows per program."""
        sequences = self.model.generate(input_ids, attention_mask=attention_mask,
                                        chunk_size=self.generation_batch_size, **self.generation_options)
        prompt_length = self.max_prompt_length if self.task == "text-generation" else 0
        generated = self.tokenizer.without_special_tokens(sequences[:, prompt_length:])
        return {"sequences": sequences, "generated_text": self.tokenizer.detokenize(generated)}


class ImageServingModule(tf.Module):
    """An image classifier and its image processing (`ImagePreprocessing`, TF ops) as signatures:
    `serving_default`: encoded JPEG/PNG/GIF/BMP files `image_bytes` [b] (base64 in TF Serving's REST API) ->
    label [b], score [b], probabilities, logits; `from_pixels`: `pixel_values` [b, channels, height, width]
    float32 (already processed) -> the same."""

    def __init__(self, model, preprocessing):
        super().__init__(name="tfformers_image_serving")
        self.model = model
        self.preprocessing = preprocessing

    def signatures(self):
        config = self.model.config
        height, width = self.preprocessing.settings.output_size or (config.image_size, config.image_size)
        pixels_spec = tf.TensorSpec([None, config.num_channels, height, width], tf.float32, name="pixel_values")
        return {
            "serving_default": tf.function(self._answer_images, autograph=False).get_concrete_function(
                image_bytes=tf.TensorSpec([None], tf.string, name="image_bytes")
            ),
            "from_pixels": tf.function(self.answer, autograph=False).get_concrete_function(pixel_values=pixels_spec),
        }

    def _answer_images(self, image_bytes):
        return self.answer(self.preprocessing(image_bytes))

    def answer(self, pixel_values):
        logits = self.model({"pixel_values": pixel_values}, training=False)["logits"]
        return postprocessing.text_classification(logits, self.model.config)


def _max_length(model, tokenizer, requested):
    """The longest tokenized input: the request, else the smaller of the tokenizer's and the model's limits."""
    if requested is not None:
        return int(requested)
    limits = [tokenizer.model_max_length, model.input_limits().max_length]
    limits = [limit for limit in limits if limit]
    if not limits:
        raise ConfigError("Neither the tokenizer nor the model states a maximum length; pass max_length=.")
    return int(min(limits))


def _context_after_first_separator(input_ids, special_ids, attention_mask):
    """sequence ids [b, t] for ids given without them: 1 for the non-special tokens after the first run of
    special tokens that follows the question, -1 elsewhere (templates `[CLS] q [SEP] c [SEP]` and
    `<s> q </s></s> c </s>`)."""
    is_special = tf.reduce_any(tf.equal(tf.expand_dims(input_ids, -1), tf.constant(special_ids, tf.int32)), -1)
    is_special = tf.logical_or(is_special, attention_mask == 0)
    seen_text = tf.cumsum(tf.cast(~is_special, tf.int32), axis=1) > 0
    separators_after_text = tf.cumsum(tf.cast(is_special & seen_text, tf.int32), axis=1) > 0
    return tf.where(separators_after_text & ~is_special, 1, -1)
