"""In-graph tokenizers for T5 (SentencePiece unigram, `spiece.model`) and BART (byte-level BPE) against
transformers' tokenizers, on BBC News lines the vocabularies were not trained on.

T5: ids end with `</s>` and have no BOS; the SentencePiece library in the graph (tensorflow-text's build) and
transformers' Unigram conversion of the same model may segment a word differently only where two segmentations
have exactly the same score (a tie the Viterbi implementations break differently; the Python sentencepiece
package breaks it as transformers does): every mismatch is checked to be such a tie.
BART: `<s> ... </s>` ids identical. Both: `detokenize` equals `batch_decode(skip_special_tokens=True)`.
"""

import functools

import pytest
import sentencepiece
import tensorflow as tf
from assets import bbc_articles
from seq2seq_vocabularies import TRAINING_ARTICLES_PER_CLASS, bart_vocabulary, t5_vocabulary

from tfformers import AutoTokenizer, TFAutoTokenizer
from tfformers.errors import ConfigError
from tfformers.tokenization.tf_bpe import TFByteLevelBPETokenizer
from tfformers.tokenization.tf_sentencepiece import TFSentencePieceTokenizer

LINES = 600  # BBC lines per check (a second of the BPE layer's merges in a tf.function each 300)


@functools.cache
def unseen_bbc_lines():
    """Lines of articles after those the vocabularies were trained on, each class in turn."""
    articles = bbc_articles(TRAINING_ARTICLES_PER_CLASS + 20)
    per_class = len(articles) // 5
    unseen = [text for i, (text, _) in enumerate(articles) if i % per_class >= TRAINING_ARTICLES_PER_CLASS]
    return [line.strip() for text in unseen for line in text.splitlines() if line.strip()][:LINES]


@pytest.fixture(scope="module")
def t5(tmp_path_factory):
    """(transformers' T5Tokenizer, the in-graph layer, the SentencePiece library on the same model)."""
    folder = t5_vocabulary(tmp_path_factory)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    processor = sentencepiece.SentencePieceProcessor(model_file=str(folder / "spiece.model"))
    return tokenizer, TFAutoTokenizer.from_pretrained(folder), processor


@pytest.fixture(scope="module")
def bart(tmp_path_factory):
    tokenizer = AutoTokenizer.from_pretrained(bart_vocabulary(tmp_path_factory))
    return tokenizer, TFAutoTokenizer.from_tokenizer(tokenizer)


def layer_ids(layer, texts, **options):
    tokenize = tf.function(lambda batch: layer(batch, padding=False, **options)["input_ids"])
    return tokenize(tf.constant(texts)).to_list()


def test_t5_vocabulary_has_t5s_conventions(t5):
    tokenizer, layer, processor = t5
    assert type(tokenizer).__name__ == "T5Tokenizer" and isinstance(layer, TFSentencePieceTokenizer)
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id, tokenizer.bos_token_id) == (
        0, 1, 2, None)
    pieces = processor.get_piece_size()
    assert tokenizer.convert_tokens_to_ids(["<extra_id_0>", "<extra_id_99>"]) == [pieces + 99, pieces]
    assert layer_ids(layer, ["Shares rose."])[0][-1] == tokenizer.eos_token_id
    assert layer_ids(layer, [""]) == [[tokenizer.eos_token_id]]


def test_t5_ids_equal_transformers_on_bbc_lines_but_for_score_ties(t5):
    tokenizer, layer, processor = t5
    texts = unseen_bbc_lines()
    expected = tokenizer(texts)["input_ids"]
    got = layer_ids(layer, texts)
    different = [(text, e, g) for text, e, g in zip(texts, expected, got) if e != g]
    assert len(different) <= len(texts) // 100, f"{len(different)} of {len(texts)} differ"

    def score(ids):
        return sum(processor.get_score(i) for i in ids if i != tokenizer.eos_token_id)

    for text, e, g in different:  # the same pieces' text, the same total score: a tie broken differently
        assert processor.decode(e) == processor.decode(g) and score(e) == pytest.approx(score(g), abs=1e-4), text


def test_t5_sentinels_truncation_and_padding(t5):
    tokenizer, layer, _ = t5
    texts = ["The <extra_id_0> said on <extra_id_1>.", "x<extra_id_99>y", unseen_bbc_lines()[1]]
    assert layer_ids(layer, texts) == tokenizer(texts)["input_ids"]
    expected = tokenizer(texts, truncation=True, max_length=12, padding="max_length", return_tensors="np")
    got = layer(tf.constant(texts), truncation=True, max_length=12, padding="max_length")
    assert got["input_ids"].numpy().tolist() == expected["input_ids"].tolist()  # </s> kept, padded right
    assert got["attention_mask"].numpy().tolist() == expected["attention_mask"].tolist()


def test_t5_detokenize_skips_special_tokens_as_batch_decode(t5):
    tokenizer, layer, _ = t5
    texts = unseen_bbc_lines()[:200] + ["The <extra_id_0> said.", "Café naïve  double  space"]
    ids = tokenizer(texts, padding=True)["input_ids"]
    ids = [[0, *row] for row in ids]  # as generate answers: the decoder start token (pad) first
    expected = tokenizer.batch_decode(ids, skip_special_tokens=True)
    assert [t.decode() for t in layer.detokenize(tf.constant(ids)).numpy()] == expected


def test_bart_ids_equal_transformers_on_bbc_lines(bart):
    tokenizer, layer = bart
    assert type(tokenizer).__name__ in ("RobertaTokenizer", "BartTokenizer")
    assert isinstance(layer, TFByteLevelBPETokenizer)
    texts = unseen_bbc_lines()
    expected = tokenizer(texts)["input_ids"]
    assert all(row[0] == 0 and row[-1] == 2 for row in expected)  # <s> ... </s>
    got = layer_ids(layer, texts)
    different = [(text, e, g) for text, e, g in zip(texts, expected, got) if e != g]
    assert not different, f"{len(different)} of {len(texts)} differ; first: {different[0]}"


def test_bart_detokenize_skips_special_tokens_as_batch_decode(bart):
    tokenizer, layer = bart
    texts = unseen_bbc_lines()[:200] + ["<mask> and <s> inside", "Café naïve 😀"]
    ids = [[2, *row] for row in tokenizer(texts, padding=True)["input_ids"]]  # BART's decoder starts with </s>
    expected = tokenizer.batch_decode(ids, skip_special_tokens=True)
    generated = layer.without_special_tokens(tf.constant(ids))
    assert [t.decode() for t in layer.detokenize(generated).numpy()] == expected


def test_a_t5_folder_without_its_sentencepiece_model_is_a_clear_error(t5, tmp_path):
    tokenizer, _, _ = t5
    tokenizer.save_pretrained(tmp_path)  # transformers 5 writes tokenizer.json only
    assert not (tmp_path / "spiece.model").exists()
    with pytest.raises(ConfigError, match="spiece.model"):
        TFAutoTokenizer.from_pretrained(tmp_path)
