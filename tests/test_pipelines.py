"""tfformers.pipeline() against PyTorch transformers' own pipeline() on the same weights.

Each task's tiny random model is saved once (PyTorch, safetensors) and loaded by both libraries' pipelines
from the folder; answers must have the same structure, labels, spans, words and texts, and scores within
1e-4. transformers 5 has no question-answering pipeline: those answers come from transformers 4.46.3's
(fixtures/qa_pipeline, with the script that made them). Batching must not change an answer.
"""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import transformers
from architectures import _bert_config, _gpt2_config, _llama_config
from assets import minilm_dir
from oracle import torch_model

import tfformers
from tfformers.errors import ConfigError, InputError
from tfformers.pipelines import KeyDataset

TOLERANCE = 1e-4
QA_FIXTURE = Path(__file__).parent / "fixtures" / "qa_pipeline"
NLI_LABELS = {"contradiction": 0, "neutral": 1, "entailment": 2}
NER_LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
TEXTS = [
    "Johnathan Smithers lives in Wellington, near the harbour.",
    "Hello world, this is Paris ☃ calling.",
    "Short one.",
]
DECODER_CONFIGS = {"GPT2LMHeadModel": _gpt2_config, "LlamaForCausalLM": _llama_config}
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def assert_same(ours, theirs, path="answer"):
    """Equal structure, strings and ints; floats within TOLERANCE. Returns the largest float difference."""
    if isinstance(theirs, dict):
        assert isinstance(ours, dict) and set(ours) == set(theirs), f"{path}: keys {ours} vs {theirs}"
        return max([assert_same(ours[k], theirs[k], f"{path}.{k}") for k in theirs], default=0.0)
    if isinstance(theirs, (list, tuple)):
        assert isinstance(ours, list) and len(ours) == len(theirs), f"{path}: {ours} vs {theirs}"
        return max([assert_same(a, b, f"{path}[{i}]") for i, (a, b) in enumerate(zip(ours, theirs))], default=0.0)
    if isinstance(theirs, (float, np.floating)):
        difference = abs(float(ours) - float(theirs))
        assert difference <= TOLERANCE, f"{path}: {ours} vs {theirs}"
        return difference
    assert ours == theirs and type(ours) is type(theirs if not isinstance(theirs, np.integer) else 0), \
        f"{path}: {ours!r} vs {theirs!r}"
    return 0.0


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """head name -> folder holding a tiny random PyTorch model of that head and the MiniLM tokenizer."""
    tokenizer = transformers.AutoTokenizer.from_pretrained(minilm_dir())
    specs = {
        "BertForSequenceClassification": dict(label2id=NLI_LABELS, id2label={v: k for k, v in NLI_LABELS.items()}),
        "BertForTokenClassification": dict(id2label=dict(enumerate(NER_LABELS)),
                                           label2id={label: i for i, label in enumerate(NER_LABELS)}),
        "BertForMaskedLM": {},
        "BertModel": {},
    }
    cache = {}

    def get(head):
        if head not in cache:
            folder = tmp_path_factory.mktemp(head)
            if head in DECODER_CONFIGS:
                chat_tokenizer = transformers.AutoTokenizer.from_pretrained(minilm_dir())
                chat_tokenizer.chat_template = CHAT_TEMPLATE
                config = DECODER_CONFIGS[head](vocab_size=tokenizer.vocab_size, num_hidden_layers=1, pad_token_id=0,
                                               bos_token_id=tokenizer.cls_token_id,
                                               eos_token_id=tokenizer.sep_token_id, initializer_range=0.3)
                torch_model(head, config).save_pretrained(folder)
                chat_tokenizer.save_pretrained(folder)
            else:
                config = _bert_config(vocab_size=tokenizer.vocab_size, max_position_embeddings=128,
                                      num_hidden_layers=1, initializer_range=0.3, **specs[head])
                torch_model(head, config).save_pretrained(folder)
                tokenizer.save_pretrained(folder)
            cache[head] = str(folder)
        return cache[head]

    return get


@pytest.fixture(scope="module")
def pair(saved):
    """(task, head) -> (transformers' pipeline, tfformers' pipeline), both loaded from the same folder."""
    cache = {}

    def get(task, head):
        if (task, head) not in cache:
            folder = saved(head)
            cache[task, head] = (transformers.pipeline(task, model=folder), tfformers.pipeline(task, model=folder))
        return cache[task, head]

    return get


def compare(pipelines, *args, **options):
    theirs, ours = pipelines
    return assert_same(ours(*args, **options), theirs(*args, **options))


# ------------------------------------------------------------------------------------------------ tasks


@pytest.mark.parametrize("options", [
    {}, {"top_k": 2}, {"top_k": None}, {"function_to_apply": "sigmoid"}, {"function_to_apply": "none"},
    {"function_to_apply": "softmax", "top_k": 1},
])
def test_text_classification_matches_transformers(pair, options):
    pipelines = pair("sentiment-analysis", "BertForSequenceClassification")
    compare(pipelines, TEXTS[0], **options)
    compare(pipelines, TEXTS, **options)
    compare(pipelines, {"text": TEXTS[0], "text_pair": TEXTS[1]}, **options)


@pytest.mark.parametrize("problem_type, num_labels", [
    ("multi_label_classification", 3), ("regression", 1), (None, 1),
])
def test_text_classification_default_function_follows_the_head(saved, tmp_path, problem_type, num_labels):
    """Multi-label heads and single labels get a sigmoid, regression the raw value, as transformers decides."""
    folder = saved("BertForSequenceClassification")
    variant = transformers.AutoModelForSequenceClassification.from_pretrained(
        folder, ignore_mismatched_sizes=True, problem_type=problem_type, num_labels=num_labels)
    variant.save_pretrained(tmp_path)
    transformers.AutoTokenizer.from_pretrained(folder).save_pretrained(tmp_path)
    pipelines = (transformers.pipeline("text-classification", model=str(tmp_path)),
                 tfformers.pipeline("text-classification", model=str(tmp_path)))
    compare(pipelines, TEXTS)
    compare(pipelines, TEXTS, top_k=None)


@pytest.mark.parametrize("options", [
    {}, {"aggregation_strategy": "simple"}, {"aggregation_strategy": "first"},
    {"aggregation_strategy": "average"}, {"aggregation_strategy": "max"},
    {"aggregation_strategy": "simple", "ignore_labels": []}, {"ignore_labels": ["O", "B-PER"]},
])
def test_token_classification_matches_transformers(pair, options):
    compare(pair("ner", "BertForTokenClassification"), TEXTS, **options)


def qa_cases():
    return json.loads((QA_FIXTURE / "expected.json").read_text())


@pytest.fixture(scope="module")
def answerer():
    return tfformers.pipeline("question-answering", model=str(QA_FIXTURE))


@pytest.mark.parametrize("case", qa_cases(), ids=lambda case: json.dumps(case["options"]) or "defaults")
def test_question_answering_matches_transformers_4x(answerer, case):
    """Long contexts cut in windows (max_seq_len, doc_stride), top_k, max_answer_len, the null answer and
    word alignment give transformers 4.46.3's answers on the same weights."""
    assert_same(answerer(case["inputs"], **case["options"]), case["answer"])
    question, context = case["inputs"]["question"], case["inputs"]["context"]
    assert_same(answerer(question=question, context=context, **case["options"]), case["answer"])


def test_question_answering_batches_equal_single_answers(answerer):
    cases = [case for case in qa_cases() if case["options"].get("top_k") == 3]  # a short and a long context
    options = {"max_seq_len": 32, "doc_stride": 10, "top_k": 2}
    singles = [answerer(case["inputs"], **options) for case in cases]
    assert_same(answerer([case["inputs"] for case in cases], batch_size=3, **options), singles)
    questions = [case["inputs"]["question"] for case in cases]
    contexts = [case["inputs"]["context"] for case in cases]
    assert_same(answerer(question=questions, context=contexts, batch_size=2, **options), singles)


@pytest.mark.parametrize("options", [{}, {"top_k": 3}, {"targets": ["capital", "city", "zzzq"], "top_k": 2}])
def test_fill_mask_matches_transformers(pair, options):
    pipelines = pair("fill-mask", "BertForMaskedLM")
    compare(pipelines, "Paris is the [MASK] of France.", **options)
    compare(pipelines, ["Paris is the [MASK] of France."], **options)
    compare(pipelines, ["A [MASK] is a [MASK].", "Short [MASK]."], **options)  # several masks in one text


@pytest.mark.parametrize("options", [{}, {"tokenize_kwargs": {"truncation": True, "max_length": 5}},
                                     {"truncation": True}])
def test_feature_extraction_matches_transformers(pair, options):
    compare(pair("feature-extraction", "BertModel"), TEXTS, **options)


def test_feature_extraction_return_tensors(pair):
    theirs, ours = pair("feature-extraction", "BertModel")
    tensor = ours(TEXTS[0], return_tensors=True)
    assert isinstance(tensor, tf.Tensor)
    np.testing.assert_allclose(tensor.numpy(), theirs(TEXTS[0], return_tensors=True).numpy(), atol=TOLERANCE)


@pytest.mark.parametrize("options", [
    {"candidate_labels": ["sports", "politics", "cooking"]},
    {"candidate_labels": "sports, politics, cooking", "multi_label": True},
    {"candidate_labels": ["sports"]},
    {"candidate_labels": ["sports", "politics"], "hypothesis_template": "The topic is {}."},
])
def test_zero_shot_classification_matches_transformers(pair, options):
    pipelines = pair("zero-shot-classification", "BertForSequenceClassification")
    compare(pipelines, TEXTS[0], **options)
    compare(pipelines, TEXTS, **options)


def test_zero_shot_candidate_labels_positionally(pair):
    compare(pair("zero-shot-classification", "BertForSequenceClassification"), TEXTS[1], ["music", "art"])


# ----------------------------------------------------------------------------------------- generation

GREEDY = {"max_new_tokens": 4, "do_sample": False}
CHAT = [{"role": "user", "content": "Where is Paris?"}]


@pytest.fixture(scope="module")
def generators(pair):
    return pair("text-generation", "GPT2LMHeadModel")


@pytest.mark.parametrize("options", [GREEDY, {**GREEDY, "return_full_text": False}, {**GREEDY, "return_tensors": True}])
def test_text_generation_matches_transformers(generators, options):
    compare(generators, "The weather in Paris", **options)
    compare(generators, CHAT, **options)  # through the chat template; the answer is the chat plus a message
    compare(generators, [CHAT + [{"role": "assistant", "content": "It is in"}]], **options)  # continued


def test_text_generation_batches_and_sampling(generators):
    """Left-padded batches answer as one prompt at a time, and sampling from the single best token is greedy:
    one batch of three sampled with top_k=1 gives transformers' greedy answers to each prompt alone."""
    theirs, ours = generators
    prompts = ["The weather in Paris", "A", "Once upon a time there was"]
    sampled = ours(prompts, batch_size=3, max_new_tokens=4, do_sample=True, top_k=1, seed=3, num_return_sequences=2)
    assert_same(sampled, [answer * 2 for answer in theirs(prompts, **GREEDY)])


def test_text_generation_with_llama_chats_in_a_batch(pair):
    """A Llama-family decoder (grouped-query attention, RoPE) answers chats of different lengths batched together."""
    chats = [CHAT, [{"role": "user", "content": "Tell me a long story about the sea, please."}]]
    compare(pair("text-generation", "LlamaForCausalLM"), chats, batch_size=2, **GREEDY)


@pytest.mark.parametrize("options", [{}, {"do_sample": False}, {"max_length": 20, "top_k": 3}])
def test_text_generation_fills_in_transformers_pipeline_defaults(generators, options):
    """Unset options default as in transformers 5's pipeline: 256 new tokens, sampling at temperature 0.7."""
    theirs, ours = generators
    assert ours._parameters(dict(options))[1] == theirs._prepare_generate_kwargs(dict(options))


# ------------------------------------------------------------------------------------------- batching


def test_batches_generators_and_datasets_answer_as_single_inputs(pair):
    import datasets

    _, classifier = pair("text-classification", "BertForSequenceClassification")
    _, tagger = pair("ner", "BertForTokenClassification")
    _, zero_shot = pair("zero-shot-classification", "BertForSequenceClassification")
    texts = TEXTS
    for pipe, options in ((classifier, {"top_k": None}), (tagger, {"aggregation_strategy": "max"}),
                          (zero_shot, {"candidate_labels": ["a", "b", "c"]})):
        singles = [pipe([text], **options)[0] for text in texts]
        assert_same(pipe(texts, batch_size=4, **options), singles)
        lazily = pipe((text for text in texts), batch_size=2, **options)
        assert not isinstance(lazily, list)
        assert_same(list(lazily), singles)
    dataset = datasets.Dataset.from_dict({"text": texts})
    singles = [classifier([text])[0] for text in texts]
    assert_same(list(classifier(KeyDataset(dataset, "text"), batch_size=3)), singles)
    assert_same(list(classifier(dataset["text"], batch_size=3)), singles)


def test_progress_bar_for_long_inputs_only(pair, capsys):
    _, classifier = pair("text-classification", "BertForSequenceClassification")
    classifier(TEXTS, batch_size=3)
    assert "text-classification" not in capsys.readouterr().err
    classifier(TEXTS * 40, batch_size=40)  # 120 inputs
    assert "120/120" in capsys.readouterr().err
    classifier(TEXTS, progress=True)
    assert "3/3" in capsys.readouterr().err


# -------------------------------------------------------------------------------- loading and errors


@pytest.mark.parametrize("head, task", [
    ("BertForSequenceClassification", "text-classification"), ("BertForTokenClassification", "token-classification"),
    ("BertForMaskedLM", "fill-mask"), ("BertModel", "feature-extraction"), ("GPT2LMHeadModel", "text-generation"),
])
def test_task_is_inferred_from_the_config(saved, head, task):
    assert tfformers.pipeline(model=saved(head)).task == task


def test_model_and_tokenizer_from_the_hub_by_name(pair, saved, hub, hub_repo_id):
    """A Hub name (here the tests' local Hub) loads the model and its tokenizer, with the task inferred."""
    folder = Path(saved("BertForTokenClassification"))
    hub.create_repo_with_files(hub_repo_id, {path.name: path.read_bytes() for path in folder.iterdir()})
    from_hub = tfformers.pipeline(model=hub_repo_id, aggregation_strategy="first")
    assert from_hub.task == "token-classification"
    theirs, _ = pair("ner", "BertForTokenClassification")
    assert_same(from_hub(TEXTS), theirs(TEXTS, aggregation_strategy="first"))


def test_model_instance_and_tokenizer(saved):
    folder = saved("BertForMaskedLM")
    model = tfformers.TFAutoModelForMaskedLM.from_pretrained(folder)
    tokenizer = tfformers.AutoTokenizer.from_pretrained(folder)
    given = tfformers.pipeline("fill-mask", model=model, tokenizer=tokenizer, top_k=2, device="cpu")
    loaded = tfformers.pipeline("fill-mask", model=folder, top_k=2)
    assert_same(given("Paris is the [MASK] of France."), loaded("Paris is the [MASK] of France."))
    with pytest.raises(ConfigError, match="text-classification pipeline needs a model with a sequence-classification"):
        tfformers.pipeline("text-classification", model=model, tokenizer=tokenizer)


def test_device_takes_transformers_spellings():
    from tfformers.pipelines.base import device_scope

    assert [device_scope(d) for d in (None, -1, "cpu", 0, "cuda:1", "cuda", "/GPU:2")] == [
        None, "/CPU:0", "/CPU:0", "/GPU:0", "/GPU:1", "/GPU:0", "/GPU:2"]


def test_clear_errors(pair, saved):
    with pytest.raises(ConfigError,
                       match="'automatic-speech-recognition'.*supports: feature-extraction, fill-mask, "
                             "image-classification, ner"):
        tfformers.pipeline("automatic-speech-recognition", model=saved("BertModel"))
    with pytest.raises(ConfigError, match="has no seq2seq-lm head"):
        tfformers.pipeline("summarization", model=saved("BertModel"))
    with pytest.raises(ConfigError, match="has no causal-lm head"):
        tfformers.pipeline("text-generation", model=saved("BertModel"))
    _, zero_shot = pair("zero-shot-classification", "BertForSequenceClassification")
    with pytest.raises(InputError, match="needs candidate_labels"):
        zero_shot(TEXTS[0])
    _, classifier = pair("text-classification", "BertForSequenceClassification")
    with pytest.raises(InputError, match="empty list"):
        classifier([])
    with pytest.raises(InputError, match="text pair is a dict"):
        classifier({"text": "a", "pair": "b"})
    with pytest.raises(TypeError, match="takes no option"):
        pair("ner", "BertForTokenClassification")[1](TEXTS[0], top_k=3)
    with pytest.raises(InputError, match="No mask token"):
        pair("fill-mask", "BertForMaskedLM")[1]("no mask here")
    with pytest.raises(InputError, match="question must be a non-empty string"):
        tfformers.pipeline("question-answering", model=str(QA_FIXTURE))(question="", context="Some text.")


# ---------------------------------------------------------------------------------- real checkpoint


def test_minilm_feature_extraction_gives_the_published_sentence_embedding():
    """all-MiniLM-L6-v2's token features, mean-pooled and normalised, are its published embedding."""
    extractor = tfformers.pipeline("feature-extraction", model=str(minilm_dir()))
    features = np.array(extractor("This is an example sentence"))[0]  # [tokens, 384]
    embedding = features.mean(axis=0)
    embedding /= np.linalg.norm(embedding)
    published = [0.067657, 0.063496, 0.048713, 0.079305, 0.037448, 0.002653, 0.039375, -0.007098]
    np.testing.assert_allclose(embedding[:8], published, atol=1e-5)
    assert math.isclose(float(np.linalg.norm(embedding)), 1.0, rel_tol=1e-6)
