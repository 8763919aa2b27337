"""Shared pytest setup for the tfformers test suite."""

import os

# Keras must run on TensorFlow; quiet TF's C++ logging. Set before anything imports keras/tensorflow.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


# =====================================================================================================
# Hub: one LocalHub (tests/hub_server.py) for the whole session, and a private HF_HOME.
#
# huggingface_hub reads HF_ENDPOINT and HF_HUB_OFFLINE once, when it is imported, so everything below
# runs at conftest import time, before any test module imports huggingface_hub / transformers / tfformers.
# =====================================================================================================
import atexit
import secrets
import shutil
import sys
import tempfile
import uuid

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hub_server import LocalHub  # noqa: E402

HUB_USER = "tfformers-tester"
HUB_TOKEN = "hf_local_" + secrets.token_hex(8)

_HUB = LocalHub().start()
_HUB.add_token(HUB_TOKEN, user=HUB_USER)
_HF_HOME = tempfile.mkdtemp(prefix="tfformers-hf-home-")


def _hub_teardown() -> None:
    _HUB.stop()
    shutil.rmtree(_HF_HOME, ignore_errors=True)


atexit.register(_hub_teardown)

# Never the user's real cache or token, never the real Hub.
for _name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_DISABLE_IMPLICIT_TOKEN",
              "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HF_STORED_TOKENS_PATH", "HUGGINGFACE_HUB_CACHE",
              "TRANSFORMERS_CACHE", "HF_ASSETS_CACHE", "HF_XET_CACHE", "HF_DATASETS_CACHE"):
    os.environ.pop(_name, None)
os.environ.update({
    "HF_ENDPOINT": _HUB.url,
    "HF_HOME": _HF_HOME,
    "HF_HUB_CACHE": os.path.join(_HF_HOME, "hub"),
    "HF_TOKEN": HUB_TOKEN,
    "HF_HUB_DISABLE_XET": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
})
# Local traffic must not go through a proxy.
os.environ["NO_PROXY"] = ",".join(filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1", "localhost"]))
os.environ["no_proxy"] = os.environ["NO_PROXY"]

if "huggingface_hub" in sys.modules:  # imported before conftest (e.g. by a plugin): its endpoint is stale
    from huggingface_hub import constants as _hf_constants

    if _hf_constants.ENDPOINT != _HUB.url:
        raise RuntimeError(
            "huggingface_hub was imported before tests/conftest.py could point HF_ENDPOINT at the local Hub "
            f"(it uses {_hf_constants.ENDPOINT}). Remove the early import (plugin or PYTHONSTARTUP)."
        )


@pytest.fixture(scope="session")
def hub():
    """The session's LocalHub; HF_ENDPOINT points at it and HF_TOKEN (== `hub_token`) is valid on it."""
    yield _HUB
    _HUB.stop()


@pytest.fixture(scope="session")
def hub_token(hub):
    """A write token registered on `hub` (also in HF_TOKEN)."""
    return HUB_TOKEN


@pytest.fixture
def hub_repo_id(hub):
    """A fresh, not yet existing repo id in the test user's namespace."""
    return f"{HUB_USER}/test-{uuid.uuid4().hex[:10]}"


# ===================================================================================== end of Hub setup


# ============================================================================ order for parallel workers
# scripts/test.sh runs the suite on two pytest-xdist workers, a test module at a time (`--dist loadscope`, in
# collection order). The longest modules go first, so that the workers finish together instead of one running
# a long module alone at the end. Module durations on 2 cores, longest first (pytest --durations).
LONGEST_MODULES = (
    "test_training.py", "test_vision_training.py", "test_export.py", "test_smollm2.py", "test_xla_compilations.py",
    "test_deployment.py", "test_generation.py", "test_end_to_end.py", "test_parity.py", "test_keras_export.py",
    "test_example_scripts.py", "test_multi_worker.py", "test_seq2seq_export.py", "test_seq2seq_generation.py",
    "test_seq2seq_training.py", "test_cli.py", "test_t5.py", "test_bart.py", "test_lora.py",
)


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_MODULES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: order within a module is kept
