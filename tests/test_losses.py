"""tfformers.losses against PyTorch transformers' own loss code on the same numbers.

The oracle is transformers' ``loss_utils`` functions (what ``model.loss_function`` dispatches to) and
``torch.nn.CrossEntropyLoss`` exactly as ``BertForPreTraining``/``BertForMultipleChoice`` call it.
"""

import types

import numpy as np
import pytest
import tensorflow as tf
import torch
import torch.nn.functional as F
from transformers.loss import loss_utils

from tfformers import losses

TOL = 1e-5
B, T, C, V = 4, 7, 5, 11  # batch, sequence, classes, vocab


def rng(seed=0):
    return np.random.RandomState(seed)


def logits_np(shape, seed=0):
    return (rng(seed).randn(*shape) * 3).astype(np.float32)


def class_labels(shape, n, seed=1, ignore_frac=0.3):
    r = rng(seed)
    y = r.randint(0, n, size=shape)
    y[r.rand(*shape) < ignore_frac] = -100
    return y


def padded_labels(shape, n, seed=1):
    """Token labels with -100 scattered in and a right-padded tail on every row but the first."""
    y = class_labels(shape, n, seed)
    for i in range(1, shape[0]):
        y[i, shape[1] - i :] = -100
    return y


def tt(x):
    return torch.from_numpy(np.asarray(x))


def value(x):
    x = tf.convert_to_tensor(x)
    assert x.dtype == tf.float32 and x.shape.rank == 0, (x.dtype, x.shape)
    return float(x.numpy())


def assert_close(ours, theirs, tol=TOL):
    theirs = float(theirs)
    assert np.isfinite(theirs), "oracle is not finite; compare only finite values"
    assert abs(value(ours) - theirs) <= tol, (value(ours), theirs)


def config(num_labels, problem_type=None):
    return types.SimpleNamespace(num_labels=num_labels, problem_type=problem_type)


def torch_weighted_ce(labels, logits, w, ignore_index=-100):
    """sum(w * ce * mask) / sum(w * mask) with ce from torch, per token, weights per example."""
    labels, logits = tt(labels).long(), tt(logits)
    per = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=ignore_index, reduction="none"
    )
    mask = (labels.reshape(-1) != ignore_index).float()
    wt = tt(w).float().reshape(-1, *([1] * (labels.dim() - 1))).expand(labels.shape).reshape(-1)
    return (per * mask * wt).sum() / (mask * wt).sum()


# --------------------------------------------------------------------------------------------------
# sequence classification
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.int64, np.int32])
def test_sequence_classification_single_label(dtype):
    logits = logits_np((B, C))
    labels = rng(2).randint(0, C, size=(B,)).astype(dtype)
    labels[1] = -100  # CrossEntropyLoss's default ignore_index applies here too
    ours = losses.sequence_classification_loss(tf.constant(labels), tf.constant(logits), num_labels=C)
    # torch infers single-label for int32 too, but its cross_entropy then rejects int32 targets
    theirs = loss_utils.ForSequenceClassificationLoss(tt(labels).long(), tt(logits), config(C))
    assert_close(ours, theirs)


@pytest.mark.parametrize("label_shape", [(B,), (B, 1), (1,), (1, 1)])
def test_sequence_classification_regression_single_output(label_shape):
    n = label_shape[0]
    logits = logits_np((n, 1))
    labels = rng(3).randn(*label_shape).astype(np.float32)
    ours = losses.sequence_classification_loss(labels, logits, num_labels=1)
    theirs = loss_utils.ForSequenceClassificationLoss(tt(labels), tt(logits), config(1))
    assert_close(ours, theirs)


def test_sequence_classification_regression_int_labels_are_regression():
    # num_labels == 1 means regression whatever the label dtype (e.g. STS-B scores stored as ints)
    logits = logits_np((B, 1))
    labels = np.array([0, 3, 5, 1], dtype=np.int64)
    ours = losses.sequence_classification_loss(labels, logits, num_labels=1)
    theirs = F.mse_loss(tt(logits).squeeze(), tt(labels).float())
    assert_close(ours, theirs)


def test_sequence_classification_regression_multi_output():
    logits = logits_np((B, 3))
    labels = rng(4).randn(B, 3).astype(np.float32)
    ours = losses.sequence_classification_loss(labels, logits, num_labels=3, problem_type="regression")
    theirs = loss_utils.ForSequenceClassificationLoss(tt(labels), tt(logits), config(3, "regression"))
    assert_close(ours, theirs)


def test_sequence_classification_multi_label_inferred_from_float_labels():
    logits = logits_np((B, C))
    labels = (rng(5).rand(B, C) > 0.5).astype(np.float32)
    labels[0, :2] = [0.25, 0.75]  # soft targets are legal for BCE
    ours = losses.sequence_classification_loss(labels, logits, num_labels=C)
    theirs = loss_utils.ForSequenceClassificationLoss(tt(labels), tt(logits), config(C))
    assert_close(ours, theirs)
    explicit = losses.sequence_classification_loss(
        labels, logits, num_labels=C, problem_type="multi_label_classification"
    )
    assert value(explicit) == value(ours)


def test_sequence_classification_explicit_single_label_with_float_labels():
    logits = logits_np((B, C))
    labels = np.array([0, 4, 2, 1], dtype=np.float32)
    ours = losses.sequence_classification_loss(
        labels, logits, num_labels=C, problem_type="single_label_classification"
    )
    theirs = F.cross_entropy(tt(logits), tt(labels).long())
    assert_close(ours, theirs)


def test_sequence_classification_rejects_unknown_problem_type():
    with pytest.raises(ValueError, match="problem_type"):
        losses.sequence_classification_loss(
            [0, 1], np.zeros((2, 2), np.float32), num_labels=2, problem_type="ranking"
        )


# --------------------------------------------------------------------------------------------------
# token-level losses
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.int64, np.int32])
def test_token_classification(dtype):
    logits = logits_np((B, T, C))
    labels = padded_labels((B, T), C).astype(dtype)
    ours = losses.token_classification_loss(tf.constant(labels), tf.constant(logits))
    theirs = loss_utils.ForTokenClassification(tt(logits), tt(labels).long(), config(C))
    assert_close(ours, theirs)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.float32])
def test_masked_lm(dtype):
    logits = logits_np((B, T, V))
    labels = class_labels((B, T), V, ignore_frac=0.8)
    labels[0, 0] = 3  # at least one real target
    ours = losses.masked_lm_loss(tf.constant(labels.astype(dtype)), tf.constant(logits))
    theirs = loss_utils.ForMaskedLMLoss(tt(logits), tt(labels), vocab_size=V)
    assert_close(ours, theirs)


@pytest.mark.parametrize("dtype", [np.int64, np.int32])
def test_causal_lm(dtype):
    logits = logits_np((B, T, V))
    labels = padded_labels((B, T), V).astype(dtype)
    ours = losses.causal_lm_loss(tf.constant(labels), tf.constant(logits))
    theirs = loss_utils.ForCausalLMLoss(tt(logits), tt(labels).long(), vocab_size=V)
    assert_close(ours, theirs)


def test_causal_lm_is_shifted():
    # Only the first label is real: nothing predicts it, so no token counts (a non-shifting
    # implementation would score position 0).
    logits = logits_np((1, T, V))
    labels = np.full((1, T), -100)
    labels[0, 0] = 2
    assert value(losses.causal_lm_loss(labels, logits)) == 0.0
    # Only the second label is real: the logits at position 0 predict it.
    labels = np.full((1, T), -100)
    labels[0, 1] = 2
    expected = F.cross_entropy(tt(logits[0, :1]), torch.tensor([2]))
    assert_close(losses.causal_lm_loss(labels, logits), expected)


@pytest.mark.parametrize("fn", ["causal", "masked", "token"])
def test_num_items_in_batch(fn):
    logits = logits_np((B, T, V))
    labels = padded_labels((B, T), V)
    num_items = 23
    n = torch.tensor(num_items)
    if fn == "causal":
        ours = losses.causal_lm_loss(labels, logits, num_items_in_batch=num_items)
        theirs = loss_utils.ForCausalLMLoss(tt(logits), tt(labels), vocab_size=V, num_items_in_batch=n)
    else:
        f = losses.masked_lm_loss if fn == "masked" else losses.token_classification_loss
        ours = f(labels, logits, num_items_in_batch=num_items)
        theirs = loss_utils.ForMaskedLMLoss(tt(logits), tt(labels), vocab_size=V, num_items_in_batch=n)
    assert_close(ours, theirs)


# --------------------------------------------------------------------------------------------------
# question answering, multiple choice, pretraining
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("position_shape", [(6,), (6, 1)])
def test_question_answering(position_shape):
    n = 6
    start_logits, end_logits = logits_np((n, T), 10), logits_np((n, T), 11)
    # in range, == seq_len (ignored), beyond seq_len (clamped to seq_len -> ignored), negative (clamped to 0)
    start = np.array([0, 3, T, T + 5, -4, T - 1]).reshape(position_shape)
    end = np.array([2, T + 9, 5, T, 6, -1]).reshape(position_shape)
    ours = losses.question_answering_loss(start, end, start_logits, end_logits)
    theirs = loss_utils.ForQuestionAnsweringLoss(tt(start_logits), tt(end_logits), tt(start), tt(end))
    assert_close(ours, theirs)


def test_question_answering_all_start_positions_out_of_range():
    start_logits, end_logits = logits_np((B, T), 10), logits_np((B, T), 11)
    start = np.full((B,), T + 3)
    end = np.array([1, 2, 3, 4])
    ours = losses.question_answering_loss(start, end, start_logits, end_logits)
    theirs = loss_utils.ForQuestionAnsweringLoss(tt(start_logits), tt(end_logits), tt(start), tt(end))
    assert np.isnan(float(theirs))  # torch: the all-ignored start side is 0/0
    assert_close(ours, F.cross_entropy(tt(end_logits), tt(end)) / 2)


@pytest.mark.parametrize("dtype", [np.int64, np.int32])
def test_multiple_choice(dtype):
    logits = logits_np((B, 4))
    labels = np.array([3, 0, -100, 1], dtype=dtype)
    ours = losses.multiple_choice_loss(tf.constant(labels), tf.constant(logits))
    theirs = torch.nn.CrossEntropyLoss()(tt(logits), tt(labels).long())
    assert_close(ours, theirs)


def _pretraining_oracle(labels, nsp, pred, seq):
    # BertForPreTraining, verbatim
    loss_fct = torch.nn.CrossEntropyLoss()
    mlm = loss_fct(tt(pred).view(-1, V), tt(labels).long().view(-1))
    ns = loss_fct(tt(seq).view(-1, 2), tt(nsp).long().view(-1))
    return mlm, ns


def test_pretraining():
    pred, seq = logits_np((B, T, V)), logits_np((B, 2), 3)
    labels, nsp = padded_labels((B, T), V), np.array([0, 1, 1, 0])
    mlm, ns = _pretraining_oracle(labels, nsp, pred, seq)
    assert_close(losses.pretraining_loss(labels, nsp, pred, seq), mlm + ns)
    # A missing label drops only its part (torch would return no loss at all).
    assert_close(losses.pretraining_loss(labels, None, pred, seq), mlm)
    assert_close(losses.pretraining_loss(None, nsp, pred, seq), ns)
    assert losses.pretraining_loss(None, None, pred, seq) is None


# --------------------------------------------------------------------------------------------------
# XLA with unknown dims, mixed precision, sample weights, all-ignored batches
# --------------------------------------------------------------------------------------------------


QA_POSITIONS = [np.array([0, 3, T + 2, -1]), np.array([2, T, 5, 6])]  # in range, == T, > T, negative


def _cases():
    """name -> (function of (*tensors, sample_weight), numpy inputs, input specs with None dims)."""
    f32, i64, i32 = tf.float32, tf.int64, tf.int32
    pred, seq = logits_np((B, T, V)), logits_np((B, 2), 3)
    lm_labels = padded_labels((B, T), V)
    spec2 = lambda d: tf.TensorSpec([None, None], d)  # noqa: E731
    spec3 = tf.TensorSpec([None, None, None], f32)
    return {
        "seq_single": (
            lambda y, x, w=None: losses.sequence_classification_loss(y, x, num_labels=C, sample_weight=w),
            [np.array([1, 4, -100, 0]), logits_np((B, C))],
            [tf.TensorSpec([None], i64), tf.TensorSpec([None, C], f32)],
        ),
        "seq_regression": (
            lambda y, x, w=None: losses.sequence_classification_loss(y, x, num_labels=1, sample_weight=w),
            [rng(3).randn(B).astype(np.float32), logits_np((B, 1))],
            [tf.TensorSpec([None], f32), tf.TensorSpec([None, 1], f32)],
        ),
        "seq_multi_label": (
            lambda y, x, w=None: losses.sequence_classification_loss(y, x, num_labels=C, sample_weight=w),
            [(rng(5).rand(B, C) > 0.5).astype(np.float32), logits_np((B, C))],
            [tf.TensorSpec([None, C], f32), tf.TensorSpec([None, C], f32)],
        ),
        "token": (
            lambda y, x, w=None: losses.token_classification_loss(y, x, sample_weight=w),
            [padded_labels((B, T), C).astype(np.int32), logits_np((B, T, C))],
            [spec2(i32), tf.TensorSpec([None, None, C], f32)],
        ),
        "masked_lm": (
            lambda y, x, w=None: losses.masked_lm_loss(y, x, sample_weight=w),
            [lm_labels, pred],
            [spec2(i64), spec3],
        ),
        "causal_lm": (
            lambda y, x, w=None: losses.causal_lm_loss(y, x, sample_weight=w),
            [lm_labels, pred],
            [spec2(i64), spec3],
        ),
        "qa": (
            lambda s, e, sl, el, w=None: losses.question_answering_loss(s, e, sl, el, sample_weight=w),
            [*QA_POSITIONS, logits_np((B, T), 10), logits_np((B, T), 11)],
            [tf.TensorSpec([None], i64), tf.TensorSpec([None], i64), spec2(f32), spec2(f32)],
        ),
        "multiple_choice": (
            lambda y, x, w=None: losses.multiple_choice_loss(y, x, sample_weight=w),
            [np.array([3, 0, -100, 1]), logits_np((B, 4))],
            [tf.TensorSpec([None], i64), spec2(f32)],
        ),
        "pretraining": (
            lambda y, n, p, s, w=None: losses.pretraining_loss(y, n, p, s, sample_weight=w),
            [lm_labels, np.array([0, 1, 1, 0]), pred, seq],
            [spec2(i64), tf.TensorSpec([None], i64), spec3, tf.TensorSpec([None, 2], f32)],
        ),
    }


CASES = _cases()
FLOAT_LOGITS = {  # which inputs are logits, for the mixed-precision test
    "seq_single": [1], "seq_regression": [1], "seq_multi_label": [1], "token": [1], "masked_lm": [1],
    "causal_lm": [1], "qa": [2, 3], "multiple_choice": [1], "pretraining": [2, 3],
}

SEQUENCE_INPUTS = {  # which inputs have a sequence axis, for the shape-change check
    "token": [0, 1], "masked_lm": [0, 1], "causal_lm": [0, 1], "qa": [2, 3], "pretraining": [0, 2],
}

def _tensors(inputs, specs):
    return [tf.constant(x, dtype=s.dtype) for x, s in zip(inputs, specs)]


@pytest.mark.parametrize("name", list(CASES))
def test_xla_with_unknown_dims(name):
    fn, inputs, specs = CASES[name]
    weight_spec = tf.TensorSpec([None], tf.float32)
    compiled = tf.function(fn, input_signature=specs + [weight_spec], jit_compile=True)
    args = _tensors(inputs, specs)
    w = tf.constant(rng(7).rand(B).astype(np.float32) + 0.5)
    eager, eager_w = value(fn(*args)), value(fn(*args, w))
    assert eager_w != pytest.approx(eager, abs=1e-4)  # the weights do something
    # XLA may fuse/reorder the reductions: equal up to float32 rounding
    assert value(compiled(*args, w)) == pytest.approx(eager_w, abs=TOL)
    assert value(compiled(*args, tf.ones([B]))) == pytest.approx(eager, abs=TOL)
    # a different batch size and sequence length reuse the same compiled function
    small = [a[:2, :5] if i in SEQUENCE_INPUTS.get(name, ()) else a[:2] for i, a in enumerate(args)]
    assert value(compiled(*small, tf.ones([2]))) == pytest.approx(value(fn(*small)), abs=TOL)
    assert compiled.experimental_get_tracing_count() == 1


@pytest.mark.parametrize("low", [tf.float16, tf.bfloat16])
@pytest.mark.parametrize("name", list(CASES))
def test_low_precision_logits_give_float32_loss(name, low):
    fn, inputs, specs = CASES[name]
    args = _tensors(inputs, specs)
    low_args = list(args)
    for i in FLOAT_LOGITS[name]:
        low_args[i] = tf.cast(args[i], low)
    ours = fn(*low_args)
    assert ours.dtype == tf.float32
    # Same numbers as the float32 loss of the rounded logits: the math is float32, not half precision.
    rounded = [tf.cast(a, tf.float32) if i in FLOAT_LOGITS[name] else a for i, a in enumerate(low_args)]
    assert value(ours) == pytest.approx(value(fn(*rounded)), abs=1e-5)
    # ... and close to the full-precision loss (logits ~ N(0, 9), so bf16 rounding moves it a little).
    assert value(ours) == pytest.approx(value(fn(*args)), rel=0.02, abs=0.02)


@pytest.mark.parametrize("name", list(CASES))
def test_sample_weight_of_ones_is_unweighted(name):
    fn, inputs, specs = CASES[name]
    args = _tensors(inputs, specs)
    assert value(fn(*args, tf.ones([B]))) == pytest.approx(value(fn(*args)), abs=1e-6)
    assert value(fn(*args, np.ones([B, 1], np.float32))) == pytest.approx(value(fn(*args)), abs=1e-6)


def test_sample_weight_matches_weighted_torch_losses():
    w = rng(8).rand(B).astype(np.float32) + 0.1
    # token level: sum(w * ce * mask) / sum(w * mask)
    pred, labels = logits_np((B, T, V)), padded_labels((B, T), V)
    assert_close(losses.masked_lm_loss(labels, pred, sample_weight=w), torch_weighted_ce(labels, pred, w))
    shifted = np.concatenate([labels[:, 1:], np.full((B, 1), -100)], axis=1)
    assert_close(losses.causal_lm_loss(labels, pred, sample_weight=w), torch_weighted_ce(shifted, pred, w))
    # per-token weights line up with the (unshifted) labels
    wt = rng(9).rand(B, T).astype(np.float32)
    targets = tt(np.maximum(labels[:, 1:], 0)).reshape(-1)
    per = F.cross_entropy(tt(pred[:, :-1]).reshape(-1, V), targets, reduction="none")
    m = tt(labels[:, 1:] != -100).reshape(-1).float() * tt(wt[:, 1:]).reshape(-1)
    assert_close(losses.causal_lm_loss(labels, pred, sample_weight=wt), (per * m).sum() / m.sum())
    # example level: weighted mean of per-example losses
    logits, y = logits_np((B, C)), np.array([1, 4, -100, 0])
    ours = losses.sequence_classification_loss(y, logits, num_labels=C, sample_weight=w)
    assert_close(ours, torch_weighted_ce(y, logits, w))
    # multi-label: each example's weight on each of its num_labels entries
    ym = (rng(5).rand(B, C) > 0.5).astype(np.float32)
    bce = F.binary_cross_entropy_with_logits(tt(logits), tt(ym), reduction="none").mean(-1)
    wt_t = tt(w)
    ours = losses.sequence_classification_loss(ym, logits, num_labels=C, sample_weight=w)
    assert_close(ours, (bce * wt_t).sum() / wt_t.sum())
    # QA: each side weighted separately, then averaged
    sl, el = logits_np((B, T), 10), logits_np((B, T), 11)
    s, e = QA_POSITIONS
    start_ce = torch_weighted_ce(np.clip(s, 0, T), sl, w, ignore_index=T)
    end_ce = torch_weighted_ce(np.clip(e, 0, T), el, w, ignore_index=T)
    theirs = (start_ce + end_ce) / 2
    assert_close(losses.question_answering_loss(s, e, sl, el, sample_weight=w), theirs)


@pytest.mark.parametrize(
    "fn", [losses.masked_lm_loss, losses.token_classification_loss, losses.causal_lm_loss]
)
def test_all_ignored_batch_gives_zero_not_nan(fn):
    logits = tf.Variable(logits_np((B, T, V)))
    labels = np.full((B, T), -100)
    assert np.isnan(float(loss_utils.ForMaskedLMLoss(tt(logits.numpy()), tt(labels), vocab_size=V)))  # torch
    with tf.GradientTape() as tape:
        loss = fn(labels, logits)
    assert value(loss) == 0.0
    grad = tape.gradient(loss, logits)
    assert np.all(grad.numpy() == 0.0)
    compiled = tf.function(lambda y, x: fn(y, x), jit_compile=True)
    assert value(compiled(tf.constant(labels), logits)) == 0.0


def test_all_ignored_classification_and_pretraining_give_zero():
    none = np.full((B,), -100)
    assert value(losses.sequence_classification_loss(none, logits_np((B, C)), num_labels=C)) == 0.0
    assert value(losses.multiple_choice_loss(none, logits_np((B, 4)))) == 0.0
    beyond = np.full((B,), T), np.full((B,), T + 1)
    qa = losses.question_answering_loss(*beyond, logits_np((B, T)), logits_np((B, T)))
    assert value(qa) == 0.0
    seq = logits_np((B, 2))
    nsp = np.array([0, 1, 1, 0])
    total = losses.pretraining_loss(np.full((B, T), -100), nsp, logits_np((B, T, V)), seq)
    assert_close(total, F.cross_entropy(tt(seq), tt(nsp)))


def test_zero_sample_weights_give_zero():
    labels, logits = padded_labels((B, T), C), logits_np((B, T, C))
    loss = losses.token_classification_loss(labels, logits, sample_weight=np.zeros(B))
    assert value(loss) == 0.0
