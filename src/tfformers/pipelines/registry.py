"""The pipeline tasks: each name (and alias) -> its pipeline class and the model head it loads.

A task module registers itself (`register(PipelineTask(...))`) when `tfformers.pipelines` imports it, so a new
task (summarization, translation, image classification) is one new module and one import line; `pipeline()`
and the `Pipeline` base class stay as they are.
"""

from dataclasses import dataclass

from tfformers.errors import ConfigError
from tfformers.tasks import TASKS


@dataclass(frozen=True)
class PipelineTask:
    name: str  # the pipeline's name, as transformers spells it ("text-classification")
    pipeline_class: type
    # the head a model name or path is loaded with: a key of tfformers.tasks.TASKS ("sequence-classification")
    model_task: str
    # the heads a given model instance may have (defaults to `model_task` alone)
    accepted_model_tasks: tuple = ()
    aliases: tuple = ()

    @property
    def accepted(self):
        return self.accepted_model_tasks or (self.model_task,)


_TASKS = {}
_ALIASES = {}


def register(task):
    """Adds `task` under its name and aliases; the model task must be one tfformers.tasks knows."""
    unknown = [name for name in task.accepted + (task.model_task,) if name not in TASKS]
    if unknown:
        raise ConfigError(f"pipeline task {task.name!r} names model tasks {unknown} missing from tfformers.tasks.")
    _TASKS[task.name] = task
    for alias in task.aliases:
        _ALIASES[alias] = task.name


def supported_tasks():
    """Every task name and alias `pipeline()` accepts, sorted."""
    return sorted(set(_TASKS) | set(_ALIASES))


def get_task(name):
    """The registered PipelineTask named `name` (or an alias); ConfigError listing the supported ones."""
    if isinstance(name, str) and name.startswith("translation_"):  # "translation_en_to_de": one language pair
        name = "translation"
    task = _TASKS.get(_ALIASES.get(name, name))
    if task is None:
        raise ConfigError(
            f"Unknown or unsupported pipeline task {name!r}. tfformers supports: {', '.join(supported_tasks())}."
        )
    return task


def task_for_model_task(model_task):
    """The pipeline task a model head serves by default (its Hub pipeline tag), or None."""
    tag = TASKS[model_task].pipeline_tag if model_task in TASKS else None
    return tag if tag in _TASKS else None
