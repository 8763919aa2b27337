"""`require_version` as transformers 4.x's example scripts import it (`from tfformers.utils.versions import
require_version`): transformers' own, which checks an installed package's version and imports no PyTorch."""

from transformers.utils.versions import require_version, require_version_core

__all__ = ["require_version", "require_version_core"]
