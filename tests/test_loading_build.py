"""from_pretrained builds the model from the checkpoint (`checkpoint.building`): every Keras leaf's variables
are created holding their tensors, without a forward pass and without values assigned over them, and the
result is the model a forward-pass build plus assignment gives (variable paths, shapes, values). Layers the
checkpoint cannot size (a new head) and checkpoints that disagree with the config still load by a forward
pass, reported as before.
"""

import copy
import re

import numpy as np
import pytest
import tensorflow as tf
from architectures import ARCHITECTURES, config_for, make_inputs
from oracle import max_abs_diff, torch_model, torch_outputs
from test_vit import vit_config

import tfformers
from tfformers import checkpoint
from tfformers.checkpoint.keys import Parameter
from tfformers.config import load_config
from tfformers.errors import CheckpointError
from tfformers.modeling import TFPreTrainedModel

# A head with every weight in its own checkpoint for each kind of leaf and variable: BERT's MLM head (an
# output bias made in __init__, the decoder tied to the embeddings), GPT-2's Conv1D and tied LM head, Llama's
# RMSNorm weights, ViT's Conv2D patches and [CLS] token. test_parity loads every registered head this way.
_BY_NAME = {arch.name: arch for arch in ARCHITECTURES}
CASES = [
    (_BY_NAME["bert"], "BertForMaskedLM"),
    (_BY_NAME["gpt2"], "GPT2LMHeadModel"),
    (_BY_NAME["llama"], "LlamaForCausalLM"),
    (None, "ViTForImageClassification"),
]


def _config(arch, head):
    return vit_config() if arch is None else config_for(arch, head)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """head -> (torch model, folder it was saved to), built once."""
    cache = {}

    def get(arch, head, dtype=None):
        name = (arch.name if arch else "vit", head, dtype)
        if name not in cache:
            model = torch_model(head, _config(arch, head))
            if dtype is not None:
                model = model.to(dtype)
            folder = tmp_path_factory.mktemp(f"pt-{head}")
            model.save_pretrained(folder)
            cache[name] = (model, folder)
        return cache[name]

    return get


class _Recorder:
    """Counts forward passes and the checkpoint keys assigned to existing variables during a load."""

    def __init__(self, monkeypatch):
        self.forward_passes = 0
        self.assigned = []
        call, assign = TFPreTrainedModel.__call__, Parameter.assign
        recorder = self

        def counting_call(model, *args, **kwargs):
            recorder.forward_passes += 1
            return call(model, *args, **kwargs)

        def recording_assign(param, value):
            recorder.assigned.append(param.variable.path)
            return assign(param, value)

        monkeypatch.setattr(TFPreTrainedModel, "__call__", counting_call)
        monkeypatch.setattr(Parameter, "assign", recording_assign)


def _forward_built(model_class, folder):
    """The model as a forward pass on dummy inputs builds it, the checkpoint assigned afterwards."""
    model = model_class(load_config(folder, None, {}, None))
    model.build_with_dummy_inputs()
    reader = checkpoint.SafetensorsReader([str(folder / "model.safetensors")])
    report = checkpoint.load_parameters(
        model.checkpoint_parameters(), reader, base_model_prefix=model.base_model_prefix,
        tied_keys=model.tied_weights_keys, ignored_unexpected=model.ignored_unexpected_keys,
    )
    assert report.as_dict() == {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": []}
    return model


def _layout(model):
    """(path without Keras' layer-name counters, shape, dtype) of every weight, in `model.weights` order."""
    return [(re.sub(r"_\d+(?=/)", "", v.path), tuple(v.shape), v.dtype) for v in model.weights]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case[1])
def test_variables_are_created_holding_their_tensors(case, saved, monkeypatch):
    arch, head = case
    _, folder = saved(arch, head)
    model_class = getattr(tfformers, "TF" + head)
    recorder = _Recorder(monkeypatch)
    model, info = model_class.from_pretrained(folder, output_loading_info=True)

    assert info == {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": []}
    assert model.built
    assert recorder.forward_passes == 0, "from_pretrained ran a forward pass to build the model"
    # only variables made in a layer's __init__ (RMSNorm's weight, an MLM output bias, ViT's [CLS] token) are
    # assigned; every leaf's (Dense, Embedding, LayerNorm, Conv2D) variables were created holding the tensor
    leaf_paths = {p.variable.path for p in model.checkpoint_parameters().values() if p.initializer is not None}
    assert leaf_paths and not leaf_paths & set(recorder.assigned)

    monkeypatch.undo()
    reference = _forward_built(model_class, folder)
    assert _layout(model) == _layout(reference)
    for ours, theirs in zip(model.weights, reference.weights):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), err_msg=ours.path)


def test_loaded_variables_own_their_memory(saved):
    arch = ARCHITECTURES[0]
    _, folder = saved(arch, arch.heads[1])
    model_class = getattr(tfformers, "TF" + arch.heads[1])
    first, second = model_class.from_pretrained(folder), model_class.from_pretrained(folder)
    before = second.word_embeddings.numpy().copy()
    first.word_embeddings.assign_add(tf.ones_like(first.word_embeddings))  # in place
    np.testing.assert_array_equal(second.word_embeddings.numpy(), before)
    np.testing.assert_array_equal(first.word_embeddings.numpy(), before + 1)


def test_new_head_is_built_by_a_forward_pass_and_drawn_at_random(saved, monkeypatch):
    arch = ARCHITECTURES[0]
    _, folder = saved(arch, "BertModel")
    recorder = _Recorder(monkeypatch)
    model, info = tfformers.TFBertForSequenceClassification.from_pretrained(folder, output_loading_info=True)
    assert sorted(info["missing_keys"]) == ["classifier.bias", "classifier.weight"]
    assert recorder.forward_passes == 1  # the classifier's input size comes only from a forward pass
    backbone = {p.variable.path for key, p in model.checkpoint_parameters().items() if key.startswith("bert.")}
    assert not backbone & set(recorder.assigned), "the backbone was built from the checkpoint"
    kernel = model.classifier.kernel.numpy()
    assert float(np.std(kernel)) == pytest.approx(model.config.initializer_range, rel=0.5)


def test_config_disagreeing_with_the_checkpoint_is_reported_with_the_configured_shape(saved):
    arch = ARCHITECTURES[0]
    _, folder = saved(arch, "BertModel")
    intermediate = arch.make_config().intermediate_size + 3
    with pytest.raises(CheckpointError, match=rf"intermediate\.dense\.weight.*expects \[{intermediate}, 32\]"):
        tfformers.TFBertModel.from_pretrained(folder, intermediate_size=intermediate)

    # re-initialized, the model is whole: every layer sized by the config, not by the checkpoint
    model, info = tfformers.TFBertModel.from_pretrained(
        folder, intermediate_size=intermediate, ignore_mismatched_sizes=True, output_loading_info=True
    )
    assert {key for key, _, _ in info["mismatched_keys"]} == {
        f"encoder.layer.{i}.{name}" for i in range(2)
        for name in ("intermediate.dense.weight", "intermediate.dense.bias", "output.dense.weight")
    }
    assert model.bert.encoder.layer[0].output_.dense.kernel.shape == (intermediate, 32)
    model(make_inputs(arch, model.config, "BertModel"))


@pytest.mark.parametrize("dtype", [None, "bfloat16"])
def test_bfloat16_checkpoint_loads(saved, dtype):
    import torch

    arch = ARCHITECTURES[0]
    pt_model, folder = saved(arch, "BertModel", dtype=torch.bfloat16)
    model = tfformers.TFBertModel.from_pretrained(folder, dtype=dtype)
    expected = pt_model.embeddings.word_embeddings.weight.detach().float().numpy()
    assert model.word_embeddings.dtype == (dtype or "float32")
    np.testing.assert_array_equal(np.asarray(model.word_embeddings.numpy(), np.float32), expected)
    if dtype is None:  # float32 variables holding the bfloat16 values compute what PyTorch does in float32
        inputs = make_inputs(arch, model.config, "BertModel")
        reference = torch_outputs(copy.deepcopy(pt_model).float(), inputs)["last_hidden_state"]
        assert max_abs_diff(model(inputs)["last_hidden_state"], reference) <= 1e-4



def test_variable_handles_carry_bare_names_and_keras_paths_stay_scoped(saved):
    """TensorFlow instantiates an eager op's function once per set of attributes; a handle named by its full
    scope (unique per layer) would instantiate one per variable. Loaded variables' handles carry the bare
    name; Keras' paths, which saving and optimizers use, keep the layer tree."""
    arch = ARCHITECTURES[0]
    _, folder = saved(arch, "BertModel")
    model = tfformers.TFBertModel.from_pretrained(folder)
    for variable in model.weights:
        assert variable.value.name == variable.name + ":0", variable.path
        assert variable.path.endswith("/" + variable.name) and variable.path.count("/") >= 2, variable.path
