"""TFByteLevelBPETokenizer (transformers 4.x's name: TFGPT2Tokenizer): byte-level BPE in TensorFlow ops.

GPT-2, RoBERTa, SmolLM2, Llama-3 and Qwen2 tokenize this way; tensorflow-text has no BPE op, so each step
of the `tokenizers` library is rebuilt from TensorFlow ops, reading the same `tokenizer.json`:

1. added tokens (`<|endoftext|>`, `<|im_start|>`...) are cut out of the text whole and take their own ids
   (unless the tokenizer has `split_special_tokens`);
2. the rest is normalized (none, or NFC for Qwen2) and split into words by the pre-tokenizer's regex;
3. each word's UTF-8 bytes become vocabulary ids, and merges are applied lowest rank first until none is left.

The regexes use a lookahead, `\\s+(?!\\S)`, that RE2 (TensorFlow's regex engine) lacks. Its only effect is to
leave the last whitespace character of a run for the next word ("a  b" -> "a", " ", " b"), so the text is
first cut where that happens and each segment is then split without the lookahead (`_lookahead_cuts`).
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from tfformers.errors import ConfigError
from tfformers.tokenization.tf_base import TFTokenizerBase

# The pre-tokenizer regexes the lookahead emulation is verified for (tests/test_tf_bpe.py), by name
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
LLAMA3_PATTERN = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"""
    r"""|\s+(?!\S)|\s+"""
)
QWEN2_PATTERN = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"""
    r"""|\s+(?!\S)|\s+"""
)
SUPPORTED_PATTERNS = {GPT2_PATTERN: "GPT-2", LLAMA3_PATTERN: "Llama-3", QWEN2_PATTERN: "Qwen2"}
_LOOKAHEAD = r"\s+(?!\S)|"
# In the Llama-3 and Qwen2 patterns `\s*[\r\n]+` comes first, so a run ending in a newline stays whole.
_NEWLINE_RUN = r"\s*[\r\n]+|"

# `\s` of the `tokenizers` library (Oniguruma): Unicode's White_Space; RE2's `\s` is ASCII only
WHITESPACE = (0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x2028, 0x2029,
              0x202F, 0x205F, 0x3000)
_WHITESPACE_CLASS = "".join(f"\\x{{{codepoint:X}}}" for codepoint in WHITESPACE)
_NEWLINES = (0x0A, 0x0D)
_NO_MERGE = np.iinfo(np.int64).max


def bytes_to_unicode():
    """GPT-2's byte -> printable character table: the alphabet byte-level vocabularies are written in."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    characters = {byte: chr(byte) for byte in printable}
    shifted = (byte for byte in range(256) if byte not in characters)
    for offset, byte in enumerate(shifted):
        characters[byte] = chr(256 + offset)
    return dict(sorted(characters.items()))


# ------------------------------------------------------------------------------------ reading tokenizer.json


def _split_pattern(pre_tokenizer):
    """The word-splitting regex of a `tokenizer.json` pre_tokenizer, or a ConfigError naming what is not
    supported: `ByteLevel` with its regex, or a `Sequence` of one `Split` (isolated) and `ByteLevel` without."""
    kind = pre_tokenizer["type"] if pre_tokenizer else None
    if kind == "ByteLevel" and pre_tokenizer.get("use_regex", True):
        pattern, byte_level = GPT2_PATTERN, pre_tokenizer
    elif kind == "Sequence" and [p["type"] for p in pre_tokenizer["pretokenizers"]] == ["Split", "ByteLevel"]:
        split, byte_level = pre_tokenizer["pretokenizers"]
        if split["behavior"] != "Isolated" or split["invert"] or "Regex" not in split["pattern"]:
            raise ConfigError(f"Split pre-tokenizer {split} is not supported (only an isolated, non-inverted Regex).")
        pattern = split["pattern"]["Regex"]
    else:
        raise ConfigError(
            f"Pre-tokenizer {kind!r} is not supported by TFByteLevelBPETokenizer (supported: ByteLevel with its "
            f"regex, or Sequence[Split(Regex), ByteLevel(use_regex=False)]): {pre_tokenizer}"
        )
    if byte_level.get("add_prefix_space"):
        raise ConfigError("ByteLevel(add_prefix_space=True) is not supported by TFByteLevelBPETokenizer yet.")
    if pattern not in SUPPORTED_PATTERNS:
        raise ConfigError(
            f"Pre-tokenizer regex {pattern!r} is not supported by TFByteLevelBPETokenizer (supported: the "
            f"{', '.join(SUPPORTED_PATTERNS.values())} patterns)."
        )
    return pattern


def _normalization(normalizer):
    if normalizer is None:
        return None
    if normalizer["type"] == "NFC":
        return "NFC"
    raise ConfigError(f"Normalizer {normalizer['type']!r} is not supported by TFByteLevelBPETokenizer (none or NFC).")


def _check_bpe_model(model, decoder):
    if model["type"] != "BPE":
        raise ConfigError(f"TFByteLevelBPETokenizer needs a BPE model; this tokenizer's is {model['type']!r}.")
    options = ("dropout", "continuing_subword_prefix", "end_of_word_suffix", "byte_fallback")
    unsupported = {name: model[name] for name in options if model.get(name)}
    if unsupported:
        raise ConfigError(f"BPE options {unsupported} are not supported by TFByteLevelBPETokenizer.")
    if (decoder or {}).get("type") != "ByteLevel":
        raise ConfigError(f"TFByteLevelBPETokenizer needs a ByteLevel decoder; this tokenizer has {decoder}.")


def _added_token_entries(added_tokens):
    """[{"id", "content", "special", "lstrip", "rstrip"}] of tokenizer.json's added_tokens."""
    for token in added_tokens:
        if token.get("single_word"):
            raise ConfigError(f"Added token {token['content']!r} has single_word=True; not supported.")
    return [{key: token.get(key, False) for key in ("id", "content", "special", "lstrip", "rstrip")}
            for token in added_tokens]


# ------------------------------------------------------------------------------------ regexes for RE2


def _re2_pattern(pattern):
    """`pattern` without its lookahead alternative, with `\\s` as Unicode White_Space, for RE2."""
    pieces, in_class, index = [], False, 0
    pattern = pattern.replace(_LOOKAHEAD, "")
    while index < len(pattern):
        if pattern.startswith(r"\s", index):
            pieces.append(_WHITESPACE_CLASS if in_class else f"[{_WHITESPACE_CLASS}]")
            index += 2
            continue
        step = 2 if pattern[index] == "\\" else 1
        if step == 1 and pattern[index] in "[]":
            in_class = pattern[index] == "["
        pieces.append(pattern[index:index + step])
        index += step
    return "".join(pieces)


def _literal(text):
    """`text` as an RE2 literal (ASCII punctuation and controls escaped by code point)."""
    return "".join(c if c.isalnum() or ord(c) > 127 else f"\\x{{{ord(c):X}}}" for c in text)


def _added_tokens_pattern(tokens):
    """One RE2 alternation of the added tokens, longest first (the library takes the longest match); `lstrip`
    / `rstrip` tokens take the whitespace beside them."""
    space = f"[{_WHITESPACE_CLASS}]*"
    alternatives = [
        (space if token["lstrip"] else "") + _literal(token["content"]) + (space if token["rstrip"] else "")
        for token in sorted(tokens, key=lambda token: -len(token["content"]))
    ]
    return "|".join(alternatives)


# ------------------------------------------------------------------------------------ graph steps


def _lookahead_cuts(texts, newline_ends_run):
    """Where `\\s+(?!\\S)` leaves a run's last whitespace character to the next word, the texts are cut.

    texts: tf.string [n] -> (segments tf.string [m], row of each segment int64 [m]). The cut goes before the
    last character of every whitespace run of two or more that a non-space character follows, except, with
    the Llama-3 / Qwen2 patterns, when that character is a newline (`\\s*[\\r\\n]+` then takes the run whole).
    Each segment then splits as the whole text would with the lookahead.
    """
    codepoints = tf.strings.unicode_decode(texts, "UTF-8")  # ragged [n, characters]
    characters, rows = codepoints.flat_values, codepoints.value_rowids()  # [c]
    is_space = _is_one_of(characters, WHITESPACE)
    row_start = tf.not_equal(rows, tf.roll(rows, 1, axis=0)) | tf.equal(tf.range(tf.size(rows)), 0)
    row_end = tf.roll(row_start, -1, axis=0)
    after_space = tf.roll(is_space, 1, axis=0) & ~row_start
    before_non_space = ~tf.roll(is_space, -1, axis=0) & ~row_end
    cut = is_space & after_space & before_non_space
    if newline_ends_run:
        cut &= ~_is_one_of(characters, _NEWLINES)
    segment_start = cut | row_start
    segment_of_character = tf.cumsum(tf.cast(segment_start, tf.int64)) - 1  # [c]
    segments = tf.RaggedTensor.from_value_rowids(characters, segment_of_character)
    return tf.strings.unicode_encode(segments, "UTF-8"), tf.boolean_mask(rows, segment_start)


def _split_keeping_matches(texts, pattern):
    """tf.string [n] -> ragged [n, pieces]: the matches of `pattern` and the text between them, in order.

    Each match is fenced by 0xFF bytes (never in UTF-8) and the texts cut there: tensorflow_text.regex_split
    would stop at a NUL character."""
    fenced = tf.strings.regex_replace(texts, pattern, b"\xff\\0\xff")
    pieces = tf.strings.split(fenced, sep=b"\xff")
    return tf.ragged.boolean_mask(pieces, tf.strings.length(pieces) > 0)


def _is_one_of(codepoints, members):
    """bool [c]: whether each code point is one of `members` (small code points: a table lookup)."""
    table = np.zeros(max(members) + 2, bool)
    table[list(members)] = True
    return tf.gather(tf.constant(table), tf.minimum(codepoints, len(table) - 1))


def _first_of_pair_runs(chosen):
    """bool [s]: `chosen` pair positions that do not overlap the pair before (in "a a a" both pairs are the
    same merge; the library merges the left one first, and the right one is merged again in the next round)."""
    return chosen & ~tf.roll(chosen, 1, axis=0)


# ------------------------------------------------------------------------------------ the layer


@dataclasses.dataclass(frozen=True)
class BPEVocabulary:
    """What the layer is built from, as its config holds it. One object, so that Keras' attribute tracking does
    not walk its ~100,000 entries (seconds for a 49,152-token vocabulary)."""

    vocab: dict  # token (in the byte alphabet) -> id
    merges: list  # [left, right], by rank
    split_pattern: str  # one of SUPPORTED_PATTERNS
    normalization: str | None  # "NFC" or None
    added_tokens: list  # [{"id", "content", "special", "lstrip", "rstrip"}]
    ignore_merges: bool  # a word in the vocabulary is one token (Llama-3)
    unk_token: str | None  # what a byte outside the vocabulary becomes (None: left out)
    split_special_tokens: bool  # special tokens in the text are tokenized as text


@keras.saving.register_keras_serializable(package="tfformers")
class TFByteLevelBPETokenizer(TFTokenizerBase):
    """Byte-level BPE (GPT-2, RoBERTa, SmolLM2, Llama-3, Qwen2 vocabularies) as a Keras layer of TF ops.

    Ids equal transformers' fast tokenizer's; build it with `from_pretrained(folder)` or
    `from_tokenizer(transformers_tokenizer)`.
    """

    def __init__(self, vocab, merges, *, split_pattern=GPT2_PATTERN, normalization=None, added_tokens=(),
                 ignore_merges=False, unk_token=None, split_special_tokens=False, **kwargs):
        super().__init__(**kwargs)
        if split_pattern not in SUPPORTED_PATTERNS:
            raise ConfigError(f"split_pattern {split_pattern!r} is not one of the supported patterns.")
        self.bpe = BPEVocabulary(
            vocab=dict(vocab),
            merges=[merge.split(" ") if isinstance(merge, str) else list(merge) for merge in merges],
            split_pattern=split_pattern,
            normalization=normalization,
            added_tokens=[dict(token) for token in added_tokens],
            ignore_merges=ignore_merges,
            unk_token=unk_token,
            split_special_tokens=split_special_tokens,
        )
        self._build_tables()

    # --------------------------------------------------------------------- construction

    @classmethod
    def vocabulary_config(cls, tokenizer, tokenizer_json):
        if tokenizer_json is None:
            raise ConfigError("TFByteLevelBPETokenizer is built from a fast tokenizer (one with a tokenizer.json).")
        model = tokenizer_json["model"]
        _check_bpe_model(model, tokenizer_json.get("decoder"))
        return {
            "vocab": model["vocab"],
            "merges": model["merges"],
            "split_pattern": _split_pattern(tokenizer_json.get("pre_tokenizer")),
            "normalization": _normalization(tokenizer_json.get("normalizer")),
            "added_tokens": _added_token_entries(tokenizer_json["added_tokens"]),
            "ignore_merges": bool(model.get("ignore_merges")),
            "unk_token": model.get("unk_token"),
            "split_special_tokens": bool(getattr(tokenizer, "split_special_tokens", False)),
        }

    def get_config(self):
        return {
            **super().get_config(),
            **{field.name: getattr(self.bpe, field.name) for field in dataclasses.fields(self.bpe)},
        }

    def _build_tables(self):
        """The lookup tables of the graph: bytes, merges, added tokens, and each id's decoded bytes."""
        characters = bytes_to_unicode()
        self._id_space = max([*self.bpe.vocab.values(), *(t["id"] for t in self.bpe.added_tokens)]) + 1
        self._byte_ids = _static_table(*self._byte_vocabulary(characters))
        self._byte_symbols = _static_table([bytes([b]) for b in characters], list(characters.values()), "")
        self._vocab_ids = _static_table(list(self.bpe.vocab), list(self.bpe.vocab.values()))
        pair_keys = [self.bpe.vocab[left] * self._id_space + self.bpe.vocab[right] for left, right in self.bpe.merges]
        self._merge_ranks = _static_table(pair_keys, range(len(pair_keys)), _NO_MERGE)
        self._merged_ids = tf.constant([self.bpe.vocab[left + right] for left, right in self.bpe.merges], tf.int64)
        matched = [t for t in self.bpe.added_tokens if not (self.bpe.split_special_tokens and t["special"])]
        self._added_pattern = _added_tokens_pattern(matched) if matched else None
        if matched:
            self._added_ids = _static_table([t["content"] for t in matched], [t["id"] for t in matched])
        self._decoded_bytes = tf.constant(self._decoded_bytes_by_id(characters))

    def _byte_vocabulary(self, characters):
        """(bytes, ids) of the bytes whose symbol is in the vocabulary. A byte that is not (SmolLM2 lacks a few
        never seen in training) becomes the unknown token, or, without one, is left out, as in the library."""
        known = [byte for byte, character in characters.items() if character in self.bpe.vocab]
        self._drops_bytes = len(known) < len(characters) and self.bpe.unk_token is None
        if self.bpe.unk_token is None:
            return [bytes([b]) for b in known], [self.bpe.vocab[characters[b]] for b in known]
        unknown = self.bpe.vocab[self.bpe.unk_token]
        return [bytes([b]) for b in characters], [self.bpe.vocab.get(c, unknown) for c in characters.values()]

    def _decoded_bytes_by_id(self, characters):
        """What the ByteLevel decoder makes of each id: its symbols' bytes, or (a token outside the byte
        alphabet, like many added tokens) its own UTF-8 bytes; b"" for unused ids."""
        byte_of = {character: byte for byte, character in characters.items()}
        tokens = {**{i: t for t, i in self.bpe.vocab.items()}, **{t["id"]: t["content"] for t in self.bpe.added_tokens}}
        decoded = [b""] * self._id_space
        for token_id, token in tokens.items():
            in_alphabet = all(c in byte_of for c in token)
            decoded[token_id] = bytes(byte_of[c] for c in token) if in_alphabet else token.encode("utf-8")
        return decoded

    # --------------------------------------------------------------------- strings -> ids

    # No Python control flow on tensors in here: autograph would only slow tracing (by about 1.5 s)
    @tf.autograph.experimental.do_not_convert
    def tokenize_ids(self, texts):
        """tf.string [batch] -> int32 RaggedTensor [batch, None]: the ids, no special tokens added."""
        texts = tf.convert_to_tensor(texts, tf.string)
        pieces = self._split_added_tokens(texts)  # ragged [batch, pieces]
        flat_pieces = pieces.flat_values  # [p]
        added_ids = self._added_token_ids(flat_pieces)  # [p], -1 for text
        is_added = added_ids >= 0
        words = self._words(tf.where(is_added, "", flat_pieces))  # ragged [p, words]
        merged = self._bpe(words)  # ragged [p, tokens]
        added = tf.RaggedTensor.from_row_lengths(tf.boolean_mask(added_ids, is_added), tf.cast(is_added, tf.int64))
        ids = tf.concat([tf.cast(added, tf.int64), merged], axis=1)  # each piece is one or the other
        ids = tf.RaggedTensor.from_row_splits(ids, pieces.row_splits).merge_dims(1, 2)
        return tf.cast(ids, tf.int32)

    def _split_added_tokens(self, texts):
        """tf.string [batch] -> ragged [batch, pieces]: added tokens alone, the text between them."""
        if self._added_pattern is None:
            return tf.RaggedTensor.from_tensor(tf.expand_dims(texts, 1))
        return _split_keeping_matches(texts, self._added_pattern)

    def _added_token_ids(self, pieces):
        """int64 [p]: the id of each piece that is an added token, else -1."""
        if self._added_pattern is None:
            return tf.fill(tf.shape(pieces), tf.constant(-1, tf.int64))
        ids = self._added_ids.lookup(pieces)
        # lstrip / rstrip tokens carry the whitespace they took
        stripped = tf.strings.regex_replace(pieces, f"^[{_WHITESPACE_CLASS}]+|[{_WHITESPACE_CLASS}]+$", "")
        return tf.where(ids >= 0, ids, self._added_ids.lookup(stripped))

    def _words(self, pieces):
        """tf.string [p] -> ragged [p, words]: normalized, then split by the pre-tokenizer's regex."""
        if self.bpe.normalization:
            pieces = tf_text.normalize_utf8(pieces, self.bpe.normalization)
        segments, segment_rows = _lookahead_cuts(pieces, _NEWLINE_RUN in self.bpe.split_pattern)
        pattern = _re2_pattern(self.bpe.split_pattern)
        words = _split_keeping_matches(segments, pattern)  # ragged [segments, words]
        return tf.RaggedTensor.from_value_rowids(words, segment_rows, nrows=tf.size(pieces, tf.int64)).merge_dims(1, 2)

    def _bpe(self, words):
        """ragged tf.string [p, words] -> ragged int64 [p, tokens]: each word's bytes merged by rank (each
        distinct word of the batch once)."""
        unique_words, word_index = tf.unique(words.flat_values)  # [u], [w]
        word_bytes = tf.strings.bytes_split(unique_words)  # ragged [u, bytes]
        ids = self._byte_ids.lookup(word_bytes.flat_values)  # [s] int64: one symbol per byte
        word_of_symbol = word_bytes.value_rowids()  # [s]
        if self._drops_bytes:
            ids, word_of_symbol = tf.boolean_mask(ids, ids >= 0), tf.boolean_mask(word_of_symbol, ids >= 0)
        if self.bpe.ignore_merges:
            ids, word_of_symbol = self._whole_words(word_bytes, ids, word_of_symbol)
        if self.bpe.merges:
            ids, word_of_symbol = self._merge(ids, word_of_symbol, word_bytes.nrows())
        tokens = tf.RaggedTensor.from_value_rowids(ids, word_of_symbol, nrows=word_bytes.nrows())  # [u, tokens]
        return tf.RaggedTensor.from_value_rowids(tf.gather(tokens, word_index), words.value_rowids(),
                                                 nrows=words.nrows()).merge_dims(1, 2)

    def _whole_words(self, word_bytes, ids, word_of_symbol):
        """`ignore_merges` (Llama-3): a word that is a vocabulary entry is that one token, merges unused."""
        symbols = word_bytes.with_flat_values(self._byte_symbols.lookup(word_bytes.flat_values))
        spelled = tf.strings.reduce_join(symbols, axis=1)  # [w]: the word in the vocabulary's alphabet
        whole_ids = tf.gather(self._vocab_ids.lookup(spelled), word_of_symbol)  # [s]
        is_first = tf.not_equal(word_of_symbol, tf.roll(word_of_symbol, 1, axis=0)) | tf.equal(
            tf.range(tf.size(ids)), 0)
        keep = is_first | (whole_ids < 0)
        ids = tf.where(whole_ids >= 0, whole_ids, ids)
        return tf.boolean_mask(ids, keep), tf.boolean_mask(word_of_symbol, keep)

    def _merge(self, ids, word_of_symbol, word_count):
        """Merge rounds over all words at once: in each word, the adjacent pair of lowest merge rank is merged
        (every occurrence); a word with no pair in the merges is done and leaves the rounds.
        ids, word_of_symbol: [s] -> [s'] each, in word order."""

        def merge_round(ids, word_of_symbol, done_ids, done_words):
            chosen, ranks = self._lowest_rank_pairs(ids, word_of_symbol, word_count)
            merging = tf.math.unsorted_segment_max(tf.cast(chosen, tf.int32), word_of_symbol, word_count) > 0
            ids = tf.where(chosen, tf.gather(self._merged_ids, tf.where(chosen, ranks, 0)), ids)
            keep = ~tf.roll(chosen, 1, axis=0)  # the right symbol of a merged pair goes
            ids, word_of_symbol = tf.boolean_mask(ids, keep), tf.boolean_mask(word_of_symbol, keep)
            active = tf.gather(merging, word_of_symbol)
            done_ids = tf.concat([done_ids, tf.boolean_mask(ids, ~active)], axis=0)
            done_words = tf.concat([done_words, tf.boolean_mask(word_of_symbol, ~active)], axis=0)
            return tf.boolean_mask(ids, active), tf.boolean_mask(word_of_symbol, active), done_ids, done_words

        empty = tf.zeros([0], tf.int64)
        _, _, ids, word_of_symbol = tf.while_loop(
            lambda ids, *_: tf.size(ids) > 0,
            merge_round,
            (ids, word_of_symbol, empty, empty),
            shape_invariants=(tf.TensorShape([None]),) * 4,
        )
        order = tf.argsort(tf.cast(word_of_symbol, tf.int32), stable=True)  # words finish in any round
        return tf.gather(ids, order), tf.gather(word_of_symbol, order)

    def _lowest_rank_pairs(self, ids, word_of_symbol, word_count):
        """(chosen bool [s], ranks int64 [s]) of the pairs (symbol s, s + 1): chosen where the pair has its
        word's lowest merge rank (the left one of overlapping equal pairs)."""
        is_last = tf.equal(tf.range(tf.size(ids)), tf.size(ids) - 1)
        has_pair = tf.equal(word_of_symbol, tf.roll(word_of_symbol, -1, axis=0)) & ~is_last
        ranks = self._merge_ranks.lookup(ids * self._id_space + tf.roll(ids, -1, axis=0))
        ranks = tf.where(has_pair, ranks, _NO_MERGE)
        lowest = tf.math.unsorted_segment_min(ranks, word_of_symbol, word_count)  # [w]
        chosen = (ranks < _NO_MERGE) & tf.equal(ranks, tf.gather(lowest, word_of_symbol))
        return _first_of_pair_runs(chosen), ranks

    # --------------------------------------------------------------------- ids -> strings

    @tf.autograph.experimental.do_not_convert
    def detokenize(self, ids, skip_special_tokens=False):
        """int ids [batch, None] (dense or ragged) -> tf.string [batch], as the tokenizer's `decode` gives."""
        ids = self.without_special_tokens(ids) if skip_special_tokens else _as_ragged_int32(ids)
        ids = tf.ragged.boolean_mask(ids, (ids >= 0) & (ids < self._id_space))  # unknown ids are left out
        texts = tf.strings.reduce_join(tf.gather(self._decoded_bytes, ids), axis=1)
        # invalid UTF-8 (a multi-byte character cut between ids) becomes U+FFFD, as in the library
        texts = tf.strings.unicode_transcode(texts, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD)
        return self.clean_up_spaces(texts)


@keras.saving.register_keras_serializable(package="tfformers")
class TFGPT2Tokenizer(TFByteLevelBPETokenizer):
    """transformers 4.x's in-graph GPT-2 tokenizer, by its old name: `TFGPT2Tokenizer(vocab, merges)`,
    `from_pretrained(path)`, `from_tokenizer(tokenizer)`, `from_config(config)`."""


def _static_table(keys, values, default=-1):
    """A tf.lookup.StaticHashTable of Python keys (str, bytes or int) -> int64 values, or str values."""
    values = list(values)
    value_dtype = tf.string if values and isinstance(values[0], str) else tf.int64
    key_dtype = tf.int64 if keys and isinstance(keys[0], (int, np.integer)) else tf.string
    initializer = tf.lookup.KeyValueTensorInitializer(
        tf.constant(keys, key_dtype), tf.constant(values, value_dtype), key_dtype, value_dtype)
    return tf.lookup.StaticHashTable(initializer, default_value=tf.constant(default, value_dtype))


def _as_ragged_int32(ids):
    ids = ids if isinstance(ids, tf.RaggedTensor) else tf.RaggedTensor.from_tensor(tf.convert_to_tensor(ids))
    return tf.cast(ids, tf.int32)
