"""Keras' weight quantization (`model.quantize("int8")`) on tfformers models: the weights of every Dense,
GPT-2 Conv1D and Embedding really become int8 (a quarter of the bytes), the outputs stay close to float32
(tied LM heads read the quantized table), compiled generation decodes with the int8 weights, and what cannot
hold int8 weights (a PyTorch-layout checkpoint, calibrating modes) refuses with a clear error."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from architectures import _bert_config, _gpt2_config, _llama3_config
from test_bart import bart_config
from test_t5 import t5_config

import tfformers
from tfformers.errors import ConfigError
from tfformers.layers.core import Conv1D, Linear
from tfformers.layers.heads import tied_logits

# (model class, config): an encoder with a tied MLM head, a decoder with tied embeddings, GPT-2's Conv1D,
# encoder-decoders on shared embeddings (T5 v1.0: tied and rescaled; BART: tied with a logits bias)
MODELS = {
    "bert": (tfformers.TFBertForMaskedLM, _bert_config),
    "llama": (tfformers.TFLlamaForCausalLM, _llama3_config),
    "gpt2": (tfformers.TFGPT2LMHeadModel, _gpt2_config),
    "t5": (tfformers.TFT5ForConditionalGeneration, lambda: t5_config("relu")),
    "bart": (tfformers.TFBartForConditionalGeneration, bart_config),
}


def build(model_class, config, weights=None):
    """A built model with random weights (seed 0, whatever ran before), or with `weights` (another instance's
    get_weights())."""
    keras.utils.set_random_seed(0)
    model = model_class(config)
    model.build_with_dummy_inputs()
    if weights is not None:
        model.set_weights(weights)
    return model


def token_ids(vocab_size, shape=(2, 9), seed=0):
    return tf.constant(np.random.default_rng(seed).integers(3, vocab_size, shape), tf.int32)


def model_inputs(model):
    """Token ids for `model`, and the decoder's for an encoder-decoder."""
    ids = token_ids(model.config.vocab_size)
    return {"input_ids": ids, "decoder_input_ids": ids[:, :5]} if model.config.is_encoder_decoder else ids


def matrix_leaves(model):
    """The Dense, Conv1D and Embedding leaves of `model`, the layers quantized (other subclasses of them, such
    as BART's learned positions, are left in float by Keras)."""
    kinds = (keras.layers.Dense, Linear, Conv1D, keras.layers.Embedding)
    return [layer for layer in model._flatten_layers() if type(layer) in kinds]


def stored_matrix(layer):
    return layer._embeddings if isinstance(layer, keras.layers.Embedding) else layer._kernel


def relative_error(ours, reference):
    return float(np.abs(ours - reference).max() / np.abs(reference).max())


@pytest.fixture(scope="module")
def float_and_int8():
    """name -> (float32 model, the same weights quantized to int8), built once."""
    cache = {}

    def get(name):
        if name not in cache:
            model_class, make_config = MODELS[name]
            config = make_config()
            reference = build(model_class, config)
            quantized = build(model_class, config, reference.get_weights())
            quantized.quantize("int8")
            cache[name] = (reference, quantized)
        return cache[name]

    return get


def quantized_pair(config=None, lora_rank=None):
    """(tfformers Linear, Keras Dense): 24 -> 40 with the same random float weights, quantized to int8 with
    `config`, and LoRA adapters of `lora_rank` with the same random values."""
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=(24, 40)).astype(np.float32), rng.normal(size=40).astype(np.float32)]
    adapters = [rng.normal(size=(24, lora_rank)), rng.normal(size=(lora_rank, 40))] if lora_rank else []
    layers = []
    for layer_class in (Linear, keras.layers.Dense):
        layer = layer_class(40)
        layer.build((None, 24))
        layer.set_weights(weights)
        layer.quantize("int8", config=config)
        if lora_rank:
            layer.enable_lora(lora_rank)
            layer.lora_kernel_a.assign(adapters[0])
            layer.lora_kernel_b.assign(adapters[1])
        layers.append(layer)
    return layers


@pytest.mark.parametrize("config", [None, keras.quantizers.Int8QuantizationConfig(activation_quantizer=None)],
                         ids=["int8", "int8-weights-only"])
def test_linear_keeps_int8_rows_per_output_and_computes_what_keras_dense_does(config):
    """tfformers' Linear stores the int8 kernel [out, in] (Keras' Dense: [in, out]; the same integers), and
    its outputs and input gradients equal Keras' int8 Dense on one row (decoding's product) and on several,
    eagerly and compiled by XLA, within float32 rounding (1e-5 of the largest output)."""
    linear, dense = quantized_pair(config)
    assert linear._kernel.dtype == "int8" and linear._kernel.shape == (40, 24)
    np.testing.assert_array_equal(linear._kernel.numpy().T, dense._kernel.numpy())
    compiled = tf.function(linear, jit_compile=True)
    for shape in [(1, 24), (1, 1, 24), (5, 24), (2, 3, 24)]:
        inputs = tf.constant(np.random.default_rng(1).normal(size=shape), tf.float32)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(inputs)
            ours, theirs = linear(inputs), dense(inputs)
            losses = [tf.reduce_sum(outputs ** 2) for outputs in (ours, theirs)]
        scale = np.abs(theirs.numpy()).max()
        assert np.abs(ours.numpy() - theirs.numpy()).max() < 1e-5 * scale, shape
        assert np.abs(compiled(inputs).numpy() - theirs.numpy()).max() < 1e-5 * scale, shape
        gradients = [tape.gradient(loss, inputs).numpy() for loss in losses]
        assert np.abs(gradients[0] - gradients[1]).max() < 1e-5 * np.abs(gradients[1]).max(), shape


def test_linear_int8_with_lora_matches_keras_dense():
    """LoRA on int8 weights (Keras' QLoRA-style adapters): the same outputs as Keras' Dense, and the merged
    int8 kernel Keras saves is the same, transposed."""
    linear, dense = quantized_pair(lora_rank=2)
    inputs = tf.constant(np.random.default_rng(1).normal(size=(3, 24)), tf.float32)
    np.testing.assert_allclose(linear(inputs).numpy(), dense(inputs).numpy(), rtol=1e-5, atol=1e-4)
    assert linear.lora_kernel_a.shape == dense.lora_kernel_a.shape
    (ours, our_scale, _), (theirs, their_scale, _) = (
        layer._get_kernel_with_merged_lora() for layer in (linear, dense)
    )
    np.testing.assert_array_equal(np.asarray(ours).T, np.asarray(theirs))
    np.testing.assert_allclose(np.asarray(our_scale), np.asarray(their_scale), rtol=1e-6)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_int8_weights_are_int8_and_logits_stay_close(float_and_int8, name):
    """Every matrix is stored as int8 with a float scale per output channel (bytes: under 0.4x the float
    model's; norms, biases and BART's learned positions stay float), and the logits are within 3% of the
    float32 ones (max absolute error over the largest logit; 0.4-1.8% here, seed 0) without being equal to them."""
    reference, quantized = float_and_int8(name)
    leaves = matrix_leaves(quantized)
    assert leaves and all(stored_matrix(layer).dtype == "int8" for layer in leaves), [
        (layer.path, stored_matrix(layer).dtype) for layer in leaves
    ]
    float_bytes = sum(v.numpy().nbytes for v in reference.weights)
    int8_bytes = sum(v.numpy().nbytes for v in quantized.weights)
    assert int8_bytes < 0.4 * float_bytes, (int8_bytes, float_bytes)

    inputs = model_inputs(reference)
    error = relative_error(quantized(inputs).logits.numpy(), reference(inputs).logits.numpy())
    assert 1e-5 < error < 0.03, error


def test_int4_tied_head_reads_the_grouped_table(float_and_int8):
    """int4 (Keras' default: groups of 128 along the hidden size, zero points) on the tied decoder: the LM head
    projects onto the table the Embedding layer dequantizes (a wrong reading is off by orders of magnitude)."""
    reference, _ = float_and_int8("llama")
    quantized = build(type(reference), reference.config, reference.get_weights())
    quantized.quantize("int4")
    assert quantized.lm_head is None and quantized.get_input_embeddings().quantization_mode == "int4"
    ids = token_ids(reference.config.vocab_size)
    error = relative_error(quantized(ids).logits.numpy(), reference(ids).logits.numpy())
    assert 1e-3 < error < 0.25, error


def test_predict_serving_and_keras_weights_round_trip(float_and_int8, tmp_path):
    """`predict` and the `serving` signature (both traced over the float weights first) run the int8 model;
    Keras' `save_weights` keeps the int8 variables and a quantized twin loads them back exactly."""
    reference, quantized = float_and_int8("bert")
    ids = token_ids(reference.config.vocab_size)
    inputs = {"input_ids": ids.numpy()}
    served = {"input_ids": ids, "attention_mask": tf.ones_like(ids), "token_type_ids": tf.zeros_like(ids)}
    twin = build(type(reference), reference.config, reference.get_weights())
    float_logits = twin.predict(inputs, verbose=0).logits
    twin.serving(served)
    twin.quantize("int8")
    int8_logits = quantized(inputs).logits.numpy()
    np.testing.assert_allclose(twin.predict(inputs, verbose=0).logits, int8_logits, atol=1e-6)
    np.testing.assert_allclose(twin.serving(served)["logits"].numpy(), int8_logits, atol=1e-6)
    assert np.abs(float_logits - int8_logits).max() > 1e-6

    quantized.save_weights(tmp_path / "model.weights.h5")
    loaded = build(type(reference), reference.config)
    loaded.quantize("int8")
    loaded.load_weights(tmp_path / "model.weights.h5")
    np.testing.assert_array_equal(loaded(inputs).logits.numpy(), quantized(inputs).logits.numpy())


def test_compiled_generation_decodes_with_int8_weights():
    """Greedy generate() compiled by XLA, after a float32 call compiled the same program: its tokens are the
    argmax of the int8 model's eager forward at every step and its logits are that forward's (1e-4), while
    they are clearly not the float32 model's. Weights drawn wide (std 0.5) so the 8 tokens vary."""
    config = _llama3_config(initializer_range=0.5)
    reference = build(tfformers.TFLlamaForCausalLM, config)
    model = build(tfformers.TFLlamaForCausalLM, config, reference.get_weights())
    prompt = token_ids(config.vocab_size, shape=(1, 6), seed=1)
    options = dict(max_new_tokens=8, do_sample=False, output_logits=True, return_dict_in_generate=True)
    model.generate(prompt, **options)  # traced and compiled over the float weights
    model.quantize("int8")
    out = model.generate(prompt, **options)

    sequence = out.sequences.numpy()
    new_tokens = sequence[0, 6:]
    assert len(set(new_tokens.tolist())) >= 4, new_tokens  # not a constant run
    step_logits = np.stack([np.asarray(step) for step in out.logits], axis=1)  # [1, 8, vocab]
    eager = model(sequence[:, :-1]).logits.numpy()[:, 5:]  # the logits each new token was chosen from
    np.testing.assert_array_equal(eager.argmax(-1)[0], new_tokens)
    assert relative_error(step_logits, eager) < 1e-4
    assert relative_error(step_logits, reference(sequence[:, :-1]).logits.numpy()[:, 5:]) > 1e-2


def test_save_pretrained_refuses_quantized_weights(float_and_int8, tmp_path):
    """A PyTorch-layout checkpoint holds float weights: writing int8 integers there would be wrong weights."""
    _, quantized = float_and_int8("llama")
    with pytest.raises(ConfigError, match="save_pretrained.*quantize"):
        quantized.save_pretrained(tmp_path / "saved")
    assert not (tmp_path / "saved").exists()


def test_modes_that_calibrate_are_refused(float_and_int8):
    """GPTQ needs the model's block structure and calibration data: a clear error before anything changes;
    a mode Keras does not know is Keras' own error, naming the modes it has."""
    _, quantized = float_and_int8("gpt2")
    model = build(type(quantized), quantized.config)
    gptq = keras.quantizers.GPTQConfig(dataset=["a text"], tokenizer=lambda texts: texts)
    with pytest.raises(ConfigError, match="gptq.*int8"):
        model.quantize(config=gptq)
    with pytest.raises(ValueError, match="int8"):
        model.quantize("int2")
    assert all(stored_matrix(layer).dtype == "float32" for layer in matrix_leaves(model))


def test_a_compiled_decoding_loop_reads_the_int8_weights_each_step():
    """XLA hoists what depends on weights alone out of a loop: converted to float before a decoding loop, the
    int8 matrices would be read as float copies every step (4x the bytes). The loop's state must carry the
    int8 kernel [out, in] and int8 table [vocab, hidden], and no float copy of either."""
    linear, _ = quantized_pair()
    embedding = keras.layers.Embedding(56, 40)
    embedding.build()
    embedding.quantize("int8")

    @tf.function(jit_compile=True)
    def decode(hidden):  # [1, 24] -> [1, 56] after 3 steps of a Linear and a tied head
        def step(i, hidden):
            return i + 1, tf.nn.tanh(tied_logits(linear(hidden), embedding)[:, :24])

        return tf.while_loop(lambda i, _: i < 3, step, (tf.constant(0), hidden))[1]

    hidden = tf.ones([1, 24])
    hlo = decode.experimental_get_compiler_ir(hidden)(stage="optimized_hlo")
    loop_state = [line for line in hlo.splitlines() if "while" in line and "body" in line and "{" in line]
    assert loop_state, hlo[:2000]
    assert all("s8[40,24]" in line and "s8[56,40]" in line for line in loop_state), loop_state
    assert not any("f32[40,24]" in line or "f32[56,40]" in line for line in loop_state), loop_state
