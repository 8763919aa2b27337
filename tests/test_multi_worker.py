"""tf.distribute.MultiWorkerMirroredStrategy: two worker processes on this machine train a tfformers model as
one process does on the same global batches; only the chief writes; BackupAndRestore survives a killed worker.

Each worker is this file run as a script (`python tests/test_multi_worker.py SCENARIO WORKDIR`) with its own
`TF_CONFIG` (a two-worker cluster on 127.0.0.1, free ports; collectives over gRPC, communication AUTO, which
is RING on CPUs). The dataset is sharded by tf.data's auto-sharding: `prepare_tf_dataset` is given the GLOBAL
batch size and sets `AutoShardPolicy.DATA`, so each worker makes the same batches (same `seed`) and keeps its
half of each (the global batch = per-worker batch * 2). docs/distributed.md runs the same commands by hand.
"""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

WORKERS = 2
GLOBAL_BATCH = 8  # 4 examples per worker
ROWS = 32  # 4 steps per epoch
LEARNING_RATE = 0.5
TIMEOUT = 600  # seconds for one launch of the workers: generous, they took 175 s on a machine at load 11
KILL_AT = (1, 1)  # (epoch, batch) after which worker 1 stops to be killed, in the BackupAndRestore run
WEIGHTS_ATOL = 1e-6


# ---------------------------------------------------------------------------------------- data and model


def _rows():
    """ROWS examples of 5..12 token ids and a label in 0..2 (a `datasets.Dataset`, as fine-tuning has it)."""
    import datasets

    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 13, size=ROWS)
    return datasets.Dataset.from_dict({
        "input_ids": [rng.integers(3, 99, size=n).tolist() for n in lengths],
        "label": rng.integers(0, 3, size=ROWS).tolist(),
    })


def _dataset(model, shuffle):
    """Global batches: with `seed`, every worker (and the one-process run) draws the same order."""
    return model.prepare_tf_dataset(_rows(), batch_size=GLOBAL_BATCH, shuffle=shuffle, seed=0, drop_remainder=True)


def _compiled(folder):
    import tfformers

    model = tfformers.TFBertForSequenceClassification.from_pretrained(folder)
    model.compile(optimizer=keras.optimizers.SGD(LEARNING_RATE))  # the task's default loss
    return model


def _weights(model):
    """{PyTorch state-dict key: array}: the same keys in every process."""
    return {key: param.to_numpy() for key, param in model.checkpoint_parameters().items()}


def _max_difference(a, b):
    assert a.keys() == b.keys()
    return max(float(np.abs(a[k] - b[k]).max()) for k in a)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    """A tiny random BERT for sequence classification (no dropout, so runs are comparable), saved."""
    from architectures import ARCHITECTURES, config_for

    import tfformers

    keras.utils.set_random_seed(0)
    config = config_for(ARCHITECTURES[0], "BertForSequenceClassification",
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = tfformers.TFBertForSequenceClassification.from_config(config)
    model.build_with_dummy_inputs()
    folder = tmp_path_factory.mktemp("multi-worker") / "tiny-bert"
    model.save_pretrained(folder)
    return folder


def _one_process(folder, shuffle, epochs):
    model = _compiled(folder)
    history = model.fit(_dataset(model, shuffle), epochs=epochs, verbose=0).history["loss"]
    return model, history


# --------------------------------------------------------------------------------------- the worker launcher


class Cluster:
    """WORKERS processes of this script, one TF_CONFIG each; killed on exit, whatever happened."""

    def __init__(self, scenario, workdir, env=None):
        self.workdir = workdir
        from tfformers.distribute import local_cluster

        self.processes, self.logs = [], []
        for index, tf_config in enumerate(local_cluster(WORKERS)):
            worker_env = {**os.environ, **(env or {}).get(index, {}), "TF_CONFIG": tf_config,
                          "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}
            log = open(workdir / f"{scenario}-worker{index}.log", "a")
            self.logs.append(log)
            self.processes.append(subprocess.Popen(
                [sys.executable, __file__, scenario, str(workdir)], env=worker_env, stdout=log,
                stderr=subprocess.STDOUT,
            ))
        self.deadline = time.monotonic() + TIMEOUT

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)
        for log in self.logs:
            log.close()

    def wait_for(self, path):
        while not path.exists():
            self._check_alive()
            time.sleep(0.2)

    def _check_alive(self):
        if time.monotonic() > self.deadline:
            raise AssertionError(f"workers timed out after {TIMEOUT} s:\n{self.output()}")
        for index, process in enumerate(self.processes):
            if process.poll() not in (None, 0):
                raise AssertionError(f"worker {index} exited with {process.returncode}:\n{self.output()}")

    def join(self):
        for process in self.processes:
            try:
                process.wait(timeout=max(1.0, self.deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise AssertionError(f"workers timed out after {TIMEOUT} s:\n{self.output()}") from None
        self._check_alive()

    def output(self):
        for log in self.logs:
            log.flush()
        return "\n".join(
            f"--- worker {i}:\n" + open(log.name).read()[-3000:] for i, log in enumerate(self.logs)
        )


def _result(workdir, scenario, index):
    with open(workdir / f"{scenario}-result{index}.json") as f:
        result = json.load(f)
    result["weights"] = dict(np.load(workdir / f"{scenario}-weights{index}.npz"))
    return result


# ------------------------------------------------------------------------------------------------ tests


@pytest.fixture(scope="module")
def trained(tiny_folder, tmp_path_factory, hub):
    """One launch of both workers: they train (shuffled, 2 epochs), save_pretrained, push_to_hub and run a
    PushToHubCallback, each with its own Hub token, so the Hub's request log tells which worker talked to
    it. Then they start the BackupAndRestore run: worker 1 stops after batch KILL_AT[1] of epoch KILL_AT[0]
    and is killed (SIGKILL); worker 0, blocked in the next all-reduce, is killed too."""
    from conftest import HUB_TOKEN, HUB_USER

    workdir = tmp_path_factory.mktemp("trained")
    (workdir / "folder").write_text(str(tiny_folder))
    worker_token = hub.add_token("hf_local_worker1", user=HUB_USER)
    env = {0: {"HF_TOKEN": HUB_TOKEN}, 1: {"HF_TOKEN": worker_token}}
    hub.clear_requests()
    with Cluster("train", workdir, env) as cluster:
        cluster.wait_for(workdir / "stopped-worker1")
        cluster.processes[1].send_signal(signal.SIGKILL)
        cluster.processes[1].wait(timeout=30)
        cluster.processes[0].kill()
        cluster.processes[0].wait(timeout=30)
    return workdir, [_result(workdir, "train", i) for i in range(WORKERS)], worker_token


def test_two_workers_train_as_one_process_on_the_same_global_batches(tiny_folder, trained):
    workdir, results, _ = trained
    single, history = _one_process(tiny_folder, shuffle=True, epochs=2)
    expected = _weights(single)
    for result in results:
        assert result["num_replicas_in_sync"] == WORKERS
        assert result["per_replica_batch"] == GLOBAL_BATCH // WORKERS
        assert "Pass seed=<int>, the same on every worker" in result["unseeded_shuffle_error"]
        assert _max_difference(result["weights"], expected) <= WEIGHTS_ATOL
        np.testing.assert_allclose(result["history"], history, atol=1e-6)  # the global mean loss per epoch
    initial = _weights(_compiled(tiny_folder))
    assert _max_difference(expected, initial) > 1e-2, "training moved the weights"


def test_keras_fit_still_fails_under_the_multi_worker_strategy(trained):
    """Keras' own fit, on a plain Keras model, fails where tfformers.distribute works around it
    (keras-team/keras#20585, tensorflow/tensorflow#72388). When this fails, Keras is fixed: remove the
    workaround (TFPreTrainedModel._maybe_symbolic_build and _make_function)."""
    _, results, _ = trained
    for result in results:
        build_error, logs_error = result["plain_keras_errors"]
        assert build_error.startswith("ValueError: Attempt to convert a value ({'input_ids': PerReplica:")
        assert logs_error.startswith("ValueError: Invalid reduction dimension 0 for input with 0 dimensions")


def test_only_the_chief_writes_and_pushes(trained, hub):
    import tfformers

    workdir, results, worker_token = trained
    chief, other = workdir / "saved-by-worker0", workdir / "saved-by-worker1"
    assert sorted(os.listdir(chief)) == ["config.json", "model.safetensors"]
    assert not other.exists()
    loaded = tfformers.TFBertForSequenceClassification.from_pretrained(chief)
    assert _max_difference(_weights(loaded), results[0]["weights"]) == 0.0
    assert not (workdir / "callback-worker1").exists()
    assert (workdir / "callback-worker0" / "model.safetensors").exists()

    assert results[0]["pushed"] is not None and results[1]["pushed"] is None
    assert hub.repo_exists(results[0]["pushed"]) and hub.repo_exists(results[0]["callback_repo"])
    tokens = {r.headers.get("authorization", "").removeprefix("Bearer ") for r in hub.requests}
    assert worker_token not in tokens, "the non-chief worker talked to the Hub"


def test_backup_and_restore_resumes_after_a_worker_is_killed(tiny_folder, trained):
    """After the killed run (see `trained`), both workers restart: BackupAndRestore (a backup at each epoch
    end, one folder per worker) restores the weights and optimizer of the end of epoch 0 and runs epochs 1
    and 2 only. Unshuffled batches, so the re-run epoch sees the batches it saw before: the final weights
    equal an uninterrupted one-process run."""
    workdir = trained[0]
    for index in range(WORKERS):
        metadata = json.loads((workdir / f"backup-worker{index}" / "training_metadata.json").read_text())
        assert metadata["epoch"] == KILL_AT[0], "the last backup before the kill: the end of epoch 0"
    assert not (workdir / "backup-result0.json").exists()
    with Cluster("backup", workdir) as cluster:
        cluster.join()

    single, history = _one_process(tiny_folder, shuffle=False, epochs=3)
    expected = _weights(single)
    for index in range(WORKERS):
        result = _result(workdir, "backup", index)
        assert result["epochs_run"] == [1, 2], "resumed after the last backup (end of epoch 0)"
        assert _max_difference(result["weights"], expected) <= WEIGHTS_ATOL
        np.testing.assert_allclose(result["history"], history[1:], atol=1e-6)
        assert not (workdir / f"backup-worker{index}").exists(), "the backup is removed when training ends"


# --------------------------------------------------------------------------- the worker (run as a script)


def _plain_keras_errors(strategy):
    """The errors of Keras' own fit under this strategy, on a plain Keras model: as it is, then built from
    the dataset's element spec as TFPreTrainedModel builds (which reaches the second failure)."""
    import tensorflow as tf

    class BuiltFromSpec(keras.Model):
        def _maybe_symbolic_build(self, iterator=None, data_batch=None):
            super()._maybe_symbolic_build(data_batch=iterator.data_adapter.get_tf_dataset().element_spec)

    x = {"input_ids": np.arange(8 * 6, dtype=np.int32).reshape(8, 6) % 50}
    dataset = tf.data.Dataset.from_tensor_slices((x, np.arange(8, dtype=np.int32) % 2)).batch(4)
    errors = []
    for model_class in (keras.Model, BuiltFromSpec):
        with strategy.scope():
            ids = keras.Input((6,), dtype="int32", name="input_ids")
            pooled = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(50, 4)(ids))
            model = model_class({"input_ids": ids}, keras.layers.Dense(2)(pooled))
            model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        try:
            model.fit(dataset, epochs=1, shuffle=False, verbose=0)
            errors.append(None)
        except ValueError as error:
            errors.append(f"ValueError: {error}")
    return errors


class StopToBeKilled(keras.callbacks.Callback):
    """Writes `marker` after batch KILL_AT[1] of epoch KILL_AT[0], then waits to be killed."""

    def __init__(self, marker):
        super().__init__()
        self.marker = marker

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == KILL_AT:
            self.marker.write_text("stopped")
            time.sleep(TIMEOUT)


class EpochsRun(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


def _worker(scenario, workdir):
    import tensorflow as tf

    workdir = pathlib.Path(workdir)
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    index = strategy.cluster_resolver.task_id
    folder = (workdir / "folder").read_text()
    result = {"num_replicas_in_sync": strategy.num_replicas_in_sync}
    if scenario == "train":
        result["plain_keras_errors"] = _plain_keras_errors(strategy)
        _train_save_push(strategy, folder, workdir, index, result)
    _backup_run(strategy, folder, workdir, index, scenario)


def _train_save_push(strategy, folder, workdir, index, result):
    import tfformers

    with strategy.scope():
        model = _compiled(folder)
    distributed = strategy.experimental_distribute_dataset(_dataset(model, shuffle=True))  # a copy to look at
    labels = next(iter(distributed))[1]
    result["per_replica_batch"] = int(strategy.experimental_local_results(labels)[0].shape[0])
    try:
        model.prepare_tf_dataset(_rows(), batch_size=GLOBAL_BATCH, shuffle=True)
    except tfformers.errors.InputError as error:
        result["unseeded_shuffle_error"] = str(error)
    callback = tfformers.PushToHubCallback(workdir / f"callback-worker{index}", save_strategy="no",
                                           hub_model_id=f"mw-callback-{workdir.name}")
    result["history"] = model.fit(_dataset(model, shuffle=True), epochs=2, verbose=0,
                                  callbacks=[callback]).history["loss"]
    result["callback_repo"] = callback.repo_id
    model.save_pretrained(workdir / f"saved-by-worker{index}")
    pushed = model.push_to_hub(f"mw-push-{workdir.name}")
    result["pushed"] = None if pushed is None else pushed.repo_url.repo_id
    _write_result(workdir, "train", index, result, model)


def _backup_run(strategy, folder, workdir, index, scenario):
    """3 unshuffled epochs with a BackupAndRestore per worker; in the first launch worker 1 stops to be killed."""
    with strategy.scope():
        model = _compiled(folder)
    epochs_run = EpochsRun()
    callbacks = [keras.callbacks.BackupAndRestore(workdir / f"backup-worker{index}"), epochs_run]
    if scenario == "train" and index == 1:
        callbacks.append(StopToBeKilled(workdir / "stopped-worker1"))
    history = model.fit(_dataset(model, shuffle=False), epochs=3, verbose=0, callbacks=callbacks).history["loss"]
    _write_result(workdir, "backup", index, {"history": history, "epochs_run": epochs_run.epochs}, model)


def _write_result(workdir, scenario, index, result, model):
    np.savez(workdir / f"{scenario}-weights{index}.npz", **_weights(model))
    with open(workdir / f"{scenario}-result{index}.json", "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    _worker(sys.argv[1], sys.argv[2])
