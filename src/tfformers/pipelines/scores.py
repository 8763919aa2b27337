"""The score functions pipelines apply to logits, in numpy as transformers' pipelines compute them."""

import numpy as np


def softmax(logits, axis=-1):
    shifted = np.exp(logits - np.max(logits, axis=axis, keepdims=True))
    return shifted / shifted.sum(axis=axis, keepdims=True)


def sigmoid(logits):
    return 1.0 / (1.0 + np.exp(-logits))
