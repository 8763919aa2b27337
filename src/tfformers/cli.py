"""The `tfformers` command: fine-tune a text classifier, predict with it, generate text with a causal LM,
push a model folder to the Hub.

    tfformers fine-tune MODEL --dataset news.csv --text-column text --label-column label -o out/
    tfformers predict out/ "Shares fell sharply" "The striker scored twice"
    tfformers generate --model FOLDER --gguf-file model.gguf --chat "What is the capital of France?"
    tfformers push out/ my-name/news-classifier
    tfformers export --model out/ --output exports/news        # exports/news/1: strings in, labels out
    tfformers serve exports/ --port 8501
    tfformers convert old-tf-model/ new-model/                 # transformers 4.x tf_model.h5 -> safetensors

User errors (a missing column or file, an unknown model, labels that do not fit the model) print one line
`tfformers <command>: error: ...` to stderr and exit with status 2, without a traceback; any other failure
(a full disk, an error inside a library) prints one such line too and exits with status 1, and Ctrl-C
with 130. `--debug` (or TFFORMERS_DEBUG=1) shows the traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import tempfile
import time

import numpy as np

from tfformers.errors import TFFormersError

__all__ = ["main"]

logger = logging.getLogger("tfformers")

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
_FILE_FORMATS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}
# generate's options passed to model.generate() under the same name when given (None: the checkpoint's
# generation config decides); the sampling ones only act when the decoding samples
_DECODING_OPTIONS = ("max_new_tokens", "do_sample", "temperature", "top_k", "top_p", "min_p",
                     "repetition_penalty", "num_beams")
_SAMPLING_OPTIONS = ("temperature", "top_k", "top_p", "min_p")


class UsageError(TFFormersError, ValueError):
    """A command-line argument that cannot work (the message says which and why)."""


class SaveError(OSError):
    """The trained model could not be saved where asked (the message says where it went instead); exit
    status 1, as for other failures of the machine rather than of the arguments."""


# -------------------------------------------------------------------------------------------- arguments


def _argument_type(convert, valid, expected):
    """An argparse `type`: `convert` the text, then check it with `valid`; errors say what was `expected`."""

    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not valid(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
        return value

    return parse


_positive_int = _argument_type(int, lambda value: value >= 1, "a positive integer")
_positive_float = _argument_type(float, lambda value: value > 0, "a positive number")
_non_negative_int = _argument_type(int, lambda value: value >= 0, "a whole number >= 0")
_probability = _argument_type(float, lambda value: 0 <= value <= 1, "a number in [0, 1]")


def _test_size(text):
    """A fraction in [0, 1) or a number of rows (>= 1)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction or a row count, got {text!r}") from None
    if value >= 1:
        if not value.is_integer():
            raise argparse.ArgumentTypeError(f"a row count must be whole, got {text}")
        return int(value)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1) or a row count, got {text}")
    return value


class _Parser(argparse.ArgumentParser):
    """Argument errors in one line, as every other error of the command (argparse adds its usage text)."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser():
    parser = _Parser(
        prog="tfformers",
        description="Hugging Face Hub models as native Keras 3 models on TensorFlow.",
        epilog="examples:\n"
        "  tfformers fine-tune sentence-transformers/all-MiniLM-L6-v2 --dataset news.csv \\\n"
        "      --text-column text --label-column topic --epochs 1 -o out/news\n"
        "  tfformers predict out/news \"Shares fell sharply after the profit warning\"\n"
        "  tfformers generate --model FOLDER --gguf-file model.gguf --chat \"What is the capital of France?\"\n"
        "  tfformers push out/news my-name/news-classifier\n"
        "  tfformers serve exports/ --port 8501\n\n"
        "Run 'tfformers COMMAND --help' for a command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    ft = commands.add_parser(
        "fine-tune",
        help="fine-tune a model for text classification and save it",
        description="Fine-tune a checkpoint for text classification on a dataset with a text and a label "
        "column, report held-out accuracy and a confusion table, and save the model with its tokenizer.",
    )
    _add_model_argument(ft, "a local model folder or a Hub model id")
    data = ft.add_argument_group("data")
    data.add_argument("--dataset", "--train-file", dest="dataset", required=True, metavar="DATA",
                      help="a .csv, .tsv, .json, .jsonl or .parquet file, a folder of such files, or a Hub "
                      "dataset id")
    data.add_argument("--dataset-config", metavar="NAME", help="the configuration of a Hub dataset")
    data.add_argument("--text-column", default="text", metavar="NAME",
                      help="column holding the text (default: text)")
    data.add_argument("--label-column", default="label", metavar="NAME",
                      help="column holding the label, strings or integers (default: label)")
    data.add_argument("--split", default="train", metavar="NAME", help="split to train on (default: train)")
    data.add_argument("--eval-split", metavar="NAME",
                      help="split to evaluate on (default: hold out --test-size of the training split)")
    data.add_argument("--test-size", type=_test_size, default=0.1, metavar="SIZE",
                      help="fraction (or number of rows) held out for evaluation (default: 0.1; 0: none)")
    train = ft.add_argument_group("training")
    train.add_argument("--epochs", type=_positive_int, default=2, metavar="N",
                       help="passes over the data (default: 2)")
    train.add_argument("--batch-size", type=_positive_int, default=16, metavar="N",
                       help="examples per step (default: 16)")
    train.add_argument("--learning-rate", type=_positive_float, default=1e-4, metavar="LR",
                       help="Adam's initial learning rate, decayed linearly to 0 (default: 1e-4)")
    train.add_argument("--max-length", type=_positive_int, default=128, metavar="TOKENS",
                       help="truncate texts to this many tokens (default: 128)")
    train.add_argument("--seed", type=int, default=0,
                       help="seed of the split, the shuffling and a new head (default: 0)")
    train.add_argument("--num-labels", type=_positive_int, metavar="N",
                       help="expected number of classes; an error if the labels have another count")
    train.add_argument("--ignore-mismatched-sizes", action="store_true",
                       help="replace a classification head whose size differs from the label count")
    train.add_argument("--jit-compile", action=argparse.BooleanOptionalAction, default=False,
                       help="train with XLA on length buckets (default: off: on CPU it measured no faster, "
                       "and each bucket costs a compilation)")
    train.add_argument("--tokenizer", metavar="PATH", help="tokenizer folder or Hub id (default: MODEL's)")
    out = ft.add_argument_group("output")
    out.add_argument("-o", "--output-dir", required=True, metavar="DIR",
                     help="folder to save the model and tokenizer in (save_pretrained)")
    out.add_argument("--push-to-hub", metavar="REPO_ID",
                     help="also upload the saved folder, with a generated model card, to this Hub repo")
    _add_hub_options(out, commit_message=False)
    _add_common(ft)
    ft.set_defaults(run=_fine_tune, parser=ft)

    pr = commands.add_parser(
        "predict",
        help="classify texts with a fine-tuned model",
        description="Print the most likely label and its probability for each text.",
    )
    _add_model_argument(pr, "a fine-tuned model folder or Hub model id")
    pr.add_argument("texts", nargs="*", metavar="TEXT", help="texts to classify")
    pr.add_argument("-i", "--input", metavar="FILE", help="read texts from FILE, one per line ('-': stdin)")
    pr.add_argument("--batch-size", type=_positive_int, default=32, metavar="N",
                    help="texts per batch (default: 32)")
    pr.add_argument("--max-length", type=_positive_int, metavar="TOKENS",
                    help="truncate texts to this many tokens (default: the saved tokenizer's model_max_length)")
    pr.add_argument("--json", action="store_true", help="print one JSON object per text: text, label, score")
    pr.add_argument("--tokenizer", metavar="PATH", help="tokenizer folder or Hub id (default: MODEL's)")
    pr.add_argument("--token", help="Hub token (default: HF_TOKEN or the stored login)")
    _add_common(pr)
    pr.set_defaults(run=_predict, parser=pr)

    ge = commands.add_parser(
        "generate",
        help="generate text after prompts with a causal language model",
        description="Continue each prompt (or answer it, with --chat) with a causal language model (GPT-2, "
        "Llama, Mistral, Qwen2; safetensors or GGUF) and print only the generated text. The prompts run as "
        "one left-padded batch through one XLA-compiled decoding program; compiling it is part of the first "
        "call's time (--warmup times it apart). Decoding options default to the checkpoint's generation "
        "config (else transformers' defaults: greedy, 20 new tokens).",
    )
    _add_model_argument(ge, "a local model folder, a Hub model id, or the path of a .gguf file")
    ge.add_argument("texts", nargs="*", metavar="PROMPT", help="prompts to generate from")
    ge.add_argument("-i", "--input", metavar="FILE", help="read prompts from FILE, one per line ('-': stdin)")
    ge.add_argument("--gguf-file", metavar="NAME",
                    help="a GGUF checkpoint in MODEL's folder or Hub repo: weights, config and tokenizer")
    ge.add_argument("--chat", action="store_true",
                    help="send each prompt as a user message through the tokenizer's chat template")
    ge.add_argument("--system", metavar="TEXT", help="with --chat: a system message before each prompt")
    ge.add_argument("--json", action="store_true",
                    help="print one JSON object per prompt: prompt, completion, new_tokens")
    ge.add_argument("--warmup", action="store_true",
                    help="run the generation twice and time the second run: the compile time is reported "
                    "apart, and tokens/s are the compiled program's own")
    ge.add_argument("--tokenizer", metavar="PATH", help="tokenizer folder or Hub id (default: MODEL's)")
    ge.add_argument("--revision", metavar="REV", help="branch, tag or commit of a Hub MODEL (default: main)")
    ge.add_argument("--token", help="Hub token (default: HF_TOKEN or the stored login)")
    decoding = ge.add_argument_group("decoding (default: the checkpoint's generation config)")
    decoding.add_argument("--max-new-tokens", type=_positive_int, metavar="N",
                          help="tokens to generate at most per prompt (default: the generation config's, else 20)")
    decoding.add_argument("--do-sample", action=argparse.BooleanOptionalAction, default=None,
                          help="sample each token from the model's distribution instead of taking the most "
                          "likely one (greedy)")
    decoding.add_argument("--temperature", type=_positive_float, metavar="T",
                          help="with sampling: divide the logits by T (< 1: more focused, > 1: more varied)")
    decoding.add_argument("--top-k", type=_non_negative_int, metavar="K",
                          help="with sampling: keep the K most likely tokens (0: all)")
    decoding.add_argument("--top-p", type=_probability, metavar="P",
                          help="with sampling: keep the most likely tokens whose probabilities add up to P")
    decoding.add_argument("--min-p", type=_probability, metavar="M",
                          help="with sampling: drop tokens less likely than M times the most likely one")
    decoding.add_argument("--seed", type=int, metavar="S", help="seed of the sampling: the same seed, the same text")
    decoding.add_argument("--repetition-penalty", type=_positive_float, metavar="R",
                          help="penalize tokens already in the text (R > 1 discourages repeating them)")
    decoding.add_argument("--num-beams", type=_positive_int, metavar="B",
                          help="beam search over B candidate texts (1: no beam search)")
    _add_common(ge)
    ge.set_defaults(run=_generate, parser=ge)

    pu = commands.add_parser(
        "push",
        help="upload a saved model folder to the Hub",
        description="Upload every file of a folder written by save_pretrained (or fine-tune) to a Hub "
        "repository as one commit; the repository is created if needed. A model card (README.md) is "
        "generated when the folder has none and the repository has no hand-written one.",
    )
    pu.add_argument("folder", metavar="FOLDER", help="a folder written by save_pretrained")
    pu.add_argument("repo_id", metavar="REPO_ID", help="the Hub repository, 'namespace/name'")
    _add_hub_options(pu, commit_message=True)
    _add_common(pu)
    pu.set_defaults(run=_push)

    ex = commands.add_parser(
        "export",
        help="export a model with its tokenizer for serving (SavedModel or LiteRT)",
        description="Write MODEL and its tokenizer as one artifact in TF Serving's layout, OUTPUT/VERSION/ "
        "(OUTPUT is BASE/NAME). A SavedModel's serving_default signature takes raw strings ('text'; "
        "'question' and 'context' for question answering) and answers the task; 'from_ids' takes token ids. "
        "It loads with TensorFlow and tensorflow-text alone and serves with `tfformers serve BASE`. "
        "--format litert writes OUTPUT/VERSION/model.tflite (token ids in). See docs/deployment.md.",
    )
    _add_model_argument(ex, "a model folder, Hub model id, or .gguf file")
    ex.add_argument("-o", "--output", required=True, metavar="BASE/NAME",
                    help="the model's folder in TF Serving's layout; the version folder goes below it")
    ex.add_argument("--task", help="what the artifact answers: text-classification, token-classification, "
                    "question-answering, feature-extraction, fill-mask, text-generation or text2text-generation "
                    "(also named summarization and translation) (default: the checkpoint's head)")
    ex.add_argument("--version", type=_positive_int, metavar="N",
                    help="version number (default: one above the highest in OUTPUT, 1 in a new folder)")
    ex.add_argument("--format", choices=("saved_model", "litert"), default="saved_model",
                    help="saved_model (default; strings in, for TF Serving and `tfformers serve`) or litert")
    ex.add_argument("--tokenizer", metavar="PATH", help="tokenizer folder or Hub id (default: MODEL's)")
    ex.add_argument("--gguf-file", metavar="NAME", help="a GGUF checkpoint in MODEL's folder or Hub repo")
    ex.add_argument("--revision", metavar="REV", help="branch, tag or commit of a Hub MODEL (default: main)")
    ex.add_argument("--token", help="Hub token (default: HF_TOKEN or the stored login)")
    sizes = ex.add_argument_group("sizes and generation")
    sizes.add_argument("--max-length", type=_positive_int, metavar="TOKENS",
                       help="tokens per text at most (text-to-text: per source text); longer texts are "
                       "truncated (default: the model's limit)")
    sizes.add_argument("--sequence-length", type=_positive_int, metavar="TOKENS",
                       help="with --format litert: the fixed input length (default: 128)")
    sizes.add_argument("--max-new-tokens", type=_positive_int, metavar="N",
                       help="text generation: tokens generated per prompt (default: the generation config's)")
    sizes.add_argument("--max-prompt-length", type=_positive_int, metavar="TOKENS",
                       help="text generation: prompt tokens kept, the last ones (default: 64)")
    sizes.add_argument("--chat", action="store_true",
                       help="text generation: wrap each text in the tokenizer's chat template as a user message")
    sizes.add_argument("--num-beams", type=_positive_int, metavar="N",
                       help="text (and text-to-text) generation: beam search with N beams (default: the generation "
                       "config's)")
    sizes.add_argument("--prefix", metavar="TEXT",
                       help="text-to-text generation: put before each text, e.g. 'summarize: ' for T5 (default: "
                       "the config's prefix)")
    _add_common(ex)
    ex.set_defaults(run=_export, parser=ex)

    se = commands.add_parser(
        "serve",
        help="serve SavedModels over TF Serving's REST API",
        description="Serve the SavedModels under BASE over TF Serving's REST API (status, metadata, :predict), "
        "on TF Serving's layout: BASE/NAME/VERSION/saved_model.pb, or BASE/VERSION/saved_model.pb for one "
        "model. Each model serves its newest version; new version folders are picked up without a restart. "
        "Concurrent predict requests are merged into batches. See docs/serving.md.",
    )
    se.add_argument("base", metavar="BASE", help="the model base path")
    se.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1; 0.0.0.0: all)")
    se.add_argument("--port", type=_non_negative_int, default=8501,
                    help="port to listen on (default: 8501, TF Serving's REST port; 0: any free port)")
    se.add_argument("--model-name", metavar="NAME",
                    help="serve BASE as one model of this name (default: BASE's folder name when BASE holds "
                    "version folders, else each subfolder's name)")
    se.add_argument("--poll-seconds", type=_positive_float, default=1.0, metavar="S",
                    help="look for new versions every S seconds (default: 1)")
    limits = se.add_argument_group("batching and limits")
    limits.add_argument("--batching", action=argparse.BooleanOptionalAction, default=True,
                        help="merge concurrent predict requests into one call (default: on)")
    limits.add_argument("--max-batch-size", type=_positive_int, default=32, metavar="N",
                        help="rows per merged call at most (default: 32)")
    limits.add_argument("--batch-timeout-ms", type=_argument_type(float, lambda value: value >= 0, "a number >= 0"),
                        default=2.0, metavar="MS",
                        help="how long a request waits for others to merge with (default: 2)")
    limits.add_argument("--max-queue", type=_positive_int, default=256, metavar="N",
                        help="requests waiting at most; more are refused with 503 (default: 256)")
    limits.add_argument("--request-timeout-s", type=_positive_float, default=30.0, metavar="S",
                        help="answer 504 to a predict request not done after S seconds (default: 30)")
    limits.add_argument("--max-body-bytes", type=_positive_int, default=16 << 20, metavar="N",
                        help="longest request body; longer ones get 413 (default: 16 MiB)")
    limits.add_argument("--max-string-bytes", type=_positive_int, default=64 << 10, metavar="N",
                        help="longest string value in a request; longer ones get 400 (default: 64 KiB)")
    se.add_argument("--access-log", action="store_true", help="log every request (default: errors only)")
    _add_common(se)
    se.set_defaults(run=_serve)

    co = commands.add_parser(
        "convert",
        help="convert a transformers 4.x TensorFlow folder (tf_model.h5) to safetensors",
        description="Write NEW_DIR with OLD_DIR's transformers 4.x TensorFlow weights (tf_model.h5, or its "
        "shards and tf_model.h5.index.json) as safetensors in PyTorch transformers' names and layouts, and "
        "every other file of OLD_DIR (config.json, tokenizer files) copied. NEW_DIR must not exist or be "
        "empty; OLD_DIR is not changed. See docs/migrating.md.",
    )
    co.add_argument("old_dir", metavar="OLD_DIR", help="a folder written by transformers 4.x TF save_pretrained")
    co.add_argument("new_dir", metavar="NEW_DIR", help="the folder to write (new or empty)")
    co.add_argument("--max-shard-size", default="5GB", metavar="SIZE",
                    help="shard the safetensors above this size, e.g. 500MB (default: 5GB)")
    _add_common(co)
    co.set_defaults(run=_convert)
    return parser


def _add_model_argument(parser, help):
    parser.add_argument("model", nargs="?", metavar="MODEL", help=f"{help} (or --model MODEL)")
    parser.add_argument("--model", dest="model_option", metavar="MODEL", help=argparse.SUPPRESS)


def _resolve_model(args):
    """MODEL comes as the first argument or as --model (then, for predict and generate, every argument is a
    text)."""
    if args.model_option:
        if args.model is not None:
            if hasattr(args, "texts"):
                args.texts = [args.model, *args.texts]
            elif args.model != args.model_option:
                args.parser.error(f"MODEL given twice: {args.model!r} and --model {args.model_option!r}")
        args.model = args.model_option
    if not args.model:
        args.parser.error("the following arguments are required: MODEL")


def _add_hub_options(group, *, commit_message):
    group.add_argument("--private", action="store_true", default=None, help="create the Hub repo as private")
    group.add_argument("--token", help="Hub token with write access (default: HF_TOKEN or the stored login)")
    if commit_message:
        group.add_argument("--commit-message", metavar="TEXT", help="the commit's title")
        group.add_argument("--revision", metavar="BRANCH", help="branch to push to (created if missing)")
        group.add_argument("--create-pr", action="store_true", help="open a pull request instead of committing")


def _add_common(parser):
    parser.add_argument("-q", "--quiet", action="store_true", help="print results only, no progress or info")
    parser.add_argument("--debug", action="store_true",
                        help="on an error, show the traceback (also: TFFORMERS_DEBUG=1)")


def _version():
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tfformers")
    except PackageNotFoundError:
        return "unknown"


# ------------------------------------------------------------------------------------------------ data


def load_data(spec, *, config=None, token=None):
    """A `datasets.DatasetDict` from a local file (CSV/TSV/JSON/JSON Lines/Parquet), a folder of such files,
    or a Hub dataset id."""
    import datasets
    from datasets.exceptions import DatasetGenerationError, DatasetNotFoundError

    extension = os.path.splitext(spec)[1].lower()
    try:
        if os.path.isfile(spec):
            if extension not in _FILE_FORMATS:
                raise UsageError(
                    f"cannot read {spec!r}: unknown file type {extension or '(none)'}; use "
                    f"{', '.join(_FILE_FORMATS)}."
                )
            kwargs = {"delimiter": "\t"} if extension == ".tsv" else {}
            return datasets.load_dataset(_FILE_FORMATS[extension], data_files=spec, **kwargs)
        looks_local = extension in _FILE_FORMATS or spec.startswith((".", "/", "~"))
        if looks_local and not os.path.isdir(spec):
            raise UsageError(f"no such file: {spec!r}.")
        if os.path.isdir(spec):
            return datasets.load_dataset(spec)
        return datasets.load_dataset(spec, config, token=token)
    except DatasetNotFoundError as error:
        raise UsageError(
            f"{spec!r} is not a local file or folder, and the Hub has no dataset {spec!r} (or it is "
            f"private, or the Hub cannot be reached): {_one_line(error)}"
        ) from None
    except DatasetGenerationError as error:
        cause = error.__cause__ or error
        raise UsageError(f"cannot read {spec!r}: {_one_line(cause)}") from None
    except (FileNotFoundError, ConnectionError, ValueError) as error:
        if isinstance(error, TFFormersError):
            raise
        raise UsageError(f"cannot load the dataset {spec!r}: {_one_line(error)}") from None


def _split(dataset_dict, name, spec, option):
    if name not in dataset_dict:
        raise UsageError(f"{spec!r} has no split {name!r} ({option}); its splits are {list(dataset_dict)}.")
    return dataset_dict[name]


def _check_column(dataset, name, option, spec):
    if name not in dataset.column_names:
        raise UsageError(
            f"{spec!r} has no column {name!r} ({option}); its columns are {dataset.column_names}."
        )


def _load_tokenizer(name, token=None, **kwargs):
    from tfformers.tokenization import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name, token=token, **kwargs)
    except TFFormersError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UsageError(f"cannot load a tokenizer from {name!r}: {_one_line(error)} (pass --tokenizer)") from None


# -------------------------------------------------------------------------------------------- commands


def _fine_tune(args):
    from tfformers import finetune, sharing

    _check_writable(args.output_dir)
    dataset_dict = load_data(args.dataset, config=args.dataset_config, token=args.token)
    train = _split(dataset_dict, args.split, args.dataset, "--split")
    for name, option in ((args.text_column, "--text-column"), (args.label_column, "--label-column")):
        _check_column(train, name, option, args.dataset)
    eval_data = None
    if args.eval_split:
        eval_data = _split(dataset_dict, args.eval_split, args.dataset, "--eval-split")
        for name, option in ((args.text_column, "--text-column"), (args.label_column, "--label-column")):
            _check_column(eval_data, name, option, f"{args.dataset}[{args.eval_split}]")
    if isinstance(args.test_size, int) and args.test_size >= len(train):
        raise UsageError(f"--test-size {args.test_size} leaves no training rows ({len(train)} in all).")
    tokenizer = _load_tokenizer(args.tokenizer, args.token) if args.tokenizer else None
    if tokenizer is None:
        _model_exists(args.model, args.token)  # an unknown model is reported as such, not as a tokenizer error
        tokenizer = _load_tokenizer(args.model, args.token)
    result = finetune.fine_tune(
        args.model,
        train,
        text_column=args.text_column,
        label_column=args.label_column,
        eval_dataset=eval_data,
        test_size=args.test_size,
        tokenizer=tokenizer,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        max_length=args.max_length,
        num_labels=args.num_labels,
        ignore_mismatched_sizes=args.ignore_mismatched_sizes,
        jit_compile=args.jit_compile,
        seed=args.seed,
        verbose=0 if args.quiet else "auto",
        token=args.token,
    )
    names = ", ".join(result.labels.names)
    print(f"Trained on {result.num_train} examples, {result.labels.num_labels} labels: {names}")
    if result.evaluation is not None:
        ev = result.evaluation
        correct = int(ev.confusion.trace())
        print(f"Held-out accuracy: {ev.accuracy:.2%} ({correct}/{ev.num_examples})")
        print(ev.table())
    _save_trained(result, args.output_dir)
    print(f"Saved to {args.output_dir}")
    if args.push_to_hub:
        info = sharing.push_folder_with_card(
            args.output_dir, args.push_to_hub, token=args.token, private=args.private,
            commit_message=f"Fine-tune {args.model} with tfformers",
            **_card_details(args, result),
        )
        print(f"Pushed to {args.push_to_hub}: {info.commit_url}")
    return 0


def _check_writable(folder):
    """Refuses an output folder that cannot be created or written, before hours of training. Folders created
    for the check are removed again, so a command that fails later leaves nothing behind."""
    created = []
    existing = os.path.abspath(folder)
    while not os.path.lexists(existing):
        created.append(existing)
        existing = os.path.dirname(existing)
    try:
        if not os.path.isdir(existing):
            raise UsageError(f"cannot write the output folder {folder!r} (--output-dir): {existing!r} is a file.")
        for path in reversed(created):
            os.mkdir(path)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise UsageError(
            f"cannot write the output folder {folder!r} (--output-dir): {_one_line(error.strerror or error)}."
        ) from None
    finally:
        for path in created:  # innermost first
            with contextlib.suppress(OSError):
                os.rmdir(path)


def _save_trained(result, folder):
    """Saves the fine-tuned model and tokenizer into `folder`; if that fails, into a fallback folder (next
    to it, else in the temporary directory) and raises an error that names both, so training is never
    lost to a full disk or a changed permission."""
    try:
        result.model.save_pretrained(folder, tokenizer=result.tokenizer)
        return
    except Exception as error:  # any failure: the model must still land somewhere
        failure = error
    stamp = time.strftime("%Y%m%d-%H%M%S")
    fallbacks = (f"{os.path.abspath(folder)}.unsaved-{stamp}",
                 os.path.join(tempfile.gettempdir(), f"tfformers-unsaved-{stamp}"))
    for fallback in fallbacks:
        try:
            result.model.save_pretrained(fallback, tokenizer=result.tokenizer)
        except Exception:  # try the next place
            continue
        raise SaveError(f"saving to {folder!r} failed ({_one_line(failure)}); the trained model was saved to "
                        f"{fallback!r} instead: move it where you want it.") from failure
    raise SaveError(f"saving to {folder!r} failed ({_one_line(failure)}), and so did saving to {fallbacks[0]!r} "
                    f"and {fallbacks[1]!r}: the trained model is lost.") from failure


def _card_details(args, result):
    """Model card fields for a fine-tuned folder: base model and dataset (when they are Hub ids), training
    history and settings, labels and held-out accuracy."""
    details = dict(history=result.history, batch_size=args.batch_size, epochs=args.epochs,
                   optimizer=result.model.optimizer, pipeline_tag="text-classification")
    if not os.path.exists(args.model):
        details["base_model"] = args.model
    if not os.path.exists(args.dataset):
        details["datasets"] = [args.dataset]
    text = (f"`{type(result.model).__name__}` fine-tuned with `tfformers fine-tune` to classify text into "
            f"{result.labels.num_labels} labels: {', '.join(result.labels.names)}.")
    if result.evaluation is not None:
        ev = result.evaluation
        held_out = f"the {args.eval_split!r} split" if args.eval_split else "a held-out part of the training data"
        text += f" Accuracy on {held_out} ({ev.num_examples} examples): {ev.accuracy:.2%}."
    details["description"] = text
    return details


def _model_exists(name, token):
    from tfformers import hub

    hub.resolve_file(name, "config.json", token=token)


def _predict(args):
    from tfformers import finetune
    from tfformers.config import load_config
    from tfformers.models.auto import TFAutoModelForSequenceClassification

    texts = list(args.texts)
    if args.input:
        texts += _read_lines(args.input)
    if not texts:
        raise UsageError("no text to classify: give texts as arguments or a file with --input.")
    config = load_config(args.model, token=args.token)
    if not finetune.has_classification_head(config):
        raise UsageError(
            f"{args.model!r} has no text-classification head (architectures: {config.architectures}); "
            "fine-tune it first (tfformers fine-tune)."
        )
    tokenizer = _load_tokenizer(args.tokenizer or args.model, args.token)
    model = TFAutoModelForSequenceClassification.from_pretrained(args.model, config=config, token=args.token)
    predictions = finetune.classify(model, tokenizer, texts, max_length=args.max_length,
                                    batch_size=args.batch_size)
    for text, prediction in zip(texts, predictions):
        if args.json:
            print(json.dumps({"text": text, "label": prediction.label, "score": round(prediction.score, 6)},
                             ensure_ascii=False))
        else:
            print(f"{prediction.label}\t{prediction.score:.3f}\t{text}")
    return 0


def _read_lines(path):
    if path == "-":
        lines = sys.stdin.read().splitlines()
    else:
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            raise UsageError(f"no such file: {path!r} (--input).") from None
        except (OSError, UnicodeDecodeError) as error:
            raise UsageError(f"cannot read {path!r} (--input): {_one_line(error)}") from None
    return [line for line in lines if line.strip()]


def _generate(args):
    prompts = _prompts(args)
    if args.system is not None and not args.chat:
        raise UsageError("--system needs --chat: a system message is part of a chat conversation.")
    source, gguf_file = _model_source(args)
    name = _model_name(source, gguf_file)
    tokenizer = _generation_tokenizer(args, source, gguf_file)
    tokenizer_name = f"the tokenizer {args.tokenizer!r}" if args.tokenizer else f"the tokenizer of {name}"
    if args.chat:
        batch = _encode_chat(tokenizer, prompts, args.system, tokenizer_name)
    else:
        batch = _encode_prompts(tokenizer, prompts, tokenizer_name)
    model = _load_causal_lm(source, gguf_file, name, args)
    options = _decoding_options(args, model, name)

    def run():
        return model.generate(batch["input_ids"], attention_mask=batch["attention_mask"], **options)

    first_seconds, sequences = _timed(run)
    seconds = first_seconds
    if args.warmup:
        seconds, sequences = _timed(run)
    new_ids = np.asarray(sequences)[:, batch["input_ids"].shape[1]:]  # [prompts, steps]: the generated part
    counts = _generated_counts(new_ids, model.generation_config.eos_token_id)
    logger.info(_speed_report(counts, seconds, first_seconds if args.warmup else None))
    completions = tokenizer.batch_decode(new_ids, skip_special_tokens=True)
    for i, (prompt, completion, count) in enumerate(zip(prompts, completions, counts)):
        if args.json:
            print(json.dumps({"prompt": prompt, "completion": completion, "new_tokens": count}, ensure_ascii=False))
        else:
            print(completion if i == 0 else f"\n{completion}")  # a blank line between completions
    return 0


def _prompts(args):
    prompts = list(args.texts)
    if args.input:
        prompts += _read_lines(args.input)
    if not prompts:
        raise UsageError("no prompt: give prompts as arguments or a file with --input.")
    for number, prompt in enumerate(prompts, 1):
        if not prompt.strip():
            raise UsageError(f"prompt {number} is empty; give some text to generate from.")
    return prompts


def _model_source(args):
    """(folder or Hub repo, GGUF file name or None). MODEL may also be the path of a .gguf file."""
    if args.gguf_file is None and args.model.endswith(".gguf") and os.path.isfile(args.model):
        return os.path.split(os.path.abspath(args.model))
    if args.gguf_file is None and os.path.isdir(args.model):
        if not os.path.isfile(os.path.join(args.model, "config.json")):
            checkpoints = sorted(f for f in os.listdir(args.model) if f.endswith(".gguf"))
            if checkpoints:
                raise UsageError(
                    f"{args.model!r} has no config.json but holds GGUF checkpoints ({', '.join(checkpoints)}); "
                    "choose one with --gguf-file."
                )
    return args.model, args.gguf_file


def _model_name(source, gguf_file):
    return repr(source) if gguf_file is None else repr(f"{source}/{gguf_file}")


def _generation_tokenizer(args, source, gguf_file):
    """The tokenizer, set to pad on the left: generation continues after the last token of every row."""
    from tfformers import hub

    # a missing model is reported as such, not as a tokenizer error
    hub.resolve_file(source, gguf_file or "config.json", revision=args.revision, token=args.token)
    if args.tokenizer:
        tokenizer = _load_tokenizer(args.tokenizer, args.token)
    else:
        tokenizer = _load_tokenizer(source, args.token, gguf_file=gguf_file, revision=args.revision)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token  # GPT-2 defines no pad token; the attention mask hides it
    return tokenizer


def _check_can_pad(tokenizer, prompts, tokenizer_name):
    if len(prompts) > 1 and tokenizer.pad_token is None:
        raise UsageError(
            f"{tokenizer_name} has neither a pad nor an end-of-text token, so {len(prompts)} prompts "
            "cannot be batched; give one prompt at a time."
        )


def _encode_prompts(tokenizer, prompts, tokenizer_name):
    """{input_ids, attention_mask}: int arrays [prompts, longest], left-padded."""
    _check_can_pad(tokenizer, prompts, tokenizer_name)
    return tokenizer(prompts, padding=True, return_tensors="np")


def _encode_chat(tokenizer, prompts, system, tokenizer_name):
    """Each prompt as a user message (after the system message, if any) in the chat template, ending with
    the assistant's turn; {input_ids, attention_mask} [prompts, longest], left-padded."""
    from jinja2 import TemplateError

    if not tokenizer.chat_template:
        raise UsageError(
            f"{tokenizer_name} has no chat template, so --chat cannot format the prompts; drop --chat "
            "and write each prompt in the model's own format."
        )
    _check_can_pad(tokenizer, prompts, tokenizer_name)
    head = [] if system is None else [{"role": "system", "content": system}]
    conversations = [[*head, {"role": "user", "content": prompt}] for prompt in prompts]
    try:
        return tokenizer.apply_chat_template(conversations, add_generation_prompt=True, padding=True,
                                             return_tensors="np", return_dict=True)
    except TemplateError as error:
        message = f"the chat template ({tokenizer_name}) refused the conversation: {_one_line(error)}"
        raise UsageError(message) from None


def _load_causal_lm(source, gguf_file, name, args):
    from tfformers.errors import ConfigError
    from tfformers.models.auto import TFAutoModelForCausalLM

    try:
        return TFAutoModelForCausalLM.from_pretrained(source, gguf_file=gguf_file, revision=args.revision,
                                                      token=args.token)
    except ConfigError as error:
        raise UsageError(f"cannot load {name} as a causal language model: {_one_line(error)}") from None


def _decoding_options(args, model, name):
    """generate()'s keyword arguments from the options given; sampling options without sampling are refused
    (transformers would only warn that it ignores them)."""
    options = {option: getattr(args, option) for option in _DECODING_OPTIONS if getattr(args, option) is not None}
    samples = args.do_sample if args.do_sample is not None else model.generation_config.do_sample
    ignored = ["--" + option.replace("_", "-") for option in _SAMPLING_OPTIONS if option in options]
    if ignored and not samples:
        why = "--no-do-sample was given" if args.do_sample is False else f"{name} decodes greedily by default"
        verb = "acts" if len(ignored) == 1 else "act"
        raise UsageError(f"{', '.join(ignored)} only {verb} when sampling, and {why}: add --do-sample.")
    if args.seed is not None:
        options["seed"] = args.seed
    return options


def _timed(function):
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def _generated_counts(new_ids, eos_token_id):
    """Tokens each row generated, up to and including its first end-of-sequence token (rows that finish
    early are padded until the longest one ends); `new_ids` is [rows, steps]."""
    eos = [] if eos_token_id is None else np.atleast_1d(eos_token_id)
    counts = []
    for row in new_ids:
        ends = np.flatnonzero(np.isin(row, eos))
        counts.append(int(ends[0]) + 1 if ends.size else len(row))
    return counts


def _speed_report(counts, seconds, first_seconds=None):
    """One line: tokens generated, seconds, tokens/s; the compilation (the first call's extra time) apart
    when a second call was timed."""
    tokens, rows = sum(counts), len(counts)
    line = (f"generated {tokens} tokens for {rows} prompt{'s' if rows > 1 else ''} in {seconds:.1f} s "
            f"({tokens / seconds:.1f} tokens/s)")
    if first_seconds is None:
        return line + ", including the XLA compilation of the decoding program (--warmup times it apart)"
    compilation = first_seconds - seconds
    return f"{line}; XLA compilation {compilation:.1f} s (the first, identical call took {first_seconds:.1f} s)"


def _push(args):
    from tfformers import sharing

    if not os.path.isdir(args.folder):
        raise UsageError(f"no such folder: {args.folder!r}.")
    if not os.path.isfile(os.path.join(args.folder, "config.json")):
        raise UsageError(
            f"{args.folder!r} is not a saved model (no config.json); save one with save_pretrained or "
            "tfformers fine-tune first."
        )
    info = sharing.push_folder_with_card(args.folder, args.repo_id, token=args.token, private=args.private,
                                         commit_message=args.commit_message, revision=args.revision,
                                         create_pr=args.create_pr)
    print(f"Pushed {args.folder} to {args.repo_id}: {info.pr_url or info.commit_url}")
    return 0


def _export(args):
    from tfformers import export
    from tfformers.config import load_config
    from tfformers.export.module import EXPORT_TASKS, TASK_ALIASES, canonical_task
    from tfformers.models.auto import model_class_for
    from tfformers.tasks import task_of_architecture

    source, gguf_file = _model_source(args)
    hub_kwargs = {"revision": args.revision, "token": args.token}
    config = load_config(source, gguf_file=gguf_file, **hub_kwargs)
    if args.task:
        heads = {export_task: model_task for model_task, export_task in EXPORT_TASKS.items()}
        heads.update({alias: heads[export_task] for alias, export_task in TASK_ALIASES.items()})
        if canonical_task(args.task) not in heads:
            raise UsageError(f"unknown --task {args.task!r}; use one of {sorted(heads)}.")
        model_task = heads[canonical_task(args.task)]
    else:
        model_task = task_of_architecture((config.architectures or ["Model"])[0]) or "base"
    model = model_class_for(config, model_task).from_pretrained(source, config=config, gguf_file=gguf_file,
                                                                **hub_kwargs)
    options = {"sequence_length": args.sequence_length} if args.format == "litert" else {
        "max_length": args.max_length, "max_new_tokens": args.max_new_tokens, "num_beams": args.num_beams,
        "max_prompt_length": args.max_prompt_length, "chat_template": args.chat or None,
    }
    options = {name: value for name, value in options.items() if value is not None}
    if args.format == "saved_model":
        tokenizer_kwargs = {} if args.tokenizer else {"gguf_file": gguf_file, "revision": args.revision}
        tokenizer = _load_tokenizer(args.tokenizer or source, args.token, **tokenizer_kwargs)
        options = _generation_export_options(model.task, options, args.prefix)
    else:
        tokenizer = None
    path = export(model, args.output, tokenizer=tokenizer, task=args.task, version=args.version,
                  format=args.format, **options)
    print(f"Exported {args.model} to {path}")
    return 0


def _generation_export_options(model_task, options, prefix):
    """The export options a model's task takes: generation options only for text generation; for
    text-to-text, --max-length is the source's length and --prefix goes before each text."""
    if model_task == "seq2seq-lm":
        renamed = {"max_length": "max_source_length", "max_new_tokens": "max_new_tokens", "num_beams": "num_beams"}
        options = {renamed[name]: value for name, value in options.items() if name in renamed}
        return {**options, **({"prefix": prefix} if prefix is not None else {})}
    if model_task != "causal-lm":
        return {name: value for name, value in options.items() if name == "max_length"}
    return options


def _convert(args):
    from tfformers.checkpoint import parse_size
    from tfformers.checkpoint.h5 import convert_folder

    try:
        parse_size(args.max_shard_size)
    except ValueError as error:
        raise UsageError(str(error)) from None
    read, written = convert_folder(args.old_dir, args.new_dir, max_shard_size=args.max_shard_size)
    print(f"Converted {args.old_dir} ({', '.join(read)}) to {args.new_dir}: {', '.join(written)}")
    return 0


def _serve(args):
    import signal
    import threading

    from tfformers.serving import ModelServer

    server = ModelServer(args.base, host=args.host, port=args.port, model_name=args.model_name,
                         poll_seconds=args.poll_seconds, batching=args.batching, max_batch_size=args.max_batch_size,
                         batch_timeout_ms=args.batch_timeout_ms, max_queue=args.max_queue,
                         request_timeout_s=args.request_timeout_s, max_body_bytes=args.max_body_bytes,
                         max_string_bytes=args.max_string_bytes, access_log=args.access_log)
    server.prepare()
    print(f"Serving on {server.url}", flush=True)
    for name in server.repository.names:
        print(f"  {server.url}/v1/models/{name}", flush=True)

    def stop(signum, frame):
        raise KeyboardInterrupt

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, stop) if in_main_thread else None  # SIGTERM stops as Ctrl-C does
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
    logger.info("stopped")
    return 0


# ------------------------------------------------------------------------------------------------- main


def _one_line(error):
    return " ".join(str(error).split())


def _describe(error):
    """One line for an error: ours say what to do; others are named by type (e.g. a TensorFlow error)."""
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    if isinstance(error, (TFFormersError, OSError)):
        return _one_line(error)
    return f"{type(error).__name__}: {_one_line(error)} (--debug shows the traceback)"


@contextlib.contextmanager
def _output(quiet):
    """tfformers' log messages (INFO, or WARNING with --quiet) as plain lines on stderr, for the duration
    of one command; the logger's previous settings are restored after (main() may run in-process)."""
    logger = logging.getLogger("tfformers")
    saved = logger.level, logger.propagate
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False
    bars = None
    if quiet:
        from datasets.utils import logging as datasets_logging

        bars = datasets_logging.is_progress_bar_enabled()
        datasets_logging.disable_progress_bar()
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
        if bars:
            from datasets.utils import logging as datasets_logging

            datasets_logging.enable_progress_bar()


def main(argv=None):
    """Runs the `tfformers` command; returns the exit status (0 ok, 2 bad arguments or user error, 1 any
    other failure, 130 interrupted)."""
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra and hasattr(args, "texts") and not any(arg.startswith("-") for arg in extra):
            args.texts += extra  # texts after an option: argparse fills the positionals only once
        elif extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        if hasattr(args, "model_option"):
            _resolve_model(args)
    except SystemExit as exit_:  # --help, --version, or an argparse error (already printed)
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    try:
        with _output(args.quiet):
            return args.run(args)
    except (Exception, KeyboardInterrupt) as error:
        if args.debug or os.environ.get("TFFORMERS_DEBUG", "") not in ("", "0"):
            raise
        print(f"tfformers {args.command}: error: {_describe(error)}", file=sys.stderr)
        if isinstance(error, KeyboardInterrupt):
            return EXIT_INTERRUPTED
        return EXIT_USAGE if isinstance(error, TFFormersError) else EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
