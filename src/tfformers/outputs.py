"""Output containers: a dict with attribute access, as transformers' ModelOutput.

`out.logits`, `out["logits"]` and `out[0]` all work. Fields the model did not produce (e.g. `hidden_states`
without `output_hidden_states=True`) read as None and are absent from the dict, so Keras, `tf.nest` and
`tf.function` only ever see tensors.
"""

import optree


class ModelOutput(dict):
    fields: tuple = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # Keras' tree utilities (predict, functional models) walk outputs with optree in the "keras"
        # namespace; registered, an output flattens like a dict instead of being an opaque leaf.
        optree.register_pytree_node(
            cls,
            lambda out: (tuple(out.values()), tuple(out.keys()), tuple(out.keys())),
            lambda keys, values: cls(zip(keys, values)),
            namespace="keras",
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for key in [k for k, v in self.items() if v is None]:
            del self[key]

    def __getattr__(self, name):
        if name in self:
            return self[name]
        if name in self.fields:
            return None
        raise AttributeError(f"{type(self).__name__} has no field {name!r}; it has {list(self)}")

    def __getitem__(self, key):
        if isinstance(key, (int, slice)):
            return self.to_tuple()[key]
        return super().__getitem__(key)

    def to_tuple(self):
        return tuple(self.values())


class BaseModelOutput(ModelOutput):
    fields = ("last_hidden_state", "hidden_states", "attentions")


class BaseModelOutputWithCrossAttentions(ModelOutput):
    """A decoder stack of an encoder–decoder: its attention over the encoder output too."""

    fields = ("last_hidden_state", "hidden_states", "attentions", "cross_attentions")


class BaseModelOutputWithPooling(ModelOutput):
    fields = ("last_hidden_state", "pooler_output", "hidden_states", "attentions")


class MaskedLMOutput(ModelOutput):
    fields = ("loss", "logits", "hidden_states", "attentions")


class PreTrainingOutput(ModelOutput):
    fields = ("loss", "prediction_logits", "seq_relationship_logits", "hidden_states", "attentions")


class SequenceClassifierOutput(ModelOutput):
    fields = ("loss", "logits", "hidden_states", "attentions")


class TokenClassifierOutput(ModelOutput):
    fields = ("loss", "logits", "hidden_states", "attentions")


class QuestionAnsweringModelOutput(ModelOutput):
    fields = ("loss", "start_logits", "end_logits", "hidden_states", "attentions")


class MultipleChoiceModelOutput(ModelOutput):
    fields = ("loss", "logits", "hidden_states", "attentions")


class CausalLMOutput(ModelOutput):
    fields = ("loss", "logits", "past_key_values", "hidden_states", "attentions")


_ENCODER_FIELDS = ("encoder_last_hidden_state", "encoder_hidden_states", "encoder_attentions")
_DECODER_FIELDS = ("decoder_hidden_states", "decoder_attentions", "cross_attentions")


class Seq2SeqModelOutput(ModelOutput):
    """An encoder–decoder backbone: the decoder's last hidden state, the decoder's and the encoder's
    per-layer outputs when asked for, and the encoder's last hidden state."""

    fields = ("last_hidden_state",) + _DECODER_FIELDS + _ENCODER_FIELDS


class Seq2SeqLMOutput(ModelOutput):
    fields = ("loss", "logits") + _DECODER_FIELDS + _ENCODER_FIELDS


class Seq2SeqSequenceClassifierOutput(ModelOutput):
    fields = ("loss", "logits") + _DECODER_FIELDS + _ENCODER_FIELDS


class GenerateDecoderOnlyOutput(ModelOutput):
    """`generate(..., return_dict_in_generate=True)` of greedy decoding and sampling: `scores` (processed)
    and `logits` (raw) are tuples of [batch, vocab], one per generated token, when asked for."""

    fields = ("sequences", "scores", "logits")


class GenerateBeamDecoderOnlyOutput(ModelOutput):
    """Beam search's `generate(..., return_dict_in_generate=True)`: `sequences_scores` are the final beam
    scores (with `output_scores`), `beam_indices` the beam each token came from."""

    fields = ("sequences", "sequences_scores", "scores", "beam_indices")


class GenerateEncoderDecoderOutput(ModelOutput):
    """An encoder–decoder's greedy or sampled `generate(..., return_dict_in_generate=True)`: `sequences`
    are the decoder's tokens, starting with the decoder start token."""

    fields = ("sequences", "scores", "logits")


class GenerateBeamEncoderDecoderOutput(ModelOutput):
    fields = ("sequences", "sequences_scores", "scores", "beam_indices")
