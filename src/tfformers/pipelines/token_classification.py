"""token-classification (alias ner): a label per token, or per entity with `aggregation_strategy`.

The rules are transformers' pipeline's, in numpy: softmax per token; special tokens dropped; a token is a
subword when its text differs in length from the characters it covers (tokenizers with a continuing-subword
prefix such as WordPiece's "##"), else when no space precedes it; words (first/average/max) and then B-/I-
entity groups are merged; labels in `ignore_labels` (default "O") are left out.
"""

import warnings

import numpy as np

from tfformers.errors import InputError
from tfformers.pipelines.base import Pipeline, require_options
from tfformers.pipelines.registry import PipelineTask, register
from tfformers.pipelines.scores import softmax

STRATEGIES = ("none", "simple", "first", "average", "max")
_WORD_STRATEGIES = ("first", "average", "max")


class TokenClassificationPipeline(Pipeline):
    """Options: `aggregation_strategy` (none, simple, first, average, max; default none) and `ignore_labels`
    (default ["O"]). Each answer is a list of dicts: `entity` (or `entity_group` when aggregated), `score`,
    `word`, `start`, `end` (character offsets in the text) and, without aggregation, the token `index`."""

    task = "token-classification"
    token_outputs = ("logits",)

    def _sanitize_parameters(self, aggregation_strategy=None, ignore_labels=None, **kwargs):
        require_options(self.task, (), kwargs)
        post = {}
        if aggregation_strategy is not None:
            strategy = str(getattr(aggregation_strategy, "value", aggregation_strategy)).lower()
            if strategy not in STRATEGIES:
                raise InputError(f"aggregation_strategy must be one of {STRATEGIES}, got {aggregation_strategy!r}.")
            post["aggregation_strategy"] = strategy
        if ignore_labels is not None:
            post["ignore_labels"] = list(ignore_labels)
        return {}, {}, post

    def preprocess(self, item):
        if not isinstance(item, str):
            raise InputError(f"token-classification takes texts (str), got {type(item).__name__} {item!r:.80}.")
        truncation = bool(self.tokenizer.model_max_length and self.tokenizer.model_max_length > 0)
        encoded = self.tokenizer(
            item, truncation=truncation, return_special_tokens_mask=True, return_offsets_mapping=True
        )
        return [{**encoded, "sentence": item}]

    def postprocess(self, rows, aggregation_strategy="none", ignore_labels=None):
        ignore_labels = ["O"] if ignore_labels is None else ignore_labels
        row = rows[0]
        tokens = self._tokens(row, softmax(row["logits"].astype(np.float32)), aggregation_strategy)
        if aggregation_strategy in _WORD_STRATEGIES:
            entities = [self._word_entity(word, aggregation_strategy) for word in _words(tokens)]
        else:
            entities = [self._token_entity(token) for token in tokens]
        if aggregation_strategy != "none":
            entities = [self._group(group) for group in _entity_groups(entities)]
        return [
            entity for entity in entities
            if entity.get("entity") not in ignore_labels and entity.get("entity_group") not in ignore_labels
        ]

    def _tokens(self, row, scores, strategy):
        """The non-special tokens: their text, scores [num_labels], character span, index, subword flag."""
        sentence = row["sentence"]
        word_aware = bool(getattr(getattr(self.tokenizer, "_tokenizer", None), "model", None)
                          and getattr(self.tokenizer._tokenizer.model, "continuing_subword_prefix", None))
        if not word_aware and strategy in _WORD_STRATEGIES:
            warnings.warn("Tokenizer does not support real words, using fallback heuristic", UserWarning)
        tokens = []
        for index, token_scores in enumerate(scores):
            if row["special_tokens_mask"][index]:
                continue
            token_id = int(row["input_ids"][index])
            word = self.tokenizer.convert_ids_to_tokens(token_id)
            start, end = (int(offset) for offset in row["offset_mapping"][index])
            covered = sentence[start:end]
            if word_aware:
                is_subword = len(word) != len(covered)
            else:
                is_subword = start > 0 and " " not in sentence[start - 1:start + 1]
            if token_id == self.tokenizer.unk_token_id:
                word, is_subword = covered, False
            tokens.append({"word": word, "scores": token_scores, "start": start, "end": end, "index": index,
                           "is_subword": is_subword})
        return tokens

    def _label(self, index):
        return self.model.config.id2label[int(index)]

    def _token_entity(self, token):
        best = int(token["scores"].argmax())
        return {"entity": self._label(best), "score": float(token["scores"][best]), "index": token["index"],
                "word": token["word"], "start": token["start"], "end": token["end"]}

    def _word_entity(self, tokens, strategy):
        """One word's tokens -> one entity: the first token's label, the most confident token's, or the label
        of the averaged scores."""
        if strategy == "first":
            scores = tokens[0]["scores"]
        elif strategy == "max":
            scores = max(tokens, key=lambda token: token["scores"].max())["scores"]
        else:
            scores = np.nanmean(np.stack([token["scores"] for token in tokens]), axis=0)
        best = int(scores.argmax())
        return {"entity": self._label(best), "score": float(scores[best]),
                "word": self.tokenizer.convert_tokens_to_string([token["word"] for token in tokens]),
                "start": tokens[0]["start"], "end": tokens[-1]["end"]}

    def _group(self, entities):
        """Adjacent entities of one group -> {entity_group, score (mean), word, start, end}."""
        return {
            "entity_group": entities[0]["entity"].split("-", 1)[-1],
            "score": float(np.nanmean([entity["score"] for entity in entities])),
            "word": self.tokenizer.convert_tokens_to_string([entity["word"] for entity in entities]),
            "start": entities[0]["start"],
            "end": entities[-1]["end"],
        }


def _words(tokens):
    """Tokens grouped into words: a subword joins the word before it."""
    words = []
    for token in tokens:
        if words and token["is_subword"]:
            words[-1].append(token)
        else:
            words.append([token])
    return words


def _tag(label):
    """("B" or "I", tag) of a label; a label without a B-/I- prefix continues ("I")."""
    if label.startswith(("B-", "I-")):
        return label[0], label[2:]
    return "I", label


def _entity_groups(entities):
    """Runs of adjacent entities with one tag, each started anew by a B- label."""
    groups = []
    for entity in entities:
        bi, tag = _tag(entity["entity"])
        if groups and bi != "B" and tag == _tag(groups[-1][-1]["entity"])[1]:
            groups[-1].append(entity)
        else:
            groups.append([entity])
    return groups


register(PipelineTask("token-classification", TokenClassificationPipeline, "token-classification",
                      aliases=("ner",)))
