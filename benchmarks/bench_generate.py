"""Greedy generation speed: tfformers' XLA-compiled generate() against PyTorch transformers' generate().

Both libraries hold the same float32 weights and decode the same prompts greedily: 32 prompt tokens, exactly
128 new ones (`min_new_tokens` bans EOS on both sides), batch 1 and batch 8. Contenders:

- tfformers: `generate()`, one XLA program per shape (its first call traces and compiles);
- PyTorch default: `generate()` as it comes (DynamicCache, eager);
- PyTorch static: `cache_implementation="static"`. transformers 5 compiles the forward for a static cache on
  GPU only (`_valid_auto_compile_criteria`), so on CPU this runs eagerly;
- PyTorch static + torch.compile: the same with compilation forced on CPU (a `CompileConfig` with
  `_compile_all_devices`, inductor, mode "default"): its first call compiles.
  "vs static" compares against the faster of the two static contenders.

Every contender's first call (warm-up, and compilation where there is one) is timed apart. Timed calls
are interleaved across contenders (see common.py); figures are medians. The memory-bandwidth bound is what
a decoder could reach if every step only read all the weights once (tied embeddings counted once; KV cache
and activations not counted), at two bandwidths measured in the same run: a copy's (read + write bytes per
second, STREAM's convention) and a read's (a sum over the array). tfformers' decoding step is also timed
without the prompt's forward pass, to set against it.

    .venv/bin/python benchmarks/bench_generate.py            # the figures in docs/benchmarks.md
    .venv/bin/python benchmarks/bench_generate.py --quick    # smoke test: 16 new tokens, 1 round
    .venv/bin/python benchmarks/bench_generate.py --models smollm2 --batches 1 --no-torch-compile
"""

import argparse
import gc

import numpy as np  # noqa: I001  (after common, which sets the Keras backend and TF's log level)
from common import (
    first_calls,
    gpt2_small_dir,
    interleaved,
    median,
    memory_bandwidth,
    paired_speedup,
    pin_torch_threads,
    smollm2_gguf,
    start,
)

CHECKPOINTS = {"gpt2-small": gpt2_small_dir, "smollm2": smollm2_gguf}
TFFORMERS, DEFAULT, STATIC, STATIC_COMPILED = (
    "tfformers XLA", "PyTorch default", "PyTorch static", "PyTorch static + torch.compile",
)
TARGETS = {"vs_default": 1.5, "vs_static": 1.0, "bound_share": 0.75}


# ------------------------------------------------------------------------------------------------ models


def load_gpt2_small(folder):
    """(tfformers model, PyTorch model) from the same safetensors folder."""
    import transformers

    import tfformers

    return (tfformers.TFAutoModelForCausalLM.from_pretrained(folder),
            transformers.GPT2LMHeadModel.from_pretrained(folder).eval())


def load_smollm2(path):
    """(tfformers model, PyTorch model): tfformers reads the GGUF file itself; PyTorch gets a LlamaForCausalLM
    of the GGUF's config holding the same dequantized float32 tensors (tfformers' GGUFReader)."""
    import torch
    import transformers

    import tfformers
    from tfformers.checkpoint.gguf import GGUFReader, gguf_config

    tf_model = tfformers.TFAutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name)
    config = gguf_config(path)
    pt_model = transformers.LlamaForCausalLM(config).eval()
    reader = GGUFReader(path)
    state = {key: torch.from_numpy(reader.get(key)) for key in reader.keys()}
    missing, unexpected = pt_model.load_state_dict(state, strict=False)
    tied = {"lm_head.weight"} if config.tie_word_embeddings else set()
    if set(missing) != tied or unexpected:
        raise RuntimeError(f"{path}: PyTorch model missing {missing}, unexpected {unexpected} (tied: {tied})")
    pt_model.tie_weights()
    return tf_model, pt_model


LOADERS = {"gpt2-small": load_gpt2_small, "smollm2": load_smollm2}


def weight_bytes(pt_model):
    """Bytes of all parameters, each stored tensor once (PyTorch lists a tied embedding once)."""
    return sum(p.numel() * p.element_size() for p in pt_model.parameters())


# ------------------------------------------------------------------------------------------- contenders


def pad_id(pt_model):
    """The pad id both sides fill with (rows never finish early, so it is never written): the config's
    pad, else its first EOS."""
    config = pt_model.generation_config
    eos = config.eos_token_id
    return config.pad_token_id if config.pad_token_id is not None else (eos[0] if isinstance(eos, list) else eos)


def contenders(tf_model, pt_model, prompts, new_tokens, torch_compile):
    """{name: function returning the generated token ids [batch, new_tokens] as numpy}."""
    import torch
    from transformers import CompileConfig

    options = {"max_new_tokens": new_tokens, "min_new_tokens": new_tokens, "do_sample": False,
               "pad_token_id": pad_id(pt_model)}
    mask = np.ones_like(prompts)
    pt_prompts, pt_mask = torch.as_tensor(prompts), torch.as_tensor(mask)
    prompt_length = prompts.shape[1]

    def run_tfformers():
        return np.asarray(tf_model.generate(prompts, attention_mask=mask, **options))[:, prompt_length:]

    def run_pytorch(**extra):
        with torch.inference_mode():
            out = pt_model.generate(pt_prompts, attention_mask=pt_mask, **options, **extra)
        return out[:, prompt_length:].numpy()

    runs = {
        TFFORMERS: run_tfformers,
        DEFAULT: run_pytorch,
        STATIC: lambda: run_pytorch(cache_implementation="static"),
    }
    if torch_compile:
        compile_config = CompileConfig(mode="default")
        compile_config._compile_all_devices = True  # transformers' switch for compiling on CPU
        runs[STATIC_COMPILED] = lambda: run_pytorch(cache_implementation="static", compile_config=compile_config)
    return runs


def check_outputs(outputs, new_tokens):
    """Every contender generated exactly `new_tokens` per row; returns {name: how its tokens compare with
    PyTorch default's} (reported, not asserted: greedy on random weights may meet near-ties)."""
    for name, tokens in outputs.items():
        if tokens.shape[1] != new_tokens:
            raise RuntimeError(f"{name} generated {tokens.shape[1]} tokens per row, not {new_tokens}")
    reference = outputs[DEFAULT]
    agreement = {}
    for name, tokens in outputs.items():
        differ = np.flatnonzero((tokens != reference).any(axis=1))
        if differ.size == 0:
            agreement[name] = "identical"
        else:
            first = int(np.argmax(tokens[differ[0]] != reference[differ[0]]))
            agreement[name] = f"{differ.size}/{len(tokens)} rows differ (row {differ[0]} from new token {first})"
    return agreement


# -------------------------------------------------------------------------------------------- benchmark


def bench_batch(tf_model, pt_model, batch, prompt_length, new_tokens, rounds, torch_compile, seed=0):
    """Warm-up (first calls; compile times), output check, then interleaved timed rounds."""
    vocab_size = pt_model.config.vocab_size
    prompts = np.random.default_rng(seed).integers(0, vocab_size, size=(batch, prompt_length))
    runs = contenders(tf_model, pt_model, prompts, new_tokens, torch_compile)

    first_call, outputs = first_calls(runs)
    agreement = check_outputs(outputs, new_tokens)

    print(f"  {rounds} timed rounds ...", flush=True)
    times = interleaved(runs, rounds)
    seconds = {name: median(value) for name, value in times.items()}
    static_names = [name for name in (STATIC, STATIC_COMPILED) if name in times]
    best_static = min(static_names, key=seconds.get)
    return {
        "seconds": seconds,
        "tokens_per_s": {name: batch * new_tokens / value for name, value in seconds.items()},
        "vs_default": {name: paired_speedup(times, name, DEFAULT) for name in times},
        "vs_static": {name: paired_speedup(times, name, best_static) for name in times},
        "best_static": best_static,
        # the whole first call (a difference with a timed call goes negative when the load changes between)
        "first_call": first_call,
        "agreement": agreement,
    }


def decode_step_seconds(tf_model, batch, prompt_length, new_tokens, rounds, full_seconds, vocab_size, pad):
    """(tfformers' seconds per decoding step, seconds of a 1-token call): (time for new_tokens - time for 1
    token) / (new_tokens - 1). The loop runs the prompt's forward pass, then one forward per generated
    token, so the 1-token call is the prompt's forward plus one step. Its program is compiled first."""
    prompts = np.random.default_rng(0).integers(0, vocab_size, size=(batch, prompt_length))

    def one_token():
        tf_model.generate(prompts, attention_mask=np.ones_like(prompts), max_new_tokens=1, min_new_tokens=1,
                          do_sample=False, pad_token_id=pad)

    one_token()
    prefill = median(interleaved({"prefill": one_token}, rounds)["prefill"])
    return (full_seconds - prefill) / (new_tokens - 1), prefill


def bench_model(name, path, batches, prompt_length, new_tokens, rounds, torch_compile):
    import torch

    print(f"\nloading {name} ...", flush=True)
    tf_model, pt_model = LOADERS[name](path)
    results = {"weight_bytes": weight_bytes(pt_model), "parameters": sum(p.numel() for p in pt_model.parameters()),
               "batches": {}}
    for batch in batches:
        print(f"{name}, batch {batch}:", flush=True)
        result = bench_batch(tf_model, pt_model, batch, prompt_length, new_tokens, rounds, torch_compile)
        result["step"], result["prefill"] = decode_step_seconds(
            tf_model, batch, prompt_length, new_tokens, rounds, result["seconds"][TFFORMERS],
            pt_model.config.vocab_size, pad_id(pt_model),
        )
        results["batches"][batch] = result
    del tf_model, pt_model
    torch._dynamo.reset()  # drop the compiled graphs that hold the model
    gc.collect()
    return results


# ------------------------------------------------------------------------------------------- printing


def print_table(results, prompt_length, new_tokens):
    print(f"\n### Greedy generation, prompt {prompt_length} tokens, {new_tokens} new tokens, fp32 (median)\n")
    print("| model | batch | contender | tokens/s | ms / token step | vs PyTorch default | vs PyTorch static "
          "| first call s | tokens vs PyTorch default |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---|")
    for name, model in results.items():
        for batch, r in model["batches"].items():
            for key, seconds in r["seconds"].items():
                print(
                    f"| {name} | {batch} | {key} | {r['tokens_per_s'][key]:.1f} | {seconds / new_tokens * 1e3:.1f} "
                    f"| {r['vs_default'][key]:.2f}x | {r['vs_static'][key]:.2f}x "
                    f"| {r['first_call'][key]:.1f} | {r['agreement'][key]} |"
                )
    print(
        "\ntokens/s: batch x new tokens / seconds per generate() call (prompt forward included). ms / token "
        "step: seconds per call / new tokens. vs: median over rounds of the other's time / this contender's, "
        "run back to back; 'PyTorch static' is the faster of its eager and torch.compile runs (named below). "
        "first call s: the warm-up call, with tracing + XLA compilation (tfformers) or torch.compile; excluded "
        "from tokens/s."
    )


def bound_tokens_per_s(model, batch, bandwidth):
    """Tokens/s if each decoding step took only the time to read every weight once at `bandwidth`."""
    return batch * bandwidth / model["weight_bytes"]


def print_bound(results, bandwidths, bandwidth_note):
    print(f"\nMemory bandwidth: copy {bandwidths['copy'] / 1e9:.1f} GB/s (read + write bytes, STREAM's "
          f"convention), read {bandwidths['read'] / 1e9:.1f} GB/s. {bandwidth_note}.")
    print("A decoding step only reads the weights: the copy figure, which also counts the writes, is the "
          "more generous bound; the read figure is what a read-only step could reach.")
    for name, model in results.items():
        print(f"{name}: {model['parameters'] / 1e6:.1f}M parameters, {model['weight_bytes'] / 1e6:.0f} MB of "
              "weights read per decoding step")
        for batch, r in model["batches"].items():
            tokens_per_s = r["tokens_per_s"][TFFORMERS]
            shares = ", ".join(
                f"{kind} bound {bound_tokens_per_s(model, batch, value):.1f} tokens/s "
                f"(step >= {model['weight_bytes'] / value * 1e3:.1f} ms): "
                f"{tokens_per_s / bound_tokens_per_s(model, batch, value):.0%}"
                for kind, value in bandwidths.items()
            )
            print(f"  batch {batch}: tfformers {tokens_per_s:.1f} tokens/s, decoding step {r['step'] * 1e3:.1f} ms, "
                  f"1-token call {r['prefill'] * 1e3:.0f} ms; {shares}; faster PyTorch static: {r['best_static']}")


def print_targets(results, bandwidths):
    print("\nTargets (tfformers XLA):")
    for name, model in results.items():
        for batch, r in model["batches"].items():
            checks = [
                ("vs PyTorch default", r["vs_default"][TFFORMERS], TARGETS["vs_default"]),
                ("vs PyTorch static", r["vs_static"][TFFORMERS], TARGETS["vs_static"]),
            ]
            line = ", ".join(
                f"{label} {value:.2f}x (>= {target}x: {'met' if value >= target else 'missed'})"
                for label, value, target in checks
            )
            print(f"  {name} batch {batch}: {line}")
        if 1 in model["batches"]:
            target = TARGETS["bound_share"]
            for kind, value in bandwidths.items():
                share = model["batches"][1]["tokens_per_s"][TFFORMERS] / bound_tokens_per_s(model, 1, value)
                print(f"  {name} batch 1: {share:.0%} of the {kind}-bandwidth bound (>= {target:.0%}: "
                      f"{'met' if share >= target else 'missed'})")


# ---------------------------------------------------------------------------------------------- main


def measure_bandwidth(threads):
    """{"copy": ..., "read": ...} bytes/s, each the higher of one thread and `threads` threads (one thread
    may not saturate memory), and a note of every figure."""
    measured, notes = {}, []
    for kind in ("copy", "read"):
        figures = {n: memory_bandwidth(kind, threads=n) for n in sorted({1, threads})}
        measured[kind] = max(figures.values())
        notes.append(f"{kind} " + ", ".join(f"{n} thread{'s' if n > 1 else ''} {value / 1e9:.1f}"
                                             for n, value in figures.items()))
    return measured, "512 MB float32 numpy arrays, best of 5 (GB/s): " + "; ".join(notes)


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke test: 16 new tokens, 1 timed round")
    parser.add_argument("--models", default="gpt2-small,smollm2", help="comma-separated: gpt2-small,smollm2")
    parser.add_argument("--batches", default="1,8", help="comma-separated batch sizes")
    parser.add_argument("--prompt-length", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, help="tokens to generate (default 128, quick 16)")
    parser.add_argument("--rounds", type=int, help="timed calls per contender (default 3, quick 1)")
    parser.add_argument("--no-torch-compile", action="store_true",
                        help="leave out PyTorch static + torch.compile (its compilation takes minutes)")
    return parser, parser.parse_args(argv)


def main(argv=None):
    parser, args = parse_arguments(argv)
    new_tokens = args.new_tokens or (16 if args.quick else 128)
    rounds = args.rounds or (1 if args.quick else 3)
    batches = [int(b) for b in args.batches.split(",")]
    if new_tokens < 2:
        parser.error("--new-tokens must be at least 2 (the decoding step is timed apart from the first token)")

    threads = pin_torch_threads()
    paths = start(args.models, parser, CHECKPOINTS)
    bandwidth, bandwidth_note = measure_bandwidth(threads)

    results = {
        name: bench_model(name, path, batches, args.prompt_length, new_tokens, rounds, not args.no_torch_compile)
        for name, path in paths.items()
    }
    print_table(results, args.prompt_length, new_tokens)
    print_bound(results, bandwidth, bandwidth_note)
    print_targets(results, bandwidth)


if __name__ == "__main__":
    main()
