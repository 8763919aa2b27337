"""Saving writes inside the existing folder (tfformers.fileio): the folder keeps its mode, group, symlink,
mount point and working-directory users; concurrent saves take turns; a save killed at any step, or
failing on a full disk, leaves the previous model or the new one, never a mix; stale shards go."""

import errno
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from transformers import BertConfig

import tfformers
from tfformers import checkpoint, fileio
from tfformers.sharing import save_checkpoint

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src", "tfformers")
MODEL_FILE_NAMES = {"config.json", "model.safetensors", "model.safetensors.index.json"}
USER_FILES = {"README.md": b"# my notes on this model\n", "notes/todo.txt": b"evaluate on the test split\n"}


def tiny_bert(hidden_size, seed=0, **overrides):
    keras.utils.set_random_seed(seed)
    config = BertConfig(hidden_size=hidden_size, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16,
                        vocab_size=50, max_position_embeddings=16, **overrides)
    model = tfformers.TFBertModel.from_config(config)
    model.build_with_dummy_inputs()
    return model


def model_files(folder):
    """{name: bytes} of the files a model save writes (the user's files and internals excluded)."""
    return {name: (folder / name).read_bytes() for name in os.listdir(folder)
            if name in MODEL_FILE_NAMES or (name.startswith("model-") and name.endswith(".safetensors"))}


def internals(folder):
    return sorted(name for name in os.listdir(folder) if name.startswith(fileio.INTERNAL_PREFIX))


def add_user_files(folder):
    for name, data in USER_FILES.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)


def assert_user_files_intact(folder):
    assert {name: (folder / name).read_bytes() for name in USER_FILES} == USER_FILES


def assert_loads_as(folder, model):
    loaded = tfformers.TFBertModel.from_pretrained(folder)
    assert loaded.config.hidden_size == model.config.hidden_size
    for ours, theirs in zip(model.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(theirs.numpy(), ours.numpy())


@pytest.fixture(scope="module")
def models():
    """Two tiny BERTs whose config and weights cannot be mixed unnoticed (hidden sizes 8 and 12)."""
    return tiny_bert(8, seed=0), tiny_bert(12, seed=1)


@pytest.fixture
def saved(tmp_path, models):
    """A folder holding model A and the user's own files."""
    folder = tmp_path / "model"
    models[0].save_pretrained(folder)
    add_user_files(folder)
    return folder


# -------------------------------------------------------------------------- (a)-(e): the folder stays itself
def test_the_folder_keeps_its_inode_mode_and_setgid_group(tmp_path, models):
    folder = tmp_path / "shared-model"
    folder.mkdir()
    # As root any group id works; otherwise one of our groups (ideally not the default one) is what a
    # setgid team folder would carry.
    group = 4242 if os.geteuid() == 0 else next((g for g in os.getgroups() if g != os.getegid()), os.getegid())
    os.chown(folder, -1, group)
    os.chmod(folder, 0o2775)
    inode = os.stat(folder).st_ino
    previous_umask = os.umask(0o002)
    try:
        models[0].save_pretrained(folder)
        models[1].save_pretrained(folder)
    finally:
        os.umask(previous_umask)
    status = os.stat(folder)
    assert (status.st_ino, stat.S_IMODE(status.st_mode), status.st_gid) == (inode, 0o2775, group)
    for name in os.listdir(folder):
        file_status = os.stat(folder / name)
        assert (stat.S_IMODE(file_status.st_mode), file_status.st_gid) == (0o664, group), name
    assert_loads_as(folder, models[1])


def test_the_parent_folder_is_never_written(tmp_path, models):
    parent = tmp_path / "read-only-parent"
    folder = parent / "model"
    models[0].save_pretrained(folder)
    # Without root, the chmod alone makes any write in the parent fail. Root ignores it, so the parent's
    # listing and modification time (changed by any entry created, renamed or removed in it) are compared.
    os.chmod(parent, 0o555)
    try:
        before = (sorted(os.listdir(parent)), os.stat(parent).st_mtime_ns)
        models[1].save_pretrained(folder)
        after = (sorted(os.listdir(parent)), os.stat(parent).st_mtime_ns)
    finally:
        os.chmod(parent, 0o755)
    assert after == before
    assert_loads_as(folder, models[1])


def test_a_mount_point_is_saved_into_without_renaming_it(saved, models, monkeypatch):
    # A mount point (a Docker or Kubernetes volume) cannot be renamed or removed: EBUSY.
    mount_point = os.path.realpath(saved)

    def busy_if_mount_point(function):
        def guarded(*paths, **kwargs):
            if any(isinstance(p, (str, os.PathLike)) and os.path.realpath(p) == mount_point for p in paths):
                raise OSError(errno.EBUSY, "Device or resource busy", os.fspath(paths[0]))
            return function(*paths, **kwargs)
        return guarded

    for name in ("rename", "replace", "rmdir"):
        monkeypatch.setattr(os, name, busy_if_mount_point(getattr(os, name)))
    models[1].save_pretrained(saved)
    monkeypatch.undo()
    assert_loads_as(saved, models[1])
    assert_user_files_intact(saved)
    assert internals(saved) == []
    assert sorted(os.listdir(saved.parent)) == ["model"], "no .old or staging folder next to it"


def test_a_symlinked_folder_stays_a_link_and_its_target_gets_the_model(tmp_path, models):
    target, link = tmp_path / "volume" / "model", tmp_path / "model-link"
    models[0].save_pretrained(target)
    link.symlink_to(target, target_is_directory=True)
    models[1].save_pretrained(link)
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert_loads_as(target, models[1])
    assert sorted(os.listdir(tmp_path)) == ["model-link", "volume"]


def test_saving_into_the_working_directory_keeps_it_valid(saved, models, monkeypatch):
    monkeypatch.chdir(saved)
    models[1].save_pretrained(".")
    assert os.getcwd() == os.path.realpath(saved)
    assert_loads_as(".", models[1])
    assert_user_files_intact(saved)


# -------------------------------------------------------------------------------------------- stale files
def test_a_resave_with_fewer_shards_removes_the_stale_ones_and_keeps_the_users_files(saved, models):
    model = models[0]
    model.save_pretrained(saved, max_shard_size=1500)
    three = sorted(name for name in os.listdir(saved) if name.startswith("model-"))
    model.save_pretrained(saved, max_shard_size=3000)
    index = json.loads((saved / checkpoint.SAFE_WEIGHTS_INDEX_NAME).read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(three) > len(shards) > 1
    assert sorted(os.listdir(saved)) == sorted(["README.md", "notes", "config.json",
                                                checkpoint.SAFE_WEIGHTS_INDEX_NAME, *shards])
    assert_user_files_intact(saved)
    assert_loads_as(saved, model)


def test_a_training_checkpoint_folder_holds_only_the_latest_save(tmp_path):
    keras.utils.set_random_seed(0)
    config = BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16,
                        vocab_size=50, max_position_embeddings=16)
    model = tfformers.TFAutoModelForSequenceClassification.from_config(config)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    folder = save_checkpoint(model, tmp_path, epoch=1, max_shard_size=1500)
    assert any(name.startswith("model-0000") for name in os.listdir(folder))
    with open(os.path.join(folder, "stray.txt"), "w") as handle:  # everything in checkpoint/ is tfformers'
        handle.write("left by an older version")
    save_checkpoint(model, tmp_path, epoch=2)
    assert sorted(os.listdir(folder)) == ["model.safetensors", "optimizer.safetensors", "trainer_state.json"]
    assert model.load_repo_checkpoint(tmp_path)["epoch"] == 2


# ------------------------------------------------------------------------------------------- a full disk
def test_a_full_disk_raises_a_clear_error_and_keeps_the_previous_model(saved, models, monkeypatch):
    before = model_files(saved)

    def disk_fills_midway(state, directory, max_shard_size):
        with open(os.path.join(directory, checkpoint.SAFE_WEIGHTS_NAME), "wb") as handle:
            handle.write(b"\0" * 100)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.path.join(directory, "model.safetensors"))

    monkeypatch.setattr(checkpoint, "write_safetensors", disk_fills_midway)
    with pytest.raises(OSError, match="No space left on device") as error:
        models[1].save_pretrained(saved)
    assert error.value.errno == errno.ENOSPC
    assert f"Saving into {os.path.realpath(saved)} failed" in str(error.value)
    assert "keeps its previous content" in str(error.value)
    assert model_files(saved) == before and internals(saved) == []
    assert_user_files_intact(saved)


# ----------------------------------------------------------------------------------------- SIGKILL at every step
# The children below replay saves through tfformers.fileio exactly as save_pretrained drives it (the same
# `replaced` predicate and `last` order), copying the files a real save_pretrained wrote. They import fileio
# without the package (no TensorFlow: ~50 ms a child instead of ~10 s), so every step can be killed and two
# savers can race through hundreds of saves within a second.
FILEIO_SAVER = textwrap.dedent("""
    import os, shutil, signal, sys, time, types
    src, folder, sources, kill_at, ready = sys.argv[1:6]
    sources, kill_at = sources.split(","), int(kill_at)
    package = types.ModuleType("tfformers")
    package.__path__ = [src]
    sys.modules["tfformers"] = package
    from tfformers import fileio

    operations = 0

    def counted(function):
        def step(*args, **kwargs):
            global operations
            operations += 1
            if operations == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return function(*args, **kwargs)
        return step

    for name in ("mkdir", "rename", "replace", "unlink", "rmdir"):
        setattr(os, name, counted(getattr(os, name)))
    os.fsync = lambda descriptor: None  # only a power cut needs it, not a killed process: keeps steps fast
    copy = counted(shutil.copyfile)
    model_files = ("model.safetensors", "model.safetensors.index.json", "config.json", "generation_config.json")
    claimed = lambda name: name in model_files or (name.startswith("model-") and name.endswith(".safetensors"))
    if ready:  # a racing saver: start together with the other one
        open(os.path.join(ready, str(os.getpid())), "w").close()
        deadline = time.monotonic() + 60
        while len(os.listdir(ready)) < 2 and time.monotonic() < deadline:
            time.sleep(0.001)
    for source in sources:
        with fileio.atomic_directory(folder, replaced=claimed) as staging:
            for name in sorted(os.listdir(source)):
                copy(os.path.join(source, name), os.path.join(staging, name))
    print(operations)
""")


def run_saver(folder, sources, kill_at=0, ready=""):
    return [sys.executable, "-c", FILEIO_SAVER, SRC, str(folder), ",".join(map(str, sources)), str(kill_at), str(ready)]


@pytest.fixture(scope="module")
def saves(models, tmp_path_factory):
    """Reference folders written by save_pretrained: A sharded, B single-file, B2 (B's config, new weights)."""
    root = tmp_path_factory.mktemp("references")
    model_a, model_b = models
    model_b2 = tiny_bert(12, seed=2)
    folders = {"A sharded": (model_a, 1500), "B": (model_b, "5GB"), "B2": (model_b2, "5GB")}
    for name, (model, max_shard_size) in folders.items():
        model.save_pretrained(root / name, max_shard_size=max_shard_size)
        assert_loads_as(root / name, model)  # the reference files load as their model
    return {name: (root / name, model, size) for name, (model, size) in folders.items()}


@pytest.fixture
def no_fsync(monkeypatch):
    """A SIGKILL keeps the page cache: the kill tests' next saves skip fsync (power cuts are not tested)."""
    monkeypatch.setattr(os, "fsync", lambda descriptor: None)


def _reset(folder, reference):
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(reference, folder)
    add_user_files(folder)


@pytest.mark.parametrize("old, new", [("A sharded", "B"), ("B", "A sharded"), ("B", "B2")])
def test_a_save_killed_at_any_step_leaves_one_whole_model(tmp_path, saves, no_fsync, old, new):
    (old_folder, _, _), (new_folder, new_model, new_shard_size) = saves[old], saves[new]
    old_files, new_files = model_files(old_folder), model_files(new_folder)
    folder, seen = tmp_path / "model", []
    for kill_at in range(1, 60):
        _reset(folder, old_folder)
        child = subprocess.run(run_saver(folder, [new_folder], kill_at), capture_output=True, text=True, timeout=60)
        if child.returncode == 0:  # fewer operations than kill_at: the save completed
            assert model_files(folder) == new_files and internals(folder) == []
            break
        assert child.returncode == -signal.SIGKILL, child.stderr
        files = model_files(folder)
        if files in (old_files, new_files):
            seen.append("old" if files == old_files else "new")
        else:  # killed between the renames: the entry point is out, so no reader can load a mix
            assert "config.json" not in files and any(n.startswith(fileio.COMMIT_PREFIX) for n in internals(folder))
            with pytest.raises(tfformers.HubError, match="interrupted.*complete_interrupted_save"):
                tfformers.TFBertModel.from_pretrained(folder)
            assert fileio.complete_interrupted_save(folder)
            assert model_files(folder) == new_files
            seen.append("completed")
        assert_user_files_intact(folder)
        new_model.save_pretrained(folder, max_shard_size=new_shard_size)  # the next save cleans up
        assert model_files(folder) == new_files and internals(folder) == []
        assert_user_files_intact(folder)
    else:
        pytest.fail("the save never completed")
    print(f"\n{old} -> {new}: {kill_at - 1} kill points: {' '.join(seen)}")
    assert kill_at > 5 and seen[0] == "old" and seen[-1] == "new"
    if new == "B2":  # one changed file: a single rename, the folder always loads
        assert "completed" not in seen
    else:
        assert "completed" in seen


# ---------------------------------------------------------------------------------------- concurrent savers
def test_two_processes_saving_at_once_leave_one_whole_model(saved, saves, tmp_path):
    ready = tmp_path / "ready"
    ready.mkdir()
    # One saver alternates A (sharded) and B, the other B2 and A: every save has stale files to remove.
    a, b, b2 = (saves[name][0] for name in ("A sharded", "B", "B2"))
    plans = [[a, b] * 25, [b2, a] * 25]
    children = [subprocess.Popen(run_saver(saved, plan, ready=ready), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True) for plan in plans]
    errors = [child.communicate(timeout=120)[1] for child in children]
    assert [child.returncode for child in children] == [0, 0], "\n".join(errors)
    assert model_files(saved) in [model_files(b), model_files(a)], "one save's config and weights, nothing stale"
    assert internals(saved) == [] and sorted(os.listdir(saved.parent)) == ["model", "ready"]
    assert_user_files_intact(saved)
    tfformers.TFBertModel.from_pretrained(saved)
