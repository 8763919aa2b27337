"""PushToHubCallback and KerasMetricCallback against the LocalHub: background pushes that skip while one is
in flight, the final blocking push, training resumed from a checkpoint on the Hub, metrics in `logs`."""

import json
import threading

import hub_server
import keras
import numpy as np
import pytest
import tensorflow as tf
from architectures import ARCHITECTURES, config_for
from huggingface_hub import ModelCard
from safetensors.numpy import load as load_safetensors

import tfformers
from tfformers import KerasMetricCallback, PushToHubCallback

BERT = ARCHITECTURES[0]
FIT = dict(batch_size=4, shuffle=False, verbose=0)  # 16 examples: 4 steps per epoch


def compiled_classifier(seed=0):
    """A tiny BERT classifier without dropout, compiled with Adam and its default task loss."""
    keras.utils.set_random_seed(seed)
    config = config_for(BERT, "BertForSequenceClassification", hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0, num_hidden_layers=1)
    model = tfformers.TFAutoModelForSequenceClassification.from_config(config)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model


def data(n=16, seed=0):
    rng = np.random.default_rng(seed)
    input_ids = rng.integers(5, 99, size=(n, 8)).astype("int32")
    attention_mask = np.ones_like(input_ids)
    attention_mask[::3, 6:] = 0
    return {"input_ids": input_ids, "attention_mask": attention_mask}, rng.integers(0, 3, size=(n,))


def weights(model):
    return {key: param.to_numpy() for key, param in model.checkpoint_parameters().items()}


def assert_same_weights(actual, expected):
    assert actual.keys() == expected.keys()
    for key in expected:
        np.testing.assert_array_equal(actual[key], expected[key], err_msg=key)


def pushed_weights(commit):
    return load_safetensors(commit.files["model.safetensors"])


@pytest.fixture(scope="module")
def model():
    """One compiled classifier for the tests that only need *a* model to train: its traced train step is
    reused (each test trains it further)."""
    return compiled_classifier()


# --------------------------------------------------------------------------------- background pushes
def test_pushes_run_in_the_background_and_are_skipped_while_one_is_in_flight(model, hub, hub_repo_id, tmp_path,
                                                                           monkeypatch):
    release = threading.Event()
    original_commit = hub_server._Handler._commit

    def slow_commit(handler, *args):  # the Hub holds every commit until the test releases it
        release.wait(timeout=60)
        return original_commit(handler, *args)

    monkeypatch.setattr(hub_server._Handler, "_commit", slow_commit)

    class Probe(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.commits_at_epoch_end = []

        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                self.after_first_epoch = weights(self.model)
            landed = len(hub.commits(hub_repo_id)) - 1 if hub.repo_exists(hub_repo_id) else 0
            self.commits_at_epoch_end.append((epoch + 1, landed, release.is_set()))

        def on_train_end(self, logs=None):
            release.set()  # runs before PushToHubCallback.on_train_end (list order)

    (x, y), probe = data(), Probe()
    callback = PushToHubCallback(tmp_path / "out", hub_model_id=hub_repo_id, save_strategy="epoch")
    model.fit(x, y, epochs=3, callbacks=[probe, callback], **FIT)

    # Training went on while the first push was held by the Hub: no model commit had landed by epoch 3.
    assert probe.commits_at_epoch_end == [(1, 0, False), (2, 0, False), (3, 0, False)]
    assert callback.skipped == [2, 3], "a push still uploading makes the next save points skip, not queue"
    assert callback.pushes == ["Training in progress, epoch 1", "End of training"]
    history = hub.commits(hub_repo_id)
    assert [c.title for c in history] == ["End of training", "Training in progress, epoch 1", "initial commit"]
    assert_same_weights(pushed_weights(history[1]), probe.after_first_epoch)
    assert_same_weights(pushed_weights(history[0]), weights(model))
    assert callback.last_commit.oid == history[0].sha


def test_final_push_is_blocking_and_steps_strategy_pushes_every_n_batches(model, hub, hub_repo_id, tmp_path):
    x, y = data()
    callback = PushToHubCallback(tmp_path / "out", hub_model_id=hub_repo_id, save_strategy="steps", save_steps=3)
    model.fit(x, y, epochs=2, callbacks=[callback], **FIT)  # 8 steps: save points at steps 3 and 6
    pushed_steps = [int(m.rsplit(" ", 1)[1]) for m in callback.pushes if "step" in m]
    assert sorted(pushed_steps + callback.skipped) == [3, 6] and pushed_steps[0] == 3
    assert callback.pushes[-1] == "End of training" and not callback.push_in_progress
    history = hub.commits(hub_repo_id)  # on_train_end returned only once the final commit was on the Hub
    assert history[0].title == "End of training" and len(history) == 1 + len(callback.pushes)
    assert_same_weights(pushed_weights(history[0]), weights(model))
    assert {"config.json", "model.safetensors", "README.md"} <= set(history[0].files)
    assert not any(name.startswith("checkpoint/") for name in history[0].files)


def test_a_failed_background_push_is_logged_and_the_final_push_lands(model, hub, hub_repo_id, tmp_path, caplog):
    x, y = data()
    hub.fail_next_commit = True  # the epoch-1 push fails mid-commit, in the background
    callback = PushToHubCallback(tmp_path / "out", hub_model_id=hub_repo_id)
    with caplog.at_level("WARNING", logger="tfformers"):
        model.fit(x, y, epochs=1, callbacks=[callback], **FIT)
    assert hub.fail_next_commit is False
    assert any("failed" in r.getMessage() and hub_repo_id in r.getMessage() for r in caplog.records)
    assert [c.title for c in hub.commits(hub_repo_id)] == ["End of training", "initial commit"]
    assert_same_weights(pushed_weights(hub.commits(hub_repo_id)[0]), weights(model))


def test_invalid_settings_are_refused():
    with pytest.raises(ValueError, match="save_strategy"):
        PushToHubCallback("out", save_strategy="hourly")
    with pytest.raises(ValueError, match="save_steps"):
        PushToHubCallback("out", save_strategy="steps")
    with pytest.raises(ValueError, match="checkpoint=True"):
        PushToHubCallback("out", save_strategy="steps", save_steps=2, checkpoint=True)


# ----------------------------------------------------------------------------------------- resuming
def test_training_resumed_from_the_hub_continues_the_same_loss_trajectory(hub, hub_repo_id, tmp_path):
    x, y = data()
    uninterrupted = compiled_classifier(seed=0).fit(x, y, epochs=3, **FIT).history["loss"]

    first = compiled_classifier(seed=0)
    run = PushToHubCallback(tmp_path / "run", hub_model_id=hub_repo_id, checkpoint=True, batch_size=4)
    stopped = first.fit(x, y, epochs=1, callbacks=[run], **FIT).history["loss"]
    files = hub.files(hub_repo_id)
    assert {"checkpoint/model.safetensors", "checkpoint/optimizer.safetensors",
            "checkpoint/trainer_state.json"} <= set(files)
    assert not any(name.endswith((".pkl", ".pickle", ".bin", ".h5", ".npy")) for name in files)
    state = json.loads(files["checkpoint/trainer_state.json"])
    assert (state["epoch"], state["global_step"], state["optimizer"]["class_name"]) == (1, 4, "Adam")
    slots = load_safetensors(files["checkpoint/optimizer.safetensors"])
    query = "bert.encoder.layer.0.attention.self.query.weight"
    assert slots[f"{query}/momentum"].shape == weights(first)[query].shape  # PyTorch layout, like the weight
    assert int(slots["iteration"]) == 4

    resumed = compiled_classifier(seed=1)  # other initial weights: everything must come from the Hub
    resume = resumed.load_repo_checkpoint(hub_repo_id)
    assert resume["epoch"] == 1 and resume["global_step"] == 4
    assert int(resumed.optimizer.iterations) == 4
    assert_same_weights(weights(resumed), weights(first))
    again = PushToHubCallback(tmp_path / "run2", hub_model_id=hub_repo_id, checkpoint=True, batch_size=4)
    rest = resumed.fit(x, y, epochs=3, initial_epoch=resume["epoch"], callbacks=[again], **FIT).history["loss"]

    print("\nepoch  uninterrupted  stopped after epoch 1 + resumed from the Hub")
    for epoch, (a, b) in enumerate(zip(uninterrupted, stopped + rest), start=1):
        print(f"{epoch:>5}  {a:.8f}     {b:.8f}   (|diff| {abs(a - b):.1e})")
    assert len(stopped + rest) == 3
    np.testing.assert_allclose(stopped + rest, uninterrupted, rtol=0, atol=1e-6)

    final = json.loads(hub.files(hub_repo_id)["checkpoint/trainer_state.json"])
    assert final["epoch"] == 3 and final["global_step"] == 12
    assert [row["epoch"] for row in final["history"]] == [1, 2, 3]
    card = ModelCard(hub.files(hub_repo_id)["README.md"].decode())
    table = [line for line in card.text.splitlines() if line.startswith("| ") and line.split("|")[2].strip().isdigit()]
    assert [row.split("|")[2].strip() for row in table] == ["1", "2", "3"], "the card spans the resumed run"
    (result,) = card.data.eval_results
    assert result.metric_name == "Train Loss" and result.metric_value == round(rest[-1], 4)


def test_resuming_needs_a_matching_optimizer(tmp_path):
    model = compiled_classifier()
    tfformers.sharing.save_checkpoint(model, tmp_path, epoch=0)  # builds the optimizer's variables
    assert model.load_repo_checkpoint(tmp_path)["epoch"] == 0  # a local folder works like a repo
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    with pytest.raises(tfformers.CheckpointError, match="Adam"):
        model.load_repo_checkpoint(tmp_path)
    model.compile(optimizer=keras.optimizers.Adam(1e-3, amsgrad=True))
    with pytest.raises(tfformers.CheckpointError, match="velocity_hat"):
        model.load_repo_checkpoint(tmp_path)
    uncompiled = tfformers.TFAutoModelForSequenceClassification.from_config(model.config)
    with pytest.raises(tfformers.CheckpointError, match="compile"):
        uncompiled.load_repo_checkpoint(tmp_path)


def test_mixed_precision_optimizer_state_round_trips(tmp_path):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")  # compile() wraps the optimizer in a LossScaleOptimizer
    try:
        trained, other = compiled_classifier(seed=0), compiled_classifier(seed=1)
    finally:
        keras.config.set_dtype_policy(previous)
    # Two eager steps (no tracing): built inside LossScaleOptimizer.apply, the inner optimizer's slots
    # live under another name scope than when load_repo_checkpoint builds them.
    variables = trained.trainable_variables
    for step in range(2):
        trained.optimizer.apply_gradients([(tf.fill(v.shape, 0.5 + step), v) for v in variables])
    assert any(v.path.startswith("loss_scale_optimizer/") and v.path.endswith("_momentum")
               for v in trained.optimizer.variables)
    tfformers.sharing.save_checkpoint(trained, tmp_path, epoch=1)
    assert other.load_repo_checkpoint(tmp_path)["global_step"] == 2
    assert type(other.optimizer).__name__ == "LossScaleOptimizer"
    saved, restored = trained.optimizer.variables, other.optimizer.variables
    assert len(saved) == len(restored) > 40
    for a, b in zip(saved, restored):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(b), keras.ops.convert_to_numpy(a), err_msg=a.path)


# ------------------------------------------------------------------------------------------ metrics
def test_keras_metric_callback_feeds_early_stopping_and_the_model_card(model, hub, hub_repo_id, tmp_path):
    x, y = data()
    eval_x, eval_y = data(12, seed=1)
    # dicts with the labels inside, as prepare_tf_dataset makes them; 12 examples in batches of 5
    eval_dataset = tf.data.Dataset.from_tensor_slices({**eval_x, "labels": eval_y}).batch(5)
    scores, seen = iter([0.5, 0.4, 0.9, 0.9, 0.9]), []

    def metric_fn(eval_predictions):
        predictions, labels = eval_predictions
        seen.append((predictions, labels))
        return {"accuracy": float((predictions.argmax(-1) == labels).mean()), "score": next(scores)}

    callbacks = [
        KerasMetricCallback(metric_fn, eval_dataset),
        keras.callbacks.EarlyStopping(monitor="score", mode="max", patience=1),
        PushToHubCallback(tmp_path / "out", hub_model_id=hub_repo_id, save_strategy="no", license="apache-2.0",
                          datasets=["bbc-news"], batch_size=4),
    ]
    history = model.fit(x, y, epochs=5, callbacks=callbacks, **FIT).history
    assert history["score"] == [0.5, 0.4], "EarlyStopping saw the metric and stopped after epoch 2"
    predictions, labels = seen[-1]
    np.testing.assert_array_equal(labels, eval_y)
    np.testing.assert_allclose(predictions, model(eval_x).logits.numpy(), atol=1e-5)
    assert history["accuracy"][-1] == float((predictions.argmax(-1) == eval_y).mean())

    card = ModelCard(hub.files(hub_repo_id)["README.md"].decode())
    results = {r.metric_name: (r.metric_value, r.dataset_split, r.dataset_name) for r in card.data.eval_results}
    assert results["Score"] == (0.4, "validation", "bbc-news")
    assert results["Accuracy"][1] == "validation" and results["Train Loss"][1] == "train"
    assert "| Train Loss | Accuracy | Score | Epoch |" in card.text


def test_keras_metric_callback_takes_arrays_and_chooses_outputs_and_labels(model):
    eval_x, eval_y = data(7, seed=2)
    received = []

    def metric_fn(eval_predictions):
        received.append(eval_predictions)
        return {"count": np.int64(len(eval_predictions[1]))}

    callback = KerasMetricCallback(metric_fn, (eval_x, eval_y), batch_size=3, output_cols="logits")
    callback.set_model(model)
    logs = {"loss": 1.0}
    callback.on_epoch_end(0, logs)
    assert logs == {"loss": 1.0, "count": 7} and type(logs["count"]) is int
    predictions, labels = received[0]
    np.testing.assert_array_equal(labels, eval_y)
    np.testing.assert_allclose(predictions, model(eval_x).logits.numpy(), atol=1e-5)
    with pytest.raises(TypeError, match="dict"):
        bad = KerasMetricCallback(lambda p: 0.5, (eval_x, eval_y))
        bad.set_model(model)
        bad.on_epoch_end(0, {})


def test_keras_metric_callback_can_score_generated_sequences(model, monkeypatch):
    def generate(input_ids, attention_mask, max_new_tokens):  # a stand-in for a decoder's generate()
        assert attention_mask is not None
        return tf.concat([input_ids, tf.fill([tf.shape(input_ids)[0], max_new_tokens], 7)], 1)

    monkeypatch.setattr(model, "generate", generate, raising=False)
    eval_x, eval_y = data(5, seed=3)
    received = []
    callback = KerasMetricCallback(lambda p: received.append(p) or {"n": 1}, {**eval_x, "labels": eval_y},
                                   batch_size=2, predict_with_generate=True, generate_kwargs={"max_new_tokens": 2})
    callback.set_model(model)
    callback.on_epoch_end(0, {})
    (predictions, labels), = received
    np.testing.assert_array_equal(predictions[:, :8], eval_x["input_ids"])
    assert (predictions[:, 8:] == 7).all() and predictions.shape == (5, 10)
    np.testing.assert_array_equal(labels, eval_y)
