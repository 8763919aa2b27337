"""TFAutoTokenizer: the in-graph tokenizer layer for a checkpoint's tokenizer, picked from its files.

transformers' tokenizer is loaded first (torch-free, `tfformers.AutoTokenizer`); its backend's
`tokenizer.json` names the family:
  model `WordPiece`                        -> TFBertTokenizer (tf_wordpiece.py)
  model `BPE` with a `ByteLevel` pre-tokenizer -> TFByteLevelBPETokenizer (tf_bpe.py)
  a SentencePiece `.model` file (`vocab_file`) -> TFSentencePieceTokenizer (tf_sentencepiece.py)
"""

import importlib
import json

from tfformers.errors import ConfigError

SUPPORTED = (
    "WordPiece (BERT, DistilBERT, MiniLM)",
    "byte-level BPE (GPT-2, RoBERTa, BART, Qwen2, SmolLM2)",
    "SentencePiece .model (Llama-2, Mistral, T5)",
)


def _has_byte_level_pre_tokenizer(tokenizer_json):
    pre_tokenizer = tokenizer_json.get("pre_tokenizer") or {}
    steps = pre_tokenizer.get("pretokenizers", [pre_tokenizer])  # a Sequence lists its steps
    return any(step.get("type") == "ByteLevel" for step in steps)


def tf_tokenizer_class(tokenizer):
    """The TFTokenizerBase subclass that reproduces a transformers tokenizer; a ConfigError naming the supported
    families when none does."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    tokenizer_json = json.loads(backend.to_str()) if backend is not None else {}
    model_type = (tokenizer_json.get("model") or {}).get("type")
    if model_type == "WordPiece":
        return _load("tf_wordpiece", "TFBertTokenizer")
    if model_type == "BPE" and _has_byte_level_pre_tokenizer(tokenizer_json):
        return _load("tf_bpe", "TFByteLevelBPETokenizer")
    if getattr(tokenizer, "vocab_file", None) and str(tokenizer.vocab_file).endswith(".model"):
        return _load("tf_sentencepiece", "TFSentencePieceTokenizer")
    if model_type == "Unigram":
        raise ConfigError(
            f"{type(tokenizer).__name__} is a SentencePiece unigram model loaded without its .model file (a folder "
            "saved by transformers 5 keeps only tokenizer.json); the in-graph tokenizer runs the .model itself. "
            "Put the checkpoint's spiece.model (T5) next to tokenizer.json, or load the tokenizer from the original "
            "checkpoint."
        )
    raise ConfigError(
        f"No in-graph tokenizer for {type(tokenizer).__name__} (model {model_type!r}, vocab_file "
        f"{getattr(tokenizer, 'vocab_file', None)!r}). Supported: {'; '.join(SUPPORTED)}."
    )


def _load(module, name):
    """The class `name` of `tfformers.tokenization.<module>`, imported only when a checkpoint needs it."""
    try:
        return getattr(importlib.import_module(f"tfformers.tokenization.{module}"), name)
    except (ImportError, AttributeError) as error:
        raise ConfigError(f"The in-graph tokenizer {name} is not available in this version ({error}).") from None


class TFAutoTokenizer:
    """`TFAutoTokenizer.from_pretrained(folder_or_repo)`: the in-graph tokenizer layer of a checkpoint."""

    def __init__(self):
        raise TypeError("TFAutoTokenizer is created with TFAutoTokenizer.from_pretrained().")

    @staticmethod
    def from_pretrained(pretrained_model_name_or_path, **kwargs):
        """`kwargs` go to transformers' `from_pretrained` (e.g. `revision`, `subfolder`)."""
        from tfformers.tokenization.auto import AutoTokenizer

        return TFAutoTokenizer.from_tokenizer(AutoTokenizer.from_pretrained(pretrained_model_name_or_path, **kwargs))

    @staticmethod
    def from_tokenizer(tokenizer):
        """The in-graph twin of a loaded transformers tokenizer."""
        return tf_tokenizer_class(tokenizer).from_tokenizer(tokenizer)
