"""rnngrad: will your RNN's gradients vanish or explode, why, and what to do about it.

The curated public API. Importing it loads NumPy and PyTorch but never typer or rich, so a
test suite can call it cheaply::

    import rnngrad
    report = rnngrad.spectrum("model.safetensors")
    for item in report.recurrences:
        print(item.recurrence.label, item.verdict, item.bound)
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("rnngrad")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"

from .analysis import inspect, spectrum
from .errors import RnngradError
from .loading import WeightBundle, load

__all__ = ["RnngradError", "WeightBundle", "__version__", "inspect", "load", "spectrum"]
