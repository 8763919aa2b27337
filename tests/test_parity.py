"""The shared harness: every (architecture, head) in the registry against the PyTorch oracle.

For each pair: a random PyTorch model is saved with PyTorch transformers, loaded by tfformers with every
tensor consumed and every variable set, gives the same outputs (logits, hidden states, attentions) on a
padded batch, saves back in a form PyTorch loads with the same outputs, and runs under XLA.
"""

import numpy as np
import pytest
import tensorflow as tf
from architectures import HEAD_CASES, case_id, config_for, make_inputs
from oracle import max_abs_diff, torch_model, torch_outputs

import tfformers

TOLERANCE = 1e-4  # fp32, max |Δ| over every output element
PARITY = {}  # (architecture, head) -> {output: max |Δ|}, printed at the end of the module (pytest -s)


@pytest.fixture(scope="module", autouse=True)
def _report_parity():
    yield
    if PARITY:
        print("\noutput parity, max |Δ| vs PyTorch transformers (fp32):")
        for (arch, head), deltas in PARITY.items():
            detail = ", ".join(f"{name} {delta:.1e}" for name, delta in deltas.items())
            print(f"  {arch:12s} {head:36s} max {max(deltas.values()):.1e}  ({detail})")


@pytest.fixture(scope="module")
def saved_torch_models(tmp_path_factory):
    """(arch, head) -> (torch model, folder it was saved to), built once per module."""
    cache = {}

    def get(arch, head):
        if (arch.name, head) not in cache:
            model = torch_model(head, config_for(arch, head))
            folder = tmp_path_factory.mktemp(f"pt-{head}")
            model.save_pretrained(folder)
            cache[arch.name, head] = (model, folder)
        return cache[arch.name, head]

    return get


def tf_class(head):
    return getattr(tfformers, "TF" + head)


@pytest.mark.parametrize("case", HEAD_CASES, ids=case_id)
def test_loads_every_tensor_and_matches_torch(case, saved_torch_models):
    arch, head = case
    pt_model, folder = saved_torch_models(arch, head)
    model, info = tf_class(head).from_pretrained(folder, output_loading_info=True)
    assert info == {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": []}

    inputs = make_inputs(arch, model.config, head)
    expected = torch_outputs(pt_model, inputs, output_hidden_states=True, output_attentions=True)
    ours = model(inputs, output_hidden_states=True, output_attentions=True)
    assert set(ours) == set(expected)
    deltas = PARITY[arch.name, head] = {name: max_abs_diff(ours[name], expected[name]) for name in expected}
    for name, delta in deltas.items():
        assert delta <= TOLERANCE, (name, delta)


@pytest.mark.parametrize("case", HEAD_CASES, ids=case_id)
def test_save_pretrained_loads_in_torch_and_back(case, saved_torch_models, tmp_path):
    import transformers

    arch, head = case
    _, folder = saved_torch_models(arch, head)
    model = tf_class(head).from_pretrained(folder)
    model.save_pretrained(tmp_path / "saved")

    # eager attention, as the oracle was built: SDPA treats fully masked (left-padding) rows differently
    reloaded_pt, info = getattr(transformers, head).from_pretrained(
        tmp_path / "saved", output_loading_info=True, attn_implementation="eager"
    )
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    inputs = make_inputs(arch, model.config, head, seed=1)
    expected = torch_outputs(reloaded_pt.eval(), inputs)
    ours = model(inputs)
    for name in ours:
        assert max_abs_diff(ours[name], expected[name]) <= TOLERANCE, name

    again = tf_class(head).from_pretrained(tmp_path / "saved")
    for ours_var, again_var in zip(model.weights, again.weights):
        np.testing.assert_array_equal(ours_var.numpy(), again_var.numpy())
    # PyTorch-readable keys exactly: same names as PyTorch's own save, minus tied aliases
    from safetensors import safe_open

    with safe_open(str(tmp_path / "saved" / "model.safetensors"), "np") as saved, safe_open(
        str(folder / "model.safetensors"), "np"
    ) as original:
        assert saved.metadata()["format"] == "pt"
        assert set(saved.keys()) == set(original.keys()) - set(model.tied_weights_keys)


@pytest.mark.parametrize("case", HEAD_CASES, ids=case_id)
def test_xla_forward_equals_eager(case, saved_torch_models):
    arch, head = case
    _, folder = saved_torch_models(arch, head)
    model = tf_class(head).from_pretrained(folder)
    inputs = {k: tf.constant(v) for k, v in make_inputs(arch, model.config, head).items()}
    eager = model(inputs)
    compiled = tf.function(lambda x: model(x), jit_compile=True)(inputs)
    for name in eager:
        np.testing.assert_allclose(compiled[name].numpy(), eager[name].numpy(), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("case", [c for c in HEAD_CASES if not c[1].endswith("Model")], ids=case_id)
def test_base_checkpoint_loads_into_head_and_back(case, saved_torch_models):
    arch, head = case
    base_head = next(h for h in arch.heads if h.endswith("Model"))
    _, base_folder = saved_torch_models(arch, base_head)
    _, head_folder = saved_torch_models(arch, head)

    model, info = tf_class(head).from_pretrained(base_folder, output_loading_info=True)
    prefix = model.base_model_prefix + "."
    head_keys = [key for key in model.checkpoint_parameters() if not key.startswith(prefix)]
    # exactly the head is new (nothing for a causal LM whose head is tied to the embeddings)
    assert sorted(info["missing_keys"]) == sorted(head_keys)
    reference = tf_class(base_head).from_pretrained(base_folder)
    np.testing.assert_array_equal(model.word_embeddings.numpy(), reference.word_embeddings.numpy())
    # Loading builds with the random initialization deferred; weights the checkpoint lacks are drawn after.
    params = model.checkpoint_parameters()
    for key in info["missing_keys"]:
        if key.endswith("weight") and len(params[key].shape) == 2:
            std = float(np.std(params[key].to_numpy()))
            assert std == pytest.approx(model.config.initializer_range, rel=0.5), (key, std)

    base, info = tf_class(base_head).from_pretrained(head_folder, output_loading_info=True)
    assert not info["missing_keys"] or all("pooler" in key for key in info["missing_keys"])
    from safetensors import safe_open

    with safe_open(str(head_folder / "model.safetensors"), "np") as saved:
        stored_head_keys = [key for key in saved.keys() if not key.startswith(prefix)]
    assert sorted(info["unexpected_keys"]) == sorted(stored_head_keys), "head tensors are reported unused"


def test_tied_alias_fills_a_missing_target(tmp_path):
    """Checkpoints that store an LM head's bias only under its tied alias still load it."""
    from architectures import ARCHITECTURES
    from safetensors.numpy import load_file, save_file

    model = tfformers.TFAutoModelForMaskedLM.from_config(config_for(ARCHITECTURES[0], "BertForMaskedLM"))
    model.cls.predictions.bias.assign(np.arange(model.config.vocab_size, dtype=np.float32))
    model.save_pretrained(tmp_path)
    tensors = load_file(tmp_path / "model.safetensors")
    tensors["cls.predictions.decoder.bias"] = tensors.pop("cls.predictions.bias")
    save_file(tensors, tmp_path / "model.safetensors", metadata={"format": "pt"})

    reloaded, info = tfformers.TFBertForMaskedLM.from_pretrained(tmp_path, output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == []
    np.testing.assert_array_equal(reloaded.cls.predictions.bias.numpy(), np.arange(model.config.vocab_size))
