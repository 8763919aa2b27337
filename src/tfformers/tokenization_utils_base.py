"""transformers 4.x's module path for the tokenizer base classes (`from transformers.tokenization_utils_base
import PreTrainedTokenizerBase`, as the multiple-choice example script does): transformers' own, torch-free."""

from transformers.tokenization_utils_base import BatchEncoding, PreTrainedTokenizerBase

__all__ = ["BatchEncoding", "PreTrainedTokenizerBase"]
