"""TFPreTrainedModel: the keras.Model every tfformers model is, and the mechanics they all share.

Loading and saving (`from_pretrained`, `save_pretrained`) speak PyTorch transformers' safetensors layout;
training follows Keras: `compile()` without a loss uses the task's loss, labels come as `y` or inside the
input dict, and `predict()` returns numpy in the model's output container.
"""

import contextlib
import functools
import logging
import os
from collections.abc import Mapping

import keras
import numpy as np
import tensorflow as tf

from tfformers import checkpoint, distribute, hub, lora, quantization, sharing
from tfformers import inputs as model_inputs
from tfformers.checkpoint.gguf import GGUFReader
from tfformers.config import load_config, load_generation_config
from tfformers.errors import ConfigError, InputError
from tfformers.fileio import atomic_directory
from tfformers.layers.core import deferred_initialization
from tfformers.layers.resize import (
    check_num_tokens,
    replace_layer,
    replace_variable,
    resized_dense,
    resized_embedding,
    resized_rows,
)
from tfformers.tasks import TASKS

logger = logging.getLogger("tfformers")
# from_pretrained's report of missing, unexpected and mismatched weights; callers that report these in
# their own words (the fine-tuning recipe) raise this logger's level while they load.
loading_logger = logging.getLogger("tfformers.loading")

_DEFAULT_LOSS = "task_default"
# transformers 4.x's serving inputs (`input_signature`), the ones of them a model takes (an encoder-decoder's
# decoder ids too: T5 has no default for them).
_SERVING_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "decoder_input_ids", "decoder_attention_mask")
_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "config.json", "generation_config.json")


def _is_weights_file(name):
    return name in _WEIGHT_FILES or (name.startswith("model-") and name.endswith(".safetensors"))


@contextlib.contextmanager
def _dtype_policy(dtype):
    """Builds layers under `dtype` (a Keras dtype policy name) and restores the global policy after."""
    if dtype is None:
        yield
        return
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(dtype)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


class TFPreTrainedModel(keras.Model):
    """Base class of every model. Subclasses set the class attributes below and implement `forward`.

    - `config_class`: the transformers configuration class.
    - `base_model_prefix`: attribute holding the backbone (`"bert"`), the prefix of head checkpoints.
    - `is_base_model`: True for the headless model, whose PyTorch keys carry no prefix.
    - `task`: a key of `tfformers.tasks.TASKS`; it gives label names and the default loss.
    - `tied_weights_keys`: {alias key: stored key} for tensors tied to another (saved once, as the
      stored key; an alias in a checkpoint fills the stored tensor when that one is absent).
    - `ignored_unexpected_keys`: regexes of checkpoint buffers that are not weights.
    - `vocabulary_output_keys`: PyTorch keys of weights sized by the vocabulary besides the input embeddings
      (an MLM head's output bias, an untied `lm_head`), which `resize_token_embeddings` resizes too.
    - `call_options`: keyword options `call` passes on to `forward` beyond the Keras ones (decoders take
      `cache`, a `generation.StaticCache`, and `logits_to_keep`).
    """

    config_class = None
    base_model_prefix = ""
    is_base_model = False
    task = "base"
    tied_weights_keys = {}
    ignored_unexpected_keys = (r"position_ids$",)
    vocabulary_output_keys = ()
    main_input_name = "input_ids"
    input_names = ("input_ids", "attention_mask", "token_type_ids", "position_ids", "inputs_embeds")
    call_options = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # `keras.models.load_model` finds tfformers' classes by name, with no `custom_objects`. A user's
        # subclass registers itself, as any Keras subclass does.
        if cls.__module__.startswith("tfformers."):
            keras.saving.register_keras_serializable(package="tfformers")(cls)

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.tokenizer = None
        self._use_default_loss = False
        self._metrics_per_output = False

    # ------------------------------------------------------------------------------------------- calling

    @property
    def label_names(self):
        return TASKS[self.task].label_names

    _KERAS_OPTIONS = ("training", "output_attentions", "output_hidden_states", "mask")
    _MODEL_OPTIONS = ("cache", "logits_to_keep")

    def __call__(self, inputs=None, *args, **kwargs):
        for option in self._MODEL_OPTIONS:
            if option in kwargs and option not in self.call_options:
                raise TypeError(
                    f"{type(self).__name__} takes no {option}= option; it is an option of decoder models "
                    "(a KV cache for generation, how many positions get logits)."
                )
        # Tensors passed by name (`model(**tokenizer(...))`) join the input dict. Checked here, before
        # Keras' machinery, so a fault is reported as itself rather than from inside a layer.
        options = self._KERAS_OPTIONS + self.call_options
        named = {k: kwargs.pop(k) for k in list(kwargs) if k not in options}
        inputs = model_inputs.gather(inputs, named, self.main_input_name)
        model_inputs.check_call(
            inputs,
            self.input_limits(),
            cached=kwargs.get("cache") is not None,
            resized=bool(kwargs.get("interpolate_pos_encoding")),
            encoded=kwargs.get("encoder_outputs") is not None,
        )
        return super().__call__(inputs, *args, **kwargs)

    def call(self, inputs, training=False, output_attentions=None, output_hidden_states=None, encoder_outputs=None,
             **options):
        if encoder_outputs is not None:  # an argument of its own: Keras refuses tensors mixed with a cache in **options
            options["encoder_outputs"] = encoder_outputs
        labels = {k: v for k, v in inputs.items() if k in self.label_names}
        features = self.features_from_labels({k: v for k, v in inputs.items() if k not in self.label_names}, labels)
        if output_attentions is None:
            output_attentions = self.config.output_attentions
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        outputs = self.forward(features, training, output_attentions, output_hidden_states, **options)
        if labels and TASKS[self.task].loss is not None:
            outputs = type(outputs)({"loss": self.hf_compute_loss(labels, outputs), **outputs})
        return outputs

    def features_from_labels(self, features, labels):
        """The input dict a forward pass needs given the labels (a dict, a tensor or None): unchanged, except
        for encoder–decoders, whose decoder reads the labels shifted right when given no decoder inputs."""
        return features

    def input_limits(self):
        """What this model accepts (`tfformers.inputs.Limits`): id and label ranges, the longest sequence."""
        config = self.config
        ranges = {"input_ids": model_inputs.vocabulary_range(config.vocab_size)}
        if "token_type_ids" in self.input_names:  # GPT-2 embeds token types with its token table
            types = getattr(config, "type_vocab_size", config.vocab_size)
            ranges["token_type_ids"] = model_inputs.vocabulary_range(types, "token_type_ids")
        if "decoder_input_ids" in self.input_names:
            ranges["decoder_input_ids"] = model_inputs.vocabulary_range(config.vocab_size, "decoder_input_ids")
        ranges.update(model_inputs.label_ranges(self.task, config))
        table = self._position_table()
        return model_inputs.Limits(
            model=type(self).__name__,
            input_names=self.input_names,
            label_names=self.label_names,
            main_input_name=self.main_input_name,
            ids_rank=3 if self.task == "multiple-choice" else 2,
            ranges=ranges,
            position_table=table,
            max_length=table if table is not None else model_inputs.rope_training_length(config),
        )

    def _position_table(self):
        """Rows of the absolute position embeddings (RoBERTa's start after the pad id); None with RoPE."""
        if model_inputs.uses_rope(self.config):
            return None
        embeddings = getattr(getattr(self, self.base_model_prefix, None), "embeddings", None)
        return getattr(embeddings, "max_sequence_length", getattr(self.config, "max_position_embeddings", None))

    def forward(self, inputs, training, output_attentions, output_hidden_states, **options):
        """The outputs for the input dict: the backbone's for a base model; head classes override this."""
        return self.backbone(inputs, training, output_attentions, output_hidden_states, **options)

    def backbone(self, inputs, training, output_attentions, output_hidden_states, **options):
        """Runs the base model (the layer at `base_model_prefix`) on the input dict."""
        return getattr(self, self.base_model_prefix)(
            **inputs,
            training=training,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            **options,
        )

    def get_input_embeddings(self):
        """The word-embedding layer (a `keras.layers.Embedding`), which tied LM heads read."""
        raise NotImplementedError(f"{type(self).__name__} does not declare its input embeddings.")

    def set_input_embeddings(self, value):
        """Puts `value` (a built `keras.layers.Embedding`) in place of the word embeddings; tied LM heads
        project onto it from then on. `config.vocab_size` is not changed (`resize_token_embeddings` does)."""
        old = self.get_input_embeddings()
        if not isinstance(value, keras.layers.Embedding) or not value.built:
            raise InputError(f"set_input_embeddings takes a built keras.layers.Embedding, got {value!r}.")
        if value.output_dim != old.output_dim:
            raise InputError(
                f"The new embeddings have width {value.output_dim}, the model's hidden size is {old.output_dim}."
            )
        replace_layer(self, old, value)

    def resize_token_embeddings(self, new_num_tokens=None):
        """Resizes the vocabulary to `new_num_tokens` rows (transformers' API): the word embeddings, a tied
        LM head with them, and the weights listed in `vocabulary_output_keys` (an MLM head's output bias,
        an untied `lm_head`). Kept rows keep their values; new rows are drawn by each weight's initializer
        (biases: zeros). `config.vocab_size` is updated. Returns the (new) input embeddings layer."""
        if new_num_tokens is None:
            return self.get_input_embeddings()
        new_num_tokens = check_num_tokens(new_num_tokens)
        if not self.built:
            self.build_with_dummy_inputs()
        embeddings = resized_embedding(self.get_input_embeddings(), new_num_tokens)
        self.set_input_embeddings(embeddings)
        for key in self.vocabulary_output_keys:
            owner, attribute = self._attribute_at(key)
            if isinstance(owner, keras.layers.Dense):  # an untied lm_head: its units are the vocabulary
                replace_layer(self, owner, resized_dense(owner, new_num_tokens))
            else:  # an output bias [vocab]
                value = keras.ops.convert_to_numpy(getattr(owner, attribute))
                replace_variable(owner, attribute, resized_rows(value, new_num_tokens, np.zeros))
        self.config.vocab_size = new_num_tokens
        self._forget_traced_functions()
        return embeddings

    def _attribute_at(self, key):
        """(object, last attribute) of a PyTorch key (`cls.predictions.bias` -> (self.cls.predictions, "bias"))."""
        *path, attribute = key.split(".")
        owner = self
        for part in path:
            owner = owner[int(part)] if part.isdigit() else getattr(owner, part)
        return owner, attribute

    @property
    def word_embeddings(self):
        """The [vocab, hidden] matrix of the input embeddings, which tied LM heads project onto."""
        return self.get_input_embeddings().embeddings

    @property
    def dummy_inputs(self):
        """A tiny batch that builds every layer ([batch, choices, seq] for multiple choice)."""
        ids = [[7, 6, 0, 0, 1], [1, 2, 3, 0, 0]]
        return {"input_ids": tf.constant([ids] if self.task == "multiple-choice" else ids, dtype=tf.int32)}

    def build_with_dummy_inputs(self):
        # The leaves (Dense, ...) build on the eager dummy call.
        self._mark_composite_layers_built()
        self(self.dummy_inputs, training=False)

    def _mark_composite_layers_built(self):
        # Composite layers create no variables of their own beyond __init__; marking them built skips
        # Keras' symbolic trace of every nested call (quadratic in depth).
        for layer in self._flatten_layers(include_self=True):
            if getattr(layer.build, "_is_default", False):  # Keras' marker of the inherited build()
                layer.built = True

    # ------------------------------------------------------------------------------ Keras serialization

    def get_config(self):
        """Keras' config: the transformers configuration as a dict, the Keras name, trainability and dtype
        policy (so `keras.models.load_model` rebuilds the model in the dtype it was saved in)."""
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": self.dtype_policy.name,
            "config": self.config.to_dict(),
        }

    @classmethod
    def from_config(cls, config):
        """The model for `get_config()`'s dict (or a transformers configuration), unbuilt."""
        if not (isinstance(config, Mapping) and "config" in config):
            return cls(config)
        options = dict(config)
        settings, dtype = options.pop("config"), options.pop("dtype", None)
        config_classes = cls.config_class if isinstance(cls.config_class, tuple) else (cls.config_class,)
        by_type = {config_class.model_type: config_class for config_class in config_classes}
        config_class = by_type.get(settings.get("model_type"), config_classes[0])
        with _dtype_policy(dtype):
            return cls(config_class.from_dict(settings), **options)

    def get_build_config(self):
        # Built by a call on `dummy_inputs`, not from input shapes: the config only records that it was.
        return {"dummy_inputs": True} if self.built else None

    def build_from_config(self, config):
        """Builds the variables that `keras.models.load_model` then fills. They are drawn at random, not
        deferred: `keras.models.clone_model` builds this way and keeps the new values."""
        self.build_with_dummy_inputs()

    def get_compile_config(self):
        config = super().get_compile_config()
        if config is not None and self._use_default_loss:
            config["loss"] = _DEFAULT_LOSS  # compile() passed Keras None for it
        return config

    def compile_from_config(self, config):
        """Compiles as the saved model was, the task's default loss included (Keras' own version skips a
        model with its own `compile`), and builds the optimizer so that its saved state loads."""
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    # ---------------------------------------------------------------------------------- serving, export

    @property
    def input_signature(self):
        """{name: tf.TensorSpec} of the inputs a SavedModel serves (transformers 4.x): int32 ids, attention
        mask and, where the model takes them, token type ids, [batch, seq] ([batch, choices, seq] for
        multiple choice). No cache: an exported decoder computes every position."""
        rank = 3 if self.task == "multiple-choice" else 2
        return {
            name: tf.TensorSpec([None] * rank, tf.int32, name=name)
            for name in _SERVING_INPUTS
            if name in self.input_names
        }

    @functools.cached_property
    def serving(self):
        """transformers 4.x's serving function: a `tf.function` over `input_signature` giving
        `serving_output` of the model's outputs; `save_pretrained(saved_model=True)` writes it as the
        `serving_default` signature. A subclass may replace it with its own
        `@tf.function(input_signature=[...])` method calling `self.call` and `self.serving_output`."""
        return tf.function(self._serve, input_signature=[self.input_signature], autograph=False)

    def _serve(self, inputs):
        return self.serving_output(self(inputs, training=False))

    def serving_output(self, output):
        """The outputs as a SavedModel signature returns them (transformers 4.x): a plain dict of tensors.
        As in 4.x, hidden states and attentions are left out unless the config asks for them (a signature's
        outputs are fixed when it is traced), and per-layer tuples are stacked into one tensor."""
        served = {}
        for key, value in output.items():
            if value is None:
                continue
            if key.endswith("hidden_states") and not self.config.output_hidden_states:
                continue
            if key.endswith("attentions") and not self.config.output_attentions:
                continue
            served[key] = tf.stack(value) if isinstance(value, (tuple, list)) else value
        return served

    def export(self, filepath, format="tf_saved_model", verbose=None, input_signature=None, **kwargs):
        """Keras `export`. Without `input_signature` the `serve` endpoint takes a dict shaped as
        `self.input_signature`: Keras would infer it from the shapes of a first build, which these models,
        built by a call on dummy inputs (or not yet), do not record. An unbuilt model is built first."""
        if not self.built:
            self.build_with_dummy_inputs()
        if input_signature is None:
            input_signature = [self.input_signature]
        return super().export(filepath, format=format, verbose=verbose, input_signature=input_signature, **kwargs)

    def export_for_serving(self, output, **kwargs):
        """Exports this model for a serving runtime into `output`; see `tfformers.export.export` for the
        formats and options (`tokenizer`, `task`, `version`, `format`, ...)."""
        from tfformers.export import export

        return export(self, output, **kwargs)

    # ------------------------------------------------------------------------------------------- loading

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path,
        *,
        config=None,
        revision=None,
        cache_dir=None,
        token=None,
        local_files_only=False,
        ignore_mismatched_sizes=False,
        dtype=None,
        output_loading_info=False,
        gguf_file=None,
        trust_remote_code=False,
        from_pt=False,
        **config_overrides,
    ):
        """Loads a model from a local folder or a Hub repository id.

        `config_overrides` (e.g. `num_labels=3`, `output_hidden_states=True`) update the configuration.
        `dtype` ("float32", "bfloat16", "float16", or a Keras policy such as "mixed_bfloat16") sets the
        variables' dtype; None keeps the global Keras policy. Weights are read from `model.safetensors`
        or a sharded index; without them, from transformers 4.x TensorFlow's `tf_model.h5` or its shards
        (`checkpoint.h5`); or from `gguf_file` (a llama.cpp checkpoint in the folder or repo: config from
        its metadata, weights dequantized to float32); a base checkpoint loads into a head model (the head
        is newly initialized and reported) and the other way round.

        `trust_remote_code` and `from_pt` are transformers 4.x's options: remote code is never run
        (`trust_remote_code=True` raises ConfigError), and safetensors in PyTorch's layout are what is read
        anyway, so `from_pt` changes nothing.
        """
        source = pretrained_model_name_or_path
        refuse_remote_code(trust_remote_code, source)
        hub_kwargs = dict(
            revision=revision, cache_dir=cache_dir, token=token, local_files_only=local_files_only
        )
        base = lora.adapter_base_model(source, **hub_kwargs)  # a LoRA adapter: its base model, then it
        adapter_source, source = (source, base) if base else (None, source)
        config = load_config(source, config, config_overrides, gguf_file, **hub_kwargs)
        config.name_or_path = os.fspath(source)  # where it came from (a model card's base_model)
        cls._check_config(config, source)

        def resolve(filename, required):
            return hub.resolve_file(source, filename, required=required, **hub_kwargs)

        with _dtype_policy(dtype), deferred_initialization(), checkpoint.bare_variable_handle_names():
            model = cls(config)
            if gguf_file is not None:
                reader = GGUFReader(resolve(gguf_file, required=True))
            else:
                reader = checkpoint.open_reader(checkpoint.checkpoint_files(resolve, source, legacy_h5=True))
            try:
                params, report = model._build_and_load(reader, ignore_mismatched_sizes)
            finally:
                if hasattr(reader, "close"):  # h5 files stay open (and locked) until closed
                    reader.close()
        for key in report.missing_keys:  # built deferred (zeros): draw their initial values now
            params[key].initialize()
        if getattr(model, "can_generate", False):
            model.generation_config = load_generation_config(source, config, **hub_kwargs)
        _log_loading_report(report, cls.__name__, source)
        if adapter_source is not None:
            model.load_adapter(adapter_source, **hub_kwargs)
        if output_loading_info:
            return model, report.as_dict()
        return model

    @classmethod
    def _check_config(cls, config, source):
        if cls.config_class is not None and not isinstance(config, cls.config_class):
            raise ConfigError(
                f"{source} has model_type {config.model_type!r}, which {cls.__name__} cannot load; "
                "use the TFAuto* class for this task to pick the right architecture."
            )

    def _build_and_load(self, reader, ignore_mismatched_sizes):
        """Builds the model holding `reader`'s tensors and returns (checkpoint_parameters(), report).

        Leaves the checkpoint sizes are built from it, each variable created with its tensor
        (`checkpoint.building`); only when some layer is left unbuilt (a new head) does a forward pass on
        dummy inputs build it. Tensors not loaded at creation are assigned by `checkpoint.load_parameters`,
        which reports missing, unexpected and mismatched keys."""
        preloaded = checkpoint.build_from_checkpoint(
            self,
            reader,
            checkpoint_key=self._checkpoint_key,
            base_model_prefix=self.base_model_prefix,
            tied_keys=self.tied_weights_keys,
        )
        self._mark_composite_layers_built()
        if not all(layer.built for layer in self._flatten_layers(include_self=True)):
            self.build_with_dummy_inputs()
        params = self.checkpoint_parameters()
        report = checkpoint.load_parameters(
            params,
            reader,
            base_model_prefix=self.base_model_prefix,
            tied_keys=self.tied_weights_keys,
            ignored_unexpected=self.ignored_unexpected_keys,
            ignore_mismatched_sizes=ignore_mismatched_sizes,
            preloaded=preloaded,
        )
        return params, report

    def _checkpoint_key(self, key):
        """The checkpoint key of a layer-tree key: a base model's lack the backbone's prefix, as PyTorch's
        (`bert.embeddings...` is `embeddings...` in BertModel)."""
        prefix = self.base_model_prefix + "."
        return key[len(prefix):] if self.is_base_model and key.startswith(prefix) else key

    def checkpoint_parameters(self):
        """{PyTorch state-dict key: Parameter} for this model's variables."""
        return {self._checkpoint_key(key): param for key, param in checkpoint.named_parameters(self).items()}

    # -------------------------------------------------------------------------------------------- saving

    @property
    def pytorch_architecture(self):
        """The PyTorch transformers class with the same weights (`TFBertModel` -> `BertModel`)."""
        return type(self).__name__.removeprefix("TF")

    @distribute.only_chief_writes  # a non-chief worker of a multi-worker strategy saves into a temporary folder
    def save_pretrained(
        self, save_directory, *, max_shard_size="5GB", tokenizer=None, saved_model=False, version=1, signatures=None
    ):
        """Writes `config.json` and safetensors weights in PyTorch transformers' names and layouts.

        Above `max_shard_size` the weights are sharded with an index. The tokenizer passed here (or
        attached as `model.tokenizer`) is saved alongside. With `saved_model=True` a TensorFlow SavedModel
        for TF Serving is written too, at `saved_model/<version>/` (transformers 4.x), with `signatures` or,
        by default, `serving` as its `serving_default` signature; other versions there stay. The write is
        atomic: the folder holds either the previous content or the complete new model, never a mix.
        """
        if lora.adapter_of(self) is not None:  # PEFT's save_pretrained: the adapter only
            return lora.save_adapter(self, save_directory, tokenizer or self.tokenizer, saved_model=saved_model)
        if saved_model and not (isinstance(version, int) and version >= 0):
            raise ValueError(f"version={version!r}: TF Serving reads versions as folder names, use an int >= 0.")
        quantization.refuse_float_checkpoint(self, "save_pretrained")
        state = {key: param.to_numpy() for key, param in self.checkpoint_parameters().items()}
        config = self.config.__class__.from_dict(self.config.to_dict())
        config.architectures = [self.pytorch_architecture]
        config.dtype = keras.backend.standardize_dtype(self.dtype_policy.variable_dtype)
        tokenizer = tokenizer or self.tokenizer
        with atomic_directory(save_directory, replaced=_is_weights_file) as staging:
            config.save_pretrained(staging)
            if getattr(self, "can_generate", False):
                self.generation_config.save_pretrained(staging)
            checkpoint.write_safetensors(state, staging, max_shard_size)
            if tokenizer is not None:
                tokenizer.save_pretrained(staging)
            if saved_model:
                self._write_saved_model(os.path.join(staging, "saved_model", str(version)), signatures)
        logger.info("Saved %s to %s", type(self).__name__, save_directory)

    def _write_saved_model(self, path, signatures):
        if signatures is None:
            serving = self.serving
            if serving.input_signature is None:  # a subclass's plain @tf.function, as late 4.x declared it
                serving = serving.get_concrete_function(self.input_signature)
            signatures = {"serving_default": serving}
        tf.saved_model.save(self, path, signatures=signatures)

    def _trackable_children(self, save_type="checkpoint", **kwargs):
        # A SavedModel (save_pretrained(saved_model=True), tf.saved_model.save) serves: the optimizer's state
        # would double or triple it (4.x saved with include_optimizer=False). Keras drops its train/predict
        # functions from SavedModels the same way; checkpoints keep everything.
        children = super()._trackable_children(save_type, **kwargs)
        if save_type == "savedmodel":
            children.pop("optimizer", None)
        return children

    def push_to_hub(self, repo_id, **kwargs):
        """Uploads the model folder (config, safetensors in PyTorch layout, tokenizer, model card) to the
        Hub in one commit. See `tfformers.sharing.push_to_hub` for the options."""
        return sharing.push_to_hub(self, repo_id, **kwargs)

    def load_repo_checkpoint(self, repo_path_or_name, **kwargs):
        """Restores weights and optimizer state pushed by `PushToHubCallback(checkpoint=True)`; returns
        `{"epoch": ...}` to pass as `fit(initial_epoch=...)`. See `tfformers.sharing`."""
        return sharing.load_repo_checkpoint(self, repo_path_or_name, **kwargs)

    # ---------------------------------------------------------------------------------------------- LoRA

    def enable_lora(self, rank=8, target_modules=None, lora_alpha=8, lora_dropout=0.0, modules_to_save=None,
                    use_rslora=False):
        """Adds LoRA adapters (rank `rank`, scaled by `lora_alpha / rank`, PEFT's LoraConfig) to the Dense
        layers `target_modules` names as PEFT matches them (`["query", "value"]`, `["q_proj", "v_proj"]`,
        `["c_attn"]`) and freezes every other weight but the `modules_to_save` (a classification head by
        default, as PEFT). `save_pretrained` then writes the adapter only. See `tfformers.lora`."""
        lora.enable_lora(self, rank, target_modules, lora_alpha, lora_dropout, modules_to_save, use_rslora)
        self._forget_traced_functions()

    def load_adapter(self, adapter_name_or_path, **hub_kwargs):
        """Adds the LoRA adapter PEFT (or `save_pretrained` of a LoRA model) saved in a folder or Hub repo."""
        lora.load_adapter(self, adapter_name_or_path, **hub_kwargs)
        self._forget_traced_functions()

    @property
    def lora_config(self):
        """The adapter's `lora.LoraConfig` (PEFT's fields), None without LoRA."""
        adapter = lora.adapter_of(self)
        return None if adapter is None else adapter.config

    def merge_and_unload(self):
        """Adds each adapter's update into its kernel and removes the adapters (the frozen weights train
        again): a plain model, which `save_pretrained` writes whole. Returns the model, as PEFT does."""
        self._forget_traced_functions()
        return lora.unload(self, merge=True)

    def unload(self):
        """Removes the adapters without merging them: the base model again. Returns the model."""
        self._forget_traced_functions()
        return lora.unload(self, merge=False)

    def quantize(self, mode=None, config=None, filters=None, **kwargs):
        """Keras' `Model.quantize`: the weights of every `Dense`, `Conv1D` and `Embedding` become "int8" (or
        "int4"; "float8" is Keras' fp8 training mode) with a scale per output channel, and tied LM heads
        project onto the quantized table. `config` and `filters` are Keras' (a
        `keras.quantizers.Int8QuantizationConfig(activation_quantizer=None)` keeps activations in float).
        Functions traced over the float weights (`generate`, `serving`) are traced again."""
        quantization.check_mode(mode)
        quantization.run_keras_quantize(super().quantize, mode, config=config, filters=filters, **kwargs)
        self._forget_traced_functions()

    def _forget_traced_functions(self):
        """Drops the functions traced over the current layers and weights (`generate`'s programs, `serving`):
        a change of layers (resized vocabulary, LoRA adapters added or removed, quantized weights) leaves a
        traced function computing with the old ones, so each such change calls this and they trace again."""
        self.__dict__.pop("_tfformers_generate_functions", None)
        self.__dict__.pop("serving", None)

    # ------------------------------------------------------------------------------------------ training

    def compile(self, optimizer="rmsprop", loss=_DEFAULT_LOSS, metrics=None, **kwargs):
        """Keras `compile`. Without `loss`, the task's loss (as PyTorch transformers computes it) is used;
        `loss=None` means no loss; any other loss replaces the default."""
        self._use_default_loss = loss == _DEFAULT_LOSS and TASKS[self.task].loss is not None
        if loss == _DEFAULT_LOSS:
            loss = None
        label_outputs = TASKS[self.task].label_outputs
        # Keras 2 (transformers 4.x) applied a flat list of metrics to every output of a multi-output model
        # ("start_logits_accuracy", "end_logits_accuracy" for question answering); Keras 3 wants one entry per
        # output, so the list is given to each output, keyed by output name (as a saved compile config has it).
        if isinstance(metrics, (list, tuple)) and len(label_outputs) > 1:
            metrics = {output: [_fresh_metric(m) for m in metrics] for output in label_outputs.values()}
        self._metrics_per_output = (isinstance(metrics, Mapping) and bool(metrics)
                                    and set(metrics) <= set(label_outputs.values()) - set(label_outputs))
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def hf_compute_loss(self, labels, outputs, sample_weight=None):
        """The task's default loss for a dict of labels (named as in `label_names`). A single-label
        classifier takes float labels of shape [batch] as class ids (the data checks refuse fractions)."""
        if self.task in model_inputs.EXAMPLE_CLASSIFICATION_TASKS and model_inputs.is_single_label(self.config):
            labels = {**labels, "labels": model_inputs.class_ids(labels["labels"])}
        return TASKS[self.task].loss(labels, outputs, self.config, sample_weight)

    def _labels_as_dict(self, y):
        names = self.label_names
        if isinstance(y, Mapping):
            unknown = sorted(set(y) - set(names))
            if unknown:
                raise InputError(f"Unknown label names {unknown}; {type(self).__name__} takes {list(names)}.")
            return dict(y)
        if isinstance(y, (list, tuple)):
            if len(y) != len(names):
                raise InputError(f"Got {len(y)} label tensors; {type(self).__name__} takes {list(names)}.")
            return dict(zip(names, y))
        if len(names) == 2 and names[1] != "next_sentence_label":
            raise InputError(
                f"{type(self).__name__} needs the labels {list(names)}; pass y as a dict with these keys."
            )
        return {names[0]: y}

    def _outputs_for_labels(self, y, y_pred):
        """The outputs that `y` is scored against, in `y`'s structure (for Keras losses and metrics)."""
        if y is None:
            return y_pred
        label_outputs = TASKS[self.task].label_outputs
        if isinstance(y, Mapping):
            return {name: y_pred[label_outputs[name]] for name in y}
        if isinstance(y, (list, tuple)):
            return type(y)(y_pred[label_outputs[name]] for name in self.label_names[: len(y)])
        if label_outputs:
            return y_pred[next(iter(label_outputs.values()))]
        return y_pred

    def _route_labels(self, data):
        """(x, y, sample_weight) with labels moved out of the input dict when `y` is not given."""
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if isinstance(x, Mapping):
            x = dict(x)
            in_x = {name: x.pop(name) for name in self.label_names if name in x}
            if in_x and y is None:
                y = in_x["labels"] if list(in_x) == ["labels"] else in_x
            x = self.features_from_labels(x, y)
        return x, y, sample_weight

    def train_step(self, data):
        return super().train_step(self._route_labels(data))

    def test_step(self, data):
        return super().test_step(self._route_labels(data))

    def predict_step(self, data):
        x, _, _ = self._route_labels(data)
        outputs = self(x, training=False)
        self._predict_output_type = type(outputs)
        return dict(outputs)

    def predict(self, x, *args, **kwargs):
        """Keras `predict`; the numpy results come in the model's output container (`out.logits`). Arrays
        are checked as `fit` checks them."""
        x, _ = self._checked_data(x, None)
        results = super().predict(x, *args, **kwargs)
        return self._predict_output_type(results)

    def fit(self, x=None, y=None, *args, **kwargs):
        """Keras `fit`. Arrays (numpy, lists, eager tensors; dicts of them) are checked on the host before
        the first step: token ids within the vocabulary, labels within the task's classes (or -100 where
        the loss ignores it), sequences within the position embeddings; a fault raises InputError naming
        the column, row and value. A single-label classifier's float labels are class ids when they are
        whole numbers (a fraction is an InputError). Batches of `prepare_tf_dataset` are checked as they
        are made. Another `tf.data.Dataset` is not checked: under XLA (`jit_compile=True`) an out-of-range
        label then gives NaN weights and an unknown token id trains silently."""
        if isinstance(x, tf.data.Dataset) and len(args) < 7:  # `shuffle` not given by position
            # Keras 3 warns on every fit that its default shuffle=True is ignored for a tf.data.Dataset (Keras 2
            # was silent): such a dataset orders itself (prepare_tf_dataset shuffles), so the default is False
            kwargs.setdefault("shuffle", False)
        x, y = self._checked_data(x, y)
        validation = kwargs.get("validation_data")
        if isinstance(validation, tuple) and 2 <= len(validation) <= 3:
            kwargs["validation_data"] = (*self._checked_data(*validation[:2]), *validation[2:])
        self._build_state_before_tracing(x, y)
        return super().fit(x, y, *args, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        """Keras `evaluate`; arrays are checked as `fit` checks them."""
        x, y = self._checked_data(x, y)
        self._build_state_before_tracing(x, y)
        return super().evaluate(x, y, *args, **kwargs)

    def _build_state_before_tracing(self, x, y):
        """Creates the optimizer's and the metrics' variables from one batch's shapes before Keras traces
        the step. Keras' TensorFlow trainer leaves them to the first trace when no distribution strategy is
        set, and a tf.function that creates variables is traced twice: for MiniLM the first `fit` took
        13.5 s instead of 21.4 s with them built first (one process, same machine)."""
        optimizer_unbuilt = self.optimizer is not None and not self.optimizer.built
        metrics_unbuilt = self._compile_metrics is not None and not self._compile_metrics.built
        if self._distribute_strategy is not None or not (optimizer_unbuilt or metrics_unbuilt):
            return  # Keras builds them itself under a strategy
        batch = _first_batch(x, y)
        if batch is not None:
            self._symbolic_build(data_batch=self._route_labels(batch))  # as train_step sees the batch

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Under a strategy Keras builds from the first batch it reads: a multi-worker strategy then fails
        # (keras-team/keras#20585, tensorflow/tensorflow#72388; see tfformers.distribute), and the read starts
        # one more pass over the data (prepare_tf_dataset's seeded order would run one epoch ahead of the same
        # fit without a strategy). The dataset's element spec gives the same shapes without reading.
        spec = None
        if iterator is not None and self._distribute_strategy is not None:  # None for a DistributedDataset
            spec = _first_batch(iterator.data_adapter.get_tf_dataset(), None)
        if spec is not None:
            iterator, data_batch = None, self._route_labels(spec)  # as train_step sees the batch
        super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    # Keras 3.15 reduces per-step logs wrongly under a multi-worker strategy: see tfformers.distribute.
    def _make_function(self, step_function):
        return super()._make_function(distribute.reducible_step(step_function, self.distribute_strategy))

    def _checked_data(self, x, y):
        """(x, y) checked on the host when they are arrays; datasets and generators pass unchanged."""
        if isinstance(x, (Mapping, list, tuple, np.ndarray, tf.Tensor)) and not isinstance(x, tf.data.Dataset):
            return model_inputs.check_arrays(x, y, self.input_limits())
        return x, y

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if not self._use_default_loss:
            return super().compute_loss(x, y, self._outputs_for_labels(y, y_pred), sample_weight, training)
        if y is None:
            raise InputError(
                f"{type(self).__name__} was compiled with its default loss but got no labels. Pass them "
                f"as y (fit(x, y)) or inside the input dict as {list(self.label_names)}."
            )
        loss = self.hf_compute_loss(self._labels_as_dict(y), y_pred, sample_weight)
        for extra in self.losses:  # regularizers and add_loss()
            loss += tf.cast(extra, loss.dtype)
        # Keras sums per-replica losses under tf.distribute; scaling keeps the global mean.
        return loss / tf.distribute.get_strategy().num_replicas_in_sync

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        if self._metrics_per_output and isinstance(y, Mapping):
            label_outputs = TASKS[self.task].label_outputs  # label name -> output name
            y = {label_outputs[name]: value for name, value in y.items()}
            return super().compute_metrics(x, y, {name: y_pred[name] for name in y}, sample_weight)
        return super().compute_metrics(x, y, self._outputs_for_labels(y, y_pred), sample_weight)

    def prepare_tf_dataset(self, dataset, batch_size=8, shuffle=True, tokenizer=None, collate_fn=None,
                           drop_remainder=None, **kwargs):
        """A `tf.data.Dataset` from a 🤗 `datasets` dataset: only the columns this model accepts plus its
        labels, padded per batch, each batch checked against this model's limits (`input_limits`). See
        `tfformers.data.prepare_tf_dataset` for the options.

        As in transformers 4.x: a `collate_fn` gets only those columns (and `label` / `label_ids`), so a
        collator never sees the raw text the dataset was tokenized from; `drop_remainder` defaults to
        `shuffle` (training batches all full; an unshuffled evaluation or prediction set loses no example).
        A multiple-choice model's rows (one list of ids per choice, of any lengths) are batched by
        `DataCollatorForMultipleChoice` unless a `collate_fn` is given.

        Under `MultiWorkerMirroredStrategy` pass the GLOBAL `batch_size` and a `seed`: each worker makes the
        same batches and keeps its part of each (tf.data auto-sharding by data; docs/distributed.md)."""
        from tfformers.data import prepare_tf_dataset
        from tfformers.data.collators import DataCollatorForMultipleChoice
        from tfformers.data.columns import LABEL_ALIASES

        distribute.require_shared_order(self.distribute_strategy, shuffle, kwargs.get("seed"))
        tokenizer = tokenizer if tokenizer is not None else self.tokenizer
        if tokenizer is None and getattr(self.config, "pad_token_id", None) is not None:
            kwargs.setdefault("pad_token_id", self.config.pad_token_id)
        if collate_fn is None and self.task == "multiple-choice":  # rows of choices: padded per choice
            collate_fn = DataCollatorForMultipleChoice(tokenizer)
        if collate_fn is not None and getattr(dataset, "column_names", None) is not None:
            wanted = set(self.input_names) | set(self.label_names) | set(LABEL_ALIASES)
            dataset = dataset.select_columns([name for name in dataset.column_names if name in wanted])
        if drop_remainder is None and shuffle:  # 4.x: drop_remainder=shuffle; unshuffled, the pipeline decides
            drop_remainder = True
        return prepare_tf_dataset(
            dataset,
            input_names=self.input_names,
            label_names=self.label_names,
            batch_size=batch_size,
            shuffle=shuffle,
            tokenizer=tokenizer,
            collate_fn=collate_fn,
            drop_remainder=drop_remainder,
            limits=self.input_limits(),
            **kwargs,
        )


def _fresh_metric(metric):
    """A metric for one more output: a name as it is, a Metric object as a new one of the same config (one
    object cannot keep the state of two outputs)."""
    if isinstance(metric, keras.metrics.Metric):
        return type(metric).from_config(metric.get_config())
    return metric


def refuse_remote_code(trust_remote_code, source):
    """ConfigError for `trust_remote_code=True`: tfformers builds only its own architectures and never runs
    code from a checkpoint's repository."""
    if trust_remote_code:
        raise ConfigError(
            f"trust_remote_code=True for {source}: tfformers never runs code from a model repository; it builds "
            "only its own architectures (tfformers.models.auto.ARCHITECTURES). Pass trust_remote_code=False "
            "(the default) and use a checkpoint of a supported model_type."
        )


def _first_batch(x, y):
    """(x, y, sample_weight) standing for one batch of `fit`'s data, for the shapes and dtypes only: a
    tf.data.Dataset's element spec (the dataset is not iterated, so its shuffle order stays the user's) or
    the arrays' first row; None for other inputs (generators, Keras PyDatasets), which Keras then builds
    from in its trace."""
    if isinstance(x, tf.data.Dataset):
        spec = x.element_spec
        spec = tuple(spec) if isinstance(spec, tuple) else (spec,)
        return (spec + (None, None))[:3]
    if isinstance(x, (Mapping, np.ndarray, tf.Tensor)):
        return keras.tree.map_structure(lambda value: None if value is None else value[:1], (x, y, None))
    return None


def _log_loading_report(report, class_name, source):
    if report.unexpected_keys:
        loading_logger.warning(
            "Some weights of the checkpoint at %s were not used when initializing %s: %s\n"
            "This is expected when the checkpoint was trained for another task or architecture.",
            source, class_name, report.unexpected_keys,
        )
    if report.missing_keys:
        loading_logger.warning(
            "Some weights of %s were not initialized from the checkpoint at %s and are newly "
            "initialized: %s\nYou should probably TRAIN this model on a down-stream task to be able to "
            "use it for predictions and inference.",
            class_name, source, report.missing_keys,
        )
    for key, old, new in report.mismatched_keys:
        loading_logger.warning(
            "Weight %s of the checkpoint at %s has shape %s but %s expects %s: newly initialized.",
            key, source, list(old), class_name, list(new),
        )
