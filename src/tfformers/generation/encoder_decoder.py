"""What `generate()` does differently for an encoder–decoder (T5, BART): the prompt is the encoder's
input, run once; the decoder starts from one start token and generates into its own static cache.

Inside the compiled program: the encoder runs on the source batch [batch, source_len] (right-padded to a
length bucket; padding is masked, and neither relative nor learned positions move with right padding), and
the decoding loops of `search.py` run on a decoder prompt of one start token per row (batch * beams or
returned sequences). The step function hands the encoder output and its mask, one row per source, to the
model with the cache; the first call (the prefill) computes every layer's cross-attention keys and values
into the `EncoderDecoderCache`, once per source, which later steps read: the attention lets each source's
decoder rows share them (`layers.attention.scaled_dot_product_attention`).
"""

import tensorflow as tf

from tfformers.errors import ConfigError, InputError
from tfformers.generation.search import Prompt
from tfformers.outputs import BaseModelOutput

# The logits processors read the prompt from the decoder's token history; these two read the encoder's ids.
_ENCODER_PROMPT_OPTIONS = {"encoder_repetition_penalty": 1.0, "encoder_no_repeat_ngram_size": 0}


def decoder_start_token_id(generation_config, model_config):
    """transformers' choice: generation_config.decoder_start_token_id, else the model config's, else bos."""
    for source in (generation_config, model_config):
        start = getattr(source, "decoder_start_token_id", None)
        if start is not None:
            return int(start if not isinstance(start, (list, tuple)) else start[0])
    if generation_config.bos_token_id is not None:
        return int(generation_config.bos_token_id)
    raise ConfigError(
        "An encoder-decoder generates after a decoder start token, and neither decoder_start_token_id nor "
        "bos_token_id is set in the generation config or the model config. Pass decoder_start_token_id= "
        "(T5: its pad id, BART: its eos id) or set model.generation_config.decoder_start_token_id."
    )


def check_source(model, config, input_ids, new_tokens):
    """InputError/ConfigError for what only an encoder–decoder refuses: a source or a target beyond the
    position tables, options that need the encoder's ids (generate() checks the ids and options every model
    shares)."""
    for option, default in _ENCODER_PROMPT_OPTIONS.items():
        value = getattr(config, option, None)
        if value is not None and value != default:
            raise ConfigError(f"generation option {option}={value!r} is not supported for encoder-decoders yet.")
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit is not None and input_ids.shape[1] > limit:
        raise InputError(
            f"The source has {input_ids.shape[1]} tokens, beyond the encoder's max_position_embeddings={limit}. "
            f"Truncate it (tokenizer(..., truncation=True, max_length={limit}))."
        )
    if limit is not None and 1 + new_tokens > limit:
        raise InputError(
            f"max_new_tokens={new_tokens} plus the decoder start token is beyond the decoder's "
            f"max_position_embeddings={limit}; generate at most {limit - 1} tokens."
        )


def start_decoding(model, source, rows_per_item, start_token_id):
    """Runs the encoder on `source` (a Prompt of [batch, source_len] ids and mask) and returns the decoder's
    Prompt ([batch * rows_per_item, 1] start tokens) and the step function the decoding loops call."""
    encoded = model.get_encoder()(input_ids=source.input_ids, attention_mask=source.attention_mask, training=False)
    # Not repeated per row: cross-attention keys and values are computed and read once per source, its
    # rows_per_item decoder rows (beams, returned sequences) sharing them.
    encoder_outputs = BaseModelOutput(last_hidden_state=encoded.last_hidden_state)  # [batch, source_len, d]
    encoder_mask = source.attention_mask  # [batch, source_len]
    rows = source.input_ids.shape[0] * rows_per_item
    start = tf.fill([rows, 1], tf.constant(start_token_id, tf.int32))

    def step(decoder_input_ids, decoder_mask, positions, cache):
        # decoder rows are never padded: positions are the cache slots, the mask all ones
        out = model(
            {"decoder_input_ids": decoder_input_ids, "attention_mask": encoder_mask},
            encoder_outputs=encoder_outputs, cache=cache, logits_to_keep=1, training=False,
        )
        return tf.cast(out.logits[:, -1], tf.float32)

    return Prompt(start, tf.ones_like(start), tf.constant(0)), step
