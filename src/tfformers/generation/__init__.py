"""Text generation: the compiled decoding loop, its static KV cache, logits processors and search."""

from tfformers.generation.cache import EncoderDecoderCache, StaticCache
from tfformers.generation.mixin import GenerationMixin
from tfformers.generation.seq2seq_lm import Seq2SeqLMMixin

__all__ = ["EncoderDecoderCache", "GenerationMixin", "Seq2SeqLMMixin", "StaticCache"]
