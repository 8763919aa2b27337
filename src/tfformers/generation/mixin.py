"""`generate()` for causal LMs and encoder-decoders: inputs and options in, one compiled XLA program per
shape bucket (encoder-decoders: `generation/encoder_decoder.py`).

The options are transformers' (`GenerationConfig`: the model's `generation_config.json`, then keyword
arguments). Prompts are left-padded up to a multiple of `pad_to_multiple_of` (default 32), so every prompt
length in a bucket runs the same compiled program: the number of programs is the number of distinct
(batch, bucket, max_new_tokens, options) seen. Inside a user's `tf.function` (transformers 4.x's
`tf.function(model.generate, jit_compile=True)`), the loop is traced into that function instead, and the
sequences come back padded to the full length.
"""

import copy
import logging

import numpy as np
import tensorflow as tf
from transformers import GenerationConfig

from tfformers.errors import ConfigError, InputError
from tfformers.generation.cache import StaticCache
from tfformers.generation.encoder_decoder import check_source, decoder_start_token_id, start_decoding
from tfformers.generation.logits_process import logits_processor
from tfformers.generation.search import Prompt, beam_search_loop, sample_loop
from tfformers.outputs import (
    GenerateBeamDecoderOnlyOutput,
    GenerateBeamEncoderDecoderOutput,
    GenerateDecoderOnlyOutput,
    GenerateEncoderDecoderOutput,
)

logger = logging.getLogger("tfformers")

DEFAULT_PROMPT_MULTIPLE = 32
DEFAULT_CHUNK_SIZE = 8

# Options of transformers' generate() that the compiled loop does not implement: set, they raise.
_UNSUPPORTED = {
    "num_beam_groups": 1, "diversity_penalty": 0.0, "penalty_alpha": None, "constraints": None,
    "force_words_ids": None, "dola_layers": None, "prompt_lookup_num_tokens": None, "stop_strings": None,
    "max_time": None, "token_healing": None, "low_memory": None, "output_attentions": False,
    "output_hidden_states": False, "top_h": None,
}


def _is_set(value, default):
    return value is not None and value != default and value is not False


class GenerationMixin:
    """Adds `generate()` and `generation_config` to a causal LM (a model taking `cache=` and
    `logits_to_keep=`)."""

    can_generate = True

    @property
    def generation_config(self):
        """The decoding defaults: the checkpoint's `generation_config.json`, or derived from its config."""
        if getattr(self, "_generation_config", None) is None:
            self._generation_config = GenerationConfig.from_model_config(self.config)
        return self._generation_config

    @generation_config.setter
    def generation_config(self, value):
        self._generation_config = value

    def generate(self, inputs=None, generation_config=None, logits_processor=None, seed=None,
                 pad_to_multiple_of=DEFAULT_PROMPT_MULTIPLE, chunk_size=DEFAULT_CHUNK_SIZE, **kwargs):
        """Generates token ids after the prompts `inputs` [batch, seq] (or `input_ids=`).

        Options come from `generation_config` (default: `model.generation_config`) updated by keyword
        arguments (`max_new_tokens`, `do_sample`, `top_k`, `num_beams`, `repetition_penalty`, ...);
        `attention_mask` marks left padding. `seed` (an int or two ints) makes sampling reproducible.
        Inside a `tf.function` whose batch size is unknown (a served signature, Keras' `predict`), the rows
        are generated `chunk_size` at a time, each chunk one compiled program.
        Returns the sequences (prompt and generated tokens, [batch * num_return_sequences, length]) or, with
        `return_dict_in_generate=True`, an output with `sequences` and, when asked, `scores`/`logits`
        (and for beam search `sequences_scores`, `beam_indices`).
        """
        if logits_processor:
            raise TypeError(
                "generate() takes no custom logits_processor in tfformers: its processors run inside the "
                "compiled loop. Use the generation options (repetition_penalty, bad_words_ids, ...)."
            )
        config, model_kwargs, explicit_max_length = self._generation_options(generation_config, kwargs)
        input_ids = inputs if inputs is not None else model_kwargs.pop("input_ids", None)
        attention_mask = model_kwargs.pop("attention_mask", None)
        if model_kwargs:
            valid = sorted(set(GenerationConfig().to_dict()) - set(_UNSUPPORTED) - {"transformers_version"})
            raise TypeError(
                f"generate() got unexpected keyword arguments {sorted(model_kwargs)}. It takes input_ids / "
                f"attention_mask, seed, pad_to_multiple_of and the generation options: {valid}."
            )
        if input_ids is None:
            raise InputError("generate() needs prompts: pass input_ids (e.g. tokenizer(texts, ...)['input_ids']).")
        request = (config, explicit_max_length, seed)
        if not tf.executing_eagerly():
            return self._generate_traced(input_ids, attention_mask, *request, chunk_size)
        return self._generate_eager(input_ids, attention_mask, *request, pad_to_multiple_of)

    # ------------------------------------------------------------------------------------------- options

    def _generation_options(self, generation_config, kwargs):
        """(GenerationConfig, leftover model kwargs, whether max_length was set), merged as transformers 5
        does: the given config, then the model's values, then the global defaults for what is still unset,
        then keyword arguments."""
        config = copy.deepcopy(generation_config if generation_config is not None else GenerationConfig())
        config.update(**self.generation_config.to_dict(), defaults_only=True, allow_custom_entries=True)
        config.update(**GenerationConfig._get_default_generation_params(), defaults_only=True)
        explicit_max_length = kwargs.get("max_length") is not None or (
            generation_config is not None and generation_config.max_length is not None
        ) or self.generation_config.max_length is not None
        model_kwargs = config.update(**kwargs)
        for option, default in _UNSUPPORTED.items():
            if _is_set(getattr(config, option, None), default):
                raise ConfigError(
                    f"generation option {option}={getattr(config, option)!r} is not supported by tfformers' "
                    "compiled generate(); leave it unset."
                )
        return config, model_kwargs, explicit_max_length

    def _special_tokens(self, config, batch_size):
        """(eos ids list or None, pad id or None), with transformers' fallback of pad to the first eos."""
        eos = config.eos_token_id
        eos = None if eos is None else ([int(eos)] if np.ndim(eos) == 0 else [int(e) for e in eos])
        pad = config.pad_token_id
        if pad is None and eos is not None:
            pad = eos[0]
        if pad is None and batch_size > 1:
            raise InputError(
                f"Batched prompts ({batch_size} rows) need a pad token, and neither pad_token_id nor "
                "eos_token_id is set in the generation config or the model config. Pass pad_token_id= "
                "(e.g. the tokenizer's pad or eos id) or generate one prompt at a time."
            )
        return eos, pad

    def _new_token_count(self, config, explicit_max_length, prompt_length):
        """How many tokens to generate, as transformers resolves max_new_tokens / max_length."""
        if config.max_new_tokens is not None:
            new_tokens = config.max_new_tokens
        elif explicit_max_length:
            new_tokens = config.max_length - prompt_length
        else:  # transformers' default: 20 new tokens, within the position table
            limit = getattr(self.config, "max_position_embeddings", None)
            new_tokens = config.max_length
            if limit is not None:
                new_tokens = min(new_tokens + prompt_length, limit) - prompt_length
        if new_tokens <= 0:
            raise InputError(
                f"Nothing to generate: the prompt has {prompt_length} tokens and max_length is "
                f"{prompt_length + new_tokens}. Pass max_new_tokens= (the number of tokens to add)."
            )
        return int(new_tokens)

    def _check_request(self, config, input_ids, new_tokens):
        """InputError/ConfigError for a causal LM's request: the checks every model shares, and the prompt
        plus the new tokens within the position table."""
        self._check_ids_and_search(config, input_ids)
        limit = getattr(self.config, "max_position_embeddings", None)
        length = input_ids.shape[1] + new_tokens
        rope_type = (getattr(self.config, "rope_parameters", None) or {}).get("rope_type")
        if limit is not None and input_ids.shape[1] >= limit and rope_type != "dynamic":
            raise InputError(
                f"The prompt has {input_ids.shape[1]} tokens, leaving no room below the model's "
                f"max_position_embeddings={limit}. Truncate it (tokenizer(..., truncation=True, max_length=N)) "
                f"so that N + max_new_tokens <= {limit}."
            )
        if limit is not None and length > limit and rope_type != "dynamic":
            raise InputError(
                f"The prompt ({input_ids.shape[1]} tokens) plus max_new_tokens={new_tokens} is {length} "
                f"positions, beyond the model's max_position_embeddings={limit}. Shorten the prompt or "
                f"generate at most {limit - input_ids.shape[1]} tokens."
            )

    def _check_ids_and_search(self, config, input_ids):
        """InputError for ids outside the vocabulary; ConfigError for beam sampling."""
        vocab_size = self.config.vocab_size
        if input_ids.size and (input_ids.min() < 0 or input_ids.max() >= vocab_size):
            bad = int(input_ids.max()) if input_ids.max() >= vocab_size else int(input_ids.min())
            raise InputError(
                f"input_ids contains token id {bad}, outside the vocabulary [0, {vocab_size}) of this model; "
                "use the tokenizer of this checkpoint."
            )
        # (GenerationConfig itself refuses num_return_sequences > num_beams and greedy with several)
        if config.num_beams > 1 and config.do_sample:
            raise ConfigError(
                "Beam sampling (num_beams > 1 with do_sample=True) is not supported by tfformers' generate(); "
                "use beam search (do_sample=False) or sampling (num_beams=1)."
            )

    # ----------------------------------------------------------------------------------------- the loop

    def allocate_cache(self, batch_size, max_length):
        """An empty KV cache for `batch_size` rows of up to `max_length` tokens, in the compute dtype."""
        return StaticCache.allocate(self.config, batch_size, max_length, self.compute_dtype)

    def _decoding_step(self, input_ids, attention_mask, position_ids, cache):
        """Logits [rows, vocab] (float32) of the last position after `input_ids` [rows, new]."""
        out = self(
            {"input_ids": input_ids, "attention_mask": attention_mask, "position_ids": position_ids},
            cache=cache, logits_to_keep=1, training=False,
        )
        return tf.cast(out.logits[:, -1], tf.float32)

    def _decode(self, config, prompt, new_tokens, seed, eos, pad):
        """Runs the loop for `config` on `prompt` (a causal LM's rows already expanded; an encoder-decoder's
        source batch); returns a dict of tensors."""
        processor = logits_processor(config, vocab_size=self.config.vocab_size, num_beams=config.num_beams)
        pad = 0 if pad is None else pad  # only ever written where the mask hides it (one unpadded prompt)
        step = self._decoding_step
        if self.config.is_encoder_decoder:
            prompt, step = start_decoding(
                self, prompt, _rows_per_prompt(config), decoder_start_token_id(config, self.config)
            )
        if config.num_beams > 1:
            result = beam_search_loop(
                self, step, prompt, new_tokens=new_tokens, num_beams=config.num_beams,
                processor=processor, pad_token_id=pad, eos_token_ids=eos, length_penalty=config.length_penalty,
                early_stopping=config.early_stopping, num_return_sequences=config.num_return_sequences,
                output_scores=config.output_scores,
            )
            return dict(result._asdict())
        tokens, steps, scores, raw = sample_loop(
            self, step, prompt, new_tokens=new_tokens, processor=processor, pad_token_id=pad,
            eos_token_ids=eos, do_sample=config.do_sample, seed=seed, output_scores=config.output_scores,
            output_logits=config.output_logits,
        )
        return {"sequences": tokens, "steps": steps, "scores": scores, "logits": raw}

    def _compiled(self, config, new_tokens, eos, pad, shape):
        """The XLA-compiled decoding function for these static options and prompt `shape` [rows, bucket]:
        one tf.function each, traced and compiled once."""
        key_config = copy.deepcopy(config)
        if config.forced_eos_token_id is None and config.exponential_decay_length_penalty is None:
            # nothing else reads max_length (prompt + new tokens): every prompt length of a bucket shares
            # the program; the two options that read it compile once per prompt length
            key_config.max_length = None
        key = (key_config.to_json_string(use_diff=False), new_tokens, tuple(eos or ()), pad, shape)
        functions = self.__dict__.setdefault("_tfformers_generate_functions", {})
        if key not in functions:
            def run(input_ids, attention_mask, start, seed):
                return self._decode(config, Prompt(input_ids, attention_mask, start), new_tokens, seed, eos, pad)

            functions[key] = tf.function(run, jit_compile=True, autograph=False)
        return functions[key]

    # ---------------------------------------------------------------------------------------- eager path

    def _generate_eager(self, input_ids, attention_mask, config, explicit_max_length, seed, pad_to_multiple_of):
        input_ids = _as_ids(input_ids, "input_ids")
        batch, prompt_length = input_ids.shape
        eos, pad = self._special_tokens(config, batch)
        attention_mask = _default_attention_mask(input_ids, attention_mask, pad, eos)
        if self.config.is_encoder_decoder:
            return self._generate_from_source(input_ids, attention_mask, config, explicit_max_length, seed,
                                              pad_to_multiple_of, eos, pad)
        new_tokens = self._new_token_count(config, explicit_max_length, prompt_length)
        self._check_request(config, input_ids, new_tokens)
        config.max_length = prompt_length + new_tokens  # as transformers resolves it for the processors

        bucket = _round_up(prompt_length, pad_to_multiple_of)
        start = bucket - prompt_length
        fill = 0 if pad is None else pad
        ids = np.pad(input_ids, [[0, 0], [start, 0]], constant_values=fill)
        mask = np.pad(attention_mask, [[0, 0], [start, 0]], constant_values=0)
        rows = _rows_per_prompt(config)
        ids, mask = np.repeat(ids, rows, axis=0), np.repeat(mask, rows, axis=0)
        run = self._compiled(config, new_tokens, eos, pad, ids.shape)
        result = run(tf.constant(ids), tf.constant(mask), tf.constant(start, tf.int32), _seed(seed))
        return _outputs(result, config, start, prompt_length)

    def _generate_from_source(self, input_ids, attention_mask, config, explicit_max_length, seed,
                              pad_to_multiple_of, eos, pad):
        """An encoder-decoder's eager generate(): the source right-padded to a length bucket (within the
        position table), the decoder's sequences [rows, 1 + steps] from its start token."""
        new_tokens = self._new_token_count(config, explicit_max_length, 1)
        self._check_ids_and_search(config, input_ids)
        check_source(self, config, input_ids, new_tokens)
        decoder_start_token_id(config, self.config)  # a missing start token is reported before compiling
        config.max_length = 1 + new_tokens  # the decoder's length, as transformers resolves it
        source_length = input_ids.shape[1]
        bucket = _round_up(source_length, pad_to_multiple_of)
        limit = getattr(self.config, "max_position_embeddings", None)
        bucket = bucket if limit is None else max(source_length, min(bucket, limit))
        fill = 0 if pad is None else pad
        ids = np.pad(input_ids, [[0, 0], [0, bucket - source_length]], constant_values=fill)
        mask = np.pad(attention_mask, [[0, 0], [0, bucket - source_length]], constant_values=0)
        run = self._compiled(config, new_tokens, eos, pad, ids.shape)
        result = run(tf.constant(ids), tf.constant(mask), tf.constant(0, tf.int32), _seed(seed))
        return _outputs(result, config, 0, 1, encoder_decoder=True)

    def _generate_traced(self, input_ids, attention_mask, config, explicit_max_length, seed, chunk_size):
        """Inside a user's tf.function: no bucketing, no host checks; sequences padded to the full length."""
        input_ids = tf.cast(input_ids, tf.int32)
        batch, prompt_length = input_ids.shape
        if prompt_length is None:
            raise InputError(
                "generate() inside tf.function needs input_ids with a static sequence length: pad prompts to a "
                "fixed length (tokenizer(..., padding='max_length', truncation=True, max_length=N))."
            )
        if attention_mask is None:
            attention_mask = tf.ones_like(input_ids)
        if batch is None:
            return self._generate_in_chunks(input_ids, attention_mask, config, explicit_max_length, seed, chunk_size)
        eos, pad = self._special_tokens(config, batch)
        encoder_decoder = self.config.is_encoder_decoder
        decoder_prompt_length = 1 if encoder_decoder else prompt_length  # the start token / the prompt
        new_tokens = self._new_token_count(config, explicit_max_length, decoder_prompt_length)
        config.max_length = decoder_prompt_length + new_tokens
        rows = 1 if encoder_decoder else _rows_per_prompt(config)  # an encoder-decoder repeats its encoding
        ids = tf.repeat(input_ids, rows, axis=0)
        mask = tf.repeat(tf.cast(attention_mask, tf.int32), rows, axis=0)
        seed = _seed(seed) if seed is not None else tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int32)
        result = self._decode(config, Prompt(ids, mask, tf.constant(0)), new_tokens, seed, eos, pad)
        return _outputs(result, config, 0, decoder_prompt_length, trim=False, encoder_decoder=encoder_decoder)

    def _generate_in_chunks(self, input_ids, attention_mask, config, explicit_max_length, seed, chunk_size):
        """Prompts [rows, seq] with `rows` unknown until run time: padded with filler rows to a multiple of
        `chunk_size` and generated chunk by chunk, each chunk one XLA program of static shape
        [chunk_size, seq]. Returns the sequences [rows, seq + new tokens]."""
        if config.return_dict_in_generate or config.num_return_sequences > 1:
            raise InputError(
                "generate() with an unknown batch size returns sequences only: leave return_dict_in_generate "
                "and num_return_sequences unset, or give input_ids a static batch size."
            )
        _, pad = self._special_tokens(config, chunk_size)  # filler rows hold the pad token (masked)
        prompt_length = input_ids.shape[1]
        rows = tf.shape(input_ids)[0]
        filler = -(-rows // chunk_size) * chunk_size - rows
        # a filler row shows one pad token, so no row is entirely masked
        filler_mask = tf.tile(tf.one_hot([prompt_length - 1], prompt_length, dtype=tf.int32), [filler, 1])
        ids = tf.pad(input_ids, [[0, filler], [0, 0]], constant_values=pad or 0)
        mask = tf.concat([tf.cast(attention_mask, tf.int32), filler_mask], axis=0)

        def generate_chunk(chunk_ids, chunk_mask):
            chunk_ids = tf.ensure_shape(chunk_ids, [chunk_size, prompt_length])
            chunk_mask = tf.ensure_shape(chunk_mask, [chunk_size, prompt_length])
            return self._generate_traced(chunk_ids, chunk_mask, copy.deepcopy(config), explicit_max_length, seed,
                                         chunk_size)

        compiled = tf.function(generate_chunk, jit_compile=True, autograph=False)
        chunks = [-1, chunk_size, prompt_length]
        sequences = tf.map_fn(
            lambda chunk: compiled(*chunk), (tf.reshape(ids, chunks), tf.reshape(mask, chunks)),
            fn_output_signature=tf.TensorSpec([chunk_size, None], tf.int32),
        )
        return tf.reshape(sequences, [-1, tf.shape(sequences)[2]])[:rows]


# --------------------------------------------------------------------------------------------- helpers


def _as_ids(value, name):
    ids = np.asarray(value.numpy() if hasattr(value, "numpy") else value)
    if ids.ndim != 2 or ids.shape[1] == 0 or not np.issubdtype(ids.dtype, np.integer):
        raise InputError(
            f"{name} must be integer token ids of shape [batch, seq] with seq > 0, got shape {list(ids.shape)} "
            f"of {ids.dtype}. Tokenize with return_tensors='np' (or 'tf'); wrap a single prompt as [ids]."
        )
    return ids.astype(np.int32)


def _default_attention_mask(input_ids, attention_mask, pad, eos):
    """The given mask, or transformers' inference: padding where the pad token is, unless pad is also EOS."""
    if attention_mask is not None:
        mask = _as_ids(attention_mask, "attention_mask")
        if mask.shape != input_ids.shape:
            raise InputError(
                f"attention_mask has shape {list(mask.shape)} but input_ids has {list(input_ids.shape)}; "
                "pass the mask the tokenizer returned with these ids."
            )
        return mask
    if pad is not None and (input_ids == pad).any() and pad not in (eos or []):
        return (input_ids != pad).astype(np.int32)
    return np.ones_like(input_ids)


def _rows_per_prompt(config):
    """Rows the loop decodes per prompt: its beams, or its returned sequences."""
    return config.num_beams if config.num_beams > 1 else config.num_return_sequences


def _round_up(length, multiple):
    return length if not multiple else -(-length // multiple) * multiple


def _seed(seed):
    """A [2] int32 stateless seed: from `seed` (int or pair), or drawn from NumPy's global generator (which
    `keras.utils.set_random_seed` seeds)."""
    if seed is None:
        seed = np.random.randint(0, 2**31 - 1, size=2)
    seed = np.atleast_1d(np.asarray(seed, dtype=np.int64)) % (2**31 - 1)
    if seed.size == 1:
        seed = np.array([seed[0], 0])
    return tf.constant(seed[:2], tf.int32)


def _outputs(result, config, start, prompt_length, trim=True, encoder_decoder=False):
    """The user's view of a loop result: bucket padding removed and, eagerly, the length cut to the steps
    taken; a tensor of sequences, or a GenerateOutput with `return_dict_in_generate`."""
    steps = int(result["steps"]) if trim else None
    sequences = result["sequences"]
    if trim:
        sequences = sequences[:, start:start + prompt_length + steps]
    if not config.return_dict_in_generate:
        return sequences

    def per_step(buffer):
        if buffer.shape[0] == 0:
            return None
        return tuple(tf.unstack(buffer[:steps] if trim else buffer))

    if config.num_beams > 1:
        beam_output = GenerateBeamEncoderDecoderOutput if encoder_decoder else GenerateBeamDecoderOnlyOutput
        return beam_output(
            sequences=sequences,
            sequences_scores=result["sequences_scores"] if config.output_scores else None,
            scores=per_step(result["scores"]),
            beam_indices=result["beam_indices"][:, :steps] if trim else result["beam_indices"],
        )
    output = GenerateEncoderDecoderOutput if encoder_decoder else GenerateDecoderOnlyOutput
    return output(
        sequences=sequences, scores=per_step(result["scores"]), logits=per_step(result["logits"])
    )
