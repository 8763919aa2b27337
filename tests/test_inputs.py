"""What enters a model is checked where it enters: a call's inputs from their static shapes and dtypes (and
eager values), and training data on the host, so the checks hold under jit_compile=True, where graph
assertions are dropped. Every fault gets one InputError naming the input, its shape or value, and the fix."""

import datasets
import keras
import numpy as np
import pytest
import tensorflow as tf
from architectures import ARCHITECTURES, config_for
from transformers import BatchEncoding

import tfformers
from tfformers.errors import InputError

BERT = ARCHITECTURES[0]
GPT2 = next(a for a in ARCHITECTURES if a.name == "gpt2")
LLAMA = next(a for a in ARCHITECTURES if a.name == "llama")
IDS = np.array([[5, 6, 7, 8], [9, 10, 11, 0]], dtype=np.int32)


def _built(auto_class, arch, head, **overrides):
    model = auto_class.from_config(config_for(arch, head, **overrides))
    model.build_with_dummy_inputs()
    return model


@pytest.fixture(scope="module")
def classifier():
    """A tiny BERT classifier: vocab 99, 64 positions, num_labels 3."""
    return _built(tfformers.TFAutoModelForSequenceClassification, BERT, "BertForSequenceClassification")


@pytest.fixture(scope="module")
def gpt2():
    """A tiny GPT-2 LM: vocab 211, a 64-row position table."""
    return _built(tfformers.TFAutoModelForCausalLM, GPT2, "GPT2LMHeadModel")


@pytest.fixture(scope="module")
def llama():
    """A tiny Llama LM: vocab 211, RoPE with max_position_embeddings 64 (no position table)."""
    return _built(tfformers.TFAutoModelForCausalLM, LLAMA, "LlamaForCausalLM", rope_scaling=None)


def _weights(model):
    return [w.numpy().copy() for w in model.weights]


def _unchanged(model, before):
    return all(np.array_equal(a, b.numpy()) for a, b in zip(before, model.weights))


# ------------------------------------------------------------------------------------------ a call's inputs


def test_rectangular_python_lists_and_list_encodings_work(classifier):
    reference = classifier(IDS).logits.numpy()
    mask = [[1, 1, 1, 1], [1, 1, 1, 0]]
    for out in (
        classifier(IDS.tolist()),
        classifier({"input_ids": IDS.tolist(), "attention_mask": mask}),
        classifier(BatchEncoding({"input_ids": IDS.tolist(), "attention_mask": mask})),
    ):
        np.testing.assert_allclose(out.logits.numpy()[0], reference[0], atol=1e-6)


def test_ragged_lists_say_pad_them(classifier):
    with pytest.raises(InputError, match=r"input_ids is a list of rows of different lengths \[2, 3\].*padding=True"):
        classifier([[1, 2, 3], [4, 5]])
    encoding = BatchEncoding({"input_ids": [[1, 2, 3], [4, 5]], "attention_mask": [[1, 1, 1], [1, 1]]})
    with pytest.raises(InputError, match='pad them.*return_tensors="tf"'):
        classifier(encoding)


@pytest.mark.parametrize("text", ["hello", ["a b", "c"], [["a", "b"]], np.array(["a b"])], ids=str)
def test_text_says_tokenize_first(classifier, text):
    with pytest.raises(InputError, match="input_ids (is|holds) text.*tokenize first"):
        classifier(text)


def test_one_dimensional_ids_need_a_batch_dimension(classifier, gpt2):
    for model in (classifier, gpt2):
        with pytest.raises(InputError, match=r"shape \[4\]: one sequence without a batch dimension.*ids\[None\]"):
            model(IDS[0])


@pytest.mark.parametrize("shape", [(2, 0), (0, 4)])
def test_empty_inputs(classifier, shape):
    with pytest.raises(InputError, match=rf"input_ids has shape \[{shape[0]}, {shape[1]}\], which is empty"):
        classifier(np.zeros(shape, np.int32))


@pytest.mark.parametrize("name, shape", [
    ("attention_mask", (2, 3)), ("attention_mask", (1, 4)), ("token_type_ids", (2, 5)), ("position_ids", (1, 4)),
])
def test_companions_must_have_the_shape_of_input_ids(classifier, name, shape):
    with pytest.raises(InputError, match=rf"{name} has shape \[{shape[0]}, {shape[1]}\] but input_ids has \[2, 4\]"):
        classifier({"input_ids": IDS, name: np.zeros(shape, np.int32)})


def test_input_ids_or_inputs_embeds(classifier):
    with pytest.raises(InputError, match=r"needs input_ids \(or inputs_embeds\); got \['attention_mask'\]"):
        classifier({"attention_mask": np.ones((2, 4), np.int32)})
    with pytest.raises(InputError, match="either input_ids or inputs_embeds, not both"):
        classifier({"input_ids": IDS, "inputs_embeds": np.zeros((2, 4, 32), np.float32)})
    with pytest.raises(InputError, match="input_ids are float32; token ids are integers"):
        classifier(IDS.astype(np.float32))


def test_faults_are_reported_as_themselves_not_from_inside_a_layer(classifier, gpt2):
    with pytest.raises(InputError) as raised:
        classifier(np.array([[1, 2, 99]]))
    assert str(raised.value).startswith("input_ids row 0 has token id 99 at position 2, outside [0, 99)")
    with pytest.raises(InputError) as raised:
        gpt2(np.ones((1, 65), np.int32))
    assert str(raised.value).startswith("input_ids has sequence length 65, longer than the 64 positions")
    assert "Exception encountered" not in str(raised.value)


def test_rope_decoders_take_any_length_at_a_call(llama):
    assert llama(np.ones((1, 70), np.int32)).logits.shape == (1, 70, 211)


def test_symbolic_inputs_are_checked_from_their_static_shapes(classifier):
    ids = keras.Input((5,), dtype="int32", name="input_ids")
    assert classifier({"input_ids": ids}).logits.shape == (None, 3)
    with pytest.raises(InputError, match=r"attention_mask has shape \[None, 6\] but input_ids has \[None, 5\]"):
        classifier({"input_ids": ids, "attention_mask": keras.Input((6,), dtype="int32")})


# ------------------------------------------------------------------------------ compiled training on arrays


def test_compiled_fit_refuses_an_out_of_range_label_before_any_step(classifier):
    classifier.compile(optimizer="adam", jit_compile=True)
    before = _weights(classifier)
    labels = np.array([0, 2, 1, 7, 0, 1])
    with pytest.raises(InputError, match=r"labels row 3 has class label 7, outside \[0, 3\) \(or -100 to ignore\): "
                                         r"the model has num_labels=3\. Set num_labels when loading"):
        classifier.fit(np.tile(IDS, (3, 1)), labels, epochs=1, verbose=0)
    assert _unchanged(classifier, before)
    with pytest.raises(InputError, match="labels row 1 has class label -1"):
        classifier.evaluate(IDS, [0, -1], verbose=0)
    with pytest.raises(InputError, match="labels row 0 has class label 3"):
        classifier.fit({"input_ids": IDS, "labels": np.array([3, 0])}, verbose=0)
    with pytest.raises(InputError, match="labels row 1 has class label 9"):
        classifier.fit(IDS, [0, 0], validation_data=(IDS, [0, 9]), verbose=0)
    assert _unchanged(classifier, before)


def test_compiled_fit_refuses_unknown_token_ids(classifier):
    classifier.compile(optimizer="adam", jit_compile=True)
    ids = np.tile(IDS, (2, 1))
    ids[3, 1] = 120
    with pytest.raises(InputError, match=r"input_ids row 3 has token id 120 at position 1, outside \[0, 99\)"):
        classifier.fit(ids, np.zeros(4, np.int32), verbose=0)
    with pytest.raises(InputError, match="token_type_ids row 0 has token type 2"):
        classifier.predict({"input_ids": IDS, "token_type_ids": np.full((2, 4), 2)}, verbose=0)
    with pytest.raises(InputError, match="input_ids row 1 has token id 99"):
        classifier.predict(tf.constant([[1, 2, 3], [4, 99, 5]]), verbose=0)


def test_float_class_labels_are_class_ids_when_whole(classifier):
    as_ints = classifier({"input_ids": IDS, "labels": np.array([2, 1])}).loss
    as_floats = classifier({"input_ids": IDS, "labels": np.array([2.0, 1.0], np.float32)}).loss
    assert float(as_floats) == pytest.approx(float(as_ints))
    classifier.compile(optimizer="adam", jit_compile=True)
    with pytest.raises(InputError, match="labels row 1 has 0.5, which is not a whole number; class labels are"):
        classifier.fit(IDS, np.array([1.0, 0.5]), verbose=0)


def test_decoder_labels_and_lengths_are_checked_in_compiled_training(gpt2, llama):
    ids = np.tile(IDS, (2, 1))
    labels = np.where(ids == 0, -100, ids)
    labels[2, 3] = 300
    for model in (gpt2, llama):
        model.compile(optimizer="adam", jit_compile=True)
        with pytest.raises(InputError, match=r"labels row 2 has token id 300 at position 3, outside \[0, 211\) "
                                             r"\(or -100 to ignore\)"):
            model.fit(ids, labels, verbose=0)
        too_long = np.ones((2, 70), np.int32)
        with pytest.raises(InputError, match=r"input_ids row 0 is 70 tokens long.*more than the 64 positions"):
            model.fit({"input_ids": too_long, "attention_mask": np.ones_like(too_long)}, too_long, verbose=0)


def test_valid_python_lists_train(llama):
    llama.compile(optimizer="adam", run_eagerly=True)  # XLA training on arrays: tests/test_training.py
    labels = np.where(IDS == 0, -100, IDS).tolist()
    history = llama.fit(IDS.tolist(), labels, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


# -------------------------------------------------------------------------------------- prepare_tf_dataset


def _batches(tf_ds):
    return list(tf_ds.as_numpy_iterator())


def _rows(**columns):
    return datasets.Dataset.from_dict(columns)


def test_every_prepared_batch_is_checked_and_the_error_names_the_dataset_row(classifier):
    ids = [[1, 2, 3]] * 10
    oov = _rows(input_ids=ids[:9] + [[1, 2, 150]], label=[0] * 10)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"input_ids row 9 of the dataset has token id 150 at "
                                                             r"position 2, outside \[0, 99\)"):
        _batches(classifier.prepare_tf_dataset(oov, batch_size=4, shuffle=True, seed=0, drop_remainder=False))
    bad_label = _rows(input_ids=ids, label=[0] * 6 + [4] + [0] * 3)
    with pytest.raises(tf.errors.InvalidArgumentError, match="labels row 6 of the dataset has class label 4"):
        _batches(classifier.prepare_tf_dataset(bad_label, batch_size=4, shuffle=False))
    too_long = _rows(input_ids=ids[:7] + [[1] * 65] + ids[:2], label=[0] * 10)
    with pytest.raises(tf.errors.InvalidArgumentError, match="input_ids row 7 of the dataset is 65 tokens long"):
        _batches(classifier.prepare_tf_dataset(too_long, batch_size=4, shuffle=False))


@pytest.mark.parametrize("bad, says", [(None, "is None"), ([1, None, 3], "holds None"), ("a b", "holds 'a b'")],
                         ids=["None", "None-inside", "text"])
def test_a_none_or_text_in_a_later_row_is_named(classifier, bad, says):
    def examples():
        for i in range(10):
            yield {"input_ids": bad if i == 6 else [1, 2, 3], "label": 0}

    stream = datasets.IterableDataset.from_generator(examples)
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"input_ids row 2 of batch 1 \\(streamed\\) {says}"):
        _batches(classifier.prepare_tf_dataset(stream, batch_size=4, shuffle=False))
    if bad is not None and not isinstance(bad, str):  # a map-style dataset: Arrow stores the null
        in_memory = _rows(input_ids=[[1, 2, 3]] * 6 + [bad] + [[1, 2, 3]] * 3, label=[0] * 10)
        with pytest.raises(tf.errors.InvalidArgumentError, match=f"input_ids row 6 of the dataset {says}"):
            _batches(classifier.prepare_tf_dataset(in_memory, batch_size=4, shuffle=True, seed=1,
                                                   drop_remainder=False))


def test_compiled_fit_on_a_prepared_dataset_stops_before_a_bad_batch_trains(classifier):
    classifier.compile(optimizer="adam", jit_compile=True)
    before = _weights(classifier)
    data = _rows(input_ids=[[1, 2, 3]] * 4, label=[0, 5, 0, 1])
    with pytest.raises(tf.errors.InvalidArgumentError, match="labels row 1 of the dataset has class label 5"):
        classifier.fit(classifier.prepare_tf_dataset(data, batch_size=4, shuffle=False), verbose=0)
    assert _unchanged(classifier, before)
