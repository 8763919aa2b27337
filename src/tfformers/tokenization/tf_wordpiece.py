"""TFBertTokenizer: BERT's WordPiece tokenizer (BERT, DistilBERT, MiniLM) as TensorFlow ops in a Keras layer.

The three steps of the checkpoint's `tokenizer.json` run on Unicode code points in the graph:
  normalizer (`BertNormalizer`, in its order): drop control characters and turn whitespace into spaces
    (`clean_text`), put spaces around CJK ideographs (`handle_chinese_chars`), strip accents (NFD, then drop
    non-spacing marks; `strip_accents: null` follows `lowercase`), lower-case (`lowercase`);
  pre-tokenizer (`BertPreTokenizer`): split on whitespace, each punctuation mark a word of its own;
  model (`WordPiece`): `tensorflow_text.FastWordpieceTokenizer` on the words; a word longer than
    `max_input_chars_per_word` code points is the unknown token.
The normalizer and pre-tokenizer are written here rather than taken from `tensorflow_text`'s
`FastBertNormalizer` / `BertTokenizer`, because those differ from `tokenizers` on real text: they case-fold
("ß" -> "ss") where `tokenizers` lower-cases, turn control characters into spaces where `tokenizers` drops
them, and count symbols such as "$" differently. Which characters are control, whitespace, punctuation,
CJK or non-spacing marks, and each one's lower case, is read once from `tokenizers` itself (`_character_tables`):
its Rust Unicode tables are older than Python's `unicodedata` (newer emoji are "unassigned" there, so dropped).

Added tokens in the text ("Paris is the [MASK] of France.") are cut out first and become their ids, as
`tokenizers` matches them in the raw text.
"""

import functools

import keras
import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text
from tokenizers import normalizers, pre_tokenizers

from tfformers.errors import ConfigError
from tfformers.tokenization.tf_base import (
    TFTokenizerBase,
    clean_up_tokenization,
    plain_added_tokens,
    re2_literal,
    tokenize_around,
)

# Character classes of one code point (bit flags), as tokenizers' BertNormalizer and BertPreTokenizer see it
_REMOVED = 1  # clean_text drops it (NUL, U+FFFD, control and other "other" categories but \t \n \r)
_SPACE_TO_BLANK = 2  # clean_text turns it into " "
_CJK = 4  # handle_chinese_chars makes it a word of its own
_NONSPACING_MARK = 8  # strip_accents drops it (after NFD)
_SPLIT_SPACE = 16  # the pre-tokenizer splits on it and drops it
_PUNCTUATION = 32  # the pre-tokenizer makes it a word of its own
_MAX_CODE_POINT = 0x110000
_SEPARATOR = "0"  # kept by every step and produced by none: it separates the probed characters
_NOTHING = {"clean_text": False, "handle_chinese_chars": False, "strip_accents": False, "lowercase": False}


def _probe_characters():
    """Every code point but the surrogates (not in UTF-8 text) and the separator, as one-char strings. NUL is
    left out too (NumPy strings lose it): clean_text drops it, nothing else touches it. All of them: tokenizers'
    tables do not count every unassigned code point as such (U+4B704 is kept, not dropped as "unassigned")."""
    return [chr(cp) for cp in range(1, _MAX_CODE_POINT) if not 0xD800 <= cp <= 0xDFFF and chr(cp) != _SEPARATOR]


def _normalized_each(normalizer, characters):
    """What `normalizer` makes of each character on its own (one call: the characters, separated)."""
    text = normalizer.normalize_str(_SEPARATOR + _SEPARATOR.join(characters) + _SEPARATOR)
    parts = text.split(_SEPARATOR)[1:-1]
    if len(parts) != len(characters):
        raise RuntimeError("The BertNormalizer probe lost its separators; tokenizers changed how it normalizes.")
    return parts


def _pre_tokenizer_classes(characters, chunk=4096):
    """{char: flag} of the characters BertPreTokenizer drops (whitespace) or isolates (punctuation), probed
    in chunks (its cost grows with the length of the text times the number of pieces)."""
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    classes = {}
    for first in range(0, len(characters), chunk):
        part = characters[first:first + chunk]
        text = _SEPARATOR + _SEPARATOR.join(part) + _SEPARATOR  # character i sits at 2 i + 1
        covered = np.zeros(len(text), bool)
        for piece, (start, end) in pre_tokenizer.pre_tokenize_str(text):
            if text[start:end] != piece:
                raise RuntimeError("BertPreTokenizer's offsets are not character offsets; the probe needs them.")
            covered[start:end] = True
            if end - start == 1 and start % 2 == 1:
                classes[part[start // 2]] = _PUNCTUATION
        for index in np.flatnonzero(~covered[1::2][:len(part)]):
            classes[part[index]] = _SPLIT_SPACE
    return classes


@functools.cache
def _character_tables():
    """(run starts, run classes, lower-case keys, lower-case values), read from tokenizers itself, so that the
    graph sees characters exactly as the Rust code does (its Unicode tables are older than Python's).

    The classes come as runs (the code points from `starts[i]` up to the next start share `classes[i]`), a
    few thousand entries for `tf.searchsorted`. The lower case of each code point it changes is a row of
    `values` padded with -1 (a few lower to more than one code point: "İ" -> "i̇")."""
    characters = _probe_characters()
    chars = np.array(characters)
    code_points = np.fromiter(map(ord, characters), np.int32, len(characters))

    def probed(option):
        return np.array(_normalized_each(normalizers.BertNormalizer(**{**_NOTHING, option: True}), characters))

    classes = np.zeros(_MAX_CODE_POINT, np.int32)
    classes[0] = classes[0xD800:0xE000] = _REMOVED
    cleaned = probed("clean_text")
    classes[code_points[cleaned == ""]] |= _REMOVED
    classes[code_points[cleaned == " "]] |= _SPACE_TO_BLANK
    classes[code_points[probed("handle_chinese_chars") != chars]] |= _CJK
    classes[code_points[probed("strip_accents") == ""]] |= _NONSPACING_MARK
    for char, flag in _pre_tokenizer_classes(characters).items():
        classes[ord(char)] |= flag
    starts = np.flatnonzero(np.diff(classes, prepend=-1)).astype(np.int32)
    lowered = probed("lowercase")
    changed = np.flatnonzero(lowered != chars)  # ascending code points, as the probe went
    lower_values = np.full((len(changed), max(len(lowered[i]) for i in changed)), -1, np.int32)
    for row, i in enumerate(changed):
        lower_values[row, :len(lowered[i])] = [ord(c) for c in lowered[i]]
    return starts, classes[starts], code_points[changed], lower_values


def _classes_of(code_points, starts, classes):
    """The class flags of int32 code points [n], from the run table."""
    return tf.gather(classes, tf.searchsorted(starts, code_points, side="right") - 1)


def _has(flags, flag):
    return tf.not_equal(tf.bitwise.bitwise_and(flags, flag), 0)


def _replace_each(code_points, replacements):
    """Each code point of a RaggedTensor [batch, None] replaced by a row of `replacements` [n, width]
    (int32, -1 past its end): [batch, None] -> [batch, None]."""
    return code_points.with_flat_values(tf.RaggedTensor.from_tensor(replacements, padding=-1)).merge_dims(1, 2)


@keras.saving.register_keras_serializable(package="tfformers")
class TFBertTokenizer(TFTokenizerBase):
    """BERT's WordPiece tokenizer as a Keras layer: `tokenizer(texts)` -> `{"input_ids", ...}` int32 tensors.

    `vocab` is the list of tokens in id order. It is part of `get_config`, so a saved model carries its
    tokenizer whole (30k short strings: a few hundred kB of JSON), with no separate asset file to keep with it.
    """

    def __init__(self, *, vocab, unk_token="[UNK]", lowercase=True, strip_accents=None, clean_text=True,
                 handle_chinese_chars=True, max_input_chars_per_word=100, continuing_subword_prefix="##",
                 decoder_cleanup=True, added_tokens=(), **kwargs):
        super().__init__(**kwargs)
        self.added_tokens = [list(token) for token in added_tokens]  # [[content, id]]
        self.vocab = list(vocab)
        self.unk_token = unk_token
        self.lowercase = lowercase
        self.strip_accents = strip_accents
        self.clean_text = clean_text
        self.handle_chinese_chars = handle_chinese_chars
        self.max_input_chars_per_word = max_input_chars_per_word
        self.continuing_subword_prefix = continuing_subword_prefix
        self.decoder_cleanup = decoder_cleanup
        starts, classes, lower_keys, lower_values = map(tf.constant, _character_tables())
        self._run_starts, self._run_classes = starts, classes
        self._lower_keys, self._lower_values = lower_keys, lower_values
        # The word length limit is applied here in code points (as tokenizers counts); FastWordpieceTokenizer's
        # byte limit is set above any word within it.
        self._wordpiece = tf_text.FastWordpieceTokenizer(
            vocab=self.vocab, suffix_indicator=continuing_subword_prefix, unknown_token=unk_token,
            max_bytes_per_word=4 * max_input_chars_per_word + 4, token_out_type=tf.int32, no_pretokenization=True,
        )
        self._tokens = tf.constant(self.vocab)

    @classmethod
    def vocabulary_config(cls, tokenizer, tokenizer_json):
        _check_bert_pipeline(tokenizer, tokenizer_json)
        model, normalizer = tokenizer_json["model"], tokenizer_json["normalizer"]
        vocab = sorted(model["vocab"], key=model["vocab"].get)
        if [model["vocab"][token] for token in vocab] != list(range(len(vocab))):
            raise ConfigError("The WordPiece vocabulary's ids are not 0..n-1 without gaps.")
        decoder = tokenizer_json.get("decoder") or {}
        return {
            "vocab": vocab,
            "unk_token": model["unk_token"],
            "lowercase": normalizer["lowercase"],
            "strip_accents": normalizer["strip_accents"],
            "clean_text": normalizer["clean_text"],
            "handle_chinese_chars": normalizer["handle_chinese_chars"],
            "max_input_chars_per_word": model["max_input_chars_per_word"],
            "continuing_subword_prefix": model["continuing_subword_prefix"],
            "decoder_cleanup": decoder.get("type") == "WordPiece" and decoder.get("cleanup", True),
            "added_tokens": plain_added_tokens(tokenizer, tokenizer_json),
        }

    def get_config(self):
        return {
            **super().get_config(),
            "vocab": self.vocab,
            "unk_token": self.unk_token,
            "lowercase": self.lowercase,
            "strip_accents": self.strip_accents,
            "clean_text": self.clean_text,
            "handle_chinese_chars": self.handle_chinese_chars,
            "max_input_chars_per_word": self.max_input_chars_per_word,
            "continuing_subword_prefix": self.continuing_subword_prefix,
            "decoder_cleanup": self.decoder_cleanup,
            "added_tokens": self.added_tokens,
        }

    # --------------------------------------------------------------------- text -> ids

    def tokenize_ids(self, texts):
        return tokenize_around(texts, self.added_tokens, self._tokenize_text)

    def _tokenize_text(self, texts):
        """tf.string [n] without added tokens -> int32 ids [n, None]."""
        code_points = self.normalize(tf.strings.unicode_decode(texts, "UTF-8", errors="replace"))
        words = self._split_words(code_points)  # [batch, words] strings
        too_long = tf.strings.length(words.flat_values, unit="UTF8_CHAR") > self.max_input_chars_per_word
        words = words.with_flat_values(tf.where(too_long, self.unk_token, words.flat_values))
        return self._wordpiece.tokenize(words).merge_dims(1, 2)  # [batch, words, pieces] -> [batch, pieces]

    def _classes(self, code_points):
        return _classes_of(code_points, self._run_starts, self._run_classes)

    def _drop(self, code_points, flag):
        keep = ~_has(self._classes(code_points.flat_values), flag)
        return tf.ragged.boolean_mask(code_points, code_points.with_flat_values(keep))

    def normalize(self, code_points):
        """BertNormalizer on int32 code points [batch, None] -> [batch, None]."""
        if self.clean_text:
            code_points = self._drop(code_points, _REMOVED)
            to_blank = _has(self._classes(code_points.flat_values), _SPACE_TO_BLANK)
            code_points = code_points.with_flat_values(tf.where(to_blank, 32, code_points.flat_values))
        if self.handle_chinese_chars:
            flat = code_points.flat_values
            spaced = tf.stack([tf.fill(tf.shape(flat), 32), flat, tf.fill(tf.shape(flat), 32)], axis=1)
            alone = tf.pad(tf.expand_dims(flat, 1), [[0, 0], [0, 2]], constant_values=-1)
            is_cjk = tf.expand_dims(_has(self._classes(flat), _CJK), 1)
            code_points = _replace_each(code_points, tf.where(is_cjk, spaced, alone))
        if self.strip_accents if self.strip_accents is not None else self.lowercase:
            decomposed = tf_text.normalize_utf8(tf.strings.unicode_encode(code_points, "UTF-8"), "NFD")
            code_points = self._drop(tf.strings.unicode_decode(decomposed, "UTF-8"), _NONSPACING_MARK)
        if self.lowercase:
            code_points = self._lower(code_points)
        return code_points

    def _lower(self, code_points):
        """Each code point's lower case (Rust's char::to_lowercase): [batch, None] -> [batch, None]."""
        flat = code_points.flat_values
        row = tf.minimum(tf.searchsorted(self._lower_keys, flat), tf.size(self._lower_keys) - 1)
        found = tf.expand_dims(tf.equal(tf.gather(self._lower_keys, row), flat), 1)
        width = self._lower_values.shape[1]
        unchanged = tf.pad(tf.expand_dims(flat, 1), [[0, 0], [0, width - 1]], constant_values=-1)
        return _replace_each(code_points, tf.where(found, tf.gather(self._lower_values, row), unchanged))

    def _split_words(self, code_points):
        """BertPreTokenizer: code points [batch, None] -> words, tf.string [batch, None]."""
        flat, row_of_char = code_points.flat_values, code_points.value_rowids()
        flags = self._classes(flat)
        space, alone = _has(flags, _SPLIT_SPACE), _has(flags, _PUNCTUATION)
        index = tf.range(tf.size(flat))
        first_in_row = index == tf.gather(tf.cast(code_points.row_starts(), tf.int32), row_of_char)
        after_break = first_in_row | tf.gather(space | alone, tf.maximum(index - 1, 0))
        starts_word = ~space & (alone | after_break)
        word_of_char = tf.cumsum(tf.cast(starts_word, tf.int32)) - 1  # numbered over the whole batch
        chars = tf.RaggedTensor.from_value_rowids(
            tf.boolean_mask(flat, ~space), tf.boolean_mask(word_of_char, ~space),
            nrows=tf.reduce_sum(tf.cast(starts_word, tf.int32)),
        )
        words = tf.strings.unicode_encode(chars, "UTF-8")
        return tf.RaggedTensor.from_value_rowids(words, tf.boolean_mask(row_of_char, starts_word),
                                                 nrows=code_points.nrows())

    # --------------------------------------------------------------------- ids -> text

    def detokenize(self, ids):
        """int ids [batch, None] (dense or ragged) -> tf.string [batch], as transformers'
        `decode(ids, skip_special_tokens=True)`: a "##" piece glued to the one before, others after a space."""
        tokens = tf.gather(self._tokens, self.without_special_tokens(ids))
        flat = tokens.flat_values
        prefix = self.continuing_subword_prefix
        # tokenizers' WordPiece decoder never glues the first piece
        not_first = tf.range(tf.size(flat, out_type=tf.int64)) != tf.gather(tokens.row_starts(), tokens.value_rowids())
        glued = not_first & tf.equal(tf.strings.substr(flat, 0, len(prefix)), prefix)
        unprefixed = tf.strings.regex_replace(flat, "^" + re2_literal(prefix), "")
        flat = tf.where(glued, unprefixed, tf.strings.join([" ", flat]))
        if self.decoder_cleanup:  # the decoder cleans each piece, leading space included
            flat = clean_up_tokenization(flat)
        texts = tf.strings.regex_replace(tf.strings.reduce_join(tokens.with_flat_values(flat), axis=1), "^ ", "")
        return self.clean_up_spaces(texts)


def _check_bert_pipeline(tokenizer, tokenizer_json):
    """A clear error unless the tokenizer is BertNormalizer + BertPreTokenizer + WordPiece."""
    steps = {"normalizer": "BertNormalizer", "pre_tokenizer": "BertPreTokenizer", "model": "WordPiece"}
    if tokenizer_json is None:
        raise ConfigError(f"TFBertTokenizer needs a fast tokenizer (tokenizer.json); got {type(tokenizer).__name__}.")
    found = {step: (tokenizer_json.get(step) or {}).get("type") for step in steps}
    if found != steps:
        raise ConfigError(f"TFBertTokenizer reproduces {steps}; this tokenizer has {found}.")
