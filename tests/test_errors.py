"""Bad input gets a clear exception naming the file, tensor or value; nothing is lost on a failed save."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from architectures import ARCHITECTURES, config_for

import tfformers
from tfformers import checkpoint
from tfformers.errors import CheckpointError, ConfigError, HubError, InputError

BERT = ARCHITECTURES[0]


@pytest.fixture
def saved(tmp_path):
    """A tiny BERT classifier saved by tfformers, and the model."""
    model = tfformers.TFAutoModelForSequenceClassification.from_config(
        config_for(BERT, "BertForSequenceClassification")
    )
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    return folder, model


def test_pickle_only_repository_is_refused(tmp_path):
    folder = tmp_path / "pickle"
    folder.mkdir()
    config_for(BERT, "BertModel").save_pretrained(folder)
    (folder / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(CheckpointError, match=r"pytorch_model\.bin.*(pickle|arbitrary code)"):
        tfformers.TFAutoModel.from_pretrained(folder)


@pytest.mark.parametrize("damage", ["truncate", "garbage_header"])
def test_corrupt_safetensors_names_the_file(saved, damage):
    folder, _ = saved
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\xff" * 64 + data[64:])
    with pytest.raises(CheckpointError, match="model.safetensors"):
        tfformers.TFAutoModelForSequenceClassification.from_pretrained(folder)


def test_missing_config_names_config_json(saved):
    folder, _ = saved
    (folder / "config.json").unlink()
    with pytest.raises(HubError, match="config.json"):
        tfformers.TFAutoModel.from_pretrained(folder)


def test_missing_folder(tmp_path):
    with pytest.raises(HubError, match="no such directory"):
        tfformers.TFAutoModel.from_pretrained(str(tmp_path / "nowhere"))


def test_unknown_model_type(saved):
    folder, _ = saved
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "gpt_neo_x_unknown"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="gpt_neo_x_unknown"):
        tfformers.TFAutoModel.from_pretrained(folder)


def test_model_type_tfformers_does_not_support(saved):
    folder, _ = saved
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "ernie"  # BERT's fields, so the config is valid; the architecture is not ours
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="'ernie' is not supported"):
        tfformers.TFAutoModel.from_pretrained(folder)


def test_config_that_fails_transformers_validation(saved):
    folder, _ = saved
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "t5"  # T5's config class refuses BERT's classifier_dropout=None
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="Cannot build a configuration from .*config.json"):
        tfformers.TFAutoModel.from_pretrained(folder)


def test_shape_conflict_names_the_tensor(saved):
    folder, _ = saved
    config = json.loads((folder / "config.json").read_text())
    config["intermediate_size"] = 40
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"intermediate\.dense\.weight.*\[37, 32\].*\[40, 32\]"):
        tfformers.TFAutoModel.from_pretrained(folder)


def test_num_labels_mismatch_and_ignore_mismatched_sizes(saved):
    folder, model = saved
    with pytest.raises(CheckpointError, match="classifier.weight.*ignore_mismatched_sizes"):
        tfformers.TFAutoModelForSequenceClassification.from_pretrained(folder, num_labels=5)
    resized, info = tfformers.TFAutoModelForSequenceClassification.from_pretrained(
        folder, num_labels=5, ignore_mismatched_sizes=True, output_loading_info=True
    )
    assert sorted(key for key, _, _ in info["mismatched_keys"]) == ["classifier.bias", "classifier.weight"]
    assert resized.classifier.kernel.shape == (32, 5)


def test_unknown_from_pretrained_argument(saved):
    folder, _ = saved
    with pytest.raises(TypeError, match="num_lables"):
        tfformers.TFAutoModel.from_pretrained(folder, num_lables=3)


def test_missing_shard_names_the_shard(tmp_path, saved):
    _, model = saved
    folder = tmp_path / "sharded"
    model.save_pretrained(folder, max_shard_size="20KB")
    index = json.loads((folder / checkpoint.SAFE_WEIGHTS_INDEX_NAME).read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 2 and not (folder / "model.safetensors").exists()
    reloaded = tfformers.TFAutoModelForSequenceClassification.from_pretrained(folder)
    for ours, theirs in zip(model.weights, reloaded.weights):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    (folder / shards[1]).unlink()
    with pytest.raises(CheckpointError, match=shards[1]):
        tfformers.TFAutoModelForSequenceClassification.from_pretrained(folder)


def test_token_id_outside_vocabulary(saved):
    _, model = saved
    with pytest.raises(InputError, match=r"token id 99\b.*\[0, 99\)"):
        model({"input_ids": np.array([[1, 2, 99]])})
    with pytest.raises(InputError, match="-1"):
        model({"input_ids": np.array([[1, -1, 3]])})


def test_token_id_outside_vocabulary_in_a_graph(saved):
    import tensorflow as tf

    _, model = saved
    graph_call = tf.function(lambda ids: model({"input_ids": ids}).logits)
    with pytest.raises(tf.errors.InvalidArgumentError, match="vocab_size"):
        graph_call(tf.constant([[1, 2, 500]]))


def test_sequence_longer_than_position_table(saved):
    _, model = saved
    with pytest.raises(InputError, match="sequence length 65.*64 positions"):
        model({"input_ids": np.ones((1, 65), dtype=np.int32)})


def test_unexpected_input_names(saved):
    _, model = saved
    with pytest.raises(InputError, match="idx"):
        model({"input_ids": np.ones((1, 4), dtype=np.int32), "idx": np.zeros((1,))})


def test_interrupted_save_keeps_the_previous_model(saved, monkeypatch):
    folder, model = saved
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    (folder / "notes.txt").write_text("kept")

    def fail_midway(state, directory, max_shard_size):
        with open(os.path.join(directory, "model.safetensors"), "wb") as handle:
            handle.write(b"half")
        raise KeyboardInterrupt

    model.classifier.bias.assign(np.ones(3, dtype=np.float32))
    monkeypatch.setattr(checkpoint, "write_safetensors", fail_midway)
    with pytest.raises(KeyboardInterrupt):
        model.save_pretrained(folder)
    after = {p.name: p.read_bytes() for p in folder.iterdir() if p.name != "notes.txt"}
    assert after == before
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".model.")], "no staging left"
    monkeypatch.undo()

    model.save_pretrained(folder)
    assert (folder / "notes.txt").read_text() == "kept", "unrelated files survive a save"
    reloaded = tfformers.TFAutoModelForSequenceClassification.from_pretrained(folder)
    np.testing.assert_array_equal(reloaded.classifier.bias.numpy(), np.ones(3))


def test_resave_from_sharded_to_single_file_removes_stale_shards(saved, tmp_path):
    _, model = saved
    folder = tmp_path / "resave"
    model.save_pretrained(folder, max_shard_size="20KB")
    model.save_pretrained(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]


def test_other_keras_backend_is_refused():
    env = {**os.environ, "KERAS_BACKEND": "numpy"}
    result = subprocess.run(
        [sys.executable, "-c", "import tfformers"], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "BackendError" in result.stderr and "KERAS_BACKEND=tensorflow" in result.stderr


def test_decoder_configs_are_refused():
    with pytest.raises(ConfigError, match="is_decoder"):
        tfformers.TFAutoModel.from_config(config_for(BERT, "BertModel", is_decoder=True))


def test_input_the_architecture_lacks_by_keyword():
    distilbert = next(a for a in ARCHITECTURES if a.name == "distilbert")
    model = tfformers.TFAutoModel.from_config(config_for(distilbert, "DistilBertModel"))
    ids = np.ones((1, 4), dtype=np.int32)
    with pytest.raises(InputError, match="token_type_ids"):
        model(input_ids=ids, token_type_ids=ids)
