"""The PyTorch transformers oracle: build a random PyTorch model, save it, compare outputs."""

import textwrap

import numpy as np

# The first lines of a child interpreter that behaves as if PyTorch were not installed: every import finder
# answers "not found" for torch. (`sys.modules["torch"] = None` would break libraries that look torch up in
# sys.modules, such as scipy, which Keras imports through scikit-learn when that is installed.)
WITHOUT_TORCH = textwrap.dedent(
    """
    import sys

    class HideTorch:
        def __init__(self, finder):
            self.finder = finder
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                return None
            return self.finder.find_spec(name, path, target)
        def __getattr__(self, name):
            return getattr(self.finder, name)

    sys.meta_path[:] = [HideTorch(finder) for finder in sys.meta_path]
    """
)


def torch_model(head, config, seed=0):
    import torch
    import transformers

    torch.manual_seed(seed)
    return getattr(transformers, head)(config).eval()


def torch_outputs(model, inputs, **kwargs):
    import torch

    with torch.no_grad():
        out = model(**{k: torch.as_tensor(v) for k, v in inputs.items()}, **kwargs)
    skip = ("cache", "past_key_values")  # a decoder's KV cache object, not an output to compare
    return {k: v for k, v in out.items() if v is not None and k not in skip and not (isinstance(v, tuple) and not v)}


def to_numpy(value):
    if isinstance(value, (tuple, list)):
        return [to_numpy(v) for v in value]
    if hasattr(value, "detach"):
        return value.detach().numpy()
    return np.asarray(value)


def max_abs_diff(ours, theirs):
    """Largest |Δ| over an output field, recursing into tuples (hidden states, attentions)."""
    ours, theirs = to_numpy(ours), to_numpy(theirs)
    if isinstance(ours, list):
        assert len(ours) == len(theirs), f"{len(ours)} tensors vs {len(theirs)}"
        return max(max_abs_diff(a, b) for a, b in zip(ours, theirs))
    assert ours.shape == theirs.shape, f"shape {ours.shape} vs {theirs.shape}"
    return float(np.abs(ours.astype(np.float64) - theirs.astype(np.float64)).max())
