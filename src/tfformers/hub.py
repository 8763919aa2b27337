"""Hub I/O: a model name or a local path -> local files, and a local folder -> one commit on the Hub.

Everything goes through `huggingface_hub` (download, cache under ``HF_HOME``, offline mode, upload); this
module only decides local-folder-or-Hub, and turns the client's exceptions into `HubError` messages that
name the repository, revision and file and say what to do.

- `resolve_file(name_or_path, filename)`: one file from a local folder or the Hub cache (downloading it).
- `list_repo_files(name_or_path)`: the files of a local folder or a Hub revision (the cached ones offline).
- `push_folder(folder, repo_id)`: create the repo if needed and upload the folder as one commit.
- `full_repo_id(name)`: `'my-model'` -> `'<token's user>/my-model'` (an id with a namespace is returned as is).

Offline use: after one download, ``HF_HUB_OFFLINE=1`` (or ``local_files_only=True``) serves from the cache.
"""

from __future__ import annotations

import functools
import logging
import os
from concurrent.futures import Future

from huggingface_hub import CommitInfo, CommitOperationAdd, HfApi, constants, hf_hub_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    LocalEntryNotFoundError,
    LocalTokenNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.file_download import repo_folder_name
from huggingface_hub.utils import validate_repo_id

from .errors import HubError
from .fileio import COMMIT_PREFIX, INTERNAL_PREFIX

__all__ = ["resolve_file", "list_repo_files", "push_folder", "full_repo_id", "is_offline"]

logger = logging.getLogger("tfformers")

_AUTH_HINT = "pass token=, or run `hf auth login`, or set HF_TOKEN"
_OFFLINE_HINT = "run once online to download it, or unset HF_HUB_OFFLINE / pass local_files_only=False"
# A Git LFS pointer file starts so, and is at most a few hundred bytes
_LFS_POINTER_START = b"version https://git-lfs.github.com/spec/v1"
_LFS_POINTER_MAX_BYTES = 1024
# Directories never uploaded from a folder (same defaults as `HfApi.upload_folder`).
_SKIP_DIRS = {".git", ".cache"}


def _network_errors() -> tuple[type[BaseException], ...]:
    """Transport errors of the HTTP library under huggingface_hub (httpx2 in 2.x, httpx in 1.x)."""
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for module in ("httpx2", "httpx"):
        try:
            errors.append(__import__(module).TransportError)
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


_NETWORK_ERRORS = _network_errors()


def is_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` is set (read by huggingface_hub when it is imported)."""
    return bool(constants.HF_HUB_OFFLINE)


def _describe(repo_id: str, revision: str | None, filename: str | None = None) -> str:
    where = f"'{filename}' in " if filename else ""
    return f"{where}'{repo_id}' (revision '{revision or 'main'}') on {constants.ENDPOINT}"


def _check_repo_id(name_or_path: str) -> str:
    """A name that is not a local folder must be a valid Hub id, else it was meant as a missing folder."""
    try:
        validate_repo_id(name_or_path)
    except HFValidationError:
        raise HubError(
            f"'{name_or_path}' is not a local folder (no such directory: {os.path.abspath(name_or_path)}) "
            "and not a valid Hub repo id ('name' or 'namespace/name'). Check the path or the model id."
        ) from None
    return name_or_path


def _hub_error(exc: BaseException, repo_id: str, revision: str | None, filename: str | None = None,
               local_files_only: bool = False) -> HubError:
    """Map a huggingface_hub/transport exception raised while reading from the Hub to a HubError."""
    what = _describe(repo_id, revision, filename)
    if isinstance(exc, GatedRepoError):
        return HubError(f"'{repo_id}' is a gated repo: request access on its Hub page, then {_AUTH_HINT}.")
    if isinstance(exc, RepositoryNotFoundError):
        return HubError(f"'{repo_id}' is not a local folder, and no repository '{repo_id}' was found on "
                        f"{constants.ENDPOINT}. Check the path or the model id; if the repo is private, {_AUTH_HINT}.")
    if isinstance(exc, RevisionNotFoundError):
        return HubError(f"Revision '{revision}' was not found in '{repo_id}' on {constants.ENDPOINT}. "
                        "Check the branch, tag or commit sha.")
    if isinstance(exc, (LocalEntryNotFoundError, OfflineModeIsEnabled)):
        if local_files_only or is_offline() or isinstance(exc, OfflineModeIsEnabled):
            return HubError(f"{what} is not in the local cache and downloads are disabled "
                            f"(HF_HUB_OFFLINE=1 or local_files_only=True): {_OFFLINE_HINT}.")
        return HubError(f"Could not reach the Hub for {what} and it is not in the local cache: check the "
                        f"connection and HF_ENDPOINT, or run once online. ({exc})")
    if isinstance(exc, EntryNotFoundError):
        return HubError(f"File {what} does not exist. Check the file name and revision.")
    if isinstance(exc, HfHubHTTPError) and exc.response is not None and exc.response.status_code in (401, 403):
        return HubError(f"The Hub refused access to {what} (HTTP {exc.response.status_code}): the token is "
                        f"invalid or lacks access; {_AUTH_HINT}.")
    if isinstance(exc, _NETWORK_ERRORS):
        return HubError(f"Network error while reading {what}: {exc}. Check the connection and HF_ENDPOINT.")
    return HubError(f"Reading {what} failed: {exc}")


def resolve_file(
    name_or_path: str | os.PathLike,
    filename: str,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    token: str | bool | None = None,
    local_files_only: bool = False,
    required: bool = True,
    subfolder: str = "",
) -> str | None:
    """Path of `filename` in a local folder or a Hub repo (downloaded into the cache if needed).

    Returns None when the file does not exist and `required` is False (also when offline and not cached).
    Raises `HubError` for a missing folder, repo, revision or required file, or a refused token.
    """
    name = os.fspath(name_or_path)
    relative = f"{subfolder.strip('/')}/{filename}" if subfolder else filename
    if os.path.isdir(name):
        path = os.path.join(name, *relative.split("/"))
        if os.path.isfile(path):
            return refuse_lfs_pointer(path)
        if required:
            raise HubError(f"The local folder '{name}' has no file '{relative}'.{_interrupted_save_hint(name)}")
        return None
    repo_id = _check_repo_id(name)
    try:
        path = hf_hub_download(repo_id, relative, revision=revision, cache_dir=cache_dir, token=token,
                               local_files_only=local_files_only)
    except (LocalEntryNotFoundError, OfflineModeIsEnabled) as e:
        if not required:
            logger.debug("Optional file %s is not cached and the Hub is not used: skipped", relative)
            return None
        raise _hub_error(e, repo_id, revision, relative, local_files_only) from e
    except EntryNotFoundError as e:  # remote: the revision has no such file
        if not required:
            return None
        raise _hub_error(e, repo_id, revision, relative) from e
    except (HfHubHTTPError, OSError, *_NETWORK_ERRORS) as e:
        raise _hub_error(e, repo_id, revision, relative) from e
    logger.debug("Resolved %s from %s (revision %s): %s", relative, repo_id, revision or "main", path)
    return refuse_lfs_pointer(path)


def refuse_lfs_pointer(path: str) -> str:
    """`path`, unless the file is a Git LFS pointer (a clone made without git-lfs holds these small text
    files in place of weights, configs and tokenizers): then a HubError that says how to get the file."""
    if os.path.getsize(path) <= _LFS_POINTER_MAX_BYTES:
        with open(path, "rb") as handle:
            if handle.read(len(_LFS_POINTER_START)) == _LFS_POINTER_START:
                raise HubError(
                    f"{path} is a Git LFS pointer, not the file: run `git lfs pull` in the clone, or download "
                    "the repository with huggingface_hub (`hf download REPO_ID --local-dir FOLDER`)."
                )
    return path


def list_repo_files(
    name_or_path: str | os.PathLike,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
) -> list[str]:
    """Sorted relative paths ('/'-separated) of a local folder's files or of a Hub revision.

    Offline (HF_HUB_OFFLINE=1 or `local_files_only`), a Hub repo lists the files of its cached snapshot.
    """
    name = os.fspath(name_or_path)
    if os.path.isdir(name):
        return sorted(_walk(name))
    repo_id = _check_repo_id(name)
    if local_files_only or is_offline():
        return _cached_files(repo_id, revision, cache_dir)
    try:
        return sorted(_api().list_repo_files(repo_id, revision=revision, token=token))
    except (HfHubHTTPError, OSError, *_NETWORK_ERRORS) as e:
        raise _hub_error(e, repo_id, revision) from e


def _interrupted_save_hint(folder: str) -> str:
    """A sentence for a missing file when a save into `folder` was killed after its commit point."""
    if not any(entry.startswith(COMMIT_PREFIX) for entry in os.listdir(folder)):
        return ""
    return (" A save into this folder was interrupted while moving its files in: save again, or call "
            "tfformers.fileio.complete_interrupted_save(folder) to finish it.")


def _walk(folder: str) -> list[str]:
    """Relative '/'-paths of the files under `folder`, skipping .git and .cache (huggingface metadata) and
    what an interrupted save left (`.tfformers-*`: staging folders, a pending commit)."""
    out = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith(INTERNAL_PREFIX))
        rel_root = os.path.relpath(root, folder)
        for f in sorted(f for f in files if not f.startswith(INTERNAL_PREFIX)):
            out.append(f if rel_root == "." else f"{rel_root.replace(os.sep, '/')}/{f}")
    return out


def _cached_files(repo_id: str, revision: str | None, cache_dir) -> list[str]:
    """Files of the cached snapshot of `repo_id` at `revision` (a branch/tag via refs/, or a commit sha)."""
    storage = os.path.join(os.fspath(cache_dir or constants.HF_HUB_CACHE), repo_folder_name(repo_id=repo_id,
                                                                                            repo_type="model"))
    revision = revision or "main"
    commit = revision
    ref_file = os.path.join(storage, "refs", *revision.split("/"))
    if os.path.isfile(ref_file):
        with open(ref_file) as f:
            commit = f.read().strip()
    snapshot = os.path.join(storage, "snapshots", commit)
    if not os.path.isdir(snapshot):
        raise HubError(f"{_describe(repo_id, revision)} is not in the local cache and downloads are disabled "
                       f"(HF_HUB_OFFLINE=1 or local_files_only=True): {_OFFLINE_HINT}.")
    return sorted(_walk(snapshot))


def push_folder(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    token: str | bool | None = None,
    private: bool | None = None,
    commit_message: str | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    run_as_future: bool = False,
) -> CommitInfo | Future:
    """Upload every file of `folder` to `repo_id` as ONE commit (the repo is created if missing).

    `revision` names the target branch (created from main if missing); with `create_pr=True` the commit
    opens a pull request against it instead (`info.pr_revision` is ``refs/pr/N``). Returns the
    `CommitInfo`, or a `Future` of it with `run_as_future=True` (its `.result()` raises `HubError`).
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise HubError(f"Cannot push '{folder}': no such directory.")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as e:
        raise HubError(f"Cannot push to '{repo_id}': not a valid repo id ('namespace/name'). {e}") from None
    paths = _walk(folder)
    if not paths:
        raise HubError(f"Cannot push '{folder}' to '{repo_id}': the folder has no files.")
    api = _api()

    def push() -> CommitInfo:
        try:
            return _commit_folder(api, folder, paths, repo_id, token=token, private=private,
                                  commit_message=commit_message, revision=revision, create_pr=create_pr)
        except (HfHubHTTPError, LocalTokenNotFoundError, OSError, *_NETWORK_ERRORS) as e:
            raise push_error(e, repo_id, revision) from e

    return api.run_as_future(push) if run_as_future else push()


def full_repo_id(repo_id: str, *, token: str | bool | None = None) -> str:
    """`repo_id` with the token owner's namespace added when it has none (`'my-model'` -> `'user/my-model'`),
    as `push_to_hub("my-model")` means on the Hub. An id with a namespace is returned unchanged (no request)."""
    try:
        validate_repo_id(repo_id)
    except HFValidationError as e:
        raise HubError(f"Cannot push to '{repo_id}': not a valid repo id ('namespace/name'). {e}") from None
    if "/" in repo_id:
        return repo_id
    try:
        user = _api().whoami(token=token)["name"]
    except (HfHubHTTPError, LocalTokenNotFoundError, OSError, *_NETWORK_ERRORS) as e:
        raise push_error(e, repo_id, None) from e
    return f"{user}/{repo_id}"


@functools.lru_cache(maxsize=None)
def _api() -> HfApi:
    """One shared client, so pushes run with `run_as_future` execute one at a time, in order."""
    return HfApi()


def _commit_folder(api: HfApi, folder: str, paths: list[str], repo_id: str, *, token, private, commit_message,
                   revision, create_pr) -> CommitInfo:
    api.create_repo(repo_id, token=token, private=private, exist_ok=True)
    if revision and revision != "main" and not revision.startswith("refs/"):
        api.create_branch(repo_id, branch=revision, token=token, exist_ok=True)
    # create_commit (not upload_folder): with hf_xet installed, upload_folder may split a folder into
    # several commits; a model push must land as one.
    operations = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=os.path.join(folder, *p.split("/")))
                  for p in paths]
    info = api.create_commit(repo_id, operations, commit_message=commit_message or "Upload folder with tfformers",
                             revision=revision, create_pr=create_pr, token=token)
    logger.info("Pushed %d files from %s to %s: %s", len(paths), folder, repo_id, info.pr_url or info.commit_url)
    return info


def push_error(exc: BaseException, repo_id: str, revision: str | None) -> HubError:
    """Map an exception raised while pushing to a HubError."""
    target = f"'{repo_id}' (revision '{revision or 'main'}') on {constants.ENDPOINT}"
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(exc, LocalTokenNotFoundError) or status == 401:
        return HubError(f"Pushing to {target} was refused: not authorized (missing or invalid token); "
                        f"{_AUTH_HINT} with a token that has write access.")
    if status == 403:
        return HubError(f"Pushing to {target} was refused (HTTP 403): the token has no write access to this "
                        f"repo or namespace; {_AUTH_HINT} with a write token.")
    if isinstance(exc, RevisionNotFoundError):
        return HubError(f"Pushing to {target} failed: the revision does not exist. Use a branch name.")
    if isinstance(exc, RepositoryNotFoundError):
        return HubError(f"Pushing to {target} failed: the repo was not found and could not be created. "
                        f"Check the repo id and that the token may write to its namespace.")
    if isinstance(exc, OfflineModeIsEnabled):
        return HubError(f"Cannot push to {target}: HF_HUB_OFFLINE=1 disables network access. Unset it to push.")
    if isinstance(exc, _NETWORK_ERRORS):
        return HubError(f"Pushing to {target} failed: the connection to the Hub was lost ({exc}). The commit is "
                        "all-or-nothing: check the repo's latest commit, then push again.")
    if isinstance(exc, HfHubHTTPError):
        return HubError(f"Pushing to {target} failed: the Hub answered HTTP {status}: {exc}. Nothing was "
                        "committed; push again.")
    return HubError(f"Pushing to {target} failed: {exc}")
