"""generate() against PyTorch transformers' generate on the same weights, and the compiled loop's own promises.

Greedy decoding and beam search must give identical tokens (left-padded batches, each logits processor on);
sampling must follow the processed distribution; a cached step-by-step forward must equal the full one.
Every generate() call here compiles one small XLA program (a few seconds), so the cases are chosen to
cover each option once rather than every combination.
"""

import json
import math
import os
import sys

import numpy as np
import pytest
import tensorflow as tf
from architectures import DECODERS, config_for
from oracle import torch_model

import tfformers
from tfformers.errors import ConfigError, InputError

GENERATORS = {"gpt2": "GPT2LMHeadModel", "llama": "LlamaForCausalLM"}
NEW_TOKENS = 12


def _arch(name):
    return next(arch for arch in DECODERS if arch.name == name)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """name -> (PyTorch model, tfformers model) with the same random weights, built once."""
    cache = {}

    def get(name):
        if name not in cache:
            head = GENERATORS[name]
            pt = torch_model(head, config_for(_arch(name), head))
            folder = tmp_path_factory.mktemp(f"gen-{name}")
            pt.save_pretrained(folder)
            cache[name] = (pt, getattr(tfformers, "TF" + head).from_pretrained(folder))
        return cache[name]

    return get


def left_padded_prompts(vocab_size, lengths=(9, 6, 4), seed=0, pad=0):
    """A batch whose rows have `lengths` real tokens, left-padded with `pad`."""
    rng = np.random.default_rng(seed)
    width = max(lengths)
    ids = np.full((len(lengths), width), pad, np.int64)
    mask = np.zeros((len(lengths), width), np.int64)
    for row, length in enumerate(lengths):
        ids[row, width - length:] = rng.integers(3, vocab_size, length)
        mask[row, width - length:] = 1
    return ids, mask


def torch_generate(pt, ids, mask, **options):
    import torch

    with torch.no_grad():
        out = pt.generate(torch.as_tensor(ids), attention_mask=torch.as_tensor(mask), max_new_tokens=NEW_TOKENS,
                          **options)
    return out


def an_early_eos(pt, ids, mask):
    """A token PyTorch's greedy decoding emits at step 3 of the first row: used as EOS, rows stop early."""
    greedy = torch_generate(pt, ids, mask, do_sample=False).numpy()
    return int(greedy[0, ids.shape[1] + 3])


# ----------------------------------------------------------------------------------- greedy, processors

GREEDY_CASES = {
    "plain": {},
    "eos": {"eos": True},
    "eos-list": {"eos": "list"},
    "repetition_penalty": {"repetition_penalty": 1.5},
    "no_repeat_ngram": {"no_repeat_ngram_size": 2},
    "min_new_tokens": {"eos": True, "min_new_tokens": 6},
    "min_length": {"eos": True, "min_length": 15},
    "bad_words": {"bad_words_ids": [[5], [17, 23], [40, 41, 42]]},
    "suppress": {"suppress_tokens": [7, 8, 9], "begin_suppress_tokens": [10, 11]},
    "forced_bos_eos": {"forced_bos_token_id": 1, "forced_eos_token_id": 2},
}


def _options(case, pt, ids, mask):
    options = dict(GREEDY_CASES[case])
    eos = options.pop("eos", None)
    if eos:
        token = an_early_eos(pt, ids, mask)
        options["eos_token_id"] = [token, 3] if eos == "list" else token
    return options


@pytest.mark.parametrize("case", list(GREEDY_CASES))
@pytest.mark.parametrize("name", list(GENERATORS))
def test_greedy_is_token_identical_to_torch(name, case, pair):
    pt, model = pair(name)
    ids, mask = left_padded_prompts(model.config.vocab_size)
    options = _options(case, pt, ids, mask)
    expected = torch_generate(pt, ids, mask, do_sample=False, **options).numpy()
    ours = model.generate(ids, attention_mask=mask, max_new_tokens=NEW_TOKENS, **options)
    np.testing.assert_array_equal(np.asarray(ours), expected)


# ------------------------------------------------------------------------------------------ beam search

BEAM_CASES = {
    "default": {"num_beams": 3},
    "returns-all-early": {"num_beams": 3, "num_return_sequences": 3, "early_stopping": True, "eos": True},
    "never-long": {"num_beams": 2, "early_stopping": "never", "length_penalty": 2.0, "eos": True},
    "short-ngram": {"num_beams": 4, "num_return_sequences": 2, "length_penalty": -0.5, "no_repeat_ngram_size": 2,
                    "eos": "list"},
}


@pytest.mark.parametrize("case", list(BEAM_CASES))
@pytest.mark.parametrize("name", list(GENERATORS))
def test_beam_search_is_token_identical_to_torch(name, case, pair):
    pt, model = pair(name)
    ids, mask = left_padded_prompts(model.config.vocab_size)
    options = dict(BEAM_CASES[case])
    eos = options.pop("eos", None)
    if eos:
        token = an_early_eos(pt, ids, mask)
        options["eos_token_id"] = [token, 3] if eos == "list" else token
    expected = torch_generate(pt, ids, mask, do_sample=False, return_dict_in_generate=True, output_scores=True,
                              **options)
    ours = model.generate(ids, attention_mask=mask, max_new_tokens=NEW_TOKENS, return_dict_in_generate=True,
                          output_scores=True, **options)
    np.testing.assert_array_equal(np.asarray(ours.sequences), expected.sequences.numpy())
    np.testing.assert_allclose(np.asarray(ours.sequences_scores), expected.sequences_scores.numpy(), atol=1e-5)
    np.testing.assert_array_equal(np.asarray(ours.beam_indices), expected.beam_indices.numpy())


# --------------------------------------------------------------------------------------------- sampling


def test_sampling_with_top_k_1_is_greedy_and_seeds_reproduce(pair):
    _, model = pair("llama")
    ids, mask = left_padded_prompts(model.config.vocab_size)
    greedy = model.generate(ids, attention_mask=mask, max_new_tokens=NEW_TOKENS)
    sampled = model.generate(ids, attention_mask=mask, max_new_tokens=NEW_TOKENS, do_sample=True, top_k=1, seed=3)
    np.testing.assert_array_equal(np.asarray(sampled), np.asarray(greedy))

    def sample(seed):
        return np.asarray(model.generate(ids, attention_mask=mask, max_new_tokens=NEW_TOKENS, do_sample=True,
                                         top_k=0, seed=seed))

    np.testing.assert_array_equal(sample(7), sample(7))
    assert not np.array_equal(sample(7), sample(8))


def _chi_square_limit(df, z=3.09):
    """The chi-square quantile at p = 0.001 (Wilson-Hilferty)."""
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


@pytest.mark.parametrize("warpers", [{"temperature": 0.7, "top_k": 20}, {"top_p": 0.8, "min_p": 0.02, "top_k": 0}])
def test_sampled_tokens_follow_the_processed_distribution(warpers, pair):
    """Draws the first token 4000 times; its frequencies fit softmax(processed scores), whose values equal
    PyTorch's processed scores for the same prompt."""
    pt, model = pair("gpt2")
    draws = 4000
    prompt = np.array([[11, 57, 102, 33, 8]])
    out = model.generate(np.repeat(prompt, draws, axis=0), max_new_tokens=1, do_sample=True, seed=0,
                         return_dict_in_generate=True, output_scores=True, **warpers)
    scores = out.scores[0].numpy()[0]
    expected = torch_generate(pt, prompt, np.ones_like(prompt), do_sample=True, return_dict_in_generate=True,
                              output_scores=True, **warpers).scores[0].numpy()[0]
    np.testing.assert_array_equal(np.isinf(scores), np.isinf(expected))
    np.testing.assert_allclose(scores[np.isfinite(scores)], expected[np.isfinite(expected)], atol=1e-5)

    probabilities = tf.nn.softmax(scores).numpy()
    counts = np.bincount(np.asarray(out.sequences)[:, -1], minlength=probabilities.size)
    assert counts[probabilities == 0].sum() == 0, "a filtered token was sampled"
    expected_counts = probabilities * draws
    big = expected_counts >= 5  # chi-square needs expected counts >= 5: pool the rest
    observed = np.append(counts[big], counts[~big].sum())
    predicted = np.append(expected_counts[big], expected_counts[~big].sum())
    keep = predicted > 0
    statistic = float((((observed - predicted) ** 2)[keep] / predicted[keep]).sum())
    assert statistic < _chi_square_limit(keep.sum() - 1), statistic


# ------------------------------------------------------------------------------------------ the cache


@pytest.mark.parametrize("arch", DECODERS, ids=lambda arch: arch.name)
def test_cached_step_by_step_forward_equals_full_forward(arch):
    """Prefill 4 tokens into a static cache, then feed one token at a time: every real position's logits
    equal the full forward's to 1e-5 (dynamic RoPE is checked within max_position_embeddings, where it
    is static: beyond, transformers and tfformers both rescale already-cached keys' positions)."""
    config = arch.make_config(max_position_embeddings=64)
    head = next(h for h in arch.heads if h.endswith(("LMHeadModel", "ForCausalLM")))
    model = tfformers.TFAutoModelForCausalLM.from_config(config)
    assert type(model).__name__ == "TF" + head
    ids, mask = left_padded_prompts(config.vocab_size, lengths=(10, 7, 3))
    full = model({"input_ids": ids, "attention_mask": mask}).logits.numpy()

    cache = tfformers.StaticCache.allocate(config, ids.shape[0], ids.shape[1])
    steps = [model({"input_ids": ids[:, :4], "attention_mask": mask}, cache=cache).logits.numpy()]
    for slot in range(4, ids.shape[1]):
        steps.append(model({"input_ids": ids[:, slot:slot + 1], "attention_mask": mask}, cache=cache).logits.numpy())
    stepped = np.concatenate(steps, axis=1)
    real = mask.astype(bool)
    np.testing.assert_allclose(stepped[real], full[real], atol=1e-5)


def test_generate_traced_into_a_users_xla_function(pair):
    """transformers 4.x's pattern: `tf.function(model.generate, jit_compile=True)`; the sequences come back
    padded to prompt + max_new_tokens, as 4.x returned them."""
    pt, model = pair("gpt2")
    ids, mask = left_padded_prompts(model.config.vocab_size)
    xla_generate = tf.function(model.generate, jit_compile=True)
    ours = xla_generate(tf.constant(ids, tf.int32), attention_mask=tf.constant(mask, tf.int32),
                        max_new_tokens=NEW_TOKENS).numpy()
    expected = torch_generate(pt, ids, mask, do_sample=False).numpy()
    assert ours.shape == (3, ids.shape[1] + NEW_TOKENS)
    np.testing.assert_array_equal(ours[:, :expected.shape[1]], expected)


def test_forced_eos_follows_each_prompt_length_in_a_bucket(pair):
    """forced_eos_token_id depends on the prompt length: prompts of one bucket must not share its step."""
    pt, model = pair("llama")
    for length in (5, 8):
        ids, mask = left_padded_prompts(model.config.vocab_size, lengths=(length,), seed=length)
        expected = torch_generate(pt, ids, mask, do_sample=False, forced_eos_token_id=4).numpy()
        ours = model.generate(ids, attention_mask=mask, max_new_tokens=NEW_TOKENS, forced_eos_token_id=4)
        np.testing.assert_array_equal(np.asarray(ours), expected)


def test_one_program_per_bucket(tmp_path):
    """XLA compiles once per (batch, prompt bucket, max_new_tokens, options): a new prompt length inside a
    known bucket compiles nothing. Counted from XLA's own dumps in a fresh process."""
    from test_xla_compilations import run_counted

    counts = run_counted(tmp_path, "generate", script=__file__)
    assert counts == {"first": 1, "same bucket, other length": 0, "same bucket, other options": 1,
                      "next bucket": 1, "other max_new_tokens": 1, "first again": 0}, counts


def _count_generate_programs():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from tfformers.xla import CompiledPrograms

    model = tfformers.TFAutoModelForCausalLM.from_config(config_for(_arch("gpt2"), "GPT2LMHeadModel"))
    programs, counts, before = CompiledPrograms(), {}, 0
    rng = np.random.default_rng(0)
    for label, length, options in [
        ("first", 5, {"max_new_tokens": 4}),
        ("same bucket, other length", 20, {"max_new_tokens": 4}),
        ("same bucket, other options", 9, {"max_new_tokens": 4, "repetition_penalty": 1.2}),
        ("next bucket", 40, {"max_new_tokens": 4}),
        ("other max_new_tokens", 7, {"max_new_tokens": 6}),
        ("first again", 3, {"max_new_tokens": 4}),
    ]:
        model.generate(rng.integers(3, 200, (2, length)), **options)
        counts[label], before = programs.count() - before, programs.count()
    print(json.dumps(counts))


def test_generation_config_json_is_read_saved_and_overridden(pair, tmp_path):
    """generation_config.json sets the defaults (here 3 new tokens and a repetition penalty); keyword
    arguments override them; save_pretrained writes it back where PyTorch transformers reads it too."""
    import transformers

    _, model = pair("gpt2")
    model.generation_config.max_new_tokens = 3
    model.generation_config.repetition_penalty = 1.3
    model.save_pretrained(tmp_path)
    model.generation_config.max_new_tokens = None
    model.generation_config.repetition_penalty = None
    reloaded = tfformers.TFAutoModelForCausalLM.from_pretrained(tmp_path)
    assert reloaded.generation_config.max_new_tokens == 3
    ids = np.array([[5, 6, 7]])
    assert np.asarray(reloaded.generate(ids)).shape == (1, 3 + 3)
    assert np.asarray(reloaded.generate(ids, max_new_tokens=5)).shape == (1, 3 + 5)
    pt_config = transformers.GenerationConfig.from_pretrained(tmp_path)
    assert pt_config.max_new_tokens == 3 and pt_config.repetition_penalty == 1.3


# -------------------------------------------------------------------------------------------- bad input


def test_bad_generation_requests_name_the_value(pair):
    _, model = pair("gpt2")
    ids, mask = left_padded_prompts(model.config.vocab_size)
    with pytest.raises(InputError, match="max_position_embeddings=64"):
        model.generate(ids, attention_mask=mask, max_new_tokens=60)
    with pytest.raises(InputError, match="prompt has 70 tokens, leaving no room"):
        model.generate(np.ones((1, 70), np.int32), max_new_tokens=2)
    with pytest.raises(InputError, match="token id 999"):
        model.generate(np.array([[1, 999]]), max_new_tokens=2)
    with pytest.raises(ValueError, match=r"num_return_sequences.*\(4\).*num_beams.*\(2\)"):
        model.generate(ids, num_beams=2, num_return_sequences=4)  # transformers' GenerationConfig says so
    with pytest.raises(ConfigError, match="Beam sampling"):
        model.generate(ids, num_beams=2, do_sample=True)
    with pytest.raises(TypeError, match=r"unexpected keyword arguments \['max_new_token'\]"):
        model.generate(ids, max_new_token=3)
    with pytest.raises(InputError, match="shape \\[9\\]"):
        model.generate(ids[0], max_new_tokens=2)
    with pytest.raises(InputError, match="need a pad token"):
        model.generate(ids, attention_mask=mask, max_new_tokens=2, pad_token_id=None, eos_token_id=None)


if __name__ == "__main__":  # run by test_one_program_per_bucket, in a process that dumps XLA programs
    _count_generate_programs()
