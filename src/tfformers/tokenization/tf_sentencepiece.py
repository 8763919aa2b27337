"""TFSentencePieceTokenizer: a SentencePiece `.model` (Llama-2 / Mistral style) as TensorFlow ops in a Keras layer.

`tensorflow_text.SentencepieceTokenizer` runs the SentencePiece library itself in the graph, with the model's
own normalizer, dummy-prefix and byte-fallback settings. Beginning- and end-of-sequence tokens come from the
transformers tokenizer's post-processor (`add_bos_token` / `add_eos_token`), as every special token does in
`TFTokenizerBase`.

Tokens added on top of the `.model` (ids beyond its pieces: T5's `<extra_id_N>` sentinels) are cut out of
the text and take their ids, as transformers matches them; SentencePiece tokenizes the text between them.

The ids are the SentencePiece library's. transformers' fast tokenizer (the model converted to `tokenizers`'
BPE) differs from it on runs of whitespace ("a  b", leading spaces: about 2 BBC News lines in 10,000), and
matches the text of the model's own control pieces ("<s>" written in a string), which SentencePiece, and
this layer, tokenize as text. A unigram model (T5) converted to `tokenizers`' Unigram may break a tie between
two segmentations of equal score differently (3 of 11,823 BBC News lines, a 2,000-piece model).
"""

import base64

import keras
import tensorflow as tf
import tensorflow_text as tf_text

from tfformers.errors import ConfigError
from tfformers.tokenization.tf_base import TFTokenizerBase, plain_added_tokens, tokenize_around


@keras.saving.register_keras_serializable(package="tfformers")
class TFSentencePieceTokenizer(TFTokenizerBase):
    """A SentencePiece tokenizer as a Keras layer: `tokenizer(texts)` -> `{"input_ids", ...}` int32 tensors.

    `model` is the `.model` file's bytes. `get_config` holds them base64-encoded (0.5 MB for a 32k vocabulary),
    so a saved model carries its tokenizer whole, with no separate asset file to keep with it.
    """

    def __init__(self, *, model, added_tokens=(), **kwargs):
        super().__init__(**kwargs)
        self.model = base64.b64decode(model) if isinstance(model, str) else bytes(model)
        self.added_tokens = [list(token) for token in added_tokens]  # [[content, id]] beyond the model's pieces
        self._sentencepiece = tf_text.SentencepieceTokenizer(model=self.model, out_type=tf.int32)

    @classmethod
    def vocabulary_config(cls, tokenizer, tokenizer_json):
        path = getattr(tokenizer, "vocab_file", None)
        if not path:
            raise ConfigError(
                f"TFSentencePieceTokenizer reads the SentencePiece .model file; {type(tokenizer).__name__} was not "
                f"loaded from one (vocab_file={path!r}). Load it from a folder holding tokenizer.model."
            )
        with open(path, "rb") as file:
            model = file.read()
        pieces = int(tf_text.SentencepieceTokenizer(model=model).vocab_size())
        added = [[content, i] for content, i in plain_added_tokens(tokenizer, tokenizer_json) if i >= pieces]
        return {"model": model, "added_tokens": added}

    def get_config(self):
        return {**super().get_config(), "model": base64.b64encode(self.model).decode("ascii"),
                "added_tokens": self.added_tokens}

    def tokenize_ids(self, texts):
        return tokenize_around(texts, self.added_tokens, self._sentencepiece.tokenize)

    def detokenize(self, ids):
        """int ids [batch, None] (dense or ragged) -> tf.string [batch], special tokens left out."""
        return self.clean_up_spaces(self._sentencepiece.detokenize(self.without_special_tokens(ids)))
