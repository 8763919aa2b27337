"""Loading and inference speed of tfformers against PyTorch transformers, side by side in one process.

Both libraries load the same safetensors folder and run the same padded batch. Contenders are timed
interleaved (A, B, C, D, then D, C, B, A, ...) so that load from other processes on the machine hits all
of them alike; every figure is a median. Compilation and warm-up are excluded from throughput; the
tf.function trace time and the XLA trace + compile time are reported on their own.

    .venv/bin/python benchmarks/bench_inference.py                  # the figures in docs/benchmarks.md
    .venv/bin/python benchmarks/bench_inference.py --quick          # smoke test, fewer repetitions
    .venv/bin/python benchmarks/bench_inference.py --models minilm --batch 8 --seq 64

Models (see common.py): `minilm` is the real all-MiniLM-L6-v2; `bert-base` a random BERT-base checkpoint.
Peak memory while loading is measured in a fresh process per library (/proc/self/status), as the growth of
the peak resident size over the size after the imports, and compared with the size of the weights.
"""

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np  # noqa: I001  (after common, which sets the Keras backend and TF's log level)
from common import (
    argument_parser,
    forward_flops,
    interleaved,
    make_inputs,
    median,
    paired_speedup,
    quiet_libraries,
    start,
    summarize,
    timed_first_call,
)

# -------------------------------------------------------------------------------------------- loading


def bench_loading(name, folder, rounds):
    """from_pretrained alone, and from_pretrained plus the first forward of one short sequence: PyTorch
    transformers maps the safetensors file and reads the weights' pages on first use, tfformers copies
    them into TensorFlow variables while loading, so only the second figure compares the same work."""
    import tensorflow as tf
    import torch
    import transformers

    import tfformers

    sentence = [[101, 2023, 2003, 1037, 6251, 102]]

    def load_tf(first_forward):
        model = tfformers.TFAutoModel.from_pretrained(folder)
        if first_forward:
            model({"input_ids": tf.constant(sentence)}).last_hidden_state.numpy()

    def load_pt(first_forward):
        model = transformers.AutoModel.from_pretrained(folder)
        if first_forward:
            with torch.no_grad():
                model(input_ids=torch.tensor(sentence)).last_hidden_state.numpy()

    results = {}
    for label, first_forward in (("from_pretrained", False), ("from_pretrained + first forward", True)):
        contenders = {"tfformers": lambda f=first_forward: load_tf(f), "PyTorch": lambda f=first_forward: load_pt(f)}
        interleaved(contenders, 1)  # warm-up: lazy imports, first kernels, the page cache
        times = interleaved(contenders, rounds)
        results[label] = ({key: median(value) for key, value in times.items()},
                          paired_speedup(times, "tfformers", "PyTorch"))
    return results


def _status_bytes(field):
    """A size from /proc/self/status (`VmRSS`, `VmHWM`), in bytes."""
    with open("/proc/self/status") as handle:
        line = next(line for line in handle if line.startswith(field + ":"))
    return int(line.split()[1]) * 1024


def _load_peak_growth(library, folder):
    """In a fresh process: how far the peak resident size rises above the size after the imports while
    `library` loads `folder` (bytes). Resident pages of memory-mapped files count as well as allocations."""
    if library == "tfformers":
        import tensorflow  # noqa: F401

        import tfformers

        load = tfformers.TFAutoModel.from_pretrained
    else:
        import torch  # noqa: F401
        import transformers

        load = transformers.AutoModel.from_pretrained
    quiet_libraries()
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # resets the peak (VmHWM) to the current resident size
    before = _status_bytes("VmRSS")
    model = load(folder)  # noqa: F841  (alive while the peak is read)
    return _status_bytes("VmHWM") - before


def bench_loading_memory(folder, rounds):
    """{library: median peak growth in bytes}, each measured in its own fresh process per round, and the
    size of the weights (the safetensors files)."""
    growth = {"tfformers": [], "PyTorch": []}
    for _ in range(rounds):
        for library in growth:
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
                growth[library].append(pool.submit(_load_peak_growth, library, str(folder)).result())
    weights = sum(os.path.getsize(path) for path in Path(folder).glob("*.safetensors"))
    return {library: median(values) for library, values in growth.items()}, weights


# ------------------------------------------------------------------------------------------ inference


def bench_inference(name, folder, batch, seq, rounds):
    import tensorflow as tf
    import torch
    import transformers

    import tfformers

    tf_model = tfformers.TFAutoModel.from_pretrained(folder)
    pt_model = transformers.AutoModel.from_pretrained(folder).eval()
    config = tf_model.config
    inputs = make_inputs(config.vocab_size, batch, seq)
    tf_inputs = {k: tf.constant(v, tf.int32) for k, v in inputs.items()}
    pt_inputs = {k: torch.as_tensor(v) for k, v in inputs.items()}

    def forward(x):
        return tf_model(x, training=False)

    graph_fn = tf.function(forward)
    xla_fn = tf.function(forward, jit_compile=True)

    def run_pt():
        with torch.no_grad():
            return pt_model(**pt_inputs)

    contenders = {
        "tfformers eager": lambda: forward(tf_inputs),
        "tfformers tf.function": lambda: graph_fn(tf_inputs),
        "tfformers XLA": lambda: xla_fn(tf_inputs),
        "PyTorch": run_pt,
    }

    # first calls: trace (+ compile), timed on their own
    first_call = {key: timed_first_call(contenders[key]) for key in ("tfformers tf.function", "tfformers XLA")}

    # same numbers from every contender (over the real tokens only)
    expected = run_pt().last_hidden_state.numpy()
    real = inputs["attention_mask"].astype(bool)
    max_diff = {
        key: float(np.abs(np.asarray(fn()["last_hidden_state"]) - expected)[real].max())
        for key, fn in contenders.items()
        if key != "PyTorch"
    }

    interleaved(contenders, 1)  # warm-up: steady state of every contender
    times = interleaved(contenders, rounds)
    return {
        **summarize(times, batch, forward_flops(config, batch, seq)),
        "first_call": first_call,
        "max_diff": max_diff,
    }


# ------------------------------------------------------------------------------------------- printing


def ratio(a, b):
    return f"{a / b:.2f}x"


def print_loading(results):
    print("\n### Load time from disk (median)\n")
    print("| model | measured | tfformers | PyTorch | tfformers speed / PyTorch's |")
    print("|---|---|---:|---:|---:|")
    for name, measurements in results.items():
        for label, (seconds, speedup) in measurements.items():
            print(f"| {name} | {label} | {seconds['tfformers']:.3f} s | {seconds['PyTorch']:.3f} s | {speedup:.2f}x |")
    print("\nspeed ratio: median over rounds of PyTorch time / tfformers time, loaded back to back "
          "(above 1x: tfformers loads faster).")


def print_loading_memory(results):
    print("\n### Peak memory while loading (median, a fresh process each)\n")
    print("| model | weights | tfformers | / weights | PyTorch | / weights |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, (growth, weights) in results.items():
        tf_growth, pt_growth = growth["tfformers"], growth["PyTorch"]
        print(f"| {name} | {weights / 2**20:.0f} MiB | {tf_growth / 2**20:.0f} MiB | {tf_growth / weights:.2f}x "
              f"| {pt_growth / 2**20:.0f} MiB | {pt_growth / weights:.2f}x |")
    print("\npeak: the rise of the peak resident size (VmHWM) over the size after the imports, while "
          "from_pretrained runs.")


def print_inference(results, batch, seq):
    print(f"\n### Forward throughput, batch {batch} x sequence {seq}, padded (median)\n")
    print("| model | contender | ms / batch | sequences/s | GFLOP/s | vs PyTorch | first call | max abs diff |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name, result in results.items():
        for key, seconds in result["seconds"].items():
            first = result["first_call"].get(key)
            diff = result["max_diff"].get(key)
            print(
                f"| {name} | {key} | {seconds * 1e3:.0f} | {result['throughput'][key]:.1f} "
                f"| {result['gflops'][key]:.0f} | {result['speedup'][key]:.2f}x "
                f"| {f'{first:.1f} s' if first is not None else '-'} "
                f"| {f'{diff:.1e}' if diff is not None else '-'} |"
            )
    print(
        "\nvs PyTorch: median over rounds of PyTorch time / contender time, run back to back. "
        "first call: tracing (tf.function) or tracing + XLA compilation, excluded from throughput. "
        "max abs diff: last_hidden_state against PyTorch over the unpadded tokens."
    )
    print()
    for name, result in results.items():
        up = result["speedup"]
        xla_vs_graph = median(
            [g / x for g, x in zip(result["times"]["tfformers tf.function"], result["times"]["tfformers XLA"])]
        )
        print(
            f"{name}: tfformers XLA / PyTorch = {up['tfformers XLA']:.2f}x, "
            f"tf.function / PyTorch = {up['tfformers tf.function']:.2f}x, "
            f"eager / PyTorch = {up['tfformers eager']:.2f}x, XLA / tf.function = {xla_vs_graph:.2f}x"
        )


def main(argv=None):
    parser = argument_parser(__doc__.split("\n\n")[0], batch=32)
    parser.add_argument("--load-rounds", type=int, help="load repetitions per library (default 7, quick 2)")
    parser.add_argument("--rounds", type=int, help="timed batches per contender (default 15, quick 2)")
    parser.add_argument("--memory-rounds", type=int, help="processes per library for peak memory (default 3, quick 1)")
    parser.add_argument("--skip-loading", action="store_true")
    parser.add_argument("--skip-inference", action="store_true")
    args = parser.parse_args(argv)

    load_rounds = args.load_rounds or (2 if args.quick else 7)
    memory_rounds = args.memory_rounds or (1 if args.quick else 3)
    rounds = args.rounds or (2 if args.quick else 15)
    folders = start(args.models, parser)
    names = list(folders)

    if not args.skip_loading:
        loading = {}
        for name in names:
            print(f"loading {name} x {load_rounds} ...", flush=True)
            loading[name] = bench_loading(name, folders[name], load_rounds)
        print_loading(loading)
        print_loading_memory({name: bench_loading_memory(folders[name], memory_rounds) for name in names})

    if not args.skip_inference:
        inference = {}
        for name in names:
            print(f"\nrunning {name} x {rounds} batches per contender ...", flush=True)
            inference[name] = bench_inference(name, folders[name], args.batch, args.seq, rounds)
        print_inference(inference, args.batch, args.seq)


if __name__ == "__main__":
    main()
