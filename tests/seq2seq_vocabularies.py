"""Small real tokenizers for T5 and BART, trained on BBC News in seconds (no package ships their vocabularies).

T5: a SentencePiece unigram model (`spiece.model`) with T5's conventions, pad 0, eos 1, unk 2, no bos;
transformers' T5Tokenizer adds the 100 `<extra_id_N>` sentinels after the pieces (`<extra_id_0>` last).
BART: a byte-level BPE (`vocab.json`, `merges.txt`) with BART's and RoBERTa's layout, `<s>` 0, `<pad>` 1,
`</s>` 2, `<unk>` 3, `<mask>` last. Training is deterministic (one thread, fixed corpus), so every run
builds the same vocabulary.
"""

import functools
import json
from pathlib import Path

from assets import bbc_articles, bbc_titles_recipe

TRAINING_ARTICLES_PER_CLASS = 40  # about 1,000 lines, 400 kB of text
VOCAB_SIZE = 2000  # pieces / tokens before the sentinels or <mask>
MODEL_MAX_LENGTH = 512


@functools.cache
def bbc_lines(articles_per_class=TRAINING_ARTICLES_PER_CLASS):
    """The non-empty lines (title, paragraphs) of the first articles of each class."""
    return [line.strip() for text, _ in bbc_articles(articles_per_class) for line in text.splitlines() if line.strip()]


def _write_config(folder, tokenizer_class):
    config = {"tokenizer_class": tokenizer_class, "model_max_length": MODEL_MAX_LENGTH}
    (folder / "tokenizer_config.json").write_text(json.dumps(config))


def write_t5_vocabulary(folder):
    """`folder` with a T5 `spiece.model` (unigram, VOCAB_SIZE pieces) and its tokenizer_config.json."""
    return bbc_titles_recipe().write_t5_vocabulary(folder, bbc_lines(), VOCAB_SIZE)


def write_bart_vocabulary(folder):
    """`folder` with a BART `vocab.json` and `merges.txt` (byte-level BPE) and its tokenizer_config.json."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
                                  show_progress=False, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    backend.train_from_iterator(bbc_lines(), trainer)
    folder = Path(folder)
    backend.model.save(str(folder))  # vocab.json, merges.txt
    vocab = json.loads((folder / "vocab.json").read_text())
    vocab["<mask>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    _write_config(folder, "BartTokenizer")
    return folder


def t5_vocabulary(tmp_path_factory):
    """A folder holding the T5 vocabulary, made once per test session (pytest's `tmp_path_factory`)."""
    return _made_once(write_t5_vocabulary, tmp_path_factory.getbasetemp() / "t5-vocabulary")


def bart_vocabulary(tmp_path_factory):
    """A folder holding the BART vocabulary, made once per test session (pytest's `tmp_path_factory`)."""
    return _made_once(write_bart_vocabulary, tmp_path_factory.getbasetemp() / "bart-vocabulary")


@functools.cache
def _made_once(write, folder):
    folder.mkdir()
    return write(folder)
