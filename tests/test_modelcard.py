"""Model cards: YAML metadata that parses (huggingface_hub's ModelCard), hyperparameters, results table,
framework versions, a usage snippet that runs, base_model from the Hub id, and a person's card kept."""

import re
import uuid

import keras
import pytest
import tensorflow as tf
import yaml
from architectures import ARCHITECTURES, config_for
from conftest import HUB_USER
from huggingface_hub import ModelCard

import tfformers
from tfformers import PushToHubCallback, modelcard
from tfformers.tokenization.auto import with_tf_tensors

BERT = ARCHITECTURES[0]
WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", ",", "this", "is", "an", "example", "."]


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    model = tfformers.TFAutoModelForSequenceClassification.from_config(
        config_for(BERT, "BertForSequenceClassification", num_hidden_layers=1))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=2e-5, weight_decay=0.01))
    return model


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import BertTokenizer

    return with_tf_tensors(BertTokenizer(vocab={w: i for i, w in enumerate(WORDS)}))


def fake_history(**metrics):
    """A Keras History as fit() leaves it, without training."""
    history = keras.callbacks.History()
    history.history = {k: list(v) for k, v in metrics.items()}
    history.epoch = list(range(len(next(iter(metrics.values())))))
    return history


def front_matter(text):
    match = re.match(r"^---\n(.*?)\n---\n", text, re.S)
    assert match, "the card starts with YAML front matter"
    return yaml.safe_load(match.group(1))


def test_generated_card_metadata_hyperparameters_results_and_versions(model):
    history = fake_history(loss=[0.91234, 0.61, 0.4], val_loss=[0.8, 0.7, 0.65], val_accuracy=[0.5, 0.625, 0.75])
    card = modelcard.model_card(model, repo_id="someone/bert-news", history=history, license="apache-2.0",
                                base_model="google-bert/bert-base-uncased", datasets=["bbc-news"],
                                tags=["news"], batch_size=8)
    text = str(card)
    print("\n" + text)
    meta = front_matter(text)  # plain YAML parsing, and huggingface_hub's own:
    data = ModelCard(text).data
    assert meta["library_name"] == data.library_name == "tfformers"
    assert meta["license"] == "apache-2.0" and meta["base_model"] == "google-bert/bert-base-uncased"
    assert meta["datasets"] == ["bbc-news"] and meta["pipeline_tag"] == "text-classification"
    assert {"tfformers", "keras", "tensorflow", "bert", "news", "generated_from_keras_callback"} <= set(meta["tags"])
    results = {r.metric_name: (r.metric_type, r.metric_value, r.dataset_split, r.dataset_name, r.task_type)
               for r in data.eval_results}
    assert results == {
        "Train Loss": ("loss", 0.4, "train", "bbc-news", "text-classification"),
        "Validation Loss": ("loss", 0.65, "validation", "bbc-news", "text-classification"),
        "Validation Accuracy": ("accuracy", 0.75, "validation", "bbc-news", "text-classification"),
    }
    assert meta["model-index"][0]["name"] == "bert-news"

    body = card.text
    assert modelcard.is_generated_card(text)
    base = "google-bert/bert-base-uncased"
    assert f"fine-tuned version of [{base}](https://huggingface.co/{base}) on the bbc-news dataset" in body
    assert "- optimizer: {'name': 'Adam', 'learning_rate': 2e-05, 'weight_decay': 0.01" in body
    assert "'beta_1': 0.9" in body
    assert "- train_batch_size: 8" in body and "- epochs: 3" in body and "- training_precision: float32" in body
    assert "| Train Loss | Validation Loss | Validation Accuracy | Epoch |" in body
    assert "| 0.9123 | 0.8000 | 0.5000 | 1 |" in body and "| 0.4000 | 0.6500 | 0.7500 | 3 |" in body
    assert f"- TensorFlow {tf.__version__}" in body and f"- Keras {keras.__version__}" in body
    assert f"- tfformers {tfformers.__version__}" in body
    assert 'model = TFAutoModelForSequenceClassification.from_pretrained("someone/bert-news")' in body
    assert 'transformers.BertForSequenceClassification.from_pretrained("someone/bert-news")' in body


def test_card_without_training_and_history_forms(model):
    card = modelcard.model_card(model, repo_id="someone/untrained", history=None)
    data = ModelCard(str(card)).data
    assert data.eval_results is None and "Training results" not in card.text
    assert "generated_from_keras_callback" not in data.tags
    assert "- training_precision: float32" in card.text
    as_dict = modelcard.history_rows({"loss": [1.0, 0.5]})
    as_rows = modelcard.history_rows([{"loss": 1.0}, {"loss": 0.5}])
    assert as_dict == as_rows == [{"epoch": 1, "loss": 1.0}, {"epoch": 2, "loss": 0.5}]
    resumed = fake_history(loss=[0.4])
    resumed.epoch = [2]
    assert modelcard.history_rows(resumed) == [{"epoch": 3, "loss": 0.4}]


def test_usage_snippet_runs_against_the_hub(model, tokenizer, hub, hub_repo_id, capsys):
    model.push_to_hub(hub_repo_id, tokenizer=tokenizer)
    card = ModelCard(hub.files(hub_repo_id)["README.md"].decode())
    snippet = re.search(r"```python\n(.*?)```", card.text, re.S).group(1)
    assert f'from_pretrained("{hub_repo_id}")' in snippet
    namespace = {}
    exec(compile(snippet, "README.md", "exec"), namespace)  # noqa: S102 - our own generated snippet
    assert capsys.readouterr().out.strip() in model.config.id2label.values()
    assert namespace["outputs"].logits.shape == (1, 3)


def test_base_model_and_precision_come_from_the_loaded_model(model, hub, hub_repo_id, tmp_path):
    model.push_to_hub(hub_repo_id)
    tuned = tfformers.TFAutoModelForSequenceClassification.from_pretrained(hub_repo_id, dtype="mixed_bfloat16")
    target = f"{HUB_USER}/tuned-{uuid.uuid4().hex[:8]}"
    card = modelcard.model_card(tuned, repo_id=target)
    assert card.data.base_model == hub_repo_id
    assert "- training_precision: mixed_bfloat16" in card.text
    assert modelcard.model_card(tuned, repo_id=hub_repo_id).data.base_model is None, "not its own base"
    model.save_pretrained(tmp_path / "local")
    local = tfformers.TFAutoModelForSequenceClassification.from_pretrained(tmp_path / "local")
    assert modelcard.model_card(local, repo_id=target).data.base_model is None, "a local path is no Hub id"


def test_a_persons_card_is_kept_and_a_generated_one_is_refreshed(model, hub, hub_repo_id, tmp_path):
    bias = model.classifier.bias
    original = bias.numpy().copy()
    try:
        model.push_to_hub(hub_repo_id, license="mit")
        assert ModelCard(hub.files(hub_repo_id)["README.md"].decode()).data.license == "mit"
        bias.assign(original + 1)
        model.push_to_hub(hub_repo_id, license="apache-2.0")  # our own card: regenerated
        assert ModelCard(hub.files(hub_repo_id)["README.md"].decode()).data.license == "apache-2.0"

        mine = "---\nlicense: cc-by-4.0\n---\n\n# My model\n\nWritten by hand.\n"
        bias.assign(original + 2)
        model.push_to_hub(hub_repo_id, model_card=mine)
        assert hub.files(hub_repo_id)["README.md"].decode() == mine
        bias.assign(original + 3)
        info = model.push_to_hub(hub_repo_id, license="apache-2.0")
        assert hub.commits(hub_repo_id)[0].sha == info.oid
        assert hub.files(hub_repo_id)["README.md"].decode() == mine, "a person's card is never overwritten"

        # PushToHubCallback too: its final push keeps the card (callback hooks driven by hand, no fit)
        bias.assign(original + 4)
        callback = PushToHubCallback(tmp_path / "out", hub_model_id=hub_repo_id, save_strategy="no")
        callback.set_model(model)
        callback.on_train_begin()
        callback.on_train_end()
        assert hub.commits(hub_repo_id)[0].title == "End of training"
        assert hub.files(hub_repo_id)["README.md"].decode() == mine
        assert not (tmp_path / "out" / "README.md").exists()
    finally:
        bias.assign(original)
