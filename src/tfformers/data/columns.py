"""Columns: what each column of a batch is (its declared role, dtype and shape), and how a batch holds it.

A `Column` declares a column before any batch is read: its `Role` (how it is padded), the dtype it comes out
in, one example's shape. `prepare_tf_dataset` derives the `tf.data` signature from these declarations, which
come from the dataset's schema (`dataset.features`, `declare_columns`), from a collator that declares its
output (`output_columns`), or, for a `collate_fn` that declares nothing, from two of its batches
(`columns_from_probe`).

Inside a batch a column is an `np.ndarray` (one value or fixed-shape array per example) or a `Ragged`
(one sequence per example, stored flat) until it is padded.
"""

import enum
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tfformers.errors import InputError
from tfformers.inputs import RowError

LABEL_PAD_TOKEN_ID = -100
TOKEN_ID_COLUMNS = ("input_ids", "decoder_input_ids")
# A tokenizer's per-token outputs: one value for each token of the main input, so padded to its length.
MAIN_INPUT_COMPANIONS = ("attention_mask", "token_type_ids", "position_ids", "special_tokens_mask")
FEATURE_COLUMNS = ("pixel_values",)
LABEL_ALIASES = ("label", "label_ids")  # renamed to "labels", as transformers' collators do
_INT32 = np.iinfo(np.int32)


class Role(enum.Enum):
    """How a column is batched."""

    TOKENS = "token ids, padded with the pad id"
    SEQUENCE = "one value per token (mask, type ids, positions), padded with 0"
    SEQUENCE_LABELS = "one label per token, padded with the label pad id (-100 by default)"
    EXAMPLE = "one value per example (a class, a position), stacked"
    FEATURE = "one fixed-shape array per example (pixel values), stacked"

    @property
    def padded(self):
        return self in (Role.TOKENS, Role.SEQUENCE, Role.SEQUENCE_LABELS)


@dataclass(frozen=True)
class Column:
    """One column of the batches, declared before any is read."""

    name: str  # in the batch: "labels" for a dataset's "label"
    role: Role
    dtype: object  # the numpy dtype it comes out in; None: not numbers (a collate_fn may read it, never output)
    shape: tuple = ()  # one example's, None where it varies; a padded role's first axis is the sequence
    # Padded roles: True = as long as the main input in every example, so padded to its length; False = padded
    # to its own longest; None = unknown, decided per batch.
    aligned: object = None
    source: object = None  # the dataset column read; None: made while padding (an attention mask)
    description: str = ""  # what the schema says it holds, for error messages


def role_of(name, rank, label_names, stacked=False):
    """The role of a column called `name` whose examples have `rank` dimensions (`stacked`: of one shape)."""
    if rank == 0:
        return Role.EXAMPLE
    if stacked or name in FEATURE_COLUMNS:
        return Role.FEATURE
    if name in TOKEN_ID_COLUMNS:
        return Role.TOKENS
    if name in label_names:
        return Role.SEQUENCE_LABELS
    return Role.SEQUENCE


def output_dtype(dtype):
    """int* -> int32 (TPU/XLA friendly), float64 -> float32; bool, float16, float32 unchanged."""
    if dtype.kind in "iu":
        return np.dtype(np.int32)
    if dtype == np.float64:
        return np.dtype(np.float32)
    return dtype


def rename_label_aliases(columns, label_names):
    """{name: x} with `label`/`label_ids` renamed `labels` when the task's labels are `labels`."""
    if "labels" in label_names and "labels" not in columns:
        for alias in LABEL_ALIASES:
            if alias in columns:
                return {("labels" if k == alias else k): v for k, v in columns.items()}
    return columns


def align_to_main(columns, main):
    """The main input and its companions (attention_mask, ...) are declared as long as the main input."""
    if main not in columns or not columns[main].role.padded:
        return columns
    return {
        name: replace(c, aligned=True) if c.role.padded and (name == main or name in MAIN_INPUT_COMPANIONS) else c
        for name, c in columns.items()
    }


def attention_mask_for(main_column):
    """The attention mask made from the main input's lengths when the dataset has none."""
    return Column("attention_mask", Role.SEQUENCE, np.dtype(np.int32), main_column.shape[:1], aligned=True,
                  description="made from the lengths of the main input")


# --------------------------------------------------------------------------------------------------
# Declarations from a dataset's schema, or from a collate_fn's batches
# --------------------------------------------------------------------------------------------------


def feature_layout(feature):
    """(numpy dtype or None if not numbers, one example's shape, whether the shape is fixed) of a feature."""
    import datasets

    if isinstance(feature, datasets.ClassLabel):
        return np.dtype(np.int64), (), True
    if isinstance(feature, datasets.Value):
        kind = feature.pa_type
        numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)
        return (np.dtype(kind.to_pandas_dtype()) if numeric else None), (), True
    # datasets 4+ has List (Sequence makes one) and LargeList; datasets 3 has Sequence.
    list_features = tuple(getattr(datasets, n) for n in ("Sequence", "List", "LargeList") if hasattr(datasets, n))
    if isinstance(feature, list_features):
        dtype, inner, _ = feature_layout(feature.feature)
        length = getattr(feature, "length", -1)
        return dtype, (length if length >= 0 else None,) + inner, False
    if isinstance(feature, list) and len(feature) == 1:  # [Value(...)]: a list, in datasets' shorthand
        dtype, inner, _ = feature_layout(feature[0])
        return dtype, (None,) + inner, False
    if isinstance(feature, (datasets.Array2D, datasets.Array3D, datasets.Array4D, datasets.Array5D)):
        return np.dtype(feature.dtype), tuple(feature.shape), feature.shape[0] is not None
    return None, (), True  # images, audio, records: not numbers until encoded


def _describe(feature):
    import datasets

    return feature.dtype if isinstance(feature, datasets.Value) else repr(feature)


def declare_columns(features, *, main, label_names):
    """{output name: Column} of a dataset, from its schema (`dataset.features`) alone; label aliases renamed."""
    columns = {}
    for name, source in rename_label_aliases({c: c for c in features}, label_names).items():
        dtype, shape, fixed = feature_layout(features[source])
        role = role_of(name, len(shape), label_names, stacked=fixed)
        columns[name] = Column(name, role, None if dtype is None else output_dtype(dtype), shape,
                               source=source, description=_describe(features[source]))
    return align_to_main(columns, main)


def infer_columns(columns, *, main, label_names):
    """Declarations for one batch of converted columns (what a collator gets): roles from names and shapes."""
    declared = {}
    for name, column in columns.items():
        ragged = isinstance(column, Ragged)
        values = column.values if ragged else column
        shape = (None,) + values.shape[1:] if ragged else values.shape[1:]
        declared[name] = Column(name, role_of(name, len(shape), label_names, stacked=not ragged),
                                values.dtype if values.dtype.kind in "biuf" else None, shape,
                                description=str(values.dtype))
    return align_to_main(declared, main)


def columns_from_probe(first, other, *, main, label_names):
    """The fallback for a collate_fn that declares nothing: columns from two of its batches (`first` and
    `other`, {name: array}). The main input is a sequence when it is [batch, length] or holds integers; any
    other array of 2+ dimensions is one when it holds integers, when its length differs between the two
    batches, or when it is as long as the main input. Other dimensions that differ between the two are None."""

    def varies(name, axis):
        if name not in other:
            return False
        return other[name].ndim != first[name].ndim or other[name].shape[axis] != first[name].shape[axis]

    def is_sequence(name, main_length):
        array = first[name]
        return array.ndim >= 2 and (array.dtype.kind in "biu" or varies(name, 1) or array.shape[1] == main_length)

    main_length = None
    if main in first and main not in FEATURE_COLUMNS and (first[main].ndim == 2 or is_sequence(main, None)):
        main_length = first[main].shape[1]
    # multiple choice: [batch, choices, length] token arrays; the padded axis is the last, the choices' count
    # may differ between batches
    choices = main in first and first[main].ndim == 3 and first[main].dtype.kind in "biu"
    columns = {}
    for name, array in first.items():
        shape = tuple(None if varies(name, axis) else array.shape[axis] for axis in range(1, array.ndim))
        role = role_of(name, len(shape), label_names, stacked=not is_sequence(name, main_length))
        if role.padded:
            shape = (None, None) if choices and len(shape) == 2 else (None,) + shape[1:]
        columns[name] = Column(name, role, array.dtype if array.dtype.kind in "biuf" else None, shape,
                               description=str(array.dtype))
    return align_to_main(columns, main)


def require_numbers(columns):
    for name, column in columns.items():
        if column.dtype is None:
            raise InputError(
                f"column {name!r} holds {column.description} values, not numbers; tokenize or encode it first "
                "(e.g. dataset.map(...) or dataset.class_encode_column(...))."
            )


# --------------------------------------------------------------------------------------------------
# One batch of a column: np.ndarray (one value or array per example) or Ragged (one sequence per example)
# --------------------------------------------------------------------------------------------------


class Ragged:
    """Variable-length rows stored flat: values (sum(lengths), *trailing) and lengths (batch,)."""

    __slots__ = ("values", "lengths")

    def __init__(self, values, lengths):
        self.values = values
        self.lengths = np.asarray(lengths, dtype=np.int64)

    def __len__(self):
        return len(self.lengths)


def _fits_int32(array):
    return array.dtype.itemsize < 4 or array.size == 0 or (array.min() >= _INT32.min and array.max() <= _INT32.max)


def normalize_dtype(array):
    """int* -> int32 (when it fits), float64 -> float32; other dtypes unchanged."""
    kind = array.dtype.kind
    if kind in "iu" and array.dtype != np.int32:
        if _fits_int32(array):
            return array.astype(np.int32)
    elif array.dtype == np.float64:
        return array.astype(np.float32)
    return array


def conform(column, declared):
    """`column` (ndarray or Ragged) in the declared dtype; InputError where that would change a value."""
    if isinstance(column, Ragged):
        return Ragged(conform(column.values, declared), column.lengths)
    target, kind = declared.dtype, column.dtype.kind
    if column.dtype == target:
        return column
    if not ((kind in "biu" and target.kind in "iuf") or (kind == "f" and target.kind == "f")):
        raise InputError(
            f"column {declared.name!r} holds {column.dtype} values in a batch but is declared {target} "
            f"({declared.description}); every batch needs values of one kind."
        )
    if kind in "iu" and target == np.int32 and not _fits_int32(column):
        raise InputError(
            f"column {declared.name!r} has values in [{column.min()}, {column.max()}], outside int32, the type "
            "integers come out in (what XLA and TPUs take); map them into range or leave the column out."
        )
    return column.astype(target)


def _object_column(values):
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


def _flat_lists(values):
    return all(isinstance(v, (list, tuple)) and (not v or np.ndim(v[0]) == 0) for v in values)


def _ragged_from_lists(values):
    """Token ids as Python lists: flattened without building per-row arrays."""
    lengths = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
    sample = next((v[0] for v in values if v), 0)
    if isinstance(sample, (str, bytes)):
        return _object_column(values)
    flat = np.fromiter(itertools.chain.from_iterable(values), dtype=np.asarray(sample).dtype,
                       count=int(lengths.sum()))
    return Ragged(normalize_dtype(flat), lengths)


def _stacked(arrays):
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise InputError(
            f"examples in one batch have arrays of different shapes {sorted(shapes)} in a fixed-shape column; "
            "give every example the same shape (e.g. resize images to one size)."
        )
    return normalize_dtype(np.stack(arrays))


def _concatenated(arrays):
    if len({a.shape[1:] for a in arrays}) != 1:
        raise InputError(
            f"examples in one batch have arrays of incompatible shapes {sorted({a.shape for a in arrays})}; only "
            "the first axis may differ between examples (it is the one that gets padded)."
        )
    lengths = np.array([a.shape[0] for a in arrays], dtype=np.int64)
    return Ragged(normalize_dtype(np.concatenate(arrays)), lengths)


def column_from_values(values, sequence=None):
    """One column from each example's value. `sequence`: True -> Ragged, False -> stacked arrays, None ->
    inferred (lists of numbers and arrays of different lengths are sequences)."""
    first = values[0]
    if isinstance(first, (str, bytes)) or first is None:
        return np.asarray(values, dtype=object if first is None else None)
    if np.ndim(first) == 0:
        return normalize_dtype(np.asarray(values))
    if sequence is not False and isinstance(first, (list, tuple)) and _flat_lists(values):
        return _ragged_from_lists(values)
    arrays = [np.asarray(v) for v in values]
    if arrays[0].dtype.kind not in "biuf":
        return _object_column(values)
    if sequence is False or (sequence is None and arrays[0].ndim >= 2 and len({a.shape for a in arrays}) == 1):
        return _stacked(arrays)
    return _concatenated(arrays)


def _is_simple(kind):
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)


def is_list_type(kind):
    return pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)


def column_from_arrow(array, sequence=None):
    """One column from an Arrow (chunked) array: list<number> -> Ragged and number -> ndarray without going
    through Python objects; anything else through `column_from_values`."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    kind = array.type
    if array.null_count == 0:
        if is_list_type(kind) and _is_simple(kind.value_type) and sequence is not False:
            flat = array.flatten()
            if flat.null_count == 0:
                lengths = pc.list_value_length(array).to_numpy(zero_copy_only=False)
                return Ragged(normalize_dtype(flat.to_numpy(zero_copy_only=False)), lengths)
        elif _is_simple(kind):
            return normalize_dtype(array.to_numpy(zero_copy_only=False))
    return column_from_values(array.to_pylist(), sequence)


def columns_from_rows(rows):
    """A list of example dicts (or a dict of lists) -> {name: column}, each inferred."""
    if isinstance(rows, Mapping):
        return {k: column_from_values(list(v)) for k, v in rows.items()}
    keys = list(rows[0].keys())
    missing = [k for k in keys if any(k not in r for r in rows)]
    if missing:
        raise InputError(f"some examples lack the column(s) {missing}; every example needs the same keys.")
    return {k: column_from_values([r[k] for r in rows]) for k in keys}


def refuse_missing_or_text(name, values):
    """RowError naming the first example of `values` (one per row) that is None or holds text or None: the
    cause when a numeric column fails to convert, so it is looked for only then."""
    for row, value in enumerate(values):
        items = value if isinstance(value, (list, tuple)) else [value]
        bad = [item for item in items if item is None or isinstance(item, (str, bytes))]
        if value is None or bad:
            what = "is None" if value is None else f"holds {bad[0]!r}"
            raise RowError(name, row, f"{what}; every example needs numbers here: fill or drop incomplete rows "
                           "(e.g. dataset.filter(...)) and tokenize or encode text first.")


def read_columns(records, columns):
    """One batch as read from a dataset (an Arrow table, or example dicts) -> {name: Ragged or ndarray} in
    the declared roles and dtypes. Columns made while padding (no `source`) are left out. A value that is
    None or text is a RowError naming its row (looked for only when a column fails to convert)."""
    out = {}
    for name, column in columns.items():
        if column.source is None:
            continue
        if isinstance(records, pa.Table):
            raw = records.column(column.source)
        else:
            raw = [row[column.source] for row in records]
        try:
            if isinstance(records, pa.Table):
                values = column_from_arrow(raw, sequence=column.role.padded)
            else:
                values = column_from_values(raw, sequence=column.role.padded)
            out[name] = conform(values, column)
        except (InputError, TypeError, ValueError, IndexError) as error:
            refuse_missing_or_text(column.source, raw.to_pylist() if isinstance(raw, pa.ChunkedArray) else raw)
            if not isinstance(error, InputError):
                raise
            raise InputError(f"column {column.source!r}: {error}") from None
    return out
