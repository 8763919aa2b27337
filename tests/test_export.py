"""tfformers.export: one SavedModel from raw strings to answers, in TF Serving's layout BASE/NAME/VERSION.

Every task's artifact is checked against the Python path (transformers' tokenizer, the Keras model, the
answer computed here in NumPy): logits within 1e-5, identical labels, spans, tokens and generated text. The
artifacts are then loaded in a fresh process where tfformers and transformers cannot be imported, and give
the same answers (TensorFlow and tensorflow-text are all it takes; Keras comes with TensorFlow). Models are
tiny and random (vocabularies of real tokenizers: MiniLM's WordPiece, SmolLM2's byte-level BPE); the real
MiniLM checkpoint serves feature extraction.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from assets import minilm_dir, smollm2_gguf
from transformers import BertConfig, DistilBertConfig, LlamaConfig

import tfformers
from tfformers.errors import ConfigError

LOGITS_TOLERANCE = 1e-5
MAX_LENGTH = 64  # the tiny models' position table: inputs are truncated to it
LABELS = {0: "negative", 1: "neutral", 2: "positive"}
TEXTS = [
    "This is a test sentence!",
    "Résumé of the naïve café owner: 3 stars ⭐, would visit again.",
    "A much longer text about football " + "and the Premier League " * 20,  # truncated to MAX_LENGTH
]
QUESTIONS = ["Where is the Eiffel Tower?", "Who wrote the book?"]
CONTEXTS = [
    "The Eiffel Tower is in Paris, the capital of France, and was finished in 1889.",
    "The book was written by Jane Austen in the early nineteenth century, long ago.",
]
PROMPTS = ["What is the capital of France?", "Hi", "Tell me a story about a very long and winding road, please."]
GENERATION = dict(max_new_tokens=6, max_prompt_length=16, generation_batch_size=2, chat_template=True)


def tiny_bert(cls, **overrides):
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=37, max_position_embeddings=MAX_LENGTH, **overrides)
    model = cls(config)
    model.build_with_dummy_inputs()
    return model


@pytest.fixture(scope="module")
def minilm_tokenizer():
    return tfformers.AutoTokenizer.from_pretrained(minilm_dir())


@pytest.fixture(scope="module")
def smollm2_tokenizer():
    return tfformers.AutoTokenizer.from_pretrained(str(smollm2_gguf().parent), gguf_file=smollm2_gguf().name)


@pytest.fixture(scope="module")
def models(minilm_tokenizer, smollm2_tokenizer):
    tf.keras.utils.set_random_seed(0)
    tokenizer = smollm2_tokenizer
    llama = tfformers.TFLlamaForCausalLM(LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=16, intermediate_size=37, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=128, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
    ))
    llama.build_with_dummy_inputs()
    tagger = tfformers.TFDistilBertForTokenClassification(DistilBertConfig(
        vocab_size=30522, dim=32, n_layers=2, n_heads=4, hidden_dim=37, max_position_embeddings=MAX_LENGTH,
        num_labels=3, id2label=LABELS,
    ))
    tagger.build_with_dummy_inputs()
    return {
        "classifier": (tiny_bert(tfformers.TFBertForSequenceClassification, num_labels=3, id2label=LABELS),
                       minilm_tokenizer, {}),
        "tagger": (tagger, minilm_tokenizer, {}),
        "qa": (tiny_bert(tfformers.TFBertForQuestionAnswering), minilm_tokenizer, {}),
        "fill": (tiny_bert(tfformers.TFBertForMaskedLM), minilm_tokenizer, {"top_k": 3}),
        "embeddings": (tfformers.TFAutoModel.from_pretrained(minilm_dir()), None, {}),  # its own tokenizer
        "generator": (llama, tokenizer, GENERATION),
    }


@pytest.fixture(scope="module")
def exported(models, tmp_path_factory):
    """name -> the loaded SavedModel of each exported model (BASE/name/1)."""
    base = tmp_path_factory.mktemp("serving")
    paths = {}
    for name, (model, tokenizer, options) in models.items():
        paths[name] = tfformers.export(model, base / name, tokenizer=tokenizer, **options)
    return base, paths, {name: tf.saved_model.load(path) for name, path in paths.items()}


def serve(exported, name, signature="serving_default", **inputs):
    function = exported[2][name].signatures[signature]
    return {key: value.numpy() for key, value in function(**{k: tf.constant(v) for k, v in inputs.items()}).items()}


def python_inputs(tokenizer, *texts):
    return tokenizer(*texts, truncation="only_second" if len(texts) == 2 else True, max_length=MAX_LENGTH,
                     padding=True, return_tensors="np")


# ---------------------------------------------------------------------------------------------- tasks


def test_text_classification(models, exported):
    model, tokenizer, _ = models["classifier"]
    inputs = python_inputs(tokenizer, TEXTS)
    logits = model(dict(inputs)).logits.numpy()
    answer = serve(exported, "classifier", text=TEXTS)
    np.testing.assert_allclose(answer["logits"], logits, atol=LOGITS_TOLERANCE, rtol=0)
    assert [label.decode() for label in answer["label"]] == [LABELS[i] for i in logits.argmax(-1)]
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(answer["probabilities"], probabilities, atol=1e-6)
    np.testing.assert_allclose(answer["score"], probabilities.max(-1), atol=1e-6)
    from_ids = serve(exported, "classifier", "from_ids", **{k: v.astype(np.int32) for k, v in inputs.items()})
    np.testing.assert_allclose(from_ids["logits"], logits, atol=LOGITS_TOLERANCE, rtol=0)


def test_token_classification(models, exported):
    model, tokenizer, _ = models["tagger"]
    inputs = python_inputs(tokenizer, TEXTS[:2])
    logits = model({k: inputs[k] for k in ("input_ids", "attention_mask")}).logits.numpy()
    answer = serve(exported, "tagger", text=TEXTS[:2])
    np.testing.assert_allclose(answer["logits"], logits, atol=LOGITS_TOLERANCE, rtol=0)
    special = set(tokenizer.all_special_ids)
    for row, ids in enumerate(inputs["input_ids"]):
        tokens = [tokenizer.decode([i]) if i not in special else "" for i in ids]
        labels = [LABELS[k] if token else "" for k, token in zip(logits[row].argmax(-1), tokens)]
        assert [t.decode() for t in answer["tokens"][row]] == tokens
        assert [label.decode() for label in answer["labels"][row]] == labels


def best_span(start_logits, end_logits, sequence_ids, max_answer_length=15):
    """transformers' question-answering rule, by brute force: argmax of p(start) * p(end) over context pairs."""
    context = [i for i, s in enumerate(sequence_ids) if s == 1]

    def softmax(logits):
        e = np.exp(logits[context] - logits[context].max())
        return dict(zip(context, e / e.sum()))

    p_start, p_end = softmax(start_logits), softmax(end_logits)
    pairs = [(p_start[s] * p_end[e], s, e) for s in context for e in context if 0 <= e - s < max_answer_length]
    return max(pairs)


def test_question_answering(models, exported):
    model, tokenizer, _ = models["qa"]
    inputs = python_inputs(tokenizer, QUESTIONS, CONTEXTS)
    outputs = model(dict(inputs))
    answer = serve(exported, "qa", question=QUESTIONS, context=CONTEXTS)
    from_ids = serve(exported, "qa", "from_ids", **{k: v.astype(np.int32) for k, v in inputs.items()})
    for row in range(len(QUESTIONS)):
        sequence_ids = [-1 if s is None else s for s in inputs.sequence_ids(row)]
        score, start, end = best_span(outputs.start_logits.numpy()[row], outputs.end_logits.numpy()[row], sequence_ids)
        text = tokenizer.decode(inputs["input_ids"][row][start:end + 1], skip_special_tokens=True).strip()
        for result in (answer, from_ids):  # from_ids finds the context without sequence ids
            assert (result["start"][row], result["end"][row]) == (start, end)
            assert result["answer"][row].decode() == text
            assert result["score"][row] == pytest.approx(score, abs=1e-6)


def test_feature_extraction_with_the_checkpoints_own_tokenizer(models, exported, minilm_tokenizer):
    """The real MiniLM: sentence-transformers' embedding (mean over tokens, L2-normalised)."""
    model = models["embeddings"][0]
    inputs = minilm_tokenizer(TEXTS, truncation=True, padding=True, return_tensors="np")  # its own 512 limit
    hidden = model(dict(inputs)).last_hidden_state.numpy()
    mask = inputs["attention_mask"][..., None]
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    expected = pooled / np.linalg.norm(pooled, axis=-1, keepdims=True)
    np.testing.assert_allclose(serve(exported, "embeddings", text=TEXTS)["embedding"], expected, atol=1e-5)


def test_fill_mask(models, exported):
    model, tokenizer, _ = models["fill"]
    texts = ["Paris is the [MASK] of France.", "The [MASK] sat on the mat."]
    inputs = python_inputs(tokenizer, texts)
    logits = model(dict(inputs)).logits.numpy()
    answer = serve(exported, "fill", text=texts)
    for row, ids in enumerate(inputs["input_ids"]):
        at_mask = logits[row][list(ids).index(tokenizer.mask_token_id)]
        top = np.argsort(-at_mask)[:3]
        assert list(answer["token_id"][row]) == list(top)
        assert [t.decode() for t in answer["token_str"][row]] == [tokenizer.decode([i]).strip() for i in top]
    with pytest.raises(tf.errors.InvalidArgumentError, match="mask token"):
        serve(exported, "fill", text=["No mask here."])


def python_generation(model, tokenizer, prompts):
    """Greedy tokens of model.generate (eager) on each chat-formatted prompt, cut as the artifact cuts it."""
    mark = "\x00"
    before, after = tokenizer.apply_chat_template([{"role": "user", "content": mark}], tokenize=False,
                                                  add_generation_prompt=True).split(mark)
    results = []
    for prompt in prompts:
        ids = tokenizer([before + prompt + after], add_special_tokens=False, return_tensors="np")["input_ids"]
        ids = ids[:, -GENERATION["max_prompt_length"]:]
        new = model.generate(ids, max_new_tokens=GENERATION["max_new_tokens"]).numpy()[0, ids.shape[1]:]
        results.append((list(new), tokenizer.decode(new, skip_special_tokens=True)))
    return results


def test_text_generation_with_the_compiled_loop_inside(models, exported):
    """Three prompts (one truncated to 16 tokens) in chunks of two rows: greedy tokens and text identical."""
    model, tokenizer, _ = models["generator"]
    answer = serve(exported, "generator", text=PROMPTS)
    start = GENERATION["max_prompt_length"]
    for row, (tokens, text) in enumerate(python_generation(model, tokenizer, PROMPTS)):
        assert list(answer["sequences"][row, start:start + len(tokens)]) == tokens
        assert answer["generated_text"][row].decode() == text


# ------------------------------------------------------------------------------------ a fresh process

FRESH_PROCESS = r"""
import json, sys

class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tfformers", "transformers", "torch", "tokenizers"):
            raise ImportError(f"{name} is blocked in this process")

sys.meta_path.insert(0, Blocked())
import tensorflow as tf
import tensorflow_text  # registers the tokenizer ops

paths, calls = json.loads(sys.argv[1]), json.loads(sys.argv[2])
results = {}
for name, inputs in calls.items():
    outputs = tf.saved_model.load(paths[name]).signatures["serving_default"](
        **{key: tf.constant(value) for key, value in inputs.items()})
    results[name] = {key: value.numpy().tolist() for key, value in outputs.items() if value.dtype != tf.string}
    results[name].update({key: [s.decode() for s in value.numpy().ravel()]
                          for key, value in outputs.items() if value.dtype == tf.string})
print(json.dumps(results))
"""


def test_artifacts_run_in_a_process_without_tfformers_or_transformers(models, exported):
    calls = {"classifier": {"text": TEXTS}, "qa": {"question": QUESTIONS, "context": CONTEXTS},
             "generator": {"text": PROMPTS}}
    paths = {name: str(exported[1][name]) for name in calls}
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    run = subprocess.run([sys.executable, "-c", FRESH_PROCESS, json.dumps(paths), json.dumps(calls)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    fresh = json.loads(run.stdout.strip().splitlines()[-1])

    model, tokenizer, _ = models["classifier"]
    logits = model(dict(python_inputs(tokenizer, TEXTS))).logits.numpy()
    np.testing.assert_allclose(np.array(fresh["classifier"]["logits"]), logits, atol=LOGITS_TOLERANCE, rtol=0)
    assert fresh["classifier"]["label"] == [LABELS[i] for i in logits.argmax(-1)]
    in_process = serve(exported, "qa", question=QUESTIONS, context=CONTEXTS)
    assert fresh["qa"]["answer"] == [a.decode() for a in in_process["answer"]]
    expected = python_generation(*models["generator"][:2], PROMPTS)
    assert fresh["generator"]["generated_text"] == [text for _, text in expected]


# ----------------------------------------------------------------------------- layout and atomicity


def test_versions_are_numbered_and_never_overwritten(models, exported, tmp_path):
    model, tokenizer, _ = models["classifier"]
    base, paths, _ = exported
    assert os.path.relpath(paths["classifier"], base) == os.path.join("classifier", "1")
    assert os.path.isfile(os.path.join(paths["classifier"], "saved_model.pb"))
    second = model.export_for_serving(base / "classifier", tokenizer=tokenizer)  # the method: the same export
    assert os.path.basename(second) == "2"
    before = os.listdir(second)
    with pytest.raises(FileExistsError, match="already exists"):
        tfformers.export(model, base / "classifier", tokenizer=tokenizer, version=2)
    assert os.listdir(second) == before
    assert sorted(os.listdir(base / "classifier")) == ["1", "2"]


def test_a_failed_export_leaves_no_version(models, tmp_path, monkeypatch):
    model, tokenizer, _ = models["classifier"]
    original = tf.saved_model.save

    def save_then_fail(module, path, signatures=None):
        original(module, path, signatures=signatures)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tf.saved_model, "save", save_then_fail)
    with pytest.raises(OSError, match="No space left"):
        tfformers.export(model, tmp_path / "bbc", tokenizer=tokenizer)
    assert os.listdir(tmp_path / "bbc") == []  # no version, no staging folder


def test_export_errors_name_the_problem(models, tmp_path):
    model, tokenizer, _ = models["classifier"]
    with pytest.raises(ConfigError, match="answers 'text-classification', not 'question-answering'"):
        tfformers.export(model, tmp_path / "m", tokenizer=tokenizer, task="question-answering")
    with pytest.raises(ConfigError, match="Unknown export format 'onnx'"):
        tfformers.export(model, tmp_path / "m", tokenizer=tokenizer, format="onnx")
    with pytest.raises(ConfigError, match="pass tokenizer="):
        tfformers.export(model, tmp_path / "m")
    with pytest.raises(ConfigError, match="positive integers"):
        tfformers.export(model, tmp_path / "m", tokenizer=tokenizer, version=0)
    assert not os.path.exists(tmp_path / "m" / "1")
