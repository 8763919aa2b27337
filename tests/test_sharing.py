"""push_to_hub against the LocalHub (tests/hub_server.py): push -> load by name (tfformers and PyTorch
transformers), offline loading from the cache, clear errors, failed pushes, consecutive pushes."""

import json
import os
import socket
import subprocess
import sys
import textwrap
import uuid
from concurrent.futures import Future
from types import SimpleNamespace

import keras
import numpy as np
import pytest
from architectures import ARCHITECTURES, config_for
from conftest import HUB_USER
from huggingface_hub import ModelCard

import tfformers
from tfformers import sharing
from tfformers.errors import CheckpointError, HubError
from tfformers.tokenization.auto import with_tf_tensors

BERT = ARCHITECTURES[0]
WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "model", "is", "good", "bad", "hub", "push",
         "keras", "movie", "great", "not"]
TEXTS = ["the movie is great", "a bad hub push", "keras model is not good at all"]


def tiny_tokenizer():
    from transformers import BertTokenizer

    return with_tf_tensors(BertTokenizer(vocab={w: i for i, w in enumerate(WORDS)}))


def tiny_classifier(seed=0):
    keras.utils.set_random_seed(seed)
    config = config_for(BERT, "BertForSequenceClassification", hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)
    return tfformers.TFAutoModelForSequenceClassification.from_config(config)


def _weights(model):
    return {key: param.to_numpy() for key, param in model.checkpoint_parameters().items()}


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pushed(hub):
    """A tiny classifier and its tokenizer pushed once, with the logits they give on TEXTS."""
    model, tokenizer = tiny_classifier(), tiny_tokenizer()
    repo_id = f"{HUB_USER}/shared-{uuid.uuid4().hex[:8]}"
    info = model.push_to_hub(repo_id, tokenizer=tokenizer, commit_message="first push", license="apache-2.0")
    inputs = dict(tokenizer(TEXTS, padding=True, return_tensors="np"))
    return SimpleNamespace(repo_id=repo_id, info=info, model=model, tokenizer=tokenizer, inputs=inputs,
                           logits=model(inputs).logits.numpy())


@pytest.fixture
def changed_bias(pushed):
    """Adds 1 to the shared model's classifier bias for the test, then restores it."""
    bias = pushed.model.classifier.bias
    original = bias.numpy().copy()
    bias.assign(original + 1.0)
    yield original + 1.0
    bias.assign(original)


# ------------------------------------------------------------------------------------------- round trip
def test_push_then_load_by_name_gives_the_identical_model(pushed, hub):
    files = hub.files(pushed.repo_id)
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "README.md"} <= set(files)
    history = hub.commits(pushed.repo_id)
    assert len(history) == 2, "one commit for the whole folder (after the repo's initial commit)"
    assert history[0].sha == pushed.info.oid and history[0].title == "first push"
    assert set(history[0].files) - set(history[1].files) == set(files) - {".gitattributes"}
    assert json.loads(files["config.json"])["architectures"] == ["BertForSequenceClassification"]

    loaded = tfformers.TFAutoModelForSequenceClassification.from_pretrained(pushed.repo_id)
    tokenizer = tfformers.AutoTokenizer.from_pretrained(pushed.repo_id)
    assert type(loaded) is type(pushed.model)
    ours, theirs = _weights(pushed.model), _weights(loaded)
    assert ours.keys() == theirs.keys()
    for key in ours:
        np.testing.assert_array_equal(theirs[key], ours[key], err_msg=key)
    assert tokenizer(TEXTS)["input_ids"] == pushed.tokenizer(TEXTS)["input_ids"]
    logits = loaded(tokenizer(TEXTS, padding=True, return_tensors="tf")).logits.numpy()
    np.testing.assert_allclose(logits, pushed.logits, rtol=0, atol=1e-6)
    print(f"\npush -> load round trip via {hub.url}/{pushed.repo_id} (commit {pushed.info.oid[:8]}):")
    show = lambda a: np.array2string(a, precision=6, separator=", ").replace("\n", "")  # noqa: E731
    print("  pushed model logits:", show(pushed.logits))
    print("  loaded model logits:", show(logits))
    print("  max |diff| =", float(np.abs(logits - pushed.logits).max()))


def test_pytorch_transformers_loads_the_pushed_repo_by_name(pushed):
    import torch
    import transformers

    model = transformers.AutoModelForSequenceClassification.from_pretrained(pushed.repo_id).eval()
    assert type(model).__name__ == "BertForSequenceClassification"
    tokenizer = transformers.AutoTokenizer.from_pretrained(pushed.repo_id)
    encoded = tokenizer(TEXTS, padding=True, return_tensors="pt")
    assert encoded["input_ids"].tolist() == pushed.inputs["input_ids"].tolist()
    with torch.no_grad():
        logits = model(**encoded).logits.numpy()
    difference = float(np.abs(logits - pushed.logits).max())
    print(f"\nPyTorch transformers from {pushed.repo_id}: max |logits diff| = {difference:.2e}")
    assert difference < 1e-4


_OFFLINE_CHILD = textwrap.dedent("""
    import json, sys
    import tfformers
    from tfformers.hub import is_offline
    repo, texts = sys.argv[1], json.loads(sys.argv[2])
    tokenizer = tfformers.AutoTokenizer.from_pretrained(repo)
    model = tfformers.TFAutoModelForSequenceClassification.from_pretrained(repo)
    logits = model(tokenizer(texts, padding=True, return_tensors="tf")).logits.numpy()
    print(json.dumps({"offline": is_offline(), "logits": logits.tolist()}))
""")


def test_offline_fresh_process_loads_from_the_cache(pushed, hub):
    # The round-trip test downloaded the repo into HF_HOME; make sure here too (it may run alone).
    tfformers.TFAutoModelForSequenceClassification.from_pretrained(pushed.repo_id)
    tfformers.AutoTokenizer.from_pretrained(pushed.repo_id)
    hub.clear_requests()
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_ENDPOINT=f"http://127.0.0.1:{_closed_port()}")
    env.pop("HF_TOKEN", None)
    proc = subprocess.run([sys.executable, "-c", _OFFLINE_CHILD, pushed.repo_id, json.dumps(TEXTS)], env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["offline"] is True
    np.testing.assert_allclose(np.array(out["logits"]), pushed.logits, rtol=0, atol=1e-6)
    assert hub.requests == [], "nothing reached the Hub"


# ----------------------------------------------------------------------------------------------- errors
def test_missing_repo_revision_and_file_give_clear_errors(pushed, hub, hub_repo_id):
    auto = tfformers.TFAutoModelForSequenceClassification
    with pytest.raises(HubError, match="no repository 'tfformers-tester/no-such-model' was found"):
        auto.from_pretrained("tfformers-tester/no-such-model")
    with pytest.raises(HubError, match="Revision 'no-such-branch' was not found") as error:
        auto.from_pretrained(pushed.repo_id, revision="no-such-branch")
    assert pushed.repo_id in str(error.value)
    config = json.dumps(pushed.model.config.to_dict()).encode()
    hub.create_repo_with_files(hub_repo_id, {"config.json": config})
    with pytest.raises(CheckpointError, match="No weights found") as error:
        auto.from_pretrained(hub_repo_id)
    assert hub_repo_id in str(error.value) and "model.safetensors" in str(error.value)
    with pytest.raises(HubError, match="'special.json' in") as error:
        tfformers.hub.resolve_file(pushed.repo_id, "special.json")
    assert "does not exist" in str(error.value)
    with pytest.raises(CheckpointError, match="no training checkpoint") as error:
        pushed.model.load_repo_checkpoint(pushed.repo_id)
    assert "checkpoint/trainer_state.json" in str(error.value) and "checkpoint=True" in str(error.value)


def test_push_without_a_valid_token_is_refused_and_changes_nothing(pushed, hub, monkeypatch):
    before = hub.files(pushed.repo_id)
    with pytest.raises(HubError, match="not authorized") as error:
        pushed.model.push_to_hub(pushed.repo_id, token="hf_not_a_token")
    assert pushed.repo_id in str(error.value) and "token" in str(error.value)
    with pytest.raises(HubError, match="not authorized"):
        pushed.model.push_to_hub("new-model-without-namespace", token="hf_not_a_token")
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(HubError, match="not authorized"):
        pushed.model.push_to_hub(pushed.repo_id)
    assert hub.files(pushed.repo_id) == before
    assert hub.commits(pushed.repo_id)[0].sha == pushed.info.oid


# ------------------------------------------------------------------------------------ failed, repeated
@pytest.mark.parametrize("failure", ["fail_next_commit", "drop_next_commit"])
def test_failed_push_leaves_the_previous_revision_loadable_and_unchanged(pushed, hub, hub_repo_id, tmp_path,
                                                                        changed_bias, failure):
    pushed.model.classifier.bias.assign(changed_bias - 1.0)  # v1: the original weights
    first = pushed.model.push_to_hub(hub_repo_id)
    before = hub.files(hub_repo_id)
    pushed.model.classifier.bias.assign(changed_bias)  # v2
    setattr(hub, failure, True)
    with pytest.raises(HubError, match="HTTP 500|connection") as error:
        pushed.model.push_to_hub(hub_repo_id)
    assert getattr(hub, failure) is False, "the injected failure happened"
    assert hub_repo_id in str(error.value)
    assert hub.commits(hub_repo_id)[0].sha == first.oid
    assert hub.files(hub_repo_id) == before
    loaded = tfformers.TFAutoModelForSequenceClassification.from_pretrained(hub_repo_id, cache_dir=tmp_path)
    np.testing.assert_allclose(loaded(pushed.inputs).logits.numpy(), pushed.logits, rtol=0, atol=1e-6)


def test_two_pushes_make_two_commits_with_the_second_content(pushed, hub, hub_repo_id, changed_bias):
    pushed.model.classifier.bias.assign(changed_bias - 1.0)
    first = pushed.model.push_to_hub(hub_repo_id, commit_message="first")
    pushed.model.classifier.bias.assign(changed_bias)
    second = pushed.model.push_to_hub(hub_repo_id, commit_message="second")
    history = hub.commits(hub_repo_id)
    assert [c.title for c in history] == ["second", "first", "initial commit"]
    assert [c.sha for c in history[:2]] == [second.oid, first.oid] and history[0].parents == (first.oid,)
    latest = tfformers.TFAutoModelForSequenceClassification.from_pretrained(hub_repo_id)
    np.testing.assert_array_equal(latest.classifier.bias.numpy(), changed_bias)
    earlier = tfformers.TFAutoModelForSequenceClassification.from_pretrained(hub_repo_id, revision=first.oid)
    np.testing.assert_array_equal(earlier.classifier.bias.numpy(), changed_bias - 1.0)


# ------------------------------------------------------------------------------- options and folders
def test_push_without_namespace_as_future_and_as_pull_request(pushed, hub, changed_bias):
    name = f"my-new-model-{uuid.uuid4().hex[:6]}"  # the blog's model.push_to_hub("my-new-model")
    pushed.model.classifier.bias.assign(changed_bias - 1.0)
    future = pushed.model.push_to_hub(name, run_as_future=True)
    assert isinstance(future, Future)
    info = future.result(timeout=60)
    repo_id = f"{HUB_USER}/{name}"
    assert hub.branches(repo_id)["main"] == info.oid
    assert "model.safetensors" in hub.files(repo_id)
    # unchanged content makes no commit (huggingface_hub skips empty commits): push changed weights
    pushed.model.classifier.bias.assign(changed_bias)
    pr = pushed.model.push_to_hub(repo_id, create_pr=True, commit_message="proposal")
    assert pr.pr_revision == "refs/pr/1" and hub.pull_requests(repo_id) == {1: pr.oid}
    assert hub.branches(repo_id)["main"] == info.oid
    branch = pushed.model.push_to_hub(repo_id, revision="dev")
    assert hub.branches(repo_id)["dev"] == branch.oid and hub.branches(repo_id)["main"] == info.oid


def test_push_folder_with_card_adds_a_card_only_where_there_is_none(pushed, hub, hub_repo_id, tmp_path):
    folder = tmp_path / "saved"
    pushed.model.save_pretrained(folder, tokenizer=pushed.tokenizer)
    listing = sorted(os.listdir(folder))
    info = sharing.push_folder_with_card(folder, hub_repo_id, license="mit")
    assert sorted(os.listdir(folder)) == listing, "the user's folder is not modified"
    files = hub.files(hub_repo_id)
    assert files["model.safetensors"] == (folder / "model.safetensors").read_bytes()
    card = ModelCard(files["README.md"].decode())
    assert card.data.library_name == "tfformers" and card.data.license == "mit"
    assert card.data.pipeline_tag == "text-classification"
    assert f'TFAutoModelForSequenceClassification.from_pretrained("{hub_repo_id}")' in card.text
    assert info.oid == hub.branches(hub_repo_id)["main"]

    (folder / "README.md").write_text("# My own card\n")
    sharing.push_folder_with_card(folder, hub_repo_id)
    assert hub.files(hub_repo_id)["README.md"] == b"# My own card\n"
    (folder / "README.md").unlink()
    (folder / "notes.txt").write_text("something new to commit\n")
    sharing.push_folder_with_card(folder, hub_repo_id, commit_message="no card in the folder")
    assert hub.commits(hub_repo_id)[0].title == "no card in the folder"
    assert hub.files(hub_repo_id)["README.md"] == b"# My own card\n", "a person's card on the Hub is kept"


# ----------------------------------------------------------------------- the card check must reach the Hub
PERSONS_CARD = b"# Written by a person\n\nNot to be replaced by a generated card.\n"


@pytest.mark.parametrize("failure", [503, "drop", "refused"])
def test_a_card_check_that_cannot_reach_the_hub_stops_the_push(pushed, hub, hub_repo_id, monkeypatch, failure):
    hub.create_repo_with_files(hub_repo_id, {"README.md": PERSONS_CARD})
    before = hub.commits(hub_repo_id)
    if failure == "refused":  # file requests go to a closed port; the commit API would still answer
        from huggingface_hub import constants

        template = constants.HUGGINGFACE_CO_URL_TEMPLATE.replace(hub.url, f"http://127.0.0.1:{_closed_port()}")
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
    else:
        hub.fail_next_file_request = failure
    with pytest.raises(HubError, match="Could not check whether") as error:
        pushed.model.push_to_hub(hub_repo_id)
    assert hub.fail_next_file_request is None, "the injected failure happened"
    assert hub_repo_id in str(error.value) and "README.md" in str(error.value)
    assert "Nothing was pushed" in str(error.value) and "model_card=False" in str(error.value)
    assert hub.commits(hub_repo_id) == before
    assert hub.files(hub_repo_id)["README.md"] == PERSONS_CARD


def test_a_repo_without_a_card_gets_the_generated_one(pushed, hub, hub_repo_id):
    hub.create_repo_with_files(hub_repo_id, {"notes.txt": b"no card here\n"})  # the Hub answers 404 for README.md
    pushed.model.push_to_hub(hub_repo_id)
    card = hub.files(hub_repo_id)["README.md"].decode()
    assert tfformers.modelcard.is_generated_card(card)
    assert ModelCard(card).data.library_name == "tfformers"
    assert any(r.method == "HEAD" and r.path.endswith("/README.md") and r.status == 404 for r in hub.requests)
