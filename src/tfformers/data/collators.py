"""Numpy padding, and the collators built on it.

A collator is a callable taking a list of feature dicts (transformers' DataCollator convention) and returning
a dict of numpy arrays. Ours also declare their output (`output_columns`), so `prepare_tf_dataset` knows the
`tf.data` signature of their batches without running one.
"""

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import tensorflow as tf
import transformers

from tfformers.data.columns import (
    LABEL_PAD_TOKEN_ID,
    Ragged,
    Role,
    align_to_main,
    attention_mask_for,
    columns_from_rows,
    infer_columns,
    normalize_dtype,
    rename_label_aliases,
    role_of,
)
from tfformers.errors import InputError

_LABELS = ("labels",)  # the label column our collators know


@dataclass(frozen=True)
class Padding:
    """What padding writes: the pad id in token ids, the label pad id in per-token labels, 0 elsewhere;
    lengths rounded up to `multiple`; padding on `side` ("right" or "left")."""

    pad_token_id: int = 0
    label_pad_token_id: int = LABEL_PAD_TOKEN_ID
    multiple: int = None
    side: str = "right"

    def value(self, role):
        if role is Role.TOKENS:
            return self.pad_token_id
        if role is Role.SEQUENCE_LABELS:
            return self.label_pad_token_id
        return 0


def round_up(length, multiple):
    if not multiple:
        return int(length)
    return -(-int(length) // multiple) * multiple


def pad_ragged(column, length, pad_value, side="right"):
    """Ragged -> (batch, length, *trailing) array, each row padded with pad_value on `side`, and the
    (batch, length) mask of the real values."""
    lengths = column.lengths
    if len(lengths) and lengths.max() > length:
        raise InputError(f"cannot pad a sequence of length {int(lengths.max())} to length {length}.")
    trailing = column.values.shape[1:]
    out = np.full((len(lengths), length) + trailing, pad_value, dtype=column.values.dtype)
    positions = np.arange(length)[None, :]
    if side == "left":
        valid = positions >= (length - lengths)[:, None]
    else:
        valid = positions < lengths[:, None]
    out[valid] = column.values  # row-major order of the mask == order of the flat values
    return out, valid


def _main_length(column, main, multiple, target_length):
    """The length the main input is padded to: its bucket's, or its longest example rounded up."""
    longest = int(column.lengths.max()) if len(column) else 0
    length = target_length if target_length is not None else round_up(longest, multiple)
    if longest > length:
        raise InputError(
            f"an example has {longest} tokens in {main!r}, more than the largest bucket boundary ({length}); "
            f"add a larger boundary or truncate when tokenizing (tokenizer(..., truncation=True, "
            f"max_length={length}))."
        )
    return length


def _own_length(column, multiple):
    """A sequence not as long as the main input (e.g. seq2seq labels): its own longest, rounded up unless
    every row is equally long (then it is a vector, not a sequence)."""
    longest = int(column.lengths.max()) if len(column) else 0
    varies = len(column) and column.lengths.min() != longest
    return round_up(longest, multiple) if varies else longest


def _follows_main(name, column, declared, main, main_column):
    """Whether `column` is padded to the main input's length: as declared, or (unknown) when every row is."""
    if name == main:
        return True
    if not isinstance(main_column, Ragged):
        return False
    same = np.array_equal(column.lengths, main_column.lengths)
    if declared.aligned and not same:
        i = int(np.flatnonzero(column.lengths != main_column.lengths)[0])
        raise InputError(
            f"example {i} of a batch has {column.lengths[i]} values in {name!r} but {main_column.lengths[i]} "
            f"tokens in {main!r}; {name!r} needs one value per token of {main!r}."
        )
    return same if declared.aligned is None else bool(declared.aligned)


def pad_batch(columns, declared, *, main, padding, target_length=None, attention_mask=False):
    """Pad the sequences of one batch ({name: Ragged or ndarray}) as `declared` ({name: Column}) says: the
    main input to `target_length` (its bucket) or its longest example, rounded up; each sequence with its
    role's pad value. `attention_mask`: make one from the main input's lengths if the batch has none.
    Returns the batch and the (batch, length) mask of the main input's real tokens (None: not a sequence)."""
    main_column = columns.get(main)
    main_length = None
    if isinstance(main_column, Ragged):
        main_length = _main_length(main_column, main, padding.multiple, target_length)
    batch, valid = {}, None
    for name, column in columns.items():
        if not isinstance(column, Ragged):
            batch[name] = column
            continue
        follows = _follows_main(name, column, declared[name], main, main_column)
        length = main_length if follows else _own_length(column, padding.multiple)
        batch[name], mask = pad_ragged(column, length, padding.value(declared[name].role), padding.side)
        if name == main:
            valid = mask
    if attention_mask and valid is not None and "attention_mask" not in batch:
        batch["attention_mask"] = valid.astype(np.int32)
    return batch, valid


def _pad_axis_1(array, length, value, side):
    widths = [(0, 0)] * array.ndim
    widths[1] = (length - array.shape[1], 0) if side == "left" else (0, length - array.shape[1])
    return np.pad(array, widths, constant_values=value)


def pad_to_length(batch, declared, *, main, padding, target_length):
    """A collate_fn's padded batch padded further along axis 1: to `target_length` (its bucket) or up to a
    multiple of `padding.multiple`. The sequences as long as the main input are padded with it."""
    if main not in batch or not declared[main].role.padded or batch[main].ndim < 2:
        return batch
    current = batch[main].shape[1]
    target = target_length if target_length is not None else round_up(current, padding.multiple)
    if current > target:
        raise InputError(
            f"collate_fn returned {main!r} of length {current}, more than its bucket boundary {target}."
        )
    if target == current:
        return batch
    return {
        name: _pad_axis_1(array, target, padding.value(declared[name].role), padding.side)
        if declared[name].role.padded and array.ndim >= 2 and array.shape[1] == current else array
        for name, array in batch.items()
    }


def _to_return_tensors(batch, return_tensors):
    if return_tensors in (None, "np"):
        return batch
    if return_tensors == "tf":
        return {k: tf.convert_to_tensor(v) for k, v in batch.items()}
    raise InputError(f"return_tensors={return_tensors!r} is not supported; use 'np' or 'tf'.")


def _tokenizer_pad_id(tokenizer, default=0):
    pad_id = getattr(tokenizer, "pad_token_id", None)
    return default if pad_id is None else int(pad_id)


def _as_collated(column, name):
    """A feature column as our collators output it: sequences padded per batch (length unknown ahead)."""
    stacked = not column.role.padded
    role = role_of(name, len(column.shape), _LABELS, stacked=stacked)
    shape = column.shape if stacked else (None,) + column.shape[1:]
    return replace(column, name=name, role=role, shape=shape, aligned=None)


class DataCollatorWithPadding:
    """Pads `input_ids` with the tokenizer's pad id, sequence labels with -100, other sequences with 0,
    each batch to its longest example (rounded up to `pad_to_multiple_of`); renames `label`/`label_ids` to
    `labels`; creates `attention_mask` when the tokenizer uses one and the features have none."""

    label_pad_token_id = LABEL_PAD_TOKEN_ID

    def __init__(self, tokenizer, pad_to_multiple_of=None, return_tensors="np"):
        self.tokenizer = tokenizer
        self.pad_to_multiple_of = pad_to_multiple_of
        self.return_tensors = return_tensors

    @property
    def _makes_attention_mask(self):
        return "attention_mask" in getattr(self.tokenizer, "model_input_names", ("input_ids", "attention_mask"))

    def _columns(self, features):
        """Feature dicts (or a dict of lists) -> {name: column}, label aliases renamed."""
        if len(features) == 0:
            raise InputError("the collator got no features." if isinstance(features, Mapping)
                             else "the collator got an empty list of features.")
        columns = rename_label_aliases(columns_from_rows(features), _LABELS)
        if "input_ids" not in columns:
            raise InputError(f"features have no 'input_ids'; they have {sorted(columns)}.")
        return columns

    def _padded(self, columns):
        padding = Padding(
            pad_token_id=_tokenizer_pad_id(self.tokenizer),
            label_pad_token_id=self.label_pad_token_id,
            multiple=self.pad_to_multiple_of,
            side=getattr(self.tokenizer, "padding_side", "right") or "right",
        )
        declared = infer_columns(columns, main="input_ids", label_names=_LABELS)
        return pad_batch(columns, declared, main="input_ids", padding=padding,
                         attention_mask=self._makes_attention_mask)

    def __call__(self, features, return_tensors=None):
        batch, _ = self._padded(self._columns(features))
        return _to_return_tensors(batch, return_tensors or self.return_tensors)

    def output_columns(self, columns):
        """The columns of this collator's batches ({name: Column}), given those of its features."""
        columns = rename_label_aliases(dict(columns), _LABELS)
        if "input_ids" not in columns:
            raise InputError(f"features have no 'input_ids'; they have {sorted(columns)}.")
        out = {name: _as_collated(column, name) for name, column in columns.items()}
        if self._makes_attention_mask and "attention_mask" not in out and out["input_ids"].role.padded:
            out["attention_mask"] = attention_mask_for(out["input_ids"])
        return align_to_main(out, "input_ids")


class DataCollatorForMultipleChoice:
    """Multiple-choice rows ({"input_ids": one list of ids per choice, ..., "label": the right choice}) ->
    `[batch, choices, longest]` arrays, every choice padded as DataCollatorWithPadding pads a sequence, and
    `labels` [batch]. Choices may differ in length; every row needs the same number of them."""

    def __init__(self, tokenizer=None, pad_to_multiple_of=None, return_tensors="np"):
        self.tokenizer = tokenizer
        self.return_tensors = return_tensors
        self._pad = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_to_multiple_of)

    def __call__(self, features, return_tensors=None):
        labels = rename_label_aliases({k: [f[k] for f in features] for k in features[0]}, _LABELS).pop("labels", None)
        per_choice = [k for k in features[0] if k not in ("labels", "label", "label_ids")]
        counts = sorted({len(f[per_choice[0]]) for f in features})
        if len(counts) > 1:
            raise InputError(f"multiple-choice rows of one batch have {counts} choices in {per_choice[0]!r}; "
                             "every row needs the same number of choices.")
        flat = [{k: f[k][i] for k in per_choice} for f in features for i in range(counts[0])]
        batch = {k: v.reshape(len(features), counts[0], -1) for k, v in self._pad(flat).items()}  # [b, c, len]
        if labels is not None:
            batch["labels"] = normalize_dtype(np.asarray(labels))
        return _to_return_tensors(batch, return_tensors or self.return_tensors)


class DataCollatorForTokenClassification(DataCollatorWithPadding):
    """Like DataCollatorWithPadding; `labels` (one per token) are padded with `label_pad_token_id` to the
    same length as `input_ids`."""

    def __init__(self, tokenizer, label_pad_token_id=LABEL_PAD_TOKEN_ID, pad_to_multiple_of=None,
                 return_tensors="np"):
        super().__init__(tokenizer, pad_to_multiple_of=pad_to_multiple_of, return_tensors=return_tensors)
        self.label_pad_token_id = label_pad_token_id

    def __call__(self, features, return_tensors=None):
        columns = self._columns(features)
        labels, ids = columns.get("labels"), columns["input_ids"]
        if isinstance(labels, Ragged) and isinstance(ids, Ragged):
            bad = np.flatnonzero(labels.lengths != ids.lengths)
            if len(bad):
                i = int(bad[0])
                raise InputError(
                    f"example {i} of the batch has {labels.lengths[i]} labels but {ids.lengths[i]} tokens; "
                    "token classification needs one label per token (align word labels to tokens with "
                    "word_ids(), using -100 for special tokens and continuation pieces)."
                )
        batch, _ = self._padded(columns)
        return _to_return_tensors(batch, return_tensors or self.return_tensors)

    def output_columns(self, columns):
        out = super().output_columns(columns)
        if "labels" in out and out["labels"].role.padded:
            out["labels"] = replace(out["labels"], aligned=True)  # checked on every batch
        return out


class DataCollatorForLanguageModeling(DataCollatorWithPadding):
    """Masked (mlm=True) or causal (mlm=False) language-modeling batches, in numpy.

    mlm=True: each real, non-special token is selected with probability `mlm_probability`; a selected token
    becomes the mask token with probability `mask_replace_prob` (0.8), a random token id with
    `random_replace_prob` (0.1), and stays unchanged otherwise (0.1). Special tokens (the tokenizer's
    `all_special_ids`, or the features' `special_tokens_mask`) and padding are never selected. `labels`
    hold the original id at selected positions and -100 elsewhere.

    mlm=False: `labels` = `input_ids` with padding positions set to -100 (padding is found from the lengths
    and attention_mask, not from the pad id, so pad == eos works); the shift happens in the loss.

    `seed` makes the sequence of batches reproducible.
    """

    def __init__(self, tokenizer, mlm=True, mlm_probability=0.15, pad_to_multiple_of=None, seed=None,
                 mask_replace_prob=0.8, random_replace_prob=0.1, return_tensors="np"):
        super().__init__(tokenizer, pad_to_multiple_of=pad_to_multiple_of, return_tensors=return_tensors)
        if mlm and getattr(tokenizer, "mask_token_id", None) is None:
            raise InputError(
                "mlm=True needs a tokenizer with a mask token; this one has none. Use mlm=False for causal "
                "language modeling."
            )
        if not 0.0 <= mlm_probability <= 1.0:
            raise InputError(f"mlm_probability must be in [0, 1], got {mlm_probability}.")
        if mask_replace_prob < 0 or random_replace_prob < 0 or mask_replace_prob + random_replace_prob > 1:
            raise InputError(
                "mask_replace_prob and random_replace_prob must be >= 0 and sum to at most 1, got "
                f"{mask_replace_prob} and {random_replace_prob}."
            )
        self.mlm = mlm
        self.mlm_probability = mlm_probability
        self.mask_replace_prob = mask_replace_prob
        self.random_replace_prob = random_replace_prob
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._special_ids = np.array(sorted(set(getattr(tokenizer, "all_special_ids", []) or [])), np.int64)
        self._vocab_size = len(tokenizer)

    def __call__(self, features, return_tensors=None):
        batch, valid = self._padded(self._columns(features))
        ids = batch["input_ids"]
        if valid is None:
            valid = np.ones(ids.shape, dtype=bool)
        if "attention_mask" in batch:
            valid = valid & (batch["attention_mask"] != 0)
        special_mask = batch.pop("special_tokens_mask", None)
        if self.mlm:
            batch["input_ids"], batch["labels"] = self._mask(ids, valid, special_mask)
        else:
            batch["labels"] = np.where(valid, ids, LABEL_PAD_TOKEN_ID).astype(ids.dtype)
        return _to_return_tensors(batch, return_tensors or self.return_tensors)

    def _mask(self, ids, valid, special_mask):
        """(masked input ids, labels): both [batch, length]."""
        candidates = valid & ~np.isin(ids, self._special_ids)
        if special_mask is not None:
            candidates &= special_mask == 0
        rng = self._rng
        selected = candidates & (rng.random(ids.shape) < self.mlm_probability)
        draw = rng.random(ids.shape)
        to_mask = selected & (draw < self.mask_replace_prob)
        to_random = selected & ~to_mask & (draw < self.mask_replace_prob + self.random_replace_prob)
        new_ids = ids.copy()
        new_ids[to_mask] = self.tokenizer.mask_token_id
        new_ids[to_random] = rng.integers(0, self._vocab_size, size=int(to_random.sum()))
        return new_ids, np.where(selected, ids, LABEL_PAD_TOKEN_ID).astype(ids.dtype)

    def output_columns(self, columns):
        out = super().output_columns(columns)
        out.pop("special_tokens_mask", None)
        out["labels"] = replace(out["input_ids"], name="labels", role=Role.SEQUENCE_LABELS, source=None,
                                description="input_ids with the unscored positions set to -100")
        return out


# transformers 5's collators return NumPy or PyTorch tensors (return_tensors="tf" gives None); these two are
# transformers' own, computed in NumPy and converted when "tf" is asked for, as in transformers 4.x.


def _tf_batch(batch):
    """Each value of `batch` (a dict or BatchEncoding, changed in place) as a TensorFlow tensor; None stays."""
    for key, value in list(batch.items()):
        if value is not None:
            batch[key] = tf.convert_to_tensor(value)
    return batch


class _NumpyOrTensorFlow:
    """A transformers collator that answers `return_tensors="tf"` too: it collates in NumPy, then converts
    (transformers 5 dropped TensorFlow tensors)."""

    def __call__(self, features, return_tensors=None):
        return_tensors = return_tensors or self.return_tensors
        if return_tensors == "tf":
            return _tf_batch(super().__call__(features, return_tensors="np"))
        return super().__call__(features, return_tensors=return_tensors)


@dataclass
class DefaultDataCollator(_NumpyOrTensorFlow, transformers.DefaultDataCollator):
    """transformers' `DefaultDataCollator`: stacks each feature (`label`/`label_ids` become `labels`), no
    padding. `return_tensors` "np" (the default here; 4.x's was "pt") or "tf"."""

    return_tensors: str = "np"


@dataclass
class DataCollatorForSeq2Seq(_NumpyOrTensorFlow, transformers.DataCollatorForSeq2Seq):
    """transformers' `DataCollatorForSeq2Seq`: pads the inputs with the tokenizer and `labels` with
    `label_pad_token_id` (-100). `return_tensors` "np" (the default here; 4.x's was "pt") or "tf"."""

    return_tensors: str = "np"
