"""`import tfformers` prints nothing: no TensorFlow start-up lines, no transformers notice about PyTorch; a
user's TF_CPP_MIN_LOG_LEVEL is respected; `tfformers.logging` is the verbosity knob."""

import logging
import os
import subprocess
import sys

import pytest
from architectures import _bert_config
from oracle import WITHOUT_TORCH  # a user without PyTorch: transformers then announces "PyTorch was not found"

import tfformers
from tfformers import _backend


def run_python(code, **env):
    """(stdout, stderr) of a fresh interpreter running `code`, with no TF_CPP_MIN_LOG_LEVEL unless given."""
    environ = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run([sys.executable, "-c", code], env={**environ, **env}, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout, result.stderr


def test_import_prints_nothing():
    _, transformers_err = run_python(WITHOUT_TORCH + "import transformers")
    assert "PyTorch was not found" in transformers_err  # what a user without PyTorch would see, unfiltered
    out, err = run_python(WITHOUT_TORCH + "import tfformers")
    assert (out, err) == ("", "")


def test_the_users_tf_cpp_min_log_level_is_kept():
    out, _ = run_python("import os, tfformers; print(os.environ['TF_CPP_MIN_LOG_LEVEL'])", TF_CPP_MIN_LOG_LEVEL="0")
    assert out == "0\n"


def test_startup_noise_follows_the_log_level():
    cuda = ("I0000 00:00:1796067913.825313   13228 cudart_stub.cc:31] Could not find cuda drivers on your "
            "machine, GPU will not be used.\n")
    banner = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    warning = "W0000 00:00:1796067913.825313   13228 some_file.cc:12] something odd\n"
    error = "E0000 00:00:1796067914.110210   13228 device.cc:52] device failed\n"
    no_gpu = ("E0000 00:00:1796068072.036707   14067 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA "
              "error: Failed call to cuInit: UNKNOWN ERROR (303)\n")
    python_line = "Traceback (most recent call last):\n"
    hidden = {level: [line for line in (cuda, banner, warning, error, no_gpu, python_line)
                      if _backend.is_startup_noise(line, level)] for level in range(4)}
    assert hidden == {0: [], 1: [cuda, banner, no_gpu], 2: [cuda, banner, warning, no_gpu],
                      3: [cuda, banner, warning, error, no_gpu]}


def test_stderr_filter_passes_what_is_not_noise(capfd):
    with pytest.raises(RuntimeError):
        with _backend._stderr_without(lambda line: line.startswith("noise")):
            os.write(2, b"noise from C++\nkept from C++\n")
            print("kept from Python", file=sys.stderr)
            raise RuntimeError("an import failed")
    # (order aside: under pytest, Python's sys.stderr is a capture object rather than file descriptor 2)
    assert sorted(capfd.readouterr().err.splitlines()) == ["kept from C++", "kept from Python"]


@pytest.fixture
def restored_verbosity():
    loggers = [logging.getLogger(name) for name in ("tfformers", "transformers", "tensorflow")]
    levels = [logger.level for logger in loggers]
    yield
    for logger, level in zip(loggers, levels):
        logger.setLevel(level)


def test_set_verbosity_error_silences_a_tfformers_warning(tmp_path, caplog, restored_verbosity):
    """A base checkpoint loaded into a classifier warns that the head is new: not at ERROR verbosity."""
    tfformers.TFAutoModel.from_config(_bert_config()).save_pretrained(tmp_path)

    def load_warnings():
        caplog.clear()
        tfformers.TFAutoModelForSequenceClassification.from_pretrained(tmp_path)
        return [r for r in caplog.records if r.levelno == logging.WARNING and r.name.startswith("tfformers")]

    tfformers.logging.set_verbosity_error()
    assert load_warnings() == []
    assert tfformers.logging.get_verbosity() == logging.ERROR
    assert logging.getLogger("transformers").level == logging.getLogger("tensorflow").level == logging.ERROR
    tfformers.logging.set_verbosity_warning()
    assert "newly initialized" in load_warnings()[0].getMessage()


def test_logging_is_importable_under_transformers_4_name():
    from tfformers import logging as tfformers_logging
    from tfformers.utils import logging as utils_logging

    assert tfformers_logging is utils_logging
    for name in ("set_verbosity", "set_verbosity_info", "set_verbosity_warning", "set_verbosity_error",
                 "set_verbosity_debug", "get_verbosity", "get_logger", "disable_progress_bar",
                 "enable_progress_bar", "ERROR"):
        assert hasattr(tfformers_logging, name), name
