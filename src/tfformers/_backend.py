"""Makes sure Keras runs on TensorFlow before anything imports it."""

import os

from tfformers.errors import BackendError


def _refuse(backend):
    raise BackendError(
        f"tfformers needs Keras' TensorFlow backend, but Keras is set to {backend!r} (KERAS_BACKEND or "
        "~/.keras/keras.json). Set KERAS_BACKEND=tensorflow before importing keras or tfformers."
    )


# Checked before importing keras: importing it with another backend may itself fail on that backend's
# missing dependencies, which would hide the actual problem.
if os.environ.setdefault("KERAS_BACKEND", "tensorflow") != "tensorflow":
    _refuse(os.environ["KERAS_BACKEND"])

import keras  # noqa: E402

if keras.config.backend() != "tensorflow":
    _refuse(keras.config.backend())
