"""The transformers 4.x names that the official TensorFlow example scripts import come from tfformers, and
do what 4.x's did: the scripts' import blocks run with `transformers` replaced by `tfformers` (without
PyTorch), and set_seed, create_optimizer / WarmUp / AdamWeightDecay, TFTrainingArguments with
HfArgumentParser, shape_list and the collators' return_tensors="tf" are checked against 4.x's semantics."""

import ast
import json
import logging
import random
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from architectures import _bert_config
from assets import minilm_dir
from oracle import WITHOUT_TORCH
from transformers import BertConfig, GPT2Config, LlamaConfig

import tfformers
from tfformers import (
    AdamWeightDecay,
    AutoTokenizer,
    DataCollatorForSeq2Seq,
    DataCollatorWithPadding,
    DefaultDataCollator,
    HfArgumentParser,
    TFAutoModelForSequenceClassification,
    TFTrainingArguments,
    WarmUp,
    create_optimizer,
    set_seed,
)
from tfformers.modeling_tf_utils import get_initializer, shape_list
from tfformers.tasks import TASKS

NAMES = {
    "tfformers": [
        "HfArgumentParser", "PretrainedConfig", "CONFIG_MAPPING", "CONFIG_NAME", "EvalPrediction",
        "PreTrainedTokenizerFast", "BertTokenizerFast", "AutoTokenizer", "AutoConfig", "AutoImageProcessor",
        "AutoFeatureExtractor", "DataCollatorWithPadding", "DefaultDataCollator", "DataCollatorForLanguageModeling",
        "DataCollatorForTokenClassification", "DataCollatorForSeq2Seq", "TF2_WEIGHTS_NAME", "TF_WEIGHTS_NAME",
        "SAFE_WEIGHTS_NAME", "WEIGHTS_NAME", "set_seed", "create_optimizer", "AdamWeightDecay", "WarmUp",
        "TFTrainingArguments", "KerasMetricCallback", "PushToHubCallback", "TFPreTrainedModel", "shape_list",
        "TF_MODEL_MAPPING", "TF_MODEL_FOR_PRETRAINING_MAPPING", "TF_MODEL_FOR_MASKED_LM_MAPPING",
        "TF_MODEL_FOR_CAUSAL_LM_MAPPING", "TF_MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING",
        "TF_MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING", "TF_MODEL_FOR_QUESTION_ANSWERING_MAPPING",
        "TF_MODEL_FOR_MULTIPLE_CHOICE_MAPPING", "TF_MODEL_WITH_LM_HEAD_MAPPING",
        "TF_MODEL_MAPPING_NAMES", "TF_MODEL_FOR_MASKED_LM_MAPPING_NAMES", "TF_MODEL_FOR_CAUSAL_LM_MAPPING_NAMES",
        "TF_MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES", "TF_MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES",
        "TF_MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES", "TF_MODEL_FOR_MULTIPLE_CHOICE_MAPPING_NAMES",
        "TF_MODEL_FOR_PRETRAINING_MAPPING_NAMES",
    ],
    "tfformers.keras_callbacks": ["KerasMetricCallback", "PushToHubCallback"],
    "tfformers.modeling_tf_utils": ["keras", "TFPreTrainedModel", "shape_list", "get_initializer"],
    "tfformers.utils": ["send_example_telemetry", "check_min_version", "is_offline_mode", "logging", "CONFIG_NAME",
                        "TF2_WEIGHTS_NAME", "PaddingStrategy"],
    "tfformers.tokenization_utils_base": ["PreTrainedTokenizerBase", "BatchEncoding"],
    "tfformers.utils.logging": ["set_verbosity_info", "set_verbosity_warning", "set_verbosity_error",
                                "set_verbosity_debug", "enable_default_handler", "disable_default_handler",
                                "enable_explicit_format", "reset_format", "get_logger", "get_verbosity"],
    "tfformers.utils.versions": ["require_version"],
    "tfformers.trainer_utils": ["get_last_checkpoint", "is_main_process", "set_seed", "EvalPrediction"],
    "tfformers.optimization": ["create_optimizer", "AdamWeightDecay", "WarmUp"],
    "tfformers.training_args": ["TFTrainingArguments"],
}

# The `from transformers... import` lines of the ten transformers 4.46 TensorFlow example scripts
# (examples/tensorflow/*/run_*.py), with "transformers" replaced by "tfformers".
SCRIPT_IMPORTS = {
    "run_text_classification": """
        from tfformers import (AutoConfig, AutoTokenizer, HfArgumentParser, PretrainedConfig, PushToHubCallback,
            TFAutoModelForSequenceClassification, TFTrainingArguments, create_optimizer, set_seed)
        from tfformers.utils import CONFIG_NAME, TF2_WEIGHTS_NAME, send_example_telemetry
    """,
    "run_glue": """
        from tfformers import (AutoConfig, AutoTokenizer, DataCollatorWithPadding, DefaultDataCollator,
            HfArgumentParser, PretrainedConfig, PushToHubCallback, TFAutoModelForSequenceClassification,
            TFTrainingArguments, create_optimizer, set_seed)
        from tfformers.trainer_utils import get_last_checkpoint, is_main_process
        from tfformers.utils import check_min_version, send_example_telemetry
    """,
    "run_mlm": """
        from tfformers import (CONFIG_MAPPING, CONFIG_NAME, TF2_WEIGHTS_NAME, TF_MODEL_FOR_MASKED_LM_MAPPING,
            AutoConfig, AutoTokenizer, DataCollatorForLanguageModeling, HfArgumentParser, PushToHubCallback,
            TFAutoModelForMaskedLM, TFTrainingArguments, create_optimizer, set_seed)
        from tfformers.utils import send_example_telemetry
        from tfformers.utils.versions import require_version
    """,
    "run_clm": """
        from tfformers import (CONFIG_MAPPING, CONFIG_NAME, TF2_WEIGHTS_NAME, TF_MODEL_FOR_CAUSAL_LM_MAPPING,
            AutoConfig, AutoTokenizer, HfArgumentParser, PushToHubCallback, TFAutoModelForCausalLM,
            TFTrainingArguments, create_optimizer, set_seed)
        from tfformers.utils import send_example_telemetry
        from tfformers.utils.versions import require_version
    """,
    "run_qa": """
        from tfformers import (AutoConfig, AutoTokenizer, EvalPrediction, HfArgumentParser,
            PreTrainedTokenizerFast, PushToHubCallback, TFAutoModelForQuestionAnswering, TFTrainingArguments,
            create_optimizer, set_seed)
        from tfformers.utils import CONFIG_NAME, TF2_WEIGHTS_NAME, check_min_version, send_example_telemetry
    """,
    "run_ner": """
        from tfformers import (CONFIG_MAPPING, AutoConfig, AutoTokenizer, DataCollatorForTokenClassification,
            HfArgumentParser, PushToHubCallback, TFAutoModelForTokenClassification, TFTrainingArguments,
            create_optimizer, set_seed)
        from tfformers.utils import send_example_telemetry
        from tfformers.utils.versions import require_version
    """,
    "run_swag": """
        from tfformers import (CONFIG_NAME, TF2_WEIGHTS_NAME, AutoConfig, AutoTokenizer, DefaultDataCollator,
            HfArgumentParser, PushToHubCallback, TFAutoModelForMultipleChoice, TFTrainingArguments,
            create_optimizer, set_seed)
        from tfformers.tokenization_utils_base import PreTrainedTokenizerBase
        from tfformers.utils import PaddingStrategy, check_min_version, send_example_telemetry
    """,
    "run_summarization": """
        from tfformers import (AutoConfig, AutoTokenizer, DataCollatorForSeq2Seq, HfArgumentParser,
            KerasMetricCallback, PushToHubCallback, TFAutoModelForSeq2SeqLM, TFTrainingArguments,
            create_optimizer, set_seed)
        from tfformers.trainer_utils import get_last_checkpoint
        from tfformers.utils import check_min_version, is_offline_mode, send_example_telemetry
        from tfformers.utils.versions import require_version
    """,
    "run_translation": """
        from tfformers import (AutoConfig, AutoTokenizer, DataCollatorForSeq2Seq, HfArgumentParser,
            KerasMetricCallback, M2M100Tokenizer, MBart50Tokenizer, MBart50TokenizerFast, MBartTokenizer,
            MBartTokenizerFast, PushToHubCallback, TFAutoModelForSeq2SeqLM, TFTrainingArguments,
            create_optimizer, set_seed)
        from tfformers.trainer_utils import get_last_checkpoint
        from tfformers.utils import check_min_version, send_example_telemetry
        from tfformers.utils.versions import require_version
    """,
    "run_image_classification": """
        from tfformers import (TF_MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING, AutoConfig, AutoImageProcessor,
            DefaultDataCollator, HfArgumentParser, PushToHubCallback, TFAutoModelForImageClassification,
            TFTrainingArguments, create_optimizer, set_seed)
        from tfformers.keras_callbacks import KerasMetricCallback
        from tfformers.modeling_tf_utils import keras
        from tfformers.trainer_utils import get_last_checkpoint, is_main_process
        from tfformers.utils import check_min_version, send_example_telemetry
        from tfformers.utils.versions import require_version
    """,
}

STILL_MISSING = {}  # every name the scripts import exists

# Run in a fresh interpreter without PyTorch: {script: sorted missing names}; the blocks with nothing missing
# are executed as written, the others name by name.
_CHECK_SCRIPTS = WITHOUT_TORCH + """
import ast, importlib, json, sys
blocks = json.loads(sys.argv[1])
missing = {}
for script, block in blocks.items():
    gone = set()
    for node in ast.parse(block).body:
        module = importlib.import_module(node.module)
        for alias in node.names:
            if not hasattr(module, alias.name):
                try:
                    importlib.import_module(node.module + "." + alias.name)
                except ImportError:
                    gone.add(alias.name)
    if not gone:
        exec(block, {})
    missing[script] = sorted(gone)
print(json.dumps(missing))
"""


def test_every_name_imports():
    import importlib

    absent = [f"{module}.{name}" for module, names in NAMES.items()
              for name in names if not hasattr(importlib.import_module(module), name)]
    assert absent == []


def test_the_example_scripts_import_blocks_run_without_torch():
    blocks = {script: textwrap.dedent(block) for script, block in SCRIPT_IMPORTS.items()}
    for block in blocks.values():
        ast.parse(block)
    result = subprocess.run([sys.executable, "-c", _CHECK_SCRIPTS, json.dumps(blocks)], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    missing = json.loads(result.stdout.strip().splitlines()[-1])
    assert {script: set(names) for script, names in missing.items() if names} == STILL_MISSING


def test_the_scripts_logging_calls():
    logger = logging.getLogger("tfformers")
    handlers, level = list(logger.handlers), logger.level
    try:
        tfformers.utils.logging.set_verbosity_info()
        tfformers.utils.logging.enable_default_handler()
        tfformers.utils.logging.enable_explicit_format()
        assert logger.getEffectiveLevel() == logging.INFO
        added = [h for h in logger.handlers if h not in handlers]
        assert added and "%(lineno)s" in added[0].formatter._fmt
        tfformers.utils.logging.disable_default_handler()
        assert not [h for h in logger.handlers if h not in handlers]
    finally:
        tfformers.utils.logging.reset_format()
        tfformers.utils.logging.set_verbosity(level or logging.WARNING)
        logger.handlers[:] = handlers


def test_utils_helpers(monkeypatch):
    from tfformers.utils import check_min_version, is_offline_mode, send_example_telemetry

    assert send_example_telemetry("run_glue", object(), framework="tensorflow") is None
    check_min_version("4.46.0.dev0")
    with pytest.raises(ValueError, match="version string"):
        check_min_version("not a version")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    assert is_offline_mode()
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "0")
    assert is_offline_mode() is False  # the test session does not set HF_HUB_OFFLINE


def test_constants():
    assert (tfformers.TF2_WEIGHTS_NAME, tfformers.CONFIG_NAME, tfformers.SAFE_WEIGHTS_NAME) == (
        "tf_model.h5", "config.json", "model.safetensors")
    assert (tfformers.TF_WEIGHTS_NAME, tfformers.WEIGHTS_NAME) == ("model.ckpt", "pytorch_model.bin")


# ------------------------------------------------------------------------------------------- set_seed


def _draws():
    return (random.random(), float(np.random.rand()), float(tf.random.uniform([])),
            float(keras.random.uniform([])))


def test_set_seed_repeats_python_numpy_and_tensorflow_draws():
    set_seed(1234)
    first = _draws()
    set_seed(1234)
    assert _draws() == first
    set_seed(4321)
    assert all(a != b for a, b in zip(_draws(), first))


# --------------------------------------------------------------------------------------- mappings


def test_mappings_follow_the_registries():
    assert tfformers.TF_MODEL_FOR_MASKED_LM_MAPPING_NAMES["bert"] == "TFBertForMaskedLM"
    assert tfformers.TF_MODEL_FOR_CAUSAL_LM_MAPPING_NAMES["gpt2"] == "TFGPT2LMHeadModel"
    assert "gpt2" not in tfformers.TF_MODEL_FOR_MASKED_LM_MAPPING_NAMES
    classifiers = tfformers.TF_MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING
    assert classifiers[BertConfig] is tfformers.TFBertForSequenceClassification
    assert tfformers.TF_MODEL_MAPPING[LlamaConfig] is tfformers.TFLlamaModel
    # the scripts' use: MODEL_TYPES = tuple(conf.model_type for conf in MAPPING.keys())
    model_types = tuple(conf.model_type for conf in tfformers.TF_MODEL_FOR_MASKED_LM_MAPPING.keys())
    assert model_types == tuple(tfformers.TF_MODEL_FOR_MASKED_LM_MAPPING_NAMES)
    assert set(model_types) == {"bert", "distilbert", "roberta", "xlm-roberta"}
    assert GPT2Config in tfformers.TF_MODEL_FOR_CAUSAL_LM_MAPPING
    assert BertConfig not in tfformers.TF_MODEL_FOR_CAUSAL_LM_MAPPING
    with pytest.raises(KeyError):
        tfformers.TF_MODEL_FOR_CAUSAL_LM_MAPPING[BertConfig]
    for config_class, model_class in tfformers.TF_MODEL_FOR_QUESTION_ANSWERING_MAPPING.items():
        assert model_class.__name__ == tfformers.TF_MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES[config_class.model_type]
    # one mapping per registered task
    assert tfformers.TF_MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES["t5"] == "TFT5ForConditionalGeneration"
    four_x_names = {"base": "", "seq2seq-lm": "_FOR_SEQ_TO_SEQ_CAUSAL_LM"}
    for task in TASKS:
        suffix = four_x_names.get(task, "_FOR_" + task.upper().replace("-", "_"))
        assert isinstance(getattr(tfformers, f"TF_MODEL{suffix}_MAPPING"), tfformers.modeling_tf_auto.TFAutoMapping)


# ------------------------------------------------------------------------------------- optimization


def _lr(schedule, step):
    return float(schedule(tf.constant(step, tf.int64)))


def test_create_optimizer_schedule_is_4x_warmup_then_polynomial_decay():
    init_lr, total, warmup, min_ratio = 1e-3, 100, 10, 0.1
    optimizer, schedule = create_optimizer(init_lr, total, warmup, min_lr_ratio=min_ratio)
    assert isinstance(schedule, WarmUp) and type(optimizer) is keras.optimizers.Adam
    end = init_lr * min_ratio

    def expected(step):  # 4.x: linear warm-up, then PolynomialDecay(decay_steps=total - warmup, power=1)
        if step < warmup:
            return init_lr * step / warmup
        done = min(step - warmup, total - warmup) / (total - warmup)
        return (init_lr - end) * (1 - done) + end

    for step in (0, 1, 5, 9, 10, 11, 55, 99, 100, 250):
        assert _lr(schedule, step) == pytest.approx(expected(step), rel=1e-6, abs=1e-12), step

    _, squared = create_optimizer(init_lr, total, warmup, power=2.0)  # `power` shapes the decay only
    assert _lr(squared, 5) == pytest.approx(init_lr * 0.5, rel=1e-6)
    assert _lr(squared, 55) == pytest.approx(init_lr * 0.5 ** 2, rel=1e-6)

    _, no_warmup = create_optimizer(init_lr, total, 0)
    assert isinstance(no_warmup, keras.optimizers.schedules.PolynomialDecay)
    assert _lr(no_warmup, 0) == pytest.approx(init_lr)


def test_warmup_power():
    schedule = WarmUp(2e-3, lambda step: 7e-4, warmup_steps=8, power=2.0)
    assert _lr(schedule, 2) == pytest.approx(2e-3 * (2 / 8) ** 2, rel=1e-6)
    assert _lr(schedule, 8) == pytest.approx(7e-4, rel=1e-6)


def test_optimizer_and_schedule_serialize():
    optimizer, schedule = create_optimizer(3e-4, 50, 5, weight_decay_rate=0.01, adam_epsilon=1e-6,
                                           adam_global_clipnorm=1.0, include_in_weight_decay=["pooler"])
    assert isinstance(optimizer, AdamWeightDecay)
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(restored) is AdamWeightDecay
    config = restored.get_config()
    assert (config["weight_decay_rate"], config["epsilon"], config["global_clipnorm"]) == (0.01, 1e-6, 1.0)
    assert config["include_in_weight_decay"] == ["pooler"]
    assert config["exclude_from_weight_decay"] == ["LayerNorm", "layer_norm", "bias", "rms_norm"]
    assert isinstance(restored._learning_rate, WarmUp)
    again = WarmUp.from_config(schedule.get_config())
    for step in (0, 3, 5, 20, 50):
        assert _lr(again, step) == pytest.approx(_lr(schedule, step))


def test_include_then_exclude_rules():
    optimizer = AdamWeightDecay(weight_decay_rate=0.1, exclude_from_weight_decay=["bias", "layer_norm"],
                                include_in_weight_decay=["pooler/.*/bias"])
    assert optimizer._do_use_weight_decay("bert/encoder/dense/kernel")
    assert not optimizer._do_use_weight_decay("bert/encoder/dense/bias")
    assert not optimizer._do_use_weight_decay("bert/embeddings/layer_normalization/gamma")
    assert optimizer._do_use_weight_decay("bert/bert_pooler/dense_12/bias")
    assert not AdamWeightDecay(weight_decay_rate=0.0)._do_use_weight_decay("x/kernel")


def _adam_first_step(g, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-8):
    m, v = (1 - beta_1) * g, (1 - beta_2) * g * g
    alpha = lr * np.sqrt(1 - beta_2) / (1 - beta_1)
    return alpha * m / (np.sqrt(v) + epsilon)


@pytest.mark.parametrize("make_config", [lambda: _bert_config(num_labels=3),
                                         lambda: LlamaConfig(num_hidden_layers=1, hidden_size=16,
                                                             num_attention_heads=2, intermediate_size=32,
                                                             vocab_size=40, num_labels=3, pad_token_id=0)],
                         ids=["bert", "llama"])
def test_adam_weight_decay_step_equals_the_hand_computed_update(make_config):
    model = TFAutoModelForSequenceClassification.from_config(make_config())
    lr, rate = 1e-2, 0.1
    optimizer, _ = create_optimizer(lr, num_train_steps=10, num_warmup_steps=0, weight_decay_rate=rate)
    variables = model.trainable_variables
    rng = np.random.default_rng(0)
    grads = [rng.normal(size=v.shape).astype("float32") for v in variables]
    before = [v.numpy() for v in variables]

    @tf.function
    def step():
        optimizer.apply_gradients(zip([tf.constant(g) for g in grads], variables))

    step()
    decayed = []
    for variable, w, g in zip(variables, before, grads):
        is_decayed = not any(word in variable.path for word in ("layer_norm", "bias", "rms_norm"))
        decayed.append(is_decayed)
        expected = w * (1 - lr * rate if is_decayed else 1) - _adam_first_step(g, lr)
        np.testing.assert_allclose(variable.numpy(), expected, rtol=1e-5, atol=1e-7, err_msg=variable.path)
    paths = [v.path for v in variables]
    # the real names: kernels and embeddings decay; LayerNorm / RMSNorm weights and biases do not
    assert any(d for p, d in zip(paths, decayed) if p.endswith("/kernel"))
    assert any(d for p, d in zip(paths, decayed) if p.endswith("/embeddings"))
    assert not any(d for p, d in zip(paths, decayed) if p.endswith("/bias") or "norm" in p)
    assert any("norm" in p for p in paths)


# ------------------------------------------------------------------------------- training arguments


def test_training_arguments_from_argv_and_json(tmp_path):
    from dataclasses import dataclass, field

    @dataclass
    class ModelArguments:
        model_name_or_path: str = field(metadata={"help": "checkpoint"})

    parser = HfArgumentParser((ModelArguments, TFTrainingArguments))
    argv = ["--model_name_or_path", "bert", "--output_dir", str(tmp_path / "out"), "--do_train",
            "--per_device_train_batch_size", "4", "--learning_rate", "3e-5", "--num_train_epochs", "2",
            "--warmup_ratio", "0.1", "--report_to", "none", "--hub_token", "hf_secret", "--seed", "7"]
    model_args, args = parser.parse_args_into_dataclasses(args=argv)
    assert model_args.model_name_or_path == "bert"
    assert (args.do_train, args.do_eval, args.per_device_train_batch_size, args.learning_rate) == (True, False, 4, 3e-5)
    assert (args.num_train_epochs, args.warmup_ratio, args.report_to, args.seed) == (2.0, 0.1, ["none"], 7)
    assert args.weight_decay == 0.0 and args.adam_epsilon == 1e-8 and args.max_grad_norm == 1.0
    assert args.logging_dir.startswith(str(tmp_path / "out" / "runs"))
    assert "hf_secret" not in str(args) and "hf_secret" not in args.to_json_string()
    assert args.hub_token == "hf_secret"

    assert isinstance(args.strategy, tf.distribute.OneDeviceStrategy)  # no GPU, no TPU here
    assert args.n_replicas == 1
    assert (args.train_batch_size, args.eval_batch_size) == (4, 8)
    assert args.should_log is False and args.get_process_log_level() == logging.WARNING
    assert args.get_warmup_steps(95) == 10

    path = tmp_path / "args.json"
    path.write_text(json.dumps({"model_name_or_path": "bert", "output_dir": str(tmp_path / "j"),
                                "per_device_eval_batch_size": 16, "do_eval": True, "push_to_hub": True,
                                "hub_model_id": "me/model"}))
    model_args, args = parser.parse_json_file(json_file=str(path))
    assert (args.do_eval, args.eval_batch_size, args.push_to_hub, args.hub_model_id) == (True, 16, True, "me/model")

    with pytest.raises(SystemExit):
        parser.parse_args_into_dataclasses(args=["--model_name_or_path", "b"])  # output_dir is required


def test_training_arguments_strategy_on_cpu():
    args = TFTrainingArguments(output_dir="out", use_cpu=True, per_device_train_batch_size=3)
    assert isinstance(args.strategy, tf.distribute.OneDeviceStrategy)
    assert args.strategy is args.strategy  # built once
    with args.strategy.scope():
        variable = tf.Variable(1.0)
    assert "CPU" in variable.device
    with pytest.raises(ValueError, match="warmup_ratio"):
        TFTrainingArguments(output_dir="out", warmup_ratio=1.5)


# ------------------------------------------------------------------------------------ shape_list & co


def test_shape_list_is_static_where_known_and_dynamic_otherwise():
    assert shape_list(np.zeros((2, 3))) == [2, 3]
    assert shape_list(tf.zeros((4, 5))) == [4, 5]
    seen = {}

    @tf.function(input_signature=[tf.TensorSpec([None, 3, None], tf.float32)])
    def f(x):
        shape = shape_list(x)
        seen["types"] = [type(d) for d in shape]
        return tf.stack([shape[0], shape[1], shape[2]])

    assert f(tf.zeros((2, 3, 7))).numpy().tolist() == [2, 3, 7]
    assert seen["types"][1] is int and all(issubclass(t, tf.Tensor) for t in seen["types"][::2])

    @tf.function(input_signature=[tf.TensorSpec(None, tf.float32)])
    def unknown_rank(x):
        return shape_list(x)

    assert unknown_rank(tf.zeros((2, 5))).numpy().tolist() == [2, 5]
    initializer = get_initializer(0.05)
    assert isinstance(initializer, keras.initializers.TruncatedNormal) and initializer.stddev == 0.05


# ------------------------------------------------------------------------------------------ collators


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(minilm_dir())


def test_default_data_collator_returns_tf_tensors():
    features = [{"input_ids": [1, 2, 3], "label": 0}, {"input_ids": [4, 5, 6], "label": 1}]
    batch = DefaultDataCollator(return_tensors="tf")(features)
    assert all(isinstance(value, tf.Tensor) for value in batch.values())
    assert batch["input_ids"].numpy().tolist() == [[1, 2, 3], [4, 5, 6]]
    assert batch["labels"].numpy().tolist() == [0, 1]
    as_numpy = DefaultDataCollator()(features)  # "np" by default
    assert isinstance(as_numpy["labels"], np.ndarray)


def test_padding_collators_return_tf_tensors(tokenizer):
    encoded = [dict(tokenizer(text), label=i) for i, text in enumerate(["A short one.", "A rather longer sentence."])]
    batch = DataCollatorWithPadding(tokenizer, return_tensors="tf")(encoded)
    assert isinstance(batch["input_ids"], tf.Tensor) and batch["input_ids"].shape[0] == 2
    assert batch["labels"].numpy().tolist() == [0, 1]
    lengths = [len(e["input_ids"]) for e in encoded]
    assert batch["attention_mask"].numpy().sum(axis=1).tolist() == lengths

    seq2seq = [{"input_ids": tokenizer("A source text.")["input_ids"], "labels": [5, 6, 7]},
               {"input_ids": tokenizer("Another, longer, source text.")["input_ids"], "labels": [8]}]
    batch = DataCollatorForSeq2Seq(tokenizer, return_tensors="tf")(seq2seq)
    assert all(isinstance(value, tf.Tensor) for value in batch.values())
    assert batch["labels"].numpy().tolist() == [[5, 6, 7], [8, -100, -100]]
    assert batch["input_ids"].shape[1] == max(len(f["input_ids"]) for f in seq2seq)
