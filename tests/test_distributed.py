"""tf.distribute: MirroredStrategy over two logical CPU devices trains exactly like one device.

Logical devices must be configured before TensorFlow initializes its devices, which the test session has
long done, so the run happens in a fresh Python process: this file is also the script it runs.
"""

import json
import os
import subprocess
import sys

import numpy as np

GLOBAL_BATCH = 8


def test_mirrored_strategy_matches_one_device(tmp_path):
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}
    result_file = tmp_path / "result.json"
    completed = subprocess.run(
        [sys.executable, __file__, str(tmp_path), str(result_file)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    result = json.loads(result_file.read_text())

    assert result["num_replicas_in_sync"] == 2
    assert result["variable_type"] == "MirroredVariable"
    single, mirrored = result["single"], result["mirrored"]
    # Same global batch (two replicas of 4 examples): same loss each epoch, same weights after.
    np.testing.assert_allclose(mirrored["history"], single["history"], atol=1e-5)
    assert single["history"][-1] < single["history"][0]
    np.testing.assert_allclose(mirrored["evaluate"], single["evaluate"], atol=1e-5)
    assert result["max_weight_difference"] <= 1e-5
    assert result["max_weight_change"] > 1e-2, "training moved the weights"


# ---------------------------------------------------------------------------- the script run in a subprocess


def _run(workdir, result_file):
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
    )
    import keras

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from architectures import ARCHITECTURES, config_for

    import tfformers

    head = "BertForSequenceClassification"
    keras.utils.set_random_seed(0)
    config = config_for(ARCHITECTURES[0], head, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    folder = os.path.join(workdir, "tiny")
    start = tfformers.TFBertForSequenceClassification.from_config(config)
    start.build_with_dummy_inputs()
    start.save_pretrained(folder)
    initial = [w.numpy() for w in start.trainable_weights]

    rng = np.random.default_rng(0)
    n, seq = 4 * GLOBAL_BATCH, 12
    lengths = rng.integers(5, seq + 1, size=n)
    mask = (np.arange(seq)[None, :] < lengths[:, None]).astype(np.int32)
    x = {"input_ids": np.where(mask, rng.integers(3, 99, size=(n, seq)), 0).astype(np.int32), "attention_mask": mask}
    y = rng.integers(0, 3, size=n).astype(np.int32)

    def train():
        model = tfformers.TFBertForSequenceClassification.from_pretrained(folder)
        model.compile(optimizer=keras.optimizers.SGD(0.5))  # the default loss
        history = model.fit(x, y, batch_size=GLOBAL_BATCH, epochs=3, shuffle=False, verbose=0).history["loss"]
        evaluated = model.evaluate(x, y, batch_size=GLOBAL_BATCH, verbose=0)
        return model, {"history": history, "evaluate": evaluated}

    single_model, single = train()
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        mirrored_model, mirrored = train()
    weights = [w.numpy() for w in single_model.trainable_weights]
    result = {
        "num_replicas_in_sync": strategy.num_replicas_in_sync,
        "variable_type": type(mirrored_model.trainable_weights[0].value).__name__,
        "single": single,
        "mirrored": mirrored,
        "max_weight_difference": max(
            float(np.abs(a - b.numpy()).max()) for a, b in zip(weights, mirrored_model.trainable_weights)
        ),
        "max_weight_change": max(float(np.abs(a - b).max()) for a, b in zip(weights, initial)),
    }
    with open(result_file, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    _run(sys.argv[1], sys.argv[2])
