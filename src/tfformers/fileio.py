"""Crash-safe saves into an existing folder: the folder itself is never renamed, recreated or replaced.

`atomic_directory(folder)` yields a hidden staging subfolder; when the block succeeds its files are moved
into `folder` one rename at a time. So a save keeps the folder's permissions, setgid group, symlink and
mount point, needs no write access to the parent, and a process whose working directory is the folder
keeps a valid one. The steps, all under an advisory lock (`flock` on the folder itself, so no lock file
is left and concurrent savers take turns):

1. Stage: the caller writes into `folder/.tfformers-staging-<random>` (same file system, so moving a file
   is a rename). Staged files get the group and the mode any file created in the folder gets (umask,
   default ACL, setgid group), whatever mode the library that wrote them chose.
2. Commit: a plan (`.tfformers-plan.json`: entry point to take out, stale files to remove, files to move
   in, in order) is written next to the staged files, everything is fsynced, and the staging folder is
   renamed to `.tfformers-commit-<random>`. That rename is the commit point: before it the previous
   content stands and the staging folder is garbage; after it the save is completed by whoever takes the
   lock next, even if this process is killed.
3. Apply the plan (idempotent, so completing an interrupted save just runs it again): when more than one
   file changes, the entry point a reader opens first (`config.json`) is taken out first; stale files
   (claimed by `replaced`, not written by this save: shards of an earlier, bigger save) are removed; the
   changed files are moved in, the names in `last` last and in that order (shards, then the index, then
   `config.json`). A reader therefore sees the previous model, the new one, or, for the few renames in
   between, no `config.json` at all - never config and weights of two different saves. A save that
   changes a single file (a re-saved model with the same config) is one rename: always loadable.
4. Remove the commit folder. Staging folders of killed saves are removed, and commit folders completed, at
   the start of the next save (`complete_interrupted_save` does it on demand).
"""

import contextlib
import json
import logging
import os
import shutil
import stat
import tempfile

from tfformers.errors import TFFormersError

try:
    import fcntl
except ImportError:  # Windows: no flock; concurrent saves into one folder are then not serialized
    fcntl = None

__all__ = [
    "atomic_directory", "new_directory", "complete_interrupted_save", "link_or_copy", "MODEL_LAST", "INTERNAL_PREFIX"
]

logger = logging.getLogger("tfformers")

INTERNAL_PREFIX = ".tfformers-"
STAGING_PREFIX = INTERNAL_PREFIX + "staging-"
COMMIT_PREFIX = INTERNAL_PREFIX + "commit-"
PLAN_NAME = INTERNAL_PREFIX + "plan.json"
# A model folder's files that go in last, in this order; the final one is the entry point readers open first.
MODEL_LAST = ("model.safetensors.index.json", "generation_config.json", "config.json")
# Staged files up to this size are compared with the folder's copy, so an unchanged config or tokenizer
# is not moved; larger files (weights) always count as changed rather than being read twice.
_COMPARED_BYTES = 32 * 2**20


def link_or_copy(source, destination):
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


@contextlib.contextmanager
def atomic_directory(target, replaced=lambda name: False, last=MODEL_LAST):
    """Yields a staging folder inside `target` (created if missing; a symlink is followed); when the block
    succeeds, the staged files replace their namesakes in `target` (see the module doc for the steps).

    `replaced(name)` claims a top-level entry of `target` for this kind of save: a claimed entry the save
    did not write is stale and removed (a claimed folder: its files the save did not write). Everything
    else already in `target` stays untouched. `last` names the files moved in last, in order, the final
    one being the entry point readers open first. On an exception in the block the staging folder is
    removed and `target` is untouched; an OSError (a full disk) is re-raised naming the folder.
    """
    folder = _existing_folder(target)
    with _locked(folder):
        _complete_or_discard_earlier_saves(folder)
        staging = tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=folder)
        try:
            file_mode = _new_file_mode(staging)
            yield staging
            commit = _commit(folder, staging, replaced, last, file_mode)
        except BaseException as error:
            shutil.rmtree(staging, ignore_errors=True)
            if isinstance(error, OSError) and not isinstance(error, TFFormersError):
                raise _describe_failure(folder, error, "The folder keeps its previous content; free disk space "
                                        "or fix the permissions, then save again.") from error
            raise
        try:
            _apply(folder, commit)
        except OSError as error:
            raise _describe_failure(folder, error, "The save was committed: the next save into this folder, or "
                                    "tfformers.fileio.complete_interrupted_save(folder), completes it.") from error


@contextlib.contextmanager
def new_directory(target):
    """Yields a staging folder next to `target`, a folder that must not exist yet (a model version,
    `BASE/NAME/3`); when the block succeeds the staged tree is fsynced and renamed to `target` in one step,
    so a reader (a server polling for versions) sees no folder or the complete one, never part of it. On an
    exception, or a kill, nothing appears at `target` (a killed export's staging folder is removed by the
    next one)."""
    target = os.path.abspath(os.fspath(target))
    parent = _existing_folder(os.path.dirname(target))
    target = os.path.join(parent, os.path.basename(target))
    with _locked(parent):
        _complete_or_discard_earlier_saves(parent)
        if os.path.lexists(target):
            raise FileExistsError(f"{target} already exists; write to a new folder (a new version number).")
        staging = tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=parent)
        try:
            yield staging
            _fsync_tree(staging)
            os.rename(staging, target)
            _fsync_folder(parent)
        except BaseException as error:
            shutil.rmtree(staging, ignore_errors=True)
            if isinstance(error, OSError) and not isinstance(error, (TFFormersError, FileExistsError)):
                raise _describe_failure(parent, error, f"Nothing was written at {target}.") from error
            raise


def complete_interrupted_save(target) -> bool:
    """Completes a save into `target` that was killed after its commit point and removes the staging
    folders of saves killed before it. Returns True when a committed save was completed."""
    folder = os.path.realpath(os.fspath(target))
    with _locked(folder):
        return _complete_or_discard_earlier_saves(folder)


def _existing_folder(target):
    folder = os.path.realpath(os.fspath(target))
    if os.path.lexists(folder) and not os.path.isdir(folder):
        raise NotADirectoryError(f"{target} exists and is not a folder; choose another save directory.")
    os.makedirs(folder, exist_ok=True)
    return folder


@contextlib.contextmanager
def _locked(folder):
    """An exclusive advisory lock on `folder` itself (released when the descriptor closes, also on a kill)."""
    if fcntl is None:
        yield
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        except OSError as error:  # some network file systems refuse flock on a folder
            logger.warning("Cannot lock %s (%s): concurrent saves into it are not serialized.", folder, error)
        yield
    finally:
        os.close(descriptor)


def _complete_or_discard_earlier_saves(folder) -> bool:
    completed = False
    for entry in sorted(os.listdir(folder)):
        path = os.path.join(folder, entry)
        if entry.startswith(COMMIT_PREFIX) and os.path.isfile(os.path.join(path, PLAN_NAME)):
            logger.warning("Completing a save into %s that was interrupted after its commit point.", folder)
            _apply(folder, path)
            completed = True
        elif entry.startswith((STAGING_PREFIX, COMMIT_PREFIX)):  # killed before its commit, or while cleaning up
            shutil.rmtree(path, ignore_errors=True)
    return completed


def _new_file_mode(staging):
    """The mode a file created in the folder gets (umask, default ACLs), probed by creating one."""
    probe = os.path.join(staging, PLAN_NAME)
    os.close(os.open(probe, os.O_CREAT | os.O_WRONLY, 0o666))
    mode = stat.S_IMODE(os.stat(probe).st_mode)
    os.unlink(probe)
    return mode


def _commit(folder, staging, replaced, last, file_mode):
    written = _relative_files(staging)
    for path in written:  # writers that create private temporary files (safetensors: 0600) get the usual mode
        if not os.path.islink(_join(staging, path)):
            os.chmod(_join(staging, path), file_mode)
    plan = _plan(folder, staging, written, replaced, last)
    with open(os.path.join(staging, PLAN_NAME), "w") as handle:
        json.dump(plan, handle, indent=1)
    _fsync_tree(staging)
    commit = os.path.join(folder, COMMIT_PREFIX + os.path.basename(staging)[len(STAGING_PREFIX):])
    os.rename(staging, commit)
    _fsync_folder(folder)
    return commit


def _plan(folder, staging, written, replaced, last):
    """What applying the save does, as relative '/'-paths: take_out, stale (removed), moves (in order)."""
    changed = [path for path in written if not _same_content(_join(staging, path), _join(folder, path))]
    stale = _stale_paths(folder, written, replaced)
    _check_nothing_in_the_way(folder, changed, stale)
    rank = {name: position for position, name in enumerate(last)}
    moves = sorted(changed, key=lambda path: (rank.get(path, -1), path))
    take_out = []
    entry = last[-1] if last else None
    if entry and len(changed) + len(stale) > 1 and os.path.lexists(_join(folder, entry)):
        take_out = [entry]  # until it is back, the folder is not a loadable model rather than a mix of two
        if entry in written and entry not in moves:
            moves.append(entry)
    return {"take_out": take_out, "stale": stale, "moves": moves}


def _apply(folder, commit):
    with open(os.path.join(commit, PLAN_NAME)) as handle:
        plan = json.load(handle)
    for path in plan["take_out"]:
        if path not in plan["moves"] or os.path.lexists(_join(commit, path)):  # not moved back in yet
            _remove(_join(folder, path))
    for path in plan["stale"]:
        _remove(_join(folder, path))
    for path in plan["moves"]:
        source, destination = _join(commit, path), _join(folder, path)
        if os.path.lexists(source):  # else moved before an interruption
            os.makedirs(os.path.dirname(destination), exist_ok=True)
            os.replace(source, destination)
    _fsync_folder(folder)
    shutil.rmtree(commit)


def _stale_paths(folder, written, replaced):
    written = set(written)
    stale = []
    for entry in sorted(os.listdir(folder)):
        if entry.startswith(INTERNAL_PREFIX) or not replaced(entry):
            continue
        path = os.path.join(folder, entry)
        if os.path.isdir(path) and not os.path.islink(path) and any(w.startswith(entry + "/") for w in written):
            stale += [f"{entry}/{inner}" for inner in _relative_files(path) if f"{entry}/{inner}" not in written]
        elif entry not in written or os.path.isdir(path):  # a folder where a file is written goes too
            stale.append(entry)
    return stale


def _check_nothing_in_the_way(folder, changed, stale):
    """Before the commit point: a user's file where the save writes a folder would stop it half-applied."""
    for path in changed:
        parts = path.split("/")
        for depth in range(1, len(parts)):
            prefix = "/".join(parts[:depth])
            if prefix not in stale and os.path.lexists(_join(folder, prefix)) and not os.path.isdir(
                    _join(folder, prefix)):
                raise FileExistsError(f"Cannot save {path} into {folder}: {prefix} is a file there, not a folder. "
                                      "Move it away and save again.")


def _same_content(new, old):
    try:
        new_stat, old_stat = os.lstat(new), os.lstat(old)
    except FileNotFoundError:
        return False
    if not (os.path.isfile(new) and os.path.isfile(old) and not os.path.islink(old)):
        return False
    if new_stat.st_size != old_stat.st_size or new_stat.st_size > _COMPARED_BYTES:
        return False
    with open(new, "rb") as a, open(old, "rb") as b:
        return a.read() == b.read()


def _relative_files(root):
    """Sorted '/'-paths of the files (and symlinks) under `root`, without the plan."""
    found = []
    for directory, folders, files in os.walk(root):
        relative = os.path.relpath(directory, root)
        links = [name for name in folders if os.path.islink(os.path.join(directory, name))]
        for name in files + links:
            found.append(name if relative == "." else f"{relative.replace(os.sep, '/')}/{name}")
    return sorted(path for path in found if path != PLAN_NAME)


def _join(folder, path):
    return os.path.join(folder, *path.split("/"))


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _fsync_tree(root):
    """Staged bytes reach the disk before the commit point, so a power cut cannot commit empty files."""
    for directory, _, files in os.walk(root):
        for name in files:
            path = os.path.join(directory, name)
            if not os.path.islink(path):
                descriptor = os.open(path, os.O_RDONLY)
                try:
                    os.fsync(descriptor)
                finally:
                    os.close(descriptor)
        _fsync_folder(directory)


def _fsync_folder(folder):
    if os.name != "posix":
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _describe_failure(folder, error, consequence):
    where = f" ({error.filename})" if error.filename else ""
    message = f"Saving into {folder} failed: {error.strerror or error}{where}. {consequence}"
    return OSError(error.errno, message) if error.errno is not None else OSError(message)
