"""`export()`: one SavedModel from raw strings to answers, in TF Serving's layout `BASE/NAME/VERSION/`.

The artifact holds the model's weights, the in-graph tokenizer's tables and the task's post-processing
(`module.py`); loading it needs TensorFlow and tensorflow-text only (`import tensorflow_text` registers the
tokenizer ops), neither tfformers nor transformers. A version folder appears in one rename once complete
(`fileio.new_directory`), so a server polling `BASE/NAME` never loads half a version.
"""

import os

import tensorflow as tf

from tfformers import fileio
from tfformers.errors import ConfigError
from tfformers.export.module import ImageServingModule, ServingModule, export_task
from tfformers.tokenization.tf_base import TFTokenizerBase

FORMATS = ("saved_model", "litert")
_PROMPT_MARK = "\x00tfformers-prompt\x00"


def export(model, output, *, tokenizer=None, task=None, version=None, format="saved_model", **options):
    """Exports `model` with its tokenizer for serving; returns the path written.

    Args:
        model: a tfformers model (its head decides the task).
        output: `BASE/NAME`, the model's folder in TF Serving's layout; the version goes below it.
        tokenizer: a transformers tokenizer, an in-graph tokenizer layer, or a folder / Hub name; by default
            the one `model.tokenizer` holds, else the checkpoint's own (`config.name_or_path`).
        task: "text-classification", "token-classification", "question-answering", "feature-extraction",
            "fill-mask", "text-generation", "text2text-generation" (also named "summarization", "translation"
            and "translation_xx_to_yy": then the config's `task_specific_params` for that name, such as T5's
            prefix and beam settings, are the defaults of the options) or "image-classification"; by default
            the head's. An image classifier
            takes encoded image files (`image_bytes`) and runs its image processor in the graph (option
            `image_processor`: a processor or its folder; default the checkpoint's).
        version: the version folder's number; by default one above the highest present (1 in a new folder).
        format: "saved_model", or "litert" (a `.tflite` file of the ids signature; see `export.litert`).
        options: `max_length` (tokens per input; default the tokenizer's and model's limit), `max_answer_length`
            (question answering, 15), `top_k` (fill-mask, 5); for text generation `max_prompt_length` (64),
            `generation_batch_size` (rows per compiled chunk, 8), `chat_template` (True: wrap each text in the
            tokenizer's chat template as one user turn) and generation options (`max_new_tokens`,
            `do_sample`, `num_beams`, ...); for text-to-text generation `max_source_length` (source tokens
            kept, the first ones, end-of-sequence token included; default the tokenizer's and model's
            limit), `prefix` (put before each text, e.g. "summarize: " for T5; default the config's
            `prefix`), `generation_batch_size` and generation options.
    """
    if format not in FORMATS:
        raise ConfigError(f"Unknown export format {format!r}; use one of {FORMATS}.")
    pipeline_name, task = task, export_task(model, task)
    if task == "text2text-generation":
        options = {**_task_specific_params(model.config, pipeline_name), **options}
    target = os.path.join(os.fspath(output), str(_version(output, version)))
    if task == "image-classification":
        module = ImageServingModule(model, _image_preprocessing(model, options.pop("image_processor", None)))
        _save(module, target)
        return target
    python_tokenizer, tf_tokenizer = _tokenizers(model, tokenizer)
    if format == "litert":
        from tfformers.export.litert import export_litert

        with fileio.new_directory(target) as staging:
            export_litert(model, os.path.join(staging, "model.tflite"), **options)
        return target
    module = ServingModule(model, tf_tokenizer, task, **_module_options(task, python_tokenizer, options))
    _save(module, target)
    return target


def _save(module, target):
    signatures = module.signatures()
    with fileio.new_directory(target) as staging:
        tf.saved_model.save(module, staging, signatures=signatures)


def _checkpoint_source(model, what, files):
    """The folder or Hub name the model was loaded from, where its `what` is found by default."""
    source = getattr(model.config, "name_or_path", None)
    if not source:
        option = what.replace(" ", "_")
        raise ConfigError(
            f"{type(model).__name__} was not loaded from a checkpoint, so its {what} is unknown: pass {option}= "
            f"(a {what}, or the folder or Hub name of its {files})."
        )
    return source


def _image_preprocessing(model, image_processor):
    """The image processor's steps as a layer: `image_processor` (a processor, or the folder / Hub name of
    its preprocessor_config.json), by default the checkpoint's own (`config.name_or_path`)."""
    from tfformers.image_processing import AutoImageProcessor

    if image_processor is None:
        image_processor = _checkpoint_source(model, "image processor", "preprocessor_config.json")
    if isinstance(image_processor, (str, os.PathLike)):
        image_processor = AutoImageProcessor.from_pretrained(os.fspath(image_processor))
    if image_processor.settings.output_size is None:
        raise ConfigError(
            "The image processor resizes by shortest_edge without a crop, so served images would have different "
            "sizes; export with a processor that resizes to height and width or crops."
        )
    return image_processor.as_layer(num_channels=model.config.num_channels)


def _version(output, version):
    if version is not None:
        if int(version) < 1:
            raise ConfigError(f"version={version}: TF Serving versions are positive integers.")
        return int(version)
    existing = [int(name) for name in os.listdir(output) if name.isdigit()] if os.path.isdir(output) else []
    return max(existing, default=0) + 1


def _tokenizers(model, tokenizer):
    """(transformers tokenizer or None, in-graph tokenizer layer) for `tokenizer` as `export` takes it."""
    from tfformers.tokenization.auto import AutoTokenizer
    from tfformers.tokenization.tf_auto import TFAutoTokenizer

    if tokenizer is None:
        tokenizer = model.tokenizer
    if tokenizer is None:
        tokenizer = _checkpoint_source(model, "tokenizer", "tokenizer files")
    if isinstance(tokenizer, TFTokenizerBase):
        return None, tokenizer
    if isinstance(tokenizer, (str, os.PathLike)):
        tokenizer = AutoTokenizer.from_pretrained(os.fspath(tokenizer))
    return tokenizer, TFAutoTokenizer.from_tokenizer(tokenizer)


def _module_options(task, python_tokenizer, options):
    """ServingModule's keywords: the export options, with what only the Python tokenizer knows filled in."""
    options = dict(options)
    if task == "fill-mask":
        mask_id = getattr(python_tokenizer, "mask_token_id", None)
        options.setdefault("mask_token_id", mask_id)
        if options["mask_token_id"] is None:
            raise ConfigError("fill-mask export needs the mask token: pass the tokenizer, or mask_token_id=.")
    if task == "text2text-generation":
        module = {key: options.pop(key) for key in ("generation_batch_size",) if key in options}
        if "max_source_length" in options:
            module["max_length"] = options.pop("max_source_length")
        if "prefix" in options:
            module["prompt_template"] = (options.pop("prefix"), "")
        return {**module, "generation_options": options}
    if task != "text-generation":
        return options
    module_keys = ("max_prompt_length", "generation_batch_size")
    module = {key: options.pop(key) for key in module_keys if key in options}
    if options.pop("chat_template", False):
        module["prompt_template"] = _chat_prompt_template(python_tokenizer)
        module["add_special_tokens"] = False  # the template spells them out
    return {**module, "generation_options": options}


def _task_specific_params(config, pipeline_name):
    """The config's settings for a pipeline name (T5's "summarization": prefix, beams, lengths), as transformers'
    pipelines apply them."""
    return dict((getattr(config, "task_specific_params", None) or {}).get(pipeline_name) or {})


def _chat_prompt_template(tokenizer):
    """(before, after): the tokenizer's chat template around one user message, generation prompt added."""
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        raise ConfigError("chat_template=True needs a tokenizer with a chat template (tokenizer_config.json).")
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": _PROMPT_MARK}], tokenize=False, add_generation_prompt=True
    )
    if rendered.count(_PROMPT_MARK) != 1:
        raise ConfigError("This chat template does not place the user message verbatim; format prompts yourself.")
    before, after = rendered.split(_PROMPT_MARK)
    return before, after
