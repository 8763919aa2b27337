"""The `transformers.modeling_tf_utils` names of 4.x that code outside the models uses: `keras` (4.x exported
the Keras it ran on; here Keras 3), `TFPreTrainedModel`, `shape_list` and `get_initializer`."""

import keras
import numpy as np
import tensorflow as tf

from tfformers.modeling import TFPreTrainedModel

__all__ = ["TFPreTrainedModel", "get_initializer", "keras", "shape_list"]


def shape_list(tensor):
    """The shape of `tensor` as a list: Python ints where the dimension is known statically, scalar tensors
    (from `tf.shape`) where it is not; a NumPy array's shape as ints; for a tensor of unknown rank, the
    `tf.shape` tensor itself (as 4.x)."""
    if isinstance(tensor, np.ndarray):
        return list(tensor.shape)
    tensor = tf.convert_to_tensor(tensor) if not isinstance(tensor, (tf.Tensor, tf.Variable)) else tensor
    dynamic = tf.shape(tensor)
    if tensor.shape.rank is None:
        return dynamic
    static = tensor.shape.as_list()
    return [dynamic[i] if size is None else size for i, size in enumerate(static)]


def get_initializer(initializer_range=0.02):
    """`keras.initializers.TruncatedNormal(stddev=initializer_range)`, the initializer of transformers' weights."""
    return keras.initializers.TruncatedNormal(stddev=initializer_range)
