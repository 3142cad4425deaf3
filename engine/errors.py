"""Typed errors the engine raises for problems a user can fix.

Each carries the `error` event's `kind` (see frelon.common.events.ERROR_KINDS), a one-line message naming
the file or option at fault, and a hint saying what to do. The CLI prints the message and hint;
the traceback goes into the error event (and to stderr with --debug).
"""
from __future__ import annotations


class FrelonError(Exception):
    kind = "internal"

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message = message
        self.hint = hint


class DataError(FrelonError):
    """The data cannot be used: missing folder, no images, malformed annotation file."""
    kind = "data"


class ConfigurationError(FrelonError):
    """An option or combination of options that cannot work (CPU + --amp, unknown backbone)."""
    kind = "config"


class WeightsError(FrelonError):
    """Weights that cannot be found or loaded safely."""
    kind = "weights"


class NonFiniteLoss(FrelonError):
    kind = "nan"


class OutOfMemory(FrelonError):
    kind = "oom"


class DistributedError(FrelonError):
    kind = "distributed"
