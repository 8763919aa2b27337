"""Logits processors for the compiled generate() loop: transformers 5.24's, as pure TensorFlow ops.

`logits_processor(generation_config, vocab_size=...)` builds the processors (and, when sampling, the warpers)
that transformers' `GenerationMixin._get_logits_processor` builds for the same config, in the same order, and
composes them into one `process(logits [rows, vocab] float32, history) -> [rows, vocab]`. Each processor is a
small class named after its transformers counterpart. Everything is XLA-compilable: static shapes, no Python
branch on a traced value (`start`, `prompt_end`, `length` may be traced), and no [rows, slots, vocab] tensor:
sets of tokens are scattered into [rows, vocab + 1], the spare column taking the entries that must not count.

Coordinates. The loop keeps one static token buffer per row; transformers' `input_ids` at a step is
`tokens[:, start:length]`. So transformers' `cur_len = input_ids.shape[-1]` is `length - start`, and the
`input_ids_seq_length` that generate() hands to `_get_logits_processor` is `prompt_end - start` (the user's
prompt, user padding included, bucket padding excluded). Length options keep transformers' meaning in these
user coordinates: min_length bans EOS while `length - start < min_length`; forced_eos fires when
`length - start == max_length - 1`, i.e. when the token about to be written goes to slot
`start + max_length - 1`, the last one `max_length` allows.

The config is read as generate() hands it to `_get_logits_processor`: global defaults already merged
(`GenerationConfig._get_default_generation_params`, e.g. top_k=50 when sampling), `max_length` and
`min_length` already resolved against the prompt (`max_new_tokens + input length`), and `eos_token_id`,
`bos_token_id`, `pad_token_id` resolved to ints or lists. Options transformers has and we do not
(guidance_scale, watermarking_config) raise `ConfigError` rather than being ignored.

The prompt is read from the history, which suits decoder-only models, where transformers' `encoder_input_ids`
is the prompt: encoder_repetition_penalty and encoder_no_repeat_ngram_size use it so. An encoder-decoder loop
would have to hand over the encoder's ids instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tfformers.errors import ConfigError, InputError

__all__ = ["History", "LogitsProcessorList", "logits_processor"]


class History(NamedTuple):
    """What a processor may look at besides the logits. All slots are static-shaped buffers."""

    tokens: tf.Tensor  # [rows, slots] int32: the token buffer; slots >= length are not written yet (hold pad ids)
    mask: tf.Tensor  # [rows, slots] int32: the attention mask; 1 = a real token (user tokens that are not
    # padding, and every generated slot, as transformers extends attention_mask with 1s),
    # 0 = user left-padding or tfformers' bucket padding
    start: tf.Tensor  # scalar int32: slots [0, start) are bucket padding tfformers added on the left to reach
    # a compiled prompt length; they are NOT part of the user's input_ids
    prompt_end: tf.Tensor  # scalar int32: first generated slot (the user's prompt is tokens[:, start:prompt_end])
    length: tf.Tensor  # scalar int32: slots filled so far; tokens[:, start:length] equals transformers'
    # `input_ids` at this step (user padding included), length > prompt_end after step 1


# --------------------------------------------------------------------------------------------------
# reading the history
# --------------------------------------------------------------------------------------------------


def _current_length(history):
    """Scalar int32: transformers' `input_ids.shape[-1]` at this step."""
    return history.length - history.start


def _prompt_length(history):
    """Scalar int32: transformers' `input_ids_seq_length`, the user's prompt with its left padding."""
    return history.prompt_end - history.start


def _slot_index(history):
    """[1, slots] int32: each slot's position, to compare with start / prompt_end / length."""
    return tf.range(tf.shape(history.tokens)[1])[tf.newaxis, :]


def _static_slots(history):
    slots = history.tokens.shape[1]
    if slots is None:
        raise InputError(
            "History.tokens needs a static number of slots (shape [rows, slots] with slots known at trace "
            "time); allocate the token buffer at its full compiled length."
        )
    return slots


def _slots_from(tokens, first, count):
    """tokens[:, first:first + count] for a traced `first`: [rows, count]. Indices are clipped into the
    buffer, so callers must discard what a clipped index reads."""
    index = tf.clip_by_value(first + tf.range(count), 0, tf.shape(tokens)[1] - 1)
    return tf.gather(tokens, index, axis=1)


def _first_real_prompt_slot(history):
    """[rows] int32: the slot where each row's prompt starts after its user left padding.

    transformers v5 gives RepetitionPenaltyLogitsProcessor `prompt_ignore_length = (mask != 0).argmax(1)`
    over the prompt's attention mask: the first real token, or 0 for a row without any.
    """
    slot = _slot_index(history)
    real = (slot >= history.start) & (slot < history.prompt_end) & (history.mask != 0)
    first = tf.reduce_min(tf.where(real, slot, history.prompt_end), axis=1)
    return tf.where(first == history.prompt_end, history.start, first)


# --------------------------------------------------------------------------------------------------
# sets of tokens, bans and forcing
# --------------------------------------------------------------------------------------------------


def _row_column_indices(columns):
    """[rows * n, 2] int32 scatter indices (row, column) for columns [rows, n]."""
    rows = tf.broadcast_to(tf.range(tf.shape(columns)[0])[:, tf.newaxis], tf.shape(columns))
    return tf.reshape(tf.stack([rows, columns], axis=-1), [-1, 2])


def _token_sets(token_ids, counted, vocab_size):
    """bool [rows, vocab]: which ids occur in each row of token_ids [rows, n] where counted (broadcastable) holds.

    Ids outside [0, vocab) and entries that do not count are sent to a spare column past the vocab, which is
    dropped, as transformers does with its `vocab_size + 1` scatter.
    """
    counted = tf.broadcast_to(counted, tf.shape(token_ids)) & (token_ids >= 0) & (token_ids < vocab_size)
    columns = tf.where(counted, token_ids, vocab_size)
    indices = _row_column_indices(columns)
    counts = tf.tensor_scatter_nd_add(
        tf.zeros([tf.shape(token_ids)[0], vocab_size + 1], tf.int32), indices, tf.ones_like(indices[:, 0])
    )
    return counts[:, :vocab_size] > 0


def _vocab_mask(token_ids, vocab_size):
    """bool [vocab] numpy array, true at each of token_ids (ids outside the vocab are ignored, as torch.isin
    against arange(vocab) does)."""
    mask = np.zeros([vocab_size], bool)
    for token_id in token_ids:
        if 0 <= token_id < vocab_size:
            mask[token_id] = True
    return mask


def _ban(logits, banned, when):
    """-inf wherever banned ([vocab] or [rows, vocab] bool) holds, if the scalar condition `when` holds."""
    return tf.where(banned & when, tf.constant(-math.inf, logits.dtype), logits)


def _force(logits, forced, when):
    """If the scalar `when` holds: every row becomes 0 at the forced ids ([vocab] bool) and -inf elsewhere."""
    row = tf.where(forced, tf.constant(0.0, logits.dtype), tf.constant(-math.inf, logits.dtype))
    return tf.where(when, tf.broadcast_to(row, tf.shape(logits)), logits)


def _penalize(logits, penalty):
    """The repetition penalty's rule: negative scores are multiplied by it, the others divided."""
    penalty = tf.constant(penalty, logits.dtype)
    return tf.where(logits < 0, logits * penalty, logits / penalty)


def _unsort(sorted_values, order):
    """Put values computed in sorted order [rows, vocab] back at the positions `order` took them from."""
    return tf.tensor_scatter_nd_update(
        tf.zeros_like(sorted_values), _row_column_indices(order), tf.reshape(sorted_values, [-1])
    )


def _below_kth_largest(logits, k):
    """bool [rows, vocab]: scores below the k-th largest of their row (ties with it are kept)."""
    kth = tf.math.top_k(logits, k=k).values[:, -1:]
    return logits < kth


def _filter(logits, remove):
    return tf.where(remove, tf.constant(-math.inf, logits.dtype), logits)


def _categorical_entropy(logits):
    """[rows] entropy as torch.distributions.Categorical(logits=...).entropy() computes it: normalized logits
    clamped to the dtype's lowest finite value, so -inf entries count 0 instead of NaN."""
    normalized = logits - tf.reduce_logsumexp(logits, axis=-1, keepdims=True)
    probs = tf.nn.softmax(normalized, axis=-1)
    lowest = tf.constant(np.finfo(logits.dtype.as_numpy_dtype).min, logits.dtype)
    return -tf.reduce_sum(tf.maximum(normalized, lowest) * probs, axis=-1)


# --------------------------------------------------------------------------------------------------
# processors, in the order transformers applies them
# --------------------------------------------------------------------------------------------------


class SequenceBias:
    """transformers' SequenceBiasLogitsProcessor: adds each sequence's bias to its last token whenever the next
    token would complete it (always, for a one-token sequence)."""

    def __init__(self, sequence_bias, vocab_size):
        """sequence_bias: {tuple of token ids: float bias}."""
        out_of_vocab = sorted({t for ids in sequence_bias for t in ids if t >= vocab_size})
        if out_of_vocab:
            raise ConfigError(
                f"The model vocabulary size is {vocab_size}, but sequence_bias / bad_words_ids name the tokens "
                f"{out_of_vocab}; remove them or use ids below {vocab_size}."
            )
        self.single_token_bias = np.zeros([vocab_size], np.float32)
        by_prefix_length = {}
        for ids, bias in sequence_bias.items():
            if len(ids) == 1:
                self.single_token_bias[ids[0]] = bias
            else:
                by_prefix_length.setdefault(len(ids) - 1, []).append((ids, bias))
        # One group per prefix length: prefixes [group, length] int32, last tokens [group], biases [group].
        self.groups = [
            (
                np.array([ids[:-1] for ids, _ in group], np.int32),
                np.array([ids[-1] for ids, _ in group], np.int32),
                np.array([bias for _, bias in group], np.float32),
            )
            for group in by_prefix_length.values()
        ]

    def __call__(self, logits, history):
        bias = tf.broadcast_to(tf.constant(self.single_token_bias, logits.dtype), tf.shape(logits))
        for prefixes, last_tokens, biases in self.groups:
            prefix_length = prefixes.shape[1]
            context = _slots_from(history.tokens, history.length - prefix_length, prefix_length)  # [rows, length]
            completes = tf.reduce_all(context[:, tf.newaxis, :] == prefixes, axis=-1)  # [rows, group]
            completes &= _current_length(history) >= prefix_length
            added = tf.where(completes, tf.constant(biases, logits.dtype), tf.constant(0.0, logits.dtype))
            columns = tf.broadcast_to(last_tokens, tf.shape(added))
            bias = tf.tensor_scatter_nd_add(bias, _row_column_indices(columns), tf.reshape(added, [-1]))
        return logits + bias


class EncoderRepetitionPenalty:
    """transformers' EncoderRepetitionPenaltyLogitsProcessor: the inverse penalty on every token of the prompt
    (user padding included), which for a decoder-only model is its `encoder_input_ids`."""

    def __init__(self, penalty, vocab_size):
        self.inverse_penalty = 1 / penalty
        self.vocab_size = vocab_size

    def __call__(self, logits, history):
        slot = _slot_index(history)
        in_prompt = (slot >= history.start) & (slot < history.prompt_end)
        present = _token_sets(history.tokens, in_prompt, self.vocab_size)
        return tf.where(present, _penalize(logits, self.inverse_penalty), logits)


class RepetitionPenalty:
    """transformers' RepetitionPenaltyLogitsProcessor: penalizes each token of input_ids once, skipping the
    user's left padding (v5's `prompt_ignore_length` from the attention mask)."""

    def __init__(self, penalty, vocab_size):
        self.penalty = penalty
        self.vocab_size = vocab_size

    def __call__(self, logits, history):
        slot = _slot_index(history)
        counted = (slot >= _first_real_prompt_slot(history)[:, tf.newaxis]) & (slot < history.length)
        present = _token_sets(history.tokens, counted, self.vocab_size)
        return tf.where(present, _penalize(logits, self.penalty), logits)


def _repeated_ngram_completions(history, ngram_size, windows_end, vocab_size):
    """bool [rows, vocab]: tokens that would repeat an n-gram lying inside tokens[:, start:windows_end].

    Every window [s, s + n) of the buffer whose first n - 1 tokens equal the last n - 1 tokens of input_ids
    bans its own last token (transformers' matching of the current suffix against every window). Work is
    [rows, windows] per compared position, then one scatter.
    """
    tokens = history.tokens
    windows = _static_slots(history) - ngram_size + 1
    if windows <= 0:  # the buffer cannot hold one n-gram
        return tf.zeros([tf.shape(tokens)[0], vocab_size], tf.bool)
    first = tf.range(windows)[tf.newaxis, :]  # [1, windows]: each window's first slot
    matches = (first >= history.start) & (first + ngram_size <= windows_end)
    suffix = _slots_from(tokens, history.length - (ngram_size - 1), ngram_size - 1)  # [rows, n - 1]
    for offset in range(ngram_size - 1):
        matches = matches & (tokens[:, offset : offset + windows] == suffix[:, offset : offset + 1])
    return _token_sets(tokens[:, ngram_size - 1 :], matches, vocab_size)


class NoRepeatNGram:
    """transformers' NoRepeatNGramLogitsProcessor: bans every token that would complete an n-gram already in
    input_ids (prompt included)."""

    def __init__(self, ngram_size, vocab_size):
        self.ngram_size = ngram_size
        self.vocab_size = vocab_size

    def __call__(self, logits, history):
        # A window must end by `length`: fewer than n tokens hold no n-gram and ban nothing.
        banned = _repeated_ngram_completions(history, self.ngram_size, history.length, self.vocab_size)
        return _ban(logits, banned, True)


class EncoderNoRepeatNGram:
    """transformers' EncoderNoRepeatNGramLogitsProcessor: bans every token that would complete an n-gram of the
    prompt (for a decoder-only model its `encoder_input_ids`), user padding included."""

    def __init__(self, ngram_size, vocab_size):
        self.ngram_size = ngram_size
        self.vocab_size = vocab_size

    def __call__(self, logits, history):
        # The prompt is never longer than input_ids, so an n-gram inside it implies n - 1 tokens to match.
        banned = _repeated_ngram_completions(history, self.ngram_size, history.prompt_end, self.vocab_size)
        return _ban(logits, banned, True)


class NoBadWords(SequenceBias):
    """transformers' NoBadWordsLogitsProcessor: a sequence bias of -inf on each bad word, except one-token bad
    words that are an EOS token."""

    def __init__(self, bad_words_ids, eos_token_ids, vocab_size):
        eos_words = [[eos] for eos in eos_token_ids or []]
        kept = [ids for ids in bad_words_ids if ids not in eos_words]
        if not kept:  # transformers' SequenceBiasLogitsProcessor refuses the empty set left over
            raise ConfigError(
                f"bad_words_ids={bad_words_ids} only names EOS tokens {eos_token_ids}, which are never banned as bad "
                "words; drop bad_words_ids (use suppress_tokens to ban EOS)."
            )
        super().__init__({tuple(ids): -math.inf for ids in kept}, vocab_size)


class MinLength:
    """transformers' MinLengthLogitsProcessor: bans EOS while input_ids (prompt included) is shorter than
    min_length."""

    def __init__(self, min_length, eos_token_ids, vocab_size):
        self.min_length = min_length
        self.eos = _vocab_mask(eos_token_ids, vocab_size)

    def __call__(self, logits, history):
        return _ban(logits, self.eos, _current_length(history) < self.min_length)


class MinNewTokensLength:
    """transformers' MinNewTokensLengthLogitsProcessor: bans EOS until min_new_tokens tokens were generated."""

    def __init__(self, min_new_tokens, eos_token_ids, vocab_size):
        self.min_new_tokens = min_new_tokens
        self.eos = _vocab_mask(eos_token_ids, vocab_size)

    def __call__(self, logits, history):
        generated = _current_length(history) - _prompt_length(history)
        return _ban(logits, self.eos, generated < self.min_new_tokens)


class ForcedBOSToken:
    """transformers' ForcedBOSTokenLogitsProcessor: forces the token when input_ids holds exactly one token."""

    def __init__(self, bos_token_id, vocab_size):
        self.forced = _vocab_mask([bos_token_id], vocab_size)

    def __call__(self, logits, history):
        return _force(logits, self.forced, _current_length(history) == 1)


class ForcedEOSToken:
    """transformers' ForcedEOSTokenLogitsProcessor: forces the EOS id(s) when the next token is the last one
    max_length allows (input_ids length max_length - 1, i.e. slot start + max_length - 1)."""

    def __init__(self, max_length, eos_token_ids, vocab_size):
        self.max_length = max_length
        self.forced = _vocab_mask(eos_token_ids, vocab_size)

    def __call__(self, logits, history):
        return _force(logits, self.forced, _current_length(history) == self.max_length - 1)


class InfNanRemove:
    """transformers' InfNanRemoveLogitsProcessor: NaN becomes 0, +-inf the dtype's largest / lowest value."""

    def __call__(self, logits, history):
        limits = np.finfo(logits.dtype.as_numpy_dtype)
        cleaned = tf.where(tf.math.is_nan(logits), tf.constant(0.0, logits.dtype), logits)
        cleaned = tf.where(logits == math.inf, tf.constant(limits.max, logits.dtype), cleaned)
        return tf.where(logits == -math.inf, tf.constant(limits.min, logits.dtype), cleaned)


class ExponentialDecayLengthPenalty:
    """transformers' ExponentialDecayLengthPenalty: once input_ids passes prompt length + start_index, raises
    the EOS scores by |score| * (decay_factor ** steps_past - 1)."""

    def __init__(self, start_index, decay_factor, eos_token_ids, max_length, vocab_size):
        self.start_index = start_index
        # transformers computes the factor in Python (float64) and scales float32 scores by it; a table over
        # every step max_length allows gives the same float32 factors without float64 ops (TPUs have none).
        self.growth = np.array([decay_factor**step - 1 for step in range(max_length + 1)], np.float32)
        self.eos = _vocab_mask(eos_token_ids, vocab_size)

    def __call__(self, logits, history):
        steps_past = _current_length(history) - (self.start_index + _prompt_length(history))
        # Before the start, step 0 of the table gives a growth of 0: nothing changes.
        step = tf.clip_by_value(steps_past, 0, len(self.growth) - 1)
        growth = tf.gather(tf.constant(self.growth, logits.dtype), step)
        penalized = self.eos & tf.math.is_finite(logits)
        return logits + tf.where(penalized, tf.abs(logits) * growth, tf.constant(0.0, logits.dtype))


class SuppressTokens:
    """transformers' SuppressTokensLogitsProcessor: the tokens are always -inf."""

    def __init__(self, suppress_tokens, vocab_size):
        self.suppressed = _vocab_mask(suppress_tokens, vocab_size)

    def __call__(self, logits, history):
        return _ban(logits, self.suppressed, True)


class SuppressTokensAtBegin:
    """transformers' SuppressTokensAtBeginLogitsProcessor: the tokens are -inf at the first generation step.

    generate() sets begin_index to the prompt length, plus one when the prompt is at most one token long and a
    forced BOS token will take the first step.
    """

    def __init__(self, begin_suppress_tokens, forced_bos, vocab_size):
        self.suppressed = _vocab_mask(begin_suppress_tokens, vocab_size)
        self.forced_bos = forced_bos

    def __call__(self, logits, history):
        begin_index = _prompt_length(history)
        if self.forced_bos:
            begin_index = tf.where(begin_index > 1, begin_index, begin_index + 1)
        return _ban(logits, self.suppressed, _current_length(history) == begin_index)


# --------------------------------------------------------------------------------------------------
# warpers (sampling only), in the order transformers applies them
# --------------------------------------------------------------------------------------------------


class Temperature:
    """transformers' TemperatureLogitsWarper: scores / temperature."""

    def __init__(self, temperature):
        self.temperature = temperature

    def __call__(self, logits, history):
        return logits / tf.constant(self.temperature, logits.dtype)


class TopH:
    """transformers' TopHLogitsWarper: among the 100 best tokens, keeps the most probable ones while their
    cumulative entropy stays within top_h times the entropy of those 100 (the best one always)."""

    candidates = 100

    def __init__(self, top_h):
        self.top_h = top_h

    def __call__(self, logits, history):
        best, best_ids = tf.math.top_k(logits, k=min(self.candidates, logits.shape[-1]))  # [rows, n], sorted
        probs = tf.nn.softmax(best - tf.reduce_logsumexp(best, axis=-1, keepdims=True), axis=-1)
        budget = _categorical_entropy(best)[:, tf.newaxis] * tf.constant(self.top_h, logits.dtype)
        # As transformers: -p * log(p) from the probabilities (NaN where p == 0 ends the selection).
        cumulative = tf.cumsum(-probs * tf.math.log(probs), axis=-1)
        selected = tf.concat([tf.ones_like(budget, tf.bool), (cumulative <= budget)[:, 1:]], axis=-1)
        keep = tf.tensor_scatter_nd_update(
            tf.zeros(tf.shape(logits), tf.bool), _row_column_indices(best_ids), tf.reshape(selected, [-1])
        )
        return _filter(logits, ~keep)


class TopK:
    """transformers' TopKLogitsWarper: keeps the top_k best scores (and all ties with the k-th)."""

    def __init__(self, top_k, min_tokens_to_keep):
        self.top_k = max(top_k, min_tokens_to_keep)

    def __call__(self, logits, history):
        return _filter(logits, _below_kth_largest(logits, min(self.top_k, logits.shape[-1])))


class TopP:
    """transformers' TopPLogitsWarper: keeps the smallest set of best tokens whose probabilities reach top_p."""

    def __init__(self, top_p, min_tokens_to_keep):
        self.top_p = top_p
        self.min_tokens_to_keep = min_tokens_to_keep

    def __call__(self, logits, history):
        order = tf.argsort(logits, axis=-1, direction="ASCENDING", stable=True)  # [rows, vocab]
        cumulative = tf.cumsum(tf.nn.softmax(tf.gather(logits, order, batch_dims=1), axis=-1), axis=-1)
        remove = cumulative <= tf.constant(1 - self.top_p, logits.dtype)
        remove &= tf.range(logits.shape[-1]) < logits.shape[-1] - self.min_tokens_to_keep  # keep the best few
        return _filter(logits, _unsort(remove, order))


class MinP:
    """transformers' MinPLogitsWarper: removes tokens less probable than min_p times the best token's
    probability, always keeping the min_tokens_to_keep most probable."""

    def __init__(self, min_p, min_tokens_to_keep):
        self.min_p = min_p
        self.min_tokens_to_keep = min_tokens_to_keep

    def __call__(self, logits, history):
        probs = tf.nn.softmax(logits, axis=-1)
        threshold = tf.constant(self.min_p, logits.dtype) * tf.reduce_max(probs, axis=-1, keepdims=True)
        remove = probs < threshold
        kept = tf.math.top_k(probs, k=min(self.min_tokens_to_keep, logits.shape[-1])).indices
        remove = tf.tensor_scatter_nd_update(
            remove, _row_column_indices(kept), tf.zeros([tf.size(kept)], tf.bool)
        )
        return _filter(logits, remove)


class Typical:
    """transformers' TypicalLogitsWarper: keeps the tokens whose surprise is closest to the entropy, up to a
    probability mass of typical_p."""

    def __init__(self, mass, min_tokens_to_keep):
        self.mass = mass
        self.min_tokens_to_keep = min_tokens_to_keep

    def __call__(self, logits, history):
        normalized = tf.nn.log_softmax(logits, axis=-1)
        terms = normalized * tf.exp(normalized)
        entropy = -tf.reduce_sum(tf.where(tf.math.is_nan(terms), tf.zeros_like(terms), terms), -1, keepdims=True)
        distance = tf.abs(-normalized - entropy)  # [rows, vocab]
        order = tf.argsort(distance, axis=-1, direction="ASCENDING", stable=True)
        sorted_distance = tf.gather(distance, order, batch_dims=1)
        cumulative = tf.cumsum(tf.nn.softmax(tf.gather(logits, order, batch_dims=1), axis=-1), axis=-1)
        last = tf.reduce_sum(tf.cast(cumulative < tf.constant(self.mass, logits.dtype), tf.int32), axis=-1)
        last = tf.minimum(last, logits.shape[-1] - 1)
        remove = sorted_distance > tf.gather(sorted_distance, last[:, tf.newaxis], batch_dims=1)
        remove &= tf.range(logits.shape[-1]) >= self.min_tokens_to_keep
        return _filter(logits, _unsort(remove, order))


class EpsilonCutoff:
    """transformers' EpsilonLogitsWarper: removes tokens less probable than epsilon, keeping the
    min_tokens_to_keep best."""

    def __init__(self, epsilon, min_tokens_to_keep):
        self.epsilon = epsilon
        self.min_tokens_to_keep = min_tokens_to_keep

    def __call__(self, logits, history):
        unlikely = tf.nn.softmax(logits, axis=-1) < tf.constant(self.epsilon, logits.dtype)
        k = min(self.min_tokens_to_keep, logits.shape[-1])
        return _filter(logits, unlikely & _below_kth_largest(logits, k))


class EtaCutoff:
    """transformers' EtaLogitsWarper: removes tokens less probable than min(epsilon, sqrt(epsilon) *
    exp(-entropy)), keeping the min_tokens_to_keep best."""

    def __init__(self, epsilon, min_tokens_to_keep):
        self.epsilon = epsilon
        self.min_tokens_to_keep = min_tokens_to_keep

    def __call__(self, logits, history):
        epsilon = tf.constant(self.epsilon, logits.dtype)  # a float32 tensor in transformers
        entropy = _categorical_entropy(logits)[:, tf.newaxis]
        eta = tf.minimum(epsilon, tf.sqrt(epsilon) * tf.exp(-entropy))
        unlikely = tf.nn.softmax(logits, axis=-1) < eta
        k = min(self.min_tokens_to_keep, logits.shape[-1])
        return _filter(logits, unlikely & _below_kth_largest(logits, k))


class LogitNormalization:
    """transformers' LogitNormalization (renormalize_logits): log-softmax, always last."""

    def __call__(self, logits, history):
        return tf.nn.log_softmax(logits, axis=-1)


# --------------------------------------------------------------------------------------------------
# building the list from a GenerationConfig
# --------------------------------------------------------------------------------------------------


class LogitsProcessorList:
    """transformers' LogitsProcessorList: applies the processors in order, as one XLA-compilable function
    `(logits [rows, vocab] float32, history) -> [rows, vocab]`."""

    def __init__(self, processors, vocab_size):
        self.processors = tuple(processors)
        self.vocab_size = vocab_size

    def __call__(self, logits, history):
        if logits.shape[-1] != self.vocab_size:
            raise InputError(
                f"The logits have {logits.shape[-1]} entries per row, but the processors were built for "
                f"vocab_size={self.vocab_size}; build them with the width of the model's logits."
            )
        for processor in self.processors:
            logits = processor(logits, history)
        return logits


def logits_processor(generation_config, *, vocab_size, num_beams=1):
    """The processors (and, when generation_config.do_sample, the warpers) that transformers 5.24's
    GenerationMixin._get_logits_processor builds for this config, in the same order, composed into one
    function `process(logits [rows, vocab] float32, history: History) -> [rows, vocab] float32`;
    None when nothing applies. Pure TF ops, XLA-compilable, start/prompt_end/length may be traced tensors.

    num_beams: rows per prompt in beam search (the loop applies the processors to log-softmaxed scores there);
    it must equal generation_config.num_beams, which transformers reads for the warpers' min_tokens_to_keep.
    """
    _refuse_unsupported(generation_config)
    _check_num_beams(generation_config, num_beams)
    processors = _processors(generation_config, vocab_size)
    if generation_config.do_sample:
        processors += _warpers(generation_config, _min_tokens_to_keep(generation_config, num_beams))
    if generation_config.renormalize_logits is True:
        processors.append(LogitNormalization())
    return LogitsProcessorList(processors, vocab_size) if processors else None


def _refuse_unsupported(config):
    unsupported = {
        "guidance_scale": config.guidance_scale is not None and config.guidance_scale != 1,
        "watermarking_config": config.watermarking_config is not None,
    }
    for option, is_set in unsupported.items():
        if is_set:
            raise ConfigError(
                f"generation_config.{option}={getattr(config, option)!r} is not supported by tfformers' compiled "
                f"generate(); unset it (guidance_scale=1 or None, watermarking_config=None)."
            )


def _check_num_beams(config, num_beams):
    if config.num_beams is not None and config.num_beams != num_beams:
        raise ConfigError(
            f"logits_processor(num_beams={num_beams}) disagrees with generation_config.num_beams="
            f"{config.num_beams}; transformers builds the warpers from generation_config.num_beams, pass the same."
        )


def _token_id_list(value, option):
    """An int or list of ints as a list (None stays None), checked non-negative."""
    if value is None:
        return None
    ids = [value] if isinstance(value, (int, np.integer)) else list(value)
    if any(not isinstance(i, (int, np.integer)) or i < 0 for i in ids):
        raise ConfigError(f"generation_config.{option} must be non-negative token ids, got {value!r}.")
    return [int(i) for i in ids]


def _positive_float(config, option):
    value = getattr(config, option)
    if not isinstance(value, (int, float)) or not value > 0:
        hint = " For greedy decoding set do_sample=False." if option == "temperature" and value == 0 else ""
        raise ConfigError(f"generation_config.{option} must be a strictly positive float, got {value!r}.{hint}")
    return float(value)


def _non_negative_int(config, option):
    value = getattr(config, option)
    if not isinstance(value, (int, np.integer)) or value < 0:
        raise ConfigError(f"generation_config.{option} must be a non-negative integer, got {value!r}.")
    return int(value)


def _in_vocab(token_id, option, vocab_size):
    if token_id >= vocab_size:
        raise ConfigError(
            f"generation_config.{option}={token_id} is outside the vocabulary of {vocab_size} tokens; use an id "
            f"below {vocab_size}."
        )
    return token_id


def _processors(config, vocab_size):
    """The processors _get_logits_processor builds before the warpers, in its order."""
    eos = _token_id_list(config.eos_token_id, "eos_token_id")
    processors = []
    if config.sequence_bias is not None:
        processors.append(SequenceBias(_sequence_bias_dict(config.sequence_bias), vocab_size))
    if config.encoder_repetition_penalty is not None and config.encoder_repetition_penalty != 1.0:
        penalty = _positive_float(config, "encoder_repetition_penalty")
        processors.append(EncoderRepetitionPenalty(penalty, vocab_size))
    if config.repetition_penalty is not None and config.repetition_penalty != 1.0:
        processors.append(RepetitionPenalty(_positive_float(config, "repetition_penalty"), vocab_size))
    if config.no_repeat_ngram_size is not None and config.no_repeat_ngram_size > 0:
        processors.append(NoRepeatNGram(_non_negative_int(config, "no_repeat_ngram_size"), vocab_size))
    if config.encoder_no_repeat_ngram_size is not None and config.encoder_no_repeat_ngram_size > 0:
        ngram_size = _non_negative_int(config, "encoder_no_repeat_ngram_size")
        processors.append(EncoderNoRepeatNGram(ngram_size, vocab_size))
    if config.bad_words_ids is not None:
        processors.append(NoBadWords(_bad_words(config.bad_words_ids), eos, vocab_size))
    if config.min_length is not None and eos is not None and config.min_length > 0:
        processors.append(MinLength(_non_negative_int(config, "min_length"), eos, vocab_size))
    if config.min_new_tokens is not None and eos is not None and config.min_new_tokens > 0:
        processors.append(MinNewTokensLength(_non_negative_int(config, "min_new_tokens"), eos, vocab_size))
    if config.forced_bos_token_id is not None:
        bos = _token_id_list(config.forced_bos_token_id, "forced_bos_token_id")[0]
        processors.append(ForcedBOSToken(_in_vocab(bos, "forced_bos_token_id", vocab_size), vocab_size))
    if config.forced_eos_token_id is not None:
        processors.append(_forced_eos(config, vocab_size))
    if config.remove_invalid_values is True:
        processors.append(InfNanRemove())
    if config.exponential_decay_length_penalty is not None:
        processors.append(_exponential_decay(config, eos, vocab_size))
    if config.suppress_tokens is not None:
        processors.append(SuppressTokens(_token_id_list(config.suppress_tokens, "suppress_tokens"), vocab_size))
    if config.begin_suppress_tokens is not None:
        suppressed = _token_id_list(config.begin_suppress_tokens, "begin_suppress_tokens")
        processors.append(SuppressTokensAtBegin(suppressed, config.forced_bos_token_id is not None, vocab_size))
    return processors


def _warpers(config, min_tokens_to_keep):
    """The sampling warpers _get_logits_processor appends when do_sample, in its order."""
    warpers = []
    if config.temperature is not None and config.temperature != 1.0:
        warpers.append(Temperature(_positive_float(config, "temperature")))
    if config.top_h is not None:
        if not 0 < config.top_h <= 1:
            raise ConfigError(f"generation_config.top_h must be in (0, 1], got {config.top_h!r}.")
        warpers.append(TopH(float(config.top_h)))
    if config.top_k is not None and config.top_k != 0:
        if not isinstance(config.top_k, (int, np.integer)) or config.top_k < 0:
            raise ConfigError(f"generation_config.top_k must be a positive integer (or 0: off), got {config.top_k!r}.")
        warpers.append(TopK(int(config.top_k), min_tokens_to_keep))
    if config.top_p is not None and config.top_p < 1.0:
        if config.top_p < 0:
            raise ConfigError(f"generation_config.top_p must be in [0, 1], got {config.top_p!r}.")
        warpers.append(TopP(float(config.top_p), min_tokens_to_keep))
    if config.min_p is not None:
        if not 0 <= config.min_p <= 1:
            raise ConfigError(f"generation_config.min_p must be in [0, 1], got {config.min_p!r}.")
        warpers.append(MinP(float(config.min_p), min_tokens_to_keep))
    if config.typical_p is not None and config.typical_p < 1.0:
        if not config.typical_p > 0:
            raise ConfigError(f"generation_config.typical_p must be in (0, 1), got {config.typical_p!r}.")
        warpers.append(Typical(float(config.typical_p), min_tokens_to_keep))
    if config.epsilon_cutoff is not None and 0.0 < config.epsilon_cutoff < 1.0:
        warpers.append(EpsilonCutoff(float(config.epsilon_cutoff), min_tokens_to_keep))
    if config.eta_cutoff is not None and 0.0 < config.eta_cutoff < 1.0:
        warpers.append(EtaCutoff(float(config.eta_cutoff), min_tokens_to_keep))
    return warpers


def _min_tokens_to_keep(config, num_beams):
    """Beam sampling keeps at least one token besides the EOS ids, so that a beam can go on."""
    if num_beams <= 1:
        return 1
    eos = _token_id_list(config.eos_token_id, "eos_token_id")
    return len(eos) + 1 if eos is not None else 2


def _sequence_bias_dict(sequence_bias):
    """transformers' two spellings, [[ids, bias], ...] or {tuple(ids): bias}, as {tuple(ids): float}."""
    pairs = sequence_bias.items() if isinstance(sequence_bias, dict) else sequence_bias
    try:
        converted = {tuple(ids): bias for ids, bias in pairs}
    except (TypeError, ValueError):
        converted = None
    valid = (
        converted
        and all(ids and all(isinstance(t, (int, np.integer)) and t >= 0 for t in ids) for ids in converted)
        and all(isinstance(bias, float) for bias in converted.values())
    )
    if not valid:
        raise ConfigError(
            f"generation_config.sequence_bias must be a non-empty list of [token ids, float bias] pairs (or a dict "
            f"of tuple(ids) -> float), got {sequence_bias!r}."
        )
    return converted


def _bad_words(bad_words_ids):
    """bad_words_ids checked as transformers does: a non-empty list of non-empty lists of token ids."""
    valid = (
        isinstance(bad_words_ids, list)
        and bad_words_ids
        and all(isinstance(ids, list) and ids for ids in bad_words_ids)
        and all(isinstance(t, (int, np.integer)) and t >= 0 for ids in bad_words_ids for t in ids)
    )
    if not valid:
        raise ConfigError(
            f"generation_config.bad_words_ids must be a non-empty list of non-empty lists of token ids, got "
            f"{bad_words_ids!r}."
        )
    return [[int(t) for t in ids] for ids in bad_words_ids]


def _forced_eos(config, vocab_size):
    if config.max_length is None:
        raise ConfigError(
            "generation_config.forced_eos_token_id needs generation_config.max_length (the total length, prompt "
            "included, as generate() resolves it); set max_length or max_new_tokens."
        )
    ids = _token_id_list(config.forced_eos_token_id, "forced_eos_token_id")
    ids = [_in_vocab(token_id, "forced_eos_token_id", vocab_size) for token_id in ids]
    return ForcedEOSToken(_non_negative_int(config, "max_length"), ids, vocab_size)


def _exponential_decay(config, eos, vocab_size):
    penalty = config.exponential_decay_length_penalty
    if not isinstance(penalty, Sequence) or len(penalty) != 2 or eos is None or config.max_length is None:
        raise ConfigError(
            f"generation_config.exponential_decay_length_penalty must be (start_index, decay_factor) with "
            f"eos_token_id and max_length set, got {penalty!r}, eos_token_id={config.eos_token_id!r}, "
            f"max_length={config.max_length!r}."
        )
    start_index, decay_factor = penalty
    max_length = _non_negative_int(config, "max_length")
    return ExponentialDecayLengthPenalty(int(start_index), float(decay_factor), eos, max_length, vocab_size)
