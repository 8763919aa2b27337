"""The one verbosity knob, with transformers' API: `tfformers.logging.set_verbosity_error()` quiets tfformers
and the libraries under it, as `transformers.logging.set_verbosity_error()` did in transformers 4.

`set_verbosity(level)` sets the level of the `tfformers` logger and of transformers' and TensorFlow's Python
loggers; at INFO or DEBUG, a stderr handler is added when the application has configured no logging, so the
messages show. `disable_progress_bar()` turns off the progress bars of downloads, transformers and 🤗 datasets
(Keras' own bars follow `verbose=`).

Importing this module also drops transformers' start-up notice "PyTorch was not found. Models won't be
available...": true of transformers, false of tfformers, whose models need no PyTorch.
"""

import logging
import sys

__all__ = [
    "CRITICAL",
    "DEBUG",
    "ERROR",
    "FATAL",
    "INFO",
    "WARNING",
    "add_handler",
    "disable_default_handler",
    "disable_progress_bar",
    "disable_propagation",
    "enable_default_handler",
    "enable_explicit_format",
    "enable_progress_bar",
    "enable_propagation",
    "get_logger",
    "get_verbosity",
    "is_progress_bar_enabled",
    "remove_handler",
    "reset_format",
    "set_verbosity",
    "set_verbosity_debug",
    "set_verbosity_error",
    "set_verbosity_info",
    "set_verbosity_warning",
]

CRITICAL = FATAL = logging.CRITICAL
ERROR = logging.ERROR
WARNING = logging.WARNING
INFO = logging.INFO
DEBUG = logging.DEBUG

LIBRARY_LOGGER = "tfformers"
EXPLICIT_FORMAT = "[%(levelname)s|%(filename)s:%(lineno)s] %(asctime)s >> %(message)s"
_TORCH_NOTICE = "PyTorch was not found. Models won't be available"
_stderr_handler = None


def _not_the_torch_notice(record):
    return not record.getMessage().startswith(_TORCH_NOTICE)


# Installed before transformers is imported (tfformers/__init__.py imports this module first); filters
# added to a logger outlive transformers' own configuration of it.
if _not_the_torch_notice not in logging.getLogger("transformers").filters:
    logging.getLogger("transformers").addFilter(_not_the_torch_notice)


def get_logger(name=None):
    """The logger `name` (default: tfformers' own, which every tfformers module logs to)."""
    return logging.getLogger(name or LIBRARY_LOGGER)


def get_verbosity():
    """The effective level of the `tfformers` logger (`logging.WARNING` unless set)."""
    return get_logger().getEffectiveLevel()


def set_verbosity(level):
    """Sets tfformers', transformers' and TensorFlow's Python loggers to `level` (e.g. `logging.ERROR`)."""
    from transformers.utils import logging as transformers_logging

    get_logger().setLevel(level)
    transformers_logging.set_verbosity(level)
    logging.getLogger("tensorflow").setLevel(level)
    if level < WARNING:
        _ensure_a_handler()


def set_verbosity_debug():
    set_verbosity(DEBUG)


def set_verbosity_info():
    set_verbosity(INFO)


def set_verbosity_warning():
    set_verbosity(WARNING)


def set_verbosity_error():
    set_verbosity(ERROR)


def _ensure_a_handler():
    """Without a handler, Python prints only warnings and errors (its last-resort handler): INFO and DEBUG
    need one, unless the application has configured logging (a root handler), which then prints them."""
    global _stderr_handler
    library = get_logger()
    if not library.handlers and not logging.getLogger().handlers:
        if _stderr_handler is None:
            _stderr_handler = logging.StreamHandler(sys.stderr)
        library.addHandler(_stderr_handler)


# transformers 4.x's handler functions, on tfformers' logger and on transformers' (whose messages tfformers
# users see too, e.g. from tokenizers): 4.x scripts call `set_verbosity_info(); enable_default_handler();
# enable_explicit_format()`.


def enable_default_handler():
    """Adds tfformers' stderr handler to the `tfformers` logger (and transformers' to its own)."""
    from transformers.utils import logging as transformers_logging

    global _stderr_handler
    if _stderr_handler is None:
        _stderr_handler = logging.StreamHandler(sys.stderr)
    if _stderr_handler not in get_logger().handlers:
        get_logger().addHandler(_stderr_handler)
    transformers_logging.enable_default_handler()


def disable_default_handler():
    """Removes the handlers `enable_default_handler` (or a verbose `set_verbosity`) added."""
    from transformers.utils import logging as transformers_logging

    if _stderr_handler is not None:
        get_logger().removeHandler(_stderr_handler)
    transformers_logging.disable_default_handler()


def add_handler(handler):
    get_logger().addHandler(handler)


def remove_handler(handler):
    get_logger().removeHandler(handler)


def enable_propagation():
    get_logger().propagate = True


def disable_propagation():
    """Stops tfformers' records at its own handlers (otherwise they also reach the root logger's)."""
    get_logger().propagate = False


def _library_handlers():
    from transformers.utils import logging as transformers_logging

    return list(get_logger().handlers) + list(transformers_logging._get_library_root_logger().handlers)


def enable_explicit_format():
    """`[LEVEL|file.py:line] time >> message` on every handler of the tfformers and transformers loggers."""
    for handler in _library_handlers():
        handler.setFormatter(logging.Formatter(EXPLICIT_FORMAT))


def reset_format():
    for handler in _library_handlers():
        handler.setFormatter(None)


def disable_progress_bar():
    """Turns off the progress bars of Hub downloads, transformers and 🤗 datasets (`Dataset.map`)."""
    from datasets.utils import logging as datasets_logging
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # also huggingface_hub's
    datasets_logging.disable_progress_bar()


def enable_progress_bar():
    from datasets.utils import logging as datasets_logging
    from transformers.utils import logging as transformers_logging

    transformers_logging.enable_progress_bar()
    datasets_logging.enable_progress_bar()


def is_progress_bar_enabled():
    from transformers.utils import logging as transformers_logging

    return transformers_logging.is_progress_bar_enabled()
