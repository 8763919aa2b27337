"""Deployment end to end: `tfformers export` on a saved classifier folder, `tfformers serve`'s server on the
artifact, TF Serving REST clients against it: a load test (8 clients x 200 requests, every answer equal to
the direct model's) and bad requests, each a 4xx `{"error"}` while the server keeps serving.

The classifier is all-MiniLM-L6-v2 with BBC News' five topics as labels and a seeded new head (what is
checked is that serving answers exactly what the model does; the demo serves the fine-tuned one).
"""

import base64
import json
import os
import threading
import urllib.error
import urllib.request

import keras
import numpy as np
import pytest
from assets import BBC_CLASSES, bbc_titles, minilm_dir

import tfformers
from tfformers.cli import main as cli
from tfformers.serving import ModelServer

CLIENTS, REQUESTS_PER_CLIENT = 8, 200
MAX_LENGTH = 64


@pytest.fixture(scope="module")
def classifier_folder(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = tfformers.TFAutoModelForSequenceClassification.from_pretrained(
        minilm_dir(), id2label=dict(enumerate(BBC_CLASSES)), label2id={n: i for i, n in enumerate(BBC_CLASSES)}
    )
    folder = tmp_path_factory.mktemp("bbc-classifier")
    model.save_pretrained(folder, tokenizer=tfformers.AutoTokenizer.from_pretrained(minilm_dir()))
    return folder


@pytest.fixture(scope="module")
def served(classifier_folder, tmp_path_factory):
    """(server, base): the classifier exported with the CLI to BASE/bbc/1 and served from BASE."""
    base = tmp_path_factory.mktemp("serving")
    status = cli(["export", "--model", str(classifier_folder), "--output", str(base / "bbc"),
                  "--max-length", str(MAX_LENGTH), "-q"])
    assert status == 0
    assert os.path.isfile(base / "bbc" / "1" / "saved_model.pb")
    with ModelServer(base, port=0, max_string_bytes=4096) as server:
        yield server, base


def post(server, body, path="/v1/models/bbc:predict"):
    """(status, JSON answer) of a POST; `body` is sent as is when bytes, else as JSON."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(server.url + path, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def direct_answers(classifier_folder, texts):
    """Labels and probabilities of the Python path: transformers' tokenizer, then the Keras model."""
    model = tfformers.TFAutoModelForSequenceClassification.from_pretrained(classifier_folder)
    tokenizer = tfformers.AutoTokenizer.from_pretrained(classifier_folder)
    inputs = tokenizer(texts, truncation=True, max_length=MAX_LENGTH, padding=True, return_tensors="np")
    logits = model.predict(dict(inputs), verbose=0).logits
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return [BBC_CLASSES[i] for i in probabilities.argmax(-1)], probabilities


def test_load_8_clients_x_200_requests_all_answered_as_the_model_does(served, classifier_folder):
    server, _ = served
    titles = bbc_titles(40)
    labels, probabilities = direct_answers(classifier_folder, titles)
    failures, answers = [], {}

    def client(number):
        for request in range(REQUESTS_PER_CLIENT):
            index = (number * REQUESTS_PER_CLIENT + request) % len(titles)
            status, answer = post(server, {"instances": [titles[index]]})
            if status != 200:
                failures.append((status, answer))
            else:
                answers.setdefault(index, []).append(answer["predictions"][0])

    threads = [threading.Thread(target=client, args=(number,)) for number in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert sum(len(a) for a in answers.values()) == CLIENTS * REQUESTS_PER_CLIENT
    for index, given in answers.items():
        for prediction in given:
            assert prediction["label"] == labels[index]
            np.testing.assert_allclose(prediction["probabilities"], probabilities[index], atol=1e-5)
    batcher = server.batcher
    assert batcher.calls < batcher.requests  # concurrent requests were merged into batches


def test_columnar_request_b64_text_and_metadata(served, classifier_folder):
    server, _ = served
    texts = ["Shares fell sharply after the results.", "The striker scored twice."]
    status, answer = post(server, {"inputs": {"text": texts}})
    assert status == 200
    labels, _ = direct_answers(classifier_folder, texts)
    assert answer["outputs"]["label"] == labels
    encoded = {"b64": base64.b64encode(texts[0].encode()).decode()}
    status, answer = post(server, {"instances": [encoded]})
    assert status == 200 and answer["predictions"][0]["label"] == labels[0]
    with urllib.request.urlopen(server.url + "/v1/models/bbc/metadata", timeout=30) as response:
        signatures = json.load(response)["metadata"]["signature_def"]["signature_def"]
    assert set(signatures["serving_default"]["inputs"]) == {"text"}
    assert {"label", "score", "probabilities", "logits"} <= set(signatures["serving_default"]["outputs"])
    assert set(signatures["from_ids"]["inputs"]) == {"input_ids", "attention_mask", "token_type_ids"}


@pytest.mark.parametrize("body, status, words", [
    (b"{not json", 400, "JSON"),
    ({"instances": []}, 400, "empty"),
    ({"instances": [{"texts": "a"}]}, 400, "text"),
    ({"instances": [3.5]}, 400, "string"),
    ({"instances": ["x" * 5000]}, 400, "4096"),
    ({"signature_name": "nope", "instances": ["a"]}, 400, "nope"),
])
def test_bad_requests_get_a_4xx_error_and_the_server_keeps_serving(served, body, status, words):
    server, _ = served
    got, answer = post(server, body)
    assert got == status and set(answer) == {"error"} and words in answer["error"]
    assert post(server, {"instances": ["Still serving?"]})[0] == 200


def test_litert_export_from_the_command_line(classifier_folder, tmp_path):
    status = cli(["export", "--model", str(classifier_folder), "--output", str(tmp_path / "bbc"),
                  "--format", "litert", "--sequence-length", "32", "-q"])
    assert status == 0
    assert os.path.getsize(tmp_path / "bbc" / "1" / "model.tflite") > 1e6


def test_export_command_errors(classifier_folder, tmp_path, capsys):
    assert cli(["export", "--model", str(classifier_folder), "--output", str(tmp_path / "x"),
                "--task", "image-segmentation"]) == 2
    assert "unknown --task 'image-segmentation'" in capsys.readouterr().err
    assert cli(["export", "--model", str(tmp_path / "missing"), "--output", str(tmp_path / "x")]) == 2
    assert "missing" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "x")
