"""Sources: which rows of a 🤗 dataset form each batch of an epoch, and what its schema and offsets say.

`MapSource` (a `datasets.Dataset`) draws numpy index permutations and reads each batch with one Arrow
gather; `StreamSource` (a `datasets.IterableDataset`) uses datasets' shuffle buffer. Both group rows into
length buckets when asked. `ArrowMeasurements` reads per-row lengths from a map-style dataset's Arrow list
offsets (no value goes through Python), which tell bucket sizes, the dimensions every example shares and which
columns are as long as the main input.
"""

from dataclasses import dataclass, replace

import numpy as np
import pyarrow.compute as pc

from tfformers.data.columns import is_list_type
from tfformers.errors import InputError

MAX_FULL_SHUFFLE = 10_000_000  # rows; above this a map-style dataset is block-shuffled by default
DEFAULT_STREAM_SHUFFLE_BUFFER = 1_000  # examples held by an IterableDataset's shuffle buffer


@dataclass(frozen=True)
class Batching:
    """How rows become batches: size, order, and the length buckets of the `main` column."""

    batch_size: int
    main: str
    boundaries: tuple = None  # increasing lengths, or None for no buckets
    drop_remainder: bool = False
    shuffle: bool = True
    shuffle_buffer_size: int = None
    seed: int = None


@dataclass(frozen=True)
class BatchRows:
    """Where a batch's rows come from, to name a faulty one: the dataset's row indices (map-style), or the
    batch's number in the epoch (a stream, whose rows have no fixed index)."""

    indices: np.ndarray = None
    number: int = 0

    def name(self, row):
        if self.indices is not None:
            return f"row {int(self.indices[row])} of the dataset"
        return f"row {row} of batch {self.number} (streamed)"


def features_of(dataset):
    """The dataset's schema. A streaming dataset that lost it (e.g. to `.map`) gets one inferred from its
    first example. An empty dataset is an error."""
    import datasets

    if isinstance(dataset, datasets.IterableDataset):
        first = next(iter(dataset), None)
        if first is None:
            raise InputError("the dataset is empty: it yielded no example.")
        return dataset.features if dataset.features is not None else datasets.Dataset.from_list([first]).features
    if len(dataset) == 0:
        raise InputError("the dataset is empty (0 rows); prepare_tf_dataset needs at least one example.")
    return dataset.features


def is_transformed(dataset):
    """Whether a map-style dataset computes its rows when they are read (`with_transform`, `set_transform`):
    its schema then describes the stored columns, not the rows."""
    return (getattr(dataset, "format", None) or {}).get("type") == "custom"


def _arrow_column(dataset, name):
    array = dataset.select_columns([name]).with_format("arrow")[name]
    return array.combine_chunks() if hasattr(array, "combine_chunks") else array


def list_lengths(dataset, name):
    """Per-row lengths of a list column of a map-style dataset (from the Arrow offsets), or None."""
    array = _arrow_column(dataset, name)
    if not is_list_type(array.type):
        return None
    return pc.list_value_length(array).to_numpy(zero_copy_only=False).astype(np.int64)


def _shared(lengths):
    """The length every row has, or None."""
    return int(lengths[0]) if len(lengths) and (lengths == lengths[0]).all() else None


class ArrowMeasurements:
    """What a map-style dataset's Arrow offsets say about its list columns, over all rows."""

    def __init__(self, dataset):
        self._dataset = dataset
        self._lengths = {}

    def lengths(self, source):
        if source not in self._lengths:
            self._lengths[source] = list_lengths(self._dataset, source)
        return self._lengths[source]

    def refine(self, column, main_source):
        """`column` with the dimensions every example shares filled in and, when unknown, whether it is as
        long as the main input in every example."""
        if column.source is None:
            return column
        aligned = column.aligned
        if column.role.padded and aligned is None and main_source is not None:
            mine, main = self.lengths(column.source), self.lengths(main_source)
            if mine is not None and main is not None:
                aligned = bool(np.array_equal(mine, main))
        # The length of a column padded like the main input is the main input's: not measured twice.
        first_axis_known = aligned is True and column.source != main_source
        return replace(column, shape=self._shared_shape(column, first_axis_known), aligned=aligned)

    def _shared_shape(self, column, first_axis_known):
        """One example's shape with the dimensions that are equal in every example filled in."""
        shape = list(column.shape)
        start = 1 if first_axis_known else 0
        if None not in shape[start:] or self.lengths(column.source) is None:
            return column.shape
        array = None
        for axis in range(start, len(shape)):
            if None not in shape[axis:]:
                break
            if axis == 0:
                lengths = self.lengths(column.source)
            else:  # one level down: the lists inside the lists, all rows flattened
                array = (_arrow_column(self._dataset, column.source) if array is None else array).flatten()
                if not is_list_type(array.type):
                    break
                lengths = pc.list_value_length(array).to_numpy(zero_copy_only=False)
            if shape[axis] is None:
                shape[axis] = _shared(lengths)
        return tuple(shape)


class StreamMeasurements:
    """A streaming dataset is not read ahead: only its schema is known."""

    def lengths(self, source):
        return None

    def refine(self, column, main_source):
        return column


def measurements_for(dataset):
    import datasets

    return StreamMeasurements() if isinstance(dataset, datasets.IterableDataset) else ArrowMeasurements(dataset)


def _too_long_error(count, length, where, main, boundaries):
    return InputError(
        f"{count} example(s) are longer than the largest bucket boundary ({boundaries[-1]}), e.g. {where} with "
        f"{length} tokens in {main!r}. Add a larger boundary or truncate when tokenizing "
        f"(tokenizer(..., truncation=True, max_length={boundaries[-1]}))."
    )


def _epoch_rng(seed, epoch):
    return np.random.default_rng(None if seed is None else [int(seed), int(epoch)])


def _split(order, batch_size, drop_remainder):
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if drop_remainder and chunks and len(chunks[-1]) < batch_size:
        chunks.pop()
    return chunks


class MapSource:
    """A map-style datasets.Dataset: numpy index permutations, one Arrow gather per batch.

    `columns`: the dataset columns read (None: all). `python_rows`: batches are lists of example dicts (for
    a collate_fn) instead of Arrow tables. `lengths`: per-row lengths of the main column (for buckets).
    """

    def __init__(self, dataset, *, columns, python_rows, batching, lengths):
        self.n = len(dataset)
        self.batching = batching
        selected = dataset.select_columns(columns) if columns is not None else dataset
        self._python_rows = python_rows
        if is_transformed(dataset):  # rows are computed by the dataset's transform as they are read
            self._data = dataset
        else:
            self._data = selected.with_format(None) if python_rows else selected.with_format("arrow")
        buffer = batching.shuffle_buffer_size
        self.block = max(1, int(buffer if buffer is not None else min(self.n, MAX_FULL_SHUFFLE)))
        self.bucket_of = None
        counts = np.array([self.n])
        if batching.boundaries is not None:
            self.bucket_of = self._buckets(lengths)
            counts = np.bincount(self.bucket_of, minlength=len(batching.boundaries))
        size = batching.batch_size
        self.num_batches = int((counts // size if batching.drop_remainder else -(-counts // size)).sum())

    def _buckets(self, lengths):
        """Each row's bucket: the first boundary at least as long as the row's main column."""
        boundaries, main = self.batching.boundaries, self.batching.main
        if lengths is None:
            raise InputError(f"bucket_boundaries needs a sequence column {main!r} to measure lengths.")
        bucket_of = np.searchsorted(np.asarray(boundaries), lengths, side="left")
        too_long = np.flatnonzero(bucket_of >= len(boundaries))
        if len(too_long):
            row = int(too_long[0])
            raise _too_long_error(len(too_long), int(lengths[row]), f"row {row}", main, boundaries)
        return bucket_of

    def _order(self, rng):
        if not self.batching.shuffle:
            return np.arange(self.n)
        if self.block >= self.n:
            return rng.permutation(self.n)
        starts = rng.permutation(np.arange(0, self.n, self.block))
        return np.concatenate([s + rng.permutation(min(self.block, self.n - s)) for s in starts])

    def plan(self, epoch):
        """[(row indices, padded length or None)] for one epoch."""
        rng = _epoch_rng(self.batching.seed, epoch)
        order = self._order(rng)
        size, drop = self.batching.batch_size, self.batching.drop_remainder
        if self.bucket_of is None:
            return [(chunk, None) for chunk in _split(order, size, drop)]
        buckets = self.bucket_of[order]
        plan = []
        for b, boundary in enumerate(self.batching.boundaries):
            plan += [(chunk, boundary) for chunk in _split(order[buckets == b], size, drop)]
        if self.batching.shuffle:
            plan = [plan[i] for i in rng.permutation(len(plan))]
        else:
            plan.sort(key=lambda item: item[0][0])
        return plan

    def fetch(self, indices):
        """Rows -> an Arrow table, or a list of example dicts (python_rows)."""
        indices = np.asarray(indices)
        if len(indices) and indices[-1] - indices[0] == len(indices) - 1 and np.all(np.diff(indices) == 1):
            key = slice(int(indices[0]), int(indices[-1]) + 1)  # contiguous: a zero-copy slice
        else:
            key = indices.tolist()
        data = self._data[key]
        if self._python_rows:
            return [dict(zip(data, row)) for row in zip(*data.values())]
        return data

    def batches(self, epoch):
        """(records, padded length or None, BatchRows) for each batch of an epoch."""
        for indices, length in self.plan(epoch):
            yield self.fetch(indices), length, BatchRows(np.asarray(indices))

    def probe(self, last=False):
        k = min(self.batching.batch_size, self.n)
        return self.fetch(np.arange(self.n - k, self.n) if last else np.arange(k))


class StreamSource:
    """A datasets.IterableDataset: datasets' shuffle buffer, set_epoch for a new order each epoch. Batches
    are lists of example dicts restricted to `columns` (None: all)."""

    def __init__(self, dataset, *, columns, batching):
        self.dataset = self._unshuffled = dataset
        self.columns, self.batching = columns, batching
        if batching.shuffle:
            buffer = batching.shuffle_buffer_size
            buffer = DEFAULT_STREAM_SHUFFLE_BUFFER if buffer is None else int(buffer)
            self.dataset = dataset.shuffle(seed=batching.seed, buffer_size=buffer)

    def _rows(self, dataset):
        keys = self.columns
        for example in dataset:
            if keys is not None:
                missing = [k for k in keys if k not in example]
                if missing:
                    raise InputError(f"a streamed example lacks {missing}; it has {sorted(example)}.")
                example = {k: example[k] for k in keys}
            yield example

    def batches(self, epoch):
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        rows = self._rows(self.dataset)
        batches = self._plain_batches(rows) if self.batching.boundaries is None else self._bucketed_batches(rows)
        for number, (records, length) in enumerate(batches):
            yield records, length, BatchRows(number=number)

    def _plain_batches(self, rows):
        size, pending = self.batching.batch_size, []
        for row in rows:
            pending.append(row)
            if len(pending) == size:
                yield pending, None
                pending = []
        if pending and not self.batching.drop_remainder:
            yield pending, None

    def _bucketed_batches(self, rows):
        size, main, boundaries = self.batching.batch_size, self.batching.main, self.batching.boundaries
        pending = [[] for _ in boundaries]
        for row in rows:
            length = len(row[main])
            b = int(np.searchsorted(boundaries, length, side="left"))
            if b >= len(boundaries):
                raise _too_long_error(1, length, "a streamed example", main, boundaries)
            pending[b].append(row)
            if len(pending[b]) == size:
                yield pending[b], boundaries[b]
                pending[b] = []
        if not self.batching.drop_remainder:
            yield from ((rows, boundaries[b]) for b, rows in enumerate(pending) if rows)

    def probe(self, last=False):
        """The first batch (a stream has no cheap last one)."""
        rows = []
        for row in self._rows(self._unshuffled):
            rows.append(row)
            if len(rows) == self.batching.batch_size:
                break
        return rows


def open_source(dataset, *, columns, python_rows, batching, measurements):
    import datasets

    if isinstance(dataset, datasets.IterableDataset):
        return StreamSource(dataset, columns=columns, batching=batching)
    lengths = None
    if batching.boundaries is not None and batching.main in dataset.column_names:
        lengths = measurements.lengths(batching.main)
    return MapSource(dataset, columns=columns, python_rows=python_rows, batching=batching, lengths=lengths)
