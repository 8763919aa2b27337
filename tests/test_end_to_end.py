"""Strings straight into Keras models: the blog's `EndToEndModel` as written, and the same pattern for
classification, token classification, question answering, sentence embeddings and text generation.

Each model holds an in-graph tokenizer and a tfformers model; `model.predict([...strings])` must equal the
Python path (transformers' tokenizer, then the model) within 1e-5, and generated tokens must be identical.
The blog's model and the sentence embedder use the real MiniLM; the heads are tiny random BERTs on MiniLM's
vocabulary (what is tested is strings in, the same numbers out).
"""

import numpy as np
import pytest
import tensorflow as tf
from assets import minilm_dir, smollm2_gguf
from transformers import BertConfig, LlamaConfig

import tfformers
from tfformers import (
    TFAutoModel,
    TFAutoModelForQuestionAnswering,
    TFAutoModelForSequenceClassification,
    TFAutoModelForTokenClassification,
    TFAutoTokenizer,
    TFBertTokenizer,
)

TOLERANCE = 1e-5
TEST_INPUTS = ["This is a test sentence!", "This is another one!", "Ünïcödé, emoji 🤗 and   whitespace runs."]


@pytest.fixture(scope="module")
def tokenizer():
    return tfformers.AutoTokenizer.from_pretrained(minilm_dir())


@pytest.fixture(scope="module")
def tokenizer_layer(tokenizer):
    return TFBertTokenizer.from_tokenizer(tokenizer)


def tiny_bert(auto_class, **overrides):
    """A tiny random BERT with MiniLM's vocabulary, through the TFAuto class (from_config)."""
    tf.keras.utils.set_random_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=37, **overrides)
    model = auto_class.from_config(config)
    model.build_with_dummy_inputs()
    return model


def python_path(model, tokenizer, *texts):
    return model(dict(tokenizer(*texts, padding=True, truncation=True, return_tensors="np")))


def test_the_blogs_end_to_end_model_as_written(tokenizer):
    """The class body of the blog post, with `tf.keras.Model`, `TFBertTokenizer` and `TFAutoModel`."""

    class EndToEndModel(tf.keras.Model):
        def __init__(self, checkpoint):
            super().__init__()
            self.tokenizer = TFBertTokenizer.from_pretrained(checkpoint)
            self.model = TFAutoModel.from_pretrained(checkpoint)

        def call(self, inputs):
            tokenized = self.tokenizer(inputs)
            return self.model(**tokenized)

    model = EndToEndModel(checkpoint=minilm_dir())
    outputs = model.predict(TEST_INPUTS)  # Pass strings straight to model!
    expected = python_path(model.model, tokenizer, TEST_INPUTS)
    np.testing.assert_allclose(outputs["last_hidden_state"], expected.last_hidden_state, atol=TOLERANCE)
    np.testing.assert_allclose(outputs["pooler_output"], expected.pooler_output, atol=TOLERANCE)


class StringsIn(tf.keras.Model):
    """Tokenizer then model; `pairs` for question answering (x is a (questions, contexts) tuple)."""

    def __init__(self, tokenizer, model, pairs=False):
        super().__init__()
        self.tokenizer = tokenizer
        self.model = model
        self.pairs = pairs

    def call(self, inputs):
        tokenized = self.tokenizer(*inputs, truncation=True) if self.pairs else self.tokenizer(inputs, truncation=True)
        return self.model(tokenized)


@pytest.mark.parametrize("auto_class", [TFAutoModelForSequenceClassification, TFAutoModelForTokenClassification])
def test_classifiers_take_strings(auto_class, tokenizer, tokenizer_layer):
    model = StringsIn(tokenizer_layer, tiny_bert(auto_class, num_labels=3))
    expected = python_path(model.model, tokenizer, TEST_INPUTS).logits
    np.testing.assert_allclose(model.predict(TEST_INPUTS)["logits"], expected, atol=TOLERANCE)


def test_question_answering_takes_question_and_context_strings(tokenizer, tokenizer_layer):
    questions = ["Where is the tower?", "Who wrote it?"]
    contexts = ["The tower is in Paris, the capital of France.", "It was written by Jane Austen long ago."]
    model = StringsIn(tokenizer_layer, tiny_bert(TFAutoModelForQuestionAnswering), pairs=True)
    outputs = model.predict((questions, contexts))
    expected = python_path(model.model, tokenizer, questions, contexts)
    np.testing.assert_allclose(outputs["start_logits"], expected.start_logits, atol=TOLERANCE)
    np.testing.assert_allclose(outputs["end_logits"], expected.end_logits, atol=TOLERANCE)


def test_sentence_embeddings_from_strings(tokenizer, tokenizer_layer):
    """Mean pooling and L2 normalisation inside the model: sentence-transformers' MiniLM embedding."""

    class SentenceEmbedder(tf.keras.Model):
        def __init__(self):
            super().__init__()
            self.tokenizer = tokenizer_layer
            self.encoder = TFAutoModel.from_pretrained(minilm_dir())

        def call(self, texts):
            tokenized = self.tokenizer(texts, truncation=True)
            hidden = self.encoder(tokenized).last_hidden_state
            mask = tf.cast(tokenized["attention_mask"], hidden.dtype)[..., None]
            return tf.math.l2_normalize(tf.reduce_sum(hidden * mask, 1) / tf.reduce_sum(mask, 1), axis=-1)

    model = SentenceEmbedder()
    embeddings = model.predict(TEST_INPUTS)
    inputs = tokenizer(TEST_INPUTS, padding=True, truncation=True, return_tensors="np")
    hidden = model.encoder(dict(inputs)).last_hidden_state.numpy()
    mask = inputs["attention_mask"][..., None]
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    np.testing.assert_allclose(embeddings, pooled / np.linalg.norm(pooled, axis=-1, keepdims=True), atol=TOLERANCE)
    similarity = embeddings @ embeddings.T
    assert similarity[0, 1] > similarity[0, 2]  # the two test sentences are closer than the third


def test_text_generation_from_strings_to_strings():
    """Prompts padded on the left to a fixed length, the compiled generation loop (rows in chunks, the
    batch size being unknown inside predict), new tokens detokenized: identical to eager generate()."""
    python_tokenizer = tfformers.AutoTokenizer.from_pretrained(str(smollm2_gguf().parent),
                                                               gguf_file=smollm2_gguf().name)
    tf.keras.utils.set_random_seed(0)
    llama = tfformers.TFLlamaForCausalLM(LlamaConfig(
        vocab_size=len(python_tokenizer), hidden_size=16, intermediate_size=37, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64,
        eos_token_id=python_tokenizer.eos_token_id, pad_token_id=python_tokenizer.pad_token_id,
    ))
    llama.build_with_dummy_inputs()
    prompt_length, new_tokens = 12, 5

    class Generator(tf.keras.Model):
        def __init__(self):
            super().__init__()
            self.tokenizer = TFAutoTokenizer.from_tokenizer(python_tokenizer)
            self.tokenizer.padding_side = "left"
            self.lm = llama

        def call(self, prompts):
            tokenized = self.tokenizer(prompts, padding="max_length", truncation=True, max_length=prompt_length)
            sequences = self.lm.generate(tokenized["input_ids"], attention_mask=tokenized["attention_mask"],
                                         max_new_tokens=new_tokens, chunk_size=2)
            return self.tokenizer.detokenize(sequences[:, prompt_length:])

    prompts = ["Hello there", "The capital of France is", "Once upon a time, in a land far away"]
    generated = Generator().predict(prompts, batch_size=3)
    for prompt, text in zip(prompts, generated):
        ids = python_tokenizer([prompt], truncation=True, max_length=prompt_length, return_tensors="np")["input_ids"]
        new = llama.generate(ids, max_new_tokens=new_tokens).numpy()[0, ids.shape[1]:]
        assert text.decode() == python_tokenizer.decode(new, skip_special_tokens=True)
