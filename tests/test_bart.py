"""BART against the PyTorch transformers oracle on the same random weights (a tiny odd config): loading
consumes every tensor, every output matches (padded encoder and decoder rows), the loss with labels, the
sequence classifier's eos pooling, saving back for PyTorch, cached decoding, XLA, fit, and clear errors."""

import numpy as np
import pytest
import tensorflow as tf
from oracle import max_abs_diff, torch_model, torch_outputs

import tfformers
from tfformers.errors import ConfigError, InputError

TOLERANCE = 1e-4  # fp32, max |Δ| over every output element
PARITY = {}  # head -> {output: max |Δ|}, printed at the end of the module (pytest -s)
PAD, EOS = 1, 2


def bart_config(**overrides):
    from transformers import BartConfig

    settings = dict(
        vocab_size=99, d_model=24, encoder_layers=2, decoder_layers=3, encoder_attention_heads=3,
        decoder_attention_heads=3, encoder_ffn_dim=37, decoder_ffn_dim=41, max_position_embeddings=19,
        pad_token_id=PAD, bos_token_id=0, eos_token_id=EOS, decoder_start_token_id=EOS, forced_eos_token_id=EOS,
        num_labels=3, scale_embedding=True, attn_implementation="eager",
    )
    settings.update(overrides)
    return BartConfig(**settings)


def encoder_batch(lengths=(9, 7, 4), width=9, seed=0):
    """Rows of `lengths` tokens (bos ... eos) right-padded to `width`, with their attention mask."""
    rng = np.random.default_rng(seed)
    ids = np.full((len(lengths), width), PAD, np.int64)
    for row, length in enumerate(lengths):
        ids[row, :length] = [0, *rng.integers(3, 99, length - 2), EOS]
    return ids, (ids != PAD).astype(np.int64)


def labels_batch(lengths=(7, 5, 3), width=7, seed=1):
    """Target rows of `lengths` tokens, -100 after them (the loss skips those)."""
    rng = np.random.default_rng(seed)
    labels = np.full((len(lengths), width), -100, np.int64)
    for row, length in enumerate(lengths):
        labels[row, :length] = [*rng.integers(3, 99, length - 1), EOS]
    return labels


@pytest.fixture(scope="module", autouse=True)
def _report_parity():
    yield
    if PARITY:
        print("\nBART output parity, max |Δ| vs PyTorch transformers (fp32):")
        for head, deltas in PARITY.items():
            detail = ", ".join(f"{name} {delta:.1e}" for name, delta in deltas.items())
            print(f"  {head:36s} max {max(deltas.values()):.1e}  ({detail})")


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """head -> (PyTorch model, its folder, tfformers model loaded from it, loading info), built once."""
    import torch

    cache = {}

    def get(head):
        if head not in cache:
            pt = torch_model(head, bart_config())
            if hasattr(pt, "final_logits_bias"):  # zeros at init: random values show whether it is loaded
                with torch.no_grad():
                    pt.final_logits_bias.normal_()
            folder = tmp_path_factory.mktemp(head)
            pt.save_pretrained(folder)
            model, info = getattr(tfformers, "TF" + head).from_pretrained(folder, output_loading_info=True)
            cache[head] = (pt, folder, model, info)
        return cache[head]

    return get


def check_parity(head, ours, expected):
    assert set(ours) == set(expected)
    deltas = PARITY[head] = {name: max_abs_diff(ours[name], expected[name]) for name in expected}
    for name, delta in deltas.items():
        assert delta <= TOLERANCE, (name, delta)


def test_lm_loads_every_tensor_and_matches_torch(pair):
    pt, _, model, info = pair("BartForConditionalGeneration")
    assert info == {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": []}
    ids, mask = encoder_batch()
    decoder_ids = np.array([[EOS, 0, 14, 15, 16, 17], [EOS, 0, 21, 22, PAD, PAD], [EOS, 0, PAD, PAD, PAD, PAD]])
    inputs = dict(input_ids=ids, attention_mask=mask, decoder_input_ids=decoder_ids,
                  decoder_attention_mask=(decoder_ids != PAD).astype(np.int64))
    expected = torch_outputs(pt, inputs, output_hidden_states=True, output_attentions=True)
    ours = model(inputs, output_hidden_states=True, output_attentions=True)
    check_parity("BartForConditionalGeneration", ours, expected)


def test_loss_with_labels_equals_torch(pair):
    pt, _, model, _ = pair("BartForConditionalGeneration")
    ids, mask = encoder_batch()
    inputs = dict(input_ids=ids, attention_mask=mask, labels=labels_batch())
    expected = torch_outputs(pt, inputs)
    ours = model(inputs)
    assert max_abs_diff(ours.logits, expected["logits"]) <= TOLERANCE
    assert abs(float(ours.loss) - float(expected["loss"])) <= 1e-5


def test_base_model_matches_torch_from_ids_shifted_and_from_embeddings(pair):
    pt, _, model, info = pair("BartModel")
    assert info == {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": []}
    ids, mask = encoder_batch()
    inputs = dict(input_ids=ids, attention_mask=mask)  # the decoder reads input_ids shifted right
    expected = torch_outputs(pt, inputs, output_hidden_states=True, output_attentions=True)
    check_parity("BartModel", model(inputs, output_hidden_states=True, output_attentions=True), expected)

    rng = np.random.default_rng(2)  # embeddings in place of ids, for both stacks
    embedded = dict(attention_mask=mask, inputs_embeds=rng.normal(size=(3, 9, 24)).astype(np.float32),
                    decoder_inputs_embeds=rng.normal(size=(3, 4, 24)).astype(np.float32))
    expected = torch_outputs(pt, embedded)
    assert max_abs_diff(model(embedded).last_hidden_state, expected["last_hidden_state"]) <= TOLERANCE


def test_sequence_classification_matches_torch_with_loss(pair):
    pt, _, model, info = pair("BartForSequenceClassification")
    assert info == {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": []}
    ids, mask = encoder_batch()
    inputs = dict(input_ids=ids, attention_mask=mask, labels=np.array([2, 0, 1]))
    check_parity("BartForSequenceClassification", model(inputs), torch_outputs(pt, inputs))

    ids[1, 2] = EOS  # one row with two eos tokens, the others with one: PyTorch refuses it too
    with pytest.raises(InputError, match="same number of eos tokens"):
        model(dict(input_ids=ids, attention_mask=mask))


def test_save_pretrained_loads_in_torch_with_equal_outputs(pair, tmp_path):
    import transformers
    from safetensors import safe_open

    _, folder, model, _ = pair("BartForConditionalGeneration")
    model.save_pretrained(tmp_path)
    reloaded, info = transformers.BartForConditionalGeneration.from_pretrained(
        tmp_path, output_loading_info=True, attn_implementation="eager"
    )
    assert not any(info.values())
    ids, mask = encoder_batch(seed=3)
    inputs = dict(input_ids=ids, attention_mask=mask, labels=labels_batch(seed=4))
    expected = torch_outputs(reloaded.eval(), inputs)
    assert max_abs_diff(model(inputs).logits, expected["logits"]) <= TOLERANCE
    with safe_open(str(tmp_path / "model.safetensors"), "np") as saved, \
            safe_open(str(folder / "model.safetensors"), "np") as original:
        assert set(saved.keys()) == set(original.keys()) - set(model.tied_weights_keys)


def test_cached_decoding_equals_full_forward(pair):
    _, _, model, _ = pair("BartForConditionalGeneration")
    ids, mask = encoder_batch()
    targets = np.concatenate([np.full((3, 1), EOS), labels_batch(lengths=(6, 6, 6), width=6)], axis=1)
    full = model(dict(input_ids=ids, attention_mask=mask, decoder_input_ids=targets)).logits.numpy()

    encoder_outputs = model.get_encoder()(input_ids=tf.constant(ids), attention_mask=tf.constant(mask))
    cache = model.allocate_cache(batch_size=3, max_length=10)
    steps = []
    for t in range(targets.shape[1]):
        out = model(
            dict(attention_mask=mask, decoder_input_ids=targets[:, t:t + 1]),
            encoder_outputs=encoder_outputs, cache=cache, logits_to_keep=1,
        )
        steps.append(out.logits.numpy()[:, 0])
    assert max_abs_diff(np.stack(steps, axis=1), full) <= 1e-5
    assert int(cache.position) == targets.shape[1]


def test_xla_forward_equals_eager(pair):
    _, _, model, _ = pair("BartForConditionalGeneration")
    ids, mask = encoder_batch()
    inputs = {k: tf.constant(v) for k, v in dict(input_ids=ids, attention_mask=mask, labels=labels_batch()).items()}
    eager = model(inputs)
    compiled = tf.function(lambda x: model(x), jit_compile=True)(inputs)
    for name in eager:
        np.testing.assert_allclose(compiled[name].numpy(), eager[name].numpy(), atol=1e-5, rtol=1e-5)


def test_auto_classes_pick_bart(pair):
    _, folder, _, _ = pair("BartForConditionalGeneration")
    assert type(tfformers.TFAutoModelForSeq2SeqLM.from_pretrained(folder)) is tfformers.TFBartForConditionalGeneration
    assert type(tfformers.TFAutoModel.from_pretrained(folder)) is tfformers.TFBartModel
    classifier = tfformers.TFAutoModelForSequenceClassification.from_config(bart_config())
    assert type(classifier) is tfformers.TFBartForSequenceClassification


@pytest.mark.filterwarnings("ignore:.*unbuilt state")  # the model without a start token cannot even be built
def test_bad_input_gives_clear_errors(pair):
    _, _, model, _ = pair("BartForConditionalGeneration")
    ids, mask = encoder_batch()
    too_long = np.full((3, model.config.max_position_embeddings + 1), 5)
    with pytest.raises(InputError, match=r"decoder_input_ids \(the labels shifted right.*19 positions"):
        model(dict(input_ids=ids, attention_mask=mask, labels=too_long))

    too_many_slots = model.allocate_cache(batch_size=3, max_length=model.config.max_position_embeddings + 1)
    with pytest.raises(InputError, match="decoder's KV cache"):
        model(dict(input_ids=ids, decoder_input_ids=np.full((3, 1), EOS)), cache=too_many_slots)

    no_start = tfformers.TFBartForConditionalGeneration(bart_config(decoder_start_token_id=None))
    with pytest.raises(ConfigError, match="decoder_start_token_id"):
        no_start(dict(input_ids=ids, labels=labels_batch()))

    classifier = pair("BartForSequenceClassification")[2]
    with pytest.raises(InputError, match="needs input_ids"):
        classifier(dict(inputs_embeds=tf.zeros([1, 4, 24]), decoder_input_ids=np.array([[EOS, 5, 6, 7]])))


def test_resize_token_embeddings_resizes_final_logits_bias(tmp_path, pair):
    _, folder, _, _ = pair("BartForConditionalGeneration")
    model = tfformers.TFBartForConditionalGeneration.from_pretrained(folder)
    bias = model.final_logits_bias.numpy()
    model.resize_token_embeddings(101)
    np.testing.assert_array_equal(model.final_logits_bias.numpy()[:, :99], bias)
    np.testing.assert_array_equal(model.final_logits_bias.numpy()[:, 99:], 0)
    ids, mask = encoder_batch()
    assert model(dict(input_ids=ids, attention_mask=mask)).logits.shape == (3, 9, 101)


def test_fit_with_the_default_loss_lowers_it():
    model = tfformers.TFAutoModelForSeq2SeqLM.from_config(bart_config())
    ids, mask = encoder_batch(lengths=(9, 8, 7, 6), seed=5)
    data = dict(input_ids=ids, attention_mask=mask, labels=labels_batch(lengths=(7, 6, 5, 4), seed=6))
    model.compile(optimizer=tf.keras.optimizers.Adam(3e-3), jit_compile=False)  # XLA: test_xla_forward_equals_eager
    history = model.fit(data, batch_size=4, epochs=8, shuffle=False, verbose=0).history["loss"]
    assert history[-1] < history[0] - 0.1, history


def test_untied_embeddings_load_and_match_torch(tmp_path):
    """tie_word_embeddings=False: `shared`, both stacks' embed_tokens and lm_head are separate tensors."""
    pt = torch_model("BartForConditionalGeneration", bart_config(tie_word_embeddings=False))
    pt.save_pretrained(tmp_path)
    model, info = tfformers.TFBartForConditionalGeneration.from_pretrained(tmp_path, output_loading_info=True)
    assert info == {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": []}
    ids, mask = encoder_batch()
    inputs = dict(input_ids=ids, attention_mask=mask, labels=labels_batch())
    expected, ours = torch_outputs(pt, inputs), model(inputs)
    assert max_abs_diff(ours.logits, expected["logits"]) <= TOLERANCE
    assert abs(float(ours.loss) - float(expected["loss"])) <= 1e-5
    with pytest.raises(ConfigError, match="tied embeddings"):
        model.resize_token_embeddings(101)
