"""A small local Hugging Face Hub for the test suite (standard library only).

The real `huggingface_hub` client downloads from and uploads to it exactly as it does with huggingface.co
(see /work/shared/HUB_PROTOCOL.md for the HTTP surface). Storage is in memory:

- a repository holds commits, each a full snapshot ``{path: file}`` whose id is a 40-hex sha1 computed from
  its content (parents, files, message, author), plus branches, tags and pull-request refs (``refs/pr/N``);
- a commit request is parsed and applied to a copy of the branch head, and only a complete, valid commit
  moves the branch pointer (under a lock): a failed or interrupted commit leaves the previous revision intact.

Failure injection for tests (each flag resets itself after one use):

- ``hub.fail_next_commit = True``: the next commit is processed half-way, then answered with HTTP 500;
- ``hub.drop_next_commit = True``: the connection is dropped while the next commit's body is being read;
- ``hub.drop_next_download = True``: the next file GET sends half of the body, then drops the connection;
- ``hub.fail_next_file_request = 503`` (any status) or ``"drop"``: the next file HEAD or GET is answered with
  that status, or its connection is closed without an answer;
- ``hub.lfs_threshold = N``: preupload answers ``"lfs"`` for files of N bytes or more (None: all "regular").

``hub.requests`` records every request (method, path, headers) for assertions.

Permissions are deliberately simple: any valid token may read every repository; a token added with
``write=True`` may write to every namespace. Private repositories answer 401/RepoNotFound without a token.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlsplit

__all__ = ["LocalHub", "CommitRecord", "RequestRecord"]

_REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
_URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
# Keywords that follow the repo id in /api/{type}s/{repo}/... URLs (used to split one-segment repo ids).
_ACTIONS = {"revision", "tree", "paths-info", "refs", "commits", "preupload", "commit", "branch", "tag"}
_GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.bin filter=lfs diff=lfs merge=lfs -text\n"
_INVALID_CREDENTIALS = "Invalid credentials in Authorization header"


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass(frozen=True)
class _File:
    """One file's content and how it is stored (regular git blob or LFS object)."""

    data: bytes
    lfs: bool = False
    git_sha1: str = field(init=False)
    sha256: str = field(init=False)

    def __post_init__(self):
        blob = b"blob %d\0" % len(self.data) + self.data
        object.__setattr__(self, "git_sha1", hashlib.sha1(blob).hexdigest())
        object.__setattr__(self, "sha256", hashlib.sha256(self.data).hexdigest())

    @property
    def pointer(self) -> bytes:
        return (
            b"version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n"
            % (self.sha256.encode(), len(self.data))
        )

    @property
    def oid(self) -> str:
        """The git blob id as the Hub reports it (for an LFS file: the id of its pointer file)."""
        if not self.lfs:
            return self.git_sha1
        return hashlib.sha1(b"blob %d\0" % len(self.pointer) + self.pointer).hexdigest()

    @property
    def etag(self) -> str:
        return self.sha256 if self.lfs else self.git_sha1


@dataclass
class _Commit:
    parents: tuple[str, ...]
    files: dict[str, _File]
    title: str
    message: str
    author: str
    date: str = field(default_factory=_now)
    sha: str = field(init=False)

    def __post_init__(self):
        canonical = {
            "parents": list(self.parents),
            "files": sorted((path, f.git_sha1, f.lfs) for path, f in self.files.items()),
            "title": self.title,
            "message": self.message,
            "author": self.author,
        }
        self.sha = hashlib.sha1(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


@dataclass
class _Repo:
    repo_type: str
    repo_id: str
    private: bool
    commits: dict[str, _Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    prs: dict[int, str] = field(default_factory=dict)
    lfs_objects: dict[str, bytes] = field(default_factory=dict)
    created_at: str = field(default_factory=_now)

    def resolve(self, revision: str) -> str | None:
        """Branch, tag, ``refs/pr/N``, ``refs/heads/x`` or a full commit sha -> commit sha (None if unknown)."""
        if revision in self.branches:
            return self.branches[revision]
        if revision.startswith("refs/heads/") and revision[11:] in self.branches:
            return self.branches[revision[11:]]
        if revision in self.tags:
            return self.tags[revision]
        if revision.startswith("refs/pr/") and revision[8:].isdigit():
            return self.prs.get(int(revision[8:]))
        if revision in self.commits:
            return revision
        return None


@dataclass(frozen=True)
class CommitRecord:
    """A commit as tests see it: newest first from `LocalHub.commits`."""

    sha: str
    title: str
    message: str
    author: str
    parents: tuple[str, ...]
    files: dict[str, bytes]


@dataclass
class RequestRecord:
    method: str
    path: str  # path and query, as sent
    headers: dict[str, str]  # lower-case names
    status: int | None = None  # the response status (None: no response, e.g. a dropped connection)


class _HttpError(Exception):
    """Raised inside handlers to answer with an error status, Hub-style headers and a JSON body."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None, body=None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code
        self.headers = headers or {}
        self.body = body


class _Dropped(Exception):
    """The handler closed the connection on purpose (failure injection): send nothing."""


class LocalHub:
    """An in-memory Hub served on 127.0.0.1 at a random port."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self._address = (host, port)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.RLock()
        self._repos: dict[tuple[str, str], _Repo] = {}
        self._tokens: dict[str, tuple[str, bool]] = {}
        self.requests: list[RequestRecord] = []
        self.fail_next_commit = False
        self.drop_next_commit = False
        self.drop_next_download = False
        self.fail_next_file_request: int | str | None = None
        self.lfs_threshold: int | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "LocalHub":
        if self._server is not None:
            return self
        handler = type("_BoundHandler", (_Handler,), {"hub": self})
        self._server = ThreadingHTTPServer(self._address, handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="LocalHub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> "LocalHub":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("LocalHub is not started: call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # ------------------------------------------------------------------ seeding and assertions
    def add_token(self, token: str, user: str = "user", *, write: bool = True) -> str:
        """Register a valid token for `user`; `write=False` makes a read-only token (403 on writes)."""
        with self._lock:
            self._tokens[token] = (user, write)
        return token

    def create_repo_with_files(
        self,
        repo_id: str,
        files: dict[str, bytes],
        *,
        repo_type: str = "model",
        private: bool = False,
        revision: str = "main",
        commit_message: str = "Upload files",
    ) -> str:
        """Create the repo (if missing) and commit `files` on `revision` (created if missing). Returns the sha."""
        with self._lock:
            repo = self._repos.get((repo_type, repo_id)) or self._create_repo(repo_type, repo_id, private, "seed")
            if revision not in repo.branches:
                repo.branches[revision] = repo.branches["main"]
            parent = repo.commits[repo.branches[revision]]
            snapshot = dict(parent.files)
            snapshot.update({path: _File(bytes(data)) for path, data in files.items()})
            commit = _Commit((parent.sha,), snapshot, commit_message, "", "seed")
            repo.commits[commit.sha] = commit
            repo.branches[revision] = commit.sha
            return commit.sha

    def commits(self, repo_id: str, revision: str = "main", *, repo_type: str = "model") -> list[CommitRecord]:
        """The history of `revision`, newest first (first parents), with each commit's full snapshot."""
        with self._lock:
            repo = self._repos[(repo_type, repo_id)]
            sha = repo.resolve(revision)
            if sha is None:
                raise KeyError(f"{repo_id} has no revision {revision!r}")
            records = []
            while sha is not None:
                c = repo.commits[sha]
                files = {path: f.data for path, f in c.files.items()}
                records.append(CommitRecord(c.sha, c.title, c.message, c.author, c.parents, files))
                sha = c.parents[0] if c.parents else None
            return records

    def files(self, repo_id: str, revision: str = "main", *, repo_type: str = "model") -> dict[str, bytes]:
        return self.commits(repo_id, revision, repo_type=repo_type)[0].files

    def branches(self, repo_id: str, *, repo_type: str = "model") -> dict[str, str]:
        with self._lock:
            return dict(self._repos[(repo_type, repo_id)].branches)

    def pull_requests(self, repo_id: str, *, repo_type: str = "model") -> dict[int, str]:
        with self._lock:
            return dict(self._repos[(repo_type, repo_id)].prs)

    def repo_exists(self, repo_id: str, *, repo_type: str = "model") -> bool:
        with self._lock:
            return (repo_type, repo_id) in self._repos

    def delete_repo(self, repo_id: str, *, repo_type: str = "model") -> None:
        with self._lock:
            self._repos.pop((repo_type, repo_id), None)

    def clear_requests(self) -> None:
        self.requests.clear()

    # ------------------------------------------------------------------ internals
    def _create_repo(self, repo_type: str, repo_id: str, private: bool, user: str) -> _Repo:
        repo = _Repo(repo_type, repo_id, private)
        initial = _Commit((), {".gitattributes": _File(_GITATTRIBUTES)}, "initial commit", "", user)
        repo.commits[initial.sha] = initial
        repo.branches["main"] = initial.sha
        self._repos[(repo_type, repo_id)] = repo
        return repo

    def _repo_url(self, repo: _Repo) -> str:
        return f"{self.url}/{_URL_PREFIX[repo.repo_type]}{repo.repo_id}"


class _Handler(BaseHTTPRequestHandler):
    """Routes one request to the LocalHub (`hub` is set on a per-server subclass)."""

    hub: LocalHub
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx expects
    server_version = "LocalHub/1.0"

    def log_message(self, format, *args):  # silence the default stderr access log
        pass

    # -------------------------------------------------------------- plumbing
    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        self._record = RequestRecord(method, self.path, headers)
        self.hub.requests.append(self._record)
        self._body_read = False
        try:
            parts = urlsplit(self.path)
            segs = [unquote(s) for s in parts.path.split("/")[1:]]
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            self._route(method, segs, query)
        except _Dropped:
            self.close_connection = True
        except _HttpError as e:
            self._send_error(e)
        except Exception as e:  # a bug in the server: answer 500 rather than hang the client
            self._send_error(_HttpError(500, f"LocalHub internal error: {type(e).__name__}: {e}"))

    def handle_one_request(self):
        self._record = None  # set by _dispatch; stays None for requests http.server rejects itself
        super().handle_one_request()

    def send_response(self, code, message=None):
        if self._record is not None:
            self._record.status = code
        super().send_response(code, message)

    def _read_body(self) -> bytes:
        self._body_read = True
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _json_body(self):
        try:
            return json.loads(self._read_body() or b"{}")
        except ValueError as e:
            raise _HttpError(400, f"Request body is not valid JSON: {e}") from e

    def _drop(self, send_bytes: bytes = b"") -> None:
        """Close the connection abruptly (after writing `send_bytes`), as a network failure would."""
        try:
            if send_bytes:
                self.wfile.write(send_bytes)
                self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        raise _Dropped()

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, content_type="application/json"):
        if not self._body_read and self.command in ("POST", "PUT", "DELETE"):
            self._read_body()  # drain, so the keep-alive connection stays in sync
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, str(value))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _send_json(self, obj, status: int = 200, headers: dict | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers)

    def _send_error(self, e: _HttpError) -> None:
        headers = dict(e.headers)
        safe_message = e.message.replace("\r", " ").replace("\n", " ").encode("latin-1", "replace").decode("latin-1")
        headers["X-Error-Message"] = safe_message
        if e.code:
            headers["X-Error-Code"] = e.code
        body = e.body if e.body is not None else {"error": e.message}
        try:
            self._send_json(body, e.status, headers)
        except OSError:
            self.close_connection = True

    # -------------------------------------------------------------- auth
    def _user(self) -> tuple[str, bool] | None:
        """(user, can_write) for a valid token, None without one; 401 for a token the Hub does not know."""
        auth = self.headers.get("Authorization")
        if not auth:
            return None
        token = auth[7:] if auth.lower().startswith("bearer ") else auth
        with self.hub._lock:
            found = self.hub._tokens.get(token.strip())
        if found is None:
            raise _HttpError(401, _INVALID_CREDENTIALS)
        return found

    def _writer(self) -> str:
        user = self._user()
        if user is None:
            raise _HttpError(401, "You must be authenticated (send a token with write access) to write to the Hub")
        if not user[1]:
            raise _HttpError(403, "You don't have the rights to write with this token (read-only)")
        return user[0]

    def _repo(self, repo_type: str, repo_id: str) -> _Repo:
        """The repo, readable by the caller; Hub-style RepoNotFound otherwise."""
        user = self._user()
        with self.hub._lock:
            repo = self.hub._repos.get((repo_type, repo_id))
        if repo is None:
            raise _HttpError(404, "Repository not found", "RepoNotFound")
        if repo.private and user is None:
            raise _HttpError(401, "Repository not found", "RepoNotFound")
        return repo

    def _resolve(self, repo: _Repo, revision: str) -> str:
        sha = repo.resolve(revision)
        if sha is None:
            raise _HttpError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return sha

    # -------------------------------------------------------------- routing
    def _route(self, method: str, segs: list[str], query: dict) -> None:
        if segs and segs[0] == "api":
            return self._route_api(method, segs[1:], query)
        if method == "PUT" and segs[:1] == ["lfs-upload"] and len(segs) == 4:
            return self._lfs_put(segs[1], segs[2], segs[3])
        repo_type = "model"
        if segs and segs[0] in ("datasets", "spaces"):
            repo_type, segs = _REPO_TYPES[segs[0]], segs[1:]
        if method == "POST":
            for i in (1, 0):
                if len(segs) > i and segs[i].endswith(".git") and segs[i + 1 :] == ["info", "lfs", "objects", "batch"]:
                    repo_id = "/".join(segs[:i] + [segs[i][:-4]])
                    return self._lfs_batch(repo_type, repo_id)
        if method in ("GET", "HEAD"):
            if len(segs) >= 4 and segs[2] == "resolve":
                return self._resolve_file(repo_type, f"{segs[0]}/{segs[1]}", segs[3], "/".join(segs[4:]))
            if len(segs) >= 3 and segs[1] == "resolve":
                return self._resolve_file(repo_type, segs[0], segs[2], "/".join(segs[3:]))
        raise _HttpError(404, f"Not Found: {method} {self.path}")

    def _route_api(self, method: str, segs: list[str], query: dict) -> None:
        head = segs[0] if segs else ""
        if head == "whoami-v2" and method == "GET":
            return self._whoami()
        if head == "repos" and segs[1:] == ["create"] and method == "POST":
            return self._create_repo()
        if head == "repos" and segs[1:] == ["delete"] and method == "DELETE":
            return self._delete_repo()
        if head == "validate-yaml" and method == "POST":
            self._json_body()
            return self._send_json({"errors": [], "warnings": []})
        if head not in _REPO_TYPES or len(segs) < 2:
            raise _HttpError(404, f"Not Found: {method} {self.path}")  # includes /api/agent-harnesses
        repo_type = _REPO_TYPES[head]
        repo_id, rest = self._split_repo_id(repo_type, segs[1:])
        action = rest[0] if rest else ""
        arg = rest[1] if len(rest) > 1 else None
        if method == "GET" and action == "":
            return self._repo_info(repo_type, repo_id, "main")
        if method == "GET" and action == "revision" and arg is not None:
            return self._repo_info(repo_type, repo_id, arg)
        if method == "GET" and action == "tree" and arg is not None:
            return self._tree(repo_type, repo_id, arg, "/".join(rest[2:]), query)
        if method == "POST" and action == "paths-info" and arg is not None:
            return self._paths_info(repo_type, repo_id, arg)
        if method == "GET" and action == "refs":
            return self._refs(repo_type, repo_id, query)
        if method == "GET" and action == "commits" and arg is not None:
            return self._list_commits(repo_type, repo_id, arg)
        if method == "POST" and action == "preupload" and arg is not None:
            return self._preupload(repo_type, repo_id, arg)
        if method == "POST" and action == "commit" and arg is not None:
            return self._commit(repo_type, repo_id, arg, query)
        if action == "branch" and arg is not None and method in ("POST", "DELETE"):
            return self._branch(method, repo_type, repo_id, arg)
        if action == "tag" and arg is not None and method in ("POST", "DELETE"):
            return self._tag(method, repo_type, repo_id, arg)
        raise _HttpError(404, f"Not Found: {method} {self.path}")

    def _split_repo_id(self, repo_type: str, rest: list[str]) -> tuple[str, list[str]]:
        """`ns/name/...` or canonical `name/...` -> (repo_id, remaining segments)."""
        with self.hub._lock:
            if len(rest) >= 2 and (repo_type, f"{rest[0]}/{rest[1]}") in self.hub._repos:
                return f"{rest[0]}/{rest[1]}", rest[2:]
            if (repo_type, rest[0]) in self.hub._repos:
                return rest[0], rest[1:]
        if len(rest) >= 2 and rest[1] not in _ACTIONS:
            return f"{rest[0]}/{rest[1]}", rest[2:]
        return rest[0], rest[1:]

    # -------------------------------------------------------------- account and repos
    def _whoami(self) -> None:
        user = self._user()
        if user is None:
            raise _HttpError(401, _INVALID_CREDENTIALS)
        name, write = user
        role = "write" if write else "read"
        access_token = {"displayName": "local", "role": role}
        self._send_json({"type": "user", "id": name, "name": name, "fullname": name, "email": None, "orgs": [],
                         "auth": {"type": "access_token", "accessToken": access_token}})

    def _create_repo(self) -> None:
        user = self._writer()
        body = self._json_body()
        name, org = body.get("name"), body.get("organization")
        repo_type = body.get("type") or "model"
        if not name or repo_type not in _URL_PREFIX:
            raise _HttpError(400, "Invalid repo name or type")
        repo_id = f"{org or user}/{name}"
        private = body.get("visibility") == "private" or bool(body.get("private"))
        with self.hub._lock:
            existing = self.hub._repos.get((repo_type, repo_id))
            if existing is None:
                repo = self.hub._create_repo(repo_type, repo_id, private, user)
        if existing is not None:
            url = self.hub._repo_url(existing)
            raise _HttpError(409, f"You already created this {repo_type} repo", body={
                "error": f"You already created this {repo_type} repo", "url": url})
        self._send_json({"url": self.hub._repo_url(repo), "name": repo_id, "id": repo_id})

    def _delete_repo(self) -> None:
        user = self._writer()
        body = self._json_body()
        repo_id = f"{body.get('organization') or user}/{body.get('name')}"
        with self.hub._lock:
            if self.hub._repos.pop((body.get("type") or "model", repo_id), None) is None:
                raise _HttpError(404, "Repository not found", "RepoNotFound")
        self._send_json({})

    def _repo_info(self, repo_type: str, repo_id: str, revision: str) -> None:
        repo = self._repo(repo_type, repo_id)
        with self.hub._lock:
            commit = repo.commits[self._resolve(repo, revision)]
        siblings = []
        for path, f in sorted(commit.files.items()):
            sibling = {"rfilename": path, "size": len(f.data), "blobId": f.oid}
            if f.lfs:
                sibling["lfs"] = {"sha256": f.sha256, "size": len(f.data), "pointerSize": len(f.pointer)}
            siblings.append(sibling)
        namespace = repo_id.split("/")[0] if "/" in repo_id else None
        self._send_json({
            "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24], "id": repo_id, "modelId": repo_id,
            "author": namespace, "sha": commit.sha, "lastModified": commit.date, "createdAt": repo.created_at,
            "private": repo.private, "disabled": False, "gated": False, "downloads": 0, "likes": 0,
            "tags": [], "siblings": siblings,
        })

    # -------------------------------------------------------------- listing
    def _entries(self, commit: _Commit, prefix: str, recursive: bool) -> list[dict]:
        files = commit.files
        if prefix and prefix not in files and not any(p.startswith(prefix + "/") for p in files):
            raise _HttpError(404, f"{prefix} does not exist on this revision", "EntryNotFound",
                             {"X-Repo-Commit": commit.sha})
        base = prefix + "/" if prefix else ""
        dirs, out = set(), []
        for path in sorted(files):
            if not path.startswith(base):
                continue
            parts = path[len(base) :].split("/")
            for depth in range(1, len(parts)):
                if recursive or depth == 1:
                    dirs.add(base + "/".join(parts[:depth]))
            if recursive or len(parts) == 1:
                out.append(self._file_entry(path, files[path]))
        for d in sorted(dirs):
            out.append({"type": "directory", "path": d, "oid": hashlib.sha1(f"{commit.sha}:{d}".encode()).hexdigest(),
                        "size": 0})
        return out

    @staticmethod
    def _file_entry(path: str, f: _File) -> dict:
        entry = {"type": "file", "path": path, "size": len(f.data), "oid": f.oid}
        if f.lfs:
            entry["lfs"] = {"oid": f.sha256, "size": len(f.data), "pointerSize": len(f.pointer)}
        return entry

    def _tree(self, repo_type: str, repo_id: str, revision: str, path: str, query: dict) -> None:
        repo = self._repo(repo_type, repo_id)
        with self.hub._lock:
            commit = repo.commits[self._resolve(repo, revision)]
        recursive = query.get("recursive", "false").lower() in ("1", "true")
        self._send_json(self._entries(commit, path.strip("/"), recursive))

    def _paths_info(self, repo_type: str, repo_id: str, revision: str) -> None:
        repo = self._repo(repo_type, repo_id)
        raw = self._read_body()
        if self.headers.get("Content-Type", "").startswith("application/json"):
            paths = json.loads(raw or b"{}").get("paths", [])
        else:
            paths = parse_qs(raw.decode()).get("paths", [])
        with self.hub._lock:
            commit = repo.commits[self._resolve(repo, revision)]
        out = []
        for p in paths:
            p = p.strip("/")
            if p in commit.files:
                out.append(self._file_entry(p, commit.files[p]))
            elif any(q.startswith(p + "/") for q in commit.files):
                out.append({"type": "directory", "path": p, "oid": hashlib.sha1(p.encode()).hexdigest()})
        self._send_json(out)

    def _refs(self, repo_type: str, repo_id: str, query: dict) -> None:
        repo = self._repo(repo_type, repo_id)
        with self.hub._lock:
            data = {
                "branches": [
                    {"name": b, "ref": f"refs/heads/{b}", "targetCommit": s} for b, s in repo.branches.items()
                ],
                "tags": [{"name": t, "ref": f"refs/tags/{t}", "targetCommit": s} for t, s in repo.tags.items()],
                "converts": [],
            }
            if query.get("include_prs") in ("1", "true", "True"):
                data["pullRequests"] = [
                    {"name": f"refs/pr/{n}", "ref": f"refs/pr/{n}", "targetCommit": s} for n, s in repo.prs.items()
                ]
        self._send_json(data)

    def _list_commits(self, repo_type: str, repo_id: str, revision: str) -> None:
        repo = self._repo(repo_type, repo_id)
        items = []
        with self.hub._lock:
            sha = self._resolve(repo, revision)
            while sha is not None:
                c = repo.commits[sha]
                items.append({"id": c.sha, "title": c.title, "message": c.message, "date": c.date,
                              "authors": [{"user": c.author}]})
                sha = c.parents[0] if c.parents else None
        self._send_json(items)

    # -------------------------------------------------------------- downloads
    def _resolve_file(self, repo_type: str, repo_id: str, revision: str, path: str) -> None:
        failure, self.hub.fail_next_file_request = self.hub.fail_next_file_request, None
        if failure == "drop":
            self._drop()
        if failure is not None:
            raise _HttpError(failure, f"Injected failure (HTTP {failure})")
        repo = self._repo(repo_type, repo_id)
        with self.hub._lock:
            sha = self._resolve(repo, revision)
            f = repo.commits[sha].files.get(path)
        if f is None:
            raise _HttpError(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": sha})
        headers = {"X-Repo-Commit": sha, "ETag": f'"{f.etag}"', "Accept-Ranges": "bytes"}
        if f.lfs:
            headers.update({"X-Linked-Etag": f'"{f.sha256}"', "X-Linked-Size": len(f.data)})
        data, status = f.data, 200
        range_header = self.headers.get("Range")
        if range_header:
            start, end = self._parse_range(range_header, len(data))
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            data, status = data[start : end + 1], 206
        if self.command == "GET" and self.hub.drop_next_download and len(data) > 1:
            self.hub.drop_next_download = False
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, str(value))
            self.end_headers()
            self._drop(data[: len(data) // 2])
        self._send(status, data, headers, content_type="application/octet-stream")

    @staticmethod
    def _parse_range(value: str, total: int) -> tuple[int, int]:
        """`bytes=a-b`, `bytes=a-` or `bytes=-n` -> inclusive (start, end); 416 when unsatisfiable."""
        unsatisfiable = _HttpError(416, f"Requested range not satisfiable: {value}", headers={
            "Content-Range": f"bytes */{total}"})
        unit, _, spec = value.partition("=")
        if unit.strip() != "bytes" or "," in spec or "-" not in spec:
            raise unsatisfiable
        first, last = (s.strip() for s in spec.split("-", 1))
        try:
            if first == "":
                start, end = max(total - int(last), 0), total - 1
            else:
                start = int(first)
                end = min(int(last), total - 1) if last else total - 1
        except ValueError:
            raise unsatisfiable from None
        if start >= total or start > end:
            raise unsatisfiable
        return start, end

    # -------------------------------------------------------------- uploads
    def _preupload(self, repo_type: str, repo_id: str, revision: str) -> None:
        self._writer()
        repo = self._repo(repo_type, repo_id)
        body = self._json_body()
        with self.hub._lock:
            commit = repo.commits[self._resolve(repo, revision)]
        threshold = self.hub.lfs_threshold
        out = []
        for item in body.get("files", []):
            mode = "lfs" if threshold is not None and int(item.get("size", 0)) >= threshold else "regular"
            existing = commit.files.get(item["path"])
            oid = None
            if existing is not None:  # lets the client skip unchanged files, as the Hub does
                oid = existing.sha256 if mode == "lfs" else existing.git_sha1
            out.append({"path": item["path"], "uploadMode": mode, "shouldIgnore": False, "oid": oid})
        self._send_json({"files": out, "commitOid": commit.sha})

    def _lfs_batch(self, repo_type: str, repo_id: str) -> None:
        self._writer()
        repo = self._repo(repo_type, repo_id)
        body = self._json_body()
        if body.get("operation") != "upload":
            raise _HttpError(400, "Only the 'upload' operation is supported")
        objects = []
        for obj in body.get("objects", []):
            entry = {"oid": obj["oid"], "size": int(obj["size"]), "authenticated": True}
            with self.hub._lock:
                stored = obj["oid"] in repo.lfs_objects
            if not stored:
                href = f"{self.hub.url}/lfs-upload/{repo_type}/{quote(repo_id, safe='')}/{obj['oid']}"
                entry["actions"] = {"upload": {"href": href}}
            objects.append(entry)
        self._send(200, json.dumps({"transfer": "basic", "objects": objects}).encode(),
                   content_type="application/vnd.git-lfs+json")

    def _lfs_put(self, repo_type: str, repo_id: str, oid: str) -> None:
        data = self._read_body()
        if hashlib.sha256(data).hexdigest() != oid:
            raise _HttpError(400, f"LFS object content does not match its oid {oid}")
        with self.hub._lock:
            repo = self.hub._repos.get((repo_type, repo_id))
            if repo is None:
                raise _HttpError(404, "Repository not found", "RepoNotFound")
            repo.lfs_objects[oid] = data
        self._send(200, b"", content_type="text/plain")

    def _commit(self, repo_type: str, repo_id: str, revision: str, query: dict) -> None:
        user = self._writer()
        repo = self._repo(repo_type, repo_id)
        if self.hub.drop_next_commit:
            self.hub.drop_next_commit = False
            length = int(self.headers.get("Content-Length") or 2)
            self.rfile.read(max(length // 2, 1))
            self._drop()
        try:
            lines = [json.loads(line) for line in self._read_body().splitlines() if line.strip()]
        except ValueError as e:
            raise _HttpError(400, f"Commit body is not valid NDJSON: {e}") from e
        header = next((item["value"] for item in lines if item.get("key") == "header"), None)
        if header is None or not header.get("summary"):
            raise _HttpError(400, "Commit header with a summary is required")
        ops = [item for item in lines if item.get("key") != "header"]
        create_pr = query.get("create_pr") in ("1", "true", "True")
        fail = self.hub.fail_next_commit
        self.hub.fail_next_commit = False
        with self.hub._lock:
            base_sha, target = self._commit_target(repo, revision, create_pr)
            parent_commit = header.get("parentCommit")
            if parent_commit and parent_commit != base_sha:
                raise _HttpError(412, f"A commit has happened since {parent_commit}. Please refresh and try again.")
            files = dict(repo.commits[base_sha].files)  # the new revision is built on a copy
            for i, op in enumerate(ops):
                if fail and i >= len(ops) // 2:
                    raise _HttpError(500, "Injected failure: the commit failed mid-way (nothing was committed)")
                self._apply(repo, files, op)
            commit = _Commit((base_sha,), files, header["summary"], header.get("description") or "", user)
            repo.commits[commit.sha] = commit
            # The single switch that makes the commit visible.
            if target[0] == "branch":
                repo.branches[target[1]] = commit.sha
            else:
                repo.prs[target[1]] = commit.sha
        prefix = f"{self.hub.url}/{_URL_PREFIX[repo_type]}{repo_id}"
        response = {"success": True, "commitOid": commit.sha, "commitUrl": f"{prefix}/commit/{commit.sha}",
                    "hookOutput": ""}
        if create_pr:
            response["pullRequestUrl"] = f"{prefix}/discussions/{target[1]}"
        self._send_json(response)

    def _commit_target(self, repo: _Repo, revision: str, create_pr: bool) -> tuple[str, tuple[str, object]]:
        """(base commit sha, ("branch", name) | ("pr", number)); a new PR number when `create_pr`."""
        if revision.startswith("refs/pr/") and revision[8:].isdigit() and int(revision[8:]) in repo.prs:
            return repo.prs[int(revision[8:])], ("pr", int(revision[8:]))
        branch = revision[11:] if revision.startswith("refs/heads/") else revision
        if branch not in repo.branches:
            if repo.resolve(revision) is not None:
                raise _HttpError(400, f"Cannot commit to '{revision}': it is not a branch")
            raise _HttpError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        if create_pr:
            return repo.branches[branch], ("pr", max(repo.prs, default=0) + 1)  # set only on success
        return repo.branches[branch], ("branch", branch)

    @staticmethod
    def _apply(repo: _Repo, files: dict[str, _File], op: dict) -> None:
        key, value = op.get("key"), op.get("value") or {}
        path = str(value.get("path", "")).strip("/")
        if not path:
            raise _HttpError(400, f"Commit operation without a path: {op}")
        if key == "file":
            content = value.get("content", "")
            data = base64.b64decode(content) if value.get("encoding") == "base64" else content.encode()
            files[path] = _File(data)
        elif key == "lfsFile":
            data = repo.lfs_objects.get(value.get("oid"))
            if data is None:
                raise _HttpError(400, f"LFS object {value.get('oid')} for '{path}' was never uploaded")
            files[path] = _File(data, lfs=True)
        elif key == "deletedFile":
            if files.pop(path, None) is None:
                raise _HttpError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
        elif key == "deletedFolder":
            doomed = [p for p in files if p.startswith(path + "/")]
            if not doomed:
                raise _HttpError(404, f"A folder with this name doesn't exist: {path}", "EntryNotFound")
            for p in doomed:
                del files[p]
        else:
            raise _HttpError(400, f"Unknown commit operation: {key!r}")

    def _branch(self, method: str, repo_type: str, repo_id: str, branch: str) -> None:
        self._writer()
        repo = self._repo(repo_type, repo_id)
        body = self._json_body()
        with self.hub._lock:
            if method == "DELETE":
                if branch not in repo.branches:
                    raise _HttpError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
                if branch == "main":
                    raise _HttpError(403, "Cannot delete the default branch")
                del repo.branches[branch]
            else:
                if branch in repo.branches:
                    raise _HttpError(409, f"Reference already exists: refs/heads/{branch}")
                repo.branches[branch] = self._resolve(repo, body.get("startingPoint") or "main")
        self._send_json({})

    def _tag(self, method: str, repo_type: str, repo_id: str, arg: str) -> None:
        self._writer()
        repo = self._repo(repo_type, repo_id)
        body = self._json_body()
        with self.hub._lock:
            if method == "DELETE":
                if repo.tags.pop(arg, None) is None:
                    raise _HttpError(404, f"Invalid rev id: {arg}", "RevisionNotFound")
            else:  # POST /tag/{revision} {"tag": name}
                tag = body.get("tag")
                if not tag or tag in repo.tags:
                    raise _HttpError(409, f"Tag '{tag}' already exists or is empty")
                repo.tags[tag] = self._resolve(repo, arg)
        self._send_json({})


if __name__ == "__main__":  # python tests/hub_server.py -> serve until Ctrl-C, handy for manual checks
    with LocalHub() as hub:
        hub.add_token("hf_local", "user")
        print(f"LocalHub at {hub.url} (token hf_local)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
