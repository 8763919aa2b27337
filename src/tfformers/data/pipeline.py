"""`prepare_tf_dataset`: declare the columns, derive the `tf.data` signature from them, then stream padded
numpy batches from a source into `tf.data.Dataset.from_generator` (the package docstring explains the
behaviour)."""

import bisect
import inspect
import itertools
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import tensorflow as tf

from tfformers.data.collators import (
    LABEL_PAD_TOKEN_ID,
    DefaultDataCollator,
    Padding,
    pad_batch,
    pad_to_length,
    round_up,
)
from tfformers.data.columns import (
    LABEL_ALIASES,
    attention_mask_for,
    columns_from_probe,
    conform,
    declare_columns,
    normalize_dtype,
    read_columns,
    refuse_missing_or_text,
    rename_label_aliases,
    require_numbers,
)
from tfformers.data.sources import (
    Batching,
    MapSource,
    features_of,
    is_transformed,
    measurements_for,
    open_source,
)
from tfformers.errors import InputError
from tfformers.inputs import RowError, check_batch

logger = logging.getLogger("tfformers")


# --------------------------------------------------------------------------------------------------
# Arguments
# --------------------------------------------------------------------------------------------------


def _as_names(names, what):
    if isinstance(names, str):
        return (names,)
    names = tuple(names or ())
    if not all(isinstance(n, str) for n in names):
        raise InputError(f"{what} must be column names (strings), got {names!r}.")
    return names


@dataclass(frozen=True)
class _Names:
    """The model's inputs (the first is the main input) and the task's labels."""

    inputs: tuple
    labels: tuple

    @classmethod
    def of(cls, input_names, label_names):
        input_names, label_names = _as_names(input_names, "input_names"), _as_names(label_names, "label_names")
        if not input_names:
            raise InputError("input_names is empty; pass the model's input names.")
        return cls(tuple(n for n in input_names if n not in label_names), label_names)

    @property
    def main(self):
        return self.inputs[0]

    def select(self, columns):
        """The inputs then the labels among `columns`, in the model's order."""
        return {name: columns[name] for name in self.inputs + self.labels if name in columns}


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def _boundaries(bucket_boundaries, multiple):
    if bucket_boundaries is None:
        return None
    raw = [int(b) for b in bucket_boundaries]
    if not raw or any(b < 1 for b in raw) or raw != sorted(set(raw)):
        raise InputError(
            f"bucket_boundaries must be strictly increasing positive lengths, got {list(bucket_boundaries)}."
        )
    return tuple(sorted({round_up(b, multiple) for b in raw}))


def _batching(main, *, batch_size, shuffle, shuffle_buffer_size, seed, drop_remainder, multiple,
              bucket_boundaries):
    boundaries = _boundaries(bucket_boundaries, multiple)
    if drop_remainder is None:  # static shapes for XLA when asked for few lengths; else no example lost
        drop_remainder = boundaries is not None or multiple is not None
    if shuffle_buffer_size is not None:
        shuffle_buffer_size = _positive_int(shuffle_buffer_size, "shuffle_buffer_size")
    return Batching(batch_size=_positive_int(batch_size, "batch_size"), main=main, boundaries=boundaries,
                    drop_remainder=bool(drop_remainder), shuffle=shuffle, shuffle_buffer_size=shuffle_buffer_size,
                    seed=seed)


def _check_dataset(dataset):
    import datasets

    if isinstance(dataset, (datasets.DatasetDict, datasets.IterableDatasetDict)):
        raise InputError(
            f"prepare_tf_dataset takes one split, got a {type(dataset).__name__} with splits "
            f"{list(dataset)}; pass e.g. dataset['train']."
        )
    if not isinstance(dataset, (datasets.Dataset, datasets.IterableDataset)):
        raise InputError(
            f"prepare_tf_dataset takes a datasets.Dataset or datasets.IterableDataset, got "
            f"{type(dataset).__name__}; wrap in-memory data with datasets.Dataset.from_dict(...)."
        )


def _integer_text_labels(dataset, label_names):
    """`dataset` with its label columns that hold integers written as text ("0", "1") cast to int64.

    datasets keeps a column's type when `map` replaces its values, so mapping text labels to class ids
    (`examples["label"] = [label2id[l] for l in examples["label"]]`, as transformers 4.x's example scripts do)
    leaves a text column of ids. A column that holds any other text stays as it is (and is refused later).
    """
    import datasets
    import pyarrow as pa

    for name in set(label_names) | set(LABEL_ALIASES):
        feature = dataset.features.get(name) if dataset.features else None
        if isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string"):
            try:
                dataset = dataset.cast_column(name, datasets.Value("int64"))
            except (pa.ArrowInvalid, ValueError):
                continue
    return dataset


def _accepts(function, parameter):
    try:
        return parameter in inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False


def _collate_fn(collate_fn, collate_fn_args, tokenizer):
    """(the callable, its per-call keyword arguments). A collator class is instantiated once with
    `collate_fn_args` (and `tokenizer=` when it takes one); a callable gets them on every call. Either gets
    `return_tensors="np"` on every call when it accepts it."""
    kwargs = dict(collate_fn_args or {})
    if inspect.isclass(collate_fn):
        if tokenizer is not None and "tokenizer" not in kwargs and _accepts(collate_fn, "tokenizer"):
            kwargs["tokenizer"] = tokenizer
        collate_fn, kwargs = collate_fn(**kwargs), {}
    if collate_fn is not None and "return_tensors" not in kwargs and _accepts(collate_fn, "return_tensors"):
        kwargs["return_tensors"] = "np"
    return collate_fn, kwargs


def _padding(pad_token_id, tokenizer, collate_fn, multiple, main):
    """Pad values and side: from the tokenizer (the collate_fn's when none is given), else `pad_token_id`."""
    source = tokenizer if tokenizer is not None else getattr(collate_fn, "tokenizer", None)
    if pad_token_id is None:
        pad_token_id = getattr(source, "pad_token_id", None)
        if pad_token_id is None and source is not None:
            logger.warning(
                "the tokenizer has no pad token; padding %r with 0 (masked by attention_mask). Set "
                "tokenizer.pad_token = tokenizer.eos_token to choose it.", main
            )
    return Padding(
        pad_token_id=0 if pad_token_id is None else int(pad_token_id),
        label_pad_token_id=getattr(collate_fn, "label_pad_token_id", LABEL_PAD_TOKEN_ID),
        multiple=multiple,
        side=getattr(source, "padding_side", None) or "right",
    )


# --------------------------------------------------------------------------------------------------
# Declared columns
# --------------------------------------------------------------------------------------------------


def _check_labels(present, label_names, available):
    """Some but not all of the task's label columns present -> InputError."""
    found = [n for n in label_names if n in present]
    if found and len(found) < len(label_names):
        missing = [n for n in label_names if n not in present]
        raise InputError(
            f"the dataset has label column(s) {found} but not {missing}, which the task also needs. "
            f"Available columns: {available}."
        )


def _selected(columns, names, available):
    """The declared output columns the model gets; the main input and all or none of the labels required."""
    _check_labels(columns, names.labels, available)
    selected = names.select(columns)
    require_numbers(selected)
    if not any(name in selected for name in names.labels):
        logger.info("no label column among %s; the dataset yields inputs only (columns: %s).",
                    list(names.labels), available)
    return selected


def _dataset_columns(features, names, measurements):
    """The pipeline's own padding: columns declared from the dataset's schema, refined by its Arrow offsets."""
    declared = declare_columns(features, main=names.main, label_names=names.labels)
    images = [name for name, feature in features.items() if type(feature).__name__ == "Image"]
    if names.main not in declared and images:
        raise InputError(
            f"the dataset has the image column {images[0]!r} but no {names.main!r}, the model's main input. "
            "Compute it when rows are read: dataset = dataset.with_transform(image_processor.transform("
            f"{images[0]!r})), with the checkpoint's tfformers.AutoImageProcessor."
        )
    if names.main not in declared:
        raise InputError(
            f"the dataset has no column {names.main!r}, the model's main input. Available columns: "
            f"{list(features)}. Tokenize first, e.g. dataset = dataset.map(lambda b: tokenizer(b['text'], "
            "truncation=True), batched=True), or pass a collate_fn that builds it."
        )
    main_source = declared[names.main].source
    columns = {name: measurements.refine(c, main_source) for name, c in names.select(declared).items()}
    if "attention_mask" in names.inputs and "attention_mask" not in columns and columns[names.main].role.padded:
        columns["attention_mask"] = attention_mask_for(columns[names.main])
    return _selected(columns, names, list(features))


def _collate(collate_fn, rows, call_kwargs, label_names):
    """One collate_fn call -> {name: array}, label aliases renamed, dtypes normalized."""
    output = collate_fn(rows, **call_kwargs)
    if not isinstance(output, Mapping):
        raise InputError(f"collate_fn must return a dict of arrays, got {type(output).__name__}.")
    batch = rename_label_aliases({k: np.asarray(v) for k, v in output.items()}, label_names)
    return {k: normalize_dtype(v) if v.dtype.kind in "biuf" else v for k, v in batch.items()}


def _declared_by_collator(collate_fn, features, names, measurements):
    """The output columns a collator declares (`output_columns`) given the dataset's declared columns."""
    declared = declare_columns(features, main=names.main, label_names=names.labels)
    main_source = declared[names.main].source if names.main in declared else None
    wanted = set(names.inputs + names.labels)
    declared = {n: measurements.refine(c, main_source) if n in wanted else c for n, c in declared.items()}
    columns = rename_label_aliases(collate_fn.output_columns(declared), names.labels)
    return {name: replace(column, name=name) for name, column in columns.items()}


def _probed(collate_fn, call_kwargs, names, source):
    """The fallback for a collate_fn that declares nothing: its columns from its first and last batches."""
    first = _collate(collate_fn, source.probe(), call_kwargs, names.labels)
    last = first
    if isinstance(source, MapSource):  # a second batch from the other end shows which dimensions vary
        last = _collate(collate_fn, source.probe(last=True), call_kwargs, names.labels)
    return columns_from_probe(first, last, main=names.main, label_names=names.labels)


def _collated_columns(collate_fn, call_kwargs, features, names, measurements, source):
    """A collate_fn's output columns: declared by it (as our collators do), or else probed."""
    if hasattr(collate_fn, "output_columns"):
        columns = _declared_by_collator(collate_fn, features, names, measurements)
    else:
        columns = _probed(collate_fn, call_kwargs, names, source)
    if names.main not in columns:
        raise InputError(
            f"collate_fn returned {sorted(columns)} but not {names.main!r}, the model's main input. Available "
            f"columns: {list(features)}."
        )
    return _selected(columns, names, list(features))


# --------------------------------------------------------------------------------------------------
# Batches and the signature
# --------------------------------------------------------------------------------------------------


class _PaddedBatches:
    """Batches padded by the pipeline: the declared columns read from Arrow (or streamed rows)."""

    def __init__(self, columns, *, main, padding):
        self.columns, self.main, self.padding = columns, main, padding
        mask = columns.get("attention_mask")
        self.makes_attention_mask = mask is not None and mask.source is None

    def __call__(self, records, target_length):
        columns = read_columns(records, self.columns)
        batch, _ = pad_batch(columns, self.columns, main=self.main, padding=self.padding,
                             target_length=target_length, attention_mask=self.makes_attention_mask)
        return batch


class _CollatedBatches:
    """Batches made by a collate_fn from example dicts (all columns), padded further to the bucket length or
    `pad_to_multiple_of` when those are set."""

    def __init__(self, collate_fn, call_kwargs, columns, *, names, padding):
        self.collate_fn, self.call_kwargs, self.columns = collate_fn, call_kwargs, columns
        self.names, self.padding = names, padding

    def __call__(self, records, target_length):
        batch = _collate(self.collate_fn, records, self.call_kwargs, self.names.labels)
        batch = {name: _conformed(batch[name], c) for name, c in self.columns.items() if name in batch}
        if target_length is not None or self.padding.multiple:
            batch = pad_to_length(batch, self.columns, main=self.names.main, padding=self.padding,
                                  target_length=target_length)
        return batch


def _conformed(array, column):
    """A collate_fn's output column in its declared dtype; a None or a text names its row."""
    if array.dtype.kind in "USO":
        refuse_missing_or_text(column.name, array.tolist())
    return conform(array, column)


def _static_length(main_column, boundaries, multiple):
    """The main input's padded length when every batch has the same one (one bucket, or every example
    equally long), else None."""
    if not main_column.role.padded:
        return None
    if boundaries is not None and len(boundaries) == 1:
        return boundaries[0]
    length = main_column.shape[0]
    if length is None:
        return None
    if boundaries is None:
        return round_up(length, multiple)
    bucket = bisect.bisect_left(boundaries, length)
    return boundaries[bucket] if bucket < len(boundaries) else None


def _tensor_spec(column, batch_dim, static_length):
    shape = [batch_dim, *column.shape]
    if column.role.padded:  # as long as the main input, or as long as its own longest example
        shape[1] = static_length if column.aligned else (column.shape[0] if column.aligned is False else None)
    return tf.TensorSpec(shape, tf.as_dtype(column.dtype), name=column.name)


class _Signature:
    """The elements: `inputs` only, `(inputs, labels)` for one label, `(inputs, {name: labels})` for several."""

    def __init__(self, columns, names, batching, multiple):
        batch_dim = batching.batch_size if batching.drop_remainder else None
        static_length = _static_length(columns[names.main], batching.boundaries, multiple)
        specs = {name: _tensor_spec(column, batch_dim, static_length) for name, column in columns.items()}
        self.inputs = {name: spec for name, spec in specs.items() if name in names.inputs}
        self.labels = {name: spec for name, spec in specs.items() if name in names.labels}

    @property
    def element_spec(self):
        if not self.labels:
            return self.inputs
        if len(self.labels) == 1:
            return self.inputs, next(iter(self.labels.values()))
        return self.inputs, self.labels

    def element(self, batch):
        """A batch ({name: array}) in the declared structure; InputError when it does not fit."""
        specs = {**self.inputs, **self.labels}
        if set(batch) != set(specs):
            raise InputError(
                f"a batch has columns {sorted(batch)}, the declared ones are {sorted(specs)}; every batch needs "
                "the same columns."
            )
        for name, spec in specs.items():
            if not spec.shape.is_compatible_with(batch[name].shape):
                raise InputError(
                    f"column {name!r} has shape {batch[name].shape} in a batch, outside its declared shape "
                    f"{spec.shape.as_list()} (None: any length)."
                )
        inputs = {name: batch[name] for name in self.inputs}
        if not self.labels:
            return inputs
        if len(self.labels) == 1:
            return inputs, batch[next(iter(self.labels))]
        return inputs, {name: batch[name] for name in self.labels}


def _checked(make_batch, records, target_length, rows, limits):
    """A batch checked on the host (types, and ids, labels and lengths against the model's `limits`); an
    error names the dataset's row."""
    try:
        batch = make_batch(records, target_length)
        if limits is not None:
            check_batch(batch, limits)
    except RowError as error:
        raise error.located(rows.name) from None
    return batch


def _open_source(dataset, columns, python_rows, batching, measurements):
    source = open_source(dataset, columns=columns, python_rows=python_rows, batching=batching,
                         measurements=measurements)
    if isinstance(source, MapSource) and source.num_batches == 0:
        raise InputError(
            f"drop_remainder=True and no bucket holds {batching.batch_size} examples (the dataset has "
            f"{len(dataset)} rows): no batch would be produced. Use a smaller batch_size or drop_remainder=False."
        )
    return source


def _tf_dataset(source, make_batch, signature, prefetch, limits):
    epochs = itertools.count()

    def generate():
        for records, target_length, rows in source.batches(next(epochs)):
            yield signature.element(_checked(make_batch, records, target_length, rows, limits))

    tf_dataset = tf.data.Dataset.from_generator(generate, output_signature=signature.element_spec)
    if isinstance(source, MapSource):
        tf_dataset = tf_dataset.apply(tf.data.experimental.assert_cardinality(source.num_batches))
    options = tf.data.Options()
    # Each worker runs the generator and keeps its share of the batches (there are no files to shard).
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    tf_dataset = tf_dataset.with_options(options)
    return tf_dataset.prefetch(tf.data.AUTOTUNE) if prefetch else tf_dataset


# --------------------------------------------------------------------------------------------------
# prepare_tf_dataset
# --------------------------------------------------------------------------------------------------


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
    limits=None,
):
    """A `tf.data.Dataset` of padded batches from a 🤗 `datasets.Dataset` or `IterableDataset`.

    Args:
        dataset: a tokenized `datasets.Dataset` (map-style) or `datasets.IterableDataset` (streaming). A
            map-style dataset with a transform (`with_transform`, e.g. an image processor's `transform()` over
            an `Image` column) is read through it, and its rows are stacked by `DefaultDataCollator` unless a
            `collate_fn` is given.
        input_names: the model's input names, e.g. ("input_ids", "attention_mask", "token_type_ids"). The
            first is the main input: it must be a column (or come out of `collate_fn`) and its length is
            what `bucket_boundaries` measure. Columns the model does not take are dropped.
        label_names: the task's label columns, e.g. ("labels",) or ("start_positions", "end_positions").
            A column `label` or `label_ids` stands for `labels`. One label column -> batches are
            `(inputs, labels_tensor)`; several -> `(inputs, {name: tensor})`; none present -> `inputs` only.
            Some but not all present is an error.
        batch_size: examples per batch.
        shuffle: reshuffle every epoch (see the package docstring for the buffer).
        tokenizer: gives the pad id and padding side for the default padding; ignored by `collate_fn`
            except for bucket padding.
        collate_fn: a callable taking a list of example dicts (all columns) and returning a dict of arrays,
            like transformers' DataCollators; `return_tensors="np"` is passed when it accepts it and
            `collate_fn_args` as keyword arguments on each call. A class is instantiated once with
            `collate_fn_args` (and `tokenizer=` when it takes one). Its outputs are padded further to the
            bucket length / `pad_to_multiple_of` when those are set. When it has `output_columns` (ours do)
            the signature is declared by it; otherwise it is probed from its first and last batches.
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
        limits: a model's `tfformers.inputs.Limits` (`model.input_limits()`, which `model.prepare_tf_dataset`
            passes): every batch is checked against it on the host (token ids in the vocabulary, labels in
            the task's classes or -100, sequences within the positions), since compiled training drops graph
            assertions. The error names the column, the dataset's row and the value. Every batch's values are
            checked for their type (a None or a text in any row) with or without limits.

    Returns:
        A `tf.data.Dataset`. Its `element_spec` follows from the declared columns: None batch and sequence
        dimensions unless `drop_remainder` (batch) or a single bucket / equally long examples (sequence)
        make them static. Map-style datasets have a known cardinality (`len(tf_dataset)` = batches per epoch).
    """
    _check_dataset(dataset)
    names = _Names.of(input_names, label_names)
    dataset = _integer_text_labels(dataset, names.labels)
    multiple = None if pad_to_multiple_of is None else _positive_int(pad_to_multiple_of, "pad_to_multiple_of")
    batching = _batching(names.main, batch_size=batch_size, shuffle=shuffle, seed=seed,
                         shuffle_buffer_size=shuffle_buffer_size, drop_remainder=drop_remainder,
                         multiple=multiple, bucket_boundaries=bucket_boundaries)
    if collate_fn is None and is_transformed(dataset):  # rows known only once read: stacked, then probed
        collate_fn = DefaultDataCollator
    collate_fn, call_kwargs = _collate_fn(collate_fn, collate_fn_args, tokenizer)
    padding = _padding(pad_token_id, tokenizer, collate_fn, multiple, names.main)
    features, measurements = features_of(dataset), measurements_for(dataset)
    if collate_fn is None:
        columns = _dataset_columns(features, names, measurements)
        read = [column.source for column in columns.values() if column.source is not None]
        source = _open_source(dataset, read, False, batching, measurements)
        make_batch = _PaddedBatches(columns, main=names.main, padding=padding)
    else:  # every column, as example dicts: a collate_fn may use any
        source = _open_source(dataset, None, True, batching, measurements)
        columns = _collated_columns(collate_fn, call_kwargs, features, names, measurements, source)
        make_batch = _CollatedBatches(collate_fn, call_kwargs, columns, names=names, padding=padding)
    return _tf_dataset(source, make_batch, _Signature(columns, names, batching, multiple), prefetch, limits)
