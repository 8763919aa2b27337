"""The real all-MiniLM-L6-v2 checkpoint: published sentence-transformers values and the PyTorch oracle."""

import numpy as np
import pytest
from assets import bbc_titles, minilm_dir
from oracle import max_abs_diff

import tfformers

# Published sentence-transformers embedding of "This is an example sentence" (first 8 dimensions).
PUBLISHED = [0.067657, 0.063496, 0.048713, 0.079305, 0.037448, 0.002653, 0.039375, -0.007098]


def sentence_embeddings(model, encoded):
    """Mean over the attention mask, then L2-normalised (the checkpoint's pooling config)."""
    hidden = np.asarray(model(encoded).last_hidden_state)
    mask = np.asarray(encoded["attention_mask"])[..., None].astype(np.float32)
    pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def tokenizer():
    return tfformers.AutoTokenizer.from_pretrained(minilm_dir())


@pytest.fixture(scope="module")
def model():
    model, info = tfformers.TFAutoModel.from_pretrained(minilm_dir(), output_loading_info=True)
    assert info == {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": []}
    return model


def test_tokenizer_ids(tokenizer):
    assert tokenizer("This is an example sentence")["input_ids"] == [101, 2023, 2003, 2019, 2742, 6251, 102]


def test_published_sentence_embedding(model, tokenizer):
    assert isinstance(model, tfformers.TFBertModel)
    encoded = tokenizer(["This is an example sentence"], return_tensors="np")
    embedding = sentence_embeddings(model, encoded)[0]
    assert embedding.shape == (384,)
    print(f"\nMiniLM embedding of 'This is an example sentence': {np.round(embedding[:8], 6)} "
          f"(max |Δ| vs published {np.abs(embedding[:8] - PUBLISHED).max():.1e})")
    np.testing.assert_allclose(embedding[:8], PUBLISHED, atol=1e-5)


def test_similarity(model, tokenizer):
    encoded = tokenizer(
        ["A man is eating food.", "A man is eating a piece of bread.", "The stock market fell sharply."],
        padding=True,
        return_tensors="np",
    )
    food, bread, market = sentence_embeddings(model, encoded)
    assert abs(float(food @ bread) - 0.755) < 0.005
    assert float(food @ market) < 0.3


def test_padded_bbc_batch_matches_torch(model, tokenizer):
    import torch
    import transformers

    titles = bbc_titles(32)
    encoded = tokenizer(titles, padding=True, return_tensors="np")
    assert encoded["attention_mask"].min() == 0, "the batch must contain padding"
    reference = transformers.BertModel.from_pretrained(minilm_dir(), attn_implementation="eager").eval()
    with torch.no_grad():
        expected = reference(**{k: torch.as_tensor(v) for k, v in encoded.items()}, output_hidden_states=True)
    ours = model(encoded, output_hidden_states=True)
    print(f"\nMiniLM, 32 padded BBC titles vs PyTorch: max |Δ| last_hidden_state "
          f"{max_abs_diff(ours.last_hidden_state, expected.last_hidden_state):.1e}, pooler "
          f"{max_abs_diff(ours.pooler_output, expected.pooler_output):.1e}, hidden states "
          f"{max_abs_diff(ours.hidden_states, expected.hidden_states):.1e}")
    assert max_abs_diff(ours.last_hidden_state, expected.last_hidden_state) <= 1e-4
    assert max_abs_diff(ours.pooler_output, expected.pooler_output) <= 1e-4
    assert max_abs_diff(ours.hidden_states, expected.hidden_states) <= 1e-4
