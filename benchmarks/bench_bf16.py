"""bfloat16 against float32, tfformers (XLA) against PyTorch transformers in the same precision.

Three sections, every contender timed interleaved with the others (see common.py), figures are medians:

- matmul: one MiniLM feed-forward product ([batch * seq, 384] x [384, 1536]), one GPT-2 decoding-step
  product ([1, 768] x [768, 3072]) and a 2048² product (the float32 ceiling) in float32 and bfloat16, XLA
  against `torch.nn.functional.linear`: what each library's bfloat16 kernels reach on this CPU;
- inference: MiniLM forward of a padded batch, tfformers `from_pretrained(dtype=...)` under
  `tf.function(jit_compile=True)` (and, in bfloat16, without XLA) against PyTorch with the model in
  bfloat16 (`dtype=torch.bfloat16`) and with the float32 model under `torch.autocast("cpu",
  dtype=torch.bfloat16)`; "vs PyTorch bf16" compares with the faster of those two, "vs PyTorch fp32" with
  PyTorch in float32;
- generation: greedy decoding on GPT-2 small (random weights), tfformers' compiled `generate()` against
  PyTorch's `generate()`, each in float32 and bfloat16 (`--skip-generation` leaves it out).

    .venv/bin/python benchmarks/bench_bf16.py                # the figures in docs/benchmarks.md
    .venv/bin/python benchmarks/bench_bf16.py --quick        # smoke test
"""

import contextlib

import numpy as np  # noqa: I001  (after common, which sets the Keras backend and TF's log level)
from common import (
    argument_parser,
    forward_flops,
    gpt2_small_dir,
    interleaved,
    make_inputs,
    median,
    minilm_dir,
    paired_speedup,
    pin_torch_threads,
    start,
)

CHECKPOINTS = {"minilm": minilm_dir}
PT_BF16, PT_AUTOCAST = "PyTorch bf16", "PyTorch autocast bf16"

# ------------------------------------------------------------------------------------------------ matmul


def bench_matmul(shapes, rounds):
    """{(label, library, dtype): GFLOP/s} for x [m, k] times a weight [k, n]: a variable the compiled
    function reads, as a Dense layer's kernel (PyTorch: linear with the weight stored [n, k], as nn.Linear
    holds it)."""
    import tensorflow as tf
    import torch

    runs, flops = {}, {}
    for label, (m, k, n) in shapes.items():
        rng = np.random.default_rng(0)
        x, w = rng.standard_normal((m, k), np.float32), rng.standard_normal((k, n), np.float32)
        for dtype in ("float32", "bfloat16"):
            tx, tw = tf.cast(x, dtype), tf.Variable(tf.cast(w, dtype))
            px, pw = (torch.from_numpy(a).to(getattr(torch, dtype)) for a in (x, w.T.copy()))
            product = tf.function(lambda x, tw=tw: tf.matmul(x, tw), jit_compile=True)
            runs[(label, "XLA", dtype)] = lambda tx=tx, product=product: product(tx).numpy()
            runs[(label, "PyTorch", dtype)] = lambda px=px, pw=pw: torch.nn.functional.linear(px, pw)
            flops[(label, "XLA", dtype)] = flops[(label, "PyTorch", dtype)] = 2 * m * k * n
    interleaved(runs, 1)  # compiles, warms up
    times = interleaved(runs, rounds)
    return {key: flops[key] / median(value) / 1e9 for key, value in times.items()}


# --------------------------------------------------------------------------------------------- inference


def bench_inference(folder, batch, seq, rounds):
    import tensorflow as tf
    import torch
    import transformers

    import tfformers

    inputs = make_inputs(30522, batch, seq)
    tf_inputs = {k: tf.constant(v, tf.int32) for k, v in inputs.items()}
    pt_inputs = {k: torch.as_tensor(v) for k, v in inputs.items()}
    runs = {}
    for dtype in ("float32", "bfloat16"):
        model = tfformers.TFAutoModel.from_pretrained(folder, dtype=dtype)
        for compiler, jit_compile in (("XLA", True), ("tf.function", False)):
            if compiler == "tf.function" and dtype == "float32":
                continue  # bench_inference.py times it
            forward = tf.function(lambda x, model=model: model(x, training=False).last_hidden_state,
                                  jit_compile=jit_compile)
            runs[f"tfformers {compiler} {dtype}"] = lambda forward=forward: tf.cast(forward(tf_inputs),
                                                                                   tf.float32).numpy()
    pt_fp32 = transformers.AutoModel.from_pretrained(folder).eval()
    pt_bf16 = transformers.AutoModel.from_pretrained(folder, dtype=torch.bfloat16).eval()

    def run_pt(model, autocast=False):
        precision = torch.autocast("cpu", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
        with torch.inference_mode(), precision:
            return model(**pt_inputs).last_hidden_state.float().numpy()

    runs["PyTorch fp32"] = lambda: run_pt(pt_fp32)
    runs[PT_BF16] = lambda: run_pt(pt_bf16)
    runs[PT_AUTOCAST] = lambda: run_pt(pt_fp32, autocast=True)

    # first calls (XLA compiles) and each contender's largest difference from PyTorch float32, over real tokens
    real = inputs["attention_mask"].astype(bool)
    outputs = {name: run() for name, run in runs.items()}
    scale = np.abs(outputs["PyTorch fp32"][real]).max()
    difference = {name: float(np.abs(out - outputs["PyTorch fp32"])[real].max() / scale)
                  for name, out in outputs.items()}
    interleaved(runs, 1)
    times = interleaved(runs, rounds)
    seconds = {name: median(value) for name, value in times.items()}
    best_bf16 = min((PT_BF16, PT_AUTOCAST), key=seconds.get)
    return {
        "seconds": seconds,
        "gflops": {name: forward_flops(pt_fp32.config, batch, seq) / value / 1e9 for name, value in seconds.items()},
        "vs_pt_bf16": {name: paired_speedup(times, name, best_bf16) for name in times},
        "vs_pt_fp32": {name: paired_speedup(times, name, "PyTorch fp32") for name in times},
        "best_bf16": best_bf16,
        "difference": difference,
    }


# -------------------------------------------------------------------------------------------- generation


def bench_generation(folder, prompt_length, new_tokens, rounds):
    """Milliseconds per generated token (the whole greedy call over new_tokens), batch 1."""
    import torch
    import transformers

    import tfformers

    prompt = np.random.default_rng(0).integers(0, 50257, size=(1, prompt_length))
    mask = np.ones_like(prompt)
    options = {"max_new_tokens": new_tokens, "min_new_tokens": new_tokens, "do_sample": False, "pad_token_id": 0}
    runs = {}
    for dtype in ("float32", "bfloat16"):
        tf_model = tfformers.TFAutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
        runs[f"tfformers XLA {dtype}"] = lambda m=tf_model: np.asarray(m.generate(prompt, attention_mask=mask,
                                                                                  **options))
        pt_model = transformers.GPT2LMHeadModel.from_pretrained(folder, dtype=getattr(torch, dtype)).eval()

        def run_pt(m=pt_model):
            with torch.inference_mode():
                return m.generate(torch.as_tensor(prompt), attention_mask=torch.as_tensor(mask), **options).numpy()

        runs[f"PyTorch {dtype}"] = run_pt
    interleaved(runs, 1)  # XLA compiles
    times = interleaved(runs, rounds)
    return {name: median(value) / new_tokens for name, value in times.items()}, {
        name: paired_speedup(times, name, "PyTorch bfloat16") for name in times}


# ------------------------------------------------------------------------------------------------ printing


def print_matmul(rates, shapes):
    print("\n### Matrix product rates, GFLOP/s (median)\n")
    print("| product | XLA fp32 | XLA bf16 | PyTorch fp32 | PyTorch bf16 |")
    print("|---|---:|---:|---:|---:|")
    for label, (m, k, n) in shapes.items():
        cells = " | ".join(f"{rates[(label, library, dtype)]:.1f}"
                           for library in ("XLA", "PyTorch") for dtype in ("float32", "bfloat16"))
        print(f"| {label}: [{m}, {k}] x [{k}, {n}] | {cells} |")


def print_inference(result, batch, seq, ceiling):
    print(f"\n### MiniLM forward, batch {batch} x sequence {seq}, padded (median)\n")
    print("| contender | ms / batch | GFLOP/s | share of fp32 ceiling | vs PyTorch bf16 | vs PyTorch fp32 "
          "| max rel. diff vs PyTorch fp32 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, seconds in result["seconds"].items():
        gflops = result["gflops"][name]
        print(f"| {name} | {seconds * 1e3:.0f} | {gflops:.0f} | {gflops / ceiling:.0%} "
              f"| {result['vs_pt_bf16'][name]:.2f}x | {result['vs_pt_fp32'][name]:.2f}x "
              f"| {result['difference'][name]:.1e} |")
    print(f"\nvs PyTorch bf16: paired median against the faster PyTorch bfloat16 setting ({result['best_bf16']}). "
          f"fp32 ceiling: the 2048² XLA float32 product above ({ceiling:.0f} GFLOP/s). max rel. diff: largest "
          "|difference| over the real tokens / largest |value| of PyTorch's float32 output.")


def print_generation(per_token, speedup, prompt_length, new_tokens):
    print(f"\n### GPT-2 small greedy generation, batch 1, {prompt_length} prompt + {new_tokens} new tokens (median)\n")
    print("| contender | ms / new token | vs PyTorch bf16 |")
    print("|---|---:|---:|")
    for name, seconds in per_token.items():
        print(f"| {name} | {seconds * 1e3:.1f} | {speedup[name]:.2f}x |")


def main(argv=None):
    parser = argument_parser(__doc__.split("\n\n")[0], batch=32)
    parser.set_defaults(models="minilm")
    parser.add_argument("--rounds", type=int, help="timed repetitions per contender (default 5, quick 1)")
    parser.add_argument("--generation-rounds", type=int, help="timed generate() calls per contender (default 3, "
                        "quick 1): PyTorch's bfloat16 decoding takes seconds per token on CPUs without AVX512-BF16")
    parser.add_argument("--new-tokens", type=int, default=8)
    parser.add_argument("--skip-inference", action="store_true")
    parser.add_argument("--skip-generation", action="store_true")
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 5)
    generation_rounds = args.generation_rounds or (1 if args.quick else 3)
    folders = start(args.models, parser, CHECKPOINTS)
    print(f"PyTorch threads: {pin_torch_threads()} (as TensorFlow's intra-op pool)", flush=True)

    shapes = {"MiniLM feed-forward": (args.batch * args.seq, 384, 1536), "GPT-2 decoding step": (1, 768, 3072),
              "ceiling": (2048, 2048, 2048)}
    print("matrix products ...", flush=True)
    rates = bench_matmul(shapes, rounds)
    print_matmul(rates, shapes)

    if not args.skip_inference:
        print(f"\nMiniLM forward x {rounds} rounds ...", flush=True)
        result = bench_inference(folders["minilm"], args.batch, args.seq, rounds)
        print_inference(result, args.batch, args.seq, rates[("ceiling", "XLA", "float32")])

    if not args.skip_generation:
        print(f"\nGPT-2 small generation x {generation_rounds} rounds ...", flush=True)
        per_token, speedup = bench_generation(gpt2_small_dir(), 32, args.new_tokens, generation_rounds)
        print_generation(per_token, speedup, 32, args.new_tokens)


if __name__ == "__main__":
    main()
