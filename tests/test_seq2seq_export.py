"""Text-to-text deployment: a T5 (SentencePiece unigram vocabulary) and a BART (byte-level BPE) exported with
`tfformers export`, strings in, generated strings out.

Each tiny random model is built in PyTorch (the oracle), saved with its tokenizer's files and loaded by
tfformers. The artifacts run in a fresh process where tfformers, transformers and torch cannot be imported and
must answer exactly the texts that PyTorch's `generate` and the tokenizer's `batch_decode(skip_special_tokens=
True)` give for the same options: T5 with its "summarize: " prefix and beam search, BART greedy with an early
end-of-sequence token (rows stop at different steps, the rest is padding). `tfformers serve` answers a REST
predict with the same texts, and a bad request with a 400 while it keeps serving.
"""

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request

import numpy as np
import pytest
from assets import bbc_titles
from oracle import torch_model
from seq2seq_vocabularies import bart_vocabulary, t5_vocabulary
from transformers import AutoTokenizer, BartConfig, T5Config

import tfformers
from tfformers.cli import main as cli
from tfformers.serving import ModelServer

MAX_SOURCE_LENGTH = 24  # tokens; longer texts are truncated (end-of-sequence token kept)
NEW_TOKENS = 8
TEXTS = bbc_titles(2) + ["A much longer text about football " + "and the Premier League " * 10]  # 3 rows
T5_PREFIX = "summarize: "
T5_GENERATION = dict(num_beams=2, no_repeat_ngram_size=2)  # the first in the export, the second in its config


def t5_config(vocab_size):
    return T5Config(
        vocab_size=vocab_size, d_model=24, d_kv=8, d_ff=37, num_layers=2, num_decoder_layers=2, num_heads=3,
        relative_attention_num_buckets=8, relative_attention_max_distance=12, dropout_rate=0.0,
        feed_forward_proj="gated-gelu", tie_word_embeddings=False, pad_token_id=0, eos_token_id=1,
        decoder_start_token_id=0,
    )


def bart_config(vocab_size):
    return BartConfig(
        vocab_size=vocab_size, d_model=24, encoder_layers=2, decoder_layers=3, encoder_attention_heads=3,
        decoder_attention_heads=3, encoder_ffn_dim=37, decoder_ffn_dim=37, max_position_embeddings=64,
        dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, pad_token_id=1, bos_token_id=0,
        eos_token_id=2, decoder_start_token_id=2, forced_eos_token_id=2,
        init_std=0.3,  # transformers' 0.02 makes a tiny random BART answer </s> at once
    )


def checkpoint(folder, head, config, vocabulary, **generation_config):
    """A PyTorch model saved with the vocabulary's files beside it (and `generation_config` settings in its
    generation_config.json); returns (PyTorch model, tokenizer)."""
    pt = torch_model(head, config)
    for name, value in generation_config.items():
        setattr(pt.generation_config, name, value)
    pt.save_pretrained(folder)
    for path in vocabulary.iterdir():
        shutil.copy(path, folder / path.name)
    return pt, AutoTokenizer.from_pretrained(folder)


def python_texts(pt, tokenizer, texts, prefix="", **options):
    """(sequences, texts): PyTorch's generate on the tokenized sources and batch_decode(skip_special_tokens)."""
    import torch

    inputs = tokenizer([prefix + text for text in texts], truncation=True, max_length=MAX_SOURCE_LENGTH,
                       padding=True, return_tensors="pt")
    with torch.no_grad():
        sequences = pt.generate(**inputs, max_new_tokens=NEW_TOKENS, **options).numpy()
    return sequences, tokenizer.batch_decode(sequences, skip_special_tokens=True)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Both models exported to BASE/t5/1 and BASE/bart/1, with what PyTorch answers for TEXTS."""
    base = tmp_path_factory.mktemp("serving")
    folders = {name: tmp_path_factory.mktemp(name) for name in ("t5", "bart")}
    vocabularies = {"t5": t5_vocabulary(tmp_path_factory), "bart": bart_vocabulary(tmp_path_factory)}
    sizes = {name: len(AutoTokenizer.from_pretrained(folder)) for name, folder in vocabularies.items()}
    t5, t5_tokenizer = checkpoint(folders["t5"], "T5ForConditionalGeneration", t5_config(sizes["t5"]),
                                  vocabularies["t5"], no_repeat_ngram_size=T5_GENERATION["no_repeat_ngram_size"])
    bart, bart_tokenizer = checkpoint(folders["bart"], "BartForConditionalGeneration", bart_config(sizes["bart"]),
                                      vocabularies["bart"])
    # BART's end: a token greedy decoding emits at step 3 of the first row, so the rows stop at different steps
    greedy, _ = python_texts(bart, bart_tokenizer, TEXTS, do_sample=False)
    bart_options = dict(do_sample=False, eos_token_id=int(greedy[0, 3]))

    # T5 from the command line, under the "summarization" task name
    status = cli(["export", "--model", str(folders["t5"]), "--output", str(base / "t5"), "--task", "summarization",
                  "--prefix", T5_PREFIX, "--num-beams", str(T5_GENERATION["num_beams"]), "--max-length",
                  str(MAX_SOURCE_LENGTH), "--max-new-tokens", str(NEW_TOKENS), "-q"])
    assert status == 0
    model = tfformers.TFAutoModelForSeq2SeqLM.from_pretrained(folders["bart"])
    tfformers.export(model, base / "bart", max_source_length=MAX_SOURCE_LENGTH, max_new_tokens=NEW_TOKENS,
                     generation_batch_size=2, **bart_options)
    expected = {
        "t5": python_texts(t5, t5_tokenizer, TEXTS, prefix=T5_PREFIX, **T5_GENERATION),
        "bart": python_texts(bart, bart_tokenizer, TEXTS, **bart_options),
    }
    ids = bart_tokenizer(TEXTS, truncation=True, max_length=MAX_SOURCE_LENGTH, padding="max_length",
                         return_tensors="np")
    return base, expected, {name: ids[name].astype(np.int32).tolist() for name in ("input_ids", "attention_mask")}


FRESH_PROCESS = r"""
import json, sys

class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tfformers", "transformers", "torch", "tokenizers", "sentencepiece"):
            raise ImportError(f"{name} is blocked in this process")

sys.meta_path.insert(0, Blocked())
import tensorflow as tf
import tensorflow_text  # registers the tokenizer ops

base, texts = sys.argv[1], json.loads(sys.argv[2])
results = {}
for name in ("t5", "bart"):
    outputs = tf.saved_model.load(f"{base}/{name}/1").signatures["serving_default"](text=tf.constant(texts))
    results[name] = {"sequences": outputs["sequences"].numpy().tolist(),
                     "generated_text": [t.decode() for t in outputs["generated_text"].numpy()]}
print(json.dumps(results))
"""


def assert_same_sequences(served, expected, pad_token_id):
    """The served sequences [b, 1 + NEW_TOKENS] begin with PyTorch's; what follows is padding."""
    served = np.array(served)
    assert served.shape == (len(expected), 1 + NEW_TOKENS)
    np.testing.assert_array_equal(served[:, :expected.shape[1]], expected)
    assert (served[:, expected.shape[1]:] == pad_token_id).all()


def test_artifacts_answer_pytorch_texts_in_a_process_without_tfformers(exported):
    """Strings in (serving_default): T5 with its prefix and beams, BART with rows that end early."""
    base, expected, _ = exported
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    run = subprocess.run([sys.executable, "-c", FRESH_PROCESS, str(base), json.dumps(TEXTS)],
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    fresh = json.loads(run.stdout.strip().splitlines()[-1])
    for name, pad_token_id in (("t5", 0), ("bart", 1)):
        sequences, texts = expected[name]
        assert fresh[name]["generated_text"] == texts, name
        assert_same_sequences(fresh[name]["sequences"], sequences, pad_token_id)
    assert any(row[-1] == 1 for row in expected["bart"][0].tolist()), "no BART row ended early"


def post(server, body, path):
    request = urllib.request.Request(server.url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_served_over_rest_from_ids_and_a_bad_request_gets_400(exported):
    """`tfformers serve`: BART's from_ids signature answers PyTorch's texts; a number where the text goes is
    a 400, and the server goes on answering."""
    base, expected, ids = exported
    sequences, texts = expected["bart"]
    with ModelServer(base, port=0, request_timeout_s=600) as server:
        request = {"signature_name": "from_ids", "inputs": ids}
        status, answer = post(server, request, "/v1/models/bart:predict")
        assert status == 200, answer
        assert answer["outputs"]["generated_text"] == texts
        assert_same_sequences(answer["outputs"]["sequences"], sequences, 1)
        status, answer = post(server, {"instances": [3.5]}, "/v1/models/bart:predict")
        assert status == 400 and "string" in answer["error"], answer
        status, answer = post(server, request, "/v1/models/bart:predict")
        assert status == 200 and answer["outputs"]["generated_text"] == texts
