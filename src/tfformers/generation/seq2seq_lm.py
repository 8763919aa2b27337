"""What an encoder–decoder LM head (`T5ForConditionalGeneration`, `BartForConditionalGeneration`) adds to a
model besides its layers: the decoder's inputs made from the labels (training), and the cache generate()
decodes into. A model file gives `decoder_cache_dimensions()`; the rest is shared."""

from tfformers.generation.cache import EncoderDecoderCache, StaticCache
from tfformers.generation.mixin import GenerationMixin
from tfformers.layers.seq2seq import decoder_inputs_from_labels, decoder_start_token_id, shift_tokens_right


class Seq2SeqLMMixin(GenerationMixin):
    """`generate()` for an encoder–decoder, `features_from_labels` (labels shifted right into
    `decoder_input_ids` when none are given) and transformers 4.x's `prepare_decoder_input_ids_from_labels`,
    which `DataCollatorForSeq2Seq(model=...)` calls. The model gives `decoder_cache_dimensions()`: (decoder
    layers, self-attention heads, head size)."""

    def allocate_cache(self, batch_size, max_length):
        """An empty cache for decoding up to `max_length` target tokens of `batch_size` sequences: the decoder's
        self-attention preallocated; cross-attention keys and values filled by the first forward pass."""
        layers, heads, head_dim = self.decoder_cache_dimensions()
        self_attention = StaticCache.zeros(layers, heads, head_dim, batch_size, max_length, self.compute_dtype)
        return EncoderDecoderCache(self_attention)

    def features_from_labels(self, features, labels):
        return decoder_inputs_from_labels(features, labels, self.config)

    def prepare_decoder_input_ids_from_labels(self, labels):
        """The decoder's inputs for `labels` [batch, target_len]: shifted right after the start token, -100
        read as the pad token."""
        return shift_tokens_right(labels, self.config.pad_token_id, decoder_start_token_id(self.config))
