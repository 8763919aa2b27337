"""Summarization-style generation speed: tfformers' XLA-compiled encoder–decoder generate() against PyTorch
transformers' generate(), side by side in one process.

Both libraries hold the same float32 weights of a random T5-small-sized model (d_model 512, 6 + 6 layers,
8 heads, d_ff 2048, vocabulary 32,128, tied head as T5 v1.0) and run beam search with 4 beams on the same
sources (256 tokens), generating exactly 64 new tokens (the model has no EOS, so no beam ends early), at
batch 1 and batch 8. Contenders:

- tfformers: `generate()`, one XLA program per shape (its first call traces and compiles);
- PyTorch: `generate()` as it comes (eager, DynamicCache, SDPA attention), threads pinned to TensorFlow's.

Every contender's first call (warm-up, compilation) is timed apart; timed calls are interleaved across
contenders (see common.py); figures are medians, and the speed-up is the median of paired ratios.

    .venv/bin/python benchmarks/bench_seq2seq.py            # the figures in docs/benchmarks.md
    .venv/bin/python benchmarks/bench_seq2seq.py --quick    # smoke test: 8 new tokens, 1 round
"""

import argparse

import numpy as np  # noqa: I001  (after common, which sets the Keras backend and TF's log level)
from common import first_calls, interleaved, median, paired_speedup, pin_torch_threads, random_checkpoint, start

TFFORMERS, PYTORCH = "tfformers XLA", "PyTorch"
TARGET = 1.5


def t5_small_dir():
    """A random T5-small-sized checkpoint (safetensors), made once under benchmarks/.cache."""
    def build():
        import transformers

        config = transformers.T5Config(
            vocab_size=32128, d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_heads=8,
            feed_forward_proj="relu", tie_word_embeddings=True, pad_token_id=0, eos_token_id=None,
            decoder_start_token_id=0,
        )
        return transformers.T5ForConditionalGeneration(config)

    return random_checkpoint("t5-small-random", build)


def load(folder):
    import transformers

    import tfformers

    return (tfformers.TFAutoModelForSeq2SeqLM.from_pretrained(folder),
            transformers.T5ForConditionalGeneration.from_pretrained(folder).eval())


def contenders(tf_model, pt_model, sources, new_tokens, num_beams):
    """{name: function returning the generated sequences [batch, 1 + new_tokens] as numpy}."""
    import torch

    options = {"max_new_tokens": new_tokens, "num_beams": num_beams, "do_sample": False, "eos_token_id": None}
    mask = np.ones_like(sources)
    pt_sources, pt_mask = torch.as_tensor(sources), torch.as_tensor(mask)

    def run_tfformers():
        return np.asarray(tf_model.generate(sources, attention_mask=mask, **options))

    def run_pytorch():
        with torch.inference_mode():
            return pt_model.generate(pt_sources, attention_mask=pt_mask, **options).numpy()

    return {TFFORMERS: run_tfformers, PYTORCH: run_pytorch}


def bench_batch(tf_model, pt_model, batch, source_length, new_tokens, num_beams, rounds, seed=0):
    vocab_size = pt_model.config.vocab_size
    sources = np.random.default_rng(seed).integers(2, vocab_size, size=(batch, source_length))
    runs = contenders(tf_model, pt_model, sources, new_tokens, num_beams)
    first_call, outputs = first_calls(runs)
    for name, tokens in outputs.items():
        if tokens.shape != (batch, 1 + new_tokens):
            raise RuntimeError(f"{name} returned sequences of shape {tokens.shape}, not {(batch, 1 + new_tokens)}")
    identical = np.array_equal(outputs[TFFORMERS], outputs[PYTORCH])
    print(f"  {rounds} timed rounds ...", flush=True)
    times = interleaved(runs, rounds)
    return {
        "seconds": {name: median(value) for name, value in times.items()},
        "speedup": paired_speedup(times, TFFORMERS, PYTORCH),
        "first_call": first_call,
        "identical": identical,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 new tokens, one round (a smoke test)")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--source-length", type=int, default=256)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--num-beams", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    start("t5-small", parser, {"t5-small": t5_small_dir})
    threads = pin_torch_threads()
    new_tokens = 8 if args.quick else args.new_tokens
    rounds = 1 if args.quick else args.rounds
    tf_model, pt_model = load(t5_small_dir())
    print(f"T5-small-sized random, beam {args.num_beams}, source {args.source_length} tokens, {new_tokens} new "
          f"tokens, PyTorch threads {threads}")
    for batch in [int(b) for b in args.batches.split(",")]:
        print(f"batch {batch}:", flush=True)
        result = bench_batch(tf_model, pt_model, batch, args.source_length, new_tokens, args.num_beams, rounds)
        seconds = result["seconds"]
        print(f"  tfformers {seconds[TFFORMERS]:.3f} s, PyTorch {seconds[PYTORCH]:.3f} s per generate; "
              f"speed-up {result['speedup']:.2f}x (target {TARGET}x); first calls "
              + ", ".join(f"{name} {value:.1f} s" for name, value in result["first_call"].items())
              + f"; tokens identical: {result['identical']}", flush=True)


if __name__ == "__main__":
    main()
