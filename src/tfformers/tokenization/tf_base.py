"""TFTokenizerBase: what every in-graph tokenizer (a Keras layer, TensorFlow ops only) shares.

A subclass turns strings into ids and back (`tokenize_ids`, `detokenize`); the base adds the special tokens
of the checkpoint's post-processor, truncates and pads as transformers' fast tokenizers do, and returns
`{"input_ids", "attention_mask", ("token_type_ids")}` as int32 `[batch, length]` tensors, the dtype
tfformers' models take. Everything runs in the graph, so the layer works in `tf.function`, in `tf.data`
and as the first layer of a Keras functional model fed strings.

The special-token template is plain data (JSON-serialisable, part of `get_config`):
`{"single": [...], "pair": [...]}`, each a list of `[piece, type_id]` where `piece` is `"A"` (the first
sequence), `"B"` (the second) or a list of special-token ids. It is read from `tokenizer.json`'s
`post_processor` (`TemplateProcessing`, `BertProcessing`, `RobertaProcessing`, a `Sequence` holding one of
them; `ByteLevel` or none add no special tokens).

A subclass implements:
  `tokenize_ids(texts)`: tf.string `[batch]` -> int32 RaggedTensor `[batch, None]`, no special tokens;
  `detokenize(ids)`: int `[batch, None]` (dense or ragged) -> tf.string `[batch]`;
  `vocabulary_config(tokenizer, tokenizer_json)` (classmethod): its own constructor keywords read from a
    transformers tokenizer and its backend's JSON (`None` when it has no backend);
  `get_config()`: the base's config plus those keywords.
For `detokenize`, the base offers `without_special_tokens(ids)` (as `skip_special_tokens=True`) and
`clean_up_spaces(texts)` (transformers' `clean_up_tokenization_spaces`).
"""

import json

import keras
import tensorflow as tf

from tfformers.errors import ConfigError, InputError

# transformers' stand-in for "no maximum length" (int(1e30)); anything this large means none
_NO_MAX_LENGTH = 10**9
TRUNCATION_STRATEGIES = ("longest_first", "only_first", "only_second")
PADDING_STRATEGIES = ("longest", "max_length")
NO_SPECIAL_TOKENS = {"single": [["A", 0]], "pair": [["A", 0], ["B", 1]]}


# ------------------------------------------------------------------------------------ templates


def _template_from_processing(processor):
    """The template of one post-processor of `tokenizer.json`; None when it adds no special tokens."""
    kind = processor["type"]
    if kind == "TemplateProcessing":
        special_ids = {name: token["ids"] for name, token in processor["special_tokens"].items()}

        def pieces(template):
            result = []
            for item in template:
                if "Sequence" in item:
                    result.append([item["Sequence"]["id"], item["Sequence"]["type_id"]])
                else:
                    result.append([special_ids[item["SpecialToken"]["id"]], item["SpecialToken"]["type_id"]])
            return result

        return {"single": pieces(processor["single"]), "pair": pieces(processor["pair"])}
    if kind in ("BertProcessing", "RobertaProcessing"):
        cls, sep = [processor["cls"][1]], [processor["sep"][1]]
        # BERT: [CLS] A [SEP] B [SEP], the second part type 1; RoBERTa: <s> A </s></s> B </s>, all type 0
        second = [[sep, 0], ["B", 0], [sep, 0]] if kind == "RobertaProcessing" else [["B", 1], [sep, 1]]
        first = [[cls, 0], ["A", 0], [sep, 0]]
        return {"single": first, "pair": first + second}
    if kind == "Sequence":
        templates = [t for t in map(_template_from_processing, processor["processors"]) if t is not None]
        if len(templates) > 1:
            raise ConfigError("tokenizer.json's post_processor Sequence adds special tokens twice; not supported.")
        return templates[0] if templates else None
    if kind == "ByteLevel":
        return None
    raise ConfigError(
        f"tokenizer.json's post_processor {kind!r} is not supported by the in-graph tokenizers (supported: "
        "TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel, Sequence of these, none)."
    )


def special_tokens_template(tokenizer_json):
    """The special-token template of a `tokenizer.json` (a dict, as `backend_tokenizer.to_str()` gives)."""
    processor = tokenizer_json.get("post_processor")
    template = _template_from_processing(processor) if processor else None
    return template or NO_SPECIAL_TOKENS


def _added_count(template):
    return sum(len(piece) for piece, _ in template if not isinstance(piece, str))


# ------------------------------------------------------------------------------------ ragged helpers


def _lengths(ids):
    """int32 [batch]: the row lengths of a RaggedTensor [batch, None]."""
    return tf.cast(ids.row_lengths(), tf.int32)


def _positions(ids):
    """Each token's position in its row, same ragged shape as `ids` [batch, None]."""
    return tf.ragged.range(_lengths(ids))


def _keep(ids, keep_lengths, side):
    """The first (side "right") or last (side "left") `keep_lengths[row]` tokens of each row."""
    positions = _positions(ids)
    if side == "left":
        start = _lengths(ids) - keep_lengths
        return tf.ragged.boolean_mask(ids, positions >= tf.expand_dims(start, 1))
    return tf.ragged.boolean_mask(ids, positions < tf.expand_dims(keep_lengths, 1))


def _reverse_rows(ids):
    """Each row of a RaggedTensor [batch, None] reversed."""
    lengths = _lengths(ids)
    reversed_positions = tf.expand_dims(lengths - 1, 1) - _positions(ids)
    flat_index = reversed_positions.flat_values + tf.repeat(tf.cast(ids.row_starts(), tf.int32), lengths)
    return ids.with_flat_values(tf.gather(ids.flat_values, flat_index))


def pad(ids, length, value, side):
    """RaggedTensor [batch, None] -> dense [batch, length], padded with `value` on `side`."""
    shape = tf.stack([ids.nrows(), tf.cast(length, tf.int64)])
    if side == "left":
        return tf.reverse(_reverse_rows(ids).to_tensor(value, shape=shape), axis=[1])
    return ids.to_tensor(value, shape=shape)


def _longest_first_lengths(first_lengths, second_lengths, budget):
    """How many tokens of each sequence the pair keeps, as tokenizers' LongestFirst truncation decides.

    The shorter one keeps all its tokens if it fits in half the budget; the longer one gets the rest. Else
    both get half, the longer (the second on a tie) the odd token. Pairs within the budget keep everything.
    """
    shorter = tf.minimum(first_lengths, second_lengths)
    half = budget // 2
    shorter_kept = tf.where(shorter > half, half, shorter)
    longer_kept = tf.where(shorter > half, budget - half, budget - shorter)
    first_is_longer = first_lengths > second_lengths
    first_kept = tf.where(first_is_longer, longer_kept, shorter_kept)
    second_kept = tf.where(first_is_longer, shorter_kept, longer_kept)
    fits = first_lengths + second_lengths <= budget
    return (tf.where(fits, first_lengths, first_kept), tf.where(fits, second_lengths, second_kept))


def _only_one_lengths(target_lengths, other_lengths, budget, which):
    """The kept length of the one sequence truncated (`only_first` / `only_second`). tokenizers refuses a pair
    whose other sequence leaves this one no token, and so does this (an assertion in the graph)."""
    kept = budget - other_lengths
    fits = target_lengths + other_lengths <= budget
    check = tf.debugging.assert_positive(
        tf.where(fits, 1, kept),
        message=f"truncation='{which}': the other sequence alone takes max_length; this one cannot be truncated.",
    )
    with tf.control_dependencies([check]):
        return tf.where(fits, target_lengths, kept)


# ------------------------------------------------------------------------------------ the layer


@keras.saving.register_keras_serializable(package="tfformers")
class TFTokenizerBase(keras.layers.Layer):
    """An in-graph tokenizer: strings in, `{"input_ids", "attention_mask", ("token_type_ids")}` out."""

    def __init__(self, *, template=None, pad_token_id=None, padding_side="right", truncation_side="right",
                 model_max_length=None, model_input_names=("input_ids", "token_type_ids", "attention_mask"),
                 special_token_ids=(), clean_up_tokenization_spaces=False, **kwargs):
        super().__init__(**kwargs)
        self.template = template or NO_SPECIAL_TOKENS
        self.pad_token_id = pad_token_id
        self.padding_side = padding_side
        self.truncation_side = truncation_side
        if model_max_length is not None and model_max_length >= _NO_MAX_LENGTH:
            model_max_length = None
        self.model_max_length = model_max_length
        self.model_input_names = list(model_input_names)
        self.special_token_ids = sorted(special_token_ids)  # what `detokenize` leaves out
        self.clean_up_tokenization_spaces = clean_up_tokenization_spaces

    # --------------------------------------------------------------------- what a subclass implements

    def tokenize_ids(self, texts):
        raise NotImplementedError

    def detokenize(self, ids):
        raise NotImplementedError

    @classmethod
    def vocabulary_config(cls, tokenizer, tokenizer_json):
        raise NotImplementedError

    # --------------------------------------------------------------------- construction

    @classmethod
    def base_config(cls, tokenizer, tokenizer_json):
        """The base's constructor keywords from a transformers tokenizer and its backend's JSON (or None)."""
        if tokenizer_json is None:
            template, special_ids = None, tokenizer.all_special_ids
        else:  # what the backend's own decode(skip_special_tokens=True) leaves out
            template = special_tokens_template(tokenizer_json)
            special_ids = [token["id"] for token in tokenizer_json["added_tokens"] if token["special"]]
        # transformers skips the clean-up for BPE models unless forced: it would strip real spaces
        is_bpe = tokenizer_json is not None and tokenizer_json["model"]["type"] == "BPE"
        forced = getattr(tokenizer, "clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output", False)
        return {
            "template": template,
            "pad_token_id": tokenizer.pad_token_id,
            "padding_side": tokenizer.padding_side,
            "truncation_side": tokenizer.truncation_side,
            "model_max_length": tokenizer.model_max_length,
            "model_input_names": list(tokenizer.model_input_names),
            "special_token_ids": special_ids,
            "clean_up_tokenization_spaces": bool(tokenizer.clean_up_tokenization_spaces) and (not is_bpe or forced),
        }

    @classmethod
    def from_tokenizer(cls, tokenizer, **kwargs):
        """The in-graph twin of a transformers tokenizer (fast: its `backend_tokenizer` JSON is read)."""
        backend = getattr(tokenizer, "backend_tokenizer", None)
        tokenizer_json = json.loads(backend.to_str()) if backend is not None else None
        config = {**cls.base_config(tokenizer, tokenizer_json), **cls.vocabulary_config(tokenizer, tokenizer_json)}
        return cls(**{**config, **kwargs})

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """Loads transformers' tokenizer of a folder or Hub repo (torch-free), then `from_tokenizer`."""
        from tfformers.tokenization.auto import AutoTokenizer

        return cls.from_tokenizer(AutoTokenizer.from_pretrained(pretrained_model_name_or_path), **kwargs)

    def get_config(self):
        return {
            **super().get_config(),
            "template": self.template,
            "pad_token_id": self.pad_token_id,
            "padding_side": self.padding_side,
            "truncation_side": self.truncation_side,
            "model_max_length": self.model_max_length,
            "model_input_names": self.model_input_names,
            "special_token_ids": self.special_token_ids,
            "clean_up_tokenization_spaces": self.clean_up_tokenization_spaces,
        }

    # --------------------------------------------------------------------- the call

    def call(self, text, text_pair=None, *, padding="longest", max_length=None, truncation=None,
             pad_to_multiple_of=None, return_token_type_ids=None, return_attention_mask=True,
             add_special_tokens=True, return_sequence_ids=False):
        """transformers' `tokenizer(text, text_pair, ...)` for tf.string `[batch]` (or a scalar: batch 1).

        `padding`: "longest" (True), "max_length", or False for RaggedTensors. `truncation`: True /
        "longest_first", "only_first", "only_second", or None/False. With `truncation` and no `max_length`,
        the tokenizer's `model_max_length` applies, as in transformers. `return_sequence_ids` adds
        `sequence_ids`: 0 for tokens of `text`, 1 for `text_pair`, -1 for special tokens and padding
        (transformers' `encoding.sequence_ids()`, which tells a question from its context in any template).
        """
        padding, truncation, max_length = self._resolve_options(padding, truncation, max_length, pad_to_multiple_of)
        first = self.tokenize_ids(_as_batch(text))
        second = self.tokenize_ids(_as_batch(text_pair)) if text_pair is not None else None
        template = self._template(second is not None, add_special_tokens)
        if truncation is not None:
            first, second = self._truncate(first, second, truncation, max_length - _added_count(template))
        ids, type_ids, sequence_ids = self._apply_template(template, first, second)
        outputs = {"input_ids": ids}
        if return_token_type_ids or (return_token_type_ids is None and "token_type_ids" in self.model_input_names):
            outputs["token_type_ids"] = type_ids
        if return_attention_mask:
            outputs["attention_mask"] = tf.ones_like(ids)
        if return_sequence_ids:
            outputs["sequence_ids"] = sequence_ids
        if padding is None:
            return outputs
        length = tf.cast(ids.bounding_shape(axis=1), tf.int32)  # the longest row
        if padding == "max_length":
            length = tf.maximum(length, max_length)  # a longer row (not truncated) is kept whole
        if pad_to_multiple_of:
            length = -(-length // pad_to_multiple_of) * pad_to_multiple_of
        pad_values = {"input_ids": self._pad_id(), "token_type_ids": 0, "attention_mask": 0, "sequence_ids": -1}
        padded = {name: pad(value, length, pad_values[name], self.padding_side) for name, value in outputs.items()}
        if padding == "max_length" and truncation is not None:  # every row is exactly max_length: say so statically
            padded = {name: tf.ensure_shape(value, [None, max_length]) for name, value in padded.items()}
        return padded

    def _resolve_options(self, padding, truncation, max_length, pad_to_multiple_of):
        """(padding "longest" / "max_length" / None, truncation strategy or None, max_length), as transformers'
        `_get_padding_truncation_strategies` resolves them."""
        if max_length is not None and padding is False and truncation is None:
            truncation = "longest_first"  # transformers: max_length alone means truncation
        padding = {True: "longest", False: None, "do_not_pad": None}.get(padding, padding)
        if padding not in (None, *PADDING_STRATEGIES):
            raise InputError(f"padding={padding!r}; use True ('longest'), 'max_length' or False.")
        truncation = {True: "longest_first", False: None, "do_not_truncate": None}.get(truncation, truncation)
        if truncation not in (None, *TRUNCATION_STRATEGIES):
            raise InputError(f"truncation={truncation!r}; use True, False or one of {TRUNCATION_STRATEGIES}.")
        if max_length is None and (padding == "max_length" or truncation is not None):
            max_length = self.model_max_length
            if max_length is None and padding == "max_length":
                raise InputError("padding='max_length' needs max_length: this tokenizer has no model_max_length.")
            if max_length is None:
                truncation = None  # transformers: no limit known, nothing to truncate to
        if truncation and padding and pad_to_multiple_of and max_length % pad_to_multiple_of:
            raise InputError(f"Truncation and padding are both activated but truncation length ({max_length}) is "
                             f"not a multiple of pad_to_multiple_of ({pad_to_multiple_of}).")
        return padding, truncation, max_length

    def _template(self, is_pair, add_special_tokens):
        templates = self.template if add_special_tokens else NO_SPECIAL_TOKENS
        return templates["pair" if is_pair else "single"]

    def _truncate(self, first, second, strategy, budget):
        """Both sequences cut to fit `budget` tokens (max_length less the special tokens) together."""
        if budget < 0:
            raise InputError(f"max_length is shorter than the {-budget} special tokens it must hold.")
        first_lengths = _lengths(first)
        if second is None:
            if strategy == "only_second":
                raise InputError("truncation='only_second' needs a text_pair.")
            return _keep(first, tf.minimum(first_lengths, budget), self.truncation_side), None
        second_lengths = _lengths(second)
        if strategy == "longest_first":
            first_kept, second_kept = _longest_first_lengths(first_lengths, second_lengths, budget)
        elif strategy == "only_first":
            first_kept = _only_one_lengths(first_lengths, second_lengths, budget, strategy)
            second_kept = second_lengths
        else:
            first_kept = first_lengths
            second_kept = _only_one_lengths(second_lengths, first_lengths, budget, strategy)
        return _keep(first, first_kept, self.truncation_side), _keep(second, second_kept, self.truncation_side)

    @staticmethod
    def _apply_template(template, first, second):
        """(ids, type ids, sequence ids), RaggedTensors [batch, None]: the sequences with the template's special
        tokens; a sequence id is 0 for `A`, 1 for `B`, -1 for a special token."""
        batch = first.nrows()
        sequences = {"A": first, "B": second}
        id_parts, type_parts, sequence_parts = [], [], []
        for piece, type_id in template:
            if isinstance(piece, str):
                part = tf.cast(sequences[piece], tf.int32)
            else:  # special tokens: the same ids on every row
                part = tf.RaggedTensor.from_tensor(tf.tile(tf.constant([piece], tf.int32), [batch, 1]))
            id_parts.append(part)
            type_parts.append(tf.ones_like(part) * type_id)
            sequence_parts.append(tf.ones_like(part) * ({"A": 0, "B": 1}[piece] if isinstance(piece, str) else -1))
        return tf.concat(id_parts, axis=1), tf.concat(type_parts, axis=1), tf.concat(sequence_parts, axis=1)

    def _pad_id(self):
        if self.pad_token_id is None:
            raise InputError("This tokenizer has no pad token; pass padding=False for RaggedTensors.")
        return self.pad_token_id

    # --------------------------------------------------------------------- helpers for `detokenize`

    def without_special_tokens(self, ids):
        """int32 RaggedTensor [batch, None] of `ids` (dense or ragged) less the special tokens (padding
        included), as transformers' `decode(..., skip_special_tokens=True)` leaves them out."""
        ids = ids if isinstance(ids, tf.RaggedTensor) else tf.RaggedTensor.from_tensor(ids)
        ids = tf.cast(ids, tf.int32)
        if not self.special_token_ids:
            return ids
        special = tf.constant(self.special_token_ids, tf.int32)
        is_special = tf.reduce_any(tf.expand_dims(ids, -1) == special, axis=-1)
        return tf.ragged.boolean_mask(ids, tf.logical_not(is_special))

    def clean_up_spaces(self, texts):
        """transformers' `clean_up_tokenization` (" ." -> "." ...) when the tokenizer asks for it."""
        return clean_up_tokenization(texts) if self.clean_up_tokenization_spaces else texts


def re2_literal(text):
    """An RE2 pattern matching `text` literally (its metacharacters escaped)."""
    return "".join("\\" + char if char in r".^$*+?()[]{}|\\" else char for char in text)


def clean_up_tokenization(texts):
    """tf.string tensor with transformers' / tokenizers' clean-up replacements applied, in their order."""
    for dirty, clean in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                         (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):
        texts = tf.strings.regex_replace(texts, re2_literal(dirty), clean)
    return texts


def _as_batch(texts):
    """tf.string [batch]; a scalar string becomes a batch of one."""
    texts = tf.convert_to_tensor(texts, tf.string)
    return tf.reshape(texts, [-1]) if texts.shape.rank == 0 else texts


# ------------------------------------------------------------------------------------ added tokens


def plain_added_tokens(tokenizer, tokenizer_json):
    """[[content, id]] of the added tokens tokenizers matches in the raw text (as `tokenize_around` does):
    those neither normalized first nor stripping the spaces around them; special ones unless the tokenizer
    splits special tokens. A ConfigError names any other kind."""
    added = []
    for token in (tokenizer_json or {}).get("added_tokens", []):
        if token["special"] and getattr(tokenizer, "split_special_tokens", False):
            continue
        if token.get("normalized") or token.get("lstrip") or token.get("rstrip") or token.get("single_word"):
            raise ConfigError(f"Added token {token['content']!r} is normalized, strips spaces or matches single "
                              "words only; the in-graph tokenizer matches added tokens literally.")
        added.append([token["content"], token["id"]])
    return added


def tokenize_around(texts, added_tokens, tokenize):
    """int32 RaggedTensor [batch, None]: `texts` [batch] cut at the added tokens ([[content, id]]), each one its
    id, `tokenize` (tf.string [n] -> int32 ragged [n, None]) on the text between them."""
    if not added_tokens:
        return tokenize(texts)
    contents = sorted((content for content, _ in added_tokens), key=len, reverse=True)  # longest match first
    pattern = "|".join(map(re2_literal, contents))
    # Each match fenced by 0xFF bytes (never in UTF-8 text), then cut there: tensorflow_text.regex_split would
    # stop at a NUL character.
    fenced = tf.strings.regex_replace(texts, pattern, b"\xff\\0\xff")
    pieces = tf.strings.split(fenced, sep=b"\xff")  # [batch, pieces]
    flat = pieces.flat_values
    matches = tf.equal(tf.expand_dims(flat, 1), tf.constant([content for content, _ in added_tokens]))
    is_added = tf.expand_dims(tf.reduce_any(matches, axis=1), 1)  # [pieces, 1]
    added_id = tf.gather(tf.constant([i for _, i in added_tokens], tf.int32), tf.argmax(matches, axis=1))
    text_ids = tokenize(flat)
    text_ids = tf.ragged.boolean_mask(text_ids, tf.ones_like(text_ids, tf.bool) & tf.logical_not(is_added))
    added_ids = tf.ragged.boolean_mask(tf.expand_dims(added_id, 1), is_added)  # [pieces, 0 or 1]
    return pieces.with_flat_values(tf.concat([text_ids, added_ids], axis=1)).merge_dims(1, 2)
