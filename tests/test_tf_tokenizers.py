"""In-graph tokenizers (TFBertTokenizer, TFSentencePieceTokenizer, TFAutoTokenizer) against transformers' fast
tokenizers: the same ids on real text (BBC News lines, the same lines with non-ASCII characters inserted, and
crafted hard cases), the same pairs, truncation, padding and masks, inside tf.function, tf.data and a saved
Keras model, and `detokenize` equal to transformers' `decode`. SentencePiece ids equal the sentencepiece
library's; transformers' conversion of the model differs from both only where whitespace runs."""

import functools
import json
import re
import shutil

import keras
import numpy as np
import pytest
import sentencepiece
import tensorflow as tf
from assets import bbc_articles, minilm_dir, mistral_sentencepiece_model
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import TokenizersBackend

from tfformers import (
    AutoTokenizer,
    ConfigError,
    InputError,
    TFAutoTokenizer,
    TFBertTokenizer,
    TFSentencePieceTokenizer,
)

# real strings per family, and as many perturbed ones; every BBC line (12,860) and its perturbed twin:
# benchmarks/tokenizer_parity.py
PARITY_COUNT = 1_000
WHITESPACE_RUN = re.compile(r"^\s|\s\s")  # where SentencePiece and transformers' conversion of it differ

HARD_CASES = [
    "",
    " ",
    "   leading and trailing   ",
    "tabs\tand\nnew lines\r\nand  runs     of spaces",
    "Café naïve résumé façade coöperate",
    "Straße ÀÉÎÕÜ İstanbul ΣΊΣΥΦΟΣ ǅemal ﬁne",
    "北京大学 東京タワー 서울 中文字符混合English",
    "emoji 😀🥰🧡👩‍👩‍👧 and flags 🇬🇧 ok",
    "control\x00chars\x07here\x1b[0m zero\u200bwidth\ufeffbom \ufffd replaced",
    "nbsp\u00a0em\u2003ideographic\u3000line\u2028para\u2029end\x0bvt\x0cff\x85nel",
    "a" * 100,
    "b" * 101,
    "é" * 60 + " " + "ü" * 101,
    "x" * 150 + " short words after a long one",
    "punctuation!!!...,,,;;'\"(){}[]<>$€£¥©®™§¶•—–…«»„“”‘’",
    "don't won't I'm you're it's we've",
    "U.S.A. e.g. 3.14 1,000,000 50% £5bn $10m",
    "hyphen-ated under_score slash/separated back\\slash",
    "مرحبا بالعالم नमस्ते दुनिया สวัสดีชาวโลก Привет мир",
    "e\u0301 o\u0308 combining sequences a\u0300\u0301",
    "\U0001d400\U0001d41a mathematical bold, \U00020000 CJK extension B, \U000e0001 tag",
    "Paris is the [MASK] of France. x[SEP]y [UNK] [PAD]z",  # added tokens in the text
    "<s> written </s> in the text <unk>",
]

# what the perturbations insert, besides random code points
_INSERTS = list("àéîõüçñßøåæœÀÉÎÕÜÇÑİΣςﬁǅ北京東京中文😀🥰🧡👍€£©®™—–…«»„“”‘’") + [
    "\u0301", "\u0308", "\u00a0", "\u2003", "\u3000", "\t", "\n", "\x00", "\x07", "\u200b", "\ufeff", "\ufffd"]


# ------------------------------------------------------------------------------------------- strings


@functools.cache
def bbc_lines():
    """Every non-empty line of the BBC News corpus (12,860), in corpus order."""
    return [line.strip() for text, _ in bbc_articles() for line in text.splitlines() if line.strip()]


def real_strings(count):
    """`count` BBC lines spread over the whole corpus (all five classes)."""
    lines = bbc_lines()
    assert len(lines) >= count, f"the corpus has {len(lines)} lines"
    return lines[:: len(lines) // count][:count]


def perturbed(texts, seed=0):
    """Each text with three characters inserted: accented letters, CJK, emoji, controls, or random code points
    (mostly from the Basic Multilingual Plane, unassigned ones included)."""
    rng = np.random.default_rng(seed)
    result = []
    for text in texts:
        chars = list(text)
        for _ in range(3):
            if rng.random() < 0.5:
                char = _INSERTS[rng.integers(len(_INSERTS))]
            else:
                code_point = int(rng.integers(1, 0x10000 if rng.random() < 0.7 else 0x110000))
                char = "\ufffd" if 0xD800 <= code_point < 0xE000 else chr(code_point)
            chars.insert(int(rng.integers(len(chars) + 1)), char)
        result.append("".join(chars))
    return result


def differing_ids(expected, layer, texts, **options):
    """[(text, expected ids, the layer's ids)] of the texts where the two differ."""
    actual = layer(tf.constant(texts, tf.string), padding=False, **options)["input_ids"].to_list()
    return [(text, e, a) for text, e, a in zip(texts, expected, actual) if e != a]


def assert_ids_equal(expected, layer, texts, **options):
    """The failure names how many rows differ and shows some."""
    different = differing_ids(expected, layer, texts, **options)
    assert not different, f"{len(different)} of {len(texts)} strings differ; first: {different[:3]}"


def assert_same_ids(tokenizer, layer, texts, **options):
    """transformers' ids and the layer's, row by row."""
    assert_ids_equal(tokenizer(texts, **options)["input_ids"], layer, texts, **options)


def assert_same_encoding(tokenizer, layer, texts, pairs=None, **options):
    """transformers' padded arrays (input_ids, token_type_ids, attention_mask) and the layer's (both padding to
    the longest row unless `options` say otherwise)."""
    options = {"padding": "longest", **options}
    expected = tokenizer(texts, pairs, return_tensors="np", **options)
    actual = layer(tf.constant(texts), None if pairs is None else tf.constant(pairs), **options)
    assert sorted(actual) == sorted(expected.keys())
    for name, value in expected.items():
        np.testing.assert_array_equal(actual[name].numpy(), value, err_msg=name)


# ------------------------------------------------------------------------------------------- WordPiece


@pytest.fixture(scope="module")
def minilm_tokenizer():
    return AutoTokenizer.from_pretrained(minilm_dir())


@pytest.fixture(scope="module")
def minilm_layer(minilm_tokenizer):
    return TFBertTokenizer.from_tokenizer(minilm_tokenizer)


BERT_TEMPLATE = processors.TemplateProcessing(
    single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", 101), ("[SEP]", 102)]
)


def wordpiece_tokenizer(post_processor=BERT_TEMPLATE, **normalizer_options):
    """MiniLM's vocabulary with another BertNormalizer (e.g. cased) or post-processor, built with `tokenizers`
    (torch-free)."""
    vocab = json.loads((minilm_dir() / "tokenizer.json").read_text())["model"]["vocab"]
    backend = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    backend.normalizer = normalizers.BertNormalizer(**normalizer_options)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = post_processor
    return TokenizersBackend(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                             sep_token="[SEP]", mask_token="[MASK]")


def test_minilm_known_ids(minilm_layer):
    ids = minilm_layer(tf.constant(["This is an example sentence"]))["input_ids"]
    assert ids.numpy().tolist() == [[101, 2023, 2003, 2019, 2742, 6251, 102]]


def test_wordpiece_bbc_parity(minilm_tokenizer, minilm_layer):
    assert_same_ids(minilm_tokenizer, minilm_layer, real_strings(PARITY_COUNT))


def test_wordpiece_perturbed_parity(minilm_tokenizer, minilm_layer):
    assert_same_ids(minilm_tokenizer, minilm_layer, perturbed(real_strings(PARITY_COUNT)))


def test_wordpiece_hard_cases(minilm_tokenizer, minilm_layer):
    assert_same_ids(minilm_tokenizer, minilm_layer, HARD_CASES)
    assert_same_ids(minilm_tokenizer, minilm_layer, HARD_CASES, add_special_tokens=False)


@pytest.mark.parametrize("options", [
    {"lowercase": False},  # cased: no lower-casing, accents kept
    {"lowercase": False, "strip_accents": True},
    {"lowercase": True, "strip_accents": False},
    {"clean_text": False},
    {"handle_chinese_chars": False},
], ids=lambda options: ",".join(f"{k}={v}" for k, v in options.items()))
def test_wordpiece_normalizer_options(options):
    tokenizer = wordpiece_tokenizer(**options)
    layer = TFBertTokenizer.from_tokenizer(tokenizer)
    assert_same_ids(tokenizer, layer, HARD_CASES + perturbed(real_strings(300), seed=1))


@pytest.mark.parametrize("options", [
    {"truncation": "longest_first", "max_length": 24, "padding": "max_length"},
    {"truncation": True, "max_length": 24, "pad_to_multiple_of": 8},
    {"truncation": "only_first", "max_length": 48},
    {"truncation": "only_second", "max_length": 48},
    {"padding": "longest", "return_token_type_ids": False},
    {"padding": "max_length", "max_length": 64, "truncation": True, "return_attention_mask": False},
], ids=lambda options: ",".join(f"{k}={v}" for k, v in options.items()))
def test_pairs_truncation_padding(minilm_tokenizer, minilm_layer, options):
    titles = [text.splitlines()[0] for text, _ in bbc_articles(per_class=8)]
    bodies = [text.split("\n", 2)[-1][:400] for text, _ in bbc_articles(per_class=8)]
    first, second = (bodies, titles) if options.get("truncation") != "only_second" else (titles, bodies)
    assert_same_encoding(minilm_tokenizer, minilm_layer, first, second, **options)
    if options.get("truncation") not in ("only_first", "only_second"):
        assert_same_encoding(minilm_tokenizer, minilm_layer, HARD_CASES, **options)


def test_left_padding_and_truncation(minilm_layer):
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir(), padding_side="left", truncation_side="left")
    layer = TFBertTokenizer.from_tokenizer(tokenizer)
    texts = real_strings(40)
    assert_same_encoding(tokenizer, layer, texts, texts[::-1], truncation=True, max_length=30)
    assert_same_encoding(tokenizer, layer, HARD_CASES, pad_to_multiple_of=16)


def test_detokenize_as_decode(minilm_tokenizer, minilm_layer):
    texts = real_strings(500) + HARD_CASES
    encoding = minilm_layer(tf.constant(texts))  # padded: [PAD] is left out like every special token
    expected = minilm_tokenizer.batch_decode(encoding["input_ids"].numpy().tolist(), skip_special_tokens=True)
    assert [text.decode() for text in minilm_layer.detokenize(encoding["input_ids"]).numpy()] == expected


# ------------------------------------------------------------------------------------------- SentencePiece


def write_sentencepiece_folder(folder):
    """Mistral-7B-v0.1's SentencePiece model as a Llama-2 style tokenizer folder."""
    shutil.copy(mistral_sentencepiece_model(), folder / "tokenizer.model")
    config = {"tokenizer_class": "LlamaTokenizer", "add_bos_token": True, "add_eos_token": False,
              "pad_token": "</s>", "legacy": False}
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture(scope="module")
def sentencepiece_folder(tmp_path_factory):
    return write_sentencepiece_folder(tmp_path_factory.mktemp("sentencepiece"))


@pytest.fixture(scope="module")
def sentencepiece_tokenizer(sentencepiece_folder):
    return AutoTokenizer.from_pretrained(sentencepiece_folder)


@pytest.fixture(scope="module")
def sentencepiece_layer(sentencepiece_tokenizer):
    return TFSentencePieceTokenizer.from_tokenizer(sentencepiece_tokenizer)


@pytest.fixture(scope="module")
def sentencepiece_processor(sentencepiece_folder):
    """The SentencePiece library itself: the reference for ids."""
    return sentencepiece.SentencePieceProcessor(model_file=str(sentencepiece_folder / "tokenizer.model"))


def transformers_comparable(texts):
    """The texts transformers' fast Llama tokenizer tokenizes as SentencePiece does: no whitespace runs, no
    special-token text (see tf_sentencepiece.py)."""
    return [text for text in texts if not WHITESPACE_RUN.search(text) and not re.search("<s>|</s>|<unk>", text)]


def assert_sentencepiece_parity(processor, tokenizer, layer, texts):
    """The layer's ids are SentencePiece's (with BOS); transformers' differ only where whitespace runs."""
    assert_ids_equal([[1, *ids] for ids in processor.encode(texts)], layer, texts)
    different = differing_ids(tokenizer(texts)["input_ids"], layer, texts)
    assert all(WHITESPACE_RUN.search(text) for text, _, _ in different), different[:3]


def test_sentencepiece_bbc_parity(sentencepiece_processor, sentencepiece_tokenizer, sentencepiece_layer):
    texts = real_strings(PARITY_COUNT)
    assert_sentencepiece_parity(sentencepiece_processor, sentencepiece_tokenizer, sentencepiece_layer, texts)


def test_sentencepiece_perturbed_parity(sentencepiece_processor, sentencepiece_tokenizer, sentencepiece_layer):
    texts = perturbed(real_strings(PARITY_COUNT))
    assert_sentencepiece_parity(sentencepiece_processor, sentencepiece_tokenizer, sentencepiece_layer, texts)


def test_sentencepiece_hard_cases(sentencepiece_processor, sentencepiece_tokenizer, sentencepiece_layer):
    assert sentencepiece_layer(tf.constant(["Hello"]), padding=False)["input_ids"].to_list()[0][0] == 1  # <s>
    assert_sentencepiece_parity(sentencepiece_processor, sentencepiece_tokenizer, sentencepiece_layer,
                                [text for text in HARD_CASES if not re.search("<s>|</s>|<unk>", text)])
    assert_ids_equal(sentencepiece_processor.encode(HARD_CASES), sentencepiece_layer, HARD_CASES,
                     add_special_tokens=False)


def test_sentencepiece_eos_pairs_left_padding(sentencepiece_folder):
    tokenizer = AutoTokenizer.from_pretrained(sentencepiece_folder, add_eos_token=True)
    layer = TFSentencePieceTokenizer.from_tokenizer(tokenizer)
    assert layer.padding_side == "left"  # LlamaTokenizer's
    texts = transformers_comparable(real_strings(40))
    assert_same_encoding(tokenizer, layer, texts, texts[::-1], truncation="longest_first", max_length=40)
    hard_cases = transformers_comparable(HARD_CASES)
    assert_same_encoding(tokenizer, layer, hard_cases, padding="max_length", max_length=80, truncation=True)


def test_sentencepiece_detokenize_as_decode(sentencepiece_tokenizer, sentencepiece_layer):
    texts = real_strings(500) + perturbed(real_strings(200)) + HARD_CASES
    ids = sentencepiece_layer(tf.constant(texts))["input_ids"]
    expected = sentencepiece_tokenizer.batch_decode(ids.numpy().tolist(), skip_special_tokens=True)
    actual = [text.decode() for text in sentencepiece_layer.detokenize(ids).numpy()]
    different = [(e, a) for e, a in zip(expected, actual) if e != a]
    assert not different, f"{len(different)} of {len(texts)} differ; first: {different[:3]}"
    assert actual[:500] == real_strings(500)  # plain text comes back whole


# ------------------------------------------------------------------------------------------- the layer in graphs


@pytest.mark.parametrize("family", ["wordpiece", "sentencepiece"])
def test_tf_data_keras_model_and_saving(family, minilm_layer, sentencepiece_layer, tmp_path):
    """The layer traced in a graph (tf.data's map runs it as a tf.function), as the first layer of a Keras
    functional model fed strings, and that model saved and loaded: the same tensors as an eager call."""
    layer = minilm_layer if family == "wordpiece" else sentencepiece_layer
    texts = real_strings(16) + HARD_CASES
    options = {"max_length": 32, "padding": "max_length", "truncation": True}
    expected = layer(tf.constant(texts), **options)
    dataset = tf.data.Dataset.from_tensor_slices(texts).batch(len(texts)).map(lambda batch: layer(batch, **options))
    inputs = keras.Input(shape=(), dtype="string")
    model = keras.Model(inputs, layer(inputs, **options))
    model.save(str(tmp_path / "tokenizer.keras"))
    reloaded = keras.models.load_model(str(tmp_path / "tokenizer.keras"))
    for outputs in (next(iter(dataset)), model(tf.constant(texts)), reloaded(tf.constant(texts))):
        assert sorted(outputs) == sorted(expected)
        for name in expected:
            np.testing.assert_array_equal(outputs[name].numpy(), expected[name].numpy(), err_msg=name)


# ------------------------------------------------------------------------------------------- TFAutoTokenizer


def test_auto_tokenizer_picks_the_family(sentencepiece_folder):
    assert type(TFAutoTokenizer.from_pretrained(minilm_dir())) is TFBertTokenizer
    assert type(TFAutoTokenizer.from_pretrained(sentencepiece_folder)) is TFSentencePieceTokenizer
    assert type(TFBertTokenizer.from_pretrained(minilm_dir())) is TFBertTokenizer


def test_unsupported_tokenizer_is_named(tmp_path):
    backend = Tokenizer(models.WordLevel({"[UNK]": 0, "hello": 1}, unk_token="[UNK]"))
    tokenizer = TokenizersBackend(tokenizer_object=backend, unk_token="[UNK]")
    with pytest.raises(ConfigError, match="WordLevel.*Supported: WordPiece"):
        TFAutoTokenizer.from_tokenizer(tokenizer)
    with pytest.raises(ConfigError, match="TFBertTokenizer reproduces"):
        TFBertTokenizer.from_tokenizer(tokenizer)


def test_options_refused_as_transformers_refuses_them(minilm_tokenizer, minilm_layer):
    with pytest.raises(ValueError, match="not a multiple of pad_to_multiple_of"):
        minilm_tokenizer(["a b"], truncation=True, max_length=17, padding=True, pad_to_multiple_of=8)
    with pytest.raises(InputError, match="not a multiple of pad_to_multiple_of"):
        minilm_layer(tf.constant(["a b"]), truncation=True, max_length=17, pad_to_multiple_of=8)
    with pytest.raises(InputError, match="truncation='middle'"):
        minilm_layer(tf.constant(["a b"]), truncation="middle")
    with pytest.raises(tf.errors.InvalidArgumentError, match="only_first"):
        minilm_layer(tf.constant(["short"]), tf.constant(["a much longer second text " * 5]), truncation="only_first",
                     max_length=10)


@pytest.mark.parametrize("post_processor", [
    processors.BertProcessing(("[SEP]", 102), ("[CLS]", 101)),
    processors.RobertaProcessing(("[SEP]", 102), ("[CLS]", 101)),  # [CLS] A [SEP][SEP] B [SEP], all type 0
    processors.Sequence([processors.ByteLevel(), BERT_TEMPLATE]),
    processors.ByteLevel(),  # no special tokens
], ids=["bert", "roberta", "sequence", "byte-level"])
def test_post_processors(post_processor):
    tokenizer = wordpiece_tokenizer(post_processor)
    layer = TFBertTokenizer.from_tokenizer(tokenizer)
    texts = real_strings(20)
    assert_same_encoding(tokenizer, layer, texts, texts[::-1], return_token_type_ids=True)
    assert_same_encoding(tokenizer, layer, texts, texts[::-1], return_token_type_ids=True, truncation=True,
                         max_length=30)
