"""The transformers 4.x behaviour that its TensorFlow example scripts rely on, each checked on its own:
from_pretrained's and from_config's 4.x options, the input embeddings (get, set, resize, against PyTorch's
resize_token_embeddings), a metrics list on a multi-output head, and prepare_tf_dataset's 4.x defaults
(what a collate_fn sees, multiple-choice rows, drop_remainder)."""

import datasets
import keras
import numpy as np
import pytest
import tensorflow as tf
from architectures import _bert_config, _distilbert_config, _gpt2_config, _roberta_config
from oracle import max_abs_diff, torch_model, torch_outputs

import tfformers
from tfformers import (
    DataCollatorWithPadding,
    TFAutoModelForMaskedLM,
    TFAutoModelForMultipleChoice,
    TFAutoModelForQuestionAnswering,
    TFAutoModelForSequenceClassification,
)
from tfformers.errors import ConfigError, InputError

IDS = np.array([[5, 7, 9, 2, 1, 4], [3, 4, 8, 6, 0, 0]])
MASK = (IDS != 0).astype(np.int32)


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bert")
    TFAutoModelForMaskedLM.from_config(_bert_config(num_hidden_layers=1)).save_pretrained(folder)
    return folder


# ------------------------------------------------------------------------------ loading options


def test_from_pretrained_takes_4x_options_and_refuses_remote_code(bert_dir):
    model = TFAutoModelForMaskedLM.from_pretrained(bert_dir, trust_remote_code=False, from_pt=True)
    same = tfformers.TFBertForMaskedLM.from_pretrained(bert_dir, trust_remote_code=False, from_pt=False)
    np.testing.assert_array_equal(model(IDS).logits.numpy(), same(IDS).logits.numpy())
    for load in (TFAutoModelForMaskedLM.from_pretrained, tfformers.TFBertForMaskedLM.from_pretrained):
        with pytest.raises(ConfigError, match="never runs code from a model repository"):
            load(bert_dir, trust_remote_code=True)


def test_auto_from_config_takes_4x_options():
    config = _bert_config(num_hidden_layers=1, num_labels=3)
    model = TFAutoModelForSequenceClassification.from_config(config, token=None, trust_remote_code=False,
                                                             name="classifier")
    assert model.name == "classifier" and model.built and model(IDS).logits.shape == (2, 3)
    with pytest.raises(ConfigError, match="trust_remote_code=True"):
        TFAutoModelForSequenceClassification.from_config(config, trust_remote_code=True)


# ------------------------------------------------------------------------------ input embeddings

RESIZED = [  # (PyTorch head, config, tfformers class): tied MLM heads with an output bias, an untied lm_head
    ("BertForMaskedLM", _bert_config(), "TFBertForMaskedLM"),
    ("RobertaForMaskedLM", _roberta_config(), "TFRobertaForMaskedLM"),
    ("DistilBertForMaskedLM", _distilbert_config(), "TFDistilBertForMaskedLM"),
    ("GPT2LMHeadModel", _gpt2_config(tie_word_embeddings=False), "TFGPT2LMHeadModel"),
]


@pytest.mark.parametrize(("head", "config", "ours"), RESIZED, ids=[r[0] for r in RESIZED])
def test_resize_token_embeddings_matches_pytorch_on_the_kept_rows(head, config, ours, tmp_path):
    """Grow then shrink, in both frameworks: the weights of the rows both keep are equal, so are the logits
    over them (fp32, 1e-5); the config, the head and the saved checkpoint follow the new size."""
    import torch

    pt = torch_model(head, config)
    pt.save_pretrained(tmp_path / "pt")
    model = getattr(tfformers, ours).from_pretrained(tmp_path / "pt")
    variables = len(model.trainable_variables)
    inputs = {"input_ids": IDS, "attention_mask": MASK}
    kept = config.vocab_size
    for size in (config.vocab_size + 13, config.vocab_size - 9):
        pt.resize_token_embeddings(size, mean_resizing=False)  # new rows are random in both
        layer = model.resize_token_embeddings(size)
        kept = min(kept, size)
        assert model.config.vocab_size == size and layer is model.get_input_embeddings()
        assert len(model.trainable_variables) == variables  # replaced, not added
        logits = model(inputs).logits.numpy()
        assert logits.shape[-1] == size
        assert max_abs_diff(logits[..., :kept], torch_outputs(pt, inputs)["logits"][..., :kept]) < 1e-5
        ours_rows = keras.ops.convert_to_numpy(layer.embeddings)[:kept]
        assert max_abs_diff(ours_rows, pt.get_input_embeddings().weight[:kept]) == 0
    model.save_pretrained(tmp_path / "resized")
    reloaded = type(pt).from_pretrained(tmp_path / "resized")
    assert reloaded.config.vocab_size == size
    with torch.no_grad():
        reloaded.eval()
        assert max_abs_diff(logits, reloaded(**{k: torch.as_tensor(v) for k, v in inputs.items()}).logits) < 1e-5


def test_set_input_embeddings_is_what_a_tied_head_projects_onto():
    model = TFAutoModelForMaskedLM.from_config(_bert_config(num_hidden_layers=1))
    old = model.get_input_embeddings()
    new = keras.layers.Embedding(old.input_dim, old.output_dim)
    new.build()
    new.embeddings.assign(keras.ops.convert_to_numpy(old.embeddings) * 2.0)
    before = model(IDS).logits.numpy()
    model.set_input_embeddings(new)
    assert model.get_input_embeddings() is new
    assert not np.allclose(model(IDS).logits.numpy(), before)
    assert any(v is new.embeddings for v in model.trainable_variables)
    assert not any(v is old.embeddings for v in model.trainable_variables)
    narrow = keras.layers.Embedding(old.input_dim, old.output_dim + 1)
    narrow.build()
    with pytest.raises(InputError, match="width 33"):
        model.set_input_embeddings(narrow)
    with pytest.raises(InputError, match="positive integer"):
        model.resize_token_embeddings(0)


# ------------------------------------------------------------------------------ training


def test_a_metrics_list_applies_to_each_output_of_question_answering():
    """Keras 2 (4.x) gave `metrics=["accuracy"]` to every output: start_logits_accuracy, end_logits_accuracy."""
    model = TFAutoModelForQuestionAnswering.from_config(_bert_config(num_hidden_layers=1))
    model.compile(optimizer="sgd", metrics=["accuracy"])
    labels = {"start_positions": np.array([1, 2]), "end_positions": np.array([2, 2])}
    results = model.evaluate({"input_ids": IDS, "attention_mask": MASK}, labels, return_dict=True, verbose=0)
    out = model({"input_ids": IDS, "attention_mask": MASK})
    for output, label in (("start_logits", "start_positions"), ("end_logits", "end_positions")):
        expected = np.mean(np.argmax(out[output].numpy(), axis=-1) == labels[label])
        assert results[f"{output}_accuracy"] == pytest.approx(expected)
    classifier = TFAutoModelForSequenceClassification.from_config(_bert_config(num_hidden_layers=1))
    classifier.compile(optimizer="sgd", metrics=["accuracy"])  # one output: the metric keeps its own name
    assert "accuracy" in classifier.evaluate(IDS, np.array([0, 1]), return_dict=True, verbose=0)


# ------------------------------------------------------------------------------ prepare_tf_dataset


def _tokenized(rows):
    return datasets.Dataset.from_dict({
        "text": [f"row {i}" for i in range(rows)],
        "input_ids": [[2] + list(range(5, 5 + i % 4 + 1)) + [3] for i in range(rows)],
        "label": [i % 2 for i in range(rows)],
        "idx": list(range(rows)),
    })


def test_a_collate_fn_sees_only_the_models_inputs_and_labels():
    seen = []

    def collate(rows):
        seen.append(set(rows[0]))
        return DataCollatorWithPadding(None)(rows)

    model = TFAutoModelForSequenceClassification.from_config(_bert_config(num_hidden_layers=1))
    tf_dataset = model.prepare_tf_dataset(_tokenized(6), batch_size=3, shuffle=False, collate_fn=collate)
    assert len(list(tf_dataset)) == 2
    assert seen and all(keys == {"input_ids", "label"} for keys in seen)  # not "text", not "idx"


def test_drop_remainder_defaults_to_shuffle():
    model = TFAutoModelForSequenceClassification.from_config(_bert_config(num_hidden_layers=1))
    shuffled = model.prepare_tf_dataset(_tokenized(7), batch_size=3, shuffle=True, seed=0)
    ordered = model.prepare_tf_dataset(_tokenized(7), batch_size=3, shuffle=False)
    assert [len(y) for _, y in shuffled] == [3, 3]
    assert [len(y) for _, y in ordered] == [3, 3, 1]
    kept = model.prepare_tf_dataset(_tokenized(7), batch_size=3, shuffle=True, seed=0, drop_remainder=False)
    assert sum(len(y) for _, y in kept) == 7


def test_multiple_choice_rows_of_different_lengths_batch_into_choices():
    """One list of ids per choice, of different lengths: [batch, choices, longest] with a matching mask, the
    model's output per row equal to running each row alone (padding changes nothing)."""
    choices = [[[2, 5, 7, 3], [2, 6, 8, 9, 10, 5, 3]], [[2, 12, 3], [2, 13, 14, 3]], [[2, 5, 3], [2, 6, 3]]]
    data = datasets.Dataset.from_dict({"input_ids": choices, "label": [1, 0, 1], "sentence": ["a", "b", "c"]})
    model = TFAutoModelForMultipleChoice.from_config(_bert_config(num_hidden_layers=1))
    (x, y), (x_last, _) = list(model.prepare_tf_dataset(data, batch_size=2, shuffle=False))
    assert x["input_ids"].shape == (2, 2, 7) and x_last["input_ids"].shape == (1, 2, 3)
    np.testing.assert_array_equal(x["attention_mask"].numpy()[0], [[1, 1, 1, 1, 0, 0, 0], [1] * 7])
    np.testing.assert_array_equal(y.numpy(), [1, 0])
    batched = model(x).logits.numpy()
    for row, row_choices in enumerate(choices[:2]):
        longest = max(map(len, row_choices))
        ids = np.array([c + [0] * (longest - len(c)) for c in row_choices])[None]
        alone = model({"input_ids": ids, "attention_mask": (ids != 0).astype(np.int32)}).logits.numpy()
        assert max_abs_diff(batched[row], alone[0]) < 1e-5
    uneven = datasets.Dataset.from_dict({"input_ids": [choices[0], choices[1][:1]], "label": [0, 0]})
    with pytest.raises(InputError, match="same number of choices"):
        list(model.prepare_tf_dataset(uneven, batch_size=2, shuffle=False))


def test_text_labels_holding_class_ids_are_read_as_integers(tmp_path):
    """datasets keeps a CSV column's text type when map replaces its values: labels mapped from names to ids
    (as run_text_classification does) stay text."""
    (tmp_path / "rows.csv").write_text("text,label\nthe cat,pos\na dog,neg\n")
    data = datasets.load_dataset("csv", data_files=str(tmp_path / "rows.csv"), split="train")
    data = data.map(lambda rows: {"input_ids": [[2, 5, 3]] * len(rows["label"]),
                                  "label": [{"neg": 0, "pos": 1}[name] for name in rows["label"]]}, batched=True)
    assert data.features["label"].dtype in ("string", "large_string") and data["label"][:] == ["1", "0"]
    model = TFAutoModelForSequenceClassification.from_config(_bert_config(num_hidden_layers=1))
    (_, labels), = list(model.prepare_tf_dataset(data, batch_size=2, shuffle=False))
    np.testing.assert_array_equal(labels.numpy(), [1, 0])
    names = datasets.Dataset.from_dict({"input_ids": [[2, 5, 3]], "label": ["pos"]})
    with pytest.raises(InputError, match="not numbers"):
        model.prepare_tf_dataset(names, batch_size=1, shuffle=False)


@pytest.fixture(scope="module")
def tiny_t5():
    config = tfformers.T5Config(vocab_size=37, d_model=16, d_kv=4, d_ff=24, num_layers=1, num_heads=2,
                                pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
    return tfformers.TFAutoModelForSeq2SeqLM.from_config(config)


def test_the_metric_callback_generates_from_the_source_alone_under_xla(tiny_t5):
    """4.x's KerasMetricCallback(predict_with_generate=True, use_xla_generation=True) generates from the batch's
    input_ids and attention_mask only (not from the collator's teacher-forcing decoder_input_ids), in one
    compiled program; the tokens are those of eager generate."""
    ids = np.array([[5, 6, 7, 1], [8, 9, 1, 0]])
    batch = {"input_ids": ids, "attention_mask": (ids > 0).astype(np.int32),
             "decoder_input_ids": np.array([[0, 10, 11, 12], [0, 13, 1, 0]])}
    labels = np.array([[10, 11, 12, 1], [13, 1, -100, -100]])
    received = []
    callback = tfformers.KerasMetricCallback(
        lambda p: received.append(p) or {"n": 1}, tf.data.Dataset.from_tensors((batch, labels)),
        predict_with_generate=True, use_xla_generation=True, generate_kwargs={"max_length": 6, "num_beams": 1})
    callback.set_model(tiny_t5)
    callback.on_epoch_end(0, {})
    predictions, seen_labels = received[0]
    expected = tiny_t5.generate(ids, attention_mask=batch["attention_mask"], max_length=6)
    np.testing.assert_array_equal(predictions, np.asarray(expected))
    np.testing.assert_array_equal(seen_labels, labels)
    assert callback._compiled_generate is not None


def test_prepare_tf_dataset_of_no_dataset_is_a_clear_error(tiny_t5):
    """A script that builds its training set only with --do_train passes None without it (4.x refuses too)."""
    with pytest.raises(InputError, match="got NoneType"):
        tiny_t5.prepare_tf_dataset(None, collate_fn=lambda rows: rows, batch_size=2)
