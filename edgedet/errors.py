"""Errors a user can cause.

Each is raised with a message that names the thing (file, key, value) and the fix; the CLI
turns it into one line on stderr and exit code 2. Programming errors are not wrapped.
"""


class EdgedetError(Exception):
    """A user-caused error: bad config, missing or corrupt model, unreadable input."""

    exit_code = 2


class ConfigError(EdgedetError):
    """A config file or flag value is invalid."""


class ModelError(EdgedetError):
    """A model file or its card is missing, corrupt or unsupported."""


class LabelCountError(ModelError):
    """The label list does not match the number of classes the model predicts."""


class BackendError(EdgedetError):
    """No usable interpreter or accelerator delegate."""


class SourceError(EdgedetError):
    """A frame source (camera, file, URL, folder) cannot be opened or read."""


class InputError(EdgedetError):
    """An input file (image, label file, calibration set) is unreadable or inconsistent."""
