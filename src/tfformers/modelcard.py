"""Model cards (`README.md`) written from what is known about a model and its training run.

`model_card(...)` returns a `huggingface_hub.ModelCard` whose YAML metadata is built with `ModelCardData`
(`library_name: tfformers`, license, base_model, datasets, tags, pipeline_tag, and a `model-index` with the
final metrics), and whose text gives the training hyperparameters (optimizer config, batch size, epochs,
precision policy), a per-epoch results table from the Keras `History`, framework versions and a usage
snippet.

Generated cards carry `GENERATED_MARKER` in an HTML comment. A card without it was written by a person:
`tfformers.sharing` never overwrites such a card (`is_generated_card` tells them apart).
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from tfformers.tasks import TASKS, task_of_architecture

__all__ = ["model_card", "model_card_from_folder", "is_generated_card", "history_rows", "GENERATED_MARKER"]

logger = logging.getLogger("tfformers")

GENERATED_MARKER = "This model card was generated automatically by tfformers"
_GENERATED_COMMENT = (
    f"<!-- {GENERATED_MARKER} from what Keras knew about the model and its training run. Proofread and "
    "complete it, then remove this comment: tfformers keeps a card without it and stops regenerating it. -->"
)

_FRAMEWORKS = (
    ("tfformers", "tfformers"),
    ("TensorFlow", "tensorflow"),
    ("Keras", "keras"),
    ("Transformers", "transformers"),
    ("huggingface_hub", "huggingface_hub"),
    ("Safetensors", "safetensors"),
    ("Tokenizers", "tokenizers"),
    ("Datasets", "datasets"),
)


@dataclass
class TrainingRecord:
    """What a card shows beyond Keras' history, kept on the model as `model.training_record`: the state of
    an earlier run this one resumed (`load_repo_checkpoint`), and the logged metrics that were computed on
    an evaluation set (`KerasMetricCallback`)."""

    resumed: dict = field(default_factory=dict)  # {"epoch", "global_step", "history"}
    eval_metric_names: tuple = ()


def training_record(model) -> TrainingRecord:
    """The model's `TrainingRecord`, attached on first use (any Keras model can carry one)."""
    record = getattr(model, "training_record", None)
    if record is None:
        record = TrainingRecord()
        model.training_record = record
    return record


def is_generated_card(text: str | None) -> bool:
    """True when `text` is a card tfformers generated (and may regenerate); False for a person's card."""
    return text is not None and GENERATED_MARKER in text


# ------------------------------------------------------------------------------------------------ history


def history_rows(history) -> list[dict]:
    """Per-epoch rows `[{"epoch": 1, "loss": ..., ...}, ...]` (epochs 1-based) from a Keras `History`, a dict
    `{metric: [value per epoch]}`, or a list of logs dicts (each may carry its 1-based `"epoch"`; rows
    without one follow the previous row)."""
    if history is None:
        return []
    if hasattr(history, "history") and isinstance(getattr(history, "history"), Mapping):  # keras History
        epochs = list(getattr(history, "epoch", []) or [])
        table = history.history
        length = max((len(v) for v in table.values()), default=0)
        epochs = [e + 1 for e in epochs] if len(epochs) == length else list(range(1, length + 1))
        return [{"epoch": epochs[i], **{k: v[i] for k, v in table.items() if i < len(v)}} for i in range(length)]
    if isinstance(history, Mapping):
        length = max((len(v) for v in history.values()), default=0)
        return [{"epoch": i + 1, **{k: v[i] for k, v in history.items() if i < len(v)}} for i in range(length)]
    rows = []
    for i, logs in enumerate(history):
        row = dict(logs)
        row.setdefault("epoch", (rows[-1]["epoch"] + 1) if rows else i + 1)
        rows.append(row)
    return rows


def _number(value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def _metric_columns(rows, eval_metric_names):
    """[(log key, heading, split)] in first-seen order; `eval_metric_names` come from an evaluation set."""
    keys = []
    for row in rows:
        for key, value in row.items():
            if key != "epoch" and key not in keys and _number(value) is not None:
                keys.append(key)
    columns = []
    for key in keys:
        if key.startswith("val_"):
            columns.append((key, "Validation " + _pretty(key[4:]), "validation"))
        elif key in eval_metric_names:
            columns.append((key, _pretty(key), "validation"))
        else:
            columns.append((key, "Train " + _pretty(key), "train"))
    # train, then validation columns (as the Keras progress bar shows them)
    return [c for c in columns if c[2] == "train"] + [c for c in columns if c[2] != "train"]


def _pretty(key):
    words = key.replace("_", " ").split()
    return " ".join(w if w.isupper() or any(ch.isdigit() for ch in w) else w.capitalize() for w in words)


def _metric_type(key):
    return key[4:] if key.startswith("val_") else key


# ------------------------------------------------------------------------------------------- what we know


def _framework_versions():
    out = []
    for label, dist in _FRAMEWORKS:
        try:
            out.append(f"- {label} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            if dist == "tfformers":
                from tfformers import __version__

                out.append(f"- {label} {__version__}")
    return out


def _optimizer_config(optimizer):
    """{'name': ..., 'learning_rate': ..., ...} without unset (None) entries."""
    if optimizer is None or isinstance(optimizer, str):
        return optimizer
    try:
        config = optimizer.get_config()
    except Exception:  # noqa: BLE001 - a custom optimizer without get_config still gets a card
        return {"name": type(optimizer).__name__}
    config = {k: v for k, v in config.items() if v is not None}
    return {"name": type(optimizer).__name__, **{k: v for k, v in config.items() if k != "name"}}


def _format_value(value):
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"'{k}': {_format_value(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _is_hub_id(name):
    if not name or os.path.isdir(name) or os.path.isfile(name):
        return False
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(name)
    except Exception:  # noqa: BLE001 - HFValidationError: a local path, not a Hub id
        return False
    return True


def _usage(repo_id, task, auto_class, has_tokenizer, pytorch_class):
    lines = ["```python"]
    imports = [auto_class] + (["AutoTokenizer"] if has_tokenizer else [])
    lines.append(f"from tfformers import {', '.join(sorted(imports))}")
    lines.append("")
    if has_tokenizer:
        lines.append(f'tokenizer = AutoTokenizer.from_pretrained("{repo_id}")')
    lines.append(f'model = {auto_class}.from_pretrained("{repo_id}")')
    if has_tokenizer:
        usage = TASKS.get(task, TASKS["base"])
        lines.append(usage.usage_inputs)
        lines.extend(usage.usage_outputs)
    lines.append("```")
    if pytorch_class:
        lines += [
            "",
            "The weights are safetensors in PyTorch transformers' layout, so PyTorch loads them too:",
            "",
            "```python",
            "import transformers",
            "",
            f'model = transformers.{pytorch_class}.from_pretrained("{repo_id}")',
            "```",
        ]
    return lines


# -------------------------------------------------------------------------------------------------- cards


def model_card(
    model=None,
    *,
    config=None,
    repo_id: str | None = None,
    model_name: str | None = None,
    history=None,
    base_model: str | Sequence[str] | None = None,
    license: str | None = None,
    language: str | Sequence[str] | None = None,
    datasets: str | Sequence[str] | None = None,
    tags: Sequence[str] | None = None,
    pipeline_tag: str | None = None,
    batch_size: int | None = None,
    epochs: int | None = None,
    precision: str | None = None,
    optimizer=None,
    eval_metric_names: Sequence[str] = (),
    has_tokenizer: bool | None = None,
    description: str | None = None,
) -> ModelCard:
    """A model card for `model` (a `TFPreTrainedModel`) or, without a model, for `config`.

    Everything not given is read from the model: `history` from `model.history` (set by `fit`), optimizer
    and precision from the compiled model, `base_model` from the Hub id it was loaded from
    (`config.name_or_path`), the pipeline tag from its task, the tokenizer from `model.tokenizer`.
    `history` may be a Keras `History`, `{metric: [per-epoch values]}` or a list of per-epoch logs.
    `eval_metric_names` are logged metrics computed on an evaluation set (`KerasMetricCallback` records
    its names on the model); `val_*` metrics always count as validation metrics.
    """
    if model is not None:
        config = config if config is not None else model.config
    task = getattr(model, "task", None) if model is not None else _task_from_config(config)
    if repo_id is None:
        repo_id = model_name or "your-username/your-model"
    model_name = model_name or repo_id.split("/")[-1]

    # -- what the model knows
    if model is not None:
        if history is None:
            history = getattr(model, "history", None)
        record = training_record(model)
        rows = _merge_rows(record.resumed.get("history") or [], history_rows(history))
        if optimizer is None:
            optimizer = getattr(model, "optimizer", None)
        if precision is None:
            precision = getattr(getattr(model, "dtype_policy", None), "name", None)
        eval_metric_names = set(eval_metric_names) | set(record.eval_metric_names)
        if has_tokenizer is None:
            has_tokenizer = getattr(model, "tokenizer", None) is not None
        class_name = type(model).__name__
        pytorch_class = getattr(model, "pytorch_architecture", None)
        n_params = model.count_params() if getattr(model, "built", False) else None
    else:
        rows = history_rows(history)
        eval_metric_names = set(eval_metric_names)
        architectures = getattr(config, "architectures", None) or []
        pytorch_class = architectures[0] if architectures else None
        class_name = f"TF{pytorch_class}" if pytorch_class else None
        n_params = None
    if base_model is None and config is not None:
        name = getattr(config, "name_or_path", None) or getattr(config, "_name_or_path", None)
        if _is_hub_id(name) and name != repo_id:
            base_model = name
    if pipeline_tag is None:
        pipeline_tag = TASKS[task].pipeline_tag if task in TASKS else None
    if epochs is None and rows:
        epochs = rows[-1]["epoch"]
    datasets = [datasets] if isinstance(datasets, str) else list(datasets or [])
    model_type = getattr(config, "model_type", None)
    auto_class = TASKS[task].auto_class_name if task in TASKS else class_name or "TFAutoModel"

    columns = _metric_columns(rows, eval_metric_names)
    final = rows[-1] if rows else {}
    final_metrics = [(key, heading, split, _number(final.get(key))) for key, heading, split in columns]
    final_metrics = [m for m in final_metrics if m[3] is not None]

    # -- YAML metadata
    eval_results = [
        EvalResult(
            task_type=pipeline_tag or task or "other",
            dataset_type=datasets[0] if datasets else "unknown",
            dataset_name=datasets[0] if datasets else "unknown",
            dataset_split=split,
            metric_type=_metric_type(key),
            metric_name=heading,
            metric_value=round(value, 4),
        )
        for key, heading, split, value in final_metrics
    ]
    base_tags = ["tfformers", "keras", "tensorflow"] + ([model_type] if model_type else [])
    if rows:
        base_tags.append("generated_from_keras_callback")
    all_tags = list(dict.fromkeys([*base_tags, *(tags or [])]))
    data = ModelCardData(
        library_name="tfformers",
        license=license,
        language=language,
        base_model=base_model,
        datasets=datasets or None,
        tags=all_tags,
        pipeline_tag=pipeline_tag,
        model_name=model_name,
        eval_results=eval_results or None,
    )

    # -- text
    lines = [_GENERATED_COMMENT, "", f"# {model_name}", ""]
    origin = f"a fine-tuned version of [{base_model}](https://huggingface.co/{base_model})" if base_model else (
        "trained with tfformers" if rows else "a tfformers model")
    on_data = f" on the {', '.join(datasets)} dataset{'s' if len(datasets) > 1 else ''}" if datasets else (
        " on an unknown dataset" if rows else "")
    lines.append(f"This model is {origin}{on_data}.")
    if final_metrics:
        lines += ["", f"It achieves the following results after epoch {final.get('epoch')}:"]
        lines += [f"- {heading}: {value:.4f}" for _, heading, _, value in final_metrics]
    lines += ["", "## Model description", ""]
    if description:
        lines.append(description)
    else:
        what = f"`{class_name}`" if class_name else "A model"
        details = [f"architecture `{model_type}`"] if model_type else []
        if n_params:
            details.append(f"{n_params:,} parameters")
        lines.append(f"{what} ({', '.join(details)}), a Keras 3 model on TensorFlow." if details else
                     f"{what}, a Keras 3 model on TensorFlow.")
    lines += ["", "## Intended uses & limitations", "", "More information needed", ""]
    lines += ["## How to use", ""]
    lines += _usage(repo_id, task, auto_class, bool(has_tokenizer), pytorch_class)
    lines += ["", "## Training and evaluation data", "",
              (f"Trained on {', '.join(datasets)}." if datasets else "More information needed"), ""]

    hyper = []
    if optimizer is not None:
        opt = _optimizer_config(optimizer)
        hyper.append(f"- optimizer: {_format_value(opt) if isinstance(opt, Mapping) else opt}")
    if batch_size is not None:
        hyper.append(f"- train_batch_size: {batch_size}")
    if epochs is not None:
        hyper.append(f"- epochs: {epochs}")
    if precision is not None:
        hyper.append(f"- training_precision: {precision}")
    if hyper or rows:
        lines += ["## Training procedure", ""]
    if hyper:
        lines += ["### Training hyperparameters", "", "The following hyperparameters were used during training:",
                  "", *hyper, ""]
    if rows:
        headings = [heading for _, heading, _ in columns] + ["Epoch"]
        lines += ["### Training results", "", "| " + " | ".join(headings) + " |",
                  "|" + "|".join(":" + "-" * max(len(h), 3) + ":" for h in headings) + "|"]
        for row in rows:
            cells = []
            for key, _, _ in columns:
                value = _number(row.get(key))
                cells.append("-" if value is None else f"{value:.4f}")
            lines.append("| " + " | ".join(cells + [str(row["epoch"])]) + " |")
        lines.append("")
    lines += ["### Framework versions", "", *_framework_versions(), ""]

    content = f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines)
    return ModelCard(content)


def _merge_rows(earlier, later):
    """Rows of a resumed run: the checkpoint's epochs before the first epoch of this run."""
    if not earlier:
        return later
    first = later[0]["epoch"] if later else math.inf
    return [r for r in earlier if r["epoch"] < first] + later


def _task_from_config(config):
    architectures = getattr(config, "architectures", None) or []
    return task_of_architecture(architectures[0]) if architectures else None


def model_card_from_folder(folder, *, repo_id: str | None = None, **card_kwargs) -> ModelCard:
    """A card for a saved model folder (`config.json`, weights, maybe a tokenizer), without loading weights.

    Reads the training history from `trainer_state.json` (or `checkpoint/trainer_state.json`) when the
    folder has one, as `PushToHubCallback` writes them.
    """
    config = None
    config_path = os.path.join(folder, "config.json")
    if os.path.isfile(config_path):
        from transformers import AutoConfig

        try:
            config = AutoConfig.from_pretrained(folder)
        except (ValueError, KeyError, OSError) as error:
            logger.warning("Could not read %s for the model card: %s", config_path, error)
    if "history" not in card_kwargs:
        for state_path in ("trainer_state.json", os.path.join("checkpoint", "trainer_state.json")):
            path = os.path.join(folder, state_path)
            if os.path.isfile(path):
                with open(path) as f:
                    card_kwargs["history"] = json.load(f).get("history") or None
                break
    if "has_tokenizer" not in card_kwargs:
        card_kwargs["has_tokenizer"] = any(
            os.path.isfile(os.path.join(folder, name))
            for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "tokenizer.model")
        )
    return model_card(None, config=config, repo_id=repo_id, **card_kwargs)
