"""Keras training: default losses equal to PyTorch transformers', labels in every form, real learning.

1. Default losses: for every (architecture, head) of the registry, `compile()` without a loss gives the loss
   PyTorch transformers computes for the same weights and labels -- through `evaluate()`, `compute_loss()`
   and the `loss` output of a call with labels, all three. `loss=None` means no loss, a user loss wins,
   XLA (`jit_compile=True`) with `steps_per_execution > 1` trains exactly as eager.
2. Labels: `fit(x, y)`, datasets of `(x, y)` / `(x, y, sample_weight)`, labels inside `x`, `prepare_tf_dataset`
   all give the same loss, the same gradients and the same Keras metric values.
3. Learning: the real MiniLM fine-tuned on BBC News topics (the one slow test), masked-LM training on BBC
   text, mixed precision. (`tf.distribute` is in test_distributed.py: it needs a fresh process.)
"""

import dataclasses
import time
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from architectures import ARCHITECTURES, DECODERS, HEAD_CASES, config_for, make_inputs
from assets import BBC_CLASSES, bbc_articles, minilm_dir
from oracle import torch_model

import tfformers

BERT = ARCHITECTURES[0]
LOSS_TOLERANCE = 1e-5  # fp32, |Δ| of a scalar loss
NO_DROPOUT = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)

# MiniLM on BBC News (section 4), sized for about 3 minutes on 2 CPU cores.
BBC_PARAGRAPHS, BBC_MAX_LENGTH, BBC_BATCH, BBC_EPOCHS, BBC_LEARNING_RATE = 1, 64, 32, 2, 1e-4
MLM_ARTICLES_PER_CLASS, MLM_BATCH, MLM_EPOCHS, MLM_LEARNING_RATE = 60, 16, 2, 1e-4


def tf_class(head):
    return getattr(tfformers, "TF" + head)


# ------------------------------------------------------------------------------------------------- labels


def make_labels(arch, head, config, inputs, seed=0):
    """Labels in PyTorch transformers' names for `head`, with -100 entries and -100 on every padding token
    (what the collators produce), so a loss that counted padding or ignored entries would differ."""
    rng = np.random.default_rng(seed)
    mask = inputs["attention_mask"]
    batch = mask.shape[0]

    def token_labels(num_classes, keep=0.5):
        labels = rng.integers(0, num_classes, size=mask.shape)
        labels[rng.random(mask.shape) > keep] = -100  # masked LM: only the corrupted tokens count
        labels[mask == 0] = -100
        labels[0, 1] = 1  # never all ignored
        return labels

    if head.endswith("ForSequenceClassification"):
        if config.problem_type == "regression" or config.num_labels == 1:
            return {"labels": rng.normal(size=(batch,)).astype(np.float32)}
        if config.problem_type == "multi_label_classification":
            return {"labels": (rng.random((batch, config.num_labels)) > 0.5).astype(np.float32)}
        labels = rng.integers(0, config.num_labels, size=(batch,))
        labels[-1] = -100
        return {"labels": labels}
    if head.endswith("ForTokenClassification"):
        return {"labels": token_labels(config.num_labels, keep=0.8)}
    if head.endswith(("ForMaskedLM", "LMHeadModel", "ForCausalLM")):
        return {"labels": token_labels(config.vocab_size)}
    if head.endswith("ForPreTraining"):
        return {"labels": token_labels(config.vocab_size), "next_sentence_label": rng.integers(0, 2, size=(batch,))}
    if head.endswith("ForQuestionAnswering"):
        seq = mask.shape[1]
        # beyond the input: ignored; negative: clamped to 0 ([CLS]) and counted -- transformers' rule
        return {
            "start_positions": np.resize([2, seq + 5, -1, 1], batch),
            "end_positions": np.resize([4, 6, seq, 3], batch),
        }
    if head.endswith("ForMultipleChoice"):
        return {"labels": rng.integers(0, 2, size=(batch,))}
    raise AssertionError(f"no labels for {head}")


def as_keras_y(model, labels):
    """`y` the Keras way: the tensor itself for a single label, else a dict named like the labels."""
    return labels["labels"] if list(labels) == ["labels"] else dict(labels)


# ------------------------------------------------------------------------------------- 1. default losses


def _loss_cases():
    cases = []
    for arch, head in HEAD_CASES:
        if head.endswith("Model"):
            continue
        if head.endswith("ForSequenceClassification"):
            cases.append(pytest.param(arch, head, {}, id=f"{head}-single_label"))
            cases.append(pytest.param(arch, head, {"num_labels": 1}, id=f"{head}-regression"))
            cases.append(pytest.param(
                arch, head, {"problem_type": "multi_label_classification"}, id=f"{head}-multi_label"
            ))
        else:
            cases.append(pytest.param(arch, head, {}, id=head))
    return cases


LOSS_DELTAS = {}  # case id -> max |Δ| against torch, printed at the end of the module (pytest -s)


@pytest.fixture(scope="module", autouse=True)
def _report_loss_deltas():
    yield
    if LOSS_DELTAS:
        print("\nloss parity, max |Δ| vs PyTorch transformers:")
        for name, delta in LOSS_DELTAS.items():
            print(f"  {name:55s} {delta:.2e}")


@pytest.mark.parametrize("arch, head, overrides", _loss_cases())
def test_default_loss_equals_torch(arch, head, overrides, tmp_path, request):
    import torch

    config = config_for(arch, head, **overrides)
    pt_model = torch_model(head, config)
    pt_model.save_pretrained(tmp_path)
    model = tf_class(head).from_pretrained(tmp_path)

    inputs = make_inputs(arch, model.config, head)
    labels = make_labels(arch, head, model.config, inputs)
    with torch.no_grad():
        expected = pt_model(
            **{k: torch.as_tensor(v) for k, v in {**inputs, **labels}.items()}
        ).loss.item()
    assert np.isfinite(expected)

    # 1. the loss output of a call with the labels in the inputs (transformers' historical way)
    called = model({**inputs, **labels}).loss
    assert called.dtype == tf.float32 and called.shape == ()
    # 2. compile() without a loss, then compute_loss / evaluate with Keras-style y. (Eager: tracing 23 graphs
    # would dominate this module's time; graph and XLA training run in the tests below.)
    model.compile(optimizer="sgd", run_eagerly=True)
    y = as_keras_y(model, labels)
    computed = model.compute_loss(inputs, y, model(inputs), training=False)
    evaluated = model.evaluate(inputs, y, batch_size=len(inputs["input_ids"]), verbose=0)

    deltas = [abs(float(value) - expected) for value in (called, computed, evaluated)]
    LOSS_DELTAS[request.node.callspec.id] = max(deltas)
    assert max(deltas) <= LOSS_TOLERANCE, (float(called), float(computed), evaluated, expected)


@pytest.mark.parametrize("arch, head", [
    (BERT, "BertForTokenClassification"), (BERT, "BertForMaskedLM"), (DECODERS[0], "GPT2LMHeadModel")
], ids=lambda value: getattr(value, "name", value))
def test_padding_never_counts(arch, head):
    """The same examples padded to 9 or to 14 tokens (labels -100 there) give the same loss. Padding on the
    right, as training batches are: with left padding, a causal LM predicts the first real token from a
    padding position (in transformers too, whose loss tfformers matches)."""
    model = tf_class(head).from_config(config_for(arch, head))
    model.build_with_dummy_inputs()
    model.compile(run_eagerly=True)
    inputs = make_inputs(dataclasses.replace(arch, decoder=False), model.config, head)
    labels = make_labels(arch, head, model.config, inputs)["labels"]
    extra = 5
    padded = {k: np.pad(v, [(0, 0), (0, extra)], constant_values=0) for k, v in inputs.items()}
    padded_labels = np.pad(labels, [(0, 0), (0, extra)], constant_values=-100)
    short = model.evaluate(inputs, labels, verbose=0)
    long = model.evaluate(padded, padded_labels, verbose=0)
    assert abs(short - long) <= 1e-6 and short > 0


def test_loss_none_means_no_loss_and_a_user_loss_replaces_the_default():
    head = "BertForSequenceClassification"
    model = tf_class(head).from_config(config_for(BERT, head))
    model.build_with_dummy_inputs()
    inputs = make_inputs(BERT, model.config, head)
    y = np.array([0, 2, 1])
    logits = model(inputs).logits

    model.compile(optimizer="sgd", loss=None, run_eagerly=True)
    with pytest.raises(ValueError, match="No loss"):
        model.fit(inputs, y, verbose=0)

    # A user loss sees y and the task's output (the logits), and nothing else is added to it.
    model.compile(optimizer="sgd", loss=lambda y_true, y_pred: keras.ops.mean(y_pred**2), run_eagerly=True)
    assert model.evaluate(inputs, y, verbose=0) == pytest.approx(float(tf.reduce_mean(logits**2)), abs=1e-6)
    model.compile(
        optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), run_eagerly=True
    )
    keras_ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, logits)
    assert model.evaluate(inputs, y, verbose=0) == pytest.approx(float(keras_ce), abs=1e-6)
    # ... and compile() without a loss brings the default back
    model.compile(optimizer="sgd", run_eagerly=True)
    default = tfformers.losses.sequence_classification_loss(y, logits, num_labels=3)
    assert model.evaluate(inputs, y, verbose=0) == pytest.approx(float(default), abs=1e-6)


# ------------------------------------------------------------------------------------ 2. labels, every way


@pytest.fixture(scope="module")
def saved_tiny(tmp_path_factory):
    """head -> folder of a tiny BERT with that head and no dropout (so training steps are deterministic)."""
    folders = {}

    def get(head):
        if head not in folders:
            keras.utils.set_random_seed(0)
            model = tf_class(head).from_config(config_for(BERT, head, **NO_DROPOUT))
            model.build_with_dummy_inputs()
            folders[head] = tmp_path_factory.mktemp(head)
            model.save_pretrained(folders[head])
        return folders[head]

    return get


def classification_data(model, n=8, seq=9):
    """Padded inputs and labels chosen so that exactly half the untrained model's predictions are right."""
    rng = np.random.default_rng(3)
    lengths = rng.integers(4, seq + 1, size=n)
    lengths[0] = seq
    mask = (np.arange(seq)[None, :] < lengths[:, None]).astype(np.int32)
    inputs = {
        "input_ids": np.where(mask, rng.integers(3, 99, size=(n, seq)), 0).astype(np.int32),
        "attention_mask": mask,
        "token_type_ids": np.zeros((n, seq), np.int32),
    }
    predicted = np.argmax(model(inputs).logits.numpy(), axis=-1)
    wrong = (predicted + 1) % model.config.num_labels
    labels = np.where(np.arange(n) % 2 == 0, predicted, wrong).astype(np.int32)
    return inputs, labels


def numpy_ce(logits, labels, weights=None):
    logits = logits.astype(np.float64)
    log_probs = logits - logits.max(-1, keepdims=True)
    log_probs -= np.log(np.exp(log_probs).sum(-1, keepdims=True))
    ce = -log_probs[np.arange(len(labels)), labels]
    weights = np.ones_like(ce) if weights is None else weights
    return float((ce * weights).sum() / weights.sum())


def label_forms(inputs, labels, weights=None, batch_size=None):
    """name -> fit/evaluate keyword arguments: every way a user passes labels."""
    n = batch_size or len(labels)
    ones = np.ones(len(labels), np.float32) if weights is None else weights
    with_labels = {**inputs, "labels": labels}
    return {
        "fit(x, y)": dict(x=inputs, y=labels, batch_size=n),
        "fit(x, y, sample_weight=ones)": dict(x=inputs, y=labels, sample_weight=ones, batch_size=n),
        "dataset (x, y)": dict(x=tf.data.Dataset.from_tensor_slices((inputs, labels)).batch(n)),
        "dataset (x, y, ones)": dict(x=tf.data.Dataset.from_tensor_slices((inputs, labels, ones)).batch(n)),
        "labels in x": dict(x=with_labels, batch_size=n),
        "dataset of x with labels": dict(x=tf.data.Dataset.from_tensor_slices(with_labels).batch(n)),
    }


def one_step(model, initial, form, metrics=None, run_eagerly=True):
    """`model` reset to `initial` weights, one SGD step on `form`: (history, weight change per variable).

    Eager by default: the label handling is the same Python either way, and every graph trace costs seconds
    on a small CPU (graph and XLA training are covered by the XLA test and section 4)."""
    for weight, value in zip(model.trainable_weights, initial):
        weight.assign(value)
    model.compile(optimizer=keras.optimizers.SGD(1.0), metrics=metrics, run_eagerly=run_eagerly)
    history = model.fit(**form, epochs=1, shuffle=False, verbose=0).history
    deltas = [w.numpy() - b for w, b in zip(model.trainable_weights, initial)]
    return history, deltas


def initial_weights(model):
    return [w.numpy().copy() for w in model.trainable_weights]


def test_every_label_form_gives_the_same_loss_gradients_and_metrics(saved_tiny):
    head = "BertForSequenceClassification"
    model = tf_class(head).from_pretrained(saved_tiny(head))
    initial = initial_weights(model)
    inputs, labels = classification_data(model)
    logits = model(inputs).logits.numpy()
    expected_loss = numpy_ce(logits, labels)
    expected_accuracy = float(np.mean(np.argmax(logits, -1) == labels))
    assert expected_accuracy == 0.5

    results = {}
    for name, form in label_forms(inputs, labels).items():
        history, deltas = one_step(model, initial, form, metrics=[keras.metrics.SparseCategoricalAccuracy()])
        assert history["loss"][0] == pytest.approx(expected_loss, abs=1e-5), name
        assert history["sparse_categorical_accuracy"][0] == pytest.approx(expected_accuracy), name
        results[name] = deltas

    reference_deltas = results["fit(x, y)"]
    assert max(np.abs(d).max() for d in reference_deltas) > 1e-3, "the step changes the weights"
    assert all(np.abs(d).max() > 0 for d in reference_deltas[-2:]), "the classifier gets a gradient"
    for name, deltas in results.items():
        for ours, theirs in zip(deltas, reference_deltas):
            np.testing.assert_allclose(ours, theirs, atol=1e-6, err_msg=name)


def test_evaluate_and_predict_take_every_label_form(saved_tiny):
    head = "BertForSequenceClassification"
    model = tf_class(head).from_pretrained(saved_tiny(head))
    inputs, labels = classification_data(model)
    logits = model(inputs).logits.numpy()
    model.compile(metrics=[keras.metrics.SparseCategoricalAccuracy("accuracy")], run_eagerly=True)
    # batches of 3: several batches, the last one smaller
    for name, form in label_forms(inputs, labels, batch_size=3).items():
        result = model.evaluate(**form, verbose=0, return_dict=True)
        assert result["loss"] == pytest.approx(numpy_ce(logits, labels), abs=1e-5), name
        assert result["accuracy"] == pytest.approx(0.5), name
        predict_form = {k: v for k, v in form.items() if k in ("x", "batch_size")}
        predicted = model.predict(**predict_form, verbose=0)
        assert isinstance(predicted.logits, np.ndarray), name
        np.testing.assert_allclose(predicted.logits, logits, atol=1e-5, err_msg=name)


def test_sample_weight_is_a_weighted_mean(saved_tiny):
    head = "BertForSequenceClassification"
    model = tf_class(head).from_pretrained(saved_tiny(head))
    inputs, labels = classification_data(model)
    logits = model(inputs).logits.numpy()
    weights = np.array([1, 0, 2, 1, 0, 0, 1, 3], np.float32)
    model.compile(run_eagerly=True)
    for name, form in label_forms(inputs, labels, weights).items():
        if "ones" not in name and "sample_weight" not in name:
            continue
        result = model.evaluate(**form, verbose=0)
        assert result == pytest.approx(numpy_ce(logits, labels, weights), abs=1e-5), name


def test_prepare_tf_dataset_trains_like_fit_x_y(saved_tiny):
    """A 🤗 dataset of unpadded examples through prepare_tf_dataset: same loss and gradients as arrays."""
    import datasets

    head = "BertForSequenceClassification"
    model = tf_class(head).from_pretrained(saved_tiny(head))
    initial = initial_weights(model)
    inputs, labels = classification_data(model)
    lengths = inputs["attention_mask"].sum(-1)
    rows = {name: [list(v[i, : lengths[i]]) for i in range(len(labels))] for name, v in inputs.items()}
    dataset = datasets.Dataset.from_dict({**rows, "label": labels.tolist(), "text": ["unused"] * len(labels)})

    tf_dataset = model.prepare_tf_dataset(dataset, batch_size=len(labels), shuffle=False)
    history, deltas = one_step(model, initial, dict(x=tf_dataset), run_eagerly=False)  # in a graph
    reference, reference_deltas = one_step(model, initial, label_forms(inputs, labels)["fit(x, y)"])
    assert history["loss"][0] == pytest.approx(reference["loss"][0], abs=1e-6)
    for ours, theirs in zip(deltas, reference_deltas):
        np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_fit_on_a_tf_dataset_does_not_warn_that_shuffle_is_ignored(saved_tiny):
    """Keras 3 warns on every `fit(dataset)` that its default shuffle=True is ignored for a tf.data.Dataset;
    tfformers' fit defaults it to False there (the dataset orders itself), silent as Keras 2 was."""
    model = tf_class("BertForSequenceClassification").from_pretrained(saved_tiny("BertForSequenceClassification"))
    inputs, labels = classification_data(model)
    model.compile(optimizer=keras.optimizers.SGD(0.1), run_eagerly=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(tf.data.Dataset.from_tensor_slices((dict(inputs), labels)).batch(4), epochs=1, verbose=0)
    assert [str(w.message) for w in caught if "shuffle" in str(w.message)] == []


def test_question_answering_label_forms(saved_tiny):
    """Two labels: y as a dict or a tuple, datasets of (x, dict[, weights]), labels in x -- same loss and
    gradients; per-label Keras metrics (a dict keyed by label name) see start/end logits."""
    head = "BertForQuestionAnswering"
    model = tf_class(head).from_pretrained(saved_tiny(head))
    initial = initial_weights(model)
    n, seq = 6, 10
    rng = np.random.default_rng(5)
    inputs = {
        "input_ids": rng.integers(3, 99, size=(n, seq)).astype(np.int32),
        "attention_mask": np.ones((n, seq), np.int32),
    }
    out = model(inputs)
    start_logits, end_logits = out.start_logits.numpy(), out.end_logits.numpy()
    # half of the starts and a third of the ends are what the untrained model predicts
    start = np.where(np.arange(n) % 2 == 0, start_logits.argmax(-1), (start_logits.argmax(-1) + 1) % seq)
    end = np.where(np.arange(n) % 3 == 0, end_logits.argmax(-1), (end_logits.argmax(-1) + 1) % seq)
    as_dict = {"start_positions": start.astype(np.int32), "end_positions": end.astype(np.int32)}
    expected = {
        "loss": (numpy_ce(start_logits, start) + numpy_ce(end_logits, end)) / 2,
        "start_positions_accuracy": 0.5,
        "end_positions_accuracy": 1 / 3,
    }
    forms = {
        "fit(x, y=dict)": dict(x=inputs, y=as_dict, batch_size=n),
        "fit(x, y=(start, end))": dict(
            x=inputs, y=(as_dict["start_positions"], as_dict["end_positions"]), batch_size=n
        ),
        "dataset (x, dict)": dict(x=tf.data.Dataset.from_tensor_slices((inputs, as_dict)).batch(n)),
        "dataset (x, dict, ones)": dict(
            x=tf.data.Dataset.from_tensor_slices((inputs, as_dict, np.ones(n, np.float32))).batch(n)
        ),
        "labels in x": dict(x={**inputs, **as_dict}, batch_size=n),
    }
    results = {}
    for name, form in forms.items():
        metrics = {label: [keras.metrics.SparseCategoricalAccuracy("accuracy")] for label in as_dict}
        metric_form = dict(metrics=metrics) if "(start, end)" not in name else {}
        history, deltas = one_step(model, initial, form, **metric_form)
        # (Keras keeps a previous compile's metrics in the history when recompiled without any: loss only.)
        for key in expected if metric_form else ["loss"]:
            assert history[key][0] == pytest.approx(expected[key], abs=1e-5), (name, key)
        results[name] = deltas
    reference = results["fit(x, y=dict)"]
    assert max(np.abs(d).max() for d in reference) > 1e-3
    for name, deltas in results.items():
        for ours, theirs in zip(deltas, reference):
            np.testing.assert_allclose(ours, theirs, atol=1e-6, err_msg=name)


# ------------------------------------------------------------------------------------------ 2b. XLA


XLA_HEADS = ["BertForSequenceClassification", "BertForQuestionAnswering", "BertForPreTraining"]


@pytest.mark.parametrize("head", XLA_HEADS)
def test_xla_with_steps_per_execution_trains_as_eager(head, saved_tiny):
    """jit_compile=True (no data-dependent shapes in forward, loss or gradient) with two steps per execution,
    fed a dataset with the labels inside x: the same losses and weights as eager fit(x, y).

    Three heads cover one label tensor, a dict of labels with a dynamic ignore index (QA) and token-level plus
    sequence-level losses (pre-training); every loss function traces under XLA in test_losses.py and every
    forward pass in test_parity.py."""
    folder = saved_tiny(head)
    model = tf_class(head).from_pretrained(folder)
    initial = initial_weights(model)
    inputs = make_inputs(BERT, model.config, head, batch=8, seq=16, seed=2)
    labels = make_labels(BERT, head, model.config, inputs, seed=2)
    with_labels = tf.data.Dataset.from_tensor_slices({**inputs, **labels}).batch(4)
    runs = {}
    for mode, form, options in [
        ("eager", dict(x=inputs, y=as_keras_y(model, labels), batch_size=4), dict(run_eagerly=True)),
        ("xla", dict(x=with_labels), dict(jit_compile=True, steps_per_execution=2)),
    ]:
        for weight, value in zip(model.trainable_weights, initial):
            weight.assign(value)
        model.compile(optimizer=keras.optimizers.SGD(0.1), **options)
        history = model.fit(**form, epochs=3, shuffle=False, verbose=0).history
        runs[mode] = history["loss"], [w.numpy() for w in model.trainable_weights]
    assert model.jit_compile is True
    (eager_loss, eager_weights), (xla_loss, xla_weights) = runs["eager"], runs["xla"]
    np.testing.assert_allclose(xla_loss, eager_loss, atol=1e-5)
    assert xla_loss[-1] < xla_loss[0]
    for ours, theirs in zip(xla_weights, eager_weights):
        np.testing.assert_allclose(ours, theirs, atol=1e-5)


# -------------------------------------------------------------------------------------- 3. mixed precision


@pytest.fixture
def restore_float32_policy():
    yield
    keras.config.set_dtype_policy("float32")


@pytest.mark.parametrize("policy, compute_dtype", [("mixed_float16", tf.float16), ("mixed_bfloat16", tf.bfloat16)])
def test_mixed_precision_trains_with_float32_loss_and_softmax(
    policy, compute_dtype, saved_tiny, monkeypatch, restore_float32_policy
):
    head = "BertForSequenceClassification"
    softmax_dtypes = []
    softmax = tf.nn.softmax

    def recording_softmax(logits, axis=None, name=None):
        softmax_dtypes.append(tf.as_dtype(logits.dtype))
        return softmax(logits, axis=axis, name=name)

    monkeypatch.setattr(tf.nn, "softmax", recording_softmax)
    keras.config.set_dtype_policy(policy)  # the Keras way: a global policy before building the model
    model = tf_class(head).from_pretrained(saved_tiny(head))
    assert {w.dtype for w in model.weights} == {"float32"}, "variables stay float32"
    inputs, labels = classification_data(model)

    out = model({**inputs, "labels": labels})
    assert out.logits.dtype == compute_dtype
    assert out.loss.dtype == tf.float32
    assert softmax_dtypes and set(softmax_dtypes) == {tf.float32}, "attention softmax runs in float32"

    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    if policy == "mixed_float16":
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert model.compute_loss(inputs, labels, model(inputs)).dtype == tf.float32
    history = model.fit(inputs, labels, batch_size=8, epochs=10, verbose=0).history
    assert np.all(np.isfinite(history["loss"]))
    assert history["loss"][-1] < 0.5 * history["loss"][0], history["loss"]


# ------------------------------------------------------------------- 4. real training, offline: MiniLM on BBC


def bbc_text(article, paragraphs):
    """The title and the first `paragraphs` paragraphs of a BBC News article."""
    lines = [line.strip() for line in article.strip().split("\n") if line.strip()]
    return lines[0] + ". " + " ".join(lines[1 : paragraphs + 1])


@pytest.fixture(scope="module")
def minilm_tokenizer():
    return tfformers.AutoTokenizer.from_pretrained(minilm_dir())


def test_masked_lm_training_on_bbc_lowers_held_out_loss(minilm_tokenizer):
    """MiniLM with a new masked-LM head (the checkpoint has none) trained on BBC titles and leads: the loss on
    held-out articles, masked once with a fixed seed, goes down."""
    import datasets

    from tfformers.data import DataCollatorForLanguageModeling

    texts = [bbc_text(article, 1) for article, _ in bbc_articles(per_class=MLM_ARTICLES_PER_CLASS)]
    dataset = datasets.Dataset.from_dict({"text": texts}).train_test_split(test_size=0.2, seed=0)
    dataset = dataset.map(
        lambda batch: minilm_tokenizer(batch["text"], truncation=True, max_length=64),
        batched=True,
        remove_columns=["text"],
    )
    held_out = DataCollatorForLanguageModeling(minilm_tokenizer, seed=0)(list(dataset["test"]))
    held_out_labels = held_out.pop("labels")
    assert (held_out_labels != -100).sum() > 200

    model = tfformers.TFAutoModelForMaskedLM.from_pretrained(minilm_dir())
    model.compile(optimizer=keras.optimizers.Adam(MLM_LEARNING_RATE))
    before = model.evaluate(held_out, held_out_labels, batch_size=64, verbose=0)
    train = model.prepare_tf_dataset(
        dataset["train"],
        batch_size=MLM_BATCH,
        shuffle=True,
        seed=0,
        tokenizer=minilm_tokenizer,
        collate_fn=DataCollatorForLanguageModeling,
        collate_fn_args={"seed": 1},
    )
    history = model.fit(train, epochs=MLM_EPOCHS, verbose=0).history
    after = model.evaluate(held_out, held_out_labels, batch_size=64, verbose=0)
    print(f"\nMLM held-out loss {before:.3f} -> {after:.3f} ({len(train) * MLM_EPOCHS} steps; train {history['loss']})")
    assert after < before - 1.0, (before, after)


@pytest.mark.slow
def test_slow_minilm_fine_tuned_on_bbc_news_reaches_95_percent(minilm_tokenizer):
    """The one slow test (~3 minutes on 2 CPU cores): fine-tune the real MiniLM on BBC News topics from the
    title and the opening paragraphs, with a seeded 80/20 split; the held-out accuracy is at least 95%.

    The held-out articles go through the model once, in `predict` (an `evaluate` pass as well cost a second
    graph and as much compute again; Keras' accuracy metric against `predict` is tested on the tiny model in
    test_evaluate_and_predict_take_every_label_form). Without `jit_compile`, Keras compiles no XLA on a
    CPU-only machine: the training is one traced graph for every bucket length."""
    import datasets

    started = time.perf_counter()
    articles = bbc_articles()
    dataset = datasets.Dataset.from_dict(
        {
            "text": [bbc_text(article, BBC_PARAGRAPHS) for article, _ in articles],
            "label": [BBC_CLASSES.index(label) for _, label in articles],
        }
    )
    split = dataset.train_test_split(test_size=0.2, seed=0)
    split = split.map(
        lambda batch: minilm_tokenizer(batch["text"], truncation=True, max_length=BBC_MAX_LENGTH), batched=True
    )
    keras.utils.set_random_seed(0)  # the new classifier's initialization, dropout, the data order
    model = tfformers.TFAutoModelForSequenceClassification.from_pretrained(
        minilm_dir(),
        num_labels=len(BBC_CLASSES),
        id2label=dict(enumerate(BBC_CLASSES)),
        label2id={name: i for i, name in enumerate(BBC_CLASSES)},
    )
    train = model.prepare_tf_dataset(
        split["train"],
        batch_size=BBC_BATCH,
        shuffle=True,
        seed=0,
        tokenizer=minilm_tokenizer,
        bucket_boundaries=tuple(range(16, BBC_MAX_LENGTH + 1, 8)),
    )
    held_out = model.prepare_tf_dataset(split["test"], batch_size=64, shuffle=False, tokenizer=minilm_tokenizer)
    model.compile(
        optimizer=keras.optimizers.Adam(BBC_LEARNING_RATE),
        metrics=[keras.metrics.SparseCategoricalAccuracy("accuracy")],
    )
    history = model.fit(train, epochs=BBC_EPOCHS, verbose=0).history
    predicted = np.argmax(model.predict(held_out, verbose=0).logits, axis=-1)
    accuracy = float(np.mean(predicted == np.array(split["test"]["label"])))
    elapsed = time.perf_counter() - started
    print(f"\nBBC News held-out accuracy {accuracy:.4f} ({len(predicted)} articles) in {elapsed:.0f}s; train {history}")
    assert len(predicted) == len(split["test"])  # every held-out article scored: no batch dropped
    assert model.config.id2label[int(predicted[0])] in BBC_CLASSES
    assert accuracy >= 0.95


def test_fit_builds_its_state_without_iterating_the_dataset():
    """fit() creates the optimizer's and metrics' variables before Keras traces the step (else TensorFlow
    traces the step twice) from the dataset's element spec: drawing a batch would shift a shuffled
    dataset's order, the first epoch seeing its second shuffle."""
    from tfformers.modeling import _first_batch

    drawn = []

    def record(value):
        drawn.append(int(value))
        return value

    dataset = tf.data.Dataset.range(4).map(lambda i: tf.py_function(record, [i], tf.int64)).batch(2)
    x, y, sample_weight = _first_batch(dataset, None)
    assert drawn == [] and y is None and sample_weight is None
    assert x.dtype == tf.int64
