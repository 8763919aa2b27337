"""Counting XLA compilations: the proof that shape buckets bound them.

XLA writes every program it compiles to a folder when `XLA_FLAGS=--xla_dump_to=DIR` is set before
TensorFlow starts, so counting happens in a process started with `dump_environment(dir)`; inside it,
`CompiledPrograms(dir)` counts the programs compiled so far, and `CompilationsPerEpoch` records the count
of each epoch of `fit()`.
"""

import os
from pathlib import Path

import keras


def dump_environment(dump_dir, environ=None):
    """A copy of `environ` (default: this process's) that makes a new process dump its XLA programs."""
    flags = f"--xla_dump_to={dump_dir} --xla_dump_hlo_as_text"
    return {**(os.environ if environ is None else environ), "XLA_FLAGS": flags, "XLA_DUMP_DIR": str(dump_dir)}


class CompiledPrograms:
    """The number of programs XLA compiled in this process (one dump file each)."""

    def __init__(self, dump_dir=None):
        self.dump_dir = Path(dump_dir or os.environ["XLA_DUMP_DIR"])

    def count(self):
        return len(list(self.dump_dir.glob("*.before_optimizations.txt")))


class CompilationsPerEpoch(keras.callbacks.Callback):
    """`counts[i]`: the programs XLA compiled during epoch i of `fit()`."""

    def __init__(self, dump_dir=None):
        super().__init__()
        self.programs = CompiledPrograms(dump_dir)
        self.counts = []

    def on_epoch_end(self, epoch, logs=None):
        self.counts.append(self.programs.count() - sum(self.counts))
