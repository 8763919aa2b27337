"""Training throughput of one process against MultiWorkerMirroredStrategy with one and two workers.

Every contender trains the same sequence classifier (MiniLM with a new 3-way head) on the same global batches
of `model.prepare_tf_dataset` (random token ids, lengths seq/2..seq, padded per batch; `seed=0`), SGD, the
default loss, `jit_compile=False` (a tf.function step; XLA does not compile the collective all-reduce on
CPU). Each run is a fresh process (or two, one `TF_CONFIG` each, on 127.0.0.1), started in turn and in
alternating order per round; a callback timestamps every step, and the first `--warmup` steps (tracing) are
reported on their own. Throughput = global batch / median step time of the chief.

    .venv/bin/python benchmarks/bench_distributed.py            # the figures in docs/benchmarks.md
    .venv/bin/python benchmarks/bench_distributed.py --quick    # smoke test
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import minilm_dir  # noqa: I001  (common sets the Keras backend and TF's log level)

CONTENDERS = {"1 process, no strategy": 0, "MWMS, 1 worker": 1, "MWMS, 2 workers": 2}  # name: workers
TIMEOUT = 1800  # seconds for one run


def run(workers, args, workdir):
    """Starts `workers` MWMS worker processes (0: one process without a strategy) and returns the chief's
    step times in seconds."""
    from tfformers.distribute import local_cluster

    result = Path(workdir) / f"steps-{workers}.json"
    processes = []
    try:
        for tf_config in local_cluster(workers) if workers else [None]:
            env = dict(os.environ)
            if tf_config:
                env["TF_CONFIG"] = tf_config
            command = [sys.executable, __file__, "--worker", str(result), "--batch", str(args.batch),
                       "--seq", str(args.seq), "--steps", str(args.warmup + args.steps)]
            processes.append(subprocess.Popen(command, env=env))
        for process in processes:
            if process.wait(timeout=TIMEOUT) != 0:
                sys.exit(f"a worker exited with {process.returncode}")
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    return json.loads(result.read_text())


def worker(result_file, batch, seq, steps):
    import datasets
    import keras
    import numpy as np
    import tensorflow as tf

    import tfformers

    multi_worker = "TF_CONFIG" in os.environ
    strategy = tf.distribute.MultiWorkerMirroredStrategy() if multi_worker else tf.distribute.get_strategy()
    tfformers.logging.set_verbosity_error()
    with strategy.scope():
        model = tfformers.TFAutoModelForSequenceClassification.from_pretrained(minilm_dir(), num_labels=3)
        model.compile(optimizer=keras.optimizers.SGD(1e-3), jit_compile=False)
    rng = np.random.default_rng(0)
    rows = batch * steps
    lengths = rng.integers(seq // 2, seq + 1, size=rows)
    data = datasets.Dataset.from_dict({
        "input_ids": [[101, *rng.integers(1000, 30000, size=n - 2).tolist(), 102] for n in lengths],
        "label": rng.integers(0, 3, size=rows).tolist(),
    })

    class StepTimes(keras.callbacks.Callback):
        times = [time.perf_counter()]

        def on_train_batch_end(self, step, logs=None):
            self.times.append(time.perf_counter())

    model.fit(model.prepare_tf_dataset(data, batch_size=batch, seed=0), epochs=1, verbose=0,
              callbacks=[StepTimes()])
    if not multi_worker or strategy.cluster_resolver.task_id == 0:
        Path(result_file).write_text(json.dumps(np.diff(StepTimes.times).tolist()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16, help="global batch (split over the workers)")
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--steps", type=int, default=12, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=2, help="first steps, reported apart")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="smoke test: 1 round, 3 steps, sequence 32")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.batch, args.seq, args.steps)
    if args.quick:
        args.rounds, args.steps, args.seq = 1, 3, 32

    times = {name: [] for name in CONTENDERS}
    first = {name: [] for name in CONTENDERS}
    with tempfile.TemporaryDirectory() as workdir:
        for round_index in range(args.rounds):
            order = list(CONTENDERS) if round_index % 2 == 0 else list(reversed(CONTENDERS))
            for name in order:
                steps = run(CONTENDERS[name], args, workdir)
                first[name].append(sum(steps[: args.warmup]))
                times[name].extend(steps[args.warmup:])
                print(f"round {round_index + 1}: {name}: median step {statistics.median(steps[args.warmup:]):.3f} s",
                      flush=True)

    baseline = statistics.median(times["1 process, no strategy"])
    print(f"\nMiniLM classifier, global batch {args.batch} x sequence <= {args.seq}, SGD, tf.function; "
          f"{args.rounds} rounds x {args.steps} timed steps\n")
    print("| contender | s / step (median) | examples/s | vs 1 process | first steps |")
    print("|---|---:|---:|---:|---:|")
    for name in CONTENDERS:
        step = statistics.median(times[name])
        print(f"| {name} | {step:.3f} | {args.batch / step:.1f} | {baseline / step:.2f}x | "
              f"{statistics.median(first[name]):.1f} s |")


if __name__ == "__main__":
    main()
