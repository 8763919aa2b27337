"""XLA compiles one training program per batch shape: length buckets bound the compilations per epoch.

XLA dumps every program it compiles when `XLA_FLAGS=--xla_dump_to=DIR` is set before TensorFlow starts,
so the count runs in a fresh Python process (this file is also the script it runs) and counts the dumped
programs after each epoch of `fit(jit_compile=True)`. One process trains both ways in turn (bucketed, then
per-batch padding on a new model, counted from the programs compiled before it): starting TensorFlow and
building the model once per mode cost as much as the training.
"""

import json
import os
import subprocess
import sys

import pytest

BUCKETS = (8, 16, 32)
MODES = ("buckets", "per-batch")


def run_counted(tmp_path, modes, script=__file__):
    """Runs `script modes...` in a process that dumps its XLA programs; returns the JSON its last line prints."""
    from tfformers.xla import dump_environment

    env = dump_environment(tmp_path / "xla-dump", {**os.environ, "KERAS_BACKEND": "tensorflow",
                                                   "TF_CPP_MIN_LOG_LEVEL": "2"})
    completed = subprocess.run([sys.executable, script, *modes], env=env, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def counted(tmp_path_factory):
    """mode -> {"per_epoch": programs compiled in each epoch, "shapes": batch shapes, "loss": per epoch}."""
    return run_counted(tmp_path_factory.mktemp("xla"), MODES)


def test_buckets_compile_one_program_per_bucket_and_none_in_later_epochs(counted):
    result = counted["buckets"]
    shapes = [tuple(s) for s in result["shapes"]]
    assert len(shapes) == len(BUCKETS)  # every bucket holds full batches in this data
    assert {length for _, length in shapes} == set(BUCKETS)
    assert result["per_epoch"] == [len(BUCKETS), 0, 0]
    assert result["loss"][-1] < result["loss"][0]


def test_per_batch_padding_compiles_once_per_distinct_length(counted):
    """The counter counts: without buckets every new batch length is a new program (a new model's, so a
    length the bucketed model compiled is compiled again)."""
    result = counted["per-batch"]
    assert len(result["shapes"]) > len(BUCKETS)
    assert result["per_epoch"][0] == len(result["shapes"])
    assert sum(result["per_epoch"]) == len(result["shapes"])  # a shape seen before is never recompiled


# ---------------------------------------------------------------------------- the script run in a subprocess


def _run(modes):
    import datasets
    import keras
    import numpy as np

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from architectures import ARCHITECTURES, config_for

    import tfformers
    from tfformers.xla import CompilationsPerEpoch, CompiledPrograms

    rng = np.random.default_rng(0)
    lengths = np.concatenate([rng.integers(3, 9, 32), rng.integers(9, 17, 32), rng.integers(17, 33, 32)])
    ids = [list(rng.integers(5, 99, n)) for n in lengths]
    data = datasets.Dataset.from_dict({"input_ids": ids, "label": [int(n > 16) for n in lengths]})

    results = {}
    for mode in modes:
        keras.utils.set_random_seed(0)
        model = tfformers.TFAutoModelForSequenceClassification.from_config(
            config_for(ARCHITECTURES[0], "BertForSequenceClassification")
        )
        model.build_with_dummy_inputs()
        # Per-batch padding in a fixed order repeats the same batch lengths every epoch; buckets are shuffled.
        options = {"bucket_boundaries": BUCKETS, "shuffle": True} if mode == "buckets" else {"shuffle": False}
        # per-batch: five batches padded to 15, 14, 16, 16, 31: four programs (each costs seconds)
        selected = data.select(range(32, 72)) if mode == "per-batch" else data
        train = model.prepare_tf_dataset(selected, batch_size=8, seed=0, pad_token_id=0, **options)
        shapes = sorted({tuple(x["input_ids"].shape) for x, _ in train.as_numpy_iterator()})
        model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=True)
        before = CompiledPrograms().count()  # the modes before this one
        counter = CompilationsPerEpoch()
        history = model.fit(train, epochs=3, verbose=0, callbacks=[counter])
        per_epoch = [counter.counts[0] - before, *counter.counts[1:]]
        results[mode] = {"per_epoch": per_epoch, "shapes": shapes, "loss": history.history["loss"]}
    print(json.dumps(results))


if __name__ == "__main__":
    _run(sys.argv[1:])
