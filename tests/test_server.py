"""The TF-Serving-compatible REST server (tfformers.serving, `tfformers serve`), tested as a client sees it: a
real uvicorn server on a free port, requests through urllib, toy SavedModels exported here with plain
TensorFlow.

The toy model's signatures: `serving_default` (text: string [None] -> length int32, upper string, raw_bytes
string, each [None]), `ids` (input_ids, attention_mask: int32 [None, None] -> total: float32 [None], the masked
sum times a scale variable) and `checked` (x: float32 [None] -> root: float32 [None]; x < 0 fails a
tf.debugging assertion).
"""

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest
import tensorflow as tf

from tfformers.cli import main
from tfformers.serving import ModelServer

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # straight to 127.0.0.1


class Toy(tf.Module):
    def __init__(self, scale):
        super().__init__()
        self.scale = tf.Variable(scale, dtype=tf.float32)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def text(self, text):
        return {"length": tf.strings.length(text), "upper": tf.strings.upper(text), "raw_bytes": text + b"\xff"}

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32, name="input_ids"),
                                  tf.TensorSpec([None, None], tf.int32, name="attention_mask")])
    def ids(self, input_ids, attention_mask):
        return {"total": tf.reduce_sum(tf.cast(input_ids * attention_mask, tf.float32), axis=1) * self.scale}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def checked(self, x):
        tf.debugging.assert_non_negative(x, message="x must be >= 0")
        return {"root": tf.sqrt(x)}


def export_toy(path, scale=1.0):
    toy = Toy(scale)
    tf.saved_model.save(toy, str(path), signatures={"serving_default": toy.text, "ids": toy.ids,
                                                     "checked": toy.checked})


def call(url, body=None, *, method=None, headers=None):
    """(HTTP status, decoded JSON answer); an error answer must be exactly TF Serving's {"error": ...}."""
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with _OPENER.open(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        answer = json.loads(error.read())
        assert set(answer) == {"error"} and isinstance(answer["error"], str), answer
        return error.code, answer


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """Exported toy SavedModels to copy into model layouts: scale 1 and scale 2."""
    folder = tmp_path_factory.mktemp("exports")
    export_toy(folder / "scale1", 1.0)
    export_toy(folder / "scale2", 2.0)
    return folder


@pytest.fixture(scope="module")
def base(exports, tmp_path_factory):
    """BASE/toy/1 (+ a hidden staging folder and a non-numeric one, both ignored), BASE/live/1 (for the version
    test), BASE/broken/1 (not a SavedModel) and BASE/.trash/1 (a hidden model folder, ignored)."""
    base = tmp_path_factory.mktemp("models")
    shutil.copytree(exports / "scale1", base / "toy" / "1")
    shutil.copytree(exports / "scale2", base / "toy" / ".staging-7")
    (base / "toy" / "notes").mkdir()
    shutil.copytree(exports / "scale1", base / "live" / "1")
    (base / "broken" / "1").mkdir(parents=True)
    (base / "broken" / "1" / "saved_model.pb").write_bytes(b"not a saved model")
    shutil.copytree(exports / "scale1", base / ".trash" / "1")
    return base


@pytest.fixture(scope="module")
def server(base):
    with ModelServer(base, port=0, poll_seconds=0.1, max_body_bytes=64 << 10, max_string_bytes=1024,
                     batch_timeout_ms=2) as server:
        yield server


@pytest.fixture
def toy(server):
    return server.url + "/v1/models/toy"


def assert_alive(server):
    status, answer = call(server.url + "/v1/models/toy:predict", {"instances": ["still here"]})
    assert status == 200 and answer["predictions"][0]["upper"] == "STILL HERE"


# ------------------------------------------------------------------------------------------ status, metadata


def test_status_and_metadata(server, toy):
    ok = {"error_code": "OK", "error_message": ""}
    assert call(toy) == (200, {"model_version_status": [{"version": "1", "state": "AVAILABLE", "status": ok}]})
    assert call(toy + "/versions/1") == call(toy)

    status, answer = call(toy + "/metadata")
    assert status == 200
    assert answer["model_spec"] == {"name": "toy", "signature_name": "", "version": "1"}
    signatures = answer["metadata"]["signature_def"]["signature_def"]
    assert {"serving_default", "ids", "checked"} <= set(signatures)
    default = signatures["serving_default"]
    assert default["method_name"] == "tensorflow/serving/predict"
    assert default["inputs"]["text"]["dtype"] == "DT_STRING"
    assert default["inputs"]["text"]["tensor_shape"] == {"dim": [{"size": "-1", "name": ""}], "unknown_rank": False}
    assert {name: spec["dtype"] for name, spec in default["outputs"].items()} == {
        "length": "DT_INT32", "upper": "DT_STRING", "raw_bytes": "DT_STRING"}
    assert [dim["size"] for dim in signatures["ids"]["inputs"]["input_ids"]["tensor_shape"]["dim"]] == ["-1", "-1"]
    assert call(toy + "/versions/1/metadata") == (status, answer)

    # a version folder that does not load is reported, not fatal
    status, answer = call(server.url + "/v1/models/broken")
    (broken,) = answer["model_version_status"]
    assert status == 200 and broken["version"] == "1" and broken["state"] == "END"
    assert broken["status"]["error_code"] == "UNKNOWN" and broken["status"]["error_message"]

    for path, message in [("/v1/models/nope", "Could not find any versions of model nope"),
                          ("/v1/models/.trash", "Could not find any versions of model .trash"),
                          ("/v1/models/toy/versions/2", "Could not find version 2 of model toy"),
                          ("/v1/models/toy/versions/2/metadata", "Servable not found for request: Specific(toy, 2)"),
                          ("/v1/models/nope/metadata", "Servable not found for request: Latest(nope)"),
                          ("/v1/models/broken/metadata", "Servable not found for request: Latest(broken)")]:
        status, answer = call(server.url + path)
        assert (status, answer["error"][:len(message)]) == (404, message), path


# ------------------------------------------------------------------------------------------------ predict


def test_predict_row_and_columnar_formats(toy):
    # row format, one input: bare instances; several outputs: one object per instance
    status, answer = call(toy + ":predict", {"instances": ["héllo", "ab"]})
    assert status == 200
    assert answer == {"predictions": [
        {"length": 6, "upper": "HéLLO", "raw_bytes": {"b64": base64.b64encode("héllo".encode() + b"\xff").decode()}},
        {"length": 2, "upper": "AB", "raw_bytes": {"b64": base64.b64encode(b"ab\xff").decode()}},
    ]}
    # the same instances as objects naming the input
    assert call(toy + ":predict", {"instances": [{"text": "héllo"}, {"text": "ab"}]}) == (status, answer)
    # columnar: an object of outputs
    assert call(toy + ":predict", {"inputs": {"text": ["héllo", "ab"]}}) == (200, {"outputs": {
        "length": [6, 2], "upper": ["HéLLO", "AB"],
        "raw_bytes": [{"b64": base64.b64encode("héllo".encode() + b"\xff").decode()}, {"b64": "YWL/"}]}})
    # columnar, one input given bare
    assert call(toy + ":predict", {"inputs": ["x"]})[1]["outputs"]["length"] == [1]
    # one output: predictions / outputs are the bare values; float32 in its shortest form (0.1, not 0.100000001)
    assert call(toy + ":predict", {"signature_name": "checked", "instances": [0.01, 4, 2.25]}) == (
        200, {"predictions": [0.1, 2.0, 1.5]})
    assert call(toy + ":predict", {"signature_name": "checked", "inputs": [0.25]}) == (200, {"outputs": [0.5]})
    # an explicit version, a case-insensitive path, and the default signature named outright
    assert call(toy + "/versions/1:predict", {"instances": ["a"]})[0] == 200
    assert call(toy.replace("/v1/models/", "/V1/Models/") + ":PREDICT", {"instances": ["a"]})[0] == 200
    assert call(toy + ":predict", {"signature_name": "serving_default", "inputs": {"text": ["a"]}})[0] == 200


def test_binary_values_and_signature_name(toy):
    raw = bytes(range(256))
    status, answer = call(toy + ":predict", {"instances": [{"b64": base64.b64encode(raw).decode()}]})
    assert status == 200
    (prediction,) = answer["predictions"]
    assert prediction["length"] == 256
    assert base64.b64decode(prediction["raw_bytes"]["b64"]) == raw + b"\xff"  # `_bytes` outputs: base64
    assert isinstance(prediction["upper"], str)  # other string outputs: text

    ids = [[1, 2, 3, 0], [4, 5, 0, 0]]
    mask = [[1, 1, 1, 0], [1, 1, 0, 0]]
    expected = [6.0, 9.0]
    rows = [{"input_ids": i, "attention_mask": m} for i, m in zip(ids, mask)]
    assert call(toy + ":predict", {"signature_name": "ids", "instances": rows}) == (200, {"predictions": expected})
    assert call(toy + ":predict", {"signature_name": "ids", "inputs": {"input_ids": ids, "attention_mask": mask}}) == (
        200, {"outputs": expected})


# ------------------------------------------------------------------------------------------------ errors

_TWO_ROWS = [{"input_ids": [1, 2], "attention_mask": [1, 1]}]
CLIENT_ERRORS = [
    # (id, path suffix, body, status, words the error must contain)
    ("malformed JSON", ":predict", b'{"instances": [', 400, ["JSON Parse error"]),
    ("not UTF-8", ":predict", b'{"instances": ["\xff"]}', 400, ["JSON Parse error"]),
    ("not an object", ":predict", [1, 2], 400, ["JSON object"]),
    ("neither", ":predict", {"signature_name": "ids"}, 400, ["neither", "'instances'", "'inputs'"]),
    ("both", ":predict", {"instances": ["a"], "inputs": ["a"]}, 400, ["both"]),
    ("unknown signature", ":predict", {"signature_name": "nah", "instances": ["a"]}, 400,
     ['"nah" not found in signature def', "'checked', 'ids', 'serving_default'"]),
    ("signature name not a string", ":predict", {"signature_name": 3, "instances": ["a"]}, 400, ["must be a string"]),
    ("unknown model", "/../nope:predict", {"instances": ["a"]}, 404, ["Servable not found", "Latest(nope)"]),
    ("unknown version", "/versions/9:predict", {"instances": ["a"]}, 404, ["Specific(toy, 9)", "version 1 is served"]),
    ("unknown input", ":predict", {"inputs": {"txt": ["a"]}}, 400, ["unknown input ['txt']", "['text']"]),
    ("unknown input in an instance", ":predict", {"instances": [{"text": "a"}, {"txt": "b"}]}, 400,
     ["instance 1", "['txt']", "['text']"]),
    ("missing input", ":predict", {"signature_name": "ids", "inputs": {"input_ids": [[1]]}}, 400,
     ["lacks input ['attention_mask']", "['attention_mask', 'input_ids']"]),
    ("bare instances for two inputs", ":predict", {"signature_name": "ids", "instances": [[1, 2]]}, 400,
     ["takes 2 inputs", "object naming them"]),
    ("bare and named instances", ":predict", {"instances": ["a", {"text": "b"}]}, 400, ["instance 1", "same way"]),
    ("number for a string", ":predict", {"instances": ["a", 5]}, 400, ["instance 1", "strings (DT_STRING)", "number"]),
    ("string for a number", ":predict", {"signature_name": "checked", "inputs": {"x": [1, "2"]}}, 400,
     ["input 'x'", "numbers (DT_FLOAT)", "string"]),
    ("null", ":predict", {"signature_name": "checked", "instances": [None]}, 400, ["null"]),
    ("fraction for an integer", ":predict", {"signature_name": "ids", "instances": [
        {"input_ids": [1.5], "attention_mask": [1]}]}, 400, ["integers (DT_INT32)", "1.5"]),
    ("integer out of range", ":predict", {"signature_name": "ids", "instances": [
        {"input_ids": [2**40], "attention_mask": [1]}]}, 400, ["out of range for DT_INT32"]),
    ("ragged instances", ":predict", {"signature_name": "ids", "instances": [
        *_TWO_ROWS, {"input_ids": [1], "attention_mask": [1]}]}, 400,
     ["instance 0 has shape [2]", "instance 1", "pad"]),
    ("ragged columnar input", ":predict", {"signature_name": "ids", "inputs": {
        "input_ids": [[1, 2], [3]], "attention_mask": [[1, 1], [1]]}}, 400, ["ragged", "pad"]),
    ("wrong rank", ":predict", {"signature_name": "ids", "inputs": {"input_ids": [1, 2], "attention_mask": [1, 1]}},
     400, ["input 'attention_mask' takes shape [-1, -1], got [2]"]),
    ("empty instances", ":predict", {"instances": []}, 400, ["empty"]),
    ("empty columnar batch", ":predict", {"inputs": {"text": []}}, 400, ["empty"]),
    ("instances not a list", ":predict", {"instances": "a"}, 400, ["must be a list"]),
    ("invalid base64", ":predict", {"instances": [{"b64": "%%%"}]}, 400, ["not valid base64"]),
    ("signature raises", ":predict", {"signature_name": "checked", "instances": [1.0, -4.0]}, 400,
     ["InvalidArgumentError", "x must be >= 0"]),
    ("classify", ":classify", {"examples": []}, 501, [":predict"]),
    ("unknown verb", ":explain", {}, 400, ["Malformed request"]),
    ("GET predict", ":predict", None, 405, ["takes POST"]),
    ("POST status", "", {}, 405, ["takes GET"]),
]


@pytest.mark.parametrize("suffix, body, status, words", [case[1:] for case in CLIENT_ERRORS],
                         ids=[case[0] for case in CLIENT_ERRORS])
def test_client_errors(server, toy, suffix, body, status, words):
    url = toy + suffix if not suffix.startswith("/..") else server.url + "/v1/models" + suffix[3:]
    got, answer = call(url, body, method="GET" if body is None else None)
    assert got == status, answer
    for word in words:
        assert word in answer["error"], (word, answer)
    assert_alive(server)


def test_limits_on_bodies_and_strings(server, toy):
    big = json.dumps({"instances": ["a" * 1000] * 80}).encode()  # 80 KiB > --max-body-bytes 64 KiB
    status, answer = call(toy + ":predict", big)
    assert status == 413 and f"has {len(big)} bytes" in answer["error"] and "limit of 65536" in answer["error"]
    # without Content-Length (chunked): refused while streaming
    chunks = iter([big[:30000], big[30000:60000], big[60000:]])
    status, answer = call(toy + ":predict", chunks, headers={"Content-Type": "application/json"})
    assert status == 413 and "--max-body-bytes" in answer["error"]
    # a string longer than --max-string-bytes (1024): the instance (row) is named
    status, answer = call(toy + ":predict", {"instances": ["ok", "ok", "é" * 600]})
    assert status == 400 and "instance 2" in answer["error"] and "1200 bytes" in answer["error"]
    status, answer = call(toy + ":predict", {"inputs": {"text": ["ok", "b" * 2000]}})
    assert status == 400 and "row 1" in answer["error"] and "--max-string-bytes" in answer["error"]
    assert call(toy + ":predict", {"instances": ["c" * 1024]})[0] == 200  # the limit itself is allowed
    assert_alive(server)


def test_unexpected_error_is_500_and_the_server_goes_on(server, toy, monkeypatch):
    from tfformers.serving import app

    def broken(outputs, row_format):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(app, "encode_outputs", broken)
    status, answer = call(toy + ":predict", {"instances": ["a"]})
    assert status == 500 and "RuntimeError: disk on fire" in answer["error"]
    monkeypatch.undo()
    assert_alive(server)


def test_unknown_paths(server):
    status, answer = call(server.url + "/v2/things")
    assert status == 404 and "/v1/models/NAME" in answer["error"]
    status, answer = call(server.url + "/v1/models/toy/labels/stable")
    assert status == 400 and "Malformed request" in answer["error"]


# ------------------------------------------------------------------------------------------------ versions


def wait_for(predicate, seconds=20):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_new_version_is_picked_up_without_restart(server, base, exports):
    live = server.url + "/v1/models/live"
    body = {"signature_name": "ids", "instances": [{"input_ids": [1, 2], "attention_mask": [1, 1]}]}
    assert call(live + ":predict", body) == (200, {"predictions": [3.0]})
    # exporters write into a hidden folder and rename it: the rename is what the server sees
    shutil.copytree(exports / "scale2", base / "live" / ".incoming")
    os.rename(base / "live" / ".incoming", base / "live" / "2")
    wait_for(lambda: call(live)[1]["model_version_status"][0] == {
        "version": "2", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}})
    assert call(live)[1]["model_version_status"][1]["state"] == "END"  # version 1, unloaded
    assert call(live + ":predict", body) == (200, {"predictions": [6.0]})  # the scale-2 model answers
    assert call(live + "/versions/2:predict", body)[0] == 200
    assert call(live + "/versions/1:predict", body)[0] == 404
    assert call(live + "/metadata")[1]["model_spec"]["version"] == "2"

    # a newer version that does not load is reported; version 2 keeps serving
    (base / "live" / "3").mkdir()
    (base / "live" / "3" / "saved_model.pb").write_bytes(b"garbage")
    wait_for(lambda: call(live + "/versions/3")[0] == 200
             and call(live + "/versions/3")[1]["model_version_status"][0]["state"] == "END")
    (three,) = call(live + "/versions/3")[1]["model_version_status"]
    assert three["status"]["error_code"] == "UNKNOWN" and three["status"]["error_message"]
    assert call(live + "/versions/2")[1]["model_version_status"][0]["state"] == "AVAILABLE"
    assert call(live + ":predict", body) == (200, {"predictions": [6.0]})

    # deleting the newest versions goes back to the newest one left
    shutil.rmtree(base / "live" / "3")
    shutil.rmtree(base / "live" / "2")
    wait_for(lambda: call(live + ":predict", body) == (200, {"predictions": [3.0]}))
    assert call(live + "/versions/1")[1]["model_version_status"][0]["state"] == "AVAILABLE"


# ------------------------------------------------------------------------------------------------ batching


class Blocked:
    """Holds the batcher's worker busy until released, so that requests pile up in its queue."""

    def __init__(self, batcher):
        self.release = threading.Event()
        self.batcher = batcher

    def __enter__(self):
        self.batcher.submit(lambda inputs: (self.release.wait(30), {})[1], {})
        wait_for(lambda: self.batcher.queued == 0)  # the worker took it and waits
        return self

    def __exit__(self, *exc_info):
        self.release.set()


def concurrently(requests):
    """Sends (url, body) requests from one thread each; returns their (status, answer) in order."""
    results = [None] * len(requests)

    def send(index, url, body):
        results[index] = call(url, body)

    threads = [threading.Thread(target=send, args=(index, *request)) for index, request in enumerate(requests)]
    for thread in threads:
        thread.start()
    return threads, results


def test_batching_merges_concurrent_requests(server, toy):
    batcher = server.batcher
    texts = [["a"], ["bb", "ccc"], ["dddd"], ["e", "ff", "ggg"], ["h"], ["ii"], ["jjj"], ["kkkk", "l"]]
    with Blocked(batcher):
        calls, requests = batcher.calls, batcher.requests
        threads, results = concurrently([(toy + ":predict", {"instances": batch}) for batch in texts])
        wait_for(lambda: batcher.queued == len(texts))
    for thread in threads:
        thread.join()
    for batch, (status, answer) in zip(texts, results):  # each request gets its own rows back
        assert status == 200
        assert [p["upper"] for p in answer["predictions"]] == [text.upper() for text in batch]
        assert [p["length"] for p in answer["predictions"]] == [len(text) for text in batch]
    assert batcher.requests - requests == len(texts) + 1  # + the blocker, answered after the count was taken
    assert batcher.calls - calls == 1  # one call for all eight requests (14 rows)


def test_batching_keeps_shapes_apart_and_a_bad_request_fails_alone(server, toy):
    batcher = server.batcher

    def ids_body(length):
        return {"signature_name": "ids", "instances": [{"input_ids": [1] * length, "attention_mask": [1] * length}]}

    checked = {"signature_name": "checked", "instances": [4.0]}
    bad = {"signature_name": "checked", "instances": [-1.0]}
    requests = [ids_body(3), ids_body(5), ids_body(3), (checked), (bad), (checked)]
    with Blocked(batcher):
        calls = batcher.calls
        threads, results = concurrently([(toy + ":predict", body) for body in requests])
        wait_for(lambda: batcher.queued == len(requests))
    for thread in threads:
        thread.join()
    assert [status for status, _ in results] == [200, 200, 200, 200, 400, 200]
    assert [answer.get("predictions") for _, answer in results] == [[3.0], [5.0], [3.0], [2.0], None, [2.0]]
    assert "x must be >= 0" in results[4][1]["error"]
    # ids of length 3 (merged) 1 + ids of length 5 1 + checked (merged, raised) 1 + each checked alone 3
    assert batcher.calls - calls == 6


def test_full_queue_503_timeout_504_and_no_batching(base):
    with ModelServer(base, port=0, poll_seconds=5, batching=False, max_queue=4, request_timeout_s=1) as server:
        toy = server.url + "/v1/models/toy"
        with Blocked(server.batcher):
            threads, results = concurrently([(toy + ":predict", {"instances": ["a"]})] * 4)
            wait_for(lambda: server.batcher.queued == 4)
            status, answer = call(toy + ":predict", {"instances": ["a"]})
            assert status == 503 and "queue is full" in answer["error"] and "--max-queue" in answer["error"]
            for thread in threads:
                thread.join()
        assert [status for status, _ in results] == [504] * 4  # waited more than --request-timeout-s 1
        assert "--request-timeout-s" in results[0][1]["error"]
        wait_for(lambda: server.batcher.queued == 0)

        with Blocked(server.batcher):
            calls = server.batcher.calls
            threads, results = concurrently([(toy + ":predict", {"instances": ["a" * i]}) for i in range(1, 5)])
            wait_for(lambda: server.batcher.queued == 4)
        for thread in threads:
            thread.join()
        assert [answer["predictions"][0]["length"] for _, answer in results] == [1, 2, 3, 4]
        assert server.batcher.calls - calls == 4  # --no-batching: never merged
        assert_alive(server)


# ------------------------------------------------------------------------------------------------ the command


@pytest.fixture(scope="module", autouse=True)
def serve_process(base):
    """`tfformers serve BASE/toy --model-name news` in a subprocess, started with the first test of the file so
    that its imports overlap the other tests; BASE/toy holds version folders, so it is one model."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tfformers.cli", "serve", str(base / "toy"), "--port", "0", "--model-name", "news",
         "--max-batch-size", "8"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    yield process
    if process.poll() is None:
        process.kill()
        process.wait()


def test_serve_command(serve_process, tmp_path, capsys):
    assert main(["serve", str(tmp_path / "missing"), "--port", "0"]) == 2
    assert re.fullmatch(r"tfformers serve: error: no such folder: .*\n", capsys.readouterr().err)
    (tmp_path / "empty").mkdir()
    assert main(["serve", str(tmp_path / "empty"), "--port", "0"]) == 2
    assert "holds no model" in capsys.readouterr().err

    line = serve_process.stdout.readline()
    match = re.fullmatch(r"Serving on (http://127\.0\.0\.1:\d+)\n", line)
    assert match, line + (serve_process.stderr.read() if serve_process.poll() is not None else "")
    url = match[1]
    assert serve_process.stdout.readline() == f"  {url}/v1/models/news\n"
    assert call(url + "/v1/models/news:predict", {"instances": ["x"]})[1]["predictions"][0]["upper"] == "X"
    serve_process.send_signal(signal.SIGTERM)
    assert serve_process.wait(timeout=30) == 0
    assert "stopped" in serve_process.stderr.read()
