"""Every model saves and exports by Keras' routes (`model.save("x.keras")`, `model.export(path)`) and by
transformers 4.x's (`save_pretrained(saved_model=True)`, `serving`, `serving_output`, `input_signature`),
and the reloaded artifact computes what the model computes."""

import json
import os
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from architectures import ARCHITECTURES, HEAD_CASES, case_id, config_for, make_inputs

import tfformers

# Each route runs on one head per architecture (tracing and reloading a SavedModel takes seconds); the heads
# cover every output kind: pooled, token-level, span, tied LM heads, multiple choice ([batch, choices, seq]).
EXPORTED_HEAD = {
    "bert": "BertForMultipleChoice",
    "distilbert": "DistilBertForQuestionAnswering",
    "roberta": "RobertaForMaskedLM",
    "gpt2": "GPT2ForTokenClassification",
    "llama": "LlamaForSequenceClassification",
    "llama3-rope-tied": "LlamaForCausalLM",
    "llama-dynamic-rope": "LlamaModel",
    "mistral": "MistralForCausalLM",
    "qwen2": "Qwen2ForSequenceClassification",
}
KERAS_FORMAT_HEAD = {
    "bert": "BertForPreTraining",
    "distilbert": "DistilBertForMaskedLM",
    "roberta": "RobertaForMultipleChoice",
    "gpt2": "GPT2LMHeadModel",
    "llama": "LlamaForCausalLM",
    "llama3-rope-tied": "LlamaModel",
    "llama-dynamic-rope": "LlamaForCausalLM",
    "mistral": "MistralForSequenceClassification",
    "qwen2": "Qwen2ForCausalLM",
}


def model_class(head):
    return getattr(tfformers, "TF" + head)


def built_model(arch, head, **overrides):
    model = model_class(head)(config_for(arch, head, **overrides))
    model.build_with_dummy_inputs()
    return model


def int32_inputs(arch, model, head):
    return {k: tf.constant(v, tf.int32) for k, v in make_inputs(arch, model.config, head).items()}


def assert_same_outputs(actual, expected):
    assert set(actual) == set(expected)
    for key in expected:
        np.testing.assert_allclose(np.asarray(actual[key]), np.asarray(expected[key]), atol=1e-6, err_msg=key)


def assert_serving_inputs(specs, arch, head):
    """{name: TensorSpec} of int32 ids and mask ([None, None]; [None, None, None] for multiple choice) and token
    type ids where the architecture has them; no cache."""
    names = {"input_ids", "attention_mask"} | ({"token_type_ids"} if arch.has_token_type_ids else set())
    assert set(specs) == names
    rank = 3 if head.endswith("ForMultipleChoice") else 2
    for spec in specs.values():
        assert spec.dtype == tf.int32 and spec.shape.as_list() == [None] * rank


def signature_inputs(function):
    """The input specs of a reloaded signature (keyword inputs) or endpoint (one positional dict)."""
    args, kwargs = function.structured_input_signature
    return kwargs or args[0]


# --------------------------------------------------------------------------------------- Keras format


@pytest.mark.parametrize("case", HEAD_CASES, ids=case_id)
def test_every_class_is_keras_serializable_and_declares_its_serving_inputs(case):
    arch, head = case
    model_type = model_class(head)
    assert keras.saving.get_registered_object(f"tfformers>TF{head}") is model_type
    model = model_type(config_for(arch, head))
    config = json.loads(json.dumps(model.get_config()))  # what a .keras file holds
    clone = model_type.from_config(config)
    assert type(clone) is model_type and clone.config.to_dict() == model.config.to_dict()
    assert_serving_inputs(model.input_signature, arch, head)


@pytest.mark.parametrize("case", [(a, KERAS_FORMAT_HEAD[a.name]) for a in ARCHITECTURES], ids=case_id)
def test_keras_format_round_trip(case, tmp_path):
    arch, head = case
    model = built_model(arch, head)
    inputs = int32_inputs(arch, model, head)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")  # no custom_objects
    assert type(loaded) is type(model)
    assert loaded.config.to_dict() == model.config.to_dict()
    assert_same_outputs(loaded(inputs), model(inputs))


def test_keras_format_keeps_dtype_options_and_compilation(tmp_path):
    arch = ARCHITECTURES[0]
    base = built_model(arch, "BertModel")
    base.save_pretrained(tmp_path / "pretrained")
    model = tfformers.TFBertForSequenceClassification.from_pretrained(tmp_path / "pretrained", dtype="bfloat16")
    inputs = int32_inputs(arch, model, "BertForSequenceClassification")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), run_eagerly=True)  # the task's default loss; no trace
    model.fit({**inputs, "labels": tf.constant([0, 1, 1])}, epochs=1, verbose=0)
    model.save(tmp_path / "model.keras")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = keras.models.load_model(tmp_path / "model.keras")
    assert not [w for w in caught if "compile" in str(w.message)], "compiled as saved, no Keras warning"
    assert {v.dtype for v in loaded.weights} == {"bfloat16"} and loaded.name == model.name
    assert loaded._use_default_loss and int(loaded.optimizer.iterations) == 1
    for restored, saved in zip(loaded.optimizer.variables, model.optimizer.variables, strict=True):
        np.testing.assert_array_equal(restored.numpy(), saved.numpy())  # the moments go on training
    assert_same_outputs(loaded(inputs), model(inputs))

    no_pooler = tfformers.TFBertModel(base.config, add_pooling_layer=False)
    no_pooler.build_with_dummy_inputs()
    no_pooler.save(tmp_path / "no_pooler.keras")
    assert "pooler_output" not in keras.models.load_model(tmp_path / "no_pooler.keras")(inputs)


def test_a_functional_model_around_a_pretrained_one_round_trips(tmp_path):
    arch = ARCHITECTURES[0]
    backbone = built_model(arch, "BertModel")
    names = ("input_ids", "attention_mask")
    inputs = {name: keras.Input(shape=(None,), dtype="int32", name=name) for name in names}
    model = keras.Model(inputs, keras.layers.Dense(2)(backbone(inputs).pooler_output))
    model.save(tmp_path / "hybrid.keras")
    x = {k: v for k, v in make_inputs(arch, backbone.config, "BertModel").items() if k in names}
    np.testing.assert_allclose(keras.models.load_model(tmp_path / "hybrid.keras")(x), model(x), atol=1e-6)


# --------------------------------------------------------------------------- Keras export, 4.x SavedModel


@pytest.mark.parametrize("case", [(a, EXPORTED_HEAD[a.name]) for a in ARCHITECTURES], ids=case_id)
def test_export_and_saved_model_serve_the_model(case, tmp_path):
    """Keras' `export` on a model straight from its constructor (never built or called), then transformers
    4.x's `save_pretrained(saved_model=True)`: both serve the model's inputs and outputs."""
    arch, head = case
    model = model_class(head)(config_for(arch, head))
    model.export(tmp_path / "exported", verbose=False)
    inputs = int32_inputs(arch, model, head)
    expected = model(inputs)
    exported = tf.saved_model.load(str(tmp_path / "exported"))  # kept referenced: it owns the variables
    assert_serving_inputs(signature_inputs(exported.signatures["serve"]), arch, head)
    served = exported.serve(inputs)
    assert type(served) is dict
    assert_same_outputs(served, expected)

    assert isinstance(model.serving, tf.types.experimental.PolymorphicFunction)
    assert model.serving.input_signature == (model.input_signature,)
    model.save_pretrained(tmp_path / "folder", saved_model=True)
    assert {"config.json", "model.safetensors", "saved_model"} <= set(os.listdir(tmp_path / "folder"))
    assert json.loads((tmp_path / "folder" / "config.json").read_text())["architectures"] == [head]
    reloaded = tf.saved_model.load(str(tmp_path / "folder" / "saved_model" / "1"))
    assert_serving_inputs(signature_inputs(reloaded.signatures["serving_default"]), arch, head)
    assert_same_outputs(reloaded.signatures["serving_default"](**inputs), expected)


def test_a_model_from_pretrained_exports(tmp_path):
    arch = ARCHITECTURES[0]
    built_model(arch, "BertModel").save_pretrained(tmp_path / "pretrained")
    model = tfformers.TFAutoModelForSequenceClassification.from_pretrained(tmp_path / "pretrained")
    model.export(tmp_path / "exported", verbose=False)
    inputs = int32_inputs(arch, model, "BertForSequenceClassification")
    exported = tf.saved_model.load(str(tmp_path / "exported"))
    assert_same_outputs(exported.serve(inputs), model(inputs))


def test_saved_model_versions_sit_side_by_side_and_a_failed_save_changes_nothing(tmp_path, monkeypatch):
    arch = ARCHITECTURES[0]
    model = built_model(arch, "BertForSequenceClassification")
    model.compile(optimizer="adam")
    model.optimizer.build(model.trainable_variables)
    folder = tmp_path / "folder"
    model.save_pretrained(folder, saved_model=True)
    model.save_pretrained(folder, saved_model=True, version=2)
    assert sorted(os.listdir(folder / "saved_model")) == ["1", "2"]
    assert not hasattr(tf.saved_model.load(str(folder / "saved_model" / "2")), "optimizer"), "4.x: no optimizer"
    before = {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()}

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tf.saved_model, "save", fail)
    with pytest.raises(OSError, match="No space left"):
        model.save_pretrained(folder, saved_model=True, version=3)
    assert {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()} == before
    with pytest.raises(ValueError, match="version="):
        model.save_pretrained(folder, saved_model=True, version="latest")


def test_serving_output_is_a_dict_of_tensors_as_in_transformers_4():
    arch = ARCHITECTURES[0]
    model = built_model(arch, "BertForSequenceClassification", output_hidden_states=True)
    inputs = int32_inputs(arch, model, "BertForSequenceClassification")
    served = model.serving_output(model(inputs, output_attentions=True))
    assert type(served) is dict and set(served) == {"logits", "hidden_states"}, "attentions: not in the config"
    assert served["hidden_states"].shape == (model.config.num_hidden_layers + 1, 3, 9, model.config.hidden_size)
    assert set(model.serving(inputs)) == {"logits", "hidden_states"}


def test_a_transformers_4_serving_override_exports(tmp_path):
    """4.x code declares its own serving signature (here: int64 ids, no token types) and saves with it."""

    class ServedClassifier(tfformers.TFBertForSequenceClassification):
        @tf.function(
            input_signature=[
                {
                    "input_ids": tf.TensorSpec((None, None), tf.int64, name="input_ids"),
                    "attention_mask": tf.TensorSpec((None, None), tf.int64, name="attention_mask"),
                }
            ]
        )
        def serving(self, inputs):
            output = self.call(inputs)
            return self.serving_output(output)

    arch = ARCHITECTURES[0]
    model = ServedClassifier(config_for(arch, "BertForSequenceClassification"))
    model.build_with_dummy_inputs()
    inputs = {k: v for k, v in make_inputs(arch, model.config, "BertForSequenceClassification").items()
              if k != "token_type_ids"}
    expected = model(inputs)
    tf.saved_model.save(model, str(tmp_path / "plain"), signatures=model.serving)
    model.save_pretrained(tmp_path / "folder", saved_model=True)
    for path in (tmp_path / "plain", tmp_path / "folder" / "saved_model" / "1"):
        reloaded = tf.saved_model.load(str(path))
        signature = reloaded.signatures["serving_default"]
        assert set(signature.structured_input_signature[1]) == {"input_ids", "attention_mask"}
        assert_same_outputs(signature(**{k: tf.constant(v, tf.int64) for k, v in inputs.items()}), expected)
