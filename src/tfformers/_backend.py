"""Makes sure Keras runs on TensorFlow before anything imports it."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402

from tfformers.errors import BackendError  # noqa: E402

if keras.config.backend() != "tensorflow":
    raise BackendError(
        f"tfformers needs Keras' TensorFlow backend, but Keras runs on {keras.config.backend()!r} "
        f"(KERAS_BACKEND={os.environ.get('KERAS_BACKEND')!r} or ~/.keras/keras.json). Set "
        "KERAS_BACKEND=tensorflow before importing keras or tfformers."
    )
