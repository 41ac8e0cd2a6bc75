"""rnngrad: will your RNN's gradients vanish or explode, why, and what to do about it.

The curated public API. Importing it loads NumPy and PyTorch but never typer or rich, so a
test suite can call it cheaply::

    import rnngrad
    report = rnngrad.spectrum("model.safetensors")
    for item in report.recurrences:
        print(item.recurrence.label, item.verdict, item.bound)
    rnngrad.check(model, explode_above=1e3).ok     # a path, a state dict or an nn.Module
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("rnngrad")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"

from .analysis import inspect, spectrum
from .api import Analysis, analyze
from .bptt import BpttOptions, bptt
from .check import CheckReport, check
from .errors import RnngradError
from .loading import WeightBundle, load
from .probes import ProbeSpec

__all__ = ["Analysis", "BpttOptions", "CheckReport", "ProbeSpec", "RnngradError",
           "WeightBundle", "__version__", "analyze", "bptt", "check", "inspect", "load",
           "spectrum"]
