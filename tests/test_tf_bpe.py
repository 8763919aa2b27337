"""TFByteLevelBPETokenizer against transformers' fast tokenizers: ids and decoded text identical.

Families: GPT-2 style (ByteLevel regex, RoBERTa post-processing), Qwen2 style (NFC, Split regex with `\\p{N}`),
Llama-3 style (`\\p{N}{1,3}`, `ignore_merges`), each a `tokenizers` BPE trained on BBC News text, and the real
49,152-token SmolLM2 vocabulary from its GGUF file.
"""

import functools
import json
import random

import pytest
import tensorflow as tf
from assets import bbc_articles, smollm2_gguf
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from tfformers import AutoTokenizer, TFByteLevelBPETokenizer, TFGPT2Tokenizer
from tfformers.errors import ConfigError
from tfformers.tokenization.tf_bpe import LLAMA3_PATTERN, QWEN2_PATTERN

FAMILIES = ("gpt2", "qwen2", "llama3", "smollm2")
# all 15,016 strings, and as many perturbed: benchmarks/bpe_parity.py (about 10 s per family and set)
PARITY_STRINGS = 1_000
PERTURBED_STRINGS = 1_000

HARD_CASES = [
    "",
    " ",
    "   ",
    "Hello world",
    "Hello  world",
    "Hello   world   ",
    "trailing space ",
    "two trailing  ",
    " leading space",
    "  two leading",
    "line one\nline two",
    "paragraph one.\n\nParagraph two.",
    "ends with newlines\n\n",
    "\n\nstarts with newlines",
    "mixed \n \n  whitespace\t\tand tabs\t",
    "a \n\nb",
    "a\n\n b",
    "x  \ny",
    "word.\n\n  next",
    "word.\n \nnext",
    "tab\tseparated\tvalues",
    "\r\nwindows\r\nline ends\r\n",
    "non\u00a0breaking\u00a0\u00a0space and\u3000ideographic\u2009thin\u202fnarrow",
    "vertical\x0btab and\x0cform feed and \x85 next line",
    "digits 12345678 and 3.14159, 1,000,000 and 2024-11-30",
    "x1234y 99 bottles",
    "I'M HERE, YOU'RE THERE, WE'LL SEE, HE'D GO, IT'S, DON'T, I'VE",
    "i'm here, you're there, we'll see, he'd go, it's, don't, i've",
    "'s 't 're 've 'm 'll 'd ''s",
    "Café crème brûlée, naïve façade, Ærøskøbing, Straße, İstanbul",
    "e\u0301 combining accent and A\u030a",
    "中文分词测试，日本語のテキスト、한국어 텍스트",
    "emoji 😀👍🏽 family 👨‍👩‍👧 flags 🇬🇧🇫🇷",
    "Ελληνικά και русский текст, עברית, العربية",
    "symbols: @#$%^&*()_+-=[]{}|;:,.<>?/~` and «quotes» “curly” ‘single’ — dashes – …",
    "antidisestablishmentarianism" * 8,
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "!!!!!!!!!! ?????? ...... ------ ====== ______",
    "https://www.bbc.co.uk/news/business-12345678?ref=rss&x=1#anchor",
    "email me at someone.name+tag@example.com today",
    "<|endoftext|>",
    "before<|endoftext|>after",
    "text <|endoftext|> text <|endoftext|><|endoftext|>",
    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|> spaced <|im_end|>",
    "<|endoftext",
    "$1.13bn (£600m) for the three months",
    "NUL\x00inside and \x00<|endoftext|>\x00 around tokens",
]


# ------------------------------------------------------------------------------------ real text


@functools.cache
def bbc_strings():
    """Real strings from BBC News: every paragraph, and each article's opening with its blank lines."""
    strings = []
    for text, _ in bbc_articles():
        strings.extend(paragraph for paragraph in text.split("\n\n") if paragraph)
        strings.append(text[:400])
    return strings


# What `perturbed` inserts: whitespace runs (where regex splits go wrong), non-ASCII letters, emoji, digit runs,
# upper-case contractions, added tokens
INSERTS = [" ", "  ", "   ", "\n", "\n\n", " \n", "\n ", "\t", "\r\n", "\u00a0", "\u3000", "\u2009", "\u0085", "é",
           "ß", "İ", "中", "語", "😀", "👍🏽", "'S", "'LL", "1234567", "<|im_start|>", "<|endoftext|>"]


def perturbed(texts, seed=0):
    """Each text with three insertions at random places: one of INSERTS, or a random code point (unassigned and
    control ones included; surrogates excepted)."""
    rng = random.Random(seed)
    result = []
    for text in texts:
        chars = list(text)
        for _ in range(3):
            if rng.random() < 0.5:
                insert = rng.choice(INSERTS)
            else:
                code_point = rng.randrange(1, 0x10000 if rng.random() < 0.7 else 0x110000)
                insert = "\ufffd" if 0xD800 <= code_point < 0xE000 else chr(code_point)
            chars.insert(rng.randrange(len(chars) + 1), insert)
        result.append("".join(chars))
    return result


def training_text(articles=400):
    return [text for text, _ in bbc_articles(per_class=articles // 5)]


# ------------------------------------------------------------------------------------ the families


def _trained(pre_tokenizer, normalizer=None, special_tokens=("<|endoftext|>",)):
    """A `tokenizers` byte-level BPE of 2,000 tokens trained on BBC text."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizer
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=2000, special_tokens=list(special_tokens), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(training_text(), trainer)
    return tokenizer


def _split_then_bytes(pattern):
    return pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pattern), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])


def gpt2_family():
    """GPT-2's pre-tokenizer with RoBERTa's <s> A </s> post-processing."""
    backend = _trained(pre_tokenizers.ByteLevel(add_prefix_space=False),
                       special_tokens=("<s>", "<pad>", "</s>", "<|endoftext|>"))
    backend.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), add_prefix_space=False)
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", pad_token="<pad>")


def qwen2_family():
    backend = _trained(_split_then_bytes(QWEN2_PATTERN), normalizers.NFC(),
                       special_tokens=("<|endoftext|>", "<|im_start|>", "<|im_end|>"))
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|endoftext|>", pad_token="<|endoftext|>")


def llama3_family():
    backend = _trained(_split_then_bytes(LLAMA3_PATTERN))
    serialized = json.loads(backend.to_str())
    serialized["model"]["ignore_merges"] = True  # as Llama-3's tokenizer.json
    backend = Tokenizer.from_str(json.dumps(serialized))
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|endoftext|>")


def smollm2_family():
    gguf = smollm2_gguf()
    return AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)


BUILDERS = {"gpt2": gpt2_family, "qwen2": qwen2_family, "llama3": llama3_family, "smollm2": smollm2_family}


@functools.cache
def family(name):
    """(transformers tokenizer, TFByteLevelBPETokenizer) of a family."""
    tokenizer = BUILDERS[name]()
    return tokenizer, TFByteLevelBPETokenizer.from_tokenizer(tokenizer)


def python_ids(tokenizer, texts):
    return tokenizer(list(texts), add_special_tokens=False)["input_ids"]


@functools.cache
def compiled_tokenize(name):
    """The family's `tokenize_ids` as one tf.function (traced once)."""
    return tf.function(family(name)[1].tokenize_ids, input_signature=[tf.TensorSpec([None], tf.string)])


def mismatches(name, texts, batch_size=1000):
    """[(text, expected, got)] where the layer's ids (in a tf.function) differ from the tokenizer's."""
    tokenizer, tokenize = family(name)[0], compiled_tokenize(name)
    found = []
    for start in range(0, len(texts), batch_size):
        batch = texts[start:start + batch_size]
        got = tokenize(tf.constant(batch)).to_list()
        found += [(t, e, g) for t, e, g in zip(batch, python_ids(tokenizer, batch), got) if e != g]
    return found


# ------------------------------------------------------------------------------------ ids


@pytest.mark.parametrize("name", FAMILIES)
def test_hard_cases_match_the_python_tokenizer(name):
    wrong = mismatches(name, HARD_CASES)
    assert not wrong, "\n".join(f"{t!r}: expected {e}, got {g}" for t, e, g in wrong)


@pytest.mark.parametrize("name", FAMILIES)
def test_bbc_strings_match_the_python_tokenizer(name):
    texts = bbc_strings()[:PARITY_STRINGS]
    wrong = mismatches(name, texts)
    assert not wrong, f"{len(wrong)} of {len(texts)} differ; first: {wrong[0]}"


@pytest.mark.parametrize("name", FAMILIES)
def test_perturbed_bbc_strings_match_the_python_tokenizer(name):
    texts = perturbed(bbc_strings()[-PERTURBED_STRINGS:])
    wrong = mismatches(name, texts)
    assert not wrong, f"{len(wrong)} of {len(texts)} differ; first: {wrong[0]}"


def test_eager_equals_tf_function():
    _, layer = family("qwen2")
    texts = tf.constant(HARD_CASES[:20])  # eager merge rounds are slow on long words
    assert layer.tokenize_ids(texts).to_list() == compiled_tokenize("qwen2")(texts).to_list()


def test_split_special_tokens_cuts_them_like_text():
    tokenizer, _ = family("qwen2")
    layer = TFByteLevelBPETokenizer.from_tokenizer(tokenizer, split_special_tokens=True)
    text = "<|im_start|>user\nHi<|im_end|>"
    expected = tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]
    assert layer.tokenize_ids(tf.constant([text])).to_list() == [expected]


# ------------------------------------------------------------------------------------ the layer's call


def test_call_adds_roberta_special_tokens_and_pads_like_transformers():
    tokenizer, layer = family("gpt2")
    texts = ["A short one.", "A somewhat longer sentence, with   spaces.", ""]
    expected = tokenizer(texts, padding=True, return_tensors="np")
    got = layer(tf.constant(texts))
    assert got["input_ids"].numpy().tolist() == expected["input_ids"].tolist()
    assert got["attention_mask"].numpy().tolist() == expected["attention_mask"].tolist()


def test_gpt2_name_and_config_round_trip():
    tokenizer, layer = family("gpt2")
    rebuilt = TFGPT2Tokenizer.from_config(layer.get_config())
    assert isinstance(TFGPT2Tokenizer.from_tokenizer(tokenizer), TFByteLevelBPETokenizer)
    texts = tf.constant(HARD_CASES[:12])
    assert rebuilt.tokenize_ids(texts).to_list() == layer.tokenize_ids(texts).to_list()


# ------------------------------------------------------------------------------------ detokenize


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("skip_special_tokens", [False, True])
def test_detokenize_equals_python_decode(name, skip_special_tokens):
    tokenizer, layer = family(name)
    texts = HARD_CASES + bbc_strings()[:200]
    ids = python_ids(tokenizer, texts)
    got = layer.detokenize(tf.ragged.constant(ids, tf.int32), skip_special_tokens=skip_special_tokens)
    expected = tokenizer.batch_decode(ids, skip_special_tokens=skip_special_tokens)
    wrong = [(e, g) for e, g in zip(expected, (t.decode("utf-8") for t in got.numpy())) if e != g]
    assert not wrong, wrong[:5]


def test_detokenize_of_a_cut_character_gives_the_replacement_character():
    tokenizer, layer = family("smollm2")
    ids = python_ids(tokenizer, ["𝔘𝔫 ok"])[0]  # two rare 4-byte letters: several byte tokens
    cut = ids[1:]
    expected = tokenizer.decode(cut)
    assert "\ufffd" in expected
    assert layer.detokenize(tf.ragged.constant([cut])).numpy()[0].decode() == expected


# ------------------------------------------------------------------------------------ refusals


def test_unsupported_pre_tokenizer_is_named():
    backend = Tokenizer(models.BPE(vocab={"a": 0}, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.decoder = decoders.ByteLevel()
    with pytest.raises(ConfigError, match="Whitespace"):
        TFByteLevelBPETokenizer.from_tokenizer(PreTrainedTokenizerFast(tokenizer_object=backend))


def test_unverified_split_regex_is_named():
    tokenizer, _ = family("llama3")
    serialized = json.loads(tokenizer.backend_tokenizer.to_str())
    serialized["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = r"\p{L}+|\s+(?!\S)|\s+"
    other = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(serialized)))
    with pytest.raises(ConfigError, match="regex"):
        TFByteLevelBPETokenizer.from_tokenizer(other)
