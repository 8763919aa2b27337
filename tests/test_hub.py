"""tfformers.hub against the LocalHub (tests/hub_server.py), driven by the real huggingface_hub client."""

import json
import os
import socket
import subprocess
import sys
import textwrap
import urllib.request
from concurrent.futures import Future

import pytest

from tfformers.errors import HubError
from tfformers.hub import list_repo_files, push_folder, resolve_file


def _write(folder, files):
    """Write {relative path: bytes} under `folder`; return the folder."""
    for rel, data in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return folder


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CONFIG_V1 = b'{"model_type": "bert", "hidden_size": 32}'
CONFIG_V2 = b'{"model_type": "bert", "hidden_size": 64}'


@pytest.fixture
def pushed(tmp_path, hub, hub_repo_id):
    """A repo with one pushed commit (config.json, README.md with metadata, nested file)."""
    files = {
        "config.json": CONFIG_V1,
        "README.md": b"---\nlicense: apache-2.0\nlibrary_name: tfformers\n---\n# Model\n",
        "nested/vocab.txt": b"[PAD]\n[UNK]\nhello\n",
    }
    info = push_folder(_write(tmp_path / "v1", files), hub_repo_id, commit_message="first push")
    return hub_repo_id, info, files


# --------------------------------------------------------------------------------------------- push + resolve
def test_push_then_resolve_by_repo_id_gives_identical_bytes(pushed, hub):
    repo_id, info, files = pushed
    assert info.oid == hub.commits(repo_id)[0].sha
    assert hub.commits(repo_id)[0].title == "first push"
    for rel, data in files.items():
        path = resolve_file(repo_id, rel)
        assert _read(path) == data
        assert info.oid in path  # served from the snapshot of that exact commit
    # README.md metadata is validated by the Hub before the commit, as on huggingface.co
    assert any(r.path == "/api/validate-yaml" for r in hub.requests)


def test_push_is_one_commit_and_a_second_push_is_a_second_commit(pushed, hub, tmp_path):
    repo_id, first, _ = pushed
    second = push_folder(_write(tmp_path / "v2", {"config.json": CONFIG_V2}), repo_id, commit_message="second")
    history = hub.commits(repo_id)
    assert [c.sha for c in history[:2]] == [second.oid, first.oid]
    assert history[0].parents == (first.oid,)
    assert len(history) == 3  # the repo's initial commit (.gitattributes) + one per push
    assert _read(resolve_file(repo_id, "config.json")) == CONFIG_V2
    # the first revision is still reachable by its commit sha, unchanged
    assert _read(resolve_file(repo_id, "config.json", revision=first.oid)) == CONFIG_V1
    # files not in the second folder are kept (push adds/overwrites, never deletes)
    assert _read(resolve_file(repo_id, "nested/vocab.txt")) == b"[PAD]\n[UNK]\nhello\n"


def test_push_leaves_out_what_an_interrupted_save_left(tmp_path, hub, hub_repo_id):
    folder = _write(tmp_path / "model", {"config.json": CONFIG_V1, ".tfformers-staging-x1/config.json": CONFIG_V2})
    push_folder(folder, hub_repo_id)
    assert list_repo_files(hub_repo_id) == [".gitattributes", "config.json"]


def test_push_to_a_new_branch_creates_it_and_leaves_main_alone(pushed, hub, tmp_path):
    repo_id, first, _ = pushed
    info = push_folder(_write(tmp_path / "dev", {"config.json": CONFIG_V2}), repo_id, revision="dev")
    assert hub.branches(repo_id)["dev"] == info.oid
    assert hub.branches(repo_id)["main"] == first.oid
    assert _read(resolve_file(repo_id, "config.json", revision="dev")) == CONFIG_V2
    assert _read(resolve_file(repo_id, "config.json")) == CONFIG_V1
    # pushing to the existing branch again works (create_branch exist_ok) and moves only that branch
    again = push_folder(_write(tmp_path / "dev2", {"extra.txt": b"x"}), repo_id, revision="dev")
    assert hub.commits(repo_id, "dev")[0].sha == again.oid
    assert hub.commits(repo_id, "dev")[1].sha == info.oid


def test_create_pr_opens_a_pull_request_ref(pushed, hub, tmp_path):
    repo_id, first, _ = pushed
    info = push_folder(_write(tmp_path / "pr", {"config.json": CONFIG_V2}), repo_id, create_pr=True)
    assert info.pr_revision == "refs/pr/1" and info.pr_num == 1
    assert hub.pull_requests(repo_id) == {1: info.oid}
    assert hub.branches(repo_id)["main"] == first.oid
    assert _read(resolve_file(repo_id, "config.json", revision="refs/pr/1")) == CONFIG_V2
    assert _read(resolve_file(repo_id, "config.json")) == CONFIG_V1


def test_run_as_future_returns_a_future_of_the_commit(tmp_path, hub, hub_repo_id):
    future = push_folder(_write(tmp_path, {"config.json": CONFIG_V1}), hub_repo_id, run_as_future=True)
    assert isinstance(future, Future)
    info = future.result(timeout=30)
    assert info.oid == hub.branches(hub_repo_id)["main"]
    bad = push_folder(tmp_path, hub_repo_id, token="bad", run_as_future=True)
    with pytest.raises(HubError, match="not authorized"):
        bad.result(timeout=30)


def test_private_repo_needs_a_token_to_read(tmp_path, hub, hub_repo_id, monkeypatch):
    push_folder(_write(tmp_path, {"config.json": CONFIG_V1}), hub_repo_id, private=True)
    assert _read(resolve_file(hub_repo_id, "config.json")) == CONFIG_V1
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(HubError, match="token=") as e:
        resolve_file(hub_repo_id, "generation_config.json", cache_dir=tmp_path / "fresh-cache")
    assert hub_repo_id in str(e.value)


# ------------------------------------------------------------------------------------------------- errors
def test_missing_repo_names_the_repo(hub):
    with pytest.raises(HubError, match="tfformers-tester/does-not-exist") as e:
        resolve_file("tfformers-tester/does-not-exist", "config.json")
    assert "not a local folder" in str(e.value) and "was found" in str(e.value) and "token=" in str(e.value)


def test_read_with_an_invalid_token_is_refused(pushed, tmp_path):
    repo_id, _, _ = pushed
    with pytest.raises(HubError, match="token") as e:
        resolve_file(repo_id, "config.json", token="bad", cache_dir=tmp_path / "fresh-cache")
    assert "401" in str(e.value) and repo_id in str(e.value)


def test_missing_revision_names_repo_and_revision(pushed):
    repo_id, _, _ = pushed
    with pytest.raises(HubError, match="no-such-branch") as e:
        resolve_file(repo_id, "config.json", revision="no-such-branch")
    assert repo_id in str(e.value)


def test_missing_file_names_file_repo_and_revision_and_optional_gives_none(pushed):
    repo_id, _, _ = pushed
    with pytest.raises(HubError, match="model.safetensors") as e:
        resolve_file(repo_id, "model.safetensors")
    assert repo_id in str(e.value) and "main" in str(e.value)
    assert resolve_file(repo_id, "generation_config.json", required=False) is None


def test_path_that_is_neither_folder_nor_repo_id():
    with pytest.raises(HubError, match="not a local folder") as e:
        resolve_file("./missing/dir", "config.json")
    assert "./missing/dir" in str(e.value)


def test_local_folder_is_used_without_the_hub(tmp_path, hub):
    _write(tmp_path, {"config.json": CONFIG_V1, "sub/tokenizer.json": b"{}"})
    hub.clear_requests()
    assert resolve_file(tmp_path, "config.json") == str(tmp_path / "config.json")
    assert resolve_file(tmp_path, "tokenizer.json", subfolder="sub") == str(tmp_path / "sub" / "tokenizer.json")
    assert resolve_file(tmp_path, "vocab.txt", required=False) is None
    with pytest.raises(HubError, match="vocab.txt"):
        resolve_file(tmp_path, "vocab.txt")
    assert list_repo_files(tmp_path) == ["config.json", "sub/tokenizer.json"]
    assert hub.requests == []


def test_write_with_an_invalid_token_is_refused(tmp_path, hub, hub_repo_id):
    with pytest.raises(HubError, match="not authorized") as e:
        push_folder(_write(tmp_path, {"config.json": CONFIG_V1}), hub_repo_id, token="bad")
    assert hub_repo_id in str(e.value) and "HF_TOKEN" in str(e.value)
    assert not hub.repo_exists(hub_repo_id)


def test_write_without_a_token_is_refused_even_to_an_existing_repo(pushed, tmp_path, hub, monkeypatch):
    repo_id, first, _ = pushed
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(HubError, match="not authorized"):
        push_folder(_write(tmp_path / "v2", {"config.json": CONFIG_V2}), repo_id)
    assert hub.branches(repo_id)["main"] == first.oid


def test_write_with_a_read_only_token_is_refused(tmp_path, hub, hub_repo_id):
    hub.add_token("hf_read_only", user="reader", write=False)
    with pytest.raises(HubError, match="write"):
        push_folder(_write(tmp_path, {"config.json": CONFIG_V1}), hub_repo_id, token="hf_read_only")
    assert not hub.repo_exists(hub_repo_id)


# --------------------------------------------------------------------------------------- failed pushes
@pytest.mark.parametrize("failure, message", [("fail_next_commit", "HTTP 500"), ("drop_next_commit", "connection")])
def test_failed_push_leaves_the_previous_revision_intact(pushed, tmp_path, hub, failure, message):
    repo_id, first, files = pushed
    setattr(hub, failure, True)
    v2 = _write(tmp_path / "v2", {"config.json": CONFIG_V2, "model.safetensors": b"\0" * 4096})
    with pytest.raises(HubError, match=message) as e:
        push_folder(v2, repo_id)
    assert repo_id in str(e.value)
    assert getattr(hub, failure) is False  # the injected failure did happen
    assert [c.sha for c in hub.commits(repo_id)][:1] == [first.oid]
    assert hub.files(repo_id) == {**{".gitattributes": hub.files(repo_id)[".gitattributes"]}, **files}
    # loadable and unchanged, also from an empty cache
    fresh = tmp_path / "fresh-cache"
    assert _read(resolve_file(repo_id, "config.json", cache_dir=fresh)) == CONFIG_V1
    assert resolve_file(repo_id, "model.safetensors", cache_dir=fresh, required=False) is None
    # and the next push goes through
    info = push_folder(v2, repo_id)
    assert info.oid == hub.branches(repo_id)["main"] != first.oid
    assert _read(resolve_file(repo_id, "config.json", cache_dir=fresh)) == CONFIG_V2


# ------------------------------------------------------------------------------------ downloads, cache
def test_sharded_checkpoint_downloads_every_shard_from_one_snapshot(tmp_path, hub, hub_repo_id):
    shards = {f"model-0000{i}-of-00003.safetensors": os.urandom(3000 + i) for i in (1, 2, 3)}
    index = {"metadata": {"total_size": sum(map(len, shards.values()))},
             "weight_map": {f"layer.{i}.weight": name for i, name in enumerate(sorted(shards))}}
    files = {"config.json": CONFIG_V1, "model.safetensors.index.json": json.dumps(index).encode(), **shards}
    info = push_folder(_write(tmp_path / "repo", files), hub_repo_id)
    assert list_repo_files(hub_repo_id) == sorted([".gitattributes", *files])
    index_path = resolve_file(hub_repo_id, "model.safetensors.index.json")
    weight_map = json.loads(_read(index_path))["weight_map"]
    paths = {name: resolve_file(hub_repo_id, name) for name in sorted(set(weight_map.values()))}
    assert {name: _read(p) for name, p in paths.items()} == shards
    assert {os.path.dirname(p) for p in [index_path, *paths.values()]} == {os.path.dirname(index_path)}
    assert info.oid in index_path


def test_repo_with_only_pytorch_bin_is_listed(hub, hub_repo_id):
    hub.create_repo_with_files(hub_repo_id, {"config.json": CONFIG_V1, "pytorch_model.bin": b"PK\3\4"})
    assert list_repo_files(hub_repo_id) == [".gitattributes", "config.json", "pytorch_model.bin"]
    with pytest.raises(HubError, match="no-branch"):
        list_repo_files(hub_repo_id, revision="no-branch")


def test_interrupted_download_resumes_with_a_range_request(tmp_path, hub, hub_repo_id):
    # The client reads the body in 10 MiB chunks and can only resume after a whole chunk reached the disk:
    # the server drops the connection half-way through a 21 MiB file.
    blob = os.urandom(21 * 1024 * 1024)
    hub.create_repo_with_files(hub_repo_id, {"model.safetensors": blob})
    hub.drop_next_download = True
    hub.clear_requests()
    path = resolve_file(hub_repo_id, "model.safetensors", cache_dir=tmp_path / "cache")
    assert hub.drop_next_download is False
    assert _read(path) == blob
    gets = [(r.headers.get("range"), r.status) for r in hub.requests if r.method == "GET" and "resolve" in r.path]
    # resumed after the first chunk (206 Partial Content), not restarted
    assert gets == [(None, 200), ("bytes=10485760-", 206)]


def test_range_get_is_served_as_206(hub, hub_repo_id):
    data = bytes(range(256)) * 4
    hub.create_repo_with_files(hub_repo_id, {"weights.bin": data})
    request = urllib.request.Request(f"{hub.url}/{hub_repo_id}/resolve/main/weights.bin",
                                     headers={"Range": "bytes=10-19"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 206
        assert response.headers["Content-Range"] == f"bytes 10-19/{len(data)}"
        assert response.read() == data[10:20]


def test_lfs_upload_path_when_the_hub_asks_for_it(tmp_path, hub, hub_repo_id, monkeypatch):
    monkeypatch.setattr(hub, "lfs_threshold", 1024)
    big, small = os.urandom(4096), b'{"a": 1}'
    hub.clear_requests()
    push_folder(_write(tmp_path, {"model.safetensors": big, "config.json": small}), hub_repo_id)
    paths = [r.path for r in hub.requests]
    assert f"/{hub_repo_id}.git/info/lfs/objects/batch" in paths
    assert any(r.method == "PUT" and "/lfs-upload/" in r.path for r in hub.requests)
    assert _read(resolve_file(hub_repo_id, "model.safetensors")) == big
    assert _read(resolve_file(hub_repo_id, "config.json")) == small


def test_local_files_only_never_contacts_the_hub(pushed, hub):
    repo_id, _, _ = pushed
    path = resolve_file(repo_id, "config.json")
    hub.clear_requests()
    assert resolve_file(repo_id, "config.json", local_files_only=True) == path
    assert resolve_file(repo_id, "generation_config.json", local_files_only=True, required=False) is None
    with pytest.raises(HubError, match="local_files_only") as e:
        resolve_file(repo_id, "nested/vocab.txt", local_files_only=True)
    assert "nested/vocab.txt" in str(e.value) and repo_id in str(e.value)
    assert list_repo_files(repo_id, local_files_only=True) == ["config.json"]
    assert hub.requests == []


# Runs tfformers.hub in a fresh interpreter without the package __init__ (which imports TensorFlow: slow).
_CHILD = textwrap.dedent("""
    import json, sys, types
    pkg = types.ModuleType("tfformers"); pkg.__path__ = [sys.argv[1]]; sys.modules["tfformers"] = pkg
    from tfformers.errors import HubError
    from tfformers.hub import is_offline, list_repo_files, resolve_file
    repo, out = sys.argv[2], {"offline": is_offline()}
    out["config"] = open(resolve_file(repo, "config.json")).read()
    if out["offline"]:
        out["files"] = list_repo_files(repo)
        out["optional"] = resolve_file(repo, "generation_config.json", required=False)
        try:
            resolve_file(repo, "nested/vocab.txt")  # on the Hub, never downloaded
            out["missing"] = None
        except HubError as e:
            out["missing"] = str(e)
    print(json.dumps(out))
""")


def _run_child(repo_id, **env_overrides):
    import tfformers.hub

    env = dict(os.environ, HF_ENDPOINT=f"http://127.0.0.1:{_closed_port()}", **env_overrides)  # nothing listens
    env.pop("HF_TOKEN", None)
    package_dir = os.path.dirname(tfformers.hub.__file__)
    proc = subprocess.run([sys.executable, "-c", _CHILD, package_dir, repo_id], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_offline_subprocess_serves_from_cache_without_any_server(pushed, hub):
    repo_id, _, _ = pushed
    resolve_file(repo_id, "config.json")  # downloaded into HF_HOME once, online
    hub.clear_requests()
    out = _run_child(repo_id, HF_HUB_OFFLINE="1")
    assert out["offline"] is True
    assert out["config"] == CONFIG_V1.decode()
    assert out["files"] == ["config.json"]  # offline listing = what the cache holds
    assert out["optional"] is None
    assert "nested/vocab.txt" in out["missing"] and "HF_HUB_OFFLINE" in out["missing"]
    assert hub.requests == []


def test_unreachable_hub_falls_back_to_the_cache(pushed, hub):
    repo_id, _, _ = pushed
    resolve_file(repo_id, "config.json")
    out = _run_child(repo_id, HF_HUB_OFFLINE="0")
    assert out == {"offline": False, "config": CONFIG_V1.decode()}
