"""Multi-worker training (`tf.distribute.MultiWorkerMirroredStrategy`): which worker writes, and a narrow fix
of Keras 3's TensorFlow trainer under that strategy (docs/distributed.md).

Only the chief writes. Every worker runs the same program, so each calls `save_pretrained`, `push_to_hub`
and the callbacks. A non-chief worker's `save_pretrained` still runs, into a temporary folder removed
afterwards: a SavedModel (`saved_model=True`) reads SyncOnRead variables, whose value is all-reduced over
the workers, so every worker must take part. `push_to_hub` and `PushToHubCallback` do nothing on a
non-chief worker: the safetensors they upload are read from mirrored variables, which each worker holds.

Keras 3.15's `fit()` and `evaluate()` fail under a multi-worker strategy even for a plain Keras model
(keras-team/keras#20585, tensorflow/tensorflow#72388), at two places of `keras/src/backend/tensorflow/
trainer.py`:
* `_maybe_symbolic_build` passes the whole first batch, a dict of PerReplica values, to `strategy.reduce`,
  which converts one tensor only: "Attempt to convert a value ({'input_ids': PerReplica:...". The batch
  is only needed for its shapes and dtypes: `TFPreTrainedModel._maybe_symbolic_build` builds from the
  dataset's element spec instead (under any strategy, since reading that batch also starts one more pass
  over the data).
* `reduce_per_replica` reduces each per-step log as `strategy.reduce("MEAN", value, axis=0)`, and the logs
  are scalars: "Invalid reduction dimension 0 for input with 0 dimensions". `reducible_step` gives the
  step's scalar outputs a leading axis of length 1, so that reduction is the mean over the replicas, a
  scalar again; it applies only where Keras takes that branch (`_collective_all_reduce_multi_worker`).
Both can go when Keras fixes it: `tests/test_multi_worker.py` runs a plain Keras model to show when.
"""

import functools
import json
import os
import socket
import tempfile

import tensorflow as tf
from keras.src import tree
from keras.src.backend.tensorflow.trainer import _collective_all_reduce_multi_worker

from tfformers.errors import InputError


def is_chief(strategy) -> bool:
    """True on the worker that writes shared output: the chief of a multi-worker cluster (the "chief"
    task, else worker 0), and always outside a multi-worker strategy."""
    return strategy.extended.should_checkpoint


def local_cluster(workers: int) -> list[str]:
    """`TF_CONFIG` values for `workers` worker processes on this machine (127.0.0.1, ports free when chosen),
    worker 0 (the chief) first: a multi-worker run tried on one machine, as the tests and benchmarks do."""
    sockets = [socket.socket() for _ in range(workers)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        cluster = {"worker": [f"127.0.0.1:{s.getsockname()[1]}" for s in sockets]}
    finally:
        for s in sockets:
            s.close()
    return [json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}) for i in range(workers)]


def only_chief_writes(save):
    """Decorates `save(model, save_directory, ...)`: on a non-chief worker the save goes to a temporary
    folder, removed afterwards, so that the shared `save_directory` holds the chief's files only."""

    @functools.wraps(save)
    def save_on_chief(model, save_directory, *args, **kwargs):
        if is_chief(model.distribute_strategy):
            return save(model, save_directory, *args, **kwargs)
        with tempfile.TemporaryDirectory(prefix="tfformers-worker-") as scratch:
            return save(model, os.path.join(scratch, os.path.basename(os.fspath(save_directory))), *args, **kwargs)

    return save_on_chief


def require_shared_order(strategy, shuffle, seed):
    """InputError for an unseeded shuffle under a multi-worker strategy. `prepare_tf_dataset` shards by data
    (`AutoShardPolicy.DATA`): every worker makes the same global batches and keeps its part of each, which
    holds only if all workers draw the same order, i.e. from the same `seed`."""
    if shuffle and seed is None and _collective_all_reduce_multi_worker(strategy):
        raise InputError(
            f"prepare_tf_dataset(shuffle=True) without a seed under a multi-worker strategy "
            f"({strategy.num_replicas_in_sync} replicas): each worker would shuffle differently and keep its "
            "part of a different batch, so examples repeat or go missing within an epoch. Pass seed=<int>, the "
            "same on every worker (each epoch e then uses the order of (seed, e))."
        )


# ------------------------------------------------------------------- Keras 3.15 under a multi-worker strategy


def reducible_step(step_function, strategy):
    """`step_function` with its scalar outputs shaped [1], which Keras' multi-worker `reduce("MEAN", axis=0)`
    turns back into a scalar: the mean over the replicas."""
    if not _collective_all_reduce_multi_worker(strategy):
        return step_function

    def step(data):
        return tree.map_structure(
            lambda value: value[None] if isinstance(value, tf.Tensor) and value.shape.rank == 0 else value,
            step_function(data),
        )

    return step
