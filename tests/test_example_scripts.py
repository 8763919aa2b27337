"""transformers 4.x's official TensorFlow example scripts (vendored in tests/examples_4x/, see its README) run to
the end on tfformers: the training path of each, on a tiny random model saved to a folder and a few examples
written here, 1 epoch (the sequence-to-sequence scripts also their evaluation by generation). Each script runs
in this process (`runpy`, with its own `sys.argv` and the metric scripts' folder as working directory, where
`evaluate.load` finds them); run_glue reads GLUE from the local Hub, run_image_classification an image folder
of PNGs written here.

What is asserted is what the script writes: the saved model loads with the script's TFAuto class, and the
metrics and predictions files hold what the script computes."""

import csv
import io
import json
import logging
import random
import runpy
import sys
from pathlib import Path

import datasets
import nltk
import numpy as np
import pytest
from architectures import _bert_config, _gpt2_config
from assets import bbc_articles, example_module
from nltk.tokenize.punkt import PunktTrainer, save_punkt_params
from PIL import Image
from tokenizers import ByteLevelBPETokenizer, Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import BertTokenizerFast, GPT2TokenizerFast

import tfformers

SCRIPTS = Path(__file__).parent / "examples_4x"
WORDS = ("the a cat dog sat on mat good bad movie film great awful plot actor loved hated it was is very not "
         "red blue").split()
ANIMALS, QUALITIES = {"cat", "dog"}, {"good", "bad", "great", "awful"}


def _sentence(rng, low=3, high=9):
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high)))


def _wordpiece_tokenizer():
    """A BERT tokenizer over WORDS (BertNormalizer, BertPreTokenizer, [CLS] a [SEP] b [SEP])."""
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    tok = Tokenizer(models.WordPiece({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    return BertTokenizerFast(tokenizer_object=tok, model_max_length=32)


def _bpe_tokenizer(texts):
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=300, min_frequency=1, special_tokens=["<|endoftext|>"])
    return GPT2TokenizerFast(tokenizer_object=bpe._tokenizer, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                             unk_token="<|endoftext|>", model_max_length=64)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("examples_4x")


@pytest.fixture(scope="module")
def bert_dir(work):
    """A headless one-layer BERT with the word-level tokenizer: each script adds its head."""
    tokenizer = _wordpiece_tokenizer()
    folder = work / "bert"
    tfformers.TFAutoModel.from_config(_bert_config(vocab_size=len(tokenizer), num_hidden_layers=1)).save_pretrained(
        folder, tokenizer=tokenizer)
    return folder


def run_script(relative, argv, cwd, monkeypatch):
    """Runs a vendored script as `python script argv...` would, in this process."""
    script = SCRIPTS / relative
    monkeypatch.setattr(sys, "argv", [str(script), *map(str, argv)])
    monkeypatch.syspath_prepend(str(script.parent))  # run_qa imports utils_qa from its folder
    monkeypatch.chdir(cwd)
    loggers = {name: (logging.getLogger(name).level, list(logging.getLogger(name).handlers))
               for name in ("tfformers", "transformers", "")}
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:  # the scripts set verbosity and add handlers
        for name, (level, handlers) in loggers.items():
            logging.getLogger(name).setLevel(level)
            logging.getLogger(name).handlers[:] = handlers


def _common(output_dir, model, batch=4):
    return ["--model_name_or_path", model, "--output_dir", output_dir, "--per_device_train_batch_size", batch,
            "--per_device_eval_batch_size", batch, "--num_train_epochs", 1]


def _write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _write_json_lines(path, rows):
    path.write_text("\n".join(json.dumps(row) for row in rows))
    return path


METRICS = SCRIPTS / "metrics"  # evaluate.load("glue" | "squad" | ... | "sacrebleu") finds <name>/<name>.py


def test_run_text_classification(work, bert_dir, monkeypatch):
    rng = random.Random(0)
    rows = [(_sentence(rng), _sentence(rng), rng.choice(["pos", "neg"])) for _ in range(20)]
    header = ["sentence1", "sentence2", "label"]
    train, valid = _write_csv(work / "tc_train.csv", header, rows[:12]), _write_csv(work / "tc_val.csv", header,
                                                                                    rows[12:])
    out = work / "out_text_classification"
    run_script("text-classification/run_text_classification.py",
               [*_common(out, bert_dir), "--train_file", train, "--validation_file", valid, "--test_file", valid,
                "--do_train", "--do_eval", "--do_predict", "--max_seq_length", 16], METRICS, monkeypatch)
    results = json.loads((out / "all_results.json").read_text())
    assert set(results) == {"eval_loss", "eval_accuracy"} and 0 <= results["eval_accuracy"] <= 1
    predictions = (out / "test_results.txt").read_text().splitlines()
    assert predictions[0] == "index\tprediction" and len(predictions) == 1 + 8
    assert {line.split("\t")[1] for line in predictions[1:]} <= {"neg", "pos"}
    model = tfformers.TFAutoModelForSequenceClassification.from_pretrained(out)
    assert model.config.label2id == {"neg": 0, "pos": 1}


def _serve_glue_mrpc(hub, rng):
    """nyu-mll/glue's mrpc configuration on the local Hub: Parquet splits with GLUE's features and the README's
    `configs` that name them (the layout of the real repository)."""
    features = datasets.Features({
        "sentence1": datasets.Value("string"), "sentence2": datasets.Value("string"),
        "label": datasets.ClassLabel(names=["not_equivalent", "equivalent"]), "idx": datasets.Value("int32")})
    files = {}
    for split, count in (("train", 12), ("validation", 6), ("test", 6)):
        rows = {"sentence1": [_sentence(rng) for _ in range(count)],
                "sentence2": [_sentence(rng) for _ in range(count)],
                "label": [rng.randint(0, 1) for _ in range(count)], "idx": list(range(count))}
        buffer = io.BytesIO()
        datasets.Dataset.from_dict(rows, features=features).to_parquet(buffer)
        files[f"mrpc/{split}-00000-of-00001.parquet"] = buffer.getvalue()
    splits = "".join(f"  - split: {split}\n    path: mrpc/{split}-*\n" for split in ("train", "validation", "test"))
    files["README.md"] = f"---\nconfigs:\n- config_name: mrpc\n  data_files:\n{splits}---\n".encode()
    hub.create_repo_with_files("nyu-mll/glue", files, repo_type="dataset")


def test_run_glue_from_the_local_hub(work, bert_dir, hub, monkeypatch):
    _serve_glue_mrpc(hub, random.Random(1))
    out = work / "out_glue"
    out.mkdir()
    run_script("text-classification/run_glue.py",
               [*_common(out, bert_dir), "--task_name", "mrpc", "--do_train", "--do_eval", "--do_predict",
                "--max_seq_length", 16], METRICS, monkeypatch)
    results = json.loads((out / "all_results.json").read_text())
    assert set(results) == {"accuracy", "f1", "combined_score"}
    predictions = (out / "predict_results_mrpc.txt").read_text().splitlines()
    assert len(predictions) == 1 + 6 and {p.split("\t")[1] for p in predictions[1:]} <= {"not_equivalent",
                                                                                          "equivalent"}
    assert tfformers.TFAutoModelForSequenceClassification.from_pretrained(out).config.num_labels == 2


def test_run_mlm_resizes_the_embeddings_to_the_tokenizer(work, bert_dir, monkeypatch):
    """The checkpoint's vocabulary is 3 rows short of its tokenizer's, so the script resizes it."""
    tokenizer = _wordpiece_tokenizer()
    small = work / "bert-small-vocab"
    config = _bert_config(vocab_size=len(tokenizer) - 3, num_hidden_layers=1)
    tfformers.TFAutoModelForMaskedLM.from_config(config).save_pretrained(small, tokenizer=tokenizer)
    rng = random.Random(2)
    train, valid = work / "mlm_train.txt", work / "mlm_val.txt"
    train.write_text("\n".join(_sentence(rng, 8, 14) for _ in range(24)))
    valid.write_text("\n".join(_sentence(rng, 8, 14) for _ in range(10)))
    out = work / "out_mlm"
    run_script("language-modeling/run_mlm.py",
               [*_common(out, small), "--train_file", train, "--validation_file", valid, "--max_seq_length", 16],
               METRICS, monkeypatch)
    results = json.loads((out / "all_results.json").read_text())
    assert set(results) == {"train_loss", "train_perplexity", "eval_loss", "eval_perplexity"}
    model = tfformers.TFAutoModelForMaskedLM.from_pretrained(out)
    assert model.config.vocab_size == len(tokenizer) == model.get_input_embeddings().input_dim


def test_run_clm(work, monkeypatch):
    rng = random.Random(3)
    train, valid = work / "clm_train.txt", work / "clm_val.txt"
    train.write_text("\n".join(_sentence(rng, 8, 14) for _ in range(24)))
    valid.write_text("\n".join(_sentence(rng, 8, 14) for _ in range(10)))
    tokenizer = _bpe_tokenizer([train.read_text()])
    gpt2 = work / "gpt2"
    config = _gpt2_config(vocab_size=len(tokenizer), n_layer=1, n_positions=64, bos_token_id=0, eos_token_id=0)
    tfformers.TFAutoModelForCausalLM.from_config(config).save_pretrained(gpt2, tokenizer=tokenizer)
    out = work / "out_clm"
    run_script("language-modeling/run_clm.py",
               [*_common(out, gpt2), "--train_file", train, "--validation_file", valid, "--block_size", 16],
               METRICS, monkeypatch)
    results = json.loads((out / "all_results.json").read_text())
    assert results["eval_perplexity"] > 1 and results["train_loss"] > 0
    assert tfformers.TFAutoModelForCausalLM.from_pretrained(out).config.n_positions == 64


def _ner_row(rng):
    tokens = _sentence(rng).split()
    tags = ["B-ANI" if t in ANIMALS else "B-QUA" if t in QUALITIES else "O" for t in tokens]
    return {"tokens": tokens, "ner_tags": tags}


def test_run_ner(work, bert_dir, monkeypatch):
    rng = random.Random(4)
    train = _write_json_lines(work / "ner_train.json", [_ner_row(rng) for _ in range(12)])
    valid = _write_json_lines(work / "ner_val.json", [_ner_row(rng) for _ in range(6)])
    out = work / "out_ner"
    out.mkdir()  # the script writes its results before anything creates the folder
    run_script("token-classification/run_ner.py",
               [*_common(out, bert_dir), "--train_file", train, "--validation_file", valid, "--max_length", 16],
               METRICS, monkeypatch)
    results = json.loads((out / "all_results.json").read_text())
    assert set(results) == {"precision", "recall", "f1", "accuracy"}
    # the script sets the number of labels, not their names
    assert tfformers.TFAutoModelForTokenClassification.from_pretrained(out).config.num_labels == 3


def _qa_example(rng, index):
    words = _sentence(rng, 8, 14).split()
    answer = rng.randrange(len(words))
    start = len(" ".join(words[:answer])) + (1 if answer else 0)
    return {"id": f"q{index}", "title": "t", "context": " ".join(words), "question": "which " + rng.choice(WORDS),
            "answers": {"text": [words[answer]], "answer_start": [start]}}


def test_run_qa(work, bert_dir, monkeypatch):
    rng = random.Random(5)
    files = {}
    for split, count in (("train", 12), ("validation", 6)):
        files[split] = work / f"qa_{split}.json"
        files[split].write_text(json.dumps({"data": [_qa_example(rng, i) for i in range(count)]}))
    out = work / "out_qa"
    run_script("question-answering/run_qa.py",
               [*_common(out, bert_dir), "--train_file", files["train"], "--validation_file", files["validation"],
                "--do_train", "--do_eval", "--max_seq_length", 24, "--doc_stride", 8], METRICS, monkeypatch)
    assert set(json.loads((out / "all_results.json").read_text())) == {"exact_match", "f1"}
    predictions = json.loads((out / "eval_predictions.json").read_text())
    assert sorted(predictions) == [f"q{i}" for i in range(6)]
    assert tfformers.TFAutoModelForQuestionAnswering.from_pretrained(out).config.num_labels == 2


def test_run_swag(work, bert_dir, monkeypatch):
    """Four endings per row, of different lengths: the script's own collator pads each batch."""
    rng = random.Random(6)
    header = ["video-id", "fold-ind", "startphrase", "sent1", "sent2", "gold-source", "ending0", "ending1",
              "ending2", "ending3", "label"]

    def row(i):
        return [f"v{i}", i, _sentence(rng), _sentence(rng, 2, 6), _sentence(rng, 1, 2), "gold",
                *(_sentence(rng, 1, 5) for _ in range(4)), rng.randint(0, 3)]

    train = _write_csv(work / "swag_train.csv", header, [row(i) for i in range(12)])
    valid = _write_csv(work / "swag_val.csv", header, [row(i) for i in range(8)])
    out = work / "out_swag"
    run_script("multiple-choice/run_swag.py",
               [*_common(out, bert_dir), "--train_file", train, "--validation_file", valid, "--do_train", "--do_eval",
                "--max_seq_length", 16], METRICS, monkeypatch)
    results = json.loads((out / "all_results.json").read_text())
    assert set(results) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert type(tfformers.TFAutoModelForMultipleChoice.from_pretrained(out)).__name__ == "TFBertForMultipleChoice"


IMAGE_CLASSES = ("cat", "dog", "fish")
VIT_PROCESSOR = {"image_processor_type": "ViTImageProcessor", "do_resize": True, "size": {"height": 32, "width": 32},
                 "resample": 2, "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
                 "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}


def _image_folder(folder, per_class, rng):
    """PNGs of different sizes in one folder per class, and the metadata.parquet that gives them a `labels`
    ClassLabel column: the script reads `features["labels"]`, the name 4.x's datasets gave the folder labels
    (`task="image-classification"`, since removed; a plain image folder's column is `label`)."""
    names, labels = [], []
    for label, name in enumerate(IMAGE_CLASSES):
        (folder / name).mkdir(parents=True)
        for i in range(per_class):
            height, width = rng.integers(24, 48, size=2)
            pixels = rng.integers(0, 256, (height, width, 3)) // 2 + 40 * label  # each class a little brighter
            Image.fromarray(pixels.astype(np.uint8)).save(folder / name / f"{i}.png")
            names.append(f"{name}/{i}.png")
            labels.append(label)
    features = datasets.Features({"file_name": datasets.Value("string"),
                                  "labels": datasets.ClassLabel(names=list(IMAGE_CLASSES))})
    datasets.Dataset.from_dict({"file_name": names, "labels": labels}, features=features).to_parquet(
        folder / "metadata.parquet")
    return folder


def _script_validation_pixels(folder):
    """The script's validation transform (bilinear resize to 32x32, rescale, normalize, channels first) of the
    folder's images in the script's order: [images, 3, 32, 32]."""
    import tensorflow as tf

    dataset = datasets.load_dataset("imagefolder", data_files={"validation": str(folder / "**")})["validation"]
    pixels = [tf.image.resize(np.asarray(image.convert("RGB"), np.float32), (32, 32)) / 255.0
              for image in dataset["image"]]
    return (np.transpose(np.stack(pixels), (0, 3, 1, 2)) - 0.5) / 0.5, np.array(dataset["labels"])


def test_run_image_classification(work, monkeypatch):
    """A headless random ViT with its preprocessor_config.json: the script adds the 3-class head, trains on an
    image folder, evaluates with its KerasMetricCallback and `evaluate`'s accuracy, and saves."""
    vit = work / "vit"
    config = tfformers.ViTConfig(image_size=32, patch_size=8, hidden_size=36, num_hidden_layers=1,
                                 num_attention_heads=3, intermediate_size=37)
    tfformers.TFAutoModel.from_config(config).save_pretrained(vit)
    (vit / "preprocessor_config.json").write_text(json.dumps(VIT_PROCESSOR))
    rng = np.random.default_rng(7)
    train, valid = _image_folder(work / "images_train", 8, rng), _image_folder(work / "images_val", 3, rng)
    out = work / "out_image_classification"
    run_script("image-classification/run_image_classification.py",
               [*_common(out, vit), "--train_dir", train, "--validation_dir", valid, "--do_train", "--do_eval"],
               METRICS, monkeypatch)
    model = tfformers.TFAutoModelForImageClassification.from_pretrained(out)
    assert model.config.id2label == dict(enumerate(IMAGE_CLASSES))
    # all_results.json holds the accuracy of the saved model on the validation images, as the script sees them
    pixels, labels = _script_validation_pixels(valid)
    accuracy = np.mean(np.argmax(model.predict({"pixel_values": pixels}, batch_size=4).logits, axis=-1) == labels)
    assert json.loads((out / "all_results.json").read_text()) == {"accuracy": pytest.approx(accuracy)}


TRANSLATIONS = [("The cat sleeps.", "Pisica doarme."), ("The dog runs.", "Câinele aleargă."),
                ("I like tea.", "Îmi place ceaiul."), ("The house is big.", "Casa este mare."),
                ("We read a book.", "Citim o carte."), ("The sun is warm.", "Soarele este cald."),
                ("She drinks water.", "Ea bea apă."), ("The car is red.", "Mașina este roșie."),
                ("He eats bread.", "El mănâncă pâine."), ("The city is old.", "Orașul este vechi."),
                ("They play football.", "Ei joacă fotbal."), ("The sea is blue.", "Marea este albastră.")]


@pytest.fixture(scope="module")
def bbc_summaries():
    """[{"text": body (first 60 words), "summary": title}] of 20 BBC News articles."""
    rows = []
    for text, _ in bbc_articles(per_class=4):
        title, _, body = text.strip().partition("\n")
        rows.append({"text": " ".join(body.split()[:60]), "summary": title.strip()})
    return rows


@pytest.fixture(scope="module")
def t5_dir(work, bbc_summaries):
    """A one-layer random T5 with a T5 SentencePiece tokenizer trained on the BBC texts and the translations."""
    lines = [row[key] for row in bbc_summaries for key in ("text", "summary")]
    lines += [sentence for pair in TRANSLATIONS for sentence in pair]
    folder = example_module("bbc_titles").write_t5_vocabulary(work / "t5", lines, vocab_size=400)
    tokenizer = tfformers.AutoTokenizer.from_pretrained(folder)
    config = tfformers.T5Config(vocab_size=len(tokenizer), d_model=16, d_kv=4, d_ff=24, num_layers=1, num_heads=2,
                                pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
    tfformers.TFAutoModelForSeq2SeqLM.from_config(config).save_pretrained(folder, tokenizer=tokenizer)
    return folder


@pytest.fixture
def punkt_english(work, bbc_summaries, monkeypatch):
    """NLTK's English sentence splitter, trained here on BBC News (nltk's own data is a download): the script
    looks for the `punkt` package, `nltk.sent_tokenize` reads `punkt_tab` (nltk >= 3.9); both hold the same
    parameters."""
    root = work / "nltk_data"
    monkeypatch.setattr(nltk.data, "path", [str(root), *nltk.data.path])
    trainer = PunktTrainer()
    trainer.train(" ".join(row["text"] for row in bbc_summaries), finalize=True)
    for package in ("punkt", "punkt_tab"):
        (root / "tokenizers" / package / "english").mkdir(parents=True)
        save_punkt_params(trainer.get_params(), str(root / "tokenizers" / package / "english"))
    return root


def test_run_summarization(work, t5_dir, bbc_summaries, punkt_english, monkeypatch):
    """Training, then ROUGE on the validation set by XLA-compiled generation (its KerasMetricCallback)."""
    train = _write_json_lines(work / "sum_train.json", bbc_summaries[:12])
    valid = _write_json_lines(work / "sum_val.json", bbc_summaries[12:])
    out = work / "out_summarization"
    out.mkdir()  # the script writes its results before anything creates the folder
    run_script("summarization/run_summarization.py",
               [*_common(out, t5_dir), "--train_file", train, "--validation_file", valid, "--do_train", "--do_eval",
                "--max_source_length", 64, "--max_target_length", 16, "--source_prefix", "summarize: "],
               METRICS, monkeypatch)
    results = json.loads((out / "all_results.json").read_text())
    assert set(results) == {"loss", "rouge1", "rouge2", "rougeL", "rougeLsum"}
    assert results["loss"] > 0 and all(0 <= results[key] <= 100 for key in ("rouge1", "rougeL"))
    assert type(tfformers.TFAutoModelForSeq2SeqLM.from_pretrained(out)).__name__ == "TFT5ForConditionalGeneration"


def test_run_translation(work, t5_dir, monkeypatch):
    """Training, then SacreBLEU on the validation set by XLA-compiled generation (its KerasMetricCallback)."""
    rows = [{"translation": {"en": en, "ro": ro}} for en, ro in TRANSLATIONS]
    train = _write_json_lines(work / "translation_train.json", rows[:8])
    valid = _write_json_lines(work / "translation_val.json", rows[8:])
    out = work / "out_translation"
    out.mkdir()  # the script writes its results before anything creates the folder
    run_script("translation/run_translation.py",
               [*_common(out, t5_dir), "--train_file", train, "--validation_file", valid, "--do_train", "--do_eval",
                "--source_lang", "en", "--target_lang", "ro", "--max_source_length", 32, "--max_target_length", 16,
                "--source_prefix", "translate English to Romanian: "], METRICS, monkeypatch)
    results = json.loads((out / "all_results.json").read_text())
    assert set(results) == {"loss", "bleu"} and results["loss"] > 0 and 0 <= results["bleu"] <= 100
    assert tfformers.TFAutoModelForSeq2SeqLM.from_pretrained(out).config.d_model == 16
