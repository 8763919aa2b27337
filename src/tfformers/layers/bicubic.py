"""Bicubic resizing as PyTorch computes it (`interpolate(mode="bicubic", align_corners=False)`), which
`tf.image.resize` does not: PyTorch's cubic kernel has a = -0.75 (TensorFlow's -0.5) and reads edge pixels
for taps outside the image. Written as two matrix products, so it runs in any graph and under XLA."""

import tensorflow as tf

_A = -0.75  # PyTorch's cubic convolution coefficient


def _cubic_weights(t):
    """The four taps' weights at offsets -1, 0, 1, 2 for a fractional position t: [..., 4]."""

    def near(x):  # |x| <= 1
        return ((_A + 2) * x - (_A + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((_A * x - 5 * _A) * x + 8 * _A) * x - 4 * _A

    return tf.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], axis=-1)


def bicubic_matrix(in_size, out_size, dtype=tf.float32):
    """[out_size, in_size]: row i holds the weights of the input samples that output sample i reads."""
    in_size = tf.cast(in_size, tf.int32)
    scale = tf.cast(in_size, tf.float32) / tf.cast(out_size, tf.float32)
    source = (tf.cast(tf.range(out_size), tf.float32) + 0.5) * scale - 0.5  # align_corners=False, unclamped
    start = tf.floor(source)
    weights = _cubic_weights(source - start)  # [out, 4]
    taps = tf.cast(start, tf.int32)[:, None] + tf.range(-1, 3)[None, :]
    taps = tf.clip_by_value(taps, 0, in_size - 1)  # outside the image: the edge sample
    matrix = tf.reduce_sum(tf.one_hot(taps, in_size) * weights[..., None], axis=1)
    return tf.cast(matrix, dtype)


def bicubic_resize(image, height, width):
    """[in_height, in_width, channels] -> [height, width, channels]."""
    rows = bicubic_matrix(tf.shape(image)[0], height, image.dtype)
    columns = bicubic_matrix(tf.shape(image)[1], width, image.dtype)
    return tf.einsum("hi,ijc,wj->hwc", rows, image, columns)
