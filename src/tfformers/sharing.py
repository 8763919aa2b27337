"""Sharing on the Hub: `push_to_hub`, pushing a saved folder with a card, and resumable training checkpoints.

Every upload is ONE commit through `tfformers.hub.push_folder` (huggingface_hub's `create_repo` +
`create_commit`, no git): a failed push leaves the previous revision as it was.

What a push uploads (the folder `save_pretrained` writes, plus a card):

    config.json, model.safetensors (or shards + index)   PyTorch transformers' names and layouts
    tokenizer files                                      when a tokenizer is given or attached to the model
    README.md                                            the model card (see "cards" below)

Cards: a card passed as `model_card=` is uploaded as given; a `README.md` already in the repo that a person
wrote (it lacks `modelcard.GENERATED_MARKER`) is kept; otherwise a card is generated from the model and
its training history (`tfformers.modelcard`) and replaces the previous generated one. When the Hub cannot
say whether the repo has a card (connection refused, timeout, HTTP 5xx), the push stops with a HubError
rather than risk replacing a person's card.

Checkpoints (`PushToHubCallback(checkpoint=True)`, `save_checkpoint`, `load_repo_checkpoint`) live in the
repo's `checkpoint/` folder, never pickled:

    checkpoint/model.safetensors     the weights, in the same PyTorch layout as the top-level weights
    checkpoint/optimizer.safetensors every optimizer variable, keyed by a stable path:
                                       `<weight's PyTorch key>/<slot>` for per-weight slots, e.g.
                                       `bert.encoder.layer.0.attention.self.query.weight/momentum`
                                       (stored in the weight's PyTorch layout), and the variable's
                                       name otherwise (`iteration`, `learning_rate`); variables of a
                                       wrapped optimizer (LossScaleOptimizer) get an `inner_optimizer/`
                                       prefix per level
    checkpoint/trainer_state.json    {"epoch": completed epochs, "global_step", "optimizer": {"class_name",
                                       "config"}, "history": per-epoch logs, "format", "format_version"}
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from concurrent.futures import Future

import keras
import numpy as np
from huggingface_hub import ModelCard, constants, get_hf_file_metadata, hf_hub_url
from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from tfformers import checkpoint, distribute, hub, modelcard
from tfformers.errors import CheckpointError, HubError
from tfformers.fileio import atomic_directory, link_or_copy

__all__ = [
    "push_to_hub",
    "push_folder_with_card",
    "save_checkpoint",
    "load_repo_checkpoint",
    "CHECKPOINT_DIR",
    "TRAINER_STATE_NAME",
    "OPTIMIZER_STATE_NAME",
]

logger = logging.getLogger("tfformers")

CARD_NAME = "README.md"
CHECKPOINT_DIR = "checkpoint"
TRAINER_STATE_NAME = "trainer_state.json"
OPTIMIZER_STATE_NAME = "optimizer.safetensors"
CHECKPOINT_FORMAT = "tfformers.checkpoint"
CHECKPOINT_FORMAT_VERSION = 1


# ============================================================================================== pushing


def push_to_hub(
    model,
    repo_id: str,
    *,
    tokenizer=None,
    private: bool | None = None,
    token: str | bool | None = None,
    commit_message: str | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    max_shard_size: int | str = "5GB",
    model_card: str | ModelCard | bool | None = None,
    run_as_future: bool = False,
    **card_kwargs,
):
    """Uploads `model` to the Hub repo `repo_id` as one commit; `from_pretrained(repo_id)` then loads it.

    The commit holds `config.json`, safetensors weights in PyTorch transformers' layout (sharded above
    `max_shard_size`), the tokenizer (`tokenizer`, else `model.tokenizer`) and a model card. `repo_id`
    without a namespace (`"my-model"`) goes to the token owner's namespace. The repo is created if
    missing (`private` applies then). `revision` names the target branch (created from main if missing);
    `create_pr=True` opens a pull request instead of committing to it.

    Card: `model_card` (text or a `huggingface_hub.ModelCard`) is uploaded as given; `model_card=False`
    uploads none; by default a card is generated (`tfformers.modelcard.model_card`, which takes
    `card_kwargs` such as `license=`, `datasets=`, `tags=`, `batch_size=`), unless the repo already has a
    README.md a person wrote, which is kept.

    Returns the `huggingface_hub.CommitInfo` (`.oid`, `.commit_url`, `.pr_url`), or with
    `run_as_future=True` a `Future` of it (pushes run one at a time, in order). Raises `HubError`. Under a
    multi-worker strategy only the chief pushes: another worker returns None.
    """
    if not distribute.is_chief(model.distribute_strategy):  # the chief of a multi-worker cluster pushes
        return None
    repo_id = hub.full_repo_id(repo_id, token=token)
    card_kwargs.setdefault("has_tokenizer", tokenizer is not None or getattr(model, "tokenizer", None) is not None)
    workdir = tempfile.mkdtemp(prefix="tfformers-push-")
    try:
        folder = os.path.join(workdir, "model")
        model.save_pretrained(folder, max_shard_size=max_shard_size, tokenizer=tokenizer)
        card = _card_to_write(
            folder, repo_id, model_card, lambda: modelcard.model_card(model, repo_id=repo_id, **card_kwargs),
            token=token, revision=revision,
        )
        if card is not None:
            write_card(folder, card)
        result = hub.push_folder(
            folder, repo_id, token=token, private=private,
            commit_message=commit_message or f"Upload {type(model).__name__} with tfformers",
            revision=revision, create_pr=create_pr, run_as_future=run_as_future,
        )
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return _cleanup_after(result, workdir)


def push_folder_with_card(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    token: str | bool | None = None,
    private: bool | None = None,
    commit_message: str | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    model_card: str | ModelCard | bool | None = None,
    run_as_future: bool = False,
    **card_kwargs,
):
    """Uploads a saved model folder (e.g. from `save_pretrained`) as one commit, adding a model card when the
    folder has none (for `tfformers push <folder> <repo_id>`).

    The card is `model_card` when given (text or `ModelCard`); else the folder's own README.md, uploaded as
    is; else none when the repo already has a person's README.md (it is kept) or `model_card=False`; else
    one generated from the folder (`modelcard.model_card_from_folder`: config, tokenizer files, and the training history
    of a `trainer_state.json`; `card_kwargs` such as `license=` are passed on). The folder itself is never
    modified: the card goes into a staging copy made of hard links. `repo_id` without a namespace goes to
    the token owner's namespace. Returns the `CommitInfo`, or a `Future` with `run_as_future=True`.
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise HubError(f"Cannot push '{folder}': no such directory.")
    repo_id = hub.full_repo_id(repo_id, token=token)
    push = dict(token=token, private=private, commit_message=commit_message or "Upload folder with tfformers",
                revision=revision, create_pr=create_pr, run_as_future=run_as_future)
    card = _card_to_write(
        folder, repo_id, model_card,
        lambda: modelcard.model_card_from_folder(folder, repo_id=repo_id, **card_kwargs),
        token=token, revision=revision,
    )
    if card is None:
        return hub.push_folder(folder, repo_id, **push)
    workdir = tempfile.mkdtemp(prefix="tfformers-push-")
    try:
        staging = os.path.join(workdir, "folder")
        for relative in hub.list_repo_files(folder):
            target = os.path.join(staging, *relative.split("/"))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            link_or_copy(os.path.join(folder, *relative.split("/")), target)
        write_card(staging, card)
        result = hub.push_folder(staging, repo_id, **push)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return _cleanup_after(result, workdir)


def _cleanup_after(result, workdir):
    if isinstance(result, Future):
        result.add_done_callback(lambda _: shutil.rmtree(workdir, ignore_errors=True))
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def write_card(folder, card) -> None:
    """Writes `card` (text or ModelCard) as `folder/README.md`, replacing the file (never editing a hard link
    shared with an earlier save in place)."""
    text = str(card) if isinstance(card, ModelCard) else card
    path = os.path.join(folder, CARD_NAME)
    fd, tmp = tempfile.mkstemp(prefix=".README.", dir=folder)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text if text.endswith("\n") else text + "\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _card_to_write(folder, repo_id, model_card, generate, *, token, revision):
    """The card text to write into `folder`, or None to upload no README.md (keeping the one there)."""
    if model_card is False:
        return None
    if model_card is not None and model_card is not True:
        return str(model_card) if isinstance(model_card, ModelCard) else model_card
    if os.path.isfile(os.path.join(folder, CARD_NAME)):
        return None  # the folder's own card goes up as it is
    remote = remote_card(repo_id, revision=revision, token=token)
    if remote is not None and not modelcard.is_generated_card(remote):
        logger.info("Keeping the model card (README.md) of %s: it was not generated by tfformers.", repo_id)
        return None
    return str(generate())


def remote_card(repo_id: str, *, revision: str | None = None, token=None) -> str | None:
    """The README.md text of `repo_id` at `revision` (a new branch starts from main), or None when the Hub
    answers that the repo or the card does not exist.

    Any other outcome (connection refused, timeout, HTTP 5xx) raises `HubError`: a push must never replace
    a card a person wrote because the Hub could not be asked. The check asks the Hub itself (a HEAD request),
    never the local cache, which may hold an older card or none.
    """
    for rev in dict.fromkeys([revision, None]):
        try:
            metadata = get_hf_file_metadata(hf_hub_url(repo_id, CARD_NAME, revision=rev), token=token)
        except RevisionNotFoundError:
            if rev is not None:
                continue
            return None
        except EntryNotFoundError:
            return None
        except RepositoryNotFoundError as error:
            if type(error) is RepositoryNotFoundError:
                return None  # a new repo (a gated one is a subclass, and an error)
            raise hub.push_error(error, repo_id, revision) from error
        except Exception as error:  # noqa: BLE001 - whatever the cause, the card could not be seen
            if getattr(getattr(error, "response", None), "status_code", None) in (401, 403):
                raise hub.push_error(error, repo_id, revision) from error  # the push would be refused too
            raise _card_check_error(error, repo_id, rev) from error
        path = hub.resolve_file(repo_id, CARD_NAME, revision=metadata.commit_hash or rev, token=token)
        with open(path, encoding="utf-8") as f:
            return f.read()
    return None


def _card_check_error(error, repo_id, revision) -> HubError:
    return HubError(
        f"Could not check whether '{repo_id}' (revision '{revision or 'main'}') on {constants.ENDPOINT} "
        f"already has a model card (README.md): {type(error).__name__}: {error}. Nothing was pushed, so a card "
        "written by a person is not replaced by a generated one. Push again when the Hub answers, or pass "
        "model_card=False to keep the Hub's card, or model_card=<text> to upload yours."
    )


# ========================================================================================== checkpoints


def _owned_variables(optimizer, prefix=""):
    """[(prefix, variable)]: the optimizer's own variables, then those of the optimizer it wraps
    (`inner_optimizer`, as LossScaleOptimizer does) with an `inner_optimizer/` prefix."""
    inner = getattr(optimizer, "inner_optimizer", None)
    is_wrapper = isinstance(inner, keras.optimizers.Optimizer)
    nested = _owned_variables(inner, prefix + "inner_optimizer/") if is_wrapper else []
    nested_ids = {id(variable) for _, variable in nested}
    return [(prefix, v) for v in optimizer.variables if id(v) not in nested_ids] + nested


def _optimizer_state(model, optimizer):
    """{stable key: (optimizer variable, transpose)} for every variable of `optimizer` (see module doc)."""
    params = model.checkpoint_parameters()
    by_path = {param.variable.path: (key, param.transpose) for key, param in params.items()}
    references = {}
    for index, variable in enumerate(model.trainable_variables):
        key, transpose = by_path.get(variable.path, (f"trainable_variables.{index}", False))
        references[variable.path.replace("/", "_")] = (key, transpose)
    state = {}
    for prefix, variable in _owned_variables(optimizer):
        # Not the variable's path: its scope depends on where the optimizer was built (inside fit or not).
        name = variable.path.rpartition("/")[2]
        key, transpose = f"{prefix}{name}", False
        cut = len(name)
        while (cut := name.rfind("_", 0, cut)) > 0:  # the longest weight path the name starts with
            if name[:cut] in references:
                reference, transpose = references[name[:cut]]
                key = f"{prefix}{reference}/{name[cut + 1:]}"
                break
        if key in state:
            raise CheckpointError(
                f"Two optimizer variables map to the checkpoint key {key!r} ({state[key][0].path} and "
                f"{variable.path}); this optimizer's state cannot be saved by name."
            )
        state[key] = (variable, transpose and len(variable.shape) == 2)
    return state


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.generic,)):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _require_optimizer(model, action):
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        raise CheckpointError(
            f"Cannot {action}: {type(model).__name__} has no optimizer. Call model.compile(optimizer=...) "
            "first, with the optimizer the training run uses."
        )
    return optimizer


def save_checkpoint(model, folder, *, epoch: int, history=None, max_shard_size: int | str = "5GB") -> str:
    """Writes a resumable training checkpoint into `folder/checkpoint/` (atomically) and returns its path.

    `epoch` is the number of completed epochs (what `fit(initial_epoch=...)` takes when resuming);
    `history` the per-epoch logs so far. The optimizer must be built (it is after one training step).
    """
    optimizer = _require_optimizer(model, "save a training checkpoint")
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    weights = {key: param.to_numpy() for key, param in model.checkpoint_parameters().items()}
    slots = {}
    for key, (variable, transpose) in _optimizer_state(model, optimizer).items():
        value = keras.ops.convert_to_numpy(variable)
        slots[key] = np.array(value.T if transpose else value, order="C")  # (ascontiguousarray makes 0-d 1-d)
    state = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "epoch": int(epoch),
        "global_step": int(keras.ops.convert_to_numpy(optimizer.iterations)),
        "optimizer": {"class_name": type(optimizer).__name__, "config": _json_safe(_optimizer_config(optimizer))},
        "history": _json_safe(modelcard.history_rows(history)),
        "keras_version": keras.__version__,
    }
    target = os.path.join(os.fspath(folder), CHECKPOINT_DIR)
    # The checkpoint folder is ours: a file this save does not write (an earlier save's shard) is stale.
    last = (checkpoint.SAFE_WEIGHTS_INDEX_NAME, TRAINER_STATE_NAME)  # trainer_state.json is read first
    with atomic_directory(target, replaced=lambda name: True, last=last) as staging:
        checkpoint.write_safetensors(weights, staging, max_shard_size)
        save_file(slots, os.path.join(staging, OPTIMIZER_STATE_NAME), metadata={"format": CHECKPOINT_FORMAT})
        with open(os.path.join(staging, TRAINER_STATE_NAME), "w") as f:
            json.dump(state, f, indent=2)
    return target


def _optimizer_config(optimizer):
    try:
        return optimizer.get_config()
    except Exception:  # noqa: BLE001 - informational only
        return {}


def load_repo_checkpoint(
    model,
    repo_path_or_name,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
) -> dict:
    """Restores the weights and the optimizer state of a checkpoint pushed by
    `PushToHubCallback(checkpoint=True)` (or written by `save_checkpoint`) from a Hub repo or a local folder.

    The model must be compiled with the optimizer class the checkpoint was trained with; its variables are
    built (`optimizer.build(model.trainable_variables)`) and every one is assigned, the iteration counter
    and learning rate included. Returns `{"epoch", "global_step", "history"}`: resume with
    `model.fit(..., initial_epoch=state["epoch"])`, and the loss trajectory continues as if training had
    not stopped. Raises `CheckpointError` when the repo has no checkpoint or it does not fit the model.
    """
    source = os.fspath(repo_path_or_name)
    hub_kwargs = dict(revision=revision, token=token, cache_dir=cache_dir, local_files_only=local_files_only)

    def resolve(filename, required=True):
        return hub.resolve_file(source, filename, subfolder=CHECKPOINT_DIR, required=required, **hub_kwargs)

    state_path = resolve(TRAINER_STATE_NAME, required=False)
    if state_path is None:
        raise CheckpointError(
            f"{source} (revision {revision or 'main'}) has no training checkpoint "
            f"({CHECKPOINT_DIR}/{TRAINER_STATE_NAME}). Push one with PushToHubCallback(..., checkpoint=True), "
            "or pass the revision that has it."
        )
    with open(state_path) as f:
        state = json.load(f)
    if state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{state_path} is not a tfformers training checkpoint (format {state.get('format')!r}).")
    optimizer = _require_optimizer(model, f"resume from the checkpoint of {source}")
    saved_class = state["optimizer"]["class_name"]
    if type(optimizer).__name__ != saved_class:
        raise CheckpointError(
            f"The checkpoint of {source} holds the state of a {saved_class} optimizer but the model is compiled "
            f"with {type(optimizer).__name__}: compile it with keras.optimizers.{saved_class}(...) to resume."
        )
    if not model.built:
        model.build_with_dummy_inputs()

    where = f"{source}/{CHECKPOINT_DIR}"
    reader = checkpoint.SafetensorsReader(checkpoint.checkpoint_files(resolve, where))
    report = checkpoint.load_parameters(
        model.checkpoint_parameters(), reader, base_model_prefix=model.base_model_prefix,
        tied_keys=model.tied_weights_keys, ignored_unexpected=model.ignored_unexpected_keys,
    )
    if report.missing_keys or report.unexpected_keys or report.mismatched_keys:
        raise CheckpointError(
            f"The checkpoint weights in {where} do not fit {type(model).__name__}: missing {report.missing_keys[:5]}, "
            f"unexpected {report.unexpected_keys[:5]}. Resume with the architecture and config that were trained."
        )

    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    slots = _optimizer_state(model, optimizer)
    optimizer_path = resolve(OPTIMIZER_STATE_NAME)
    try:
        with safe_open(optimizer_path, framework="np") as f:
            stored = set(f.keys())
            missing, unexpected = sorted(set(slots) - stored), sorted(stored - set(slots))
            if missing or unexpected:
                raise CheckpointError(
                    f"The optimizer state in {where}/{OPTIMIZER_STATE_NAME} does not fit this {saved_class}: "
                    f"missing {missing[:5]}, unexpected {unexpected[:5]}. Compile with the same optimizer "
                    "settings (e.g. amsgrad, mixed precision) as the run that saved it."
                )
            for key, (variable, transpose) in slots.items():
                value = f.get_tensor(key)
                value = value.T if transpose else value
                if tuple(value.shape) != tuple(variable.shape):
                    raise CheckpointError(
                        f"Optimizer variable {key!r} in {where}/{OPTIMIZER_STATE_NAME} has shape {list(value.shape)}, "
                        f"the model's is {list(variable.shape)}."
                    )
                variable.assign(value.astype(keras.backend.standardize_dtype(variable.dtype)))
    except (SafetensorError, OSError) as error:
        raise CheckpointError(f"Cannot read {optimizer_path}: {error}. Push the checkpoint again.") from None

    resumed = {"epoch": int(state["epoch"]), "global_step": int(state.get("global_step", 0)),
               "history": state.get("history") or []}
    modelcard.training_record(model).resumed = resumed  # the card of the resumed run shows the earlier epochs
    logger.info("Resumed %s from %s at epoch %d (step %d)", type(model).__name__, where, resumed["epoch"],
                resumed["global_step"])
    return dict(resumed)
