"""`pipeline()`: transformers' pipeline API on tfformers' Keras models.

`pipeline(task, model=...)` loads the model with the head the task needs (a Hub name, a local folder, or a
tfformers model given as is), its tokenizer, and returns a callable that maps raw inputs to answers equal to
transformers' own pipelines. The tasks live one per module, each registering itself in `registry`.
"""

import os

from tfformers.config import load_config
from tfformers.errors import ConfigError, InputError
from tfformers.models.auto import model_class_for
from tfformers.pipelines import (  # noqa: F401  (each registers its task)
    feature_extraction,
    fill_mask,
    image_classification,
    question_answering,
    text2text_generation,
    text_classification,
    text_generation,
    token_classification,
    zero_shot_classification,
)
from tfformers.pipelines.base import KeyDataset, Pipeline
from tfformers.pipelines.registry import PipelineTask, get_task, register, supported_tasks, task_for_model_task
from tfformers.tasks import task_of_architecture

__all__ = ["KeyDataset", "Pipeline", "PipelineTask", "pipeline", "register", "supported_tasks"]


def pipeline(task=None, model=None, config=None, tokenizer=None, *, image_processor=None, framework=None, revision=None,
             token=None, device=None, dtype=None, trust_remote_code=None, model_kwargs=None, batch_size=1,
             progress=None, **kwargs):
    """A pipeline for `task` ("text-classification", "ner", "question-answering", ... see `supported_tasks()`).

    model: a Hub name or local folder (loaded with the head the task needs, offline when the files are
    cached or local) or a tfformers model instance. With no task, the task is the one of the model's head
    (config.architectures). tokenizer: a name, a folder or a tokenizer; default: the model's own.
    image_processor (image tasks, in place of the tokenizer): a name, a folder or a tfformers image processor;
    default: the model's own preprocessor_config.json.
    `batch_size` inputs run as one padded batch (answers equal to batch_size=1); `progress` shows a progress
    bar (default: for lists of 100 inputs or more). `device` follows transformers' spelling (-1/"cpu", an
    int or "cuda:n" for a GPU) and becomes a TensorFlow device scope. Other keyword arguments are the task's
    options (e.g. `top_k`, `aggregation_strategy`), fixed for every call unless a call overrides them.
    """
    if framework not in (None, "tf"):
        raise ConfigError(f"tfformers pipelines run TensorFlow models only; got framework={framework!r}.")
    if trust_remote_code:
        raise ConfigError("tfformers never runs code from a model repository: trust_remote_code=True is refused.")
    if model is None:
        raise ConfigError(
            "pipeline() needs model= (a Hub name, a local folder or a tfformers model): tfformers picks no default "
            f"model for a task. Tasks: {', '.join(supported_tasks())}."
        )
    hub_kwargs = {"revision": revision, "token": token}
    loading = dict(model_kwargs or {}, **({"dtype": dtype} if dtype is not None else {}))
    if isinstance(model, (str, os.PathLike)):
        source = os.fspath(model)
        config = load_config(config if isinstance(config, (str, os.PathLike)) else source,
                             None if isinstance(config, (str, os.PathLike)) else config, **hub_kwargs)
        pipeline_task = get_task(task) if task is not None else _task_of_config(config, source)
        model_class = model_class_for(config, pipeline_task.model_task)
        model = model_class.from_pretrained(source, config=config, **hub_kwargs, **loading)
    else:
        source = None
        pipeline_task = get_task(task) if task is not None else _task_of_model(model)
        _check_head(model, pipeline_task)
    model_source = source or getattr(model.config, "name_or_path", None)
    image = pipeline_task.model_task == "image-classification"
    tokenizer = _preprocessor(image_processor if image else tokenizer, model_source, hub_kwargs, image=image)
    if isinstance(task, str) and task.startswith("translation_"):  # "translation_en_to_de": that pair's settings
        kwargs["task"] = task
    return pipeline_task.pipeline_class(model, tokenizer, batch_size=batch_size, progress=progress, device=device,
                                        **kwargs)


def _task_of_config(config, source):
    architectures = getattr(config, "architectures", None) or []
    model_task = task_of_architecture(architectures[0]) if architectures else None
    task = task_for_model_task(model_task) if model_task else None
    if task is None:
        raise ConfigError(
            f"Cannot infer the pipeline task of {source}: its config names the architectures {architectures}. "
            f"Pass task= (one of {', '.join(supported_tasks())})."
        )
    return get_task(task)


def _task_of_model(model):
    task = task_for_model_task(getattr(model, "task", None))
    if task is None:
        raise ConfigError(
            f"No pipeline task serves a {type(model).__name__} ({getattr(model, 'task', None)} head). Pass task= "
            f"(one of {', '.join(supported_tasks())}) with a model that has its head."
        )
    return get_task(task)


def _check_head(model, pipeline_task):
    if getattr(model, "task", None) not in pipeline_task.accepted:
        raise ConfigError(
            f"The {pipeline_task.name} pipeline needs a model with a {' or '.join(pipeline_task.accepted)} head; "
            f"{type(model).__name__} has a {getattr(model, 'task', None)} head. Load the model with "
            f"the matching TFAuto class, or pick the task of this head."
        )


def _preprocessor(given, model_source, hub_kwargs, image=False):
    """The tokenizer (or, for image tasks, the image processor) `given` as a name, folder or object; default
    the model's own."""
    from tfformers.image_processing import AutoImageProcessor
    from tfformers.tokenization import AutoTokenizer

    what, loader = ("image processor", AutoImageProcessor) if image else ("tokenizer", AutoTokenizer)
    if given is None:
        if not model_source:
            raise InputError(f"The model does not say where its {what} is: pass {what.replace(' ', '_')}= (a name, "
                             f"a folder or a {what}).")
        given = model_source
    if isinstance(given, (str, os.PathLike)):
        return loader.from_pretrained(os.fspath(given), **hub_kwargs)
    return given
