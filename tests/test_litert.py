"""LiteRT export: models converted to .tflite, run in TensorFlow's interpreter, against the Keras model.

Every comparison runs the Keras model on the unpadded batch and the LiteRT model on the same rows
right-padded to the exported sequence length, so it also checks that the padding changes nothing.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from architectures import ARCHITECTURES, config_for, make_inputs
from assets import minilm_dir

import tfformers
from tfformers.errors import ConfigError, InputError
from tfformers.export.litert import LiteRTModel, export_litert

TOLERANCE = 1e-4  # fp32, max |Δ| over every compared element
SEQUENCE_LENGTH = 16
ARCH = {arch.name: arch for arch in ARCHITECTURES}


def tiny_model(arch_name, head, **overrides):
    model = getattr(tfformers, "TF" + head)(config_for(ARCH[arch_name], head, **overrides))
    model.build_with_dummy_inputs()
    return model


def real_positions_delta(litert_out, keras_out, attention_mask):
    """max |Δ| of a [batch, seq, ...] output over the positions the mask marks as tokens."""
    keep = attention_mask.astype(bool)
    length = keep.shape[1]
    return float(np.abs(litert_out[:, :length][keep] - np.asarray(keras_out)[keep]).max())


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    model = tiny_model("bert", "BertForSequenceClassification")
    path = tmp_path_factory.mktemp("litert") / "classifier.tflite"
    export_litert(model, path, sequence_length=SEQUENCE_LENGTH)
    return model, path


def test_bert_classifier_matches_keras(classifier):
    model, path = classifier
    lite = LiteRTModel(path)
    assert lite.input_names == ("input_ids", "attention_mask", "token_type_ids")
    assert lite.output_names == ("logits", "probabilities")
    assert (lite.sequence_length, lite.batch_size) == (SEQUENCE_LENGTH, None)
    details = lite.interpreter.get_signature_runner().get_input_details()
    for name in lite.input_names:
        assert details[name]["dtype"] == np.int32
        assert list(details[name]["shape_signature"]) == [-1, SEQUENCE_LENGTH]

    inputs = make_inputs(ARCH["bert"], model.config, "BertForSequenceClassification", batch=3, seq=9)
    expected = model({k: v.astype(np.int32) for k, v in inputs.items()})["logits"].numpy()
    out = lite(inputs)
    assert out["logits"].shape == (3, 3)
    assert np.abs(out["logits"] - expected).max() <= TOLERANCE
    assert np.abs(out["probabilities"] - tf.nn.softmax(expected).numpy()).max() <= TOLERANCE
    np.testing.assert_allclose(out["probabilities"].sum(-1), 1.0, atol=1e-6)
    # dynamic batch: one row alone gives the same answer as inside the batch
    single = lite({k: v[2:] for k, v in inputs.items()})
    assert np.abs(single["logits"] - expected[2:]).max() <= TOLERANCE


def test_distilbert_encoder_fixed_batch_matches_keras(tmp_path):
    model = tiny_model("distilbert", "DistilBertModel")
    path = export_litert(model, tmp_path / "encoder.tflite", sequence_length=SEQUENCE_LENGTH, batch_size=3)
    lite = LiteRTModel(path)
    assert lite.input_names == ("input_ids", "attention_mask")  # DistilBERT takes no token types
    assert lite.output_names == ("last_hidden_state",)  # and has no pooler
    assert lite.batch_size == 3

    inputs = make_inputs(ARCH["distilbert"], model.config, "DistilBertModel", batch=3, seq=9, seed=1)
    expected = model({k: v.astype(np.int32) for k, v in inputs.items()})["last_hidden_state"]
    out = lite(inputs)["last_hidden_state"]
    assert out.shape == (3, SEQUENCE_LENGTH, model.config.dim)
    assert real_positions_delta(out, expected, inputs["attention_mask"]) <= TOLERANCE
    with pytest.raises(InputError, match="batch_size=3; got a batch of 2"):
        lite({k: v[:2] for k, v in inputs.items()})


def test_minilm_checkpoint_matches_keras(tmp_path):
    from transformers import AutoTokenizer

    model = tfformers.TFBertModel.from_pretrained(minilm_dir())
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir())
    texts = ["This is an example sentence", "Each sentence is converted, then padded on the right to the longest."]
    encoded = dict(tokenizer(texts, padding=True, return_tensors="np"))
    path = export_litert(model, tmp_path / "minilm.tflite", sequence_length=32)
    out = LiteRTModel(path)(encoded)
    expected = model({k: v.astype(np.int32) for k, v in encoded.items()})
    hidden = real_positions_delta(out["last_hidden_state"], expected["last_hidden_state"], encoded["attention_mask"])
    pooled = float(np.abs(out["pooler_output"] - expected["pooler_output"].numpy()).max())
    print(f"\nMiniLM LiteRT vs Keras max |Δ|: last_hidden_state {hidden:.1e}, pooler_output {pooled:.1e}")
    assert hidden <= TOLERANCE and pooled <= TOLERANCE


# ------------------------------------------------------------------------------------------------ errors


def test_unsupported_models_say_what_is_supported(tmp_path):
    with pytest.raises(ConfigError, match="KV cache.*Supported: encoder models"):
        export_litert(tiny_model("gpt2", "GPT2LMHeadModel"), tmp_path / "lm.tflite")
    with pytest.raises(ConfigError, match="multiple-choice"):
        export_litert(tiny_model("bert", "BertForMultipleChoice"), tmp_path / "mc.tflite")
    with pytest.raises(ConfigError, match="tfformers model"):
        export_litert(keras.Sequential(), tmp_path / "other.tflite")
    assert not list(tmp_path.iterdir())


def test_bad_lengths_and_outputs_name_the_value(classifier, tmp_path):
    model, path = classifier
    with pytest.raises(InputError, match="sequence_length=65 is longer than the 64 positions"):
        export_litert(model, tmp_path / "long.tflite", sequence_length=65)
    with pytest.raises(InputError, match=r"sequence_length=0"):
        export_litert(model, tmp_path / "empty.tflite", sequence_length=0)
    with pytest.raises(InputError, match=r"outputs=\['hidden_states'\].*\['logits', 'probabilities'\]"):
        export_litert(model, tmp_path / "hidden.tflite", sequence_length=8, outputs=["hidden_states"])
    ids = np.ones((1, SEQUENCE_LENGTH + 1), np.int32)
    with pytest.raises(InputError, match=f"sequence length {SEQUENCE_LENGTH + 1}, longer than the "
                                         f"sequence_length={SEQUENCE_LENGTH}"):
        LiteRTModel(path)(input_ids=ids)


def test_tokenizer_inside_is_refused_with_the_reason(classifier, tmp_path):
    model, _ = classifier
    with pytest.raises(ConfigError, match="FlexStaticRegexReplace.*tokenizer=None"):
        export_litert(model, tmp_path / "text.tflite", tokenizer=object())


@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning")
def test_flex_ops_do_not_run_in_tensorflows_interpreter():
    """Why the tokenizer is refused, measured: TF-Text's FastWordpiece kernel runs in the interpreter, a core
    TF string op (as every in-graph tokenizer uses) converts only as a Flex op, which the interpreter lacks.
    When this fails, TensorFlow's interpreter gained the Flex delegate: revisit the tokenizer export."""
    import tensorflow_text as tf_text
    from tensorflow.lite.python.interpreter import InterpreterWithCustomOps

    wordpiece = tf_text.FastWordpieceTokenizer(["[UNK]", "hello", "world", "##s", "!"], token_out_type=tf.int32)
    text_spec = [tf.TensorSpec([None], tf.string, name="text")]

    def converted(fn, ops):
        converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], tf.Module())
        converter.target_spec.supported_ops = ops
        converter.allow_custom_ops = True
        interpreter = InterpreterWithCustomOps(
            model_content=converter.convert(), custom_op_registerers=tf_text.tflite_registrar.SELECT_TFTEXT_OPS
        )
        return interpreter.get_signature_runner()

    texts = np.array([b"hello worlds!", b"world"])
    wordpiece_only = tf.function(lambda text: {"ids": wordpiece.tokenize(text).to_tensor()}, input_signature=text_spec)
    ids = converted(wordpiece_only, [tf.lite.OpsSet.TFLITE_BUILTINS])(text=texts)["ids"]
    np.testing.assert_array_equal(ids, [[1, 2, 3, 4], [2, 0, 0, 0]])

    lowered = tf.function(lambda text: {"ids": wordpiece.tokenize(tf.strings.lower(text)).to_tensor()},
                          input_signature=text_spec)
    runner = converted(lowered, [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS])
    with pytest.raises(RuntimeError, match=r"Select TensorFlow op\(s\).*not supported by this interpreter"):
        runner(text=texts)


def test_write_is_atomic(classifier, tmp_path, monkeypatch):
    from tfformers.export import litert

    model, _ = classifier
    target = tmp_path / "model.tflite"
    target.write_bytes(b"previous")
    with pytest.raises(InputError):
        export_litert(model, target, sequence_length=8, outputs="pooler_output")
    assert target.read_bytes() == b"previous"  # a refused export leaves the file as it was

    monkeypatch.setattr(litert, "_convert", lambda serve: b"converted")
    monkeypatch.setattr(litert.os, "replace", lambda *args: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        export_litert(model, target, sequence_length=8)
    assert target.read_bytes() == b"previous"  # the rename never happened: the old file is whole
    monkeypatch.undo()
    monkeypatch.setattr(litert, "_convert", lambda serve: b"converted")
    assert export_litert(model, target, sequence_length=8) == target
    assert target.read_bytes() == b"converted"
    assert [p.name for p in tmp_path.iterdir()] == ["model.tflite"]  # no temporary file left
