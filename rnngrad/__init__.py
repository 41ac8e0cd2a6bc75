"""rnngrad: will your RNN's gradients vanish or explode, why, and what to do about it.

The curated public API. Every name is imported lazily, on first use, so ``import rnngrad``
loads neither torch, NumPy, typer nor rich::

    import rnngrad
    report = rnngrad.spectrum("model.safetensors")
    for item in report.recurrences:
        print(item.recurrence.label, item.verdict, item.bound)
    rnngrad.bptt(model, lags="1..50").recurrences[0].rows[-1].log10_norm
    rnngrad.lyapunov(model, k=4).recurrences[0].exponents      # nats per step, descending
    rnngrad.check(model, explode_above=1e3).ok     # a path, a state dict or an nn.Module
    rnngrad.surface(model, lr=0.1).step.sentence   # the curvature wall and one SGD step

The package is layered; each subpackage's docstring says what lives there and what it may
import, and imports only point down this list: :mod:`rnngrad.io` (files -> bundles),
:mod:`rnngrad.cells` (equations), :mod:`rnngrad.conventions` (understanding a file),
:mod:`rnngrad.probes` (probe sequences, lags, losses), the analyses
(:mod:`rnngrad.inspection`, :mod:`rnngrad.spectrum`, :mod:`rnngrad.bptt`,
:mod:`rnngrad.surface`, :mod:`rnngrad.lyapunov`), the renderers
(:mod:`rnngrad.render`, :mod:`rnngrad.plots`), :mod:`rnngrad.gate` (the CI gate) and
:mod:`rnngrad.cli` (the command line). :mod:`rnngrad.report`, :mod:`rnngrad.errors` and
:mod:`rnngrad.limits` (the default memory limit) are shared by all.
"""

from __future__ import annotations

from rnngrad._lazy import lazy_names
from rnngrad._version import __version__

_PUBLIC = {
    "Analysis": "rnngrad.api", "analyze": "rnngrad.api",
    "BpttOptions": "rnngrad.bptt.options",
    "CheckReport": "rnngrad.gate.results", "check": "rnngrad.gate.check",
    "ProbeSpec": "rnngrad.probes.spec",
    "ReadOptions": "rnngrad.conventions.options",
    "RnngradError": "rnngrad.errors",
    "SpectrumOptions": "rnngrad.spectrum.options",
    "SurfaceOptions": "rnngrad.surface.options",
    "WeightBundle": "rnngrad.io.bundle", "load": "rnngrad.conventions.understand",
    "inspect": "rnngrad.inspection",
    "LyapunovOptions": "rnngrad.lyapunov.options",
}
# Analysis packages are callable: rnngrad.spectrum(path) runs rnngrad.spectrum.spectrum.
_PACKAGES = ("bptt", "lyapunov", "spectrum", "surface")

__getattr__, _dir = lazy_names(__name__, {**_PUBLIC, **{name: f"rnngrad.{name}"
                                                       for name in _PACKAGES}})
__all__ = sorted(["__version__", *_PUBLIC, *_PACKAGES])


def __dir__() -> list[str]:
    return _dir()
