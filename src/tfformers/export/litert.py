"""LiteRT (TensorFlow Lite) export: a tfformers model as a `.tflite` flatbuffer that takes token ids.

`export_litert(model, "model.tflite", sequence_length=128)` writes one signature, `serving_default`:
  inputs: int32 [batch, sequence_length]: `input_ids`, `attention_mask`, and `token_type_ids` when the
    model takes them (BERT, RoBERTa; not DistilBERT or the decoders). The batch is dynamic unless
    `batch_size` is given; the sequence length is fixed, so rows are right-padded to it.
  outputs (float32, named): a classifier's `logits` and `probabilities` (softmax; sigmoid for
    `problem_type="multi_label_classification"`; none for regression), a base model's `last_hidden_state`
    and `pooler_output` when it has a pooler, any other head's logits under their usual names
    (`start_logits`/`end_logits`, `prediction_logits`/`seq_relationship_logits`, `logits`).
Weights are float32, every op a TFLite builtin (no Flex delegate, no custom ops), so the file runs in any
LiteRT interpreter. `LiteRTModel` runs it with the interpreter TensorFlow ships and pads rows for you.

Not supported (ConfigError): models that generate with a KV cache (causal LMs and decoder base models;
their classification heads are supported), multiple choice ([batch, choices, seq] inputs), and an
in-graph tokenizer: its string and ragged ops need the Flex delegate, which TensorFlow's Python interpreter
does not have (see docs/litert.md).
"""

import os
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfformers.errors import ConfigError, InputError

ID_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
SIGNATURE_KEY = "serving_default"

# the model's task -> the outputs it has in LiteRT, in order
_TASK_OUTPUTS = {
    "base": ("last_hidden_state", "pooler_output"),
    "sequence-classification": ("logits", "probabilities"),
    "token-classification": ("logits",),
    "question-answering": ("start_logits", "end_logits"),
    "masked-lm": ("logits",),
    "pretraining": ("prediction_logits", "seq_relationship_logits"),
}
_SUPPORTED = (
    "encoder models (BERT, DistilBERT, RoBERTa, MiniLM ...) with any head but multiple choice, and the "
    "sequence- and token-classification heads of decoders (GPT-2, Llama, Mistral, Qwen2)"
)

# The TFLite ops the tokenizer's string and ragged operations become (Flex: TensorFlow kernels run by the
# Flex delegate), measured on TFBertTokenizer with TF 2.21 / tensorflow-text 2.21.
TOKENIZER_UNSUPPORTED = (
    "An in-graph tokenizer cannot be exported to LiteRT: its string and ragged operations (StaticRegexReplace, "
    "UnicodeDecode/Encode, StringSplitV2, StringLength, NormalizeUTF8, RaggedGather, RaggedRange, "
    "RaggedTensorToTensor, UpperBound, BitwiseAnd, UnsortedSegmentSum, DenseBincount) are not TFLite builtins "
    "and convert only as Flex ops (SELECT_TF_OPS), which TensorFlow's Python tf.lite.Interpreter cannot run "
    "(\"Select TensorFlow op(s) ... not supported by this interpreter ... Node number 0 (FlexStaticRegexReplace) "
    "failed to prepare\"); NormalizeUTF8 is a tensorflow-text kernel that no Flex delegate build includes. "
    "Export the model with token-id inputs (tokenizer=None) and tokenize in the app; see docs/litert.md."
)


def export_litert(model, path, *, sequence_length=128, batch_size=None, outputs=None, tokenizer=None):
    """Writes `model` to `path` as a LiteRT flatbuffer and returns the path (a `pathlib.Path`).

    `sequence_length`: the fixed length of every input row (at most the model's position table).
    `batch_size`: None for a dynamic batch (the interpreter resizes to the batch it gets), or a fixed size.
    `outputs`: the names to keep (default: all of the task's, see the module docstring).
    `tokenizer`: not supported (a ConfigError saying why); pass token ids.
    The write is atomic: a temporary file in the same folder is renamed over `path` once complete.
    """
    if tokenizer is not None:
        raise ConfigError(TOKENIZER_UNSUPPORTED)
    signature = _input_signature(model, sequence_length, batch_size)
    names = _output_names(model, outputs)
    serve = _serving_function(model, signature, names)
    flatbuffer = _convert(serve)
    return _write_atomically(flatbuffer, path)


def supported_outputs(model):
    """The output names `export_litert` gives this model."""
    _check_model(model)
    names = _TASK_OUTPUTS[model.task]
    if model.task == "base" and not _has_pooler(model):
        names = names[:1]
    if model.task == "sequence-classification" and _probability_function(model.config) is None:
        names = names[:1]
    return names


# ------------------------------------------------------------------------------------------- checks


def _check_model(model):
    from tfformers.modeling import TFPreTrainedModel

    if not isinstance(model, TFPreTrainedModel):
        raise ConfigError(f"export_litert takes a tfformers model (TFPreTrainedModel); got {type(model).__name__}.")
    name = type(model).__name__
    if "cache" in model.call_options or model.task == "causal-lm":
        raise ConfigError(
            f"{name} generates with a KV cache, which export_litert does not export. Supported: {_SUPPORTED}."
        )
    if model.task not in _TASK_OUTPUTS:
        raise ConfigError(f"{name} (task {model.task!r}) cannot be exported to LiteRT. Supported: {_SUPPORTED}.")
    dtype = model.dtype_policy.variable_dtype
    if dtype != "float32" or model.dtype_policy.compute_dtype != "float32":
        raise ConfigError(
            f"{name} runs in {model.dtype_policy.name}; export_litert writes float32 models. Load it with "
            "from_pretrained(..., dtype='float32')."
        )


def _has_pooler(model):
    main_layer = getattr(model, model.base_model_prefix, None)
    return getattr(main_layer, "pooler", None) is not None


def _probability_function(config):
    """softmax or sigmoid over a classifier's logits, as its problem type reads them; None for regression."""
    problem_type = getattr(config, "problem_type", None)
    if problem_type == "regression" or (problem_type is None and config.num_labels == 1):
        return None
    if problem_type == "multi_label_classification":
        return tf.math.sigmoid
    return lambda logits: tf.nn.softmax(logits, axis=-1)


def _input_signature(model, sequence_length, batch_size):
    _check_model(model)
    for name, value in (("sequence_length", sequence_length), ("batch_size", batch_size)):
        if value is None and name == "batch_size":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise InputError(f"{name}={value!r}; it must be a positive integer.")
    limit = model.input_limits().max_length
    if limit is not None and sequence_length > limit:
        raise InputError(
            f"sequence_length={sequence_length} is longer than the {limit} positions {type(model).__name__} "
            f"embeds (max_position_embeddings in its config); export with sequence_length <= {limit}."
        )
    shape = [batch_size, int(sequence_length)]
    return {name: tf.TensorSpec(shape, tf.int32, name=name) for name in ID_INPUTS if name in model.input_names}


def _output_names(model, outputs):
    available = supported_outputs(model)
    if outputs is None:
        return available
    outputs = [outputs] if isinstance(outputs, str) else list(outputs)
    unknown = [name for name in outputs if name not in available]
    if unknown or not outputs:
        raise InputError(
            f"outputs={outputs!r}: {type(model).__name__} exports {list(available)}; pick one or more of these."
        )
    return tuple(dict.fromkeys(outputs))


# --------------------------------------------------------------------------------------- conversion


def _serving_function(model, signature, names):
    probabilities = _probability_function(model.config) if "probabilities" in names else None

    @tf.function(input_signature=[signature], autograph=False)
    def serve(inputs):
        out = dict(model(inputs, training=False))
        if probabilities is not None:
            out["probabilities"] = probabilities(out["logits"])
        return {name: tf.cast(out[name], tf.float32) for name in names}

    return serve


class _Weights(tf.Module):
    """The function and only the variables it reads. Handed the Keras model itself, the converter keeps
    every weight as a resource variable (VAR_HANDLE / READ_VARIABLE ops) that nothing initializes, so the
    interpreter reads garbage (NaN with XNNPACK); with this module they are folded into constants."""

    def __init__(self, concrete):
        super().__init__(name="tfformers_litert")
        self.weights = list(concrete.variables)


def _convert(serve):
    concrete = serve.get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], _Weights(concrete))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert()


def _write_atomically(content, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ------------------------------------------------------------------------------------------- running


class LiteRTModel:
    """A `.tflite` file written by `export_litert`, run with TensorFlow's `tf.lite.Interpreter`.

    `LiteRTModel(path)(input_ids=..., attention_mask=...)` -> {output name: numpy array}. Rows shorter than
    the exported `sequence_length` are right-padded (`pad_token_id` for the ids, 0 for the mask and token
    types) and the outputs keep the padded length; a missing `attention_mask` marks the given positions,
    missing `token_type_ids` are zeros. A longer row is an InputError: truncate when tokenizing.
    """

    def __init__(self, path, *, num_threads=None):
        self.path = Path(path)
        self.interpreter = _quiet_interpreter(model_path=os.fspath(self.path), num_threads=num_threads)
        self._runner = self.interpreter.get_signature_runner(SIGNATURE_KEY)
        details = self._runner.get_input_details()
        self.input_names = tuple(name for name in ID_INPUTS if name in details)
        self.output_names = tuple(self.interpreter.get_signature_list()[SIGNATURE_KEY]["outputs"])
        batch, self.sequence_length = (int(n) for n in details["input_ids"]["shape_signature"])
        self.batch_size = None if batch < 0 else batch

    def __call__(self, inputs=None, /, *, pad_token_id=0, **named):
        inputs = {**(inputs or {}), **named}
        unknown = sorted(set(inputs) - set(self.input_names))
        if unknown or "input_ids" not in inputs:
            raise InputError(
                f"{self.path.name} takes {list(self.input_names)} (input_ids required); got {sorted(inputs)}."
            )
        ids = _as_rows(inputs["input_ids"], "input_ids")
        feed = {"input_ids": ids}
        for name in self.input_names[1:]:
            value = inputs.get(name)
            if value is None:
                value = np.ones_like(ids) if name == "attention_mask" else np.zeros_like(ids)
            feed[name] = _as_rows(value, name)
            if feed[name].shape != ids.shape:
                raise InputError(f"{name} has shape {feed[name].shape}; input_ids has {ids.shape}.")
        batch, length = ids.shape
        if length > self.sequence_length:
            raise InputError(
                f"input_ids has sequence length {length}, longer than the sequence_length={self.sequence_length} "
                f"{self.path.name} was exported with. Truncate when tokenizing (truncation=True, "
                f"max_length={self.sequence_length}) or export with a longer sequence_length."
            )
        if self.batch_size is not None and batch != self.batch_size:
            raise InputError(
                f"{self.path.name} was exported with batch_size={self.batch_size}; got a batch of {batch}."
            )
        padding = [(0, 0), (0, self.sequence_length - length)]
        feed = {
            name: np.pad(value, padding, constant_values=pad_token_id if name == "input_ids" else 0)
            for name, value in feed.items()
        }
        return self._runner(**feed)


def _as_rows(value, name):
    array = np.asarray(value)
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.integer):
        raise InputError(f"{name} must be integer ids [batch, length]; got {array.dtype} of shape {array.shape}.")
    return array.astype(np.int32)


def _quiet_interpreter(**kwargs):
    """tf.lite.Interpreter without its deprecation warning (the LiteRT package's interpreter is the same)."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"\s*Warning: tf.lite.Interpreter is deprecated")
        return tf.lite.Interpreter(**kwargs)
