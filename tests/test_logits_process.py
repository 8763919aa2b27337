"""tfformers.generation.logits_process against transformers' own PyTorch processors, compiled with XLA.

The oracle is the list `GenerationMixin._get_logits_processor` builds for the same GenerationConfig on a
tiny PyTorch GPT-2, applied to `input_ids = tokens[:, start:length]` with the prompt's attention mask (the
same call generate() makes). Ours runs under `tf.function(jit_compile=True)` with `length` a tensor
argument: one trace serves every step. The history has bucket padding (start > 0), user left-padding
(one row all padding), and junk in every slot outside [start, length), which must not be read.
"""

import copy

import numpy as np
import pytest
import tensorflow as tf
import torch
from transformers import GenerationConfig, GPT2Config, GPT2LMHeadModel, LogitsProcessorList

from tfformers.errors import ConfigError, InputError
from tfformers.generation.logits_process import History, logits_processor

VOCAB = 64
PAD, BOS = 0, 1
EOS = [2, 7]
# -inf, +inf and NaN patterns must be identical; finite scores agree to |Δ| <= 1e-6 * max(1, |score|).
TOLERANCE = 1e-6


class Layout:
    """A buffer of `slots` slots: bucket padding [0, start), the prompt [start, prompt_end), then generation."""

    def __init__(self, slots, start, prompt_end, user_padding, lengths, alphabet, rows=4):
        self.slots, self.start, self.prompt_end = slots, start, prompt_end
        self.user_padding = user_padding  # per row: left-padding tokens inside the prompt
        self.lengths = lengths  # three steps, the first one at length == prompt_end
        self.alphabet = alphabet  # token ids drawn from [0, alphabet), small so that n-grams repeat
        self.rows = rows


# cur_len (= length - start) is 6, 10, 14 for the default layout; 1, 2, 5 for the one-token prompt.
LAYOUTS = {
    "default": Layout(slots=20, start=3, prompt_end=9, user_padding=[0, 2, 5, 6], lengths=(9, 13, 17), alphabet=6),
    "one_token_prompt": Layout(slots=12, start=3, prompt_end=4, user_padding=[0, 0, 1, 0], lengths=(4, 5, 8),
                               alphabet=10),
    # Three token ids only: n-grams repeat often.
    "repetitive": Layout(slots=20, start=3, prompt_end=9, user_padding=[0, 2, 5, 6], lengths=(9, 13, 17),
                         alphabet=3),
    # Ids past the logits' width (an embedding larger than the LM head): transformers skips them.
    "ids_past_vocab": Layout(slots=20, start=3, prompt_end=9, user_padding=[0, 2, 0, 1], lengths=(9, 13, 17),
                             alphabet=VOCAB + 6),
}


def make_history(layout, seed=0):
    """numpy tokens/mask [rows, slots]: junk in the bucket padding, user pads at each prompt's left; the slots
    past a step's length hold later tokens, which that step must not read."""
    rng = np.random.RandomState(seed)
    rows, slots = layout.rows, layout.slots
    tokens = rng.randint(0, layout.alphabet, size=(rows, slots)).astype(np.int32)
    mask = np.ones((rows, slots), np.int32)
    tokens[:, : layout.start] = rng.randint(0, VOCAB, size=(rows, layout.start))  # junk no one may read
    mask[:, : layout.start] = 0
    for row, padding in enumerate(layout.user_padding):
        tokens[row, layout.start : layout.start + padding] = PAD
        mask[row, layout.start : layout.start + padding] = 0
    return tokens, mask


def make_logits(rows, seed=1, invalid_values=False):
    logits = (np.random.RandomState(seed).randn(rows, VOCAB) * 2).astype(np.float32)
    if invalid_values:
        logits[0, 5], logits[1, 6], logits[2, 8], logits[3, 9] = np.inf, -np.inf, np.nan, np.inf
    return logits


@pytest.fixture(scope="module")
def torch_model():
    config = GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=VOCAB, bos_token_id=BOS, eos_token_id=EOS[0])
    return GPT2LMHeadModel(config).eval()


def oracle_processors(model, config, layout, tokens, mask):
    """transformers' processor list, built as generate() builds it for this prompt."""
    config = copy.deepcopy(config)
    model._prepare_special_tokens(config, device="cpu")
    prompt = slice(layout.start, layout.prompt_end)
    return model._get_logits_processor(
        generation_config=config,
        input_ids_seq_length=layout.prompt_end - layout.start,
        encoder_input_ids=torch.as_tensor(tokens[:, prompt], dtype=torch.long),
        prefix_allowed_tokens_fn=None,
        logits_processor=LogitsProcessorList(),
        device="cpu",
        model_kwargs={"attention_mask": torch.as_tensor(mask[:, prompt], dtype=torch.long)},
    )


def assert_same_scores(ours, theirs, where):
    for name, pattern in (("-inf", np.isneginf), ("+inf", np.isposinf), ("NaN", np.isnan)):
        differ = np.argwhere(pattern(ours) != pattern(theirs))
        assert differ.size == 0, f"{where}: {name} differs at (row, token) {differ[:5].tolist()}"
    finite = np.isfinite(theirs)
    np.testing.assert_allclose(ours[finite], theirs[finite], rtol=TOLERANCE, atol=TOLERANCE, err_msg=where)


def run_compiled(processes, logits, layout_name):
    """Run {name: process} as ONE XLA program (one compilation serves them all; each process still sees only
    its own logits) at the layout's three lengths, `length` being a tensor argument: {name: [scores per length]}."""
    layout = LAYOUTS[layout_name]
    tokens, mask = make_history(layout)
    compiled = tf.function(
        lambda logits, history: {name: process(logits[name], history) for name, process in processes.items()},
        jit_compile=True,
    )
    history = History(tf.constant(tokens), tf.constant(mask), tf.constant(layout.start),
                      tf.constant(layout.prompt_end), None)
    scores = {name: [] for name in processes}
    for length in layout.lengths:
        outputs = compiled({name: tf.constant(logits[name]) for name in processes},
                           history._replace(length=tf.constant(length)))
        for name in processes:
            scores[name].append(outputs[name].numpy())
    assert compiled.experimental_get_tracing_count() == 1  # one program for every step
    return scores


def assert_matches_oracle(model, config, layout_name, process, ours, logits):
    """Our scores at the layout's lengths against transformers' processor list applied to input_ids."""
    layout = LAYOUTS[layout_name]
    tokens, mask = make_history(layout)
    theirs = oracle_processors(model, config, layout, tokens, mask)
    assert len(process.processors) == len(theirs), (process.processors, theirs)
    for length, our_scores in zip(layout.lengths, ours):
        input_ids = torch.as_tensor(tokens[:, layout.start : length], dtype=torch.long)
        expected = theirs(input_ids, torch.as_tensor(logits).clone()).numpy()
        assert_same_scores(our_scores, expected, f"length={length} (cur_len={length - layout.start})")


def check_against_oracle(model, config, layout_name="default", num_beams=1, log_softmaxed=False):
    """Compile our processors for one config and compare them with transformers' at three lengths."""
    logits = make_logits(LAYOUTS[layout_name].rows)
    if log_softmaxed:  # beam search hands log-probabilities to the processors
        logits = tf.nn.log_softmax(logits).numpy()
    process = logits_processor(config, vocab_size=VOCAB, num_beams=num_beams)
    ours = run_compiled({"config": process}, {"config": logits}, layout_name)["config"]
    assert_matches_oracle(model, config, layout_name, process, ours, logits)


BANNED = list(range(10, 40))

# One option at a time (with what it needs to apply), each against the oracle at three lengths.
SINGLE_OPTIONS = {
    "repetition_penalty": (dict(repetition_penalty=1.3), "default"),
    "repetition_penalty_reward": (dict(repetition_penalty=0.7), "default"),
    "no_repeat_ngram_size_1": (dict(no_repeat_ngram_size=1), "repetitive"),
    "no_repeat_ngram_size_2": (dict(no_repeat_ngram_size=2), "repetitive"),
    "no_repeat_ngram_size_3": (dict(no_repeat_ngram_size=3), "repetitive"),
    "no_repeat_ngram_longer_than_prompt": (dict(no_repeat_ngram_size=8), "default"),
    "encoder_repetition_penalty": (dict(encoder_repetition_penalty=1.4), "default"),
    "encoder_no_repeat_ngram_size_2": (dict(encoder_no_repeat_ngram_size=2), "repetitive"),
    "encoder_no_repeat_ngram_size_3": (dict(encoder_no_repeat_ngram_size=3), "repetitive"),
    "bad_words_ids": (dict(bad_words_ids=[[5], [EOS[1]], [3, 4], [1, 2, 3], [9, 9], [2, 6, 6, 1]],
                           eos_token_id=EOS), "default"),
    "sequence_bias": (dict(sequence_bias=[[[4], -2.5], [[3, 5], 1.5], [[3, 6], 4.0], [[1, 2, 6], -0.75],
                                          [[8, 6], 0.5]]), "default"),
    "min_length": (dict(min_length=10, eos_token_id=EOS), "default"),
    "min_new_tokens": (dict(min_new_tokens=5, eos_token_id=3), "default"),
    "forced_bos_token_id": (dict(forced_bos_token_id=BOS), "one_token_prompt"),
    "forced_eos_token_id": (dict(forced_eos_token_id=EOS, max_length=11), "default"),
    "remove_invalid_values": (dict(remove_invalid_values=True), "default"),
    "exponential_decay_length_penalty": (dict(exponential_decay_length_penalty=(2, 1.5), eos_token_id=EOS,
                                              max_length=30), "default"),
    "suppress_tokens": (dict(suppress_tokens=[4, 11, 63, 70]), "default"),
    "begin_suppress_tokens": (dict(begin_suppress_tokens=[2, 9]), "default"),
    "begin_suppress_after_forced_bos": (dict(begin_suppress_tokens=[2, 9], forced_bos_token_id=BOS),
                                        "one_token_prompt"),
    "ids_past_vocab": (dict(repetition_penalty=1.3, no_repeat_ngram_size=2, bad_words_ids=[[3, 4], [5]]),
                       "ids_past_vocab"),
    "temperature": (dict(do_sample=True, temperature=0.7), "default"),
    "top_k": (dict(do_sample=True, top_k=5), "default"),
    "top_p": (dict(do_sample=True, top_p=0.8), "default"),
    "min_p": (dict(do_sample=True, min_p=0.1), "default"),
    "typical_p": (dict(do_sample=True, typical_p=0.6), "default"),
    "epsilon_cutoff": (dict(do_sample=True, epsilon_cutoff=0.02), "default"),
    "eta_cutoff": (dict(do_sample=True, eta_cutoff=0.05), "default"),
    "top_h": (dict(do_sample=True, top_h=0.4), "default"),
    "renormalize_logits": (dict(renormalize_logits=True), "default"),
    # Warpers after processors see -inf scores (entropies must count them as 0, not NaN).
    "typical_p_after_bans": (dict(do_sample=True, typical_p=0.6, suppress_tokens=BANNED), "default"),
    "eta_cutoff_after_bans": (dict(do_sample=True, eta_cutoff=0.05, suppress_tokens=BANNED), "default"),
    "top_h_after_bans": (dict(do_sample=True, top_h=0.4, suppress_tokens=BANNED), "default"),
}


def single_option_logits(name):
    return make_logits(LAYOUTS[SINGLE_OPTIONS[name][1]].rows, invalid_values=name == "remove_invalid_values")


def single_option_process(name):
    return logits_processor(GenerationConfig(**SINGLE_OPTIONS[name][0]), vocab_size=VOCAB)


@pytest.fixture(scope="module")
def single_option_scores():
    """name -> our compiled scores at three lengths; all options of a layout share one XLA program."""
    by_layout = {}

    def scores(name):
        layout_name = SINGLE_OPTIONS[name][1]
        if layout_name not in by_layout:
            names = [other for other, (_, layout) in SINGLE_OPTIONS.items() if layout == layout_name]
            processes = {other: single_option_process(other) for other in names}
            by_layout[layout_name] = run_compiled(processes, {other: single_option_logits(other) for other in names},
                                                  layout_name)
        return by_layout[layout_name][name]

    return scores


@pytest.mark.parametrize("name", SINGLE_OPTIONS)
def test_single_option_matches_transformers(torch_model, single_option_scores, name):
    options, layout_name = SINGLE_OPTIONS[name]
    assert_matches_oracle(torch_model, GenerationConfig(**options), layout_name, single_option_process(name),
                          single_option_scores(name), single_option_logits(name))


def test_sequences_longer_than_input_ids_do_not_match(torch_model):
    """On the first step of a one-token prompt, a two-token prefix would reach into the bucket padding."""
    layout = LAYOUTS["one_token_prompt"]
    tokens, _ = make_history(layout)
    straddling = tokens[0, layout.start - 1 : layout.start + 1].tolist()  # bucket junk + first prompt token
    config = GenerationConfig(bad_words_ids=[straddling + [9]], sequence_bias=[[straddling + [8], 3.0]])
    check_against_oracle(torch_model, config, "one_token_prompt")


EVERYTHING = dict(
    sequence_bias=[[[4], -2.5], [[3, 5], 1.5]],
    encoder_repetition_penalty=1.1,
    repetition_penalty=1.3,
    no_repeat_ngram_size=3,
    encoder_no_repeat_ngram_size=4,
    bad_words_ids=[[5], [3, 4], [2, 6, 6, 1]],
    min_length=8,
    min_new_tokens=2,
    forced_eos_token_id=EOS[0],
    max_length=11,
    exponential_decay_length_penalty=(3, 1.2),
    suppress_tokens=[11],
    begin_suppress_tokens=[9],
    eos_token_id=EOS,
    do_sample=True,
    temperature=0.8,
    top_k=30,
    top_p=0.95,
    min_p=0.02,
    typical_p=0.98,
    epsilon_cutoff=0.001,
    eta_cutoff=0.001,
    renormalize_logits=True,
)


def test_all_options_together_match_transformers(torch_model):
    check_against_oracle(torch_model, GenerationConfig(**EVERYTHING))


def test_beam_sampling_keeps_a_token_besides_eos(torch_model):
    """num_beams > 1: transformers' warpers keep len(eos) + 1 tokens; scores arrive log-softmaxed."""
    config = GenerationConfig(**{**EVERYTHING, "top_k": 1, "top_p": 0.05, "min_p": 0.9}, num_beams=2)
    check_against_oracle(torch_model, config, num_beams=2, log_softmaxed=True)


def test_generate_defaults_match_transformers(torch_model):
    """The config as generate() resolves it: global defaults merged (top_k=50 when sampling)."""
    config = GenerationConfig(do_sample=True, top_p=0.9, eos_token_id=EOS)
    config.update(**GenerationConfig._get_default_generation_params(), defaults_only=True)
    check_against_oracle(torch_model, config)


def test_nothing_to_do_gives_none(torch_model):
    config = GenerationConfig(eos_token_id=EOS)
    config.update(**GenerationConfig._get_default_generation_params(), defaults_only=True)
    layout = LAYOUTS["default"]
    assert len(oracle_processors(torch_model, config, layout, *make_history(layout))) == 0
    assert logits_processor(config, vocab_size=VOCAB) is None


@pytest.mark.parametrize(
    "options, option",
    [
        (dict(guidance_scale=1.5), "guidance_scale"),
        (dict(watermarking_config={"greenlist_ratio": 0.25}), "watermarking_config"),
        (dict(num_beams=4), "num_beams"),
        (dict(do_sample=True, temperature=0.0), "temperature"),
        (dict(do_sample=True, top_k=-3), "top_k"),
        (dict(repetition_penalty=-1.0), "repetition_penalty"),
        (dict(bad_words_ids=[[3, VOCAB]]), "bad_words_ids"),
        (dict(bad_words_ids=[[EOS[0]]], eos_token_id=EOS), "bad_words_ids"),
        (dict(sequence_bias=[[[3], 2]]), "sequence_bias"),
        (dict(forced_eos_token_id=3), "max_length"),
        (dict(forced_bos_token_id=VOCAB + 1), "forced_bos_token_id"),
    ],
)
def test_unsupported_or_invalid_options_raise(options, option):
    with pytest.raises(ConfigError, match=option):
        logits_processor(GenerationConfig(**options), vocab_size=VOCAB)


def test_logits_of_another_width_are_refused():
    process = logits_processor(GenerationConfig(suppress_tokens=[3]), vocab_size=VOCAB)
    tokens, mask = make_history(LAYOUTS["default"])
    history = History(tf.constant(tokens), tf.constant(mask), tf.constant(3), tf.constant(9), tf.constant(9))
    with pytest.raises(InputError, match="vocab_size=64"):
        process(tf.zeros([4, VOCAB + 1]), history)
