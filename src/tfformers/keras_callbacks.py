"""`transformers.keras_callbacks` of 4.x: `KerasMetricCallback` and `PushToHubCallback`, tfformers' own
(`tfformers.callbacks`), importable from the module path 4.x scripts use."""

from tfformers.callbacks import KerasMetricCallback, PushToHubCallback

__all__ = ["KerasMetricCallback", "PushToHubCallback"]
