"""Encoder–decoder generate() (T5, BART) against PyTorch transformers' generate on the same weights.

Greedy decoding and beam search must give identical tokens on right-padded source batches, with the options
summarization and translation use (no_repeat_ngram_size, forced BOS / EOS tokens, length penalty, several
returned sequences); sampling with top_k=1 is greedy; the encoder runs once per call and every source length
of a bucket shares one compiled program; a user's tf.function(generate, jit_compile=True) gives the same tokens.
Each generate() call compiles one small XLA program, so each option is covered once rather than in every
combination.
"""

import numpy as np
import pytest
import tensorflow as tf
from oracle import torch_model
from transformers import BartConfig, T5Config

import tfformers
from tfformers.errors import ConfigError, InputError

NEW_TOKENS = 10

CONFIGS = {
    # T5 v1.1 style: gated GELU, untied head; relative buckets small enough that the distance cap is reached.
    # (PyTorch's T5 generate sizes its cache by num_layers, so the decoder has as many layers as the encoder.)
    "t5": ("T5ForConditionalGeneration", lambda: T5Config(
        vocab_size=99, d_model=24, d_kv=8, d_ff=37, num_layers=3, num_decoder_layers=3, num_heads=3,
        relative_attention_num_buckets=8, relative_attention_max_distance=12, dropout_rate=0.0,
        feed_forward_proj="gated-gelu", tie_word_embeddings=False, pad_token_id=0, eos_token_id=1,
        decoder_start_token_id=0,
    )),
    "bart": ("BartForConditionalGeneration", lambda: BartConfig(
        vocab_size=99, d_model=24, encoder_layers=2, decoder_layers=3, encoder_attention_heads=3,
        decoder_attention_heads=3, encoder_ffn_dim=37, decoder_ffn_dim=37, max_position_embeddings=64,
        dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, pad_token_id=1, bos_token_id=0,
        eos_token_id=2, decoder_start_token_id=2, forced_eos_token_id=2,
        init_std=0.2,  # wider than BART's 0.02, so that random rows generate different tokens
    )),
}


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """name -> (PyTorch model, tfformers model) with the same random weights, built once."""
    cache = {}

    def get(name):
        if name not in cache:
            head, make_config = CONFIGS[name]
            pt = torch_model(head, make_config())
            folder = tmp_path_factory.mktemp(f"seq2seq-{name}")
            pt.save_pretrained(folder)
            cache[name] = (pt, tfformers.TFAutoModelForSeq2SeqLM.from_pretrained(folder))
        return cache[name]

    return get


def right_padded_sources(config, lengths=(9, 6, 4), seed=0):
    """A source batch whose rows have `lengths` tokens (the last one EOS), right-padded as tokenizers do."""
    rng = np.random.default_rng(seed)
    width = max(lengths)
    ids = np.full((len(lengths), width), config.pad_token_id, np.int64)
    mask = np.zeros((len(lengths), width), np.int64)
    for row, length in enumerate(lengths):
        ids[row, :length] = rng.integers(4, config.vocab_size, length)
        ids[row, length - 1] = config.eos_token_id
        mask[row, :length] = 1
    return ids, mask


def torch_generate(pt, ids, mask, max_new_tokens=NEW_TOKENS, **options):
    import torch

    with torch.no_grad():
        return pt.generate(torch.as_tensor(ids), attention_mask=torch.as_tensor(mask), max_new_tokens=max_new_tokens,
                           **options)


def an_early_eos(pt, ids, mask):
    """A token PyTorch's greedy decoding (its EOS banned) emits at step 3 of the first row: used as EOS, rows
    stop early."""
    return int(torch_generate(pt, ids, mask, do_sample=False, min_new_tokens=NEW_TOKENS).numpy()[0, 3])


def _options(case_options, pt, ids, mask):
    options = dict(case_options)
    eos = options.pop("eos", None)
    if eos:
        token = an_early_eos(pt, ids, mask)
        options["eos_token_id"] = [token, 3] if eos == "list" else token
    return options


GREEDY_CASES = {
    "plain": {},
    "summarization": {"no_repeat_ngram_size": 2, "forced_bos_token_id": 5, "forced_eos_token_id": 2,
                      "min_new_tokens": 3, "eos": True},
}


@pytest.mark.parametrize("case", list(GREEDY_CASES))
@pytest.mark.parametrize("name", list(CONFIGS))
def test_greedy_is_token_identical_to_torch(name, case, pair):
    pt, model = pair(name)
    ids, mask = right_padded_sources(model.config)
    options = _options(GREEDY_CASES[case], pt, ids, mask)
    expected = torch_generate(pt, ids, mask, do_sample=False, return_dict_in_generate=True, output_scores=True,
                              **options)
    ours = model.generate(ids, attention_mask=mask, max_new_tokens=NEW_TOKENS, return_dict_in_generate=True,
                          output_scores=True, **options)
    assert type(ours).__name__ == "GenerateEncoderDecoderOutput"
    np.testing.assert_array_equal(np.asarray(ours.sequences), expected.sequences.numpy())
    for step, (score, reference) in enumerate(zip(ours.scores, expected.scores)):
        score, reference = np.asarray(score), reference.numpy()
        np.testing.assert_array_equal(np.isinf(score), np.isinf(reference), err_msg=f"step {step}")
        finite = np.isfinite(reference)
        np.testing.assert_allclose(score[finite], reference[finite], atol=1e-4, err_msg=f"step {step}")


BEAM_CASES = {
    "default": {"num_beams": 3},
    "summarization": {"num_beams": 4, "num_return_sequences": 2, "no_repeat_ngram_size": 3, "length_penalty": 2.0,
                      "early_stopping": True, "forced_bos_token_id": 5, "forced_eos_token_id": 2, "eos": "list"},
}


@pytest.mark.parametrize("case", list(BEAM_CASES))
@pytest.mark.parametrize("name", list(CONFIGS))
def test_beam_search_is_token_identical_to_torch(name, case, pair):
    pt, model = pair(name)
    ids, mask = right_padded_sources(model.config)
    options = _options(BEAM_CASES[case], pt, ids, mask)
    expected = torch_generate(pt, ids, mask, do_sample=False, return_dict_in_generate=True, output_scores=True,
                              **options)
    ours = model.generate(ids, attention_mask=mask, max_new_tokens=NEW_TOKENS, return_dict_in_generate=True,
                          output_scores=True, **options)
    assert type(ours).__name__ == "GenerateBeamEncoderDecoderOutput"
    np.testing.assert_array_equal(np.asarray(ours.sequences), expected.sequences.numpy())
    np.testing.assert_allclose(np.asarray(ours.sequences_scores), expected.sequences_scores.numpy(), atol=1e-5)
    np.testing.assert_array_equal(np.asarray(ours.beam_indices), expected.beam_indices.numpy())


def test_sampling_with_top_k_1_is_greedy_and_seeds_reproduce(pair):
    _, model = pair("t5")
    ids, mask = right_padded_sources(model.config)
    greedy = model.generate(ids, attention_mask=mask, max_new_tokens=NEW_TOKENS)
    sampled = model.generate(ids, attention_mask=mask, max_new_tokens=NEW_TOKENS, do_sample=True, top_k=1, seed=3)
    np.testing.assert_array_equal(np.asarray(sampled), np.asarray(greedy))

    def sample(seed):
        return np.asarray(model.generate(ids, attention_mask=mask, max_new_tokens=NEW_TOKENS, do_sample=True,
                                         top_k=0, seed=seed))

    np.testing.assert_array_equal(sample(7), sample(7))
    assert not np.array_equal(sample(7), sample(8))


def test_one_program_per_source_bucket_and_the_encoder_runs_once(pair, monkeypatch):
    """Sources of 9 and 5 tokens share the 32-token bucket's program; inside it the encoder is traced once."""
    pt, model = pair("bart")
    encoder = model.get_encoder()
    calls = []
    original = type(encoder).call

    def counting_call(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(type(encoder), "call", counting_call)
    model.__dict__.pop("_tfformers_generate_functions", None)
    ids, mask = right_padded_sources(model.config)
    first = model.generate(ids, attention_mask=mask, max_new_tokens=4, num_beams=2)
    second = model.generate(ids[:, :5], attention_mask=mask[:, :5], max_new_tokens=4, num_beams=2)
    assert len(model.__dict__["_tfformers_generate_functions"]) == 1
    assert len(calls) == 1  # one trace, one encoder call in it
    expected = torch_generate(pt, ids[:, :5], mask[:, :5], max_new_tokens=4, num_beams=2).numpy()
    np.testing.assert_array_equal(np.asarray(second), expected)
    assert np.asarray(first).shape[0] == 3


def test_decoder_rows_of_one_source_share_its_cross_attention_keys():
    """generate() keeps the encoder's output and cross-attention keys once per source; the attention of a
    source's beams over them equals attention over keys repeated per beam (the layout PyTorch decodes with)."""
    from tfformers.layers.attention import scaled_dot_product_attention
    from tfformers.layers.masks import attention_bias

    rng = np.random.default_rng(0)
    items, beams, heads, source, head_dim = 2, 3, 4, 5, 8
    query = tf.constant(rng.normal(size=(items * beams, heads, 1, head_dim)), tf.float32)
    key, value = (tf.constant(rng.normal(size=(items, heads, source, head_dim)), tf.float32) for _ in range(2))
    bias = attention_bias(tf.constant([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]))  # [items, 1, 1, source]
    shared = scaled_dot_product_attention(query, key, value, bias)
    repeated = scaled_dot_product_attention(
        query, *(tf.repeat(x, beams, axis=0) for x in (key, value, bias))
    )
    for got, want in zip(shared, repeated):
        assert got.shape == want.shape
        np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-6)
    assert np.all(shared[1].numpy()[:beams, :, :, 3:] == 0)  # the first source's padding stays masked


def test_generate_inside_a_users_compiled_function(pair):
    """transformers 4.x's `tf.function(model.generate, jit_compile=True)`: the sequences come back padded
    to the full length; the tokens equal the eager call's."""
    _, model = pair("t5")
    ids, mask = right_padded_sources(model.config)
    eager = np.asarray(model.generate(ids, attention_mask=mask, max_new_tokens=NEW_TOKENS, num_beams=2))
    compiled = tf.function(model.generate, jit_compile=True)
    traced = compiled(tf.constant(ids, tf.int32), attention_mask=tf.constant(mask, tf.int32),
                      max_new_tokens=NEW_TOKENS, num_beams=2).numpy()
    assert traced.shape == (3, 1 + NEW_TOKENS)
    pad = model.generation_config.pad_token_id
    padded = np.full_like(traced, pad)
    padded[:, :eager.shape[1]] = eager
    np.testing.assert_array_equal(traced, padded)


def test_bad_requests_get_clear_errors(pair):
    _, model = pair("bart")
    ids, mask = right_padded_sources(model.config)
    with pytest.raises(InputError, match="max_position_embeddings=64"):
        model.generate(np.ones((1, 65), np.int32), max_new_tokens=2)
    with pytest.raises(InputError, match="max_position_embeddings=64"):
        model.generate(ids, attention_mask=mask, max_new_tokens=64)
    with pytest.raises(InputError, match="token id 99"):
        model.generate(np.array([[5, 99, 2]]), max_new_tokens=2)
    with pytest.raises(ConfigError, match="encoder_no_repeat_ngram_size"):
        model.generate(ids, attention_mask=mask, max_new_tokens=2, encoder_no_repeat_ngram_size=2)
    start = model.generation_config.decoder_start_token_id
    bos, config_start = model.generation_config.bos_token_id, model.config.decoder_start_token_id
    try:
        model.generation_config.decoder_start_token_id = None
        model.generation_config.bos_token_id = None
        model.config.decoder_start_token_id = None
        with pytest.raises(ConfigError, match="decoder_start_token_id"):
            model.generate(ids, attention_mask=mask, max_new_tokens=2)
    finally:
        model.generation_config.decoder_start_token_id = start
        model.generation_config.bos_token_id = bos
        model.config.decoder_start_token_id = config_start


def test_summarization_and_translation_pipelines(tmp_path_factory):
    """The 4.x pipelines: the prefix and generation defaults of `task_specific_params`, answers decoded with
    special tokens skipped, equal to generate() + batch_decode on the same inputs."""
    from seq2seq_vocabularies import bbc_lines, t5_vocabulary

    tokenizer = tfformers.AutoTokenizer.from_pretrained(t5_vocabulary(tmp_path_factory))
    config = T5Config(
        vocab_size=len(tokenizer), d_model=16, d_kv=4, d_ff=24, num_layers=1, num_heads=2, pad_token_id=0,
        eos_token_id=1, decoder_start_token_id=0, dropout_rate=0.0,
        task_specific_params={"summarization": {"prefix": "summarize: ", "num_beams": 2, "max_new_tokens": 6,
                                                "no_repeat_ngram_size": 2},
                              "translation_en_to_de": {"prefix": "translate English to German: ", "max_new_tokens": 5}},
    )
    model = tfformers.TFAutoModelForSeq2SeqLM.from_config(config)
    texts = bbc_lines()[:2]
    summarizer = tfformers.pipeline("summarization", model=model, tokenizer=tokenizer, batch_size=2)
    encoded = tokenizer(["summarize: " + text for text in texts], padding=True, return_tensors="np")
    expected = tokenizer.batch_decode(model.generate(**encoded, num_beams=2, max_new_tokens=6, no_repeat_ngram_size=2),
                                      skip_special_tokens=True)
    assert summarizer(texts) == [{"summary_text": text} for text in expected]

    translator = tfformers.pipeline("translation_en_to_de", model=model, tokenizer=tokenizer)
    encoded = tokenizer(["translate English to German: " + texts[0]], return_tensors="np")
    expected = tokenizer.batch_decode(model.generate(**encoded, max_new_tokens=5), skip_special_tokens=True)
    assert translator(texts[0]) == [{"translation_text": expected[0]}]
    with pytest.raises(InputError, match="cannot read inputs of type int"):
        translator(3)
    with pytest.raises(InputError, match="takes texts"):
        translator([3])
