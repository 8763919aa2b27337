"""LoRA adapters (Hu et al., 2021) on Keras' own Dense LoRA, saved and loaded in PyTorch PEFT's format.

A LoRA adapter adds a low-rank update to a frozen weight: a Dense layer computes `x @ (W + s * A @ B)`
with `A` [in, r], `B` [r, out] and `s = lora_alpha / r` (`lora_alpha / sqrt(r)` with `use_rslora`), which
is PEFT's `W x + s * B(A(x))`. Keras' `Dense.enable_lora` holds `A` and `B` (`lora_kernel_a`,
`lora_kernel_b`, float32) and scales by its own `lora_alpha / rank`: we pass it the alpha that makes its
scale PEFT's. `B` starts at zero and `A` as PEFT draws it (Kaiming-uniform with a = sqrt(5)), so an
enabled adapter changes nothing until it is trained.

Layers are picked as PEFT picks them: a target name matches a module whose PyTorch name equals it or ends
in `.<name>` (a single string is a regular expression the whole name must match). The layer tree carries
PyTorch's module names (`checkpoint.named_modules`), so `query`, `q_proj` or `c_attn` mean what they mean
in PyTorch. Every other weight is frozen, except the modules in `modules_to_save`, which train fully (a
classification head, as PEFT adds it for SEQ_CLS / TOKEN_CLS / QUESTION_ANS models).

Files are PEFT's: `adapter_config.json` (LoraConfig's fields) and `adapter_model.safetensors` with keys
`base_model.model.<module>.lora_A.weight` [r, in], `.lora_B.weight` [out, r] (GPT-2's Conv1D included:
PEFT's adapter matrices are Linear layers there too) and `base_model.model.<key>` for `modules_to_save`.
"""

import dataclasses
import json
import logging
import math
import os
import re

import keras
import numpy as np
from safetensors.numpy import save_file

from tfformers import hub
from tfformers.checkpoint import SafetensorsReader
from tfformers.checkpoint.keys import named_modules
from tfformers.errors import CheckpointError, ConfigError
from tfformers.fileio import atomic_directory
from tfformers.layers.core import Conv1D

logger = logging.getLogger("tfformers")

ADAPTER_CONFIG_NAME = "adapter_config.json"
ADAPTER_WEIGHTS_NAME = "adapter_model.safetensors"
_PEFT_PREFIX = "base_model.model."  # PeftModel.base_model (LoraModel).model (the transformers model)
_LORA_A, _LORA_B = ".lora_A.weight", ".lora_B.weight"

# tfformers task -> PEFT TaskType; the task models of PEFT add their head to modules_to_save
_TASK_TYPES = {
    "base": "FEATURE_EXTRACTION",
    "causal-lm": "CAUSAL_LM",
    "sequence-classification": "SEQ_CLS",
    "token-classification": "TOKEN_CLS",
    "question-answering": "QUESTION_ANS",
}
_TASK_HEADS = {"SEQ_CLS": ["classifier", "score"], "TOKEN_CLS": ["classifier", "score"],
               "QUESTION_ANS": ["qa_outputs"]}

# LoraConfig settings we cannot honour, with the value that means "not used"
_UNSUPPORTED = {
    "use_dora": False, "lora_bias": False, "bias": "none", "rank_pattern": {}, "alpha_pattern": {},
    "layers_to_transform": None, "layers_pattern": None, "exclude_modules": None, "layer_replication": None,
    "trainable_token_indices": None, "target_parameters": None,
}


@dataclasses.dataclass
class LoraConfig:
    """PEFT's LoraConfig fields that tfformers' adapters use (the names and defaults of `peft.LoraConfig`)."""

    r: int = 8
    target_modules: object = None  # list of names (matched as suffixes) or one regular expression
    lora_alpha: float = 8
    lora_dropout: float = 0.0
    use_rslora: bool = False
    modules_to_save: list = None
    fan_in_fan_out: bool = False
    task_type: str = None
    base_model_name_or_path: str = None
    revision: str = None

    @property
    def scaling(self):
        """s in W + s * A @ B (PEFT's `scaling`)."""
        return self.lora_alpha / (math.sqrt(self.r) if self.use_rslora else self.r)

    def to_dict(self):
        """adapter_config.json's content, as peft.LoraConfig.save_pretrained writes it."""
        fields = dataclasses.asdict(self)
        if isinstance(fields["target_modules"], (list, tuple, set)):
            fields["target_modules"] = sorted(fields["target_modules"])
        return {"peft_type": "LORA", **fields, **_UNSUPPORTED, "init_lora_weights": True, "inference_mode": True}

    @classmethod
    def from_file(cls, path):
        """The LoraConfig in an adapter_config.json; ConfigError for settings tfformers cannot honour."""
        with open(path, encoding="utf-8") as handle:
            try:
                settings = json.load(handle)
            except json.JSONDecodeError as error:
                raise ConfigError(f"{path} is not valid JSON ({error}); save the adapter again.") from None
        if settings.get("peft_type") != "LORA":
            raise ConfigError(f"{path} is a {settings.get('peft_type')!r} adapter; tfformers loads LoRA adapters only.")
        refused = {name: value for name, value in settings.items()
                   if name in _UNSUPPORTED and value not in (None, {}, [], _UNSUPPORTED[name])}
        if refused:
            raise ConfigError(
                f"{path} sets {refused}, which tfformers' LoRA does not support (plain LoRA on Dense layers, "
                f"one rank and alpha for all). Merge the adapter in PEFT (merge_and_unload) and load the model."
            )
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{name: value for name, value in settings.items() if name in names})


@dataclasses.dataclass
class _Adapter:
    """What an enabled adapter changed in a model: its LoRA layers and what to restore when unloaded."""

    config: LoraConfig
    layers: dict  # PyTorch module name -> Dense with LoRA enabled
    frozen: list  # weights trainable before the adapter was enabled, frozen by it


def adapter_of(model):
    """The model's `_Adapter`, None without LoRA."""
    return getattr(model, "_lora_adapter", None)


def _modules(model):
    """{PyTorch module name: layer}, in the names of the model's own checkpoint keys (a base model's
    without its `base_model_prefix`, as `checkpoint_parameters` gives them)."""
    modules = dict(named_modules(model))
    if model.is_base_model:
        prefix = model.base_model_prefix + "."
        modules = {name.removeprefix(prefix): layer for name, layer in modules.items()}
    return modules


def _matches(name, patterns):
    """PEFT's `check_target_module_exists`: a string is a regex the whole name must match; a list matches a
    name equal to an entry or ending in `.<entry>`."""
    if isinstance(patterns, str):
        return re.fullmatch(patterns, name) is not None
    return any(name == pattern or name.endswith("." + pattern) for pattern in patterns)


def _targets(model, config):
    modules = _modules(model)
    targets = {name: layer for name, layer in modules.items() if name and _matches(name, config.target_modules)}
    if not targets:
        dense = [name for name, layer in modules.items() if isinstance(layer, keras.layers.Dense)]
        raise ConfigError(
            f"target_modules={config.target_modules!r} matches no layer of {type(model).__name__}. Name "
            f"Dense layers by their PyTorch module names, e.g. {sorted({n.rsplit('.', 1)[-1] for n in dense})}."
        )
    others = {name: type(layer).__name__ for name, layer in targets.items()
              if not isinstance(layer, keras.layers.Dense)}
    if others:
        raise ConfigError(
            f"target_modules={config.target_modules!r} matches {others}: LoRA applies to Dense layers "
            "(PyTorch's Linear and GPT-2's Conv1D) only; name those layers."
        )
    return targets


def _saved_modules(model, config):
    """The modules_to_save the model has (PEFT ignores names a model lacks: 'score' on BERT)."""
    if not config.modules_to_save:
        return {}
    return {name: layer for name, layer in _modules(model).items() if name and _matches(name, config.modules_to_save)}


def enable_lora(model, rank, target_modules, lora_alpha, lora_dropout, modules_to_save, use_rslora):
    """`TFPreTrainedModel.enable_lora`: checks the settings, then `enable`."""
    if not target_modules:
        raise ConfigError(
            "enable_lora needs target_modules: the PyTorch names of the Dense layers to adapt, e.g. "
            "['query', 'value'] (BERT), ['q_proj', 'v_proj'] (Llama), ['c_attn'] (GPT-2)."
        )
    if not (isinstance(rank, int) and rank > 0):
        raise ConfigError(f"rank={rank!r}: the LoRA rank is a positive int (8 and 16 are common).")
    if lora_dropout:
        raise ConfigError(
            f"lora_dropout={lora_dropout}: Keras' LoRA folds the adapter into the kernel (x @ (W + s A B)), so "
            "there is no adapter input to drop out; use lora_dropout=0.0."
        )
    config = LoraConfig(
        r=rank, target_modules=target_modules if isinstance(target_modules, str) else list(target_modules),
        lora_alpha=lora_alpha, use_rslora=use_rslora,
        modules_to_save=None if modules_to_save is None else list(modules_to_save),
    )
    return enable(model, config)


def enable(model, config):
    """Adds LoRA to the layers `config.target_modules` names and freezes every other weight, except the
    `modules_to_save`. Returns the adapter."""
    if adapter_of(model) is not None:
        raise ConfigError(
            f"{type(model).__name__} already has a LoRA adapter; call merge_and_unload() before adding another."
        )
    if config.task_type is None:
        config.task_type = _TASK_TYPES.get(model.task)
    if config.modules_to_save is None and config.task_type in _TASK_HEADS:
        config.modules_to_save = list(_TASK_HEADS[config.task_type])
    targets = _targets(model, config)
    trainable = {id(w) for name, layer in _saved_modules(model, config).items() for w in layer.weights}
    frozen = [w for w in model.weights if w.trainable and id(w) not in trainable]
    for weight in frozen:
        weight.trainable = False
    # Keras scales by its lora_alpha / rank: this alpha makes that PEFT's scaling
    keras_alpha = config.scaling * config.r
    # PEFT draws A with kaiming_uniform_(a=sqrt(5)): U(-1/sqrt(in), 1/sqrt(in)), i.e. variance 1 / (3 in)
    a_initializer = keras.initializers.VarianceScaling(scale=1 / 3, mode="fan_in", distribution="uniform")
    for layer in targets.values():
        layer.enable_lora(config.r, lora_alpha=keras_alpha, a_initializer=a_initializer, b_initializer="zeros")
    config.fan_in_fan_out = any(isinstance(layer, Conv1D) for layer in targets.values())
    config.base_model_name_or_path = config.base_model_name_or_path or model.config.name_or_path or None
    adapter = _Adapter(config, targets, frozen)
    model._lora_adapter = adapter
    return adapter


def unload(model, merge):
    """Removes the adapter; with `merge`, its update is first added into the kernels (`W + s * A @ B`).
    The weights the adapter froze train again. Returns the model."""
    adapter = adapter_of(model)
    if adapter is None:
        raise ConfigError(
            f"{type(model).__name__} has no LoRA adapter to unload; enable_lora() or load_adapter() first."
        )
    for layer in adapter.layers.values():
        if merge:
            layer._kernel.assign(keras.ops.cast(layer.kernel, layer._kernel.dtype))  # `kernel` is W + s A B
        for name in ("lora_kernel_a", "lora_kernel_b"):
            layer._untrack_variable(getattr(layer, name))
            vars(layer).pop(name)  # not `del`: Keras' __delattr__ runs gc.collect() for every variable
        layer.lora_enabled, layer.lora_rank, layer.lora_alpha = False, None, None
    for weight in adapter.frozen:
        weight.trainable = True
    del model._lora_adapter
    return model


# ------------------------------------------------------------------------------------------------ files

def _adapter_state(model, adapter):
    """{PEFT key: array}: A^T [r, in] and B^T [out, r] of each layer, and the modules_to_save weights."""
    state = {}
    for name, layer in adapter.layers.items():
        state[_PEFT_PREFIX + name + _LORA_A] = np.ascontiguousarray(keras.ops.convert_to_numpy(layer.lora_kernel_a).T)
        state[_PEFT_PREFIX + name + _LORA_B] = np.ascontiguousarray(keras.ops.convert_to_numpy(layer.lora_kernel_b).T)
    saved = list(_saved_modules(model, adapter.config))
    for key, param in model.checkpoint_parameters().items():
        if any(key.startswith(name + ".") for name in saved):
            state[_PEFT_PREFIX + key] = param.to_numpy()
    return state


def save_adapter(model, directory, tokenizer=None, saved_model=False):
    """Writes the adapter as PEFT's `save_pretrained` does: adapter_config.json and
    adapter_model.safetensors (and the tokenizer, when given), atomically."""
    if saved_model:
        raise ConfigError(
            f"{type(model).__name__} has a LoRA adapter, and save_pretrained writes the adapter only. For a "
            "SavedModel, call merge_and_unload() first, or export the model with tfformers.export(model, path)."
        )
    adapter = adapter_of(model)
    state = _adapter_state(model, adapter)
    with atomic_directory(directory, replaced=lambda name: name == ADAPTER_WEIGHTS_NAME,
                          last=(ADAPTER_CONFIG_NAME,)) as staging:
        save_file(state, os.path.join(staging, ADAPTER_WEIGHTS_NAME), metadata={"format": "pt"})
        with open(os.path.join(staging, ADAPTER_CONFIG_NAME), "w", encoding="utf-8") as handle:
            json.dump(adapter.config.to_dict(), handle, indent=2, sort_keys=True)
        if tokenizer is not None:
            tokenizer.save_pretrained(staging)
    logger.info("Saved the LoRA adapter of %s to %s", type(model).__name__, directory)


def adapter_base_model(source, **hub_kwargs):
    """The base model an adapter folder or repo names (`base_model_name_or_path`), None when `source` holds
    no adapter_config.json. transformers' from_pretrained resolves an adapter the same way."""
    path = hub.resolve_file(source, ADAPTER_CONFIG_NAME, required=False, **hub_kwargs)
    if path is None:
        return None
    base = LoraConfig.from_file(path).base_model_name_or_path
    if not base:
        raise ConfigError(
            f"{path} names no base_model_name_or_path: load the base model with from_pretrained(<base>) and "
            f"add the adapter with model.load_adapter({os.fspath(source)!r})."
        )
    return base


def load_adapter(model, source, **hub_kwargs):
    """Enables the adapter saved in `source` (a folder or Hub repo written by PEFT or `save_adapter`) and
    assigns its weights. CheckpointError, with the model left unchanged, when the tensors do not fit."""
    config = LoraConfig.from_file(hub.resolve_file(source, ADAPTER_CONFIG_NAME, **hub_kwargs))
    weights = hub.resolve_file(source, ADAPTER_WEIGHTS_NAME, required=False, **hub_kwargs)
    if weights is None:
        raise CheckpointError(
            f"{os.fspath(source)} has no {ADAPTER_WEIGHTS_NAME} (a pickled adapter_model.bin is not read): save "
            "the adapter with PEFT's save_pretrained(safe_serialization=True)."
        )
    adapter = enable(model, config)
    try:
        _assign_adapter_weights(model, adapter, SafetensorsReader([weights]), weights)
    except CheckpointError:
        unload(model, merge=False)
        raise
    if config.lora_dropout:
        logger.warning(
            "The adapter in %s was trained with lora_dropout=%s; its outputs are exact, but further training "
            "here runs without adapter dropout (Keras' LoRA folds the adapter into the kernel).",
            source, config.lora_dropout,
        )
    return adapter


def _assign_adapter_weights(model, adapter, reader, path):
    """Assigns A = lora_A^T, B = lora_B^T and the modules_to_save weights; CheckpointError naming every key
    that is unexpected, missing or of another shape (nothing is assigned then)."""
    expected = {}  # PEFT key -> (shape in the file, assign)
    for name, layer in adapter.layers.items():
        for suffix, variable in ((_LORA_A, layer.lora_kernel_a), (_LORA_B, layer.lora_kernel_b)):
            expected[_PEFT_PREFIX + name + suffix] = (tuple(variable.shape[::-1]), _transposed_assign(variable))
    saved = list(_saved_modules(model, adapter.config))
    for key, param in model.checkpoint_parameters().items():
        if any(key.startswith(name + ".") for name in saved):
            expected[_PEFT_PREFIX + key] = (param.shape, param.assign)
    stored = set(reader.keys())
    unexpected = sorted(stored - set(expected))
    missing = [key for key in expected if key not in stored and key.endswith((_LORA_A, _LORA_B))]
    mismatched = [f"{key} is {list(reader.shape(key))}, the model's {list(shape)}"
                  for key, (shape, _) in expected.items() if key in stored and tuple(reader.shape(key)) != shape]
    if unexpected or missing or mismatched:
        raise CheckpointError(
            f"The adapter {path} does not fit {type(model).__name__}: unexpected keys {unexpected[:4]}, missing "
            f"keys {missing[:4]}, other shapes {mismatched[:4]}. Load it onto the model it was trained on "
            f"({adapter.config.base_model_name_or_path}), with the same head."
        )
    for key, (_, assign) in expected.items():
        if key in stored:
            assign(reader.get(key))


def _transposed_assign(variable):
    """PEFT's lora_A [r, in] / lora_B [out, r] into Keras' A [in, r] / B [r, out]."""
    return lambda array: variable.assign(np.ascontiguousarray(array.T).astype(variable.dtype))
