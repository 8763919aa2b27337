"""GGUF checkpoints: weights, config and tokenizer against transformers' own GGUF loading (the torch oracle).

The real file is SmolLM2-135M-Instruct in Q4_1 (llama architecture, tied embeddings). Tiny files written
here with `gguf.GGUFWriter` cover what it does not: qwen2 (q/k/v biases, no q/k permutation, an untied
head), a llama file transformers reads as Mistral, F16 and Q8_0 tensors, and the errors.
"""

import json
import os
import subprocess
import sys
import textwrap

import gguf
import numpy as np
import pytest
import transformers
from assets import smollm2_gguf
from oracle import WITHOUT_TORCH
from transformers.convert_slow_tokenizer import bytes_to_unicode

from tfformers import AutoTokenizer, CheckpointError
from tfformers.checkpoint.gguf import GGUFReader, gguf_config

CHAT = [{"role": "user", "content": "What is the capital of France?"}]
TEXTS = [
    "Hello world!",
    "  leading spaces,\ttabs and\nnew lines  ",
    "<|im_start|>user\nhi<|im_end|>",
    "Ünïcödé 日本語 🤗 1234567 don't I'll",
]


def config_fields(config):
    """The config as a comparable dict; `_name_or_path` is where it was loaded from, the caller's to set."""
    fields = json.loads(config.to_json_string(use_diff=False))
    fields.pop("_name_or_path")
    return fields


def oracle_tensors(path, config):
    """transformers' GGUF tensors ({PyTorch key: numpy}), mapped onto a model built on the meta device."""
    import torch
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    if config.model_type == "mistral":
        # transformers maps tensor names through gguf-py, which has no "mistral" architecture (its own
        # from_pretrained fails there); Mistral's module names are Llama's, so a Llama model maps them.
        fields = {key: value for key, value in config.to_dict().items() if key != "model_type"}
        config = transformers.LlamaConfig.from_dict(fields)
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(config)
    tensors = load_gguf_checkpoint(path, return_tensors=True, model_to_load=model)["tensors"]
    return {key: tensor.numpy() for key, tensor in tensors.items()}


def assert_same_tensors(reader, oracle):
    assert set(reader.keys()) == set(oracle)
    for key in reader.keys():
        ours = reader.get(key)
        assert ours.dtype == np.float32 and oracle[key].dtype == np.float32, key
        assert reader.shape(key) == ours.shape == oracle[key].shape, key
        np.testing.assert_array_equal(ours, oracle[key], err_msg=key)


def chat_ids(tokenizer):
    return tokenizer.apply_chat_template(CHAT, add_generation_prompt=True)["input_ids"]


# ====================================================================================== SmolLM2 (Q4_1)


@pytest.fixture(scope="module")
def smollm2():
    path = str(smollm2_gguf())
    return path, *os.path.split(path)


@pytest.fixture(scope="module")
def smollm2_oracle_config(smollm2):
    _, folder, name = smollm2
    return transformers.AutoConfig.from_pretrained(folder, gguf_file=name)


@pytest.fixture(scope="module")
def smollm2_tokenizers(smollm2):
    _, folder, name = smollm2
    ours = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    theirs = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name)
    return ours, theirs


@pytest.mark.usefixtures("torch_free_child")  # started here so that it runs alongside this slow oracle
def test_smollm2_tensors_equal_transformers(smollm2, smollm2_oracle_config):
    path = smollm2[0]
    assert_same_tensors(GGUFReader(path), oracle_tensors(path, smollm2_oracle_config))


def test_smollm2_shapes_are_pytorch_layout(smollm2):
    reader = GGUFReader(smollm2[0])
    assert len(reader.keys()) == 2 + 30 * 9  # embeddings, final norm, 9 tensors per block
    assert "lm_head.weight" not in reader.keys()  # tied to the embeddings
    assert reader.shape("model.embed_tokens.weight") == (49152, 576)
    assert reader.shape("model.layers.29.self_attn.q_proj.weight") == (576, 576)  # [out, in]
    assert reader.shape("model.layers.0.self_attn.k_proj.weight") == (3 * 64, 576)
    assert reader.shape("model.layers.0.mlp.gate_proj.weight") == (1536, 576)
    assert reader.shape("model.layers.0.mlp.down_proj.weight") == (576, 1536)
    assert reader.shape("model.norm.weight") == (576,)
    assert reader.file_of("model.norm.weight") == smollm2[0]


def test_smollm2_config_equals_transformers(smollm2, smollm2_oracle_config):
    config = gguf_config(smollm2[0])
    assert type(config) is transformers.LlamaConfig
    assert config_fields(config) == config_fields(smollm2_oracle_config)
    # the facts the model depends on, stated once more against the model card
    assert (config.num_hidden_layers, config.hidden_size, config.intermediate_size) == (30, 576, 1536)
    assert (config.num_attention_heads, config.num_key_value_heads, config.head_dim) == (9, 3, 64)
    assert config.rope_parameters["rope_theta"] == 100000.0
    assert config.rms_norm_eps == pytest.approx(1e-5)
    assert config.vocab_size == 49152 and config.tie_word_embeddings


def test_smollm2_tokenizer_equals_transformers(smollm2_tokenizers):
    ours, theirs = smollm2_tokenizers
    assert type(ours).__name__ == type(theirs).__name__ == "TokenizersBackend"
    for text in TEXTS:
        assert ours(text)["input_ids"] == theirs(text)["input_ids"], text
    assert ours.apply_chat_template(CHAT, add_generation_prompt=True, tokenize=False) == (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
    )
    assert chat_ids(ours) == chat_ids(theirs)
    assert ours.convert_tokens_to_ids(["<|endoftext|>", "<|im_start|>", "<|im_end|>"]) == [0, 1, 2]
    assert ours.special_tokens_map == theirs.special_tokens_map


def test_smollm2_tokenizer_returns_tf_tensors(smollm2_tokenizers):
    batch = smollm2_tokenizers[0](["a b", "c"], padding=True, return_tensors="tf")
    assert batch["input_ids"].shape == (2, 2) and batch["input_ids"].numpy()[1, 1] == 2  # <|im_end|> pads


# The library must not need torch: a child process in which torch cannot be found (as if not installed)
# loads the config, the tokenizer and a tensor, and reports what it got.
_WITHOUT_TORCH = WITHOUT_TORCH + textwrap.dedent(
    """
    import json, os, sys

    path = sys.argv[1]
    import tfformers
    from tfformers.checkpoint.gguf import GGUFReader, gguf_config

    tokenizer = tfformers.AutoTokenizer.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path))
    norm = GGUFReader(path).get("model.norm.weight")
    print(json.dumps({
        "config": gguf_config(path).to_dict()["num_key_value_heads"],
        "ids": [tokenizer(text)["input_ids"] for text in json.loads(sys.argv[2])],
        "chat": tokenizer.apply_chat_template(json.loads(sys.argv[3]), add_generation_prompt=True)["input_ids"],
        "norm": [float(norm.sum()), list(norm.shape)],
        "torch_imported": "torch" in sys.modules,
    }))
    """
)


@pytest.fixture(scope="module")
def torch_free_child(smollm2):
    """The `_WITHOUT_TORCH` child, running from the first test that asks for it (it takes ~10 s, mostly
    importing TensorFlow, and the machine has two cores)."""
    child = subprocess.Popen(
        [sys.executable, "-c", _WITHOUT_TORCH, smollm2[0], json.dumps(TEXTS), json.dumps(CHAT)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    yield child
    if child.poll() is None:
        child.kill()
        child.wait()


def test_smollm2_loads_without_torch(smollm2, smollm2_tokenizers, torch_free_child):
    path = smollm2[0]
    stdout, stderr = torch_free_child.communicate(timeout=300)
    assert torch_free_child.returncode == 0, stderr[-3000:]
    got = json.loads(stdout.strip().splitlines()[-1])
    assert not got["torch_imported"]
    theirs = smollm2_tokenizers[1]
    assert got["ids"] == [theirs(text)["input_ids"] for text in TEXTS]
    assert got["chat"] == chat_ids(theirs)
    assert got["config"] == 3
    norm = GGUFReader(path).get("model.norm.weight")
    assert got["norm"] == [float(norm.sum()), [576]]


# ====================================================================================== tiny written files

LAYERS, HIDDEN, HEADS, KV_HEADS, FFN = 2, 32, 4, 2, 64
HEAD_DIM = HIDDEN // HEADS
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
MERGES = ["Ġ t", "h e", "Ġt he", "Ġ a", "i n", "o n"]
CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def byte_level_vocab():
    """Specials, the 256 byte symbols, then one token per merge (as a byte-level BPE vocabulary is laid out)."""
    tokens = SPECIALS + sorted(bytes_to_unicode().values()) + [merge.replace(" ", "") for merge in MERGES]
    types = [gguf.TokenType.CONTROL] * len(SPECIALS) + [gguf.TokenType.NORMAL] * (len(tokens) - len(SPECIALS))
    return tokens, types


def llama_cpp_permute(weight, heads):
    """What llama.cpp's convert_hf_to_gguf.py does to q/k rows of llama models (LlamaModel.permute)."""
    return weight.reshape(heads, 2, weight.shape[0] // heads // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(
        weight.shape
    )


def tiny_tensors(vocab, *, biases, tied, seed=0):
    """{GGUF name: float32 array in PyTorch layout}, before any export permutation."""
    rng = np.random.default_rng(seed)
    shapes = {"token_embd.weight": (vocab, HIDDEN), "output_norm.weight": (HIDDEN,)}
    if not tied:
        shapes["output.weight"] = (vocab, HIDDEN)
    for layer in range(LAYERS):
        block = {
            "attn_norm.weight": (HIDDEN,),
            "attn_q.weight": (HEADS * HEAD_DIM, HIDDEN),
            "attn_k.weight": (KV_HEADS * HEAD_DIM, HIDDEN),
            "attn_v.weight": (KV_HEADS * HEAD_DIM, HIDDEN),
            "attn_output.weight": (HIDDEN, HEADS * HEAD_DIM),
            "ffn_norm.weight": (HIDDEN,),
            "ffn_gate.weight": (FFN, HIDDEN),
            "ffn_up.weight": (FFN, HIDDEN),
            "ffn_down.weight": (HIDDEN, FFN),
        }
        if biases:
            block |= {"attn_q.bias": (HEADS * HEAD_DIM,), "attn_k.bias": (KV_HEADS * HEAD_DIM,),
                      "attn_v.bias": (KV_HEADS * HEAD_DIM,)}
        shapes |= {f"blk.{layer}.{name}": shape for name, shape in block.items()}
    return {name: rng.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()}


def stored(name, weight, architecture):
    """(array, raw type) as written: q/k permuted for llama; the embeddings Q8_0, the FFN F16, others F32."""
    if architecture == "llama" and (".attn_q." in name or ".attn_k." in name):
        weight = llama_cpp_permute(weight, HEADS if ".attn_q." in name else KV_HEADS)
    if name == "token_embd.weight":
        return gguf.quants.quantize(weight, gguf.GGMLQuantizationType.Q8_0), gguf.GGMLQuantizationType.Q8_0
    if ".ffn_" in name and weight.ndim == 2:
        return weight.astype(np.float16), None
    return weight, None


def write_gguf(path, architecture, tensors, *, name="tiny", vocab=None, tokenizer_model="gpt2"):
    writer = gguf.GGUFWriter(str(path), architecture)
    writer.add_name(name)
    writer.add_block_count(LAYERS)
    writer.add_context_length(256)
    writer.add_embedding_length(HIDDEN)
    writer.add_feed_forward_length(FFN)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_rope_freq_base(10000.0)
    writer.add_rope_dimension_count(HEAD_DIM)
    writer.add_layer_norm_rms_eps(1e-6)
    if vocab is not None:
        tokens, types = vocab
        writer.add_tokenizer_model(tokenizer_model)
        writer.add_tokenizer_pre("qwen2")
        writer.add_token_list(tokens)
        writer.add_token_types(types)
        writer.add_token_merges(MERGES)
        writer.add_bos_token_id(1)
        writer.add_eos_token_id(2)
        writer.add_pad_token_id(0)
        writer.add_add_bos_token(False)
        writer.add_chat_template(CHATML)
    for tensor_name, (array, raw_type) in tensors.items():
        writer.add_tensor(tensor_name, array, raw_dtype=raw_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return str(path)


TINY_CASES = {
    # (architecture, general.name, biases, tied) -> the config class transformers builds
    "llama": (("llama", "tiny", False, True), transformers.LlamaConfig),
    "mistral": (("llama", "mistral", False, False), transformers.MistralConfig),
    "qwen2": (("qwen2", "tiny", True, False), transformers.Qwen2Config),
}


@pytest.fixture(scope="module", params=sorted(TINY_CASES))
def tiny(request, tmp_path_factory):
    (architecture, name, biases, tied), config_class = TINY_CASES[request.param]
    vocab = byte_level_vocab()
    original = tiny_tensors(len(vocab[0]), biases=biases, tied=tied)
    tensors = {key: stored(key, weight, architecture) for key, weight in original.items()}
    folder = tmp_path_factory.mktemp(request.param)
    path = write_gguf(folder / "tiny.gguf", architecture, tensors, name=name, vocab=vocab)
    oracle_config = transformers.AutoConfig.from_pretrained(str(folder), gguf_file="tiny.gguf")
    return {"path": path, "original": original, "config_class": config_class, "oracle_config": oracle_config,
            "tied": tied}


def test_tiny_config_equals_transformers(tiny):
    config = gguf_config(tiny["path"])
    assert type(config) is type(tiny["oracle_config"]) is tiny["config_class"]
    assert config_fields(config) == config_fields(tiny["oracle_config"])
    assert config.tie_word_embeddings == tiny["tied"]


def test_tiny_tensors_equal_transformers(tiny):
    assert_same_tensors(GGUFReader(tiny["path"]), oracle_tensors(tiny["path"], tiny["oracle_config"]))


def test_tiny_tensors_undo_the_export(tiny):
    """Unquantized tensors come back as the Hugging Face weights before llama.cpp's export: q/k rows
    un-permuted (llama), biases included (qwen2)."""
    reader = GGUFReader(tiny["path"])
    original = tiny["original"]
    for layer in range(LAYERS):
        for gguf_name, module in [("attn_q", "self_attn.q_proj"), ("attn_k", "self_attn.k_proj"),
                                  ("attn_v", "self_attn.v_proj")]:
            for kind in ("weight", "bias"):
                key = f"model.layers.{layer}.{module}.{kind}"
                if f"blk.{layer}.{gguf_name}.{kind}" in original:
                    np.testing.assert_array_equal(reader.get(key), original[f"blk.{layer}.{gguf_name}.{kind}"])
                else:
                    assert key not in reader.keys()
    assert ("lm_head.weight" in reader.keys()) == (not tiny["tied"])
    # F16 and Q8_0 are lossy: equal to the original up to their rounding
    np.testing.assert_allclose(reader.get("model.layers.0.mlp.up_proj.weight"), original["blk.0.ffn_up.weight"],
                               rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(reader.get("model.embed_tokens.weight"), original["token_embd.weight"], atol=0.03)


def test_tiny_tokenizer_equals_transformers(tiny):
    folder, name = os.path.split(tiny["path"])
    ours = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    theirs = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name)
    assert type(ours).__name__ == type(theirs).__name__  # Qwen2Tokenizer for qwen2
    for text in ["the theatre", " a tin on the", "<|im_start|>x<|im_end|>"]:
        assert ours(text)["input_ids"] == theirs(text)["input_ids"], text
    assert chat_ids(ours) == chat_ids(theirs)
    assert ours.special_tokens_map == theirs.special_tokens_map


# ====================================================================================== errors


def test_unsupported_architecture(tmp_path):
    tensors = {"token_embd.weight": (np.zeros((8, HIDDEN), np.float32), None)}
    path = write_gguf(tmp_path / "phi.gguf", "phi3", tensors)
    for load in (GGUFReader, gguf_config):
        with pytest.raises(CheckpointError, match=r"phi\.gguf.*'phi3'.*llama, qwen2"):
            load(path)
    with pytest.raises(CheckpointError, match="'phi3'"):
        AutoTokenizer.from_pretrained(str(tmp_path), gguf_file="phi.gguf")


def test_unsupported_quantization(tmp_path):
    # Q8_1 is a llama.cpp type the gguf package cannot dequantize
    block_values, block_bytes = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType.Q8_1]
    blocks = np.zeros((HIDDEN, HIDDEN // block_values * block_bytes), np.uint8)
    tensors = {
        "output_norm.weight": (np.ones(HIDDEN, np.float32), None),
        "blk.0.attn_q.weight": (blocks, gguf.GGMLQuantizationType.Q8_1),
    }
    path = write_gguf(tmp_path / "q81.gguf", "llama", tensors)
    with pytest.raises(CheckpointError, match=r"'blk\.0\.attn_q\.weight' of .*q81\.gguf is stored as Q8_1"):
        GGUFReader(path)


def test_tokenizer_errors(tmp_path):
    tensors = {"output_norm.weight": (np.ones(HIDDEN, np.float32), None)}
    write_gguf(tmp_path / "bare.gguf", "llama", tensors)
    with pytest.raises(CheckpointError, match=r"bare\.gguf has no vocabulary"):
        AutoTokenizer.from_pretrained(str(tmp_path), gguf_file="bare.gguf")
    write_gguf(tmp_path / "rwkv.gguf", "llama", tensors, vocab=byte_level_vocab(), tokenizer_model="rwkv")
    with pytest.raises(CheckpointError, match=r"tokenizer of .*rwkv\.gguf.*'rwkv'"):
        AutoTokenizer.from_pretrained(str(tmp_path), gguf_file="rwkv.gguf")


@pytest.mark.parametrize("content", [b'{"model_type": "llama"}', b"GGUF\x03\x00\x00\x00\xff"])
def test_not_a_gguf_file(tmp_path, content):
    path = tmp_path / "model.gguf"
    path.write_bytes(content)
    for load in (GGUFReader, gguf_config):
        with pytest.raises(CheckpointError, match=r"model\.gguf is not a readable GGUF file"):
            load(str(path))
