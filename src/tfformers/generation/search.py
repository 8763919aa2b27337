"""The decoding loops: greedy / sampling and beam search, each one `tf.while_loop` over a static KV cache.

Both loops are pure functions of tensors with static shapes, so one XLA program serves every call of the
same shapes. A loop knows the model only through `step(input_ids, attention_mask, position_ids, cache)
-> next-token logits [rows, vocab] float32` and the cache only through `StaticCache`.

Slots: the prompt fills slots [0, prompt_length) (left-padded: `start` slots of bucket padding, then the
user's tokens); generated token t goes to slot prompt_length + t. Positions come from the attention mask
as transformers computes them in `generate` (cumulative count of real tokens; padding at 0), so padding
never shifts a sequence.
"""

from typing import NamedTuple

import tensorflow as tf

from tfformers.generation.cache import dynamic_update_slice
from tfformers.generation.logits_process import History


class Prompt(NamedTuple):
    """A left-padded prompt batch and where the user's part of it starts."""

    input_ids: tf.Tensor  # [rows, prompt_length] int32
    attention_mask: tf.Tensor  # [rows, prompt_length] int32
    start: tf.Tensor  # scalar int32: slots before it are bucket padding added by `generate`


def prompt_positions(attention_mask):
    """[rows, seq] positions: the count of real tokens before each one; padding at 0 (transformers)."""
    positions = tf.cumsum(attention_mask, axis=1) - 1
    return tf.where(tf.equal(attention_mask, 0), tf.zeros_like(positions), positions)


def _write(buffer, values, slot):
    """buffer [rows, slots] with values [rows] written at `slot`."""
    return dynamic_update_slice(buffer, values[:, None], [0, slot])


class _Decoding:
    """What both loops set up: the token and mask buffers, positions, the cache, and the prefill."""

    def __init__(self, model, step, prompt, new_tokens, pad_token_id):
        rows, self.prompt_length = prompt.input_ids.shape
        self.total = self.prompt_length + new_tokens
        self.start = prompt.start
        self.tokens = tf.pad(prompt.input_ids, [[0, 0], [0, new_tokens]], constant_values=pad_token_id)
        # generated slots count as tokens from the start: the causal mask hides the ones not yet written
        self.mask = tf.pad(prompt.attention_mask, [[0, 0], [0, new_tokens]], constant_values=1)
        positions = prompt_positions(prompt.attention_mask)
        self.next_position = positions[:, -1:] + 1  # [rows, 1]: position of generated token 0
        cache = model.allocate_cache(rows, self.total)
        self.first_logits = step(prompt.input_ids, self.mask, positions, cache)
        self.cache_state = cache.to_state()
        self.layout = cache
        self.step = step

    def cache(self, state):
        return self.layout.from_same_layout(state)

    def history(self, tokens, t):
        return History(tokens, self.mask, self.start, tf.constant(self.prompt_length), self.prompt_length + t)

    def forward(self, next_tokens, t, cache_state):
        """Runs generated token t [rows] through the model; (next logits, new cache state)."""
        cache = self.cache(cache_state)
        logits = self.step(next_tokens[:, None], self.mask, self.next_position + t, cache)
        return logits, cache.to_state()


def _scores_buffer(output_scores, new_tokens, like):
    """[new_tokens, rows, vocab] zeros when scores are returned, else a placeholder [0]."""
    if not output_scores:
        return tf.zeros([0], like.dtype)
    return tf.zeros(tf.concat([[new_tokens], tf.shape(like)], axis=0), like.dtype)


def _record(buffer, values, t):
    if buffer.shape[0] == 0:
        return buffer
    return dynamic_update_slice(buffer, values[None], [t, 0, 0])


# ------------------------------------------------------------------------------------- greedy and sampling


def sample_loop(model, step, prompt, *, new_tokens, processor, pad_token_id, eos_token_ids, do_sample, seed,
                output_scores=False, output_logits=False):
    """Greedy decoding (argmax) or sampling (from softmax of the processed logits, seeded statelessly).

    Stops when every row has produced an EOS token or after `new_tokens`; finished rows get `pad_token_id`.
    Returns (tokens [rows, prompt_length + new_tokens], steps taken, scores, raw logits), the last two
    [new_tokens, rows, vocab] (or empty when not asked for).
    """
    run = _Decoding(model, step, prompt, new_tokens, pad_token_id)
    rows = prompt.input_ids.shape[0]
    eos = tf.constant(eos_token_ids or [-1], tf.int32)

    def cond(t, tokens, finished, logits, cache_state, scores, raw):
        return tf.logical_not(tf.reduce_all(finished))

    def body(t, tokens, finished, logits, cache_state, scores, raw):
        processed = logits if processor is None else processor(logits, run.history(tokens, t))
        if do_sample:
            step_seed = tf.random.experimental.stateless_fold_in(seed, t)
            chosen = tf.random.stateless_categorical(processed, 1, step_seed, dtype=tf.int32)[:, 0]
        else:
            chosen = tf.argmax(processed, axis=-1, output_type=tf.int32)
        chosen = tf.where(finished, pad_token_id, chosen)
        tokens = _write(tokens, chosen, run.prompt_length + t)
        finished |= tf.reduce_any(chosen[:, None] == eos[None, :], axis=-1)
        scores, raw = _record(scores, processed, t), _record(raw, logits, t)
        logits, cache_state = run.forward(chosen, t, cache_state)
        return t + 1, tokens, finished, logits, cache_state, scores, raw

    state = (
        tf.constant(0),
        run.tokens,
        tf.zeros([rows], tf.bool),
        run.first_logits,
        run.cache_state,
        _scores_buffer(output_scores, new_tokens, run.first_logits),
        _scores_buffer(output_logits, new_tokens, run.first_logits),
    )
    t, tokens, _, _, _, scores, raw = tf.while_loop(cond, body, state, maximum_iterations=new_tokens)
    return tokens, t, scores, raw


# ---------------------------------------------------------------------------------------------- beam search


class BeamResult(NamedTuple):
    sequences: tf.Tensor  # [batch * num_return_sequences, total]
    sequences_scores: tf.Tensor  # [batch * num_return_sequences]
    beam_indices: tf.Tensor  # [batch * num_return_sequences, new_tokens], -1 past a sequence's end
    steps: tf.Tensor  # generated length of the longest returned sequence
    scores: tf.Tensor  # [new_tokens, batch * num_beams, vocab] processed log-probs, or empty


def _write_beams(buffer, values, slot):
    """buffer [batch, beams, slots] with values [batch, beams] written at `slot`."""
    return dynamic_update_slice(buffer, values[:, :, None], [0, 0, slot])


def _gather_beams(tensor, indices):
    """tensor [batch, beams, ...] -> rows `indices` [batch, k] of each batch item."""
    return tf.gather(tensor, indices, batch_dims=1)


def beam_search_loop(model, step, prompt, *, new_tokens, num_beams, processor, pad_token_id, eos_token_ids,
                     length_penalty, early_stopping, num_return_sequences, output_scores=False):
    """Beam search exactly as transformers 5 `_beam_search` does it, vectorized over static shapes.

    `prompt` rows are already repeated num_beams times (row b * num_beams + k is beam k of item b). Each step
    keeps the top (1 + eos count, at least 2) * num_beams continuations of all beams, moves those that end
    (EOS or max length) among the top num_beams into the finished set (scored with the length penalty)
    and continues with the best num_beams unfinished ones.
    """
    run = _Decoding(model, step, prompt, new_tokens, pad_token_id)
    rows, total, prompt_length = prompt.input_ids.shape[0], run.total, run.prompt_length
    batch = rows // num_beams
    eos = tf.constant(eos_token_ids or [-1], tf.int32)
    beams_to_keep = max(2, 1 + len(eos_token_ids or [])) * num_beams
    top_num_beam_mask = tf.range(beams_to_keep) < num_beams  # [beams_to_keep]
    # transformers' `pad_token_id or eos_token_id[0] if eos_token_id is not None else -1`, quirks included
    fill = (pad_token_id or eos_token_ids[0]) if eos_token_ids else -1
    vocab = run.first_logits.shape[-1]
    minus_inf = tf.constant(-1.0e9, tf.float32)

    def unflatten(x):
        return tf.reshape(x, tf.concat([[batch, -1], tf.shape(x)[1:]], axis=0))

    def flatten(x):
        return tf.reshape(x, tf.concat([[-1], tf.shape(x)[2:]], axis=0))

    def cond(t, running, running_scores, running_indices, finished_seqs, finished_scores, finished_indices,
             is_finished, heuristic_open, hits, logits, cache_state, scores):
        improvement_possible = tf.reduce_any(heuristic_open)
        open_beam = tf.logical_not(tf.reduce_all(is_finished) & (early_stopping is True))
        valid_continuations = tf.logical_not(tf.reduce_all(hits))
        return improvement_possible & open_beam & valid_continuations

    def body(t, running, running_scores, running_indices, finished_seqs, finished_scores, finished_indices,
             is_finished, heuristic_open, hits, logits, cache_state, scores):
        cur_len = prompt_length + t
        log_probs = tf.nn.log_softmax(logits, axis=-1)
        if processor is not None:
            log_probs = processor(log_probs, run.history(flatten(running), t))
        scores = _record(scores, log_probs, t)
        accumulated = unflatten(log_probs) + running_scores[:, :, None]  # [batch, beams, vocab]
        accumulated = tf.reshape(accumulated, [batch, num_beams * vocab])

        # the top beams_to_keep continuations over all beams of an item
        topk_log_probs, topk_indices = tf.math.top_k(accumulated, k=beams_to_keep)
        topk_beams = topk_indices // vocab  # [batch, beams_to_keep]
        topk_ids = topk_indices % vocab
        topk_sequences = _write_beams(_gather_beams(running, topk_beams), topk_ids, cur_len)
        global_beams = topk_beams + tf.range(batch)[:, None] * num_beams  # the beam's row in the cache
        topk_running_indices = _write_beams(_gather_beams(running_indices, topk_beams), global_beams, t)
        hits = tf.reduce_any(topk_ids[:, :, None] == eos[None, None, :], axis=-1) | (cur_len + 1 >= total)

        # the best num_beams continuations that did not finish keep running
        running_log_probs = topk_log_probs + tf.cast(hits, tf.float32) * minus_inf
        next_beams = tf.math.top_k(running_log_probs, k=num_beams)[1]
        running = _gather_beams(topk_sequences, next_beams)
        running_scores = _gather_beams(running_log_probs, next_beams)
        running_indices = _gather_beams(topk_running_indices, next_beams)

        # finished continuations among the top num_beams join the finished set if they score better
        just_finished = hits & top_num_beam_mask[None, :]
        candidate_scores = topk_log_probs / _length_penalty(cur_len + 1 - prompt_length, length_penalty)
        full = tf.reduce_all(is_finished, axis=-1, keepdims=True) & (early_stopping is True)
        candidate_scores += tf.cast(full, tf.float32) * minus_inf
        candidate_scores += tf.cast(tf.logical_not(heuristic_open), tf.float32) * minus_inf
        candidate_scores += tf.cast(tf.logical_not(just_finished), tf.float32) * minus_inf
        merged_scores = tf.concat([finished_scores, candidate_scores], axis=1)
        best = tf.math.top_k(merged_scores, k=num_beams)[1]
        finished_seqs = _gather_beams(tf.concat([finished_seqs, topk_sequences], axis=1), best)
        finished_scores = _gather_beams(merged_scores, best)
        finished_indices = _gather_beams(tf.concat([finished_indices, topk_running_indices], axis=1), best)
        is_finished = _gather_beams(tf.concat([is_finished, just_finished], axis=1), best)

        # the cache follows the surviving beams; then the new last tokens go through the model
        cache = run.cache(cache_state)
        cache.reorder(tf.reshape(running_indices[:, :, t], [-1]))
        heuristic_open = _early_stop_heuristic(
            heuristic_open, running_scores, finished_scores, is_finished, cur_len + 1, total, prompt_length,
            early_stopping, length_penalty,
        )
        logits, cache_state = run.forward(tf.reshape(running[:, :, cur_len], [-1]), t, cache.to_state())
        return (t + 1, running, running_scores, running_indices, finished_seqs, finished_scores,
                finished_indices, is_finished, heuristic_open, hits, logits, cache_state, scores)

    running = tf.reshape(run.tokens, [batch, num_beams, total])
    running = tf.where(tf.range(total) < prompt_length, running, fill)
    running_scores = tf.concat([tf.zeros([batch, 1]), tf.fill([batch, num_beams - 1], -1.0e9)], axis=1)
    indices = tf.fill([batch, num_beams, new_tokens], -1)
    state = (
        tf.constant(0), running, running_scores, indices,
        running, tf.fill([batch, num_beams], -1.0e9), indices,
        tf.zeros([batch, num_beams], tf.bool), tf.ones([batch, 1], tf.bool), tf.zeros([batch, beams_to_keep], tf.bool),
        run.first_logits, run.cache_state, _scores_buffer(output_scores, new_tokens, run.first_logits),
    )
    final = tf.while_loop(cond, body, state, maximum_iterations=new_tokens)
    finished_seqs, finished_scores, finished_indices, scores = final[4], final[5], final[6], final[12]
    keep = num_return_sequences
    beam_indices = flatten(finished_indices[:, :keep])
    return BeamResult(
        sequences=flatten(finished_seqs[:, :keep]),
        sequences_scores=tf.reshape(finished_scores[:, :keep], [-1]),
        beam_indices=beam_indices,
        steps=tf.reduce_max(tf.reduce_sum(tf.cast(beam_indices >= 0, tf.int32), axis=1)),
        scores=scores,
    )


def _early_stop_heuristic(open_, running_scores, finished_scores, is_finished, cur_len, max_length, prompt_length,
                          early_stopping, length_penalty):
    """transformers' `_check_early_stop_heuristic`: whether the best running beam could still beat the worst
    finished one ([batch, 1] bool; once False it stays False)."""
    if early_stopping == "never" and length_penalty > 0.0:
        best_length = max_length - prompt_length
    else:
        best_length = cur_len - prompt_length
    best_running = running_scores[:, :1] / _length_penalty(best_length, length_penalty)
    worst_finished = tf.where(is_finished, tf.reduce_min(finished_scores, axis=1, keepdims=True), -1.0e9)
    return open_ & tf.reduce_any(best_running > worst_finished, axis=-1, keepdims=True)


def _length_penalty(length, penalty):
    """length ** penalty as transformers divides by it: computed in double, applied in float32."""
    return tf.cast(tf.cast(length, tf.float64) ** penalty, tf.float32)
