"""ViT against the PyTorch oracle on an odd tiny config (patch 4 on 28x28 images, 3 heads of 12, intermediate
37, 3 labels): loading consumes every tensor; logits, hidden states and attentions match within 1e-4 for
channels-first and channels-last pixels and for resized position embeddings; the task loss equals PyTorch's
for each problem type; a base checkpoint loads into the classifier with the head reported new; what
tfformers saves loads in PyTorch; XLA equals eager; bad pixel values are refused naming the value."""

import logging

import numpy as np
import pytest
import tensorflow as tf
from oracle import max_abs_diff, torch_model, torch_outputs

import tfformers
from tfformers.errors import InputError

TOLERANCE = 1e-4  # fp32, max |Δ| over every output element
PARITY = {}


def vit_config(**overrides):
    from transformers import ViTConfig

    settings = dict(
        image_size=28,
        patch_size=4,
        num_channels=3,
        hidden_size=36,
        num_hidden_layers=2,
        num_attention_heads=3,
        intermediate_size=37,
        num_labels=3,
        attn_implementation="eager",
    )
    settings.update(overrides)
    return ViTConfig(**settings)


def images(batch=3, height=28, width=28, seed=0):
    """Channels-first float32 pixels, as an image processor returns them."""
    return np.random.default_rng(seed).standard_normal((batch, 3, height, width)).astype(np.float32)


@pytest.fixture(scope="module", autouse=True)
def _report_parity():
    yield
    if PARITY:
        print("\nViT parity, max |Δ| vs PyTorch transformers (fp32):")
        for case, deltas in PARITY.items():
            print(f"  {case:40s} " + ", ".join(f"{name} {delta:.1e}" for name, delta in deltas.items()))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """head -> (torch model, folder it was saved to)."""
    cache = {}

    def get(head):
        if head not in cache:
            model = torch_model(head, vit_config())
            folder = tmp_path_factory.mktemp(head)
            model.save_pretrained(folder)
            cache[head] = model, folder
        return cache[head]

    return get


HEADS = ("ViTModel", "ViTForImageClassification")


@pytest.mark.parametrize("head", HEADS)
def test_loads_every_tensor_and_matches_torch(head, saved):
    pt_model, folder = saved(head)
    model, info = getattr(tfformers, "TF" + head).from_pretrained(folder, output_loading_info=True)
    assert info == {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": []}

    pixels = images()
    expected = torch_outputs(pt_model, {"pixel_values": pixels}, output_hidden_states=True, output_attentions=True)
    for layout, given in (("channels first", pixels), ("channels last", pixels.transpose(0, 2, 3, 1))):
        ours = model(given, output_hidden_states=True, output_attentions=True)
        assert set(ours) == set(expected)
        deltas = PARITY[f"{head} {layout}"] = {name: max_abs_diff(ours[name], expected[name]) for name in expected}
        assert max(deltas.values()) <= TOLERANCE, deltas

    # other sizes, square and not, through bicubically resized position embeddings
    for height, width in ((36, 36), (20, 32)):
        larger = images(2, height, width, seed=1)
        expected = torch_outputs(pt_model, {"pixel_values": larger}, interpolate_pos_encoding=True)
        ours = model(pixel_values=larger, interpolate_pos_encoding=True)
        deltas = PARITY[f"{head} {height}x{width} interpolated"] = {
            name: max_abs_diff(ours[name], expected[name]) for name in expected
        }
        assert max(deltas.values()) <= TOLERANCE, deltas


def test_auto_class_picks_vit(saved):
    _, folder = saved("ViTForImageClassification")
    model = tfformers.TFAutoModelForImageClassification.from_pretrained(folder)
    assert type(model) is tfformers.TFViTForImageClassification
    assert type(tfformers.TFAutoModel.from_pretrained(folder)) is tfformers.TFViTModel


@pytest.mark.parametrize(
    "problem_type,num_labels",
    [("single_label_classification", 3), ("multi_label_classification", 3), ("regression", 1)],
)
def test_default_loss_equals_torch(problem_type, num_labels, tmp_path):
    import torch

    pt_model = torch_model("ViTForImageClassification", vit_config(num_labels=num_labels, problem_type=problem_type))
    pt_model.save_pretrained(tmp_path)
    model = tfformers.TFViTForImageClassification.from_pretrained(tmp_path)
    rng = np.random.default_rng(2)
    if problem_type == "single_label_classification":
        labels = np.array([0, 2, 1])
    elif problem_type == "multi_label_classification":
        labels = rng.integers(0, 2, size=(3, num_labels)).astype(np.float32)
    else:
        labels = rng.standard_normal(3).astype(np.float32)
    pixels = images()
    with torch.no_grad():
        expected = float(pt_model(pixel_values=torch.as_tensor(pixels), labels=torch.as_tensor(labels)).loss)
    ours = float(model({"pixel_values": pixels, "labels": labels})["loss"])
    assert abs(ours - expected) <= 1e-5, (ours, expected)

    # compile() without a loss scores fit()'s y with the same loss
    model.compile(optimizer="sgd")
    assert model.evaluate(pixels, labels, verbose=0) == pytest.approx(expected, abs=1e-5)


def test_base_checkpoint_loads_into_classifier_with_new_head(saved, caplog):
    _, base_folder = saved("ViTModel")
    with caplog.at_level(logging.WARNING, logger="tfformers.loading"):
        model, info = tfformers.TFViTForImageClassification.from_pretrained(base_folder, output_loading_info=True)
    assert sorted(info["missing_keys"]) == ["classifier.bias", "classifier.weight"]
    assert sorted(info["unexpected_keys"]) == ["pooler.dense.bias", "pooler.dense.weight"]
    assert "classifier.weight" in caplog.text and "newly initialized" in caplog.text
    std = float(np.std(model.classifier.kernel.numpy()))
    assert std == pytest.approx(model.config.initializer_range, rel=0.5)
    base = tfformers.TFViTModel.from_pretrained(base_folder)
    np.testing.assert_array_equal(
        model.vit.embeddings.position_embeddings.numpy(), base.vit.embeddings.position_embeddings.numpy()
    )


@pytest.mark.parametrize("head", HEADS)
def test_save_pretrained_loads_in_torch(head, saved, tmp_path):
    import transformers
    from safetensors import safe_open

    _, folder = saved(head)
    model = getattr(tfformers, "TF" + head).from_pretrained(folder)
    model.save_pretrained(tmp_path)
    reloaded, info = getattr(transformers, head).from_pretrained(
        tmp_path, output_loading_info=True, attn_implementation="eager"
    )
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    pixels = images(seed=3)
    expected = torch_outputs(reloaded.eval(), {"pixel_values": pixels})
    ours = model(pixels)
    for name in expected:
        assert max_abs_diff(ours[name], expected[name]) <= TOLERANCE, name
    with safe_open(str(tmp_path / "model.safetensors"), "np") as ours_file, safe_open(
        str(folder / "model.safetensors"), "np"
    ) as torch_file:
        assert set(ours_file.keys()) == set(torch_file.keys())


def test_xla_forward_equals_eager(saved):
    _, folder = saved("ViTForImageClassification")
    model = tfformers.TFViTForImageClassification.from_pretrained(folder)
    pixels = tf.constant(images())
    compiled = tf.function(lambda x: model(x).logits, jit_compile=True)(pixels)
    np.testing.assert_allclose(compiled.numpy(), model(pixels).logits.numpy(), atol=1e-5, rtol=1e-5)


def test_bad_pixel_values_name_the_value(saved):
    _, folder = saved("ViTForImageClassification")
    model = tfformers.TFViTForImageClassification.from_pretrained(folder)
    with pytest.raises(InputError, match=r"shape \[2, 1, 28, 28\].*3 channels"):
        model(np.zeros((2, 1, 28, 28), np.float32))
    with pytest.raises(InputError, match=r"32x32 images.*28x28.*interpolate_pos_encoding=True"):
        model(np.zeros((2, 3, 32, 32), np.float32))
    with pytest.raises(InputError, match=r"one image without a batch dimension"):
        model(np.zeros((3, 28, 28), np.float32))
    with pytest.raises(InputError, match=r"labels row 1 has class label 7"):
        model({"pixel_values": images(), "labels": np.array([0, 7, 1])})
