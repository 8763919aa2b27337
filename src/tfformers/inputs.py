"""What enters a model: normalise and check.

Two moments, one set of rules (`Limits`, read from the model's config):

* A call (`TFPreTrainedModel.__call__`): tensors given positionally, by name, as a dict or as a tokenizer's
  `BatchEncoding` become one dict; rectangular Python lists become arrays. The checks read only static
  shapes and dtypes (ranks, empty dimensions, companions shaped like `input_ids`, ids or embeddings, the
  position table), plus the values of eager inputs, which are on the host already. They run in Python
  before Keras' machinery, so a fault is reported as itself, and a traced graph gets no extra op from them.
* Data (`fit`/`evaluate`/`predict` on arrays, every `prepare_tf_dataset` batch): numpy checks on the host
  of every id, label and length. Compiled training (`jit_compile=True`) drops graph assertions, so an
  out-of-range label would otherwise turn the weights into NaN and an unknown token id train silently.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from tfformers.errors import InputError

IGNORE_INDEX = -100  # a label the cross-entropy losses skip
# Per-token inputs given with input_ids: each must have its shape (a cache changes the mask's length).
COMPANIONS = ("attention_mask", "token_type_ids", "position_ids")
_TOKENIZE = 'tokenize first, e.g. model(tokenizer(texts, padding=True, return_tensors="tf"))'
_PAD = 'pad them, e.g. tokenizer(texts, padding=True, return_tensors="tf")'


@dataclass(frozen=True)
class IdRange:
    """Valid integer values of a column: 0 .. size - 1, plus `ignored` (a label the loss skips)."""

    size: int
    source: str  # where the size comes from, e.g. "the vocabulary (vocab_size=99)"
    fix: str
    kind: str = "token id"
    ignored: int = None
    rank: int = None  # only arrays of this rank hold ids (a single-label classifier's [batch] labels)


@dataclass(frozen=True)
class ImageLimits:
    """What a vision model takes as `pixel_values`: channels, the image size its position table was made
    for (height, width) and the patch size (height, width)."""

    num_channels: int
    image_size: tuple
    patch_size: tuple


@dataclass(frozen=True)
class Limits:
    """What a model accepts (`TFPreTrainedModel.input_limits()`)."""

    model: str
    input_names: tuple
    label_names: tuple
    main_input_name: str = "input_ids"
    ids_rank: int = 2  # [batch, seq]; multiple choice: [batch, choices, seq]
    ranges: dict = field(default_factory=dict)  # column -> IdRange
    position_table: int = None  # longest input at any call (absolute position embeddings); None: computed
    max_length: int = None  # longest training sequence (RoPE models: the config's max_position_embeddings)
    image: ImageLimits = None  # vision models: pixel_values instead of token ids


# ----------------------------------------------------------------------------------- limits from a config


def uses_rope(config):
    """Whether positions are rotary (computed for any length) rather than rows of a table."""
    return getattr(config, "rope_parameters", None) is not None or getattr(config, "rope_theta", None) is not None


def rope_training_length(config):
    """The longest training sequence of a RoPE model: its max_position_embeddings, except with dynamic
    scaling, which is made for longer ones."""
    rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    return None if rope.get("rope_type") == "dynamic" else getattr(config, "max_position_embeddings", None)


EXAMPLE_CLASSIFICATION_TASKS = ("sequence-classification", "image-classification")  # one label per example


def is_single_label(config):
    """A sequence classifier trained on one class id per example (transformers infers this problem type
    for num_labels > 1 unless it is set)."""
    problem = getattr(config, "problem_type", None)
    return problem == "single_label_classification" or (problem is None and config.num_labels > 1)


def class_ids(labels):
    """Labels of one class per example ([batch] or [batch, 1]) as int32 when they come as floats (numpy,
    pandas and Keras often give floats); anything else unchanged."""
    labels = tf.convert_to_tensor(labels)
    shape = labels.shape
    if labels.dtype.is_floating and (shape.rank == 1 or (shape.rank == 2 and shape[-1] == 1)):
        return tf.cast(labels, tf.int32)
    return labels


def _classes(count, source, rank=None):
    return IdRange(count, source, "Set num_labels when loading (from_pretrained(..., num_labels=N)) or fix the "
                   "labels.", kind="class label", ignored=IGNORE_INDEX, rank=rank)


def label_ranges(task, config):
    """{label name: IdRange} of a task's labels. Question-answering positions beyond the input are ignored
    by transformers' rule and multiple-choice labels depend on the batch, so neither is listed."""
    if task in ("masked-lm", "causal-lm", "seq2seq-lm"):
        return {"labels": vocabulary_range(config.vocab_size, "labels")}
    if task == "pretraining":
        return {"labels": vocabulary_range(config.vocab_size, "labels"),
                "next_sentence_label": _classes(2, "next-sentence labels are 0 (continuation) or 1 (random)")}
    if task == "token-classification":
        return {"labels": _classes(config.num_labels, f"the model has num_labels={config.num_labels}")}
    if task in EXAMPLE_CLASSIFICATION_TASKS and is_single_label(config):
        return {"labels": _classes(config.num_labels, f"the model has num_labels={config.num_labels}", rank=1)}
    return {}


# ----------------------------------------------------------------------------------------- a call's inputs


def gather(inputs, named, main_input_name):
    """One {name: tensor-like} dict from a call's positional `inputs` and its named tensors; None values
    dropped, Python lists turned into arrays."""
    if inputs is None:
        inputs = named
    elif isinstance(inputs, Mapping):  # also a tokenizer's BatchEncoding, which is not a dict
        inputs = {**dict(inputs), **named}
    else:
        inputs = {main_input_name: inputs, **named}
    return {name: as_array(name, value) for name, value in inputs.items() if value is not None}


def as_array(name, value):
    """`value` unchanged when it is a tensor or array of numbers; Python lists as a numpy array. Text, and
    lists of rows of different lengths, are InputErrors saying what to do."""
    if isinstance(value, (str, bytes)):
        raise InputError(f"{name} is text ({value[:40]!r}); models take token ids: {_TOKENIZE}.")
    if isinstance(value, (list, tuple)) or (isinstance(value, np.ndarray) and value.dtype == object):
        value = _list_as_array(name, list(value))
    dtype = getattr(value, "dtype", None)
    if dtype is not None and _is_text(dtype):
        raise InputError(f"{name} holds text ({dtype}); models take token ids: {_TOKENIZE}.")
    return value


def _is_text(dtype):
    try:
        return tf.as_dtype(dtype) == tf.string
    except TypeError:  # numpy's str, bytes and object dtypes have no TensorFlow counterpart
        return np.dtype(dtype).kind in "USO"


def _list_as_array(name, rows):
    try:
        array = np.asarray(rows)
    except ValueError:  # numpy refuses rows of different lengths
        array = None
    if array is None or array.dtype == object:
        if any(_holds_text(row) for row in rows):
            raise InputError(f"{name} holds text; models take token ids: {_TOKENIZE}.")
        lengths = sorted({len(row) for row in rows if isinstance(row, (list, tuple))})
        raise InputError(
            f"{name} is a list of rows of different lengths {lengths}; a batch must be rectangular: {_PAD}."
        )
    return array


def _holds_text(value):
    if isinstance(value, (str, bytes)):
        return True
    return isinstance(value, (list, tuple)) and any(_holds_text(item) for item in value)


def check_call(inputs, limits, cached=False, resized=False, encoded=False):
    """InputError for a call's inputs that the model cannot take, from static shapes and dtypes and the
    values of eager inputs. `cached`: a decoding step with a KV cache (the mask spans the cache).
    `resized`: a vision model interpolates its position embeddings to the image size. `encoded`: an
    encoder–decoder given `encoder_outputs`, which need no input_ids."""
    unknown = sorted(set(inputs) - set(limits.input_names) - set(limits.label_names))
    if unknown:
        raise InputError(
            f"{limits.model} got unexpected inputs {unknown}; it accepts {list(limits.input_names)} and the "
            f"labels {list(limits.label_names)}. Remove the other columns (prepare_tf_dataset does this for you)."
        )
    if limits.image is not None:
        if "pixel_values" not in inputs:
            raise InputError(f"{limits.model} needs pixel_values; got {sorted(inputs)}.")
        check_pixel_values(inputs["pixel_values"], limits.image, resized)
        _check_label_values(inputs, limits)
        return
    ids, embeds = inputs.get("input_ids"), inputs.get("inputs_embeds")
    if ids is None and embeds is None and encoded:
        _check_label_values(inputs, limits)
        return
    if ids is None and embeds is None:
        raise InputError(f"{limits.model} needs input_ids (or inputs_embeds); got {sorted(inputs)}.")
    if ids is not None and embeds is not None:
        raise InputError("pass either input_ids or inputs_embeds, not both: the embeddings replace the ids.")
    if ids is not None:
        _check_ids_shape(ids, limits)
    else:
        _check_rank("inputs_embeds", embeds, limits.ids_rank + 1, "[batch, seq, hidden]")
    shape = _shape(ids) if ids is not None else _shape(embeds)[:-1]
    for name in COMPANIONS:
        if name in inputs and not (cached and name == "attention_mask"):
            _check_same_shape(name, inputs[name], shape, "input_ids" if ids is not None else "inputs_embeds")
    if not cached:
        check_sequence_length(shape[-1], limits.position_table)
    _check_label_values(inputs, limits)


def _check_label_values(inputs, limits):
    for name, id_range in limits.ranges.items():
        if name in inputs and _is_concrete(inputs[name]):
            check_values(name, np.asarray(inputs[name]), id_range)


def check_pixel_values(pixel_values, image, resized=False):
    """InputError unless `pixel_values` are [batch, channels, height, width] or [batch, height, width,
    channels] numbers with `image.num_channels` channels, of the model's image size unless `resized`
    (then at least one patch)."""
    shape = _shape(pixel_values)
    channels = image.num_channels
    layouts = f"[batch, {channels}, height, width] or [batch, height, width, {channels}]"
    if len(shape) == 3 and channels in (shape[0], shape[-1]):
        raise InputError(
            f"pixel_values has shape {list(shape)}: one image without a batch dimension. Add one, e.g. "
            "pixel_values[None]."
        )
    if len(shape) != 4:
        raise InputError(f"pixel_values has shape {list(shape)}; the model takes {layouts}.")
    dtype = getattr(pixel_values, "dtype", None)
    dtype = tf.as_dtype(dtype if dtype is not None else np.asarray(pixel_values).dtype)
    if not (dtype.is_floating or dtype.is_integer):
        raise InputError(f"pixel_values are {dtype.name}; the model takes numbers (an image processor's output).")
    if shape[1] == channels:
        size = shape[2:]
    elif shape[-1] == channels:
        size = shape[1:3]
    else:
        raise InputError(
            f"pixel_values has shape {list(shape)}: no axis 1 or 3 holds the model's {channels} channels "
            f"(num_channels in its config). The model takes {layouts}; convert the images (e.g. grayscale to "
            "RGB with PIL's image.convert('RGB')) or use the image processor of this checkpoint."
        )
    if None in size:
        return
    if not resized and tuple(size) != tuple(image.image_size):
        raise InputError(
            f"pixel_values are {size[0]}x{size[1]} images but the model's position embeddings are for "
            f"{image.image_size[0]}x{image.image_size[1]} (image_size in its config). Resize them (the "
            "checkpoint's image processor does) or call the model with interpolate_pos_encoding=True."
        )
    if size[0] < image.patch_size[0] or size[1] < image.patch_size[1]:
        raise InputError(
            f"pixel_values are {size[0]}x{size[1]} images, smaller than one "
            f"{image.patch_size[0]}x{image.patch_size[1]} patch."
        )


def _shape(value):
    return tuple(value.shape)


def _check_rank(name, value, rank, layout):
    shape = _shape(value)
    if len(shape) == rank - 1 and rank == 2:
        raise InputError(
            f"{name} has shape {list(shape)}: one sequence without a batch dimension. Add one, e.g. ids[None] "
            "(numpy/tf) or tokenizer([text], return_tensors='tf')."
        )
    if len(shape) != rank:
        raise InputError(f"{name} has shape {list(shape)}; the model takes {layout}.")
    if 0 in shape:
        raise InputError(f"{name} has shape {list(shape)}, which is empty; pass at least one row of one token or more.")


def _check_ids_shape(ids, limits):
    layout = "[batch, seq]" if limits.ids_rank == 2 else "[batch, choices, seq]"
    _check_rank("input_ids", ids, limits.ids_rank, layout)
    dtype = getattr(ids, "dtype", None)
    dtype = tf.as_dtype(dtype if dtype is not None else np.asarray(ids).dtype)
    if not dtype.is_integer:
        raise InputError(
            f"input_ids are {dtype.name}; token ids are integers. Cast them (e.g. ids.astype('int32')) or, "
            "for vectors, pass inputs_embeds."
        )


def _check_same_shape(name, value, shape, main):
    theirs = _shape(value)
    agree = len(theirs) == len(shape) and all(a is None or b is None or a == b for a, b in zip(theirs, shape))
    if not agree:
        raise InputError(
            f"{name} has shape {list(theirs)} but {main} has {list(shape)}; they must be equal (no broadcasting): "
            "pass the tensors the tokenizer returned together."
        )


def _is_concrete(value):
    return isinstance(value, np.ndarray) or (isinstance(value, tf.Tensor) and not tf.is_symbolic_tensor(value))


def check_sequence_length(length, limit, name="input_ids"):
    """InputError when a static sequence length exceeds the position table (`limit`; None: no table)."""
    if length is not None and limit is not None and length > limit:
        raise InputError(
            f"{name} has sequence length {length}, longer than the {limit} positions the model's position "
            "embeddings cover (max_position_embeddings in its config). Truncate the inputs, e.g. "
            f"tokenizer(..., truncation=True, max_length={limit})."
        )


def check_token_ids(input_ids, vocab_size, name="input_ids"):
    """Ids outside [0, vocab_size): an InputError for eager ids (checked on the host); in a graph, an
    assertion (XLA drops it, which is why data is checked on the host before compiled training)."""
    if tf.executing_eagerly():
        check_values(name, np.asarray(input_ids), vocabulary_range(vocab_size, name))
        return input_ids
    ids = tf.cast(input_ids, tf.int64)
    with tf.control_dependencies([
        tf.debugging.assert_less(ids, tf.constant(vocab_size, tf.int64),
                                 message=f"{name} contains a token id >= vocab_size ({vocab_size}); the "
                                 "tokenizer does not match this model's config."),
        tf.debugging.assert_non_negative(ids, message=f"{name} contains a negative token id."),
    ]):
        return tf.identity(input_ids)


def vocabulary_range(size, name="input_ids"):
    """The ids an embedding table of `size` rows takes, for `name` (input_ids, token_type_ids, labels)."""
    if name == "token_type_ids":
        return IdRange(size, f"the model embeds {size} token types", "Pass the token_type_ids of this "
                       "model's tokenizer (or leave them out).", kind="token type")
    source = f"the vocabulary (vocab_size={size})"
    if name == "input_ids":
        return IdRange(size, source, "The tokenizer does not match this model's config; load the tokenizer "
                       "of this checkpoint.")
    return IdRange(size, source, "Labels are token ids of this model's tokenizer; mark positions to skip "
                   f"with {IGNORE_INDEX}.", ignored=IGNORE_INDEX)


# ----------------------------------------------------------------------------------------------- values


class RowError(InputError):
    """An InputError about one row of a batch; `located` names the row as its source knows it (the
    dataset's row for prepare_tf_dataset)."""

    def __init__(self, column, row, detail, row_name=None):
        self.column, self.row, self.detail = column, row, detail
        super().__init__(f"{column} {row_name or f'row {row}'} {detail}")

    def located(self, name_row):
        return RowError(self.column, self.row, self.detail, name_row(self.row))


def check_values(name, array, id_range):
    """RowError naming the first row whose value is outside `id_range` (integral floats count as ids)."""
    if id_range.rank is not None:
        if array.ndim == id_range.rank + 1 and array.shape[-1] == 1:
            array = array.reshape(array.shape[:-1])
        if array.ndim != id_range.rank:
            return
    if array.size == 0 or array.dtype.kind not in "iuf":
        return
    if array.dtype.kind == "f":
        fractional = array != np.floor(array)
        if fractional.any():
            _raise_at(name, array, fractional, f"is not a whole number; {id_range.kind}s are integers.")
    low, high = array.min(), array.max()
    if low >= 0 and high < id_range.size:
        return
    outside = (array < 0) | (array >= id_range.size)
    if id_range.ignored is not None:
        outside &= array != id_range.ignored
    if outside.any():
        ignored = f" (or {id_range.ignored} to ignore)" if id_range.ignored is not None else ""
        _raise_at(name, array, outside, f"outside [0, {id_range.size}){ignored}: {id_range.source}. {id_range.fix}",
                  id_range.kind)


def _raise_at(name, array, bad, detail, kind=None):
    index = tuple(int(i) for i in np.argwhere(bad)[0])
    value = array[index].item()
    value = int(value) if float(value).is_integer() else value
    where = f" at position {index[1:] if len(index) > 2 else index[1]}" if len(index) > 1 else ""
    has = f"has {kind} {value}{where}," if kind else f"has {value}{where}, which"
    raise RowError(name, index[0], f"{has} {detail}")


def check_batch(batch, limits):
    """Host check of a batch of training data ({name: array}): ids and labels in range, sequences no
    longer than the model's positions, integral class labels."""
    for name, id_range in limits.ranges.items():
        if name in batch:
            check_values(name, np.asarray(batch[name]), id_range)
    main = batch.get(limits.main_input_name)
    if main is not None and limits.max_length is not None and np.ndim(main) >= 2:
        _check_batch_length(np.asarray(main), batch.get("attention_mask"), limits)


def _check_batch_length(main, mask, limits):
    length, limit = main.shape[-1], limits.max_length
    if length <= limit:
        return
    lengths = np.asarray(mask).sum(-1) if mask is not None else np.full(main.shape[:-1], length)
    row = int(np.argmax(lengths.reshape(len(lengths), -1).max(-1)))
    raise RowError(
        limits.main_input_name, row,
        f"is {length} tokens long (padded), more than the {limit} positions of the model "
        f"(max_position_embeddings). Truncate when tokenizing (tokenizer(..., truncation=True, max_length={limit})) "
        f"and keep bucket_boundaries and pad_to_multiple_of within {limit}.",
    )


def check_arrays(x, y, limits):
    """Host check of `fit`/`evaluate`/`predict` arrays: `x` a dict or the main input, `y` None, one array,
    or labels as a dict or a tuple in `label_names` order. Returns (x, y) with Python lists as arrays and a
    BatchEncoding as a dict (Keras' data adapters take neither)."""
    inputs = gather(x, {}, limits.main_input_name)
    labels = _labels_by_name(y, limits.label_names)
    if limits.image is not None and limits.main_input_name in inputs:
        check_pixel_values(inputs[limits.main_input_name], limits.image)
    elif limits.main_input_name in inputs:
        _check_ids_shape(inputs[limits.main_input_name], limits)
    check_batch({name: np.asarray(value) for name, value in {**inputs, **labels}.items()}, limits)
    x = inputs if isinstance(x, Mapping) else inputs.get(limits.main_input_name, x)
    if not labels:
        return x, y
    if isinstance(y, Mapping):
        return x, labels
    if isinstance(y, (list, tuple)) and len(limits.label_names) > 1:
        return x, type(y)(labels.values())
    return x, labels[limits.label_names[0]]


def _labels_by_name(y, label_names):
    """{name: labels}; empty when `y` does not fit `label_names` (compute_loss then says how)."""
    if y is None or not label_names:
        return {}
    if isinstance(y, Mapping):
        return {name: as_array(name, value) for name, value in y.items()}
    if isinstance(y, (list, tuple)) and len(label_names) > 1:  # one array per label name
        if len(y) != len(label_names):
            return {}
        return {name: as_array(name, value) for name, value in zip(label_names, y)}
    return {label_names[0]: as_array(label_names[0], y)}
