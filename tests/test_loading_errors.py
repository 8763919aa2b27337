"""Checkpoints and configs that cannot load are refused with an error naming the file, field or tensor: integer
tensors for float weights, sizes that are not positive, configs transformers' validation refuses, transformers
4.x TensorFlow weights, Git LFS pointers in place of files, and folders without a tokenizer."""

import json

import numpy as np
import pytest
from architectures import _bert_config, _gpt2_config, _llama_config
from assets import minilm_dir
from safetensors.numpy import load_file, save_file

import tfformers
from tfformers.errors import CheckpointError, ConfigError, HubError

LFS_POINTER = (
    "version https://git-lfs.github.com/spec/v1\n"
    "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
    "size 90868376\n"
)


@pytest.fixture(scope="module")
def saved_bert(tmp_path_factory):
    """A tiny BERT classifier saved by tfformers: its folder."""
    folder = tmp_path_factory.mktemp("bert")
    tfformers.TFAutoModelForSequenceClassification.from_config(_bert_config(num_labels=3)).save_pretrained(folder)
    return folder


def copy_of(folder, tmp_path):
    copy = tmp_path / folder.name
    copy.mkdir()
    for path in folder.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    return copy


def folder_with_config(tmp_path, config):
    config.save_pretrained(tmp_path)
    return tmp_path


# ---------------------------------------------------------------------------------------------- tensors


@pytest.mark.parametrize("dtype", ["int32", "bool"])
def test_integer_or_bool_tensor_for_a_float_weight(saved_bert, tmp_path, dtype):
    folder = copy_of(saved_bert, tmp_path)
    key = "bert.encoder.layer.1.attention.self.query.weight"
    tensors = load_file(folder / "model.safetensors")
    tensors[key] = (tensors[key] > 0).astype(dtype)
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match=rf"'{key}' in .*model\.safetensors holds {dtype} values.*float32"):
        tfformers.TFAutoModelForSequenceClassification.from_pretrained(folder)


def test_float16_tensor_still_loads(saved_bert, tmp_path):
    """Another float type is a precision choice, not a wrong tensor: it is cast."""
    folder = copy_of(saved_bert, tmp_path)
    tensors = {key: value.astype(np.float16) for key, value in load_file(folder / "model.safetensors").items()}
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    model = tfformers.TFAutoModelForSequenceClassification.from_pretrained(folder)
    np.testing.assert_array_equal(model.classifier.bias.numpy(), tensors["classifier.bias"].astype(np.float32))


# ---------------------------------------------------------------------------------------------- configs


@pytest.mark.parametrize(
    "make_config, field, value",
    [
        (_bert_config, "hidden_size", 0),
        (_bert_config, "num_attention_heads", -4),
        (_bert_config, "num_hidden_layers", 0),
        (_bert_config, "intermediate_size", -1),
        (_bert_config, "vocab_size", 0),
        (_bert_config, "max_position_embeddings", -64),
        (_llama_config, "num_key_value_heads", 0),
        (_llama_config, "head_dim", -24),
        (_gpt2_config, "n_embd", 0),  # GPT-2's own name for hidden_size is the one named
        (_gpt2_config, "n_layer", -2),
    ],
)
def test_non_positive_size_names_config_json_and_the_field(tmp_path, make_config, field, value):
    folder = folder_with_config(tmp_path, make_config())
    config = json.loads((folder / "config.json").read_text())
    config[field] = value
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=rf"config\.json: {field} is {value}\b.*positive integer"):
        tfformers.TFAutoModel.from_pretrained(folder)


def test_non_positive_size_given_as_an_argument(tmp_path):
    folder = folder_with_config(tmp_path, _bert_config())
    with pytest.raises(ConfigError, match=r"num_labels is 0 \(given as from_pretrained's num_labels=\)"):
        tfformers.TFAutoModelForSequenceClassification.from_pretrained(folder, num_labels=0)


def test_heads_must_divide_what_they_split(tmp_path):
    folder = folder_with_config(tmp_path / "bert", _bert_config(hidden_size=30))  # transformers accepts it
    with pytest.raises(ConfigError, match=r"config\.json: hidden_size \(30\) is not a multiple of .* heads \(4\)"):
        tfformers.TFAutoModel.from_pretrained(folder)
    folder = folder_with_config(tmp_path / "llama", _llama_config(num_attention_heads=4, num_key_value_heads=3))
    with pytest.raises(ConfigError, match=r"num_attention_heads \(4\) is not a multiple of num_key_value_heads \(3\)"):
        tfformers.TFAutoModel.from_pretrained(folder)


@pytest.mark.parametrize(
    "field, value, fragment",
    [
        ("hidden_size", 31, "The hidden size (31) is not a multiple of the number of attention heads (3)"),
        ("hidden_size", "48", "Field 'hidden_size' expected int, got str"),
    ],
)
def test_transformers_validation_becomes_one_line_config_error(tmp_path, field, value, fragment):
    """transformers' strict config classes refuse these (Llama's architecture check, field types)."""
    folder = folder_with_config(tmp_path, _llama_config())
    config = json.loads((folder / "config.json").read_text())
    del config["head_dim"]  # else the heads need not split hidden_size
    config[field] = value
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError) as error:
        tfformers.TFAutoModel.from_pretrained(folder)
    message = str(error.value)
    assert "\n" not in message and str(folder / "config.json") in message and fragment in message


# ---------------------------------------------------------------------------------------------- files


def test_unreadable_tf_model_h5_is_named_as_transformers_4_tensorflow_weights(tmp_path):
    """tf_model.h5 loads (tests/test_legacy_h5.py); one that h5py cannot open is refused naming the file."""
    folder = folder_with_config(tmp_path, _bert_config())
    (folder / "tf_model.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64))
    with pytest.raises(CheckpointError) as error:
        tfformers.TFAutoModel.from_pretrained(folder)
    message = str(error.value)
    assert f"Cannot read the transformers 4.x TensorFlow weights file {folder / 'tf_model.h5'}" in message
    assert "truncated or corrupt" in message and "\n" not in message
    assert "pickle" not in message


@pytest.mark.parametrize("pointer", ["model.safetensors", "config.json"])
def test_git_lfs_pointer_in_place_of_a_model_file(saved_bert, tmp_path, pointer):
    folder = copy_of(saved_bert, tmp_path)
    (folder / pointer).write_text(LFS_POINTER)
    with pytest.raises(HubError, match=rf"{pointer} is a Git LFS pointer, not the file: run `git lfs pull`"):
        tfformers.TFAutoModelForSequenceClassification.from_pretrained(folder)


def tokenizer_copy(tmp_path, *names):
    folder = tmp_path / "tokenizer"
    folder.mkdir()
    for name in names:
        (folder / name).write_bytes((minilm_dir() / name).read_bytes())
    return folder


def test_git_lfs_pointer_in_place_of_a_tokenizer_file(tmp_path):
    folder = tokenizer_copy(tmp_path, "tokenizer.json", "tokenizer_config.json", "vocab.txt")
    (folder / "tokenizer.json").write_text(LFS_POINTER)
    with pytest.raises(HubError, match=r"tokenizer\.json is a Git LFS pointer"):
        tfformers.AutoTokenizer.from_pretrained(folder)


def test_folder_without_tokenizer_files_is_refused(tmp_path):
    """transformers would build a tokenizer of its 5 special tokens from tokenizer_config.json alone."""
    folder = tokenizer_copy(tmp_path, "tokenizer_config.json", "special_tokens_map.json")
    with pytest.raises(HubError, match=rf"'{folder}' has no tokenizer files \(looked for tokenizer\.json, vocab"):
        tfformers.AutoTokenizer.from_pretrained(folder)
    (folder / "vocab.txt").write_bytes((minilm_dir() / "vocab.txt").read_bytes())
    assert tfformers.AutoTokenizer.from_pretrained(folder).vocab_size == 30522
