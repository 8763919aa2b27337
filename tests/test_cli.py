"""The `tfformers` command: fine-tune / predict / push, run in-process through `cli.main`, on a tiny random
BERT that uses the real MiniLM tokenizer, with BBC News titles as data and the local Hub server; generate on
the real SmolLM2 GGUF and on a tiny random GPT-2 (every generate call compiles a small XLA program, a few
seconds, so each call here checks several options at once)."""

import contextlib
import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import gguf
import numpy as np
import pytest
from architectures import _bert_config, _gpt2_config
from assets import BBC_CLASSES, bbc_articles, minilm_dir, smollm2_gguf

from tfformers import (
    AutoTokenizer,
    GenerationMixin,
    TFAutoModel,
    TFAutoModelForCausalLM,
    TFAutoModelForSequenceClassification,
    TFPreTrainedModel,
    cli,
)

# 12 titles per class; the tiny model's position table (64) is smaller than the default --max-length (128),
# so fine-tune must cap the length or the position lookup fails.
ROWS = [(text.strip().splitlines()[0].strip(), label) for text, label in bbc_articles(12)]
LABELS = sorted(BBC_CLASSES)


def tiny_config(**overrides):
    # one layer: building and tracing the train step is most of a fine-tune's time here
    return _bert_config(vocab_size=30522, max_position_embeddings=64, num_hidden_layers=1, **overrides)


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(minilm_dir())


@pytest.fixture(scope="module")
def base_model_dir(tmp_path_factory, tokenizer):
    """A headless tiny BERT saved with the MiniLM tokenizer (like a Hub base checkpoint)."""
    folder = tmp_path_factory.mktemp("tiny-base")
    TFAutoModel.from_config(tiny_config()).save_pretrained(folder, tokenizer=tokenizer)
    return folder


@pytest.fixture(scope="module")
def three_label_model_dir(tmp_path_factory, tokenizer):
    """A tiny BERT that already has a 3-label classification head."""
    folder = tmp_path_factory.mktemp("tiny-3-labels")
    model = TFAutoModelForSequenceClassification.from_config(tiny_config(num_labels=3))
    model.save_pretrained(folder, tokenizer=tokenizer)
    return folder


@pytest.fixture(scope="module")
def csv_file(tmp_path_factory):
    return write_rows(tmp_path_factory.mktemp("data") / "titles.csv")


def run(capsys, *argv):
    """(exit status, stdout, stderr) of `tfformers argv...` run in this process."""
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def fine_tune(capsys, model_dir, data, out_dir, *extra):
    return run(capsys, "fine-tune", model_dir, "--dataset", data, "--text-column", "title",
               "--label-column", "topic", "--epochs", 1, "--batch-size", 8, "-o", out_dir, *extra)


def assert_user_error(code, err, *fragments, status=2):
    """Exit status 2 (or `status`) and one line on stderr naming the problem, no traceback."""
    assert code == status
    lines = [line for line in err.splitlines() if line.startswith("tfformers ")]
    assert len(lines) == 1, err
    assert "error:" in lines[0] and "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, base_model_dir, csv_file):
    """fine-tune on the CSV: (output folder, stdout)."""
    out, err = io.StringIO(), io.StringIO()
    folder = tmp_path_factory.mktemp("out") / "classifier"
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["fine-tune", str(base_model_dir), "--dataset", str(csv_file), "--text-column", "title",
                         "--label-column", "topic", "--epochs", "1", "--batch-size", "8", "--test-size", "10",
                         "-o", str(folder)])
    assert code == 0, err.getvalue()
    return folder, out.getvalue()


# ----------------------------------------------------------------------------------------------- help


def test_console_script_runs_help():
    script = Path(sys.executable).parent / "tfformers"
    assert script.exists(), "the tfformers console script is not installed (pip install -e . --no-deps)"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    for command in ("fine-tune", "predict", "generate", "push"):
        assert command in result.stdout


def test_fine_tune_help_lists_options(capsys):
    code, out, _ = run(capsys, "fine-tune", "--help")
    assert code == 0
    for option in ("--dataset", "--text-column", "--label-column", "--epochs", "--batch-size",
                   "--learning-rate", "--output-dir", "--push-to-hub"):
        assert option in out


# ------------------------------------------------------------------------------------- fine-tune, predict


def test_fine_tune_csv_reports_accuracy_and_saves(trained, tokenizer):
    folder, out = trained
    assert "Held-out accuracy:" in out
    accuracy = out.split("Held-out accuracy:")[1].split("%")[0]
    assert 0 <= float(accuracy) <= 100
    assert "/10)" in out  # --test-size 10 rows held out
    for label in LABELS:  # the confusion table has a row per class
        assert any(line.startswith(label) for line in out.splitlines())
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"]
    assert config["id2label"] == {str(i): name for i, name in enumerate(LABELS)}
    assert (folder / "model.safetensors").exists() and (folder / "tokenizer.json").exists()
    # the length used in training (capped at the model's 64 positions) is the saved tokenizer's limit
    assert json.loads((folder / "tokenizer_config.json").read_text())["model_max_length"] == 64


def test_fine_tune_trains_the_weights(trained, base_model_dir):
    folder, _ = trained
    before = TFAutoModel.from_pretrained(base_model_dir)
    after = TFAutoModelForSequenceClassification.from_pretrained(folder)
    kernel = "encoder.layer.0.attention.self.query.weight"
    b = before.checkpoint_parameters()[kernel].to_numpy()
    a = after.checkpoint_parameters()["bert." + kernel].to_numpy()
    assert not np.allclose(a, b)


def test_predict_gives_labels_from_the_label_set(trained, capsys):
    folder, _ = trained
    texts = ["Shares in the bank fell sharply after profits dropped", "Striker scores twice in cup win"]
    code, out, err = run(capsys, "predict", "--model", folder, *texts, "--json")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["text"] for r in rows] == texts
    for row in rows:
        assert row["label"] in LABELS
        assert 1 / len(LABELS) <= row["score"] <= 1


def test_predict_matches_the_model_and_reads_a_file(trained, capsys, tmp_path, tokenizer):
    folder, _ = trained
    texts = [title for title, _ in ROWS[:3]]
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n\n", encoding="utf-8")
    code, out, err = run(capsys, "predict", folder, "--input", tmp_path / "in.txt")
    assert code == 0, err
    lines = [line.split("\t") for line in out.splitlines()]
    assert [line[2] for line in lines] == texts
    model = TFAutoModelForSequenceClassification.from_pretrained(folder)
    logits = model(tokenizer(texts, padding=True, return_tensors="np")).logits
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    assert [line[0] for line in lines] == [LABELS[i] for i in probs.argmax(-1)]
    np.testing.assert_allclose([float(line[1]) for line in lines], probs.max(-1), atol=2e-3)


def write_rows(path, rows=ROWS):
    """`rows` as a CSV, TSV, JSON (array or lines) or Parquet file with columns title and topic."""
    import datasets

    records = [{"title": title, "topic": label} for title, label in rows]
    kind = path.suffix
    if kind in (".csv", ".tsv"):
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, delimiter="," if kind == ".csv" else "\t")
            writer.writerows([("title", "topic"), *rows])
    elif kind == ".json":
        path.write_text(json.dumps(records), encoding="utf-8")
    elif kind == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    else:
        datasets.Dataset.from_list(records).to_parquet(str(path))
    return path


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".json", ".jsonl", ".parquet"])
def test_local_file_formats(suffix, tmp_path):
    data = cli.load_data(str(write_rows(tmp_path / f"data{suffix}")))
    assert list(data) == ["train"]
    assert list(data["train"]["title"]) == [t for t, _ in ROWS]
    assert list(data["train"]["topic"]) == [label for _, label in ROWS]


def test_fine_tune_json_lines_replacing_a_head(capsys, tmp_path, three_label_model_dir):
    """JSON Lines data with 5 string labels on a checkpoint with a 3-label head: --ignore-mismatched-sizes
    replaces the head."""
    path = write_rows(tmp_path / "data.jsonl")
    code, out, err = fine_tune(capsys, three_label_model_dir, path, tmp_path / "out", "--test-size", 0,
                               "--ignore-mismatched-sizes")
    assert code == 0, err
    assert "Held-out accuracy" not in out  # --test-size 0: no evaluation
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert list(config["id2label"].values()) == LABELS
    code, out, err = run(capsys, "predict", tmp_path / "out", "Parliament votes on the new bill", "--json")
    assert code == 0, err
    assert json.loads(out)["label"] in LABELS


# ------------------------------------------------------------------------------------------------ errors


def test_missing_text_column(capsys, base_model_dir, csv_file, tmp_path):
    code, _, err = run(capsys, "fine-tune", base_model_dir, "--dataset", csv_file, "--label-column", "topic",
                       "-o", tmp_path / "out")
    assert_user_error(code, err, "no column 'text'", "--text-column", "['title', 'topic']")
    assert not (tmp_path / "out").exists()


def test_missing_label_column(capsys, base_model_dir, csv_file, tmp_path):
    code, _, err = run(capsys, "fine-tune", base_model_dir, "--dataset", csv_file, "--text-column", "title",
                       "--label-column", "category", "-o", tmp_path / "out")
    assert_user_error(code, err, "no column 'category'", "--label-column")


def test_missing_data_file(capsys, base_model_dir, tmp_path):
    # also the spelling with options only: --model and --train-file (= MODEL and --dataset)
    code, _, err = run(capsys, "fine-tune", "--model", base_model_dir, "--train-file", tmp_path / "nope.csv",
                       "--output-dir", tmp_path / "out")
    assert_user_error(code, err, "no such file", "nope.csv")


def test_unknown_model_path(capsys, csv_file, tmp_path):
    code, _, err = fine_tune(capsys, tmp_path / "no-such-model", csv_file, tmp_path / "out")
    assert_user_error(code, err, "no-such-model", "not a local folder")


def test_unknown_hub_model(capsys, csv_file, tmp_path, hub_repo_id):
    code, _, err = fine_tune(capsys, hub_repo_id, csv_file, tmp_path / "out")
    assert_user_error(code, err, hub_repo_id, "no repository")


def test_labels_not_matching_the_models_head(capsys, three_label_model_dir, csv_file, tmp_path):
    code, _, err = fine_tune(capsys, three_label_model_dir, csv_file, tmp_path / "out")
    assert_user_error(code, err, "3 labels", "5 classes", "--ignore-mismatched-sizes")


def test_num_labels_option_must_match(capsys, base_model_dir, csv_file, tmp_path):
    code, _, err = fine_tune(capsys, base_model_dir, csv_file, tmp_path / "out", "--num-labels", 4)
    assert_user_error(code, err, "num_labels is 4", "5 classes")


def test_predict_needs_a_classification_head(capsys, base_model_dir):
    code, _, err = run(capsys, "predict", base_model_dir, "some text")
    assert_user_error(code, err, "no text-classification head", "fine-tune it first")


def test_bad_number_is_an_argparse_error(capsys, base_model_dir, csv_file, tmp_path):
    code, _, err = fine_tune(capsys, base_model_dir, csv_file, tmp_path / "out", "--learning-rate", "-1")
    assert code == 2 and "--learning-rate" in err and "Traceback" not in err


def test_push_needs_a_saved_model(capsys, tmp_path, hub_repo_id):
    code, _, err = run(capsys, "push", tmp_path / "missing", hub_repo_id)
    assert_user_error(code, err, "no such folder")
    code, _, err = run(capsys, "push", tmp_path, hub_repo_id)
    assert_user_error(code, err, "no config.json")


# ------------------------------------------------------------------------------------------------- Hub


def _same_weights(a, b):
    pa, pb = a.checkpoint_parameters(), b.checkpoint_parameters()
    assert pa.keys() == pb.keys()
    for key in pa:
        np.testing.assert_array_equal(pa[key].to_numpy(), pb[key].to_numpy(), err_msg=key)


def test_push_uploads_a_loadable_model(trained, capsys, hub, hub_repo_id):
    folder, _ = trained
    code, out, err = run(capsys, "push", folder, hub_repo_id, "--commit-message", "my classifier")
    assert code == 0, err
    assert hub_repo_id in out
    assert hub.commits(hub_repo_id)[0].title == "my classifier"
    assert "README.md" in hub.files(hub_repo_id)  # a model card is added (the folder has none)
    assert not (folder / "README.md").exists()
    pulled = TFAutoModelForSequenceClassification.from_pretrained(hub_repo_id)
    assert pulled.config.id2label == dict(enumerate(LABELS))
    _same_weights(pulled, TFAutoModelForSequenceClassification.from_pretrained(folder))


def test_fine_tune_from_a_hub_dataset_and_push_to_hub(capsys, hub, tmp_path, base_model_dir, hub_repo_id):
    """--dataset as a Hub dataset id (Parquet train/test splits, 1-based integer labels; --eval-split test),
    then --push-to-hub: the pushed repo loads, and its labels are the integer values."""
    numbered = [(title, LABELS.index(label) + 1) for title, label in ROWS]
    files = {}
    for split, rows in (("train", numbered[10:]), ("test", numbered[:10])):
        files[f"{split}.parquet"] = write_rows(tmp_path / f"{split}.parquet", rows).read_bytes()
    dataset_id = hub_repo_id + "-data"
    hub.create_repo_with_files(dataset_id, files, repo_type="dataset")
    code, out, err = fine_tune(capsys, base_model_dir, dataset_id, tmp_path / "out", "--eval-split", "test",
                               "--push-to-hub", hub_repo_id)
    assert code == 0, err
    assert f"Trained on {len(ROWS) - 10} examples" in out and "/10)" in out
    assert f"Pushed to {hub_repo_id}" in out
    card = hub.files(hub_repo_id)["README.md"].decode()
    assert "Accuracy on the 'test' split (10 examples)" in card and dataset_id in card
    pulled = TFAutoModelForSequenceClassification.from_pretrained(hub_repo_id)
    assert pulled.config.id2label == {i: str(i + 1) for i in range(5)}
    _same_weights(pulled, TFAutoModelForSequenceClassification.from_pretrained(tmp_path / "out"))
    assert AutoTokenizer.from_pretrained(hub_repo_id)("A title")["input_ids"][0] == 101
    code, out, err = run(capsys, "predict", hub_repo_id, "Oil prices climb", "--json")
    assert code == 0, err
    assert json.loads(out)["label"] in {"1", "2", "3", "4", "5"}


def test_unknown_hub_dataset_and_split(capsys, hub, base_model_dir, tmp_path, hub_repo_id):
    code, _, err = fine_tune(capsys, base_model_dir, hub_repo_id, tmp_path / "out")
    assert_user_error(code, err, hub_repo_id, "no dataset")
    hub.create_repo_with_files(hub_repo_id, {"train.csv": b"title,topic\na,b\n"}, repo_type="dataset")
    code, _, err = fine_tune(capsys, base_model_dir, hub_repo_id, tmp_path / "out", "--eval-split", "validation")
    assert_user_error(code, err, "no split 'validation'", "['train']")


# ------------------------------------------------------------------------------- the recipe's label rules


def test_label_mapping_rules():
    from tfformers.errors import InputError
    from tfformers.finetune import resolve_labels

    strings = resolve_labels(["tech", "sports", "tech", "business"])
    assert strings.names == ("business", "sports", "tech") and strings.encode("tech") == 2
    ints = resolve_labels([3, 1, 2.0, 3])  # values kept, sorted: 1-based or sparse ids work
    assert ints.names == ("1", "2", "3") and ints.encode(1) == 0 and ints.encode(3.0) == 2
    named = resolve_labels([0, 2], class_names=["neg", "neutral", "pos"])  # a ClassLabel column
    assert named.names == ("neg", "neutral", "pos") and named.encode(2) == 2
    head = {0: "neg", 1: "pos"}
    assert resolve_labels(["pos"], head=head).encode("pos") == 1  # a subset of a named head's labels
    assert resolve_labels([1, 0], head={0: "LABEL_0", 1: "LABEL_1"}).encode(1) == 1
    assert resolve_labels(["b", "a"], head={0: "LABEL_0", 1: "LABEL_1"}).names == ("a", "b")
    assert resolve_labels([7, 3], head={0: "3", 1: "7"}).encode(7) == 1  # a head trained on integer values
    errors = [
        (dict(values=["a", "b", "c"], head={0: "LABEL_0", 1: "LABEL_1"}), "2 labels"),
        (dict(values=["neg", "meh"], head=head), "'meh'"),
        (dict(values=[0, 5], head={0: "LABEL_0", 1: "LABEL_1"}), "outside that range"),
        (dict(values=[1, "a"]), "mixes"),
        (dict(values=["a", "a"]), "only one class"),
        (dict(values=["a", None]), "null"),
        (dict(values=[0.5, 1]), "not a class"),
        (dict(values=["a", "b"], num_labels=3), "num_labels is 3"),
        (dict(values=[0, 4], class_names=["x", "y"]), "not ids"),
    ]
    for kwargs, fragment in errors:
        with pytest.raises(InputError, match=fragment):
            resolve_labels(**kwargs)


def test_confusion_table():
    from tfformers.finetune import format_confusion

    table = format_confusion(np.array([[3, 1], [0, 2]]), ("business", "tech"))
    lines = table.splitlines()
    assert lines[0].split()[-3:] == ["business", "tech", "recall"]
    assert lines[1].split() == ["business", "3", "1", "75.0%"]
    assert lines[2].split() == ["tech", "0", "2", "100.0%"]


# ---------------------------------------------------------------------------------------------- generate

PROMPTS = ["The weather today is", "Once upon a time, in a small village by the sea"]
# a ChatML-like template for the tiny model's tokenizer (MiniLM's has none)
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


@pytest.fixture(scope="module")
def tiny_lm_dir(tmp_path_factory, tokenizer):
    """A tiny random GPT-2 (one block, 64 positions) saved with the MiniLM tokenizer, given a chat template."""
    folder = tmp_path_factory.mktemp("tiny-gpt2")
    chat_tokenizer = AutoTokenizer.from_pretrained(minilm_dir())
    chat_tokenizer.chat_template = CHAT_TEMPLATE
    config = _gpt2_config(vocab_size=tokenizer.vocab_size, n_layer=1, pad_token_id=tokenizer.pad_token_id,
                          bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id)
    TFAutoModelForCausalLM.from_config(config).save_pretrained(folder, tokenizer=chat_tokenizer)
    return folder


@pytest.fixture
def generate_calls(monkeypatch):
    """The model.generate() calls the command makes (they still run): their arguments and returned ids."""
    calls = []
    generate = GenerationMixin.generate

    def recorded(self, inputs=None, **kwargs):
        sequences = generate(self, inputs, **kwargs)
        calls.append({"input_ids": np.asarray(inputs), **kwargs, "sequences": np.asarray(sequences)})
        return sequences

    monkeypatch.setattr(GenerationMixin, "generate", recorded)
    return calls


def completions_of(call, tokenizer):
    """The generated part of each returned row, decoded as the command must print it."""
    return tokenizer.batch_decode(call["sequences"][:, call["input_ids"].shape[1]:], skip_special_tokens=True)


def progress_lines(err):
    return [line for line in err.splitlines() if line.startswith("generated ")]


def test_generate_help_lists_options(capsys):
    code, out, _ = run(capsys, "generate", "--help")
    assert code == 0
    for option in ("--gguf-file", "--chat", "--system", "--max-new-tokens", "--do-sample", "--temperature",
                   "--top-k", "--top-p", "--min-p", "--seed", "--repetition-penalty", "--num-beams", "--input",
                   "--revision", "--token"):
        assert option in out


def test_generate_smollm2_gguf_chat_answers_paris(capsys):
    """The real checkpoint: greedy decoding of the chat-formatted question names Paris."""
    path = smollm2_gguf()
    code, out, err = run(capsys, "generate", "--model", path.parent, "--gguf-file", path.name, "--chat",
                         "What is the capital of France?", "--max-new-tokens", 16)
    assert code == 0, err
    assert "Paris" in out, out
    [line] = progress_lines(err)
    assert "for 1 prompt in" in line and "tokens/s" in line and "including the XLA compilation" in line, line


def test_generate_greedy_batch_and_top_k_1_sampling(capsys, tmp_path, tiny_lm_dir, generate_calls):
    """Prompts from a file run as one left-padded batch; the printed text is the decoded generated part;
    sampling with top-k 1 gives the greedy text."""
    (tmp_path / "prompts.txt").write_text("\n".join(PROMPTS) + "\n\n", encoding="utf-8")
    code, out, err = run(capsys, "generate", tiny_lm_dir, "--input", tmp_path / "prompts.txt",
                         "--max-new-tokens", 6, "--json")
    assert code == 0, err
    [greedy] = generate_calls
    assert greedy.keys() == {"input_ids", "attention_mask", "max_new_tokens", "sequences"}
    assert greedy["max_new_tokens"] == 6
    tokenizer = AutoTokenizer.from_pretrained(tiny_lm_dir)
    expected = tokenizer(PROMPTS, padding=True, padding_side="left", return_tensors="np")
    np.testing.assert_array_equal(greedy["input_ids"], expected["input_ids"])
    np.testing.assert_array_equal(greedy["attention_mask"], expected["attention_mask"])
    assert greedy["attention_mask"][0, 0] == 0  # the shorter prompt is padded on the left
    rows = [json.loads(line) for line in out.splitlines()]
    assert [row["prompt"] for row in rows] == PROMPTS
    assert [row["completion"] for row in rows] == completions_of(greedy, tokenizer)
    new_ids = greedy["sequences"][:, greedy["input_ids"].shape[1]:]
    for row, ids in zip(rows, new_ids):  # up to and including the first end-of-text token
        ends = list(ids).index(tokenizer.sep_token_id) + 1 if tokenizer.sep_token_id in ids else len(ids)
        assert row["new_tokens"] == ends
    [line] = progress_lines(err)
    assert f"generated {sum(row['new_tokens'] for row in rows)} tokens for 2 prompts in" in line

    code, out, err = run(capsys, "generate", "--model", tiny_lm_dir, *PROMPTS, "--max-new-tokens", 6,
                         "--do-sample", "--top-k", 1, "--seed", 5)
    assert code == 0, err
    sampled = generate_calls[1]
    assert (sampled["do_sample"], sampled["top_k"], sampled["seed"]) == (True, 1, 5)
    np.testing.assert_array_equal(sampled["sequences"], greedy["sequences"])
    assert out == "\n\n".join(row["completion"] for row in rows) + "\n"  # a blank line between completions


def test_generate_sampling_options_and_seed(capsys, tiny_lm_dir, generate_calls):
    """Every sampling option reaches generate(); with --seed, the timed second call of --warmup samples the
    same text as the first, and the compilation is reported apart."""
    code, out, err = run(capsys, "generate", tiny_lm_dir, PROMPTS[0], "--max-new-tokens", 8, "--do-sample",
                         "--temperature", 1.5, "--top-k", 50, "--top-p", 0.9, "--min-p", 0.01,
                         "--repetition-penalty", 1.3, "--seed", 3, "--warmup")
    assert code == 0, err
    first, second = generate_calls
    options = {key: value for key, value in first.items() if key not in ("input_ids", "attention_mask", "sequences")}
    assert options == {"max_new_tokens": 8, "do_sample": True, "temperature": 1.5, "top_k": 50, "top_p": 0.9,
                       "min_p": 0.01, "repetition_penalty": 1.3, "seed": 3}
    np.testing.assert_array_equal(first["sequences"], second["sequences"])
    assert out == completions_of(second, AutoTokenizer.from_pretrained(tiny_lm_dir))[0] + "\n"
    [line] = progress_lines(err)
    assert "tokens for 1 prompt in" in line and "; XLA compilation " in line and "the first, identical call" in line


def test_generate_chat_with_system_message_and_beams(capsys, tiny_lm_dir, generate_calls):
    """--chat formats each prompt with the template, after the --system message."""
    prompts = ["hi", "what time is it?"]
    code, out, err = run(capsys, "generate", tiny_lm_dir, "--chat", "--system", "Answer briefly.", *prompts,
                         "--num-beams", 2, "--max-new-tokens", 4)
    assert code == 0, err
    [call] = generate_calls
    assert call["num_beams"] == 2
    tokenizer = AutoTokenizer.from_pretrained(tiny_lm_dir)
    for prompt, ids, mask in zip(prompts, call["input_ids"], call["attention_mask"]):
        conversation = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": prompt}]
        expected = tokenizer.apply_chat_template(conversation, add_generation_prompt=True)["input_ids"]
        assert list(ids[mask == 1]) == expected
    assert out == "\n\n".join(completions_of(call, tokenizer)) + "\n"
    [line] = progress_lines(err)
    assert "tokens for 2 prompts in" in line and "including the XLA compilation" in line, line


def write_gguf_header(path, architecture):
    """A GGUF file with only an architecture and a block count in its metadata."""
    writer = gguf.GGUFWriter(str(path), architecture)
    writer.add_block_count(1)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_generate_errors_before_loading(capsys, tmp_path, tiny_lm_dir, base_model_dir):
    code, _, err = run(capsys, "generate", "--model", tmp_path / "no-such-model", "hello")
    assert_user_error(code, err, "no-such-model", "not a local folder")
    falcon = write_gguf_header(tmp_path / "falcon.gguf", "falcon")
    code, _, err = run(capsys, "generate", "--model", tmp_path, "--gguf-file", "falcon.gguf", "hello")
    assert_user_error(code, err, "falcon.gguf", "architecture 'falcon'", "Supported GGUF architectures")
    code, _, err = run(capsys, "generate", falcon, "hello")  # MODEL as the .gguf file's path
    assert_user_error(code, err, "falcon.gguf", "architecture 'falcon'")
    code, _, err = run(capsys, "generate", tmp_path, "hello")
    assert_user_error(code, err, "no config.json", "falcon.gguf", "--gguf-file")
    code, _, err = run(capsys, "generate", base_model_dir, "--chat", "hello")
    assert_user_error(code, err, str(base_model_dir), "no chat template", "drop --chat")
    code, _, err = run(capsys, "generate", tiny_lm_dir, "--system", "Be brief.", "hello")
    assert_user_error(code, err, "--system needs --chat")
    code, _, err = run(capsys, "generate", tiny_lm_dir)
    assert_user_error(code, err, "no prompt")
    code, _, err = run(capsys, "generate", tiny_lm_dir, "hello", " ")
    assert_user_error(code, err, "prompt 2 is empty")
    code, _, err = run(capsys, "generate", tiny_lm_dir, "hello", "--top-p", 1.5)
    assert code == 2 and "--top-p" in err and "Traceback" not in err


def test_generate_errors_after_loading(capsys, tiny_lm_dir, base_model_dir, generate_calls):
    """Refused before anything compiles: no causal-LM head, a prompt longer than the positions, sampling
    options with greedy decoding."""
    code, _, err = run(capsys, "generate", base_model_dir, "hello")
    assert_user_error(code, err, str(base_model_dir), "causal language model", "'bert'")
    long_prompt = " ".join(["word"] * 80)  # 82 tokens with [CLS] and [SEP]; the model has 64 positions
    code, _, err = run(capsys, "generate", tiny_lm_dir, long_prompt, "--max-new-tokens", 4)
    assert_user_error(code, err, "82 tokens", "max_position_embeddings=64")
    code, _, err = run(capsys, "generate", tiny_lm_dir, "hello", "--top-k", 5, "--temperature", 0.5)
    assert_user_error(code, err, "--temperature, --top-k", "greedily", "--do-sample")
    assert generate_calls == []  # the long prompt reached generate(), which refused it before compiling


# ------------------------------------------------------------------------------- failures: one line each


@pytest.fixture(scope="module")
def classifier_without_tokenizer(tmp_path_factory):
    """A tiny BERT classifier saved without its tokenizer."""
    folder = tmp_path_factory.mktemp("no-tokenizer")
    TFAutoModelForSequenceClassification.from_config(tiny_config(num_labels=5)).save_pretrained(folder)
    return folder


@pytest.fixture
def training_spy(monkeypatch):
    """The fine_tune calls the command makes (they still run)."""
    from tfformers import finetune

    calls = []
    fine_tune = finetune.fine_tune

    def recorded(*args, **kwargs):
        calls.append(args)
        return fine_tune(*args, **kwargs)

    monkeypatch.setattr(finetune, "fine_tune", recorded)
    return calls


def test_folder_without_tokenizer_files_is_refused(capsys, classifier_without_tokenizer, csv_file, tmp_path,
                                                   training_spy):
    """transformers would build a 5-token tokenizer and turn every word into [UNK]."""
    folder = classifier_without_tokenizer
    code, out, err = run(capsys, "predict", folder, "Shares fell sharply")
    assert_user_error(code, err, str(folder), "no tokenizer files", "tokenizer.json", "vocab.txt")
    assert out == ""
    code, _, err = fine_tune(capsys, folder, csv_file, tmp_path / "out")
    assert_user_error(code, err, str(folder), "no tokenizer files")
    assert training_spy == []


def test_unwritable_output_folder_is_refused_before_training(capsys, base_model_dir, csv_file, tmp_path,
                                                             training_spy):
    taken = tmp_path / "taken"
    taken.write_text("a file where the output folder should be")
    code, _, err = fine_tune(capsys, base_model_dir, csv_file, taken)
    assert_user_error(code, err, "cannot write the output folder", str(taken))
    code, _, err = fine_tune(capsys, base_model_dir, csv_file, taken / "model")
    assert_user_error(code, err, "cannot write the output folder", f"{str(taken)!r} is a file")
    assert training_spy == []
    code, _, err = fine_tune(capsys, base_model_dir, csv_file, tmp_path / "new" / "model", "--label-column", "nope")
    assert_user_error(code, err, "no column 'nope'")
    assert not (tmp_path / "new").exists(), "the writability check leaves no folder behind"


def test_failed_save_keeps_the_trained_model_in_a_fallback_folder(capsys, monkeypatch, base_model_dir, csv_file,
                                                                  tmp_path):
    out_dir = tmp_path / "out"
    save_pretrained = TFPreTrainedModel.save_pretrained

    def disk_full_in_out_dir(self, folder, **kwargs):
        if Path(folder) == out_dir:
            raise OSError(28, "No space left on device", str(folder))
        return save_pretrained(self, folder, **kwargs)

    monkeypatch.setattr(TFPreTrainedModel, "save_pretrained", disk_full_in_out_dir)
    code, out, err = fine_tune(capsys, base_model_dir, csv_file, out_dir, "--test-size", 0)
    [fallback] = tmp_path.glob("out.unsaved-*")
    assert_user_error(code, err, "No space left on device", f"saved to {str(fallback)!r} instead", status=1)
    assert "Trained on" in out and "Saved to" not in out
    monkeypatch.undo()
    model = TFAutoModelForSequenceClassification.from_pretrained(fallback)
    assert model.config.id2label == dict(enumerate(LABELS))
    assert AutoTokenizer.from_pretrained(fallback)("A title")["input_ids"][0] == 101


def test_unexpected_errors_and_interrupts_are_one_line(capsys, monkeypatch, csv_file, tmp_path):
    failures = iter([RuntimeError("an error inside\na library"), PermissionError(13, "Permission denied", "x.csv"),
                     KeyboardInterrupt()])

    def load_data(*args, **kwargs):
        raise next(failures)

    monkeypatch.setattr(cli, "load_data", load_data)
    args = ("fine-tune", "some/model", "--dataset", csv_file, "-o", tmp_path / "out")
    code, _, err = run(capsys, *args)
    assert_user_error(code, err, "RuntimeError: an error inside a library", "--debug", status=1)
    code, _, err = run(capsys, *args)
    assert_user_error(code, err, "Permission denied: 'x.csv'", status=1)
    code, _, err = run(capsys, *args)
    assert_user_error(code, err, "interrupted", status=130)
    monkeypatch.setattr(cli, "load_data", lambda *args, **kwargs: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        run(capsys, *args, "--debug")
    monkeypatch.setenv("TFFORMERS_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        run(capsys, *args)


def test_bad_argument_is_one_line(capsys):
    code, _, err = run(capsys, "fine-tune", "--epochs", "x")
    assert_user_error(code, err, "--epochs", "expected a positive integer", "tfformers fine-tune --help")


def test_console_script_error_is_one_line_on_a_quiet_stderr(tmp_path):
    """The real command in a fresh process: nothing on stderr but the error (no TensorFlow start-up lines)."""
    script = Path(sys.executable).parent / "tfformers"
    environ = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run([str(script), "predict", str(tmp_path / "missing"), "some text"], env=environ,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("tfformers predict: error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "missing" in result.stderr
