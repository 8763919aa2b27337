"""Prepares TensorFlow before anything imports it: Keras on its TensorFlow backend, and a quiet start.

TensorFlow's C++ start-up lines (its CPU-feature and oneDNN notices, CUDA probing on a machine without a GPU)
are noise to a tfformers user. `TF_CPP_MIN_LOG_LEVEL` defaults to 2 (C++ errors only) unless the user set
it. TensorFlow's libraries print a few lines before they read that variable (absl logs to stderr until its
`InitializeLog`), so while TensorFlow starts, stderr is filtered by the same level; the CUDA probe runs then
too (else it would print at the first operation). A user's own setting decides: `TF_CPP_MIN_LOG_LEVEL=0`
shows every line, unfiltered.
"""

import contextlib
import os
import re
import sys
import tempfile

from tfformers.errors import BackendError

# An absl log line: severity letter, date, time, thread id, file:line] message
_ABSL_LINE = re.compile(r"([IWEF])\d{4} \d+:\d+:\d+\.\d+\s+\d+ [^\]]+\] ")
_ABSL_BANNER = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
# cuInit failing because there is no CUDA driver library (303) or no GPU: what a CPU-only machine reports
_NO_GPU = re.compile(r"failed call to cuInit: .*(UNKNOWN ERROR \(303\)|CUDA_ERROR_NO_DEVICE|no CUDA-capable device)")


def _refuse(backend):
    raise BackendError(
        f"tfformers needs Keras' TensorFlow backend, but Keras is set to {backend!r} (KERAS_BACKEND or "
        "~/.keras/keras.json). Set KERAS_BACKEND=tensorflow before importing keras or tfformers."
    )


def is_startup_noise(line, min_log_level):
    """True for a line TensorFlow prints while starting that `TF_CPP_MIN_LOG_LEVEL` (0 info, 1 warning,
    2 error, 3 fatal) asks to hide."""
    if min_log_level < 1:
        return False
    if line.startswith(_ABSL_BANNER) or _NO_GPU.search(line):
        return True
    match = _ABSL_LINE.match(line)
    return bool(match) and "IWEF".index(match.group(1)) < min_log_level


def _min_log_level():
    """The user's TF_CPP_MIN_LOG_LEVEL, else 2 (set, so TensorFlow reads it too)."""
    value = os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2").strip()
    return int(value) if value.isdigit() else 0  # TensorFlow reads anything else as 0


@contextlib.contextmanager
def _stderr_without(is_noise):
    """Runs the block with file descriptor 2 captured, then writes the captured lines that are not noise to
    stderr (also when the block raises)."""
    if sys.stderr is None:
        yield
        return
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no file descriptor 2: nothing can print there
        yield
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode(errors="replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if not is_noise(line)))
            sys.stderr.flush()


# Checked before importing keras: importing it with another backend may itself fail on that backend's
# missing dependencies, which would hide the actual problem.
if os.environ.setdefault("KERAS_BACKEND", "tensorflow") != "tensorflow":
    _refuse(os.environ["KERAS_BACKEND"])

_level = _min_log_level()
with _stderr_without(lambda line: is_startup_noise(line, _level)) if _level else contextlib.nullcontext():
    import keras
    import tensorflow as tf

    tf.config.list_physical_devices()  # the CUDA probe: does not initialize the runtime (devices stay settable)

if keras.config.backend() != "tensorflow":
    _refuse(keras.config.backend())
