"""question-answering: the span of the context that answers a question, with its score and character offsets.

transformers 5 dropped this pipeline; its rules are those of transformers 4.x's (the last with it), in numpy:
a long context is cut into windows of `max_seq_len` tokens overlapping by `doc_stride`; in each window the start
and end logits outside the context (question, special tokens, padding; the first [CLS] stays) are set to
-10000 and softmaxed; the [CLS] pair is the null answer; spans score p(start) * p(end) with
start <= end < start + max_answer_len; answers snap to whole words and the best `top_k` over all windows win.
"""

import numpy as np

from tfformers.errors import InputError
from tfformers.pipelines.base import Pipeline, require_options
from tfformers.pipelines.registry import PipelineTask, register

_NOT_IN_CONTEXT = -10000.0


def softmax_allowed(logits, allowed):
    """logits [t] -> probabilities [t], the tokens not `allowed` held at -10000 (transformers' value)."""
    logits = np.where(allowed, logits.astype(np.float32), _NOT_IN_CONTEXT)
    exp = np.exp(logits - logits.max())
    return exp / exp.sum()


def best_spans(start, end, allowed, top_k, max_answer_len):
    """The `top_k` best (start, end, score) token spans, best first, both ends on allowed tokens.

    Position 0 counts as allowed here, as in transformers (its null-answer pair scores 0 once masked)."""
    candidates = np.tril(np.triu(np.outer(start, end)), max_answer_len - 1)  # [t, t]: end - start in [0, max)
    flat = candidates.reshape(-1)
    order = np.argsort(-flat, kind="stable") if top_k > 1 else [int(np.argmax(flat))]
    usable = allowed.copy()
    usable[0] = True
    spans = []
    for index in order[:top_k]:
        s, e = divmod(int(index), len(end))
        if usable[s] and usable[e]:
            spans.append((s, e, float(candidates[s, e])))
    return spans


class QuestionAnsweringPipeline(Pipeline):
    """Called with `question=` and `context=` (strings or equal-length lists), a {"question", "context"} dict or a
    list of them. Options: `top_k` (1), `doc_stride` (min(max_seq_len // 2, 128)), `max_answer_len` (15),
    `max_seq_len` (min(model_max_length, 384)), `max_question_len` (64), `handle_impossible_answer` (False),
    `align_to_words` (True). Answers: {"score", "start", "end", "answer"}; a list of them when top_k > 1."""

    task = "question-answering"
    token_outputs = ("start_logits", "end_logits")

    def _sanitize_parameters(self, top_k=None, doc_stride=None, max_answer_len=None, max_seq_len=None,
                             max_question_len=None, handle_impossible_answer=None, align_to_words=None,
                             padding=None, **kwargs):
        require_options(self.task, (), kwargs)
        pre = {"doc_stride": doc_stride, "max_seq_len": max_seq_len, "max_question_len": max_question_len,
               "padding": padding}
        for name, value in (("top_k", top_k), ("max_answer_len", max_answer_len)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise InputError(f"{name} must be an int >= 1, got {value!r}.")
        post = {"top_k": top_k, "max_answer_len": max_answer_len,
                "handle_impossible_answer": handle_impossible_answer, "align_to_words": align_to_words}
        drop_unset = lambda params: {k: v for k, v in params.items() if v is not None}  # noqa: E731
        return drop_unset(pre), {}, drop_unset(post)

    def __call__(self, *args, question=None, context=None, **kwargs):
        if args and (question is not None or context is not None):
            raise InputError("Pass the inputs either positionally or as question= and context=, not both.")
        if args:
            if len(args) > 1:
                raise InputError("question-answering takes one positional input (a dict or a list of dicts).")
            return super().__call__(args[0], **kwargs)
        if question is None or context is None:
            raise InputError("question-answering needs both question= and context= (or {'question', 'context'}).")
        if isinstance(question, str) != isinstance(context, str):
            if isinstance(question, str):
                question = [question] * len(context)
            else:
                context = [context] * len(question)
        if isinstance(question, str):
            return super().__call__({"question": question, "context": context}, **kwargs)
        if len(question) != len(context):
            raise InputError(f"Got {len(question)} questions but {len(context)} contexts; pass as many of each.")
        return super().__call__([{"question": q, "context": c} for q, c in zip(question, context)], **kwargs)

    def _is_single(self, inputs):
        return isinstance(inputs, dict)

    def preprocess(self, item, doc_stride=None, max_seq_len=None, max_question_len=64, padding="do_not_pad"):
        # max_question_len is accepted as 4.x did; like 4.x with a fast tokenizer, nothing truncates the question
        question, context = _question_and_context(item)
        max_seq_len = max_seq_len or min(self.tokenizer.model_max_length, 384)
        doc_stride = doc_stride if doc_stride is not None else min(max_seq_len // 2, 128)
        if doc_stride > max_seq_len:
            raise InputError(f"doc_stride ({doc_stride}) is larger than max_seq_len ({max_seq_len}).")
        question_first = self.padding_side == "right"
        encoded = self.tokenizer(
            text=question if question_first else context,
            text_pair=context if question_first else question,
            padding=padding,
            truncation="only_second" if question_first else "only_first",
            max_length=max_seq_len,
            stride=doc_stride,
            return_token_type_ids=True,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            return_special_tokens_mask=True,
        )
        context_sequence = 1 if question_first else 0
        rows = []
        for window in range(len(encoded["input_ids"])):
            input_ids = np.asarray(encoded["input_ids"][window])
            allowed = np.array([sequence == context_sequence for sequence in encoded.sequence_ids(window)])
            if self.tokenizer.cls_token_id is not None:  # [CLS] stays: models point at it for "no answer"
                allowed |= input_ids == self.tokenizer.cls_token_id
            row = {name: encoded[name][window] for name in ("input_ids", "attention_mask", "token_type_ids")
                   if name in encoded}
            rows.append({**row, "allowed": allowed, "encoding": encoded[window], "context": context})
        return rows

    def postprocess(self, rows, top_k=1, handle_impossible_answer=False, max_answer_len=15, align_to_words=True):
        null_score = 1000000.0  # the lowest [CLS] pair probability over the windows
        answers = []
        for row in rows:
            allowed = row["allowed"] & (np.asarray(row["attention_mask"]) == 1)
            start = softmax_allowed(row["start_logits"], allowed)
            end = softmax_allowed(row["end_logits"], allowed)
            if handle_impossible_answer:
                null_score = min(null_score, float(start[0] * end[0]))
            start[0] = end[0] = 0.0
            for s, e, score in best_spans(start, end, allowed, top_k, max_answer_len):
                first, last = self._char_span(row["encoding"], s, e, align_to_words)
                answers.append({"score": score, "start": first, "end": last, "answer": row["context"][first:last]})
        if handle_impossible_answer:
            answers.append({"score": null_score, "start": 0, "end": 0, "answer": ""})
        answers = sorted(answers, key=lambda answer: answer["score"], reverse=True)[:top_k]
        return answers[0] if len(answers) == 1 else answers

    def _char_span(self, encoding, s, e, align_to_words):
        """Token span -> character span in the context: whole words when the tokenizer knows them."""
        sequence = 1 if self.padding_side == "right" else 0
        if align_to_words:
            try:
                first = encoding.word_to_chars(encoding.token_to_word(s), sequence_index=sequence)[0]
                last = encoding.word_to_chars(encoding.token_to_word(e), sequence_index=sequence)[1]
                return first, last
            except Exception:  # tokenizers without words: keep to the token offsets, as transformers does
                pass
        return encoding.offsets[s][0], encoding.offsets[e][1]


def _question_and_context(item):
    if not isinstance(item, dict) or set(item) != {"question", "context"}:
        raise InputError(
            f'question-answering takes {{"question": ..., "context": ...}}, got {type(item).__name__} {item!r:.80}.'
        )
    for key in ("question", "context"):
        if not isinstance(item[key], str) or not item[key].strip():
            raise InputError(f"The {key} must be a non-empty string, got {item[key]!r:.80}.")
    return item["question"], item["context"]


register(PipelineTask("question-answering", QuestionAnsweringPipeline, "question-answering"))
