"""Keras callbacks for training with the Hub: `PushToHubCallback` and `KerasMetricCallback`.

    model.fit(train, validation_data=val, epochs=3, callbacks=[
        KerasMetricCallback(metric_fn, eval_dataset=val),      # first: its metrics go into `logs`
        keras.callbacks.EarlyStopping("accuracy", mode="max"),  # ... so EarlyStopping sees them
        PushToHubCallback("out", hub_model_id="me/my-model", checkpoint=True),  # ... and the card
    ])

Callbacks run in list order on the same `logs` dict, so put `KerasMetricCallback` before the callbacks
that read its metrics.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from concurrent.futures import Future
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfformers import distribute, hub, modelcard, sharing

__all__ = ["PushToHubCallback", "KerasMetricCallback"]

logger = logging.getLogger("tfformers")

_STRATEGIES = ("epoch", "steps", "no")


class PushToHubCallback(keras.callbacks.Callback):
    """Saves the model into `output_dir` and pushes it to the Hub during training, without stalling it.

    Args:
        output_dir: local folder the model is saved into before each push (it is uploaded as is, and kept).
        save_strategy: `"epoch"` (push at each epoch end), `"steps"` (every `save_steps` batches) or `"no"`
            (only the final push).
        save_steps: batches between pushes with `save_strategy="steps"`.
        tokenizer: saved and pushed alongside (else `model.tokenizer` when set).
        hub_model_id: the repo, `"namespace/name"` or `"name"` (the token owner's namespace); defaults to
            the name of `output_dir`.
        hub_token: token with write access (else `HF_TOKEN` or the saved login).
        checkpoint: also push a resumable checkpoint (optimizer state and epoch, in the repo's
            `checkpoint/`); resume with `model.load_repo_checkpoint(repo)` and
            `fit(initial_epoch=...)`. Needs `save_strategy="epoch"`.
        private: create the repo private.
        **model_card_args: passed to `tfformers.modelcard.model_card` (`license=`, `language=`,
            `datasets=`, `tags=`, `base_model=`, `batch_size=`, ...).

    Pushes run in the background (one commit each, in order). While one is still uploading, the next save
    point is skipped (recorded in `skipped`), never queued. When training ends, the callback waits for
    the upload in flight, then makes a final, blocking push ("End of training"; no commit when nothing
    changed) that raises `HubError` if it fails (a failed background push is only logged). Put callbacks
    that change the weights at the end (EarlyStopping(restore_best_weights=True)) before this one.
    The card (README.md) is regenerated at each push with the history so far, unless the folder or the
    repo holds a card a person wrote. Under a multi-worker strategy only the chief saves into `output_dir` and
    pushes; another worker writes nothing and contacts no Hub.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        save_strategy: str = "epoch",
        save_steps: int | None = None,
        tokenizer=None,
        hub_model_id: str | None = None,
        hub_token: str | None = None,
        checkpoint: bool = False,
        *,
        private: bool | None = None,
        **model_card_args,
    ):
        super().__init__()
        strategy = str(getattr(save_strategy, "value", save_strategy)).lower()
        if strategy not in _STRATEGIES:
            raise ValueError(f"save_strategy={save_strategy!r}: use one of {list(_STRATEGIES)}.")
        if strategy == "steps" and (not isinstance(save_steps, int) or save_steps < 1):
            raise ValueError(
                f"save_strategy='steps' needs save_steps, a positive number of batches (got {save_steps!r}).")
        if checkpoint and strategy != "epoch":
            raise ValueError("checkpoint=True pushes resumable checkpoints at epoch ends: use save_strategy='epoch'.")
        self.output_dir = os.fspath(output_dir)
        self.save_strategy = strategy
        self.save_steps = save_steps
        self.tokenizer = tokenizer
        self.hub_model_id = hub_model_id or Path(self.output_dir).absolute().name
        self.hub_token = hub_token
        self.checkpoint = checkpoint
        self.private = private
        self.model_card_args = model_card_args
        self.repo_id = None  # hub_model_id with its namespace, known when training begins
        self.training_history = []  # [{"epoch": 1, "loss": ..., ...}] incl. epochs of a resumed run
        self.pushes = []  # commit messages of the pushes started
        self.skipped = []  # save points skipped because a push was still running: epoch or step numbers
        self.last_commit = None  # CommitInfo of the last push that completed
        self._job: Future | None = None
        self._chief = True  # the worker that saves and pushes (set when training begins)
        self._write_card = True
        self._step = 0
        self._epochs_done = 0

    # ------------------------------------------------------------------------------------------ hooks

    def on_train_begin(self, logs=None):
        self._step = 0
        self._chief = distribute.is_chief(self.model.distribute_strategy)
        if not self._chief:  # another worker of a multi-worker cluster writes nothing
            return
        self.repo_id = hub.full_repo_id(self.hub_model_id, token=self.hub_token)
        os.makedirs(self.output_dir, exist_ok=True)
        local_card = os.path.join(self.output_dir, sharing.CARD_NAME)
        if os.path.isfile(local_card):
            with open(local_card, encoding="utf-8") as f:
                self._write_card = modelcard.is_generated_card(f.read())
        else:
            remote = sharing.remote_card(self.repo_id, token=self.hub_token)
            self._write_card = remote is None or modelcard.is_generated_card(remote)
        resumed = modelcard.training_record(self.model).resumed
        self.training_history = [dict(row) for row in resumed.get("history") or []]
        self._epochs_done = int(resumed.get("epoch") or 0)

    def on_epoch_begin(self, epoch, logs=None):
        # A resumed run starts at `initial_epoch`: rows from later epochs of the earlier run are stale.
        self.training_history = [row for row in self.training_history if row["epoch"] <= epoch]
        self._epochs_done = epoch

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        if self.save_strategy == "steps" and self._step % self.save_steps == 0:
            self._push(f"Training in progress, step {self._step}", self._step)

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch + 1}
        for key, value in (logs or {}).items():
            try:
                row[key] = float(value)
            except (TypeError, ValueError):
                continue
        self.training_history.append(row)
        self._epochs_done = epoch + 1
        if self.save_strategy == "epoch":
            self._push(f"Training in progress, epoch {epoch + 1}", epoch + 1)

    def on_train_end(self, logs=None):
        # Always: callbacks before this one may have changed the weights (EarlyStopping's
        # restore_best_weights); an unchanged folder makes no commit (huggingface_hub skips empty ones).
        self.wait()
        self._push("End of training", "end", blocking=True)

    # ------------------------------------------------------------------------------------------ pushing

    @property
    def push_in_progress(self) -> bool:
        return self._job is not None and not self._job.done()

    def wait(self):
        """Blocks until the push in flight (if any) is done; logs its error rather than raising it."""
        if self._job is None:
            return
        try:
            self.last_commit = self._job.result()
        except Exception as error:  # noqa: BLE001 - a background push must not kill the training run
            logger.warning("Pushing to %s in the background failed: %s", self.repo_id, error)
        self._job = None

    def _push(self, message, label, blocking=False):
        if not self._chief:
            return
        if self.push_in_progress:
            self.skipped.append(label)
            logger.info("Skipping the push at %s %s: the previous push to %s is still uploading.",
                        "step" if isinstance(label, int) and self.save_strategy == "steps" else "epoch",
                        label, self.repo_id)
            return
        self.wait()  # collect the finished job's result or error
        self._save()
        self.pushes.append(message)
        result = hub.push_folder(self.output_dir, self.repo_id, token=self.hub_token, private=self.private,
                                 commit_message=message, run_as_future=not blocking)
        if blocking:
            self.last_commit = result
        else:
            self._job = result

    def _save(self):
        self.model.save_pretrained(self.output_dir, tokenizer=self.tokenizer)
        if self._write_card:
            has_tokenizer = self.tokenizer is not None or getattr(self.model, "tokenizer", None) is not None
            card_args = {"has_tokenizer": has_tokenizer, **self.model_card_args}
            card = modelcard.model_card(self.model, repo_id=self.repo_id, history=self.training_history, **card_args)
            sharing.write_card(self.output_dir, card)
        if self.checkpoint:
            sharing.save_checkpoint(self.model, self.output_dir, epoch=self._epochs_done,
                                    history=self.training_history)


class KerasMetricCallback(keras.callbacks.Callback):
    """Runs a Python metric on an evaluation set at each epoch end and writes the results into Keras `logs`,
    so `EarlyStopping`, `ReduceLROnPlateau`, the History and the model card see them.

    Args:
        metric_fn: called as `metric_fn((predictions, labels))` with NumPy arrays (concatenated over the
            evaluation set; arrays of different lengths padded with -100); returns `{name: value}`.
        eval_dataset: a batched `tf.data.Dataset` of `(inputs, labels)` or of input dicts holding the labels
            (as `prepare_tf_dataset` makes), or arrays / a dict / a tuple that are batched by `batch_size`.
        output_cols: the model outputs passed as predictions (default: all but loss, hidden states and
            attentions; one output is passed as an array, several as a dict).
        label_cols: label names to take out of an input dict (default: the model's `label_names`).
        batch_size: batch size for `eval_dataset` given as arrays (default 32).
        predict_with_generate: predictions are `model.generate(...)` instead, on the batch's main input
            (`input_ids`) and `attention_mask` only, as transformers 4.x: teacher-forcing inputs such as the
            `decoder_input_ids` a seq2seq collator adds are not prompts.
        use_xla_generation: run that `generate` inside one `tf.function(jit_compile=True)` (one compiled
            program per input shape, as transformers 4.x).
        generate_kwargs: keyword arguments for `generate`.

    Put it before the callbacks that read its metrics: callbacks share `logs` in list order.
    """

    def __init__(self, metric_fn, eval_dataset, output_cols=None, label_cols=None, batch_size=None,
                 predict_with_generate=False, use_xla_generation=False, generate_kwargs=None):
        super().__init__()
        if not callable(metric_fn):
            raise TypeError(f"metric_fn must be callable, got {type(metric_fn).__name__}.")
        if not isinstance(eval_dataset, tf.data.Dataset):
            eval_dataset = tf.data.Dataset.from_tensor_slices(eval_dataset).batch(batch_size or 32)
        self.metric_fn = metric_fn
        self.eval_dataset = eval_dataset
        self.output_cols = [output_cols] if isinstance(output_cols, str) else output_cols
        self.label_cols = [label_cols] if isinstance(label_cols, str) else label_cols
        self.predict_with_generate = predict_with_generate
        self.generate_kwargs = dict(generate_kwargs or {})
        self.use_xla_generation = use_xla_generation
        self._compiled_generate = None  # the tf.function, made at the first use_xla_generation batch

    def _split(self, batch):
        """(inputs, labels or None) of one batch."""
        labels = None
        if isinstance(batch, (tuple, list)):
            inputs = batch[0]
            labels = batch[1] if len(batch) > 1 else None
        else:
            inputs = batch
        names = self.label_cols or list(getattr(self.model, "label_names", ()) or ())
        if labels is None and isinstance(inputs, Mapping):
            inputs = dict(inputs)
            found = {name: inputs.pop(name) for name in names if name in inputs}
            labels = found or None
        if isinstance(labels, Mapping):
            if self.label_cols:
                labels = {name: labels[name] for name in self.label_cols}
            if len(labels) == 1:
                labels = next(iter(labels.values()))
        return inputs, labels

    def _predictions(self, inputs):
        if self.predict_with_generate:
            return _numpy(self._generate(inputs))
        outputs = self.model.predict_on_batch(inputs)
        if not isinstance(outputs, Mapping):
            return _numpy(outputs)
        if self.output_cols:
            missing = [c for c in self.output_cols if c not in outputs]
            if missing:
                raise KeyError(f"output_cols {missing} are not model outputs; the model returns {list(outputs)}.")
            keys = self.output_cols
        else:
            keys = [k for k in outputs if k not in ("loss", "hidden_states", "attentions", "past_key_values")]
        if len(keys) == 1:
            return _numpy(outputs[keys[0]])
        return {k: _numpy(outputs[k]) for k in keys}

    def _generate(self, inputs):
        attention_mask = None
        if isinstance(inputs, Mapping):
            attention_mask = inputs.get("attention_mask")
            inputs = inputs[self.model.main_input_name]
        if not self.use_xla_generation:
            return self._generate_with_options(inputs, attention_mask)
        if self._compiled_generate is None:
            self._compiled_generate = tf.function(self._generate_with_options, jit_compile=True)
        return self._compiled_generate(inputs, attention_mask)

    def _generate_with_options(self, inputs, attention_mask):
        return self.model.generate(inputs, attention_mask=attention_mask, **self.generate_kwargs)

    def on_epoch_end(self, epoch, logs=None):
        predictions, labels = [], []
        for batch in self.eval_dataset:
            inputs, batch_labels = self._split(batch)
            predictions.append(self._predictions(inputs))
            if batch_labels is not None:
                labels.append(tf.nest.map_structure(_numpy, batch_labels))
        if not predictions:
            raise ValueError("KerasMetricCallback got an empty eval_dataset.")
        results = self.metric_fn((_concatenate(predictions), _concatenate(labels) if labels else None))
        if not isinstance(results, Mapping):
            raise TypeError(f"metric_fn must return a dict {{name: value}}, got {type(results).__name__}.")
        results = {str(k): (v.item() if isinstance(v, np.generic) else v) for k, v in results.items()}
        if logs is not None:
            logs.update(results)
        # Tells the model card that these are evaluation-set metrics.
        record = modelcard.training_record(self.model)
        record.eval_metric_names = tuple(dict.fromkeys(record.eval_metric_names + tuple(results)))


def _numpy(value):
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)


def _concatenate(batches):
    """Concatenates per-batch arrays (or dicts of arrays) along axis 0, padding other axes with -100."""
    first = batches[0]
    if isinstance(first, Mapping):
        return {k: _concatenate([b[k] for b in batches]) for k in first}
    arrays = [np.asarray(b) for b in batches]
    if arrays[0].ndim == 0:
        return np.stack(arrays)
    shape = [max(a.shape[i] for a in arrays) for i in range(1, arrays[0].ndim)]
    padded = []
    for a in arrays:
        if list(a.shape[1:]) != shape:
            pad = [(0, 0)] + [(0, s - d) for s, d in zip(shape, a.shape[1:])]
            a = np.pad(a, pad, constant_values=-100)
        padded.append(a)
    return np.concatenate(padded, axis=0)
