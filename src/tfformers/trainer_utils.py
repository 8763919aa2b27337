"""The `transformers.trainer_utils` names transformers 4.x's TensorFlow example scripts import.

`set_seed` seeds Python, NumPy and TensorFlow (4.x's seeded TensorFlow too; transformers 5's seeds PyTorch
instead). `get_last_checkpoint`, `is_main_process` and `EvalPrediction` are transformers' own, which import
no PyTorch.
"""

import keras
import tensorflow as tf
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, EvalPrediction, get_last_checkpoint, is_main_process

__all__ = ["PREFIX_CHECKPOINT_DIR", "EvalPrediction", "get_last_checkpoint", "is_main_process", "set_seed"]


def set_seed(seed, deterministic=False):
    """Seeds Python's `random`, NumPy's global generator and TensorFlow's global seed (and Keras' seed
    generator) with `seed`, via `keras.utils.set_random_seed`. `deterministic=True` also turns on TensorFlow's
    deterministic ops (slower), as 4.x did."""
    keras.utils.set_random_seed(int(seed))
    if deterministic:
        tf.config.experimental.enable_op_determinism()
