"""What every decoder stack does around its blocks: where the tokens sit (slots and positions, with or
without a KV cache) and the loop over the blocks with the outputs transformers returns."""

import tensorflow as tf

from tfformers.layers.masks import decoder_attention_mask
from tfformers.outputs import BaseModelOutput


class DecoderInputs:
    """Slots, positions and padding mask of a forward pass over `seq` new tokens.

    Without a cache the keys are the tokens themselves (slots 0 .. seq-1). With a static cache they are
    the cache's slots and the new tokens go to `cache.position` onwards. Default positions are the slots,
    as transformers counts them (arange, plus the tokens already cached); generation passes positions
    computed from the attention mask, so left padding does not shift them.
    """

    def __init__(self, inputs_embeds, attention_mask=None, position_ids=None, cache=None):
        seq = tf.shape(inputs_embeds)[1]
        self.query_slots = cache.query_slots(seq) if cache is not None else tf.range(seq)
        num_keys = cache.max_length if cache is not None else seq
        self.attention_mask = decoder_attention_mask(attention_mask, tf.shape(inputs_embeds)[0], num_keys)
        self.position_ids = self.query_slots[None, :] if position_ids is None else position_ids


def run_blocks(blocks, hidden_states, call_block, final_norm, output_hidden_states, output_attentions):
    """Runs `call_block(block, hidden_states) -> (hidden_states, attention probs)` over the blocks, then the
    final norm. The hidden states returned are the embeddings, then each block's output, the last one
    after the final norm (transformers' convention)."""
    all_hidden_states, all_attentions = [hidden_states], []
    for block in blocks:
        hidden_states, probs = call_block(block, hidden_states)
        all_hidden_states.append(hidden_states)
        all_attentions.append(probs)
    hidden_states = final_norm(hidden_states)
    all_hidden_states[-1] = hidden_states
    return BaseModelOutput(
        last_hidden_state=hidden_states,
        hidden_states=tuple(all_hidden_states) if output_hidden_states else None,
        attentions=tuple(all_attentions) if output_attentions else None,
    )
