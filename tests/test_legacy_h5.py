"""transformers 4.x TensorFlow checkpoints (`tf_model.h5`, sharded or not) load, and convert to safetensors.

The fixtures under fixtures/legacy_h5/ were written by transformers 4.46.3's own TF classes (tf-keras 2.21,
see make_fixtures.py and versions.json), with the logits 4.46 computed for fixed inputs (`expected.npz`).
"""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from oracle import max_abs_diff, to_numpy, torch_outputs

import tfformers
from tfformers import cli
from tfformers.checkpoint import H5Reader, SafetensorsReader
from tfformers.checkpoint.h5 import pytorch_key
from tfformers.errors import CheckpointError, TFFormersError

FIXTURES = Path(__file__).parent / "fixtures" / "legacy_h5"
AUTO_CLASSES = {
    "bert-for-sequence-classification": "TFAutoModelForSequenceClassification",
    "bert-for-masked-lm": "TFAutoModelForMaskedLM",
    "bert-for-token-classification-sharded": "TFAutoModelForTokenClassification",
    "distilbert-for-masked-lm": "TFAutoModelForMaskedLM",
    "roberta-for-masked-lm": "TFAutoModelForMaskedLM",
    "gpt2-lm-head": "TFAutoModelForCausalLM",
}
SHARDED = "bert-for-token-classification-sharded"
TOLERANCE = 1e-5


def expected(name):
    """(inputs, logits of transformers 4.46 TF) of a fixture."""
    arrays = dict(np.load(FIXTURES / name / "expected.npz"))
    logits = arrays.pop("logits")
    return arrays, logits


def load(name, folder=None):
    """(model, loading info) of a fixture, or of `folder` holding a copy of it."""
    auto = getattr(tfformers, AUTO_CLASSES[name])
    return auto.from_pretrained(folder or FIXTURES / name, output_loading_info=True)


def assert_matches_4x(model, name):
    inputs, logits = expected(name)
    got = model(inputs, training=False).logits.numpy()
    assert max_abs_diff(got, logits) <= TOLERANCE


def assert_loads_in_pytorch(folder, name):
    """PyTorch transformers loads `folder`'s safetensors with nothing missing, and computes 4.x TF's logits."""
    import transformers

    with open(FIXTURES / name / "config.json") as handle:
        architecture = json.load(handle)["architectures"][0]
    model, info = getattr(transformers, architecture).from_pretrained(folder, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    inputs, logits = expected(name)
    got = to_numpy(torch_outputs(model.eval(), {k: v.astype(np.int64) for k, v in inputs.items()})["logits"])
    assert max_abs_diff(got, logits) <= TOLERANCE


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------------------------- loading


@pytest.mark.parametrize("name", AUTO_CLASSES)
def test_4x_checkpoint_loads_with_4x_outputs_and_nothing_missing(name):
    model, info = load(name)
    assert info == {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": []}
    assert_matches_4x(model, name)


def test_sharded_checkpoint_is_read_through_its_index():
    folder = FIXTURES / SHARDED
    shards = sorted(p.name for p in folder.glob("tf_model-*.h5"))
    assert len(shards) > 1 and not (folder / "tf_model.h5").exists()
    index = json.loads((folder / "tf_model.h5.index.json").read_text())
    assert sorted(set(index["weight_map"].values())) == shards
    reader = H5Reader([str(folder / shard) for shard in shards])
    try:
        assert {os.path.basename(reader.file_of(key)) for key in reader.keys()} == set(shards)
        assert "bert.encoder.layer.1.output.dense.weight" in reader.keys()
    finally:
        reader.close()


def test_sharded_checkpoint_loads_from_the_hub(hub, hub_repo_id):
    folder = FIXTURES / SHARDED
    hub.create_repo_with_files(hub_repo_id, {p.name: p.read_bytes() for p in folder.iterdir()})
    model, info = load(SHARDED, hub_repo_id)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert_matches_4x(model, SHARDED)


def test_names_map_as_transformers_4x_converts_them():
    cases = {
        "tf_bert_for_masked_lm/bert/encoder/layer_._1/attention/self/query/kernel:0":
            ("bert.encoder.layer.1.attention.self.query.weight", True),
        "tf_bert_for_masked_lm/bert/embeddings/word_embeddings/weight:0":
            ("bert.embeddings.word_embeddings.weight", False),
        "tf_bert_for_masked_lm/bert/embeddings/position_embeddings/embeddings:0":
            ("bert.embeddings.position_embeddings.weight", False),
        "tf_bert_for_masked_lm/bert/embeddings/LayerNorm/gamma:0": ("bert.embeddings.LayerNorm.weight", False),
        "tf_bert_for_masked_lm/mlm___cls/predictions/transform/LayerNorm/beta:0":
            ("cls.predictions.transform.LayerNorm.bias", False),
        "tf_bert_for_masked_lm/mlm___cls/predictions/bias:0": ("cls.predictions.bias", False),
        "tf_distil_bert_for_masked_lm/vocab_projector/bias:0": ("vocab_projector.bias", False),
        "tf_roberta_for_masked_lm/lm_head/bias:0": ("lm_head.bias", False),
        "tf_gpt2lm_head_model/transformer/h_._0/attn/c_attn/weight:0": ("transformer.h.0.attn.c_attn.weight", False),
    }
    for tf_name, (key, transpose) in cases.items():
        assert pytorch_key(tf_name, (4, 4)) == (key, transpose), tf_name


def test_gpt2_conv1d_biases_are_pytorch_shaped():
    """4.x TF GPT-2 stored Conv1D biases as [1, n] (4.x reshaped them when loading into PyTorch)."""
    reader = H5Reader([str(FIXTURES / "gpt2-lm-head" / "tf_model.h5")])
    try:
        assert reader.shape("transformer.h.0.attn.c_attn.bias") == (96,)
        assert reader.get("transformer.h.0.attn.c_attn.bias").shape == (96,)
        assert reader.shape("transformer.h.0.attn.c_attn.weight") == (32, 96)  # [in, out], as PyTorch's Conv1D
    finally:
        reader.close()


def test_duplicated_variables_are_read_once():
    """4.x DistilBERT's vocab_projector group lists the word and position embeddings again."""
    reader = H5Reader([str(FIXTURES / "distilbert-for-masked-lm" / "tf_model.h5")])
    try:
        keys = list(reader.keys())
        assert len(keys) == len(set(keys))
        assert "vocab_projector.bias" in keys and "distilbert.embeddings.word_embeddings.weight" in keys
        assert reader.shape("vocab_transform.weight") == (32, 32)
        assert reader.shape("distilbert.transformer.layer.0.ffn.lin1.weight") == (16, 32)  # [out, in]
    finally:
        reader.close()


def test_safetensors_are_preferred_over_tf_model_h5(tmp_path):
    name = "bert-for-sequence-classification"
    model, _ = load(name)
    model.save_pretrained(tmp_path)
    (tmp_path / "tf_model.h5").write_bytes(b"not read")
    again, info = load(name, tmp_path)
    assert not info["missing_keys"]
    assert_matches_4x(again, name)


# ------------------------------------------------------------------------------------------ re-saving


@pytest.mark.parametrize("name", AUTO_CLASSES)
def test_save_pretrained_writes_safetensors_that_load_back_and_in_pytorch(name, tmp_path):
    model, _ = load(name)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists() and not list(tmp_path.glob("*.h5"))
    again, info = load(name, tmp_path)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert_matches_4x(again, name)
    assert_loads_in_pytorch(tmp_path, name)


# ------------------------------------------------------------------------------------------- converting


@pytest.mark.parametrize(
    "name", ["bert-for-sequence-classification", SHARDED, "distilbert-for-masked-lm", "gpt2-lm-head"]
)
def test_convert_writes_a_safetensors_folder(capsys, tmp_path, name):
    old, new = FIXTURES / name, tmp_path / "new"
    code, out, err = run(capsys, "convert", old, new)
    assert code == 0, err
    assert f"Converted {old}" in out and str(new) in out
    names = sorted(p.name for p in new.iterdir())
    assert "model.safetensors" in names and "config.json" in names
    assert not [n for n in names if n.startswith("tf_model")]
    copied = [p.name for p in old.iterdir() if not p.name.startswith("tf_model")]
    for file in copied:  # config, tokenizer files: byte for byte
        assert (new / file).read_bytes() == (old / file).read_bytes(), file
    if name == "bert-for-sequence-classification":
        assert {"tokenizer.json", "vocab.txt", "tokenizer_config.json"} <= set(names)
    model, info = load(name, new)
    assert info == {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": []}
    assert_matches_4x(model, name)
    assert_loads_in_pytorch(new, name)


def test_convert_shards_above_max_shard_size(capsys, tmp_path):
    name = "bert-for-masked-lm"
    code, _, err = run(capsys, "convert", FIXTURES / name, tmp_path / "new", "--max-shard-size", "20KB")
    assert code == 0, err
    assert (tmp_path / "new" / "model.safetensors.index.json").exists()
    model, info = load(name, tmp_path / "new")
    assert not info["missing_keys"]
    assert_matches_4x(model, name)


def test_convert_keeps_every_tensor(tmp_path):
    from tfformers.checkpoint.h5 import convert_folder

    old = FIXTURES / "roberta-for-masked-lm"
    convert_folder(old, tmp_path / "new")
    h5 = H5Reader([str(old / "tf_model.h5")])
    try:
        converted = SafetensorsReader([str(tmp_path / "new" / "model.safetensors")])
        assert set(converted.keys()) == set(h5.keys())
        for key in h5.keys():
            assert np.array_equal(converted.get(key), h5.get(key)), key
    finally:
        h5.close()


def test_convert_refuses_a_non_empty_new_folder(capsys, tmp_path):
    new = tmp_path / "new"
    new.mkdir()
    (new / "keep.txt").write_text("mine")
    code, out, err = run(capsys, "convert", FIXTURES / "bert-for-masked-lm", new)
    assert code == 2 and not out
    assert err.count("\n") == 1 and err.startswith("tfformers convert: error: ")
    assert f"{new} already exists and is not an empty folder" in err
    assert sorted(p.name for p in new.iterdir()) == ["keep.txt"]


def test_convert_refuses_a_folder_without_weights(capsys, tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    shutil.copy(FIXTURES / "bert-for-masked-lm" / "config.json", old)
    code, out, err = run(capsys, "convert", old, tmp_path / "new")
    assert code == 2 and not out
    assert err.count("\n") == 1
    assert f"No weights found in {old}: expected" in err and "tf_model.h5" in err
    assert not (tmp_path / "new").exists()


# ----------------------------------------------------------------------------------------------- errors


def corrupt_copy(tmp_path, how):
    folder = tmp_path / "old"
    shutil.copytree(FIXTURES / "bert-for-masked-lm", folder)
    weights = folder / "tf_model.h5"
    data = weights.read_bytes()
    if how == "truncated":
        weights.write_bytes(data[: len(data) // 2])
    elif how == "garbage":
        weights.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 8)
    elif how == "lfs-pointer":
        weights.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 163112\n")
    return folder, weights


@pytest.mark.parametrize("how", ["truncated", "garbage"])
def test_corrupt_h5_is_a_checkpoint_error_naming_the_file(tmp_path, how):
    folder, weights = corrupt_copy(tmp_path, how)
    with pytest.raises(CheckpointError) as error:
        tfformers.TFAutoModelForMaskedLM.from_pretrained(folder)
    message = str(error.value)
    assert f"Cannot read the transformers 4.x TensorFlow weights file {weights}" in message
    assert "truncated or corrupt" in message and "\n" not in message


def test_git_lfs_pointer_in_place_of_tf_model_h5_is_named(capsys, tmp_path):
    folder, weights = corrupt_copy(tmp_path, "lfs-pointer")
    with pytest.raises(TFFormersError, match=f"{weights} is a Git LFS pointer"):  # the Hub layer's check
        tfformers.TFAutoModelForMaskedLM.from_pretrained(folder)
    code, _, err = run(capsys, "convert", folder, tmp_path / "new")
    assert code == 2 and err.count("\n") == 1
    assert f"{weights}: it is a Git LFS pointer" in err


def test_convert_of_a_truncated_h5_is_one_line_and_writes_nothing(capsys, tmp_path):
    folder, weights = corrupt_copy(tmp_path, "truncated")
    code, _, err = run(capsys, "convert", folder, tmp_path / "new")
    assert code == 2 and err.count("\n") == 1 and str(weights) in err
    assert not (tmp_path / "new").exists()


def test_h5_that_is_not_a_transformers_4x_save_is_refused(tmp_path):
    import h5py

    folder = tmp_path / "old"
    shutil.copytree(FIXTURES / "bert-for-masked-lm", folder)
    with h5py.File(folder / "tf_model.h5", "w") as handle:  # a Keras 3 .weights.h5 has no layer_names
        handle.create_dataset("vars/0", data=np.zeros(3, np.float32))
    with pytest.raises(CheckpointError, match="has no 'layer_names' attribute: it is not a weights file written"):
        tfformers.TFAutoModelForMaskedLM.from_pretrained(folder)


def test_missing_shard_is_named(tmp_path):
    folder = tmp_path / "old"
    shutil.copytree(FIXTURES / SHARDED, folder)
    (folder / "tf_model-00002-of-00004.h5").unlink()
    with pytest.raises(CheckpointError, match="Shard 'tf_model-00002-of-00004.h5' is listed in tf_model.h5.index"):
        tfformers.TFAutoModelForTokenClassification.from_pretrained(folder)
