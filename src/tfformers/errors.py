"""The exceptions tfformers raises. Each message names the file, tensor or value and says what to do."""


class TFFormersError(Exception):
    """Base class of every tfformers error."""


class BackendError(TFFormersError, ImportError):
    """Keras runs a backend other than TensorFlow."""


class ConfigError(TFFormersError, ValueError):
    """A configuration is missing, unreadable, or describes an unsupported model."""


class CheckpointError(TFFormersError, ValueError):
    """A weights file is missing, corrupt, unsafe, or does not fit the model."""


class HubError(TFFormersError, OSError):
    """A repository, revision or file could not be found or reached, or a write was refused."""


class InputError(TFFormersError, ValueError):
    """Model inputs are out of range or malformed."""
