"""The real SmolLM2-135M-Instruct (Llama architecture, GGUF Q4_1): loaded from its GGUF file, it equals the
PyTorch oracle built from the same dequantized weights, answers through its chat template under compiled
greedy generation, and fine-tunes on BBC News text with the default causal-LM loss."""

import keras
import numpy as np
import pytest
from assets import bbc_articles, smollm2_gguf

import tfformers
from tfformers.checkpoint.gguf import GGUFReader, gguf_config
from tfformers.data import DataCollatorForLanguageModeling

GGUF = smollm2_gguf()
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def tokenizer():
    return tfformers.AutoTokenizer.from_pretrained(str(GGUF.parent), gguf_file=GGUF.name)


@pytest.fixture(scope="module")
def model():
    return tfformers.TFAutoModelForCausalLM.from_pretrained(str(GGUF.parent), gguf_file=GGUF.name)


@pytest.fixture(scope="module")
def oracle():
    """PyTorch's LlamaForCausalLM with the same dequantized weights, in float32."""
    import torch
    import transformers

    config = gguf_config(GGUF)
    config._attn_implementation = "eager"
    pt = transformers.LlamaForCausalLM(config).eval()
    reader = GGUFReader(GGUF)
    state = {key: torch.from_numpy(reader.get(key)) for key in reader.keys()}
    missing, unexpected = pt.load_state_dict(state, strict=False)
    assert not unexpected and set(missing) <= {"lm_head.weight"}  # tied to the embeddings
    return pt


def chat_prompt(tokenizer, messages=QUESTION):
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="np", return_dict=True)


def test_loads_every_tensor_as_a_tied_llama(model):
    assert type(model).__name__ == "TFLlamaForCausalLM"
    assert model.config.num_key_value_heads == 3 and model.config.tie_word_embeddings
    assert model.lm_head is None  # the logits go through the embeddings
    assert set(model.checkpoint_parameters()) == set(GGUFReader(GGUF).keys())


def test_logits_equal_the_oracle_with_the_same_weights(model, oracle, tokenizer):
    """Logits within 1e-4 of the oracle's, on the chat prompt and a left-padded pair of BBC titles.

    SmolLM2 carries activations of ~25,000 through layers 12-28, where one float32 step is 0.002: two fp32
    implementations summing in different orders differ there by a few steps, and the logits by ~1e-4
    (PyTorch's own fp32 logits are 9.8e-5 from the exact ones on the chat prompt). The reference is
    therefore the oracle in float64; the distance to its float32 run is bounded at 2e-4.
    """
    import copy

    import torch

    exact = copy.deepcopy(oracle).double()
    prompt = chat_prompt(tokenizer)
    tokenizer.padding_side = "left"
    titles = tokenizer([text.splitlines()[0] for text, _ in bbc_articles(1)[:2]], return_tensors="np", padding=True)
    for inputs in (prompt, titles):
        inputs = {"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"]}
        with torch.no_grad():
            torch_inputs = {k: torch.as_tensor(v) for k, v in inputs.items()}
            expected = exact(**torch_inputs).logits.numpy()
            expected_fp32 = oracle(**torch_inputs).logits.numpy()
        ours = model(inputs).logits.numpy()
        real = inputs["attention_mask"].astype(bool)
        assert np.abs(ours[real] - expected[real]).max() <= 1e-4
        assert np.abs(ours[real] - expected_fp32[real]).max() <= 2e-4


def test_answers_the_capital_of_france_like_the_oracle(model, oracle, tokenizer):
    import torch

    prompt = chat_prompt(tokenizer)
    tokens = np.asarray(model.generate(prompt["input_ids"], attention_mask=prompt["attention_mask"], max_new_tokens=16))
    answer = tokenizer.decode(tokens[0, prompt["input_ids"].shape[1]:], skip_special_tokens=True)
    assert answer.strip() == "The capital of France is Paris."
    with torch.no_grad():
        expected = oracle.generate(torch.as_tensor(prompt["input_ids"]), max_new_tokens=16, do_sample=False)
    np.testing.assert_array_equal(tokens, expected.numpy())


def test_fine_tuning_on_bbc_news_lowers_held_out_perplexity(model, tokenizer):
    """A few Adam steps of causal-LM training (compile() without a loss: the shifted next-token loss) on
    BBC article openings, in a graph; perplexity on held-out articles drops. The held-out loss is the `loss`
    output of eager calls with the labels (the same loss, equal to `evaluate()`'s): `evaluate()` would first
    trace the 30-layer forward pass into a second graph, about three times the CPU time of the eager calls."""
    import datasets

    texts = [" ".join(text.split()[:40]) for text, _ in bbc_articles(8)]  # 40 articles, 8 per class
    held_out = texts[::5]  # 8, from every class
    train = [text for i, text in enumerate(texts) if i % 5]

    def tokenized(lines):
        encoded = tokenizer(lines, truncation=True, max_length=32)
        return datasets.Dataset.from_dict(
            {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}
        )

    tokenizer.padding_side = "right"
    collator = DataCollatorForLanguageModeling(tokenizer, mlm=False)
    # one batch shape, so Keras traces the 30-layer step once (each new length would retrace it)
    prepare = dict(batch_size=4, collate_fn=collator, pad_to_multiple_of=32)
    train_set = model.prepare_tf_dataset(tokenized(train), shuffle=True, seed=0, **prepare)
    held_out_set = model.prepare_tf_dataset(tokenized(held_out), shuffle=False, **prepare)

    def held_out_loss():  # the mean over batches of 4, as evaluate() computes it
        return float(np.mean([model({**x, "labels": y}).loss for x, y in held_out_set]))

    model.compile(optimizer=keras.optimizers.Adam(5e-5))
    before = held_out_loss()
    model.fit(train_set, epochs=1, verbose=0)
    after = held_out_loss()
    assert np.exp(after) < 0.9 * np.exp(before), (np.exp(before), np.exp(after))
