"""One error type for everything a user can get wrong, each with a hint on what to do.

The CLI prints ``message`` and ``hint`` on one or two lines of stderr and exits with code 2;
the Python API lets the exception propagate.
"""

from __future__ import annotations


class RnngradError(Exception):
    """A problem with the user's input (file, option, probe), never a bug in rnngrad."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class LoadError(RnngradError):
    """The weights file cannot be read safely or is malformed."""


class NoRecurrenceError(RnngradError):
    """The file was read but holds nothing rnngrad recognises as a recurrence."""


class ProbeError(RnngradError):
    """The probe sequences (``--inputs``, ``--tokens``, probe options) are unusable."""


class OptionError(RnngradError):
    """A command-line option or API argument has an invalid value."""


class ResourceError(RnngradError):
    """The analysis would need more memory than allowed."""


def brief(exc: BaseException, limit: int = 160) -> str:
    """A library exception's text on one short line, for a message about a user's file."""
    return " ".join(str(exc).split())[:limit] or type(exc).__name__
