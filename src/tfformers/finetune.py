"""Text classification fine-tuning from a 🤗 `datasets.Dataset`: the recipe behind `tfformers fine-tune`.

Each step is a small function over the public API, so a script can use the whole recipe or only a part:

    dataset = datasets.load_dataset("csv", data_files="news.csv")["train"]      # columns: text, label
    model, labels = load_classifier("path/or/hub-id", dataset["label"])        # checks an existing head
    tokenizer = AutoTokenizer.from_pretrained("path/or/hub-id")
    data = tokenize(encode_labels(dataset, "label", labels), tokenizer, "text", max_length=128)
    train, held_out = split(data, test_size=0.1, seed=0)
    train_classifier(model, train, tokenizer=tokenizer, epochs=2, batch_size=16, learning_rate=1e-4)
    result = evaluate(model, held_out, tokenizer=tokenizer)
    print(result.accuracy, result.table(), sep="\\n")
    classify(model, tokenizer, ["Shares fell sharply on Monday"])  # [Prediction(label=..., score=...)]

`fine_tune(...)` runs all of it. Labels may be strings or integers; they become `id2label`/`label2id` in
the model's config (so a saved model predicts names). A checkpoint that already has a classification head
keeps its labels: the data's labels must fit it (same names, or as many classes).
"""

from __future__ import annotations

import logging
import math
import sys
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from tfformers.errors import InputError

logger = logging.getLogger("tfformers")

__all__ = [
    "EvalResult",
    "FineTuneResult",
    "LabelMapping",
    "Prediction",
    "classify",
    "encode_labels",
    "evaluate",
    "fine_tune",
    "format_confusion",
    "has_classification_head",
    "load_classifier",
    "resolve_labels",
    "split",
    "tokenize",
    "train_classifier",
]

LABELS_COLUMN = "labels"  # the column the model's default loss reads


# ------------------------------------------------------------------------------------------------ labels


@dataclass(frozen=True)
class LabelMapping:
    """Class names by id, and how the dataset's label values map to those ids."""

    names: tuple  # names[i] is the label of class id i (config.id2label)
    value_to_id: dict = field(repr=False)  # a label value as it appears in the data -> class id

    @property
    def id2label(self):
        return dict(enumerate(self.names))

    @property
    def label2id(self):
        return {name: i for i, name in enumerate(self.names)}

    @property
    def num_labels(self):
        return len(self.names)

    def encode(self, value):
        return self.value_to_id[_label_key(value)]


def _is_default_name(name, i):
    return name == f"LABEL_{i}"


def _label_key(value):
    """Label values as they appear in the data -> a hashable key: str stays, integral numbers become int."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        if math.isfinite(value) and float(value).is_integer():
            return int(value)
        raise InputError(
            f"label {value!r} is not a class: labels must be strings or integers (text classification; "
            "regression targets are not supported by this recipe)."
        )
    if isinstance(value, str):
        return value
    raise InputError(f"label {value!r} has type {type(value).__name__}; labels must be strings or integers.")


def _distinct(values):
    """Distinct label keys in a stable order: integers numerically, then strings alphabetically."""
    keys = set()
    for value in values:
        if value is None:
            raise InputError("the label column has empty (null) values; every example needs a label.")
        keys.add(_label_key(value))
    ints = sorted(k for k in keys if isinstance(k, int))
    strs = sorted(k for k in keys if isinstance(k, str))
    return ints, strs


def _preview(items, limit=8):
    items = list(items)
    shown = ", ".join(repr(x) for x in items[:limit])
    return f"[{shown}{', ...' if len(items) > limit else ''}]"


def resolve_labels(values, *, head=None, num_labels=None, class_names=None):
    """The `LabelMapping` for a dataset's label values.

    Args:
        values: the label column's values (strings or integers), or its distinct values.
        head: for a checkpoint that already has a classification head, its `id2label` ({id: name}). String
            labels must then be among its names (or, when its names are the defaults `LABEL_i`, be exactly
            as many classes); integer labels must be ids in range.
        num_labels: the number of classes the caller expects; an error when the data has a different count.
        class_names: names for integer labels (a `datasets.ClassLabel`'s names): label i is class i.

    Without a head, string labels become classes in alphabetical order and integer labels are kept as
    values (sorted; their names are the numbers as strings), so 1-based or sparse integer labels work too.
    """
    ints, strs = _distinct(values)
    if not ints and not strs:
        raise InputError("the label column is empty; the dataset needs labelled examples.")
    if ints and strs:
        raise InputError(
            f"the label column mixes integers {_preview(ints)} and strings {_preview(strs)}; use one kind."
        )
    if head is not None:
        mapping = _labels_for_head(ints, strs, dict(head))
    elif class_names is not None and ints:
        names = tuple(str(n) for n in class_names)
        out_of_range = [i for i in ints if not 0 <= i < len(names)]
        if out_of_range:
            raise InputError(
                f"labels {_preview(out_of_range)} are not ids of the {len(names)} classes {_preview(names)}."
            )
        mapping = LabelMapping(names, {i: i for i in range(len(names))})
    else:
        keys = ints or strs
        mapping = LabelMapping(tuple(str(k) for k in keys), {k: i for i, k in enumerate(keys)})
    if len(mapping.names) < 2:
        raise InputError(
            f"the labels hold only one class ({mapping.names[0]!r}); classification needs at least two."
        )
    if num_labels is not None and num_labels != mapping.num_labels:
        raise InputError(
            f"num_labels is {num_labels} but the labels have {mapping.num_labels} classes: "
            f"{_preview(mapping.names)}. Drop num_labels, or fix the label column."
        )
    return mapping


def _labels_for_head(ints, strs, id2label):
    n = len(id2label)
    names = tuple(str(id2label[i]) for i in range(n))
    default_names = all(_is_default_name(name, i) for i, name in enumerate(names))
    if strs and not default_names:
        unknown = [s for s in strs if s not in names]
        if unknown:
            raise InputError(
                f"the model's classification head has the {n} labels {_preview(names)}, but the data has "
                f"other labels {_preview(unknown)}. Use data with the model's labels, or replace the head "
                "(ignore_mismatched_sizes / --ignore-mismatched-sizes with a different label count, or "
                "start from the base model)."
            )
        return LabelMapping(names, {s: names.index(s) for s in names})
    if strs:  # the head's names are placeholders: the data names its classes
        if len(strs) != n:
            raise InputError(
                f"the model's classification head has {n} labels (num_labels={n}), but the data has "
                f"{len(strs)} classes {_preview(strs)}. Use a checkpoint without a head or with {len(strs)} "
                "labels, or replace the head (ignore_mismatched_sizes / --ignore-mismatched-sizes)."
            )
        return LabelMapping(tuple(strs), {s: i for i, s in enumerate(strs)})
    if all(name.lstrip("-").isdigit() for name in names):
        # a head trained on integer labels is named by their values ("1", "2", ...): map by value
        lookup = {int(name): i for i, name in enumerate(names)}
        unknown = [v for v in ints if v not in lookup]
        if unknown:
            raise InputError(
                f"the model's classification head has the {n} labels {_preview(names)}, but the data has "
                f"other labels {_preview(unknown)}. Use data with the model's labels, or replace the head "
                "(ignore_mismatched_sizes / --ignore-mismatched-sizes with a different label count)."
            )
        return LabelMapping(names, lookup)
    out_of_range = [i for i in ints if not 0 <= i < n]
    if out_of_range:
        raise InputError(
            f"the model's classification head has {n} labels (ids 0..{n - 1}), but the data has integer "
            f"labels {_preview(out_of_range)} outside that range. Replace the head "
            "(ignore_mismatched_sizes / --ignore-mismatched-sizes) or fix the labels."
        )
    return LabelMapping(names, {i: i for i in range(n)})


def has_classification_head(config):
    """True when the checkpoint was saved with a sequence-classification head (config.architectures)."""
    from tfformers.tasks import task_of_architecture

    architectures = getattr(config, "architectures", None) or ()
    return any(task_of_architecture(a) == "sequence-classification" for a in architectures)


def _class_names(feature):
    import datasets

    return feature.names if isinstance(feature, datasets.ClassLabel) else None


# ------------------------------------------------------------------------------------------------- model


def load_classifier(
    model_name_or_path,
    labels,
    *,
    num_labels=None,
    class_names=None,
    ignore_mismatched_sizes=False,
    dtype=None,
    **hub_kwargs,
):
    """A sequence classifier from a checkpoint (local folder or Hub id), with the dataset's labels.

    `labels` is the label column's values (or its distinct values, or a `LabelMapping`). A base
    checkpoint gets a new head with one output per class; a checkpoint with a classification head keeps it
    and the labels are checked against it (see `resolve_labels`), unless `ignore_mismatched_sizes=True`:
    then the data's labels define the classes and a head of another size is replaced.
    Returns `(model, LabelMapping)`; the model's config carries `id2label` and `label2id`.
    """
    from tfformers.config import load_config
    from tfformers.modeling import loading_logger
    from tfformers.models.auto import TFAutoModelForSequenceClassification

    config = load_config(model_name_or_path, **hub_kwargs)
    head = has_classification_head(config)
    if isinstance(labels, LabelMapping):
        mapping = labels
        if num_labels is not None and num_labels != mapping.num_labels:
            raise InputError(f"num_labels is {num_labels} but the label mapping has {mapping.num_labels} classes.")
    elif head and not ignore_mismatched_sizes:
        mapping = resolve_labels(labels, head=config.id2label, num_labels=num_labels, class_names=class_names)
    else:  # a new head (or, with ignore_mismatched_sizes, one retrained under the data's label names)
        mapping = resolve_labels(labels, num_labels=num_labels, class_names=class_names)
    # load_classifier reports the new head and unused weights itself, in the recipe's terms.
    previous_level = loading_logger.level
    loading_logger.setLevel(logging.ERROR)
    try:
        model, report = TFAutoModelForSequenceClassification.from_pretrained(
            model_name_or_path,
            id2label=mapping.id2label,
            label2id=mapping.label2id,
            ignore_mismatched_sizes=ignore_mismatched_sizes,
            dtype=dtype,
            output_loading_info=True,
            **hub_kwargs,
        )
    finally:
        loading_logger.setLevel(previous_level)
    prefix = model.base_model_prefix + "."
    new_head = [k for k in report["missing_keys"] if not k.startswith(prefix)]
    missing_body = [k for k in report["missing_keys"] if k.startswith(prefix)]
    if missing_body:
        logger.warning(
            "%s has no weights for %s: they are newly initialized.", model_name_or_path, missing_body
        )
    if report["unexpected_keys"]:
        logger.info("Unused weights of %s: %s", model_name_or_path, report["unexpected_keys"])
    replaced = [key for key, _, _ in report["mismatched_keys"]]
    if new_head or replaced:
        logger.info("New classification head with %d labels: %s", mapping.num_labels, sorted(new_head + replaced))
    return model, mapping


# -------------------------------------------------------------------------------------------------- data


def check_columns(dataset, *columns):
    """InputError naming the missing column(s) and the ones the dataset has."""
    missing = [c for c in columns if c not in dataset.column_names]
    if missing:
        raise InputError(
            f"the dataset has no column {missing[0]!r}; its columns are {dataset.column_names}."
        )


def encode_labels(dataset, label_column, labels):
    """The dataset with an integer `labels` column (class ids by `labels`, a LabelMapping), typed as a
    `datasets.ClassLabel` so splits can be stratified. The original label column is removed."""
    import datasets

    check_columns(dataset, label_column)

    def encode(batch, indices):
        ids = []
        for index, value in zip(indices, batch[label_column]):
            if value is None:
                raise InputError(f"row {index} has no label (empty or null); every example needs one.")
            try:
                ids.append(labels.encode(value))
            except KeyError:
                raise InputError(
                    f"row {index} has the label {value!r}, which is not one of the classes "
                    f"{_preview(labels.names)}."
                ) from None
        return {LABELS_COLUMN: ids}

    features = dataset.features.copy()
    for name in {label_column, LABELS_COLUMN}:
        features.pop(name, None)
    features[LABELS_COLUMN] = datasets.ClassLabel(names=list(labels.names))
    return dataset.map(
        encode,
        batched=True,
        with_indices=True,
        remove_columns=[c for c in {label_column, LABELS_COLUMN} if c in dataset.column_names],
        features=features,
        desc="Encoding labels",
    )


def tokenize(dataset, tokenizer, text_column, *, max_length=128):
    """The dataset tokenized for the model: `input_ids`, `attention_mask` (and `token_type_ids`) plus
    `labels` when present; other columns are removed. Texts are truncated to `max_length` tokens and NOT
    padded (`prepare_tf_dataset` pads per batch) — which also overrides a fixed padding that some
    `tokenizer.json` files (all-MiniLM-L6-v2's: 128) turn on."""
    check_columns(dataset, text_column)

    def encode(batch, indices):
        texts = batch[text_column]
        for index, text in zip(indices, texts):
            if not isinstance(text, str):
                what = "no text (empty or null)" if text is None else f"a {type(text).__name__}, not text"
                raise InputError(f"row {index} of column {text_column!r} has {what}.")
        return tokenizer(texts, truncation=True, max_length=max_length, padding=False)

    return dataset.map(
        encode,
        batched=True,
        with_indices=True,
        remove_columns=[c for c in dataset.column_names if c != LABELS_COLUMN],
        desc="Tokenizing",
    )


def split(dataset, *, test_size=0.1, seed=0):
    """(train, held_out): a seeded split, stratified by `labels` when every class has enough examples."""
    if isinstance(test_size, float) and not 0 < test_size < 1:
        raise InputError(f"test_size must be a fraction in (0, 1) or a number of rows, got {test_size}.")
    stratify = LABELS_COLUMN if LABELS_COLUMN in dataset.column_names else None
    try:
        parts = dataset.train_test_split(test_size=test_size, seed=seed, stratify_by_column=stratify)
    except ValueError:
        if stratify is None:
            raise InputError(
                f"cannot hold out test_size={test_size} of {len(dataset)} rows; use another test_size."
            ) from None
        try:  # a class too small to stratify: a plain random split
            parts = dataset.train_test_split(test_size=test_size, seed=seed)
        except ValueError:
            raise InputError(
                f"cannot hold out test_size={test_size} of {len(dataset)} rows; use another test_size."
            ) from None
    return parts["train"], parts["test"]


def _bucket_boundaries(max_length):
    """Sequence lengths for XLA: powers of two from 32 up to max_length (one compiled program each)."""
    boundaries, length = [], 32
    while length < max_length:
        boundaries.append(length)
        length *= 2
    return tuple(boundaries) + (max_length,)


def _tf_dataset(model, dataset, *, tokenizer, batch_size, shuffle, jit_compile, max_length, seed=None,
                drop_remainder=None):
    shapes = {"drop_remainder": False}  # per-batch padding: every example trains, the last batch partial
    if jit_compile:
        # Few distinct shapes: each bucket is one XLA program (per batch size).
        longest = max_length or int(max(len(ids) for ids in dataset["input_ids"]))
        shapes = dict(bucket_boundaries=_bucket_boundaries(longest), drop_remainder=drop_remainder)
    return model.prepare_tf_dataset(
        dataset, batch_size=batch_size, shuffle=shuffle, tokenizer=tokenizer, seed=seed, **shapes
    )


# ------------------------------------------------------------------------------------------- train, test


def _verbosity(verbose):
    """Keras' progress bar on a terminal; one line per epoch when the output is a file or a pipe."""
    if verbose == "auto":
        return 1 if sys.stdout.isatty() else 2
    return verbose


def train_classifier(
    model,
    dataset,
    *,
    tokenizer=None,
    epochs=2,
    batch_size=16,
    learning_rate=1e-4,
    max_length=None,
    jit_compile=False,
    seed=0,
    verbose="auto",
):
    """Compiles `model` with Adam (the learning rate decays linearly to 0) and its default loss, and fits
    it on a tokenized dataset with a `labels` column. Returns the Keras `History`.

    `jit_compile=True` trains with XLA on length buckets (see `prepare_tf_dataset`); the last partial batch
    of each bucket is then dropped each epoch (different examples each epoch).
    """
    import keras

    if epochs < 1 or batch_size < 1 or not learning_rate > 0:
        raise InputError(
            f"epochs and batch_size must be positive and learning_rate > 0; got epochs={epochs}, "
            f"batch_size={batch_size}, learning_rate={learning_rate}."
        )
    tf_train = _tf_dataset(model, dataset, tokenizer=tokenizer, batch_size=batch_size, shuffle=True,
                           jit_compile=jit_compile, max_length=max_length, seed=seed)
    steps = len(tf_train) * epochs
    schedule = keras.optimizers.schedules.PolynomialDecay(learning_rate, max(steps, 1), end_learning_rate=0.0)
    model.compile(optimizer=keras.optimizers.Adam(schedule), metrics=["accuracy"], jit_compile=jit_compile)
    # shuffle=False: prepare_tf_dataset already reshuffles every epoch (Keras cannot shuffle a tf.data input).
    return model.fit(tf_train, epochs=epochs, verbose=_verbosity(verbose), shuffle=False)


@dataclass
class EvalResult:
    accuracy: float
    confusion: np.ndarray  # [true class, predicted class] counts
    names: tuple  # class names by id

    @property
    def num_examples(self):
        return int(self.confusion.sum())

    def table(self):
        return format_confusion(self.confusion, self.names)


def format_confusion(confusion, names):
    """A text table: one row per true class, one column per predicted class, and each row's recall."""
    confusion = np.asarray(confusion)
    width = max(6, *(len(str(n)) for n in names))
    head = "true \\ predicted".ljust(width)
    lines = [" ".join([head] + [str(n).rjust(width) for n in names] + ["recall".rjust(7)])]
    for name, row in zip(names, confusion):
        total = row.sum()
        recall = f"{row[len(lines) - 1] / total:7.1%}" if total else "      -"
        lines.append(" ".join([str(name).ljust(width)] + [str(int(c)).rjust(width) for c in row] + [recall]))
    return "\n".join(lines)


def evaluate(model, dataset, *, tokenizer=None, batch_size=32, jit_compile=None, max_length=None,
             verbose="auto"):
    """Accuracy and confusion matrix of `model` on a tokenized dataset with class ids in a `labels` (or
    `label`) column.

    Every example is scored once (no batch is dropped). `jit_compile` (default: as the model was compiled)
    pads batches to length buckets so XLA compiles few programs."""
    import keras

    if not any(name in dataset.column_names for name in (LABELS_COLUMN, "label", "label_ids")):
        raise InputError(
            f"evaluate needs a label column ('labels', 'label' or 'label_ids'); the dataset has "
            f"{dataset.column_names}."
        )
    if len(dataset) == 0:
        raise InputError("the evaluation dataset is empty.")
    if jit_compile is None:
        jit_compile = bool(getattr(model, "jit_compile", False))
    tf_eval = _tf_dataset(model, dataset, tokenizer=tokenizer, batch_size=batch_size, shuffle=False,
                          jit_compile=jit_compile, max_length=max_length, drop_remainder=False)
    n = model.config.num_labels
    confusion = np.zeros((n, n), dtype=np.int64)
    verbose = _verbosity(verbose)
    progress = keras.utils.Progbar(len(tf_eval), verbose=verbose, unit_name="batch") if verbose else None
    for step, (inputs, labels) in enumerate(tf_eval):
        logits = np.asarray(model.predict_on_batch(inputs)["logits"])
        np.add.at(confusion, (np.asarray(labels), logits.argmax(-1)), 1)
        if progress is not None:
            progress.update(step + 1)
    accuracy = float(np.trace(confusion) / confusion.sum())
    names = tuple(model.config.id2label[i] for i in range(n))
    return EvalResult(accuracy, confusion, names)


class Prediction(NamedTuple):
    label: str
    score: float  # softmax probability of `label`


def classify(model, tokenizer, texts, *, max_length=None, batch_size=32):
    """The most likely label and its probability for each raw string."""
    import tensorflow as tf

    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    if not texts:
        return []
    if max_length is None:
        max_length = _max_length(model, tokenizer)
    id2label = model.config.id2label
    predictions = []
    for start in range(0, len(texts), batch_size):
        encoded = tokenizer(texts[start:start + batch_size], truncation=True, max_length=max_length,
                            padding=True, return_tensors="np")
        inputs = {k: v for k, v in encoded.items() if k in model.input_names}
        logits = model(inputs, training=False).logits
        probs = tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1).numpy()
        for row in probs:
            best = int(row.argmax())
            predictions.append(Prediction(str(id2label[best]), float(row[best])))
    return predictions


def _max_length(model, tokenizer):
    """The tokenizer's `model_max_length`, capped by the model's position table."""
    limits = [getattr(model.config, "max_position_embeddings", None), getattr(tokenizer, "model_max_length", None)]
    limits = [int(x) for x in limits if isinstance(x, (int, np.integer)) and 0 < x < 1_000_000]
    return min(limits) if limits else 512


# ------------------------------------------------------------------------------------------- all at once


@dataclass
class FineTuneResult:
    model: object
    tokenizer: object
    labels: LabelMapping
    evaluation: EvalResult | None
    history: object
    num_train: int
    num_eval: int


def fine_tune(
    model_name_or_path,
    dataset,
    *,
    text_column="text",
    label_column="label",
    eval_dataset=None,
    test_size=0.1,
    tokenizer=None,
    epochs=2,
    batch_size=16,
    learning_rate=1e-4,
    max_length=128,
    num_labels=None,
    ignore_mismatched_sizes=False,
    jit_compile=False,
    seed=0,
    verbose="auto",
    **hub_kwargs,
):
    """Fine-tunes a checkpoint for text classification on `dataset` and evaluates it.

    The held-out set is `eval_dataset` when given, else a seeded, stratified `test_size` fraction of
    `dataset` (`test_size=0`: no evaluation). `max_length` is capped by the model's position table and
    stored as the tokenizer's `model_max_length`, so a saved model truncates the same way at prediction.
    Returns a `FineTuneResult` (model, tokenizer, labels, evaluation, history).
    """
    import keras

    from tfformers.tokenization import AutoTokenizer

    check_columns(dataset, text_column, label_column)
    if eval_dataset is not None:
        check_columns(eval_dataset, text_column, label_column)
    keras.utils.set_random_seed(seed)
    values = dataset.unique(label_column)
    if eval_dataset is not None:
        values += eval_dataset.unique(label_column)
    model, labels = load_classifier(
        model_name_or_path,
        values,
        num_labels=num_labels,
        class_names=_class_names(dataset.features[label_column]),
        ignore_mismatched_sizes=ignore_mismatched_sizes,
        **hub_kwargs,
    )
    if tokenizer is None:
        tokenizer = AutoTokenizer.from_pretrained(model_name_or_path, **_tokenizer_kwargs(hub_kwargs))
    max_length = min(max_length, _max_length(model, tokenizer)) if max_length else _max_length(model, tokenizer)
    tokenizer.model_max_length = max_length

    def prepare(data):
        return tokenize(encode_labels(data, label_column, labels), tokenizer, text_column, max_length=max_length)

    data = prepare(dataset)
    if eval_dataset is not None:
        train, held_out = data, prepare(eval_dataset)
    elif test_size:
        train, held_out = split(data, test_size=test_size, seed=seed)
    else:
        train, held_out = data, None
    history = train_classifier(
        model, train, tokenizer=tokenizer, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
        max_length=max_length, jit_compile=jit_compile, seed=seed, verbose=verbose,
    )
    evaluation = None
    if held_out is not None and len(held_out):
        evaluation = evaluate(model, held_out, tokenizer=tokenizer, batch_size=max(batch_size, 32),
                              max_length=max_length, verbose=verbose)
    return FineTuneResult(model, tokenizer, labels, evaluation, history, len(train),
                          len(held_out) if held_out is not None else 0)


def _tokenizer_kwargs(hub_kwargs):
    keys = ("revision", "cache_dir", "token", "local_files_only")
    return {k: hub_kwargs[k] for k in keys if hub_kwargs.get(k) is not None}
