"""int8 weights (Keras' `model.quantize`) against float32: what they cost in quality, what they buy in speed.

Three measurements, each float32 against int8 on the same weights, tfformers beside PyTorch where it has
the same precision (`torch.ao.quantization.quantize_dynamic` on every nn.Linear: int8 weights, activations
quantized per call):

1. Accuracy on BBC News: all-MiniLM-L6-v2 fine-tuned once in float32 (the fine-tuning recipe, 80/20
   stratified split), then evaluated on the held-out articles as it is and quantized.
2. Perplexity of SmolLM2-135M-Instruct (GGUF Q4_1, dequantized to float32) on BBC News articles (the
   first `--ppl-tokens` tokens of each), as it is and quantized; PyTorch's the same way.
3. Greedy generation on SmolLM2, batch 1, a 32-token prompt and exactly `--new-tokens` new ones: tfformers'
   XLA-compiled generate() in float32 and int8, PyTorch's generate() in float32 and dynamic int8. Timed
   calls are interleaved across contenders; figures are medians.

tfformers' int8 comes in the two forms Keras offers: `quantize("int8")` (int8 weights, and the activations
entering each Dense quantized per row: an int8 x int8 product) and weight-only
(`Int8QuantizationConfig(activation_quantizer=None)`: the int8 weights are widened inside the float product).

    .venv/bin/python benchmarks/bench_quantization.py            # the figures in docs/benchmarks.md
    .venv/bin/python benchmarks/bench_quantization.py --quick    # smoke test: few articles, 1 epoch, 1 round
"""

import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path

import numpy as np  # noqa: I001  (after common, which sets the Keras backend and TF's log level)
from bench_generate import load_smollm2, pad_id
from common import (
    environment,
    first_calls,
    interleaved,
    median,
    minilm_dir,
    paired_speedup,
    pin_torch_threads,
    quiet_libraries,
    smollm2_gguf,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

FLOAT, INT8, WEIGHT_ONLY = "float32", "int8", "int8 weight-only"
PT_FLOAT, PT_INT8 = "PyTorch float32", "PyTorch dynamic int8"


def quantized(model, form):
    """`model` quantized in place to `form` (INT8 or WEIGHT_ONLY); FLOAT leaves it as it is."""
    import keras

    if form == INT8:
        model.quantize("int8")
    elif form == WEIGHT_ONLY:
        model.quantize(config=keras.quantizers.Int8QuantizationConfig(activation_quantizer=None))
    return model


def torch_int8(pt_model):
    """A copy of `pt_model` with every nn.Linear dynamically quantized to int8 (the tied LM head too)."""
    import torch

    return torch.ao.quantization.quantize_dynamic(copy.deepcopy(pt_model), {torch.nn.Linear}, dtype=torch.qint8)


# ------------------------------------------------------------------------------------- 1. BBC accuracy


def bbc_accuracy(epochs, articles, seed=0):
    """({form: held-out accuracy}, held-out articles) of MiniLM fine-tuned on BBC News in float32 (on a
    stratified sample of `articles` when given), then quantized."""
    from demo import bbc_news  # examples/demo.py: the corpus as a datasets.Dataset (text, label)

    import tfformers
    from tfformers import finetune

    dataset = bbc_news().class_encode_column("label")
    if articles:
        dataset = dataset.train_test_split(test_size=articles, seed=seed, stratify_by_column="label")["test"]
    splits = dataset.train_test_split(test_size=0.2, seed=seed, stratify_by_column="label")
    print(f"fine-tuning MiniLM in float32 on {len(splits['train'])} BBC articles, {epochs} epochs ...", flush=True)
    result = finetune.fine_tune(str(minilm_dir()), splits["train"], eval_dataset=splits["test"], epochs=epochs,
                                max_length=128, seed=seed, verbose=2)
    held_out = finetune.tokenize(finetune.encode_labels(splits["test"], "label", result.labels), result.tokenizer,
                                 "text", max_length=128)
    accuracy = {FLOAT: result.evaluation.accuracy}
    with tempfile.TemporaryDirectory() as folder:
        result.model.save_pretrained(folder)
        for form in (INT8, WEIGHT_ONLY):
            model = quantized(tfformers.TFAutoModelForSequenceClassification.from_pretrained(folder), form)
            accuracy[form] = finetune.evaluate(model, held_out, tokenizer=result.tokenizer, max_length=128,
                                               verbose=0).accuracy
    return accuracy, len(held_out)


# ------------------------------------------------------------------------------------ 2. perplexity


def article_ids(tokenizer, count, tokens):
    """Token ids [count, tokens] of the first `count` BBC articles (round-robin over the topics) long enough."""
    from demo import bbc_news

    dataset = bbc_news()
    order = np.argsort(np.arange(len(dataset)) % 97, kind="stable")  # mixes the topics, deterministic
    rows = []
    for index in order:
        ids = tokenizer(dataset[int(index)]["text"])["input_ids"]
        if len(ids) >= tokens:
            rows.append(ids[:tokens])
        if len(rows) == count:
            break
    return np.asarray(rows, np.int32)


def perplexity(logits_of, ids):
    """exp(mean next-token negative log-likelihood) over every row of `ids`, one row per call."""
    total, count = 0.0, 0
    for row in ids:
        logits = np.asarray(logits_of(row[None, :-1]), np.float64)[0]  # [tokens - 1, vocab]
        shifted = logits - logits.max(-1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
        total -= log_probs[np.arange(len(row) - 1), row[1:]].sum()
        count += len(row) - 1
    return float(np.exp(total / count))


# -------------------------------------------------------------------------------------- 3. generation


def generation_contenders(tf_models, pt_models, prompt, new_tokens, pad):
    """{name: function returning the new token ids [1, new_tokens]} for every tfformers and PyTorch model."""
    import torch

    options = {"max_new_tokens": new_tokens, "min_new_tokens": new_tokens, "do_sample": False, "pad_token_id": pad}
    mask = np.ones_like(prompt)

    def tfformers_run(model):
        return lambda: np.asarray(model.generate(prompt, attention_mask=mask, **options))[:, prompt.shape[1]:]

    def torch_run(model):
        def run():
            with torch.inference_mode():
                out = model.generate(torch.as_tensor(prompt), attention_mask=torch.as_tensor(mask), **options)
            return out[:, prompt.shape[1]:].numpy()
        return run

    runs = {f"tfformers {form}": tfformers_run(model) for form, model in tf_models.items()}
    runs.update({name: torch_run(model) for name, model in pt_models.items()})
    return runs


def agreement(outputs, reference):
    """{name: how many of its new tokens equal `reference`'s, from the start}."""
    return {name: int(np.cumprod(tokens[0] == outputs[reference][0]).sum()) for name, tokens in outputs.items()}


# --------------------------------------------------------------------------------------------- main


def smollm2_models():
    """({form: tfformers SmolLM2}, {name: PyTorch SmolLM2}, tokenizer), every tfformers copy read from the GGUF."""
    import tfformers

    path = smollm2_gguf()
    tf_float, pt_float = load_smollm2(path)
    tf_models = {FLOAT: tf_float}
    for form in (INT8, WEIGHT_ONLY):
        model = tfformers.TFAutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name)
        began = time.perf_counter()
        tf_models[form] = quantized(model, form)
        print(f"  quantize ({form}): {time.perf_counter() - began:.1f} s", flush=True)
    pt_models = {PT_FLOAT: pt_float, PT_INT8: torch_int8(pt_float)}
    tokenizer = tfformers.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    return tf_models, pt_models, tokenizer


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke test: 100 BBC articles, 1 epoch, "
                                                             "4 perplexity articles, 8 new tokens, 1 round")
    parser.add_argument("--epochs", type=int, help="fine-tuning epochs (default 2, quick 1)")
    parser.add_argument("--ppl-articles", type=int, help="articles for perplexity (default 32, quick 4)")
    parser.add_argument("--ppl-tokens", type=int, default=256)
    parser.add_argument("--new-tokens", type=int, help="tokens generated per call (default 64, quick 8)")
    parser.add_argument("--rounds", type=int, help="timed generate() calls per contender (default 5, quick 1)")
    parser.add_argument("--parts", default="bbc,smollm2", help="comma-separated: bbc (fine-tuning, accuracy), "
                                                               "smollm2 (perplexity, generation)")
    args = parser.parse_args(argv)
    quick = args.quick
    epochs = args.epochs or (1 if quick else 2)
    ppl_articles = args.ppl_articles or (4 if quick else 32)
    new_tokens = args.new_tokens or (8 if quick else 64)
    rounds = args.rounds or (1 if quick else 5)

    import tfformers  # noqa: F401  (before the timings: its import is not measured)

    threads = pin_torch_threads()
    quiet_libraries()
    print(environment())
    print(f"command: {' '.join([Path(sys.executable).name] + sys.argv)}; torch threads {threads}", flush=True)

    parts = set(args.parts.split(","))
    if "bbc" in parts:
        accuracy, held_out = bbc_accuracy(epochs, 100 if quick else None)
        print(f"\nBBC News held-out accuracy, MiniLM fine-tuned in float32 ({held_out} articles, {epochs} epochs): "
              + ", ".join(f"{form} {value:.2%}" for form, value in accuracy.items()), flush=True)
    if "smollm2" in parts:
        smollm2_figures(args.ppl_tokens, ppl_articles, new_tokens, rounds)


def smollm2_figures(ppl_tokens, ppl_articles, new_tokens, rounds):
    """Prints SmolLM2's perplexity and generation speed, float32 against int8, tfformers and PyTorch."""
    import torch

    print("\nloading SmolLM2 (3 tfformers copies, 2 PyTorch) ...", flush=True)
    tf_models, pt_models, tokenizer = smollm2_models()
    ids = article_ids(tokenizer, ppl_articles, ppl_tokens)
    print(f"perplexity on {len(ids)} articles x {ppl_tokens} tokens ...", flush=True)
    ppl = {f"tfformers {form}": perplexity(lambda x, m=model: m(x).logits, ids) for form, model in tf_models.items()}
    ppl.update({name: perplexity(lambda x, m=model: m(torch.as_tensor(x, dtype=torch.long)).logits.detach(), ids)
                for name, model in pt_models.items()})

    sizes = {form: sum(v.numpy().nbytes for v in model.weights) / 1e6 for form, model in tf_models.items()}
    print(f"\nSmolLM2 perplexity, {len(ids)} BBC articles x {ppl_tokens} tokens: "
          + ", ".join(f"{name} {value:.3f}" for name, value in ppl.items()), flush=True)
    print("SmolLM2 weights held by tfformers: " + ", ".join(f"{form} {mb:.0f} MB" for form, mb in sizes.items()))
    prompt = ids[:1, :32]
    runs = generation_contenders(tf_models, pt_models, prompt, new_tokens, pad_id(pt_models[PT_FLOAT]))
    first_call, outputs = first_calls(runs)
    same = agreement(outputs, f"tfformers {FLOAT}")
    print(f"  {rounds} timed rounds ...", flush=True)
    times = interleaved(runs, rounds)

    print(f"\nGreedy generation, SmolLM2, batch 1, prompt 32 tokens, {new_tokens} new tokens:\n")
    print("| contender | ms / token | vs its float32 | first call s | tokens equal to tfformers float32 |")
    print("|---|---:|---:|---:|---:|")
    for name, seconds in times.items():
        baseline = PT_FLOAT if name.startswith("PyTorch") else f"tfformers {FLOAT}"
        print(f"| {name} | {median(seconds) / new_tokens * 1e3:.1f} | {paired_speedup(times, name, baseline):.2f}x "
              f"| {first_call[name]:.1f} | {same[name]}/{new_tokens} |")
    print("\nms / token: seconds per generate() call (prompt forward included) / new tokens. vs its float32: "
          "median over rounds of the same library's float32 time / this contender's, run back to back.")


if __name__ == "__main__":
    main()
