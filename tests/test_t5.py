"""T5 against the PyTorch oracle: a v1.0-style model (ReLU feed-forward, decoder output rescaled before
the tied head) and a v1.1-style one (gated GELU, no rescaling), both with odd sizes (d_model 24, 3 heads of
7, d_ff 37, 2 encoder and 3 decoder layers, 9 position buckets reaching 13 tokens, so the log-spaced
buckets are used by the 19-token inputs)."""

import numpy as np
import pytest
import tensorflow as tf
from oracle import max_abs_diff, torch_model, torch_outputs

import tfformers
from tfformers import TFT5EncoderModel, TFT5ForConditionalGeneration, TFT5Model
from tfformers.errors import ConfigError, InputError
from tfformers.layers.seq2seq import shift_tokens_right
from tfformers.models.t5 import relative_position_bucket

VARIANTS = {"v1.0": "relu", "v1.1": "gated-gelu"}
TOLERANCE = 1e-4


def t5_config(feed_forward_proj, **overrides):
    from transformers import T5Config

    settings = dict(
        vocab_size=99, d_model=24, d_kv=7, d_ff=37, num_layers=2, num_decoder_layers=3, num_heads=3,
        relative_attention_num_buckets=9, relative_attention_max_distance=13, dropout_rate=0.1,
        feed_forward_proj=feed_forward_proj, tie_word_embeddings=feed_forward_proj == "relu",
        decoder_start_token_id=0, attn_implementation="eager",
    )
    settings.update(overrides)
    return T5Config(**settings)


def t5_inputs(seed=0):
    """Source rows of 19, 12 and 5 tokens (right-padded) and 17 target tokens, the last row padded."""
    rng = np.random.default_rng(seed)
    input_ids = rng.integers(1, 99, (3, 19))
    attention_mask = np.ones_like(input_ids)
    attention_mask[1, 12:] = 0
    attention_mask[2, 5:] = 0
    labels = rng.integers(1, 99, (3, 17))
    labels[2, 11:] = -100
    return dict(input_ids=input_ids, attention_mask=attention_mask), labels


@pytest.fixture(scope="module", params=list(VARIANTS))
def saved(request, tmp_path_factory):
    """(variant, PyTorch model, its folder, tfformers model and loading report)."""
    config = t5_config(VARIANTS[request.param])
    pt = torch_model("T5ForConditionalGeneration", config)
    folder = tmp_path_factory.mktemp(f"t5-{request.param}")
    pt.save_pretrained(folder)
    model, info = TFT5ForConditionalGeneration.from_pretrained(folder, output_loading_info=True)
    return request.param, pt, folder, model, info


def test_loading_consumes_every_tensor(saved):
    _, _, _, _, info = saved
    assert info == {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": []}


def test_outputs_match_pytorch(saved):
    """Every output the model returns, with padded source rows and a padded target row."""
    _, pt, _, model, _ = saved
    inputs, labels = t5_inputs()
    decoder_ids = np.where(labels == -100, 0, labels)
    inputs = dict(inputs, decoder_input_ids=decoder_ids, decoder_attention_mask=(labels != -100).astype(np.int64))
    theirs = torch_outputs(pt, inputs, output_attentions=True, output_hidden_states=True)
    ours = model(inputs, output_attentions=True, output_hidden_states=True)
    fields = ("logits", "decoder_hidden_states", "decoder_attentions", "cross_attentions",
              "encoder_last_hidden_state", "encoder_hidden_states", "encoder_attentions")
    assert set(fields) <= set(theirs)
    differences = {name: max_abs_diff(ours[name], theirs[name]) for name in fields}
    assert max(differences.values()) <= TOLERANCE, differences


def test_loss_with_labels_matches_pytorch(saved):
    """labels alone: the decoder reads them shifted right with the start token, -100 ignored."""
    _, pt, _, model, _ = saved
    inputs, labels = t5_inputs(seed=1)
    theirs = torch_outputs(pt, dict(inputs, labels=labels))
    ours = model(dict(inputs, labels=labels))
    assert abs(float(ours.loss) - float(theirs["loss"])) <= 1e-5
    assert max_abs_diff(ours.logits, theirs["logits"]) <= TOLERANCE


def test_cached_decoding_equals_full_forward(saved):
    """The start token as prefill, then one token at a time through an EncoderDecoderCache, the encoder
    run once: every step's logits equal the full forward's within 1e-5 of their scale (v1.1's head is
    not rescaled: its logits reach ~20, where float32 rounding alone is ~2e-6)."""
    _, _, _, model, _ = saved
    inputs, labels = t5_inputs(seed=2)
    labels = labels[:, :12]  # 12 decoding steps, the last row's padding (-100 from 11) included
    decoder_ids = shift_tokens_right(labels, 0, 0).numpy()
    full = model(dict(inputs, decoder_input_ids=decoder_ids)).logits.numpy()
    encoder_outputs = model.get_encoder()(**{k: tf.constant(v) for k, v in inputs.items()})
    cache = model.allocate_cache(labels.shape[0], labels.shape[1])
    steps = []
    for slot in range(labels.shape[1]):
        out = model(dict(attention_mask=inputs["attention_mask"], decoder_input_ids=decoder_ids[:, slot:slot + 1]),
                    cache=cache, encoder_outputs=encoder_outputs, logits_to_keep=1)
        steps.append(out.logits.numpy())
    assert max_abs_diff(np.concatenate(steps, axis=1), full) <= 1e-5 * max(1.0, np.abs(full).max())


def test_encoder_outputs_as_a_tuple_skip_the_encoder(saved):
    _, _, _, model, _ = saved
    inputs, labels = t5_inputs()
    decoder_ids = np.where(labels == -100, 0, labels)
    full = model(dict(inputs, decoder_input_ids=decoder_ids))
    given = model(dict(attention_mask=inputs["attention_mask"], decoder_input_ids=decoder_ids),
                  encoder_outputs=(full.encoder_last_hidden_state,))
    assert max_abs_diff(given.logits, full.logits) == 0.0


def test_save_pretrained_loads_in_pytorch_with_equal_outputs(saved, tmp_path):
    import transformers

    _, _, _, model, _ = saved
    model.save_pretrained(tmp_path)
    reloaded = transformers.T5ForConditionalGeneration.from_pretrained(tmp_path).eval()
    inputs, labels = t5_inputs(seed=3)
    theirs = torch_outputs(reloaded, dict(inputs, labels=labels))
    ours = model(dict(inputs, labels=labels))
    assert max_abs_diff(ours.logits, theirs["logits"]) <= TOLERANCE


def test_a_v11_checkpoint_with_its_own_lm_head_matches_pytorch(tmp_path):
    """FLAN-T5 and T5 v1.1 checkpoints hold an lm_head.weight different from shared.weight (PyTorch unties
    them on loading); the tfformers head reads it."""
    import torch
    import transformers
    from safetensors.torch import save_file

    pt = torch_model("T5ForConditionalGeneration", t5_config("gated-gelu"))
    pt.save_pretrained(tmp_path)
    state = {key: value.clone() for key, value in pt.state_dict().items()}
    state["lm_head.weight"] = torch.randn(state["shared.weight"].shape, generator=torch.Generator().manual_seed(1))
    save_file(state, tmp_path / "model.safetensors", metadata={"format": "pt"})
    pt = transformers.T5ForConditionalGeneration.from_pretrained(tmp_path).eval()
    assert pt.lm_head.weight is not pt.shared.weight
    model, info = TFT5ForConditionalGeneration.from_pretrained(tmp_path, output_loading_info=True)
    assert info == {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": []}
    inputs, labels = t5_inputs()
    theirs = torch_outputs(pt, dict(inputs, labels=labels))
    assert max_abs_diff(model(dict(inputs, labels=labels)).logits, theirs["logits"]) <= TOLERANCE


def test_relative_position_buckets_equal_pytorch():
    import torch
    from transformers.models.t5.modeling_t5 import T5Attention

    relative = np.arange(-300, 301)[None, :]
    for bidirectional in (True, False):
        for num_buckets, max_distance in ((32, 128), (9, 13)):
            theirs = T5Attention._relative_position_bucket(
                torch.as_tensor(relative), bidirectional, num_buckets, max_distance
            ).numpy()
            ours = relative_position_bucket(tf.constant(relative, tf.int32), bidirectional, num_buckets, max_distance)
            np.testing.assert_array_equal(ours.numpy(), theirs)


# ------------------------------------------------------------------------------------- other classes


@pytest.fixture(scope="module")
def saved_v10(tmp_path_factory):
    """The v1.0 PyTorch weights in a folder, for the headless and encoder-only classes."""
    pt = torch_model("T5ForConditionalGeneration", t5_config("relu"))
    folder = tmp_path_factory.mktemp("t5-headless")
    pt.save_pretrained(folder)
    return folder


@pytest.mark.parametrize(("ours", "theirs"), [(TFT5Model, "T5Model"), (TFT5EncoderModel, "T5EncoderModel")])
def test_headless_and_encoder_models_match_pytorch(saved_v10, ours, theirs):
    import transformers

    pt = getattr(transformers, theirs).from_pretrained(saved_v10).eval()
    model, info = ours.from_pretrained(saved_v10, output_loading_info=True)
    assert info == {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": []}
    inputs, labels = t5_inputs()
    if ours is TFT5Model:
        inputs = dict(inputs, decoder_input_ids=np.where(labels == -100, 0, labels))
    theirs_out = torch_outputs(pt, inputs, output_hidden_states=True)
    ours_out = model(inputs, output_hidden_states=True)
    for name in theirs_out:
        assert max_abs_diff(ours_out[name], theirs_out[name]) <= TOLERANCE, name


def test_xla_compiled_forward_equals_eager(saved_v10):
    model = TFT5ForConditionalGeneration.from_pretrained(saved_v10)
    inputs, labels = t5_inputs()
    inputs = {k: tf.constant(v, tf.int32) for k, v in dict(inputs, labels=labels).items()}
    eager = model(inputs)
    compiled = tf.function(lambda x: model(x), jit_compile=True)(inputs)
    assert max_abs_diff(compiled["logits"], eager.logits) <= 1e-5
    assert abs(float(compiled["loss"]) - float(eager.loss)) <= 1e-5


def test_auto_classes_pick_t5(saved_v10):
    assert type(tfformers.TFAutoModelForSeq2SeqLM.from_pretrained(saved_v10)) is TFT5ForConditionalGeneration
    assert type(tfformers.TFAutoModel.from_pretrained(saved_v10)) is TFT5Model


# ------------------------------------------------------------------------------------------ bad input


def test_missing_decoder_start_token_is_a_config_error():
    model = tfformers.TFAutoModelForSeq2SeqLM.from_config(t5_config("relu", decoder_start_token_id=None))
    inputs, labels = t5_inputs()
    with pytest.raises(ConfigError, match="decoder_start_token_id"):
        model(dict(inputs, labels=labels))


def test_missing_decoder_inputs_and_bad_decoder_ids_are_input_errors():
    model = tfformers.TFAutoModelForSeq2SeqLM.from_config(t5_config("relu"))
    inputs, _ = t5_inputs()
    with pytest.raises(InputError, match="decoder_input_ids"):
        model(inputs)
    with pytest.raises(InputError, match="decoder_input_ids"):
        model(dict(inputs, decoder_input_ids=np.full((3, 4), 99)))


# ------------------------------------------------------------------------------------------- training


def test_fit_with_the_default_loss_lowers_the_loss():
    tf.keras.utils.set_random_seed(0)
    model = tfformers.TFAutoModelForSeq2SeqLM.from_config(t5_config("gated-gelu", dropout_rate=0.0))
    inputs, labels = t5_inputs()
    model.compile(optimizer=tf.keras.optimizers.Adam(3e-3), run_eagerly=True)  # tracing costs more than 5 steps
    history = model.fit(dict(inputs, labels=labels), epochs=5, batch_size=3, verbose=0).history
    assert history["loss"][-1] < 0.8 * history["loss"][0], history["loss"]


def test_resized_vocabulary_reaches_both_stacks_and_the_head():
    model = tfformers.TFAutoModelForSeq2SeqLM.from_config(t5_config("gated-gelu"))
    model.resize_token_embeddings(105)
    assert model.encoder.embed_tokens is model.shared and model.decoder.embed_tokens is model.shared
    inputs, labels = t5_inputs()
    assert model(dict(inputs, decoder_input_ids=np.full((3, 2), 104))).logits.shape == (3, 2, 105)
