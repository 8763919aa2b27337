"""Text generation: the compiled decoding loop, its static KV cache, logits processors and search."""

from tfformers.generation.cache import EncoderDecoderCache, StaticCache
from tfformers.generation.mixin import GenerationMixin

__all__ = ["EncoderDecoderCache", "GenerationMixin", "StaticCache"]
