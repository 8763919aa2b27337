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
* Columns have declared roles (`Role`), taken from their names and the dataset's schema
  (`dataset.features`): token ids (`input_ids`, `decoder_input_ids`) are padded with the tokenizer's pad
  id; per-token values (`attention_mask`, `token_type_ids`, `position_ids`, any other list column) with 0;
  per-token label columns with -100; an example-level value (a class label, a position) or a fixed-shape
  array (`pixel_values`, `Array2D`/`Array3D` features) is stacked. The main input's per-token companions
  (`attention_mask`, `token_type_ids`, `position_ids`, `special_tokens_mask`) are padded to the main
  input's length (a different length is an error); any other column whose per-example lengths equal the
  main input's is too. `attention_mask` is created from the lengths when the model takes one and the
  dataset has none.
* The `tf.data` signature follows from those declarations, before any batch is read: the dtype from the
  schema, the batch dimension static when `drop_remainder`, the sequence dimension static when there is
  one bucket or every example is equally long (a fixed-length feature, or measured from a map-style
  dataset's Arrow offsets), other dimensions static when the schema fixes them or every example shares
  them. A streaming dataset that lost its schema (e.g. to `.map`) gets one inferred from its first example.
  A `collate_fn` with an `output_columns` method (our collators) declares its output; for any other, the
  signature is probed from its first and last batches.
* `pad_to_multiple_of` rounds each batch's length up. `bucket_boundaries=(b1, ..., bn)` puts an example of
  length L in the first bucket with L <= b_i, builds batches inside a bucket and pads them to exactly b_i,
  so there are at most n sequence lengths; with `drop_remainder=True` (the default when bucketing or
  `pad_to_multiple_of` is set) the batch dimension is static too, so XLA compiles at most one program per
  bucket. Bucketing reorders examples (use it for training, not for `predict`); an example longer than the
  largest boundary is an error (truncate when tokenizing, or add a boundary). `drop_remainder=True` drops
  each bucket's last partial batch (fewer than `batch_size` examples per bucket per epoch; since the
  order is reshuffled, different examples each epoch).
* Integers come out as int32 (TPU/XLA friendly; a value outside int32 is an error), floats as float32.

Modules: `columns` (roles, declarations, a batch's columns), `collators` (numpy padding and the
collators), `sources` (which rows form each batch), `pipeline` (`prepare_tf_dataset`), `stats` (padding
statistics for benchmarks).
"""

from tfformers.data.collators import (
    DataCollatorForLanguageModeling,
    DataCollatorForTokenClassification,
    DataCollatorWithPadding,
)
from tfformers.data.columns import LABEL_PAD_TOKEN_ID, Column, Role
from tfformers.data.pipeline import prepare_tf_dataset
from tfformers.data.sources import DEFAULT_STREAM_SHUFFLE_BUFFER, MAX_FULL_SHUFFLE
from tfformers.data.stats import PaddingStats, padding_stats, padding_stats_padded_to_longest

__all__ = [
    "DEFAULT_STREAM_SHUFFLE_BUFFER",
    "LABEL_PAD_TOKEN_ID",
    "MAX_FULL_SHUFFLE",
    "Column",
    "DataCollatorForLanguageModeling",
    "DataCollatorForTokenClassification",
    "DataCollatorWithPadding",
    "PaddingStats",
    "Role",
    "padding_stats",
    "padding_stats_padded_to_longest",
    "prepare_tf_dataset",
]
