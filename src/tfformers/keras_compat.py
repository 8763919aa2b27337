"""Narrow fixes of Keras 3 behaviour that code written for transformers 4.x (TF-Keras 2) relies on.

Each fix names what it restores and is installed once, when tfformers is imported.

- Strings as model input: TF-Keras 2 took a list of Python strings in `fit`/`predict`/`evaluate`; Keras 3's
  data adapters refuse it ("Unrecognized data type"), and a NumPy array of `str` too ("Invalid dtype").
  The blog's end-to-end model (an in-graph tokenizer as the first layer) is called as
  `model.predict(["This is a test sentence!", ...])`, so such lists, and NumPy `str` arrays, become NumPy
  object arrays, which Keras feeds as tf.string.
"""

import numpy as np
from keras.src.trainers import data_adapters


def _strings_as_objects(value):
    """A list/tuple of str (or an array of str) -> an object array; a tuple of such -> a tuple of arrays."""
    if isinstance(value, np.ndarray) and value.dtype.kind == "U":
        return value.astype(object)
    if isinstance(value, (list, tuple)) and value and all(isinstance(item, str) for item in value):
        return np.array(value, dtype=object)
    if isinstance(value, tuple):  # (questions, contexts): each part on its own
        return tuple(_strings_as_objects(item) for item in value)
    return value


def _accept_strings(get_data_adapter):
    def wrapper(x, *args, **kwargs):
        return get_data_adapter(_strings_as_objects(x), *args, **kwargs)

    wrapper.tfformers_accepts_strings = True
    return wrapper


def install():
    if not getattr(data_adapters.get_data_adapter, "tfformers_accepts_strings", False):
        data_adapters.get_data_adapter = _accept_strings(data_adapters.get_data_adapter)
