"""Keras leaf layers configured as transformers initialises them.

Models use Keras' own Dense, Embedding and LayerNormalization as leaves so that LoRA, quantization and
dtype policies apply unchanged; the checkpoint mapping knows their variable layouts.
"""

import contextlib
import contextvars

import keras
import tensorflow as tf
from tensorflow.compiler.tf2xla.python import xla

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


@keras.saving.register_keras_serializable(package="tfformers")
class Linear(keras.layers.Dense):
    """Keras' `Dense` (float kernel [in, out]) whose int8 form stores its kernel [out, in], as PyTorch's
    `Linear` does.

    Decoding multiplies one row by every kernel. XLA's CPU product of one row with a converted int8 matrix
    is a loop over the matrix: over [out, in] it reads each output's weights contiguously and takes about
    half the float32 time (a quarter of the bytes), over Keras' [in, out] 4-5x the float32 time. The int8
    quantization itself is Keras' (a scale per output channel; activations quantized per row by the
    layer's `inputs_quantizer`, none for weight-only int8); only the stored layout and the product differ.
    """

    def quantize(self, mode=None, type_check=True, config=None):
        # Dense refuses its subclasses (their call may differ); this one computes what Dense computes
        if mode != "int8":
            super().quantize(mode, type_check=False, config=config)
            return
        self.quantization_config = config
        quantizer = keras.quantizers.QuantizationConfig.weight_quantizer_or_default(
            config, keras.quantizers.AbsMaxQuantizer(axis=0)
        )
        values, scale = quantizer(self._kernel, to_numpy=True)  # int8 [in, out], [1, out]
        kernel_shape = self._kernel.shape
        del self._kernel
        self.quantized_build(kernel_shape, mode, config)
        self._kernel.assign(tf.transpose(values))
        self.kernel_scale.assign(scale[0])
        if self.dtype_policy.quantization_mode is None:
            self.dtype_policy = keras.dtype_policies.get(f"int8_from_{self.dtype_policy.name}")

    def _int8_build(self, kernel_shape, config=None):
        in_features, units = kernel_shape
        super()._int8_build((units, in_features), config)

    @property
    def kernel(self):
        """As Keras' int8 Dense: the stored int8 values [in, out] (plus the LoRA update, when enabled)."""
        if self.quantization_mode != "int8":
            return super().kernel
        kernel = tf.transpose(self._kernel)
        if self.lora_enabled:
            update = self._lora_update()
            kernel = tf.cast(tf.cast(kernel, update.dtype) + update, self.compute_dtype)
        return kernel

    def _lora_update(self):
        """The adapter's update of the kernel, [in, out] float32: `alpha / rank * A @ B`."""
        return (self.lora_alpha / self.lora_rank) * tf.matmul(self.lora_kernel_a, self.lora_kernel_b)

    def _int8_call(self, inputs, training=None):
        outputs = int8_product(inputs, self._kernel, self.kernel_scale, self.inputs_quantizer)
        if self.lora_enabled:
            update = tf.matmul(tf.matmul(inputs, self.lora_kernel_a), self.lora_kernel_b)
            outputs = tf.cast(outputs + (self.lora_alpha / self.lora_rank) * update, self.compute_dtype)
        if self.bias is not None:
            outputs = outputs + self.bias
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs

    def _get_kernel_with_merged_lora(self):
        """(int8 kernel, scale, None) as saved: with LoRA, the update is merged and the sum quantized again."""
        if self.quantization_mode != "int8" or not self.lora_enabled:
            return super()._get_kernel_with_merged_lora()
        float_kernel = tf.cast(self._kernel, tf.float32) / self.kernel_scale[:, None]  # [out, in]
        values, scale = keras.quantizers.abs_max_quantize(float_kernel + tf.transpose(self._lora_update()), axis=1)
        return values, scale[:, 0], None


def int8_product(inputs, kernel, kernel_scale, inputs_quantizer):
    """`inputs` [..., in] times the int8 `kernel` [out, in] scaled back by `kernel_scale` [out]: [..., out]
    in the inputs' dtype. With an `inputs_quantizer`, each row is quantized first (scale [..., 1]) and the
    product is one of integers. The gradient is the float kernel's, as in Keras' int8 training."""
    dtype = inputs.dtype

    @tf.custom_gradient
    def product(inputs, kernel, kernel_scale):
        def gradient(upstream):
            return tf.matmul(upstream, tf.cast(kernel, dtype) / tf.cast(kernel_scale[:, None], dtype)), None, None

        values, scale = _quantized_rows(inputs, inputs_quantizer)
        if values.shape.is_fully_defined():
            # XLA (whose shapes are all static) hoists what depends on weights alone out of a decoding loop:
            # each int8 kernel would be converted to float once before the loop and every step would read
            # the float copy, 4x the bytes. Read together with the step's values (no copy, no work at run
            # time), the conversion stays in the step's product, which reads the int8 bytes.
            kernel, values = xla.optimization_barrier(kernel, values)
        if values.dtype == tf.int8:
            outputs = tf.cast(tf.matmul(values, kernel, transpose_b=True, output_type=tf.int32), tf.float32)
        else:
            outputs = tf.matmul(tf.cast(values, tf.float32), tf.cast(kernel, tf.float32), transpose_b=True)
        return tf.cast(outputs / (kernel_scale * scale), dtype), gradient

    return product(inputs, tf.convert_to_tensor(kernel), tf.convert_to_tensor(kernel_scale))


def _quantized_rows(inputs, quantizer):
    """(values [..., in], scale [..., 1] float32) of each row of `inputs` as `quantizer` quantizes them;
    without one, the inputs in float32 and a scale of 1.

    One row (decoding) keeps its integer values in float32: XLA's CPU runs that product over the int8
    kernel rows in about half the float32 time, an int8 row makes it a loop twice as slow. Several rows stay
    int8: XLA's CPU runs the int8 product with int32 sums at about twice the float32 speed."""
    if quantizer is None:
        return tf.cast(inputs, tf.float32), tf.ones((), tf.float32)
    if inputs.shape[:-1].num_elements() == 1 and isinstance(quantizer, keras.quantizers.AbsMaxQuantizer):
        return keras.quantizers.abs_max_quantize(
            tf.cast(inputs, tf.float32), axis=-1, value_range=quantizer.value_range, dtype="float32",
            epsilon=quantizer.epsilon,
        )
    values, scale = quantizer(inputs, axis=-1)
    return values, tf.cast(scale, tf.float32)


def dense(units, config, activation=None, use_bias=True):
    return Linear(units, activation=activation, use_bias=use_bias, kernel_initializer=_initializer(config))


@keras.saving.register_keras_serializable(package="tfformers")
class Conv1D(Linear):
    """A Dense layer whose checkpoint weight is stored [in, out] (GPT-2's `Conv1D`), Keras' own layout: the
    key rule does not transpose it."""


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
