"""LoRA adapters against PyTorch PEFT: the same adapter gives the same outputs in both frameworks, in both
directions (saved here and loaded by PEFT; saved by PEFT and loaded here), and merging keeps the outputs.

Each case is a tiny random PyTorch model saved with transformers, loaded here from the same folder.
"""

import json

import keras
import numpy as np
import pytest
from architectures import ARCHITECTURES, config_for, make_inputs
from oracle import max_abs_diff, torch_model, torch_outputs
from safetensors.numpy import load_file

import tfformers
from tfformers.errors import CheckpointError, ConfigError

TOLERANCE = 1e-5  # fp32, max |Δ| over the logits
ARCH = {arch.name: arch for arch in ARCHITECTURES}
# (architecture, head, target modules, PEFT task type, rsLoRA)
CASES = [
    ("bert", "BertForSequenceClassification", ["query", "value"], "SEQ_CLS", False),
    ("llama", "LlamaForCausalLM", ["q_proj", "v_proj"], "CAUSAL_LM", True),
    ("gpt2", "GPT2LMHeadModel", ["c_attn"], "CAUSAL_LM", False),
]
CASE_IDS = [head for _, head, *_ in CASES]


PARITY = {}  # (test, head) -> max |Δ| of the logits vs PEFT, printed at the end of the module (pytest -s)


@pytest.fixture(scope="module", autouse=True)
def _report_parity():
    yield
    if PARITY:
        print("\nLoRA logits, max |Δ| vs PyTorch PEFT (fp32):")
        for (test, head), delta in PARITY.items():
            print(f"  {test:28s} {head:32s} {delta:.1e}")


def assert_parity(test, head, ours, theirs):
    delta = PARITY[test, head] = max_abs_diff(ours, theirs)
    assert delta <= TOLERANCE, (test, head, delta)


@pytest.fixture(scope="module")
def base_models(tmp_path_factory):
    """head -> (PyTorch model, folder it was saved to), built once."""
    cache = {}

    def get(arch_name, head):
        if head not in cache:
            model = torch_model(head, config_for(ARCH[arch_name], head))
            folder = tmp_path_factory.mktemp(f"base-{head}")
            model.save_pretrained(folder)
            cache[head] = (model, folder)
        return cache[head]

    return get


def peft_outputs(base_folder, head, adapter_folder, inputs):
    """Logits of transformers' `head` from `base_folder` with PEFT's adapter from `adapter_folder`."""
    import transformers
    from peft import PeftModel

    base = getattr(transformers, head).from_pretrained(base_folder, attn_implementation="eager")
    model = PeftModel.from_pretrained(base, adapter_folder).eval()
    return torch_outputs(model, inputs)["logits"]


def randomize_adapters(model, seed=0):
    """Non-zero A and B (B starts at zero, which would make every comparison trivially equal)."""
    rng = np.random.default_rng(seed)
    for variable in model.trainable_weights:
        if "lora" in variable.path:
            variable.assign(rng.normal(0, 0.2, size=variable.shape).astype(np.float32))


def test_enable_lora_trains_only_the_adapters_and_the_head(base_models):
    """PEFT's trainable-parameter count; fit() changes the adapters and the classifier, nothing else;
    an untrained adapter changes nothing."""
    from peft import LoraConfig, get_peft_model

    _, head, targets, task_type, _ = CASES[0]
    pt_model, folder = base_models("bert", head)
    model = tfformers.TFBertForSequenceClassification.from_pretrained(folder)
    inputs = make_inputs(ARCH["bert"], model.config, head)
    before = model(inputs).logits.numpy()
    model.enable_lora(4, target_modules=targets, lora_alpha=8)
    np.testing.assert_array_equal(model(inputs).logits.numpy(), before)

    peft_model = get_peft_model(torch_model(head, pt_model.config),
                                LoraConfig(r=4, lora_alpha=8, target_modules=targets, task_type=task_type))
    expected_trainable, _ = peft_model.get_nb_trainable_parameters()
    assert sum(int(np.prod(v.shape)) for v in model.trainable_weights) == expected_trainable
    attentions = [block.attention.self for block in model.bert.encoder.layer]
    adapters = [dense.lora_kernel_a for a in attentions for dense in (a.query, a.value)] + \
        [dense.lora_kernel_b for a in attentions for dense in (a.query, a.value)]
    assert {id(v) for v in model.trainable_weights} == {id(v) for v in adapters + model.classifier.weights}

    initial = [variable.numpy().copy() for variable in model.weights]
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    # two steps: A gets no gradient while B is zero
    model.fit(inputs, np.array([0, 1, 2]), batch_size=3, epochs=2, verbose=0)
    changed = {id(v) for v, value in zip(model.weights, initial) if not np.array_equal(v.numpy(), value)}
    assert changed == {id(v) for v in model.trainable_weights}


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_adapter_saved_here_loads_in_peft_with_equal_outputs(case, base_models, tmp_path):
    arch_name, head, targets, task_type, use_rslora = case
    _, folder = base_models(arch_name, head)
    model = getattr(tfformers, "TF" + head).from_pretrained(folder)
    model.enable_lora(4, target_modules=targets, lora_alpha=16, use_rslora=use_rslora)
    randomize_adapters(model)
    model.save_pretrained(tmp_path / "adapter")

    assert sorted(p.name for p in (tmp_path / "adapter").iterdir()) == [
        "adapter_config.json", "adapter_model.safetensors"]
    settings = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert settings["peft_type"] == "LORA" and settings["task_type"] == task_type
    assert (settings["r"], settings["lora_alpha"], settings["target_modules"]) == (4, 16, sorted(targets))
    assert settings["base_model_name_or_path"] == str(folder)
    assert settings["fan_in_fan_out"] == (arch_name == "gpt2")
    tensors = load_file(tmp_path / "adapter" / "adapter_model.safetensors")
    some_a = next(key for key in tensors if key.endswith("lora_A.weight"))
    assert some_a.startswith("base_model.model.") and tensors[some_a].shape[0] == 4

    inputs = make_inputs(ARCH[arch_name], model.config, head)
    ours = model(inputs).logits
    theirs = peft_outputs(folder, head, tmp_path / "adapter", inputs)
    assert_parity("saved here, loaded by PEFT", head, ours, theirs)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_peft_adapter_loads_here_and_merges(case, base_models, tmp_path):
    """from_pretrained(adapter folder) finds the base as transformers does; outputs equal PEFT's; after
    merge_and_unload the plain model saves, and PyTorch loads it with PEFT's merged outputs."""
    import transformers
    from peft import LoraConfig, get_peft_model

    arch_name, head, targets, task_type, use_rslora = case
    _, folder = base_models(arch_name, head)
    base = getattr(transformers, head).from_pretrained(folder, attn_implementation="eager")
    inputs = make_inputs(ARCH[arch_name], base.config, head, seed=1)
    base_logits = torch_outputs(base, inputs)["logits"]
    peft_model = get_peft_model(base, LoraConfig(
        r=4, lora_alpha=8, target_modules=targets, task_type=task_type, use_rslora=use_rslora,
        lora_dropout=0.1, init_lora_weights=False,  # random B too: the adapter changes the outputs
    ))
    peft_model.save_pretrained(tmp_path / "peft")
    expected = torch_outputs(peft_model.eval(), inputs)["logits"]

    auto = tfformers.TFAutoModelForCausalLM if task_type == "CAUSAL_LM" else \
        tfformers.TFAutoModelForSequenceClassification
    model = auto.from_pretrained(tmp_path / "peft")
    assert model.lora_config.r == 4 and model.lora_config.use_rslora == use_rslora
    assert_parity("saved by PEFT, loaded here", head, model(inputs).logits, expected)
    assert max_abs_diff(expected, base_logits) > 1e-3

    model.merge_and_unload()
    assert model.lora_config is None and not any("lora" in w.path for w in model.weights)
    assert len(model.trainable_weights) == len(model.weights)
    assert_parity("merged here", head, model(inputs).logits, expected)
    model.save_pretrained(tmp_path / "merged")
    merged = getattr(transformers, head).from_pretrained(tmp_path / "merged", attn_implementation="eager")
    assert_parity("merged here, loaded by torch", head, torch_outputs(merged, inputs)["logits"], expected)


def test_load_adapter_onto_a_loaded_base_and_unload(base_models, tmp_path):
    from peft import LoraConfig, get_peft_model

    _, head, targets, task_type, _ = CASES[1]
    pt_model, folder = base_models("llama", head)
    peft_model = get_peft_model(torch_model(head, pt_model.config),
                                LoraConfig(r=2, target_modules=targets, init_lora_weights=False))
    peft_model.save_pretrained(tmp_path / "peft")  # no task type, no base_model_name_or_path
    model = tfformers.TFLlamaForCausalLM.from_pretrained(folder)
    inputs = make_inputs(ARCH["llama"], model.config, head)
    before = model(inputs).logits.numpy()
    model.load_adapter(tmp_path / "peft")
    assert_parity("load_adapter", head, model(inputs).logits, peft_outputs(folder, head, tmp_path / "peft", inputs))
    model.unload()
    np.testing.assert_array_equal(model(inputs).logits.numpy(), before)

    with pytest.raises(ConfigError, match="base_model_name_or_path"):
        tfformers.TFAutoModelForCausalLM.from_pretrained(tmp_path / "peft")


def test_bad_settings_and_foreign_adapters_are_refused(base_models, tmp_path):
    _, folder = base_models("bert", "BertForSequenceClassification")
    model = tfformers.TFBertForSequenceClassification.from_pretrained(folder)
    with pytest.raises(ConfigError, match=r"matches no layer.*'query'"):
        model.enable_lora(4, target_modules=["q_proj"])
    with pytest.raises(ConfigError, match="Dense layers"):
        model.enable_lora(4, target_modules=["attention"])
    with pytest.raises(ConfigError, match="lora_dropout"):
        model.enable_lora(4, target_modules=["query"], lora_dropout=0.1)
    with pytest.raises(ConfigError, match="target_modules"):
        model.enable_lora(4)
    assert model.lora_config is None and len(model.trainable_weights) == len(model.weights)

    model.enable_lora(4, target_modules=["query", "value"])
    with pytest.raises(ConfigError, match="already has a LoRA adapter"):
        model.enable_lora(4, target_modules=["key"])
    with pytest.raises(ConfigError, match="merge_and_unload"):
        model.save_pretrained(tmp_path / "bert-adapter", saved_model=True)
    model.save_pretrained(tmp_path / "bert-adapter")

    _, llama_folder = base_models("llama", "LlamaForCausalLM")
    llama = tfformers.TFLlamaForCausalLM.from_pretrained(llama_folder)
    with pytest.raises(ConfigError, match="matches no layer"):
        llama.load_adapter(tmp_path / "bert-adapter")
    settings = json.loads((tmp_path / "bert-adapter" / "adapter_config.json").read_text())
    settings["target_modules"] = ["q_proj"]
    (tmp_path / "bert-adapter" / "adapter_config.json").write_text(json.dumps(settings))
    with pytest.raises(CheckpointError, match="does not fit TFLlamaForCausalLM"):
        llama.load_adapter(tmp_path / "bert-adapter")
    assert llama.lora_config is None and not any("lora" in w.path for w in llama.weights)

    settings["use_dora"] = True
    (tmp_path / "bert-adapter" / "adapter_config.json").write_text(json.dumps(settings))
    with pytest.raises(ConfigError, match="use_dora"):
        llama.load_adapter(tmp_path / "bert-adapter")
    (tmp_path / "bert-adapter" / "adapter_config.json").write_text("{")
    with pytest.raises(ConfigError, match="adapter_config.json is not valid JSON"):
        tfformers.TFAutoModelForCausalLM.from_pretrained(tmp_path / "bert-adapter")


def test_serving_and_generate_follow_adapters_and_a_resized_vocabulary(base_models):
    """`serving` and `generate`'s compiled program, traced before an adapter is added or merged or the
    vocabulary resized, are traced again after it: each answers as the model then does (not with the layers
    it was traced over). `generate` (an XLA compilation each time) is checked across the first change only;
    every change drops both through the same call."""
    _, head, targets, _, _ = CASES[1]
    _, folder = base_models("llama", head)
    model = tfformers.TFLlamaForCausalLM.from_pretrained(folder)
    inputs = {name: value.astype(np.int32) for name, value in make_inputs(ARCH["llama"], model.config, head).items()}
    prompt = {"input_ids": inputs["input_ids"][:1], "attention_mask": inputs["attention_mask"][:1]}

    def assert_traced_functions_answer_as_the_model(generate=False):
        np.testing.assert_allclose(model.serving(inputs)["logits"].numpy(), model(inputs).logits.numpy(), atol=1e-5)
        if not generate:
            return
        tokens = model.generate(**prompt, max_new_tokens=3, do_sample=False).numpy()
        greedy = prompt["input_ids"]
        for _ in range(3):  # the model's own greedy choice, one full forward pass per token
            greedy = np.concatenate([greedy, model(greedy).logits.numpy()[:, -1:].argmax(-1)], axis=1)
        np.testing.assert_array_equal(tokens, greedy)

    assert_traced_functions_answer_as_the_model(generate=True)
    base_logits = model(inputs).logits.numpy()
    model.enable_lora(rank=2, target_modules=targets)
    randomize_adapters(model)
    assert np.abs(model(inputs).logits.numpy() - base_logits).max() > 1e-2
    assert_traced_functions_answer_as_the_model(generate=True)
    model.merge_and_unload()
    assert_traced_functions_answer_as_the_model()
    model.resize_token_embeddings(model.config.vocab_size + 2)
    assert model.serving(inputs)["logits"].shape[-1] == model.config.vocab_size
    assert_traced_functions_answer_as_the_model()
