"""The code samples of the TensorFlow philosophy text, run with tfformers in place of transformers and the
MiniLM asset (or a tiny saved model) in place of Hub names; the hybrid vision-language model holds a tiny GPT-2
and a tiny ViT. Deployment samples belong to later capabilities and are not here."""

import numpy as np
import pytest
import tensorflow as tf
from architectures import ARCHITECTURES, config_for
from assets import bbc_titles, minilm_dir

MODEL = str(minilm_dir())


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    """A tiny BERT with the MiniLM tokenizer's vocabulary size, saved with that tokenizer."""
    import tfformers

    folder = tmp_path_factory.mktemp("tiny-bert")
    config = config_for(ARCHITECTURES[0], "BertModel", vocab_size=30522, max_position_embeddings=128)
    tfformers.TFAutoModel.from_config(config).save_pretrained(
        folder, tokenizer=tfformers.AutoTokenizer.from_pretrained(MODEL)
    )
    return str(folder)


def test_thirty_seconds_to_hugging_face():
    from tfformers import AutoTokenizer, TFAutoModel

    # Make sure to always load a matching tokenizer and model!
    tokenizer = AutoTokenizer.from_pretrained(MODEL)
    model = TFAutoModel.from_pretrained(MODEL)

    # Let's load some data and tokenize it
    test_strings = ["This is a sentence!", "This is another one!"]
    tokenized_inputs = tokenizer(test_strings, return_tensors="np", padding=True)

    # Now our data is tokenized, we can pass it to our model, or use it in fit()!
    outputs = model(tokenized_inputs)
    assert outputs.last_hidden_state.shape == (2, tokenized_inputs["input_ids"].shape[1], 384)


def test_predict_and_fit(tiny_bert):
    from tfformers import AutoTokenizer, TFAutoModelForSequenceClassification

    my_model = tiny_bert
    tokenizer = AutoTokenizer.from_pretrained(my_model)
    my_data = dict(tokenizer(bbc_titles(16), return_tensors="np", padding=True))
    my_labels = np.arange(16) % 2

    model = TFAutoModelForSequenceClassification.from_pretrained(my_model)
    predictions = model.predict(my_data)
    assert predictions.logits.shape == (16, 2)

    model.compile(optimizer="adam")
    history = model.fit(my_data, my_labels)
    assert np.isfinite(history.history["loss"][0])


@pytest.fixture(scope="module")
def tiny_gpt2_and_vit(tmp_path_factory):
    """Folders of a tiny random GPT-2 and a tiny random ViT (28x28 images, patch 4), both of width 36."""
    from transformers import ViTConfig

    import tfformers

    gpt2 = tmp_path_factory.mktemp("tiny-gpt2")
    tfformers.TFAutoModel.from_config(config_for(ARCHITECTURES[3], "GPT2Model")).save_pretrained(gpt2)
    vit = tmp_path_factory.mktemp("tiny-vit")
    vit_config = ViTConfig(image_size=28, patch_size=4, hidden_size=36, num_hidden_layers=2, num_attention_heads=3,
                           intermediate_size=37)
    tfformers.TFAutoModel.from_config(vit_config).save_pretrained(vit)
    return str(gpt2), str(vit)


def test_hybrid_vision_language_model(tiny_gpt2_and_vit, tmp_path):
    """The text's HybridVisionLanguageModel as written (Hub names replaced by the tiny models' folders), with
    a concrete call: how well a caption matches an image, the dot product of GPT-2's mean hidden state and
    ViT's pooled [CLS]. It builds, trains a step with fit(), and its weights survive save/load_weights."""
    from tfformers import TFAutoModel

    gpt2, vit = tiny_gpt2_and_vit

    class HybridVisionLanguageModel(tf.keras.Model):
        def __init__(self):
            super().__init__()
            self.language = TFAutoModel.from_pretrained(gpt2)
            self.vision = TFAutoModel.from_pretrained(vit)

        def call(self, inputs):
            text = self.language({"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"]})
            mask = tf.cast(inputs["attention_mask"], tf.float32)[..., None]
            caption = tf.reduce_sum(text.last_hidden_state * mask, axis=1) / tf.reduce_sum(mask, axis=1)
            image = self.vision(inputs["pixel_values"]).pooler_output
            return tf.reduce_sum(caption * image, axis=-1, keepdims=True)  # [batch, 1] match logit

    rng = np.random.default_rng(0)
    data = {
        "input_ids": rng.integers(3, 211, size=(4, 6)),
        "attention_mask": np.array([[1] * 6, [1] * 4 + [0] * 2, [1] * 6, [1] * 3 + [0] * 3]),
        "pixel_values": rng.standard_normal((4, 3, 28, 28)).astype(np.float32),
    }
    labels = np.array([[1.0], [0.0], [1.0], [0.0]])
    hybrid = HybridVisionLanguageModel()
    assert hybrid(data).shape == (4, 1)
    hybrid.compile(optimizer=tf.keras.optimizers.Adam(1e-3), loss=tf.keras.losses.BinaryCrossentropy(from_logits=True))
    before = [w.numpy() for w in hybrid.trainable_weights]
    history = hybrid.fit(data, labels, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    changed = [not np.array_equal(old, w.numpy()) for old, w in zip(before, hybrid.trainable_weights)]
    assert all(changed), "every weight of both stems trains"
    stems = hybrid.language.trainable_weights + hybrid.vision.trainable_weights
    assert len(hybrid.trainable_weights) == len(stems)

    hybrid.save_weights(tmp_path / "hybrid.weights.h5")
    reloaded = HybridVisionLanguageModel()
    reloaded(data)  # builds the variables the weights load into
    reloaded.load_weights(tmp_path / "hybrid.weights.h5")
    for saved, loaded in zip(hybrid.weights, reloaded.weights):
        np.testing.assert_array_equal(saved.numpy(), loaded.numpy())
    np.testing.assert_allclose(reloaded(data).numpy(), hybrid(data).numpy(), rtol=1e-6, atol=1e-6)


def test_question_answering_without_a_loss_argument(tiny_bert):
    from tfformers import TFAutoModelForQuestionAnswering

    rng = np.random.default_rng(0)
    my_data = {"input_ids": rng.integers(1000, 2000, size=(8, 12))}
    my_labels = {"start_positions": rng.integers(0, 12, 8), "end_positions": rng.integers(0, 12, 8)}

    model = TFAutoModelForQuestionAnswering.from_pretrained(tiny_bert)
    model.compile(optimizer="adam")  # No loss argument!
    history = model.fit(my_data, my_labels, epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_datasets_then_numpy_then_prepare_tf_dataset(tiny_bert):
    from datasets import Dataset
    from tensorflow.keras.optimizers import Adam

    from tfformers import AutoTokenizer, TFAutoModelForSequenceClassification

    titles = bbc_titles(40)
    dataset = Dataset.from_dict({"text": titles, "label": [i % 2 for i in range(40)]})

    # Load our tokenizer and tokenize our data
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    tokenized_data = tokenizer(dataset["text"], return_tensors="np", padding=True)
    labels = np.array(dataset["label"])  # Label is already an array of 0 and 1

    # Load and compile our model
    model = TFAutoModelForSequenceClassification.from_pretrained(tiny_bert)
    # Lower learning rates are often better for fine-tuning transformers
    model.compile(optimizer=Adam(3e-5))

    model.fit(tokenized_data, labels)

    def tokenize_dataset(data):
        # Keys of the returned dictionary will be added to the dataset as columns
        return tokenizer(data["text"])

    dataset = dataset.map(tokenize_dataset)
    tf_dataset = model.prepare_tf_dataset(dataset, batch_size=16, shuffle=True)
    batch_x, _ = next(iter(tf_dataset))
    assert set(batch_x) <= set(model.input_names) and "text" not in batch_x
    history = model.fit(tf_dataset)
    assert np.isfinite(history.history["loss"][0])

    # Philosophy #5: XLA
    model.compile(optimizer="adam", jit_compile=True)
    history = model.fit(tf_dataset, epochs=1)
    assert np.isfinite(history.history["loss"][0])
