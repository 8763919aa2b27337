"""Padding statistics (for benchmarks): how many tokens are padding, and how many batch shapes occur."""

from dataclasses import dataclass

import numpy as np

from tfformers.data.sources import list_lengths
from tfformers.errors import InputError


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


def _example_lengths(dataset, input_name):
    import datasets

    if not isinstance(dataset, datasets.Dataset):
        return np.array([len(example[input_name]) for example in dataset], dtype=np.int64)
    if input_name not in dataset.column_names:
        raise InputError(f"the dataset has no column {input_name!r}; it has {dataset.column_names}.")
    lengths = list_lengths(dataset, input_name)
    if lengths is None:
        raise InputError(f"column {input_name!r} is not a sequence column.")
    return lengths


def padding_stats_padded_to_longest(dataset, *, batch_size, input_name="input_ids", drop_remainder=False):
    """The same statistics for the naive pipeline: every example padded to the dataset's longest one
    (e.g. `tokenizer(texts, padding=True)` then batching), examples in dataset order."""
    lengths = _example_lengths(dataset, input_name)
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
