"""Deployment: a model and its tokenizer as one artifact (a SavedModel in TF Serving's layout, or LiteRT).

`tfformers.export(model, "BASE/NAME")` is `tfformers.export.export`: the package is callable, so the one
name serves both as the function and as the home of its parts (`module`, `postprocessing`, `litert`).
"""

import sys
import types

from tfformers.export.saved_model import export

__all__ = ["export"]


class _CallablePackage(types.ModuleType):
    def __call__(self, *args, **kwargs):
        return export(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
