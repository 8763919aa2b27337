"""bfloat16: `from_pretrained(..., dtype="bfloat16")` (bfloat16 variables and compute) and
`dtype="mixed_bfloat16"` (float32 variables, bfloat16 compute) against PyTorch transformers in bfloat16.

Tolerance: bfloat16 keeps 8 significant bits (a relative rounding step of 2^-8 ~ 0.4%), and a forward pass
rounds after every op, so outputs are compared relative to the largest |value| of the float32 reference:
within 2e-2 of PyTorch's bfloat16 output and of the float32 output. Padded rows (left padding gives
decoder queries with no key to attend) must stay finite.
"""

import numpy as np
import pytest
import tensorflow as tf
from architectures import ARCHITECTURES, config_for, make_inputs
from oracle import torch_model

import tfformers

RELATIVE_TOLERANCE = 2e-2
POLICIES = ("bfloat16", "mixed_bfloat16")
HEADS = {"bert": "BertForSequenceClassification", "llama": "LlamaForCausalLM"}
OUTPUT = {"bert": "logits", "llama": "logits"}


def _torch_logits(pt, inputs, dtype):
    import torch

    with torch.no_grad():
        out = pt.to(dtype)(**{k: torch.as_tensor(v) for k, v in inputs.items()}).logits
    pt.float()
    return out.float().numpy()


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """name -> (folder, inputs, PyTorch float32 logits, PyTorch bfloat16 logits), built once. No dropout, so
    the fit step below is deterministic."""
    import torch

    made = {}
    for arch in ARCHITECTURES:
        if arch.name not in HEADS:
            continue
        head = HEADS[arch.name]
        config = config_for(arch, head, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
        pt = torch_model(head, config)
        folder = tmp_path_factory.mktemp(f"bf16-{arch.name}")
        pt.save_pretrained(folder)
        inputs = make_inputs(arch, config, head)
        made[arch.name] = (folder, inputs, _torch_logits(pt, inputs, torch.float32),
                           _torch_logits(pt, inputs, torch.bfloat16))
    return made


def _load(checkpoints, name, dtype):
    return getattr(tfformers, "TF" + HEADS[name]).from_pretrained(checkpoints[name][0], dtype=dtype)


def _relative(ours, theirs, scale, rows):
    return float(np.abs(ours - theirs)[rows].max() / scale)


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("name", sorted(HEADS))
def test_forward_close_to_pytorch_bfloat16(checkpoints, name, policy):
    folder, inputs, expected, expected_bf16 = checkpoints[name]
    model = _load(checkpoints, name, policy)
    variable_dtype = "bfloat16" if policy == "bfloat16" else "float32"
    assert {v.dtype for v in model.weights} == {variable_dtype}

    logits = model({k: tf.constant(v) for k, v in inputs.items()})[OUTPUT[name]]
    assert logits.dtype == tf.bfloat16
    logits = tf.cast(logits, tf.float32).numpy()
    assert np.isfinite(logits).all(), "non-finite outputs (a masked row turned into NaN?)"
    # decoders: every position's logits (padded ones are computed all the same); encoders: one row per example
    real = inputs["attention_mask"].astype(bool) if logits.ndim == 3 else slice(None)
    scale = np.abs(expected[real]).max()
    assert _relative(logits, expected_bf16, scale, real) < RELATIVE_TOLERANCE
    assert _relative(logits, expected, scale, real) < RELATIVE_TOLERANCE


@pytest.mark.parametrize("policy", POLICIES)
def test_compiled_generation(checkpoints, policy):
    """Greedy generate() (one XLA program, the KV cache in bfloat16) picks, at every step, a token whose
    logit in a full bfloat16 forward over the generated sequence is the largest up to bfloat16 rounding."""
    folder, inputs, _, _ = checkpoints["llama"]
    model = _load(checkpoints, "llama", policy)
    prompt, mask = inputs["input_ids"], inputs["attention_mask"]
    new_tokens = 5
    generated = np.asarray(model.generate(tf.constant(prompt), attention_mask=tf.constant(mask),
                                          max_new_tokens=new_tokens, do_sample=False, eos_token_id=None))
    assert generated.shape == (prompt.shape[0], prompt.shape[1] + new_tokens)
    np.testing.assert_array_equal(generated[:, : prompt.shape[1]], prompt)

    full_mask = np.concatenate([mask, np.ones((mask.shape[0], new_tokens), mask.dtype)], axis=1)
    logits = model({"input_ids": tf.constant(generated), "attention_mask": tf.constant(full_mask)}).logits
    logits = tf.cast(logits, tf.float32).numpy()[:, prompt.shape[1] - 1: -1]  # [batch, new_tokens, vocab]
    chosen = np.take_along_axis(logits, generated[:, prompt.shape[1]:, None], axis=-1)[..., 0]
    best = logits.max(axis=-1)
    assert np.all(chosen >= best - RELATIVE_TOLERANCE * np.abs(logits).max()), (chosen, best)


def _fit_one_step(model, inputs, labels):
    model.compile(optimizer=tf.keras.optimizers.SGD(learning_rate=0.5))  # the task's default loss
    before = [v.numpy() for v in model.trainable_variables]
    loss = model.train_on_batch(inputs, labels)
    changed = [not np.array_equal(a, v.numpy()) for a, v in zip(before, model.trainable_variables)]
    return loss, changed


def test_fit_step_mixed_bfloat16(checkpoints):
    """One fit step under mixed_bfloat16 with the default loss: a float32 loss close to float32 training's,
    float32 master weights that the step changes."""
    folder, inputs, _, _ = checkpoints["bert"]
    labels = np.array([0, 2, 1])
    mixed = _load(checkpoints, "bert", "mixed_bfloat16")
    loss = mixed(dict(inputs, labels=labels)).loss
    assert loss.dtype == tf.float32

    mixed_loss, changed = _fit_one_step(mixed, inputs, labels)
    full_loss, _ = _fit_one_step(_load(checkpoints, "bert", "float32"), inputs, labels)
    assert np.isfinite(mixed_loss)
    assert abs(mixed_loss - full_loss) <= RELATIVE_TOLERANCE * abs(full_loss)
    assert {v.dtype for v in mixed.trainable_variables} == {"float32"}
    assert all(changed), "a float32 master weight did not change"
