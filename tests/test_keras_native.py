"""Models behave as Keras models: inputs in every form users pass, predict/summary, composition, dtypes."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from architectures import ARCHITECTURES, config_for
from assets import minilm_dir

import tfformers

BERT = ARCHITECTURES[0]


@pytest.fixture(scope="module")
def tiny_classifier_dir(tmp_path_factory):
    model = tfformers.TFAutoModelForSequenceClassification.from_config(
        config_for(BERT, "BertForSequenceClassification")
    )
    folder = tmp_path_factory.mktemp("tiny-classifier")
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tokenizer():
    return tfformers.AutoTokenizer.from_pretrained(minilm_dir())


@pytest.fixture(scope="module")
def minilm():
    return tfformers.TFAutoModel.from_pretrained(minilm_dir())


def test_every_input_form_gives_the_same_output(minilm, tokenizer):
    texts = ["This is a sentence!", "This is another one, a longer one!"]
    as_np = tokenizer(texts, return_tensors="np", padding=True)
    as_tf = tokenizer(texts, return_tensors="tf", padding=True)
    reference = minilm(dict(as_np)).last_hidden_state.numpy()
    assert isinstance(minilm, keras.Model)
    by_keyword = minilm(as_np["input_ids"], attention_mask=as_np["attention_mask"])
    for out in (minilm(as_np), minilm(as_tf), minilm(**as_np), by_keyword):
        np.testing.assert_allclose(out["last_hidden_state"].numpy(), reference, atol=1e-6)
    out = minilm(as_np)
    assert out[0] is out.last_hidden_state
    assert out.hidden_states is None and "hidden_states" not in out
    with pytest.raises(AttributeError):
        out.no_such_field


def test_decode_takes_tensorflow_tensors(tokenizer):
    """transformers 4.x TF code decodes generate()'s tf.Tensor output directly."""
    ids = tokenizer(["This is a sentence!", "Another one."], return_tensors="tf", padding=True)["input_ids"]
    expected = tokenizer.batch_decode(ids.numpy(), skip_special_tokens=True)
    assert tokenizer.batch_decode(ids, skip_special_tokens=True) == expected == ["this is a sentence!", "another one."]
    assert tokenizer.decode(ids[1], skip_special_tokens=True) == expected[1]


def test_predict_returns_numpy_in_the_output_container(tiny_classifier_dir):
    model = tfformers.TFAutoModelForSequenceClassification.from_pretrained(tiny_classifier_dir)
    inputs = {"input_ids": np.random.default_rng(0).integers(0, 99, size=(10, 6))}
    predictions = model.predict(inputs, batch_size=4, verbose=0)
    assert isinstance(predictions.logits, np.ndarray) and predictions.logits.shape == (10, 3)
    assert isinstance(predictions["logits"], np.ndarray)
    np.testing.assert_allclose(predictions.logits, model(inputs).logits.numpy(), atol=1e-5)


def test_summary_lists_the_backbone(tiny_classifier_dir):
    model = tfformers.TFBertForSequenceClassification.from_pretrained(tiny_classifier_dir)
    lines = []
    model.summary(print_fn=lambda line, **kwargs: lines.append(line))
    text = "\n".join(lines)
    assert "bert_main_layer" in text and "Total params" in text


def test_pretrained_model_inside_a_subclassed_model_trains(tiny_classifier_dir):
    class Hybrid(keras.Model):
        def __init__(self):
            super().__init__()
            self.language = tfformers.TFAutoModel.from_pretrained(tiny_classifier_dir)
            self.head = keras.layers.Dense(2)

        def call(self, inputs):
            return self.head(self.language(inputs).pooler_output)

    model = Hybrid()
    rng = np.random.default_rng(0)
    x = {"input_ids": rng.integers(0, 99, size=(16, 6)), "attention_mask": np.ones((16, 6), "int32")}
    y = rng.integers(0, 2, size=(16,))
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    before = model.language.bert.encoder.layer[0].attention.self.query.kernel.numpy().copy()
    history = model.fit(x, y, epochs=3, batch_size=8, verbose=0)
    after = model.language.bert.encoder.layer[0].attention.self.query.kernel.numpy()
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert not np.allclose(before, after), "the pretrained backbone's weights train"


def test_pretrained_model_inside_a_functional_model_trains(tiny_classifier_dir):
    backbone = tfformers.TFAutoModel.from_pretrained(tiny_classifier_dir)
    input_ids = keras.Input(shape=(None,), dtype="int32", name="input_ids")
    attention_mask = keras.Input(shape=(None,), dtype="int32", name="attention_mask")
    pooled = backbone({"input_ids": input_ids, "attention_mask": attention_mask}).pooler_output
    logits = keras.layers.Dense(2)(pooled)
    model = keras.Model({"input_ids": input_ids, "attention_mask": attention_mask}, logits)
    rng = np.random.default_rng(1)
    x = {"input_ids": rng.integers(0, 99, size=(16, 6)), "attention_mask": np.ones((16, 6), "int32")}
    y = rng.integers(0, 2, size=(16,))
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    history = model.fit(x, y, epochs=3, batch_size=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    np.testing.assert_allclose(
        model.predict(x, verbose=0), keras.ops.convert_to_numpy(model(x)), atol=1e-5
    )


@pytest.mark.parametrize("dtype, tolerance", [("float32", 0.0), ("bfloat16", 0.1), ("float16", 0.02)])
def test_dtypes_load(dtype, tolerance, tokenizer):
    model = tfformers.TFAutoModel.from_pretrained(minilm_dir(), dtype=dtype)
    assert {v.dtype for v in model.weights} == {dtype}
    assert keras.config.dtype_policy().name == "float32", "the global policy is restored"
    encoded = tokenizer(["This is an example sentence"], return_tensors="np")
    hidden = model(encoded).last_hidden_state
    assert hidden.dtype == dtype
    reference = tfformers.TFAutoModel.from_pretrained(minilm_dir())(encoded).last_hidden_state.numpy()
    error = np.abs(tf.cast(hidden, tf.float32).numpy() - reference).max() / np.abs(reference).max()
    assert error <= tolerance + 1e-7
