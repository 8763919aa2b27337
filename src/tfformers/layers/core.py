"""Keras leaf layers configured as transformers initialises them.

Models use Keras' own Dense, Embedding and LayerNormalization as leaves so that LoRA, quantization and
dtype policies apply unchanged; the checkpoint mapping knows their variable layouts.
"""

import contextlib
import contextvars

import keras
import tensorflow as tf

_deferred = contextvars.ContextVar("tfformers_deferred_initialization", default=False)


@contextlib.contextmanager
def deferred_initialization():
    """Inside, `TruncatedNormal` gives zeros instead of drawing random numbers.

    `from_pretrained` builds its model inside: variables it cannot create from the checkpoint (those made in
    a layer's `__init__`, a new head) are created deferred, then assigned their tensor or, for weights the
    checkpoint lacks, initialized for real afterwards (`Parameter.initialize`): no values are drawn only to
    be thrown away.
    """
    token = _deferred.set(True)
    try:
        yield
    finally:
        _deferred.reset(token)


@keras.saving.register_keras_serializable(package="tfformers")
class TruncatedNormal(keras.initializers.TruncatedNormal):
    """transformers' weight initialization, deferrable (see `deferred_initialization`)."""

    def __call__(self, shape, dtype=None):
        if _deferred.get():
            return keras.ops.zeros(shape, dtype=dtype)
        return super().__call__(shape, dtype=dtype)


def _initializer(config):
    return TruncatedNormal(stddev=config.initializer_range)


def dense(units, config, activation=None, use_bias=True):
    return keras.layers.Dense(
        units, activation=activation, use_bias=use_bias, kernel_initializer=_initializer(config)
    )


@keras.saving.register_keras_serializable(package="tfformers")
class Conv1D(keras.layers.Dense):
    """A Dense layer whose checkpoint weight is stored [in, out] (GPT-2's `Conv1D`), Keras' own layout: the
    key rule does not transpose it."""

    def quantize(self, mode=None, type_check=True, config=None):
        # Dense refuses its subclasses (their call may differ); this one computes exactly what Dense does
        super().quantize(mode, type_check=False, config=config)


def conv1d(units, config):
    return Conv1D(units, kernel_initializer=_initializer(config))


def embedding(num_embeddings, dim, config):
    return keras.layers.Embedding(num_embeddings, dim, embeddings_initializer=_initializer(config))


def layer_norm(epsilon):
    return keras.layers.LayerNormalization(epsilon=epsilon)


class RMSNorm(keras.layers.Layer):
    """Root-mean-square normalization (Zhang & Sennrich, 2019) with a learned `weight`, computed in float32
    and cast back, as transformers' LlamaRMSNorm / T5LayerNorm."""

    def __init__(self, hidden_size, epsilon, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon
        self.weight = self.add_weight(shape=(hidden_size,), initializer="ones", name="weight")

    def call(self, hidden_states):
        dtype = hidden_states.dtype
        hidden_states = tf.cast(hidden_states, tf.float32)
        variance = tf.reduce_mean(tf.square(hidden_states), axis=-1, keepdims=True)
        hidden_states = tf.cast(hidden_states * tf.math.rsqrt(variance + self.epsilon), dtype)
        return tf.cast(self.weight, dtype) * hidden_states
