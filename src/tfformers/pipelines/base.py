"""The Pipeline base class: inputs in, batches through the model, one answer per input out.

A task subclass says how one input becomes model rows (`preprocess`: a list of dicts of token lists, one row
for a short text, several for a long question-answering context or the candidate labels of zero-shot
classification), how a padded batch of rows runs (`forward`, default: one call of the Keras model), and how
the rows of one input become its answer (`postprocess`). The base class does the rest once: it sorts the
call's options into those three steps, groups `batch_size` inputs, pads their rows per batch (on the
tokenizer's side), strips the padding from per-token outputs again, and shows a progress bar for long inputs.
"""

import contextlib
import itertools

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from tfformers.data.collators import pad_ragged
from tfformers.data.columns import Ragged
from tfformers.errors import InputError

# the model inputs that are token sequences, padded per batch; other model inputs are stacked, and the keys of a
# row that are no model input are metadata for postprocess
SEQUENCE_KEYS = ("input_ids", "attention_mask", "token_type_ids")
# a list of at least this many inputs shows a progress bar unless progress=False
PROGRESS_MIN_INPUTS = 100


def device_scope(device):
    """transformers' `device` argument as a TensorFlow device name (None: TensorFlow's own placement).

    -1 and "cpu" mean the CPU; an int n or "cuda:n" the n-th GPU; "/GPU:0"-style names pass through."""
    if device is None:
        return None
    if isinstance(device, int):
        return "/CPU:0" if device < 0 else f"/GPU:{device}"
    name = str(device)
    if name.lower() == "cpu":
        return "/CPU:0"
    if name.lower().startswith("cuda"):
        return f"/GPU:{name.partition(':')[2] or 0}"
    return name


class Pipeline:
    """Runs a model and its tokenizer on raw inputs; see `tfformers.pipeline()`.

    Subclasses set `task`, implement `_sanitize_parameters`, `preprocess`, `postprocess` (and `forward` when
    the model is not simply called), and name in `token_outputs` the outputs that have one value per token.
    """

    task = None
    token_outputs = ()

    def __init__(self, model, tokenizer, batch_size=1, progress=None, device=None, **kwargs):
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.progress = progress
        self.device = device_scope(device)
        self.padding_side = getattr(tokenizer, "padding_side", "right")
        self._init_kwargs = kwargs
        self._sanitize_parameters(**kwargs)  # a wrong option fails now, not at the first call

    # ----------------------------------------------------------------------------------- task interface

    def _sanitize_parameters(self, **kwargs):
        """The call's options -> (preprocess, forward, postprocess) keyword dicts; TypeError on unknown ones."""
        raise NotImplementedError

    def preprocess(self, item, **params):
        """One input -> its model rows: a list of dicts of model inputs (token lists) and metadata."""
        raise NotImplementedError

    def forward(self, batch, **params):
        """A padded batch {name: [rows, seq]} -> {output name: numpy array [rows, ...]}."""
        with self._device():
            outputs = self.model(batch, training=False)
        return {name: np.asarray(value) for name, value in outputs.items() if value is not None}

    def postprocess(self, rows, **params):
        """The rows of one input, each its preprocessed dict updated with its outputs -> the answer."""
        raise NotImplementedError

    def _is_single(self, inputs):
        """Whether `inputs` is one input (answered by one result) rather than a collection of them."""
        return isinstance(inputs, (str, dict))

    def _parameters(self, kwargs):
        return self._sanitize_parameters(**{**self._init_kwargs, **kwargs})

    # ------------------------------------------------------------------------------------------- calling

    def __call__(self, inputs, *, batch_size=None, progress=None, **kwargs):
        """The answer for one input, a list of answers for a list, a lazy iterator of answers for any other
        iterable (a generator, a 🤗 datasets column, a KeyDataset)."""
        params = self._parameters(kwargs)
        batch_size = batch_size or self.batch_size
        if not isinstance(batch_size, int) or batch_size < 1:
            raise InputError(f"batch_size must be a positive int, got {batch_size!r}.")
        progress = self.progress if progress is None else progress
        if inputs is None:
            raise InputError(f"The {self.task} pipeline got no input (None); pass a text or a list of texts.")
        if self._is_single(inputs):
            return next(self._run([inputs], batch_size, False, params))
        if isinstance(inputs, (list, tuple)):
            if not inputs:
                raise InputError(f"The {self.task} pipeline got an empty list; pass at least one input.")
            return list(self._run(inputs, batch_size, progress, params))
        if not hasattr(inputs, "__iter__"):
            raise InputError(f"The {self.task} pipeline cannot read inputs of type {type(inputs).__name__}.")
        return self._run(inputs, batch_size, progress, params)

    def _run(self, inputs, batch_size, progress, params):
        """Answers in input order, `batch_size` inputs at a time, their rows `batch_size` at a time."""
        preprocess_params, forward_params, postprocess_params = params
        remaining = iter(inputs)
        with self._progress_bar(inputs, progress) as bar:
            while group := list(itertools.islice(remaining, batch_size)):
                prepared = [self.preprocess(item, **preprocess_params) for item in group]
                rows = [row for item_rows in prepared for row in item_rows]
                outputs = []
                for start in range(0, len(rows), batch_size):
                    outputs.extend(self._forward_rows(rows[start:start + batch_size], forward_params))
                done = 0
                for item_rows in prepared:
                    answered = [{**row, **out} for row, out in zip(item_rows, outputs[done:done + len(item_rows)])]
                    done += len(item_rows)
                    bar.update(1)
                    yield self.postprocess(answered, **postprocess_params)

    def _forward_rows(self, rows, forward_params):
        """Collates `rows` into one batch, runs it, and returns each row's outputs, per-token ones unpadded."""
        outputs = self.forward(self._collate(rows), **forward_params)
        per_row = [{name: value[i] for name, value in outputs.items()} for i in range(len(rows))]
        for name in self.token_outputs:  # [width, ...] -> [the row's own length, ...]
            width = outputs[name].shape[1]
            for row, own in zip(rows, per_row):
                length = len(row["input_ids"])
                own[name] = own[name][width - length:] if self.padding_side == "left" else own[name][:length]
        return per_row

    def _collate(self, rows):
        """The model's inputs among the rows' keys as one batch: token sequences padded, other arrays (an
        image's pixel values) stacked."""
        names = [name for name in self.model.input_names if name in rows[0]]
        return {
            name: self._pad([row[name] for row in rows], name) if name in SEQUENCE_KEYS
            else np.stack([np.asarray(row[name]) for row in rows])
            for name in names
        }

    def _pad(self, sequences, name):
        """Token lists -> int32 [rows, longest], padded with the tokenizer's value for `name` on its side."""
        pad_values = {
            "input_ids": self.tokenizer.pad_token_id or 0,
            "token_type_ids": getattr(self.tokenizer, "pad_token_type_id", 0),
        }
        lengths = [len(sequence) for sequence in sequences]
        values = np.concatenate([np.asarray(s, dtype=np.int32).reshape(-1) for s in sequences])
        padded, _ = pad_ragged(Ragged(values, lengths), max(lengths), pad_values.get(name, 0), self.padding_side)
        return padded

    def _device(self):
        return tf.device(self.device) if self.device else contextlib.nullcontext()

    def _progress_bar(self, inputs, progress):
        total = len(inputs) if hasattr(inputs, "__len__") else None
        shown = bool(progress) if progress is not None else (total or 0) >= PROGRESS_MIN_INPUTS
        return tqdm(total=total, desc=self.task, unit="input", disable=not shown)


class KeyDataset:
    """One column of a dataset as an iterable of inputs (transformers' `KeyDataset`): `pipe(KeyDataset(ds,
    "text"))` yields the answers lazily."""

    def __init__(self, dataset, key):
        self.dataset = dataset
        self.key = key

    def __len__(self):
        return len(self.dataset)

    def __iter__(self):
        return (example[self.key] for example in self.dataset)


def require_options(task, allowed, kwargs):
    """TypeError naming the options of `kwargs` not in `allowed`, and the allowed ones."""
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise TypeError(f"The {task} pipeline takes no option(s) {unknown}; it takes {sorted(allowed)}.")
