"""From 🤗 `datasets` to `tf.data`: per-batch padding, XLA-friendly length buckets, numpy collators.

`prepare_tf_dataset` is what `model.prepare_tf_dataset(...)` calls with the model's input names and the
task's label names. It keeps the columns the model accepts plus the label columns, pads each batch (not the
whole dataset) and yields Keras-style `(inputs, labels)` pairs:

    tf_ds = prepare_tf_dataset(tokenized, input_names=("input_ids", "attention_mask"), tokenizer=tok,
                               batch_size=16, bucket_boundaries=(64, 128, 256))
    model.fit(tf_ds, epochs=3)

Design, in short:

* Map-style `datasets.Dataset`: each epoch draws a fresh permutation of the row indices with numpy, reads a
  whole batch with one Arrow gather (`dataset[batch_indices]`), and pads it with vectorized numpy. A
  permutation of indices costs 8 bytes per row, so by default the "shuffle buffer" is the whole dataset (an
  exact uniform shuffle) up to `MAX_FULL_SHUFFLE` rows; beyond that, or when `shuffle_buffer_size` is
  given, rows are shuffled inside consecutive blocks of that size and the blocks are visited in random
  order (reads stay local on huge disk-backed datasets).
* Streaming `datasets.IterableDataset`: `dataset.shuffle(seed, buffer_size)` with `set_epoch(epoch)` for a
  new order each epoch; default buffer `DEFAULT_STREAM_SHUFFLE_BUFFER` examples.
* Padding: `input_ids`/`decoder_input_ids` with the tokenizer's pad id, sequence label columns with -100,
  everything else (attention_mask, token_type_ids, ...) with 0. A column whose per-example lengths equal
  the main input's is padded to the same length as the main input. `attention_mask` is created from the
  lengths when the model takes one and the dataset has none.
* `pad_to_multiple_of` rounds each batch's length up. `bucket_boundaries=(b1, ..., bn)` puts an example of
  length L in the first bucket with L <= b_i, builds batches inside a bucket and pads them to exactly b_i,
  so there are at most n sequence lengths; with `drop_remainder=True` (the default when bucketing or
  `pad_to_multiple_of` is set) the batch dimension is static too, so XLA compiles at most one program per
  bucket. Bucketing reorders examples (use it for training, not for `predict`); an example longer than the
  largest boundary is an error (truncate when tokenizing, or add a boundary). `drop_remainder=True` drops
  each bucket's last partial batch (fewer than `batch_size` examples per bucket per epoch; since the
  order is reshuffled, different examples each epoch).
* Integers come out as int32 (TPU/XLA friendly), floats as float32.
"""

from __future__ import annotations

import inspect
import itertools
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from .errors import InputError

logger = logging.getLogger(__name__)

__all__ = [
    "DataCollatorForLanguageModeling",
    "DataCollatorForTokenClassification",
    "DataCollatorWithPadding",
    "PaddingStats",
    "padding_stats",
    "padding_stats_padded_to_longest",
    "prepare_tf_dataset",
]

LABEL_PAD_TOKEN_ID = -100
MAX_FULL_SHUFFLE = 10_000_000  # rows; above this a map-style dataset is block-shuffled by default
DEFAULT_STREAM_SHUFFLE_BUFFER = 1_000  # examples held by an IterableDataset's shuffle buffer

_PAD_ID_COLUMNS = ("input_ids", "decoder_input_ids")
_LABEL_ALIASES = ("label", "label_ids")  # renamed to "labels", as transformers' collators do
_INT32 = np.iinfo(np.int32)


# --------------------------------------------------------------------------------------------------
# Columns: a batch is a dict of name -> np.ndarray (fixed shape) or _Ragged (one sequence per example)
# --------------------------------------------------------------------------------------------------


class _Ragged:
    """Variable-length rows stored flat: values (sum(lengths), *trailing) and lengths (batch,)."""

    __slots__ = ("values", "lengths")

    def __init__(self, values, lengths):
        self.values = values
        self.lengths = np.asarray(lengths, dtype=np.int64)

    def __len__(self):
        return len(self.lengths)


def _normalize_dtype(array):
    """int* -> int32 (when it fits), float64 -> float32; other dtypes unchanged."""
    kind = array.dtype.kind
    if kind in "iu" and array.dtype != np.int32:
        if array.dtype.itemsize < 4 or array.size == 0 or (
            array.min() >= _INT32.min and array.max() <= _INT32.max
        ):
            return array.astype(np.int32)
    elif array.dtype == np.float64:
        return array.astype(np.float32)
    return array


def _is_numeric(array):
    return array.dtype.kind in "biuf"


def _column_from_values(values):
    """One column from a list holding each example's value (scalar, sequence or array)."""
    first = values[0]
    if isinstance(first, (str, bytes)) or first is None:
        return np.asarray(values, dtype=object if first is None else None)
    if np.ndim(first) == 0:
        return _normalize_dtype(np.asarray(values))
    if isinstance(first, (list, tuple)) and all(
        isinstance(v, (list, tuple)) and (not v or np.ndim(v[0]) == 0) for v in values
    ):
        # The common case, token ids as Python lists: flatten without building per-row arrays.
        lengths = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
        sample = next((v[0] for v in values if v), 0)
        if isinstance(sample, (str, bytes)):
            return _object_column(values)
        dtype = np.asarray(sample).dtype
        flat = np.fromiter(itertools.chain.from_iterable(values), dtype=dtype, count=int(lengths.sum()))
        return _Ragged(_normalize_dtype(flat), lengths)
    arrays = [np.asarray(v) for v in values]
    if not _is_numeric(arrays[0]):
        return _object_column(values)
    shapes = {a.shape for a in arrays}
    if len(shapes) == 1 and arrays[0].ndim >= 2:
        return _normalize_dtype(np.stack(arrays))  # fixed-size arrays (pixel values, ...)
    if len({a.shape[1:] for a in arrays}) != 1:
        raise InputError(
            f"examples in one batch have arrays of incompatible shapes {sorted(shapes)}; only the first "
            "axis may differ between examples (it is the one that gets padded)."
        )
    lengths = np.array([a.shape[0] for a in arrays], dtype=np.int64)
    return _Ragged(_normalize_dtype(np.concatenate(arrays)), lengths)


def _object_column(values):
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


def _column_from_arrow(array):
    """One column from an Arrow (chunked) array: list<number> -> _Ragged, number -> ndarray, zero-copy-ish."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    kind = array.type
    simple = lambda t: pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)  # noqa: E731
    if array.null_count == 0:
        if (pa.types.is_list(kind) or pa.types.is_large_list(kind)) and simple(kind.value_type):
            flat = array.flatten()
            if flat.null_count == 0:
                lengths = pc.list_value_length(array).to_numpy(zero_copy_only=False)
                return _Ragged(_normalize_dtype(flat.to_numpy(zero_copy_only=False)), lengths)
        elif simple(kind):
            return _normalize_dtype(array.to_numpy(zero_copy_only=False))
    return _column_from_values(array.to_pylist())


def _columns_from_rows(rows, keys=None):
    """list of example dicts (or a dict of lists) -> dict of columns."""
    if isinstance(rows, Mapping):
        return {k: _column_from_values(list(v)) for k, v in rows.items() if keys is None or k in keys}
    keys = keys if keys is not None else list(rows[0].keys())
    missing = [k for k in keys if any(k not in r for r in rows)]
    if missing:
        raise InputError(f"some examples lack the column(s) {missing}; every example needs the same keys.")
    return {k: _column_from_values([r[k] for r in rows]) for k in keys}


def _sequence_lengths(dataset, name):
    """Per-row lengths of a list column of a map-style dataset (Arrow only, no values copied), or None."""
    import pyarrow as pa
    import pyarrow.compute as pc

    array = dataset.select_columns([name]).with_format("arrow")[name]
    kind = array.type
    if not (pa.types.is_list(kind) or pa.types.is_large_list(kind)):
        return None
    return pc.list_value_length(array).to_numpy(zero_copy_only=False).astype(np.int64)


def _rename_label_aliases(columns, label_names):
    if "labels" in label_names and "labels" not in columns:
        for alias in _LABEL_ALIASES:
            if alias in columns:
                columns = {("labels" if k == alias else k): v for k, v in columns.items()}
                break
    return columns


def _round_up(length, multiple):
    if not multiple:
        return int(length)
    return int(math.ceil(length / multiple) * multiple)


def _pad_ragged(column, length, pad_value, side="right"):
    """_Ragged -> (batch, length, *trailing) array, each row padded with pad_value on `side`."""
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


def _pad_value(name, pad_token_id, label_names, label_pad_token_id):
    if name in _PAD_ID_COLUMNS:
        return pad_token_id
    if name in label_names:
        return label_pad_token_id
    return 0


def _pad_columns(
    columns,
    *,
    main,
    pad_token_id,
    label_names=("labels",),
    label_pad_token_id=LABEL_PAD_TOKEN_ID,
    pad_to_multiple_of=None,
    side="right",
    target_length=None,
    make_attention_mask=False,
):
    """Pad every ragged column of one batch. Returns (batch dict, valid-token mask of `main` or None,
    names of the padded columns)."""
    main_column = columns.get(main)
    main_length, valid = None, None
    if isinstance(main_column, _Ragged):
        longest = int(main_column.lengths.max()) if len(main_column) else 0
        main_length = target_length if target_length is not None else _round_up(longest, pad_to_multiple_of)
        if longest > main_length:
            raise InputError(
                f"an example has {longest} tokens in {main!r}, more than the largest bucket boundary "
                f"({main_length}); add a larger boundary or truncate when tokenizing "
                f"(tokenizer(..., truncation=True, max_length={main_length}))."
            )
    batch, padded = {}, set()
    for name, column in columns.items():
        if not isinstance(column, _Ragged):
            batch[name] = column
            continue
        aligned = main_length is not None and np.array_equal(column.lengths, main_column.lengths)
        if aligned:
            length = main_length
        else:  # e.g. seq2seq labels: own longest, rounded up unless every row is equally long (a vector)
            longest = int(column.lengths.max()) if len(column) else 0
            varies = len(column) and column.lengths.min() != longest
            length = _round_up(longest, pad_to_multiple_of) if varies else longest
        value = _pad_value(name, pad_token_id, label_names, label_pad_token_id)
        batch[name], column_valid = _pad_ragged(column, length, value, side)
        padded.add(name)
        if name == main:
            valid = column_valid
    if make_attention_mask and valid is not None and "attention_mask" not in batch:
        batch["attention_mask"] = valid.astype(np.int32)
        padded.add("attention_mask")
    return batch, valid, padded


def _post_pad(batch, *, main, length, pad_to_multiple_of, pad_token_id, label_names, side):
    """Pad a collate_fn's output further along axis 1: to `length` (bucketing) or up to a multiple."""
    if main not in batch or np.ndim(batch[main]) < 2:
        return batch
    current = batch[main].shape[1]
    target = length if length is not None else _round_up(current, pad_to_multiple_of)
    if current > target:
        raise InputError(
            f"collate_fn returned {main!r} of length {current}, more than its bucket boundary {target}."
        )
    if target == current:
        return batch
    out = {}
    for name, array in batch.items():
        # Only integer arrays as long as the main input (masks, type ids, token-level labels) are padded.
        if not (array.ndim >= 2 and array.dtype.kind in "biu" and array.shape[1] == current):
            out[name] = array
            continue
        widths = [(0, 0)] * array.ndim
        widths[1] = (target - current, 0) if side == "left" else (0, target - current)
        value = _pad_value(name, pad_token_id, label_names, LABEL_PAD_TOKEN_ID)
        out[name] = np.pad(array, widths, constant_values=value)
    return out


def _to_return_tensors(batch, return_tensors):
    if return_tensors in (None, "np"):
        return batch
    if return_tensors == "tf":
        return {k: tf.convert_to_tensor(v) for k, v in batch.items()}
    raise InputError(f"return_tensors={return_tensors!r} is not supported; use 'np' or 'tf'.")


# --------------------------------------------------------------------------------------------------
# Collators: callables taking a list of feature dicts (transformers' DataCollator convention) and
# returning a dict of numpy arrays.
# --------------------------------------------------------------------------------------------------


def _tokenizer_pad_id(tokenizer, default=0):
    pad_id = getattr(tokenizer, "pad_token_id", None)
    return default if pad_id is None else int(pad_id)


class DataCollatorWithPadding:
    """Pads `input_ids` with the tokenizer's pad id, sequence labels with -100, other sequences with 0,
    each batch to its longest example (rounded up to `pad_to_multiple_of`); renames `label`/`label_ids` to
    `labels`; creates `attention_mask` when the tokenizer uses one and the features have none."""

    def __init__(self, tokenizer, pad_to_multiple_of=None, return_tensors="np"):
        self.tokenizer = tokenizer
        self.pad_to_multiple_of = pad_to_multiple_of
        self.return_tensors = return_tensors

    def _pad(self, features, label_pad_token_id=LABEL_PAD_TOKEN_ID):
        if isinstance(features, Mapping) and not features:
            raise InputError("the collator got no features.")
        if not isinstance(features, Mapping) and len(features) == 0:
            raise InputError("the collator got an empty list of features.")
        columns = _rename_label_aliases(_columns_from_rows(features), ("labels",))
        if "input_ids" not in columns:
            raise InputError(f"features have no 'input_ids'; they have {sorted(columns)}.")
        model_input_names = getattr(self.tokenizer, "model_input_names", ("input_ids", "attention_mask"))
        return _pad_columns(
            columns,
            main="input_ids",
            pad_token_id=_tokenizer_pad_id(self.tokenizer),
            label_names=("labels",),
            label_pad_token_id=label_pad_token_id,
            pad_to_multiple_of=self.pad_to_multiple_of,
            side=getattr(self.tokenizer, "padding_side", "right") or "right",
            make_attention_mask="attention_mask" in model_input_names,
        )

    def __call__(self, features, return_tensors=None):
        batch, _, _ = self._pad(features)
        return _to_return_tensors(batch, return_tensors or self.return_tensors)


class DataCollatorForTokenClassification(DataCollatorWithPadding):
    """Like DataCollatorWithPadding; `labels` (one per token) are padded with `label_pad_token_id` to the
    same length as `input_ids`."""

    def __init__(self, tokenizer, label_pad_token_id=LABEL_PAD_TOKEN_ID, pad_to_multiple_of=None,
                 return_tensors="np"):
        super().__init__(tokenizer, pad_to_multiple_of=pad_to_multiple_of, return_tensors=return_tensors)
        self.label_pad_token_id = label_pad_token_id

    def __call__(self, features, return_tensors=None):
        columns = _rename_label_aliases(_columns_from_rows(features), ("labels",))
        labels, ids = columns.get("labels"), columns.get("input_ids")
        if isinstance(labels, _Ragged) and isinstance(ids, _Ragged):
            bad = np.flatnonzero(labels.lengths != ids.lengths)
            if len(bad):
                i = int(bad[0])
                raise InputError(
                    f"example {i} of the batch has {labels.lengths[i]} labels but {ids.lengths[i]} tokens; "
                    "token classification needs one label per token (align word labels to tokens with "
                    "word_ids(), using -100 for special tokens and continuation pieces)."
                )
        batch, _, _ = self._pad(features, label_pad_token_id=self.label_pad_token_id)
        return _to_return_tensors(batch, return_tensors or self.return_tensors)


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
        batch, valid, _ = self._pad(features)
        ids = batch["input_ids"]
        if valid is None:
            valid = np.ones(ids.shape, dtype=bool)
        if "attention_mask" in batch:
            valid = valid & (batch["attention_mask"] != 0)
        special_mask = batch.pop("special_tokens_mask", None)
        if not self.mlm:
            batch["labels"] = np.where(valid, ids, LABEL_PAD_TOKEN_ID).astype(ids.dtype)
            return _to_return_tensors(batch, return_tensors or self.return_tensors)
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
        batch["input_ids"] = new_ids
        batch["labels"] = np.where(selected, ids, LABEL_PAD_TOKEN_ID).astype(ids.dtype)
        return _to_return_tensors(batch, return_tensors or self.return_tensors)


# --------------------------------------------------------------------------------------------------
# Sources: which rows form each batch of an epoch
# --------------------------------------------------------------------------------------------------


def _epoch_rng(seed, epoch):
    return np.random.default_rng(None if seed is None else [int(seed), int(epoch)])


def _split(order, batch_size, drop_remainder):
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if drop_remainder and chunks and len(chunks[-1]) < batch_size:
        chunks.pop()
    return chunks


class _MapSource:
    """A map-style datasets.Dataset: numpy index permutations, one Arrow gather per batch."""

    def __init__(self, dataset, *, fetch_columns, python_rows, main, boundaries, batch_size, shuffle,
                 shuffle_buffer_size, drop_remainder, seed):
        self.n = len(dataset)
        self.batch_size, self.shuffle, self.drop_remainder, self.seed = batch_size, shuffle, drop_remainder, seed
        selected = dataset.select_columns(fetch_columns) if fetch_columns is not None else dataset
        self._python_rows = python_rows
        self._data = selected.with_format(None) if python_rows else selected.with_format("arrow")
        if shuffle_buffer_size is None:
            shuffle_buffer_size = self.n if self.n <= MAX_FULL_SHUFFLE else MAX_FULL_SHUFFLE
        self.block = max(1, int(shuffle_buffer_size))
        self._dataset = dataset
        self.lengths = _sequence_lengths(dataset, main) if main in dataset.column_names else None
        self.boundaries = boundaries
        if boundaries is not None:
            if self.lengths is None:
                raise InputError(f"bucket_boundaries needs a sequence column {main!r} to measure lengths.")
            self.bucket_of = np.searchsorted(np.asarray(boundaries), self.lengths, side="left")
            too_long = np.flatnonzero(self.bucket_of >= len(boundaries))
            if len(too_long):
                i = int(too_long[0])
                raise InputError(
                    f"{len(too_long)} example(s) are longer than the largest bucket boundary "
                    f"({boundaries[-1]}), e.g. row {i} with {int(self.lengths[i])} tokens in {main!r}. Add a "
                    "larger boundary or truncate when tokenizing (tokenizer(..., truncation=True, "
                    f"max_length={boundaries[-1]}))."
                )
            counts = np.bincount(self.bucket_of, minlength=len(boundaries))
        else:
            counts = np.array([self.n])
        per_bucket = counts // batch_size if drop_remainder else -(-counts // batch_size)
        self.num_batches = int(per_bucket.sum())

    def _order(self, rng):
        if not self.shuffle:
            return np.arange(self.n)
        if self.block >= self.n:
            return rng.permutation(self.n)
        starts = rng.permutation(np.arange(0, self.n, self.block))
        return np.concatenate([s + rng.permutation(min(self.block, self.n - s)) for s in starts])

    def plan(self, epoch):
        """[(row indices, padded length or None)] for one epoch."""
        rng = _epoch_rng(self.seed, epoch)
        order = self._order(rng)
        if self.boundaries is None:
            return [(chunk, None) for chunk in _split(order, self.batch_size, self.drop_remainder)]
        buckets = self.bucket_of[order]
        plan = []
        for b, boundary in enumerate(self.boundaries):
            plan += [(c, boundary) for c in _split(order[buckets == b], self.batch_size, self.drop_remainder)]
        if self.shuffle:
            plan = [plan[i] for i in rng.permutation(len(plan))]
        else:
            plan.sort(key=lambda item: item[0][0])
        return plan

    def fetch(self, indices):
        indices = np.asarray(indices)
        if len(indices) and indices[-1] - indices[0] == len(indices) - 1 and np.all(np.diff(indices) == 1):
            key = slice(int(indices[0]), int(indices[-1]) + 1)  # contiguous: a zero-copy slice
        else:
            key = indices.tolist()
        data = self._data[key]
        if self._python_rows:
            return [dict(zip(data, row)) for row in zip(*data.values())]
        return {name: _column_from_arrow(data.column(name)) for name in data.column_names}

    def aligned_columns(self, names):
        """Output names (of {output name: column}) whose every row is exactly as long as the main input's."""
        return {
            out for out, column in names.items()
            if self.lengths is not None and np.array_equal(_sequence_lengths(self._dataset, column), self.lengths)
        }

    def batches(self, epoch):
        for indices, length in self.plan(epoch):
            yield self.fetch(indices), length

    def probe(self, last=False):
        k = min(self.batch_size, self.n)
        return self.fetch(np.arange(self.n - k, self.n) if last else np.arange(k))


class _StreamSource:
    """A datasets.IterableDataset: datasets' shuffle buffer, set_epoch for a new order each epoch."""

    def __init__(self, dataset, *, fetch_columns, python_rows, main, boundaries, batch_size, shuffle,
                 shuffle_buffer_size, drop_remainder, seed):
        self.dataset = self._unshuffled = dataset
        self.lengths = None
        self.fetch_columns, self.python_rows, self.main = fetch_columns, python_rows, main
        self.boundaries, self.batch_size, self.drop_remainder = boundaries, batch_size, drop_remainder
        if shuffle:
            buffer = DEFAULT_STREAM_SHUFFLE_BUFFER if shuffle_buffer_size is None else int(shuffle_buffer_size)
            self.dataset = dataset.shuffle(seed=seed, buffer_size=buffer)

    def _rows(self, dataset):
        keys = self.fetch_columns
        for example in dataset:
            if keys is not None:
                missing = [k for k in keys if k not in example]
                if missing:
                    raise InputError(f"a streamed example lacks {missing}; it has {sorted(example)}.")
                example = {k: example[k] for k in keys}
            yield example

    def _convert(self, rows):
        return rows if self.python_rows else _columns_from_rows(rows)

    def batches(self, epoch):
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        size, boundaries = self.batch_size, self.boundaries
        if boundaries is None:
            pending = []
            for row in self._rows(self.dataset):
                pending.append(row)
                if len(pending) == size:
                    yield self._convert(pending), None
                    pending = []
            if pending and not self.drop_remainder:
                yield self._convert(pending), None
            return
        pending = [[] for _ in boundaries]
        for row in self._rows(self.dataset):
            length = len(row[self.main])
            b = int(np.searchsorted(boundaries, length, side="left"))
            if b >= len(boundaries):
                raise InputError(
                    f"a streamed example has {length} tokens in {self.main!r}, more than the largest bucket "
                    f"boundary ({boundaries[-1]}); add a larger boundary or truncate when tokenizing."
                )
            pending[b].append(row)
            if len(pending[b]) == size:
                yield self._convert(pending[b]), boundaries[b]
                pending[b] = []
        if not self.drop_remainder:
            for b, rows in enumerate(pending):
                if rows:
                    yield self._convert(rows), boundaries[b]

    def probe(self, last=False):
        rows = list(itertools.islice(self._rows(self._unshuffled), self.batch_size))
        if not rows:
            raise InputError("the dataset is empty: it yielded no example.")
        return self._convert(rows)


# --------------------------------------------------------------------------------------------------
# prepare_tf_dataset
# --------------------------------------------------------------------------------------------------


def _as_names(names, what):
    if isinstance(names, str):
        return (names,)
    names = tuple(names or ())
    if not all(isinstance(n, str) for n in names):
        raise InputError(f"{what} must be column names (strings), got {names!r}.")
    return names


def _call_kwargs(collate_fn, collate_fn_args):
    kwargs = dict(collate_fn_args or {})
    try:
        parameters = inspect.signature(collate_fn).parameters
    except (TypeError, ValueError):
        return kwargs
    if "return_tensors" in parameters and "return_tensors" not in kwargs:
        kwargs["return_tensors"] = "np"
    return kwargs


def _instantiate(collate_fn, collate_fn_args, tokenizer):
    """A collator class plus its constructor arguments -> an instance."""
    kwargs = dict(collate_fn_args or {})
    try:
        parameters = inspect.signature(collate_fn).parameters
    except (TypeError, ValueError):
        parameters = {}
    if tokenizer is not None and "tokenizer" in parameters and "tokenizer" not in kwargs:
        kwargs["tokenizer"] = tokenizer
    return collate_fn(**kwargs)


def _first_value(batch):
    return next(iter(batch.values()))


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def _resolve_pad_token_id(pad_token_id, tokenizer, collate_fn, main):
    if pad_token_id is not None:
        return int(pad_token_id)
    source = tokenizer if tokenizer is not None else getattr(collate_fn, "tokenizer", None)
    pad_token_id = getattr(source, "pad_token_id", None)
    if pad_token_id is None:
        if source is not None:
            logger.warning(
                "the tokenizer has no pad token; padding %r with 0 (masked by attention_mask). Set "
                "tokenizer.pad_token = tokenizer.eos_token to choose it.", main
            )
        return 0
    return int(pad_token_id)


def _check_labels(present, label_names, available):
    """Some but not all of the task's label columns present -> InputError."""
    found = [n for n in label_names if n in present]
    if found and len(found) < len(label_names):
        missing = [n for n in label_names if n not in present]
        raise InputError(
            f"the dataset has label column(s) {found} but not {missing}, which the task also needs. "
            f"Available columns: {available}."
        )


def prepare_tf_dataset(
    dataset,
    *,
    input_names,
    label_names=("labels",),
    batch_size=8,
    shuffle=True,
    tokenizer=None,
    collate_fn=None,
    collate_fn_args=None,
    drop_remainder=None,
    prefetch=True,
    pad_to_multiple_of=None,
    bucket_boundaries=None,
    shuffle_buffer_size=None,
    seed=None,
    pad_token_id=None,
):
    """A `tf.data.Dataset` of padded batches from a 🤗 `datasets.Dataset` or `IterableDataset`.

    Args:
        dataset: a tokenized `datasets.Dataset` (map-style) or `datasets.IterableDataset` (streaming).
        input_names: the model's input names, e.g. ("input_ids", "attention_mask", "token_type_ids"). The
            first is the main input: it must be a column (or come out of `collate_fn`) and its length is
            what `bucket_boundaries` measure. Columns the model does not take are dropped.
        label_names: the task's label columns, e.g. ("labels",) or ("start_positions", "end_positions").
            A column `label` or `label_ids` stands for `labels`. One label column -> batches are
            `(inputs, labels_tensor)`; several -> `(inputs, {name: tensor})`; none present -> `inputs` only.
            Some but not all present is an error.
        batch_size: examples per batch.
        shuffle: reshuffle every epoch (see the module docstring for the buffer).
        tokenizer: gives the pad id and padding side for the default padding; ignored by `collate_fn`
            except for bucket padding.
        collate_fn: a callable taking a list of example dicts (all columns) and returning a dict of arrays,
            like transformers' DataCollators; `return_tensors="np"` is passed when it accepts it and
            `collate_fn_args` as keyword arguments on each call. A class is instantiated once with
            `collate_fn_args` (and `tokenizer=` when it takes one). Its outputs are padded further to the
            bucket length / `pad_to_multiple_of` when those are set.
        drop_remainder: drop the last partial batch (per bucket). Default: True when `bucket_boundaries` or
            `pad_to_multiple_of` is set (static shapes for XLA), else False (no example lost).
        prefetch: prefetch with `tf.data.AUTOTUNE`.
        pad_to_multiple_of: round each batch's padded length up to a multiple of this.
        bucket_boundaries: increasing lengths; each batch is padded to its bucket's boundary (rounded up to
            `pad_to_multiple_of`), so at most len(bucket_boundaries) sequence lengths occur.
        shuffle_buffer_size: map-style: block size of a local shuffle (default: the whole dataset, up to
            `MAX_FULL_SHUFFLE` rows); streaming: examples in the shuffle buffer (default
            `DEFAULT_STREAM_SHUFFLE_BUFFER`).
        seed: makes each epoch's order reproducible (epoch e uses seed (seed, e)).
        pad_token_id: the pad id when no tokenizer is given (e.g. the model config's); default 0.

    Returns:
        A `tf.data.Dataset`. Its `element_spec` has None batch and sequence dimensions unless
        `drop_remainder` (batch) or a single bucket / a dataset of equal lengths (sequence) makes them static.
        Map-style datasets have a known cardinality (`len(tf_dataset)` = batches per epoch).
    """
    import datasets

    if isinstance(dataset, (datasets.DatasetDict, datasets.IterableDatasetDict)):
        raise InputError(
            f"prepare_tf_dataset takes one split, got a {type(dataset).__name__} with splits "
            f"{list(dataset)}; pass e.g. dataset['train']."
        )
    streaming = isinstance(dataset, datasets.IterableDataset)
    if not streaming and not isinstance(dataset, datasets.Dataset):
        raise InputError(
            f"prepare_tf_dataset takes a datasets.Dataset or datasets.IterableDataset, got "
            f"{type(dataset).__name__}; wrap in-memory data with datasets.Dataset.from_dict(...)."
        )
    input_names = _as_names(input_names, "input_names")
    label_names = _as_names(label_names, "label_names")
    if not input_names:
        raise InputError("input_names is empty; pass the model's input names.")
    input_names = tuple(n for n in input_names if n not in label_names)
    main = input_names[0]
    batch_size = _positive_int(batch_size, "batch_size")
    if pad_to_multiple_of is not None:
        pad_to_multiple_of = _positive_int(pad_to_multiple_of, "pad_to_multiple_of")
    if shuffle_buffer_size is not None:
        shuffle_buffer_size = _positive_int(shuffle_buffer_size, "shuffle_buffer_size")
    boundaries = None
    if bucket_boundaries is not None:
        raw = [int(b) for b in bucket_boundaries]
        if not raw or any(b < 1 for b in raw) or raw != sorted(set(raw)):
            raise InputError(
                f"bucket_boundaries must be strictly increasing positive lengths, got {list(bucket_boundaries)}."
            )
        boundaries = sorted({_round_up(b, pad_to_multiple_of) for b in raw})
    if drop_remainder is None:
        drop_remainder = boundaries is not None or pad_to_multiple_of is not None

    # Which columns to read.
    available = list(dataset.column_names) if dataset.column_names is not None else None
    fetch_columns = None  # all columns for a collate_fn, as with datasets' to_tf_dataset; else chosen below
    if collate_fn is not None:
        if inspect.isclass(collate_fn):
            collate_fn = _instantiate(collate_fn, collate_fn_args, tokenizer)
            collate_fn_args = None
    call_kwargs = _call_kwargs(collate_fn, collate_fn_args) if collate_fn is not None else {}

    pad_token_id = _resolve_pad_token_id(pad_token_id, tokenizer, collate_fn, main)
    side = getattr(tokenizer, "padding_side", None) or "right"

    source_kwargs = dict(
        main=main, boundaries=boundaries, batch_size=batch_size, shuffle=shuffle,
        shuffle_buffer_size=shuffle_buffer_size, drop_remainder=drop_remainder, seed=seed,
    )
    if streaming and available is None:
        first = next(iter(dataset), None)
        if first is None:
            raise InputError("the dataset is empty: it yielded no example.")
        available = list(first)
    if not streaming and len(dataset) == 0:
        raise InputError("the dataset is empty (0 rows); prepare_tf_dataset needs at least one example.")

    if collate_fn is None:
        if main not in available:
            raise InputError(
                f"the dataset has no column {main!r}, the model's main input. Available columns: "
                f"{available}. Tokenize first, e.g. dataset = dataset.map(lambda b: tokenizer(b['text'], "
                "truncation=True), batched=True), or pass a collate_fn that builds it."
            )
        _check_labels(_rename_label_aliases(dict.fromkeys(available), label_names), label_names, available)
        alias = [a for a in _LABEL_ALIASES if a in available and "labels" in label_names
                 and "labels" not in available][:1]
        fetch_columns = [c for c in available if c in input_names or c in label_names or c in alias]
        python_rows = False
    else:
        python_rows = True
    source_cls = _StreamSource if streaming else _MapSource
    source = source_cls(dataset, fetch_columns=fetch_columns, python_rows=python_rows, **source_kwargs)
    if not streaming and source.num_batches == 0:
        raise InputError(
            f"drop_remainder=True and no bucket holds {batch_size} examples (the dataset has {len(dataset)} "
            "rows): no batch would be produced. Use a smaller batch_size or drop_remainder=False."
        )

    def make_batch(fetched, target_length):
        if collate_fn is None:
            columns = _rename_label_aliases(fetched, label_names)
            batch, _, _ = _pad_columns(
                columns, main=main, pad_token_id=pad_token_id, label_names=label_names,
                pad_to_multiple_of=pad_to_multiple_of, side=side, target_length=target_length,
                make_attention_mask="attention_mask" in input_names,
            )
        else:
            output = collate_fn(fetched, **call_kwargs)
            if not isinstance(output, Mapping):
                raise InputError(
                    f"collate_fn must return a dict of arrays, got {type(output).__name__}."
                )
            batch = _rename_label_aliases({k: np.asarray(v) for k, v in output.items()}, label_names)
            batch = {k: _normalize_dtype(v) if _is_numeric(v) else v for k, v in batch.items()}
            if target_length is not None or pad_to_multiple_of:
                batch = _post_pad(batch, main=main, length=target_length, pad_to_multiple_of=pad_to_multiple_of,
                                  pad_token_id=pad_token_id, label_names=label_names, side=side)
        inputs = {k: batch[k] for k in input_names if k in batch}
        labels = {k: batch[k] for k in label_names if k in batch}
        return inputs, labels

    # Probe one batch (two for a collate_fn) for the output structure, dtypes and fixed dimensions.
    probe_fetch = source.probe()
    probe_inputs, probe_labels = make_batch(probe_fetch, None)
    if main not in probe_inputs:
        raise InputError(
            f"collate_fn returned {sorted(probe_inputs) + sorted(probe_labels)} but not {main!r}, the model's "
            f"main input. Available columns: {available}."
        )
    _check_labels(probe_labels, label_names, available)
    if not probe_labels:
        logger.info("no label column among %s; the dataset yields inputs only (columns: %s).",
                    list(label_names), available)
    probe = {**probe_inputs, **probe_labels}
    for name, array in probe.items():
        if not _is_numeric(array):
            raise InputError(
                f"column {name!r} holds {array.dtype} values, not numbers; tokenize or encode it first "
                "(e.g. dataset.map(...) or dataset.class_encode_column(...))."
            )
    main_array = probe[main]
    if collate_fn is None:
        raw_main = _rename_label_aliases(probe_fetch, label_names)[main]
        main_ragged = isinstance(raw_main, _Ragged)
        _, _, padded = _pad_columns(
            _rename_label_aliases(probe_fetch, label_names), main=main, pad_token_id=pad_token_id,
            label_names=label_names, make_attention_mask="attention_mask" in input_names,
        )
        sequence_names = padded
        other = probe
    else:
        first_row = probe_fetch[0]
        main_ragged = np.ndim(first_row[main]) == 1 if main in first_row else main_array.ndim == 2
        other = probe
        if not streaming:  # a second batch from the other end shows which dimensions vary
            other_inputs, other_labels = make_batch(source.probe(last=True), None)
            other = {**other_inputs, **other_labels}
        sequence_names = {
            k for k, v in probe.items()
            if v.ndim >= 2 and (v.dtype.kind in "biu" or (main_ragged and v.shape[1] == main_array.shape[1])
                                or (k in other and other[k].shape[1:2] != v.shape[1:2]))
        }
    if not main_ragged:
        sequence_names = sequence_names - {main}

    # A static sequence length: one bucket, or (default padding) a map-style dataset of equally long examples.
    # It applies to the main input and to columns padded with it in every batch.
    static_length, static_names = None, {main}
    if "attention_mask" not in (probe_fetch if collate_fn is None else {}):
        static_names.add("attention_mask")  # created from the main input's lengths
    if main_ragged and boundaries is not None and len(boundaries) == 1:
        static_length = boundaries[0]
    elif (main_ragged and collate_fn is None and not streaming and boundaries is None
          and len(source.lengths) and source.lengths.min() == source.lengths.max()):
        static_length = _round_up(int(source.lengths.max()), pad_to_multiple_of)
    if collate_fn is None and not streaming and static_length is not None:
        static_names |= source.aligned_columns(_rename_label_aliases(
            {c: c for c in fetch_columns}, label_names))

    def spec(name, array):
        shape = [batch_size if drop_remainder else None] + list(array.shape[1:])
        if name in sequence_names and array.ndim >= 2:
            shape[1] = static_length if (static_length is not None and name in static_names) else None
        for axis in range(2, array.ndim):
            if name in other and (other[name].ndim != array.ndim or other[name].shape[axis] != array.shape[axis]):
                shape[axis] = None
        return tf.TensorSpec(shape, tf.as_dtype(array.dtype), name=name)

    input_spec = {k: spec(k, v) for k, v in probe_inputs.items()}
    label_spec = {k: spec(k, v) for k, v in probe_labels.items()}
    if not label_spec:
        signature = input_spec
    elif len(label_spec) == 1:
        signature = (input_spec, _first_value(label_spec))
    else:
        signature = (input_spec, label_spec)
    input_keys, label_keys = list(input_spec), list(label_spec)

    epochs = itertools.count()

    def generate():
        for fetched, target_length in source.batches(next(epochs)):
            inputs, labels = make_batch(fetched, target_length)
            if list(inputs) != input_keys or list(labels) != label_keys:
                raise InputError(
                    f"a batch has columns {list(inputs) + list(labels)}, the first had "
                    f"{input_keys + label_keys}; every batch needs the same columns."
                )
            if not label_keys:
                yield inputs
            elif len(label_keys) == 1:
                yield inputs, labels[label_keys[0]]
            else:
                yield inputs, labels

    tf_dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
    if not streaming:
        tf_dataset = tf_dataset.apply(tf.data.experimental.assert_cardinality(source.num_batches))
    options = tf.data.Options()
    # Each worker runs the generator and keeps its share of the batches (there are no files to shard).
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    tf_dataset = tf_dataset.with_options(options)
    if prefetch:
        tf_dataset = tf_dataset.prefetch(tf.data.AUTOTUNE)
    return tf_dataset


# --------------------------------------------------------------------------------------------------
# Padding statistics (for benchmarks): how many tokens are padding, and how many batch shapes occur
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PaddingStats:
    real_tokens: int
    padding_tokens: int
    batch_shapes: frozenset  # distinct shapes of the main input: one XLA program each
    num_batches: int
    num_examples: int

    @property
    def padding_fraction(self):
        total = self.real_tokens + self.padding_tokens
        return self.padding_tokens / total if total else 0.0


def padding_stats(tf_dataset, *, input_name="input_ids", mask_name="attention_mask", pad_token_id=None):
    """Iterate one epoch of a prepared dataset; count real and padding tokens of `input_name` (real = the
    attention mask's ones, or ids != pad_token_id when there is no mask) and the distinct batch shapes."""
    real = padding = batches = examples = 0
    shapes = set()
    for element in tf_dataset.as_numpy_iterator():
        inputs = element[0] if isinstance(element, tuple) else element
        if input_name not in inputs:
            raise InputError(f"the dataset's inputs have no {input_name!r}; they have {sorted(inputs)}.")
        ids = inputs[input_name]
        if mask_name in inputs:
            n_real = int(np.count_nonzero(inputs[mask_name]))
        elif pad_token_id is not None:
            n_real = int(np.count_nonzero(ids != pad_token_id))
        else:
            raise InputError(f"no {mask_name!r} in the inputs: pass pad_token_id to tell padding apart.")
        real += n_real
        padding += int(ids.size) - n_real
        shapes.add(tuple(ids.shape))
        batches += 1
        examples += int(ids.shape[0])
    return PaddingStats(real, padding, frozenset(shapes), batches, examples)


def padding_stats_padded_to_longest(dataset, *, batch_size, input_name="input_ids", drop_remainder=False):
    """The same statistics for the naive pipeline: every example padded to the dataset's longest one
    (e.g. `tokenizer(texts, padding=True)` then batching), examples in dataset order."""
    import datasets

    if isinstance(dataset, datasets.Dataset):
        if input_name not in dataset.column_names:
            raise InputError(f"the dataset has no column {input_name!r}; it has {dataset.column_names}.")
        lengths = _sequence_lengths(dataset, input_name)
        if lengths is None:
            raise InputError(f"column {input_name!r} is not a sequence column.")
    else:
        lengths = np.array([len(example[input_name]) for example in dataset], dtype=np.int64)
    n = len(lengths)
    if n == 0:
        raise InputError("the dataset is empty.")
    longest = int(lengths.max())
    kept = (n // batch_size) * batch_size if drop_remainder else n
    sizes = [batch_size] * (kept // batch_size) + ([kept % batch_size] if kept % batch_size else [])
    real = int(lengths[:kept].sum())
    return PaddingStats(
        real_tokens=real,
        padding_tokens=kept * longest - real,
        batch_shapes=frozenset((size, longest) for size in sizes),
        num_batches=len(sizes),
        num_examples=kept,
    )
