"""Typed errors the engine raises for problems a user can fix.

Each carries the `error` event's `kind` (see frelon.common.events.ERROR_KINDS), a one-line message naming
the file or option at fault, and a hint saying what to do. The CLI prints the message and hint;
the traceback goes into the error event (and to stderr with --debug). The base class and the data
and output kinds are common/errors.py's (common/ raises them too, and cannot import the engine):
they are the same classes here.
"""
from __future__ import annotations

from frelon.common.errors import DataError, FrelonError, OutputError

__all__ = ["ConfigurationError", "DataError", "DistributedError", "FrelonError", "NonFiniteLoss",
           "OutOfMemory", "OutputError", "WeightsError"]


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
