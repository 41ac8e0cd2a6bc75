"""The bptt analysis: the measured per-lag profile ‖∂s_T/∂s_(T−ℓ)‖ on a probe, and advice.

What lives here: the options (:mod:`.options`, torch-free), the backward sweep of Jacobian
products (:mod:`.sweep`) with its certified spectral norms (:mod:`.sigma_max`), the exploding
directions (:mod:`.directions`), the gradient shares by lag (:mod:`.shares`), parameter-gradient
norms and clip thresholds (:mod:`.gradients`, :mod:`.clipping`), the measured verdict
(:mod:`.verdict`), the typed report (:mod:`.report`) and the analysis (:mod:`.analysis`).

What it may import: the layers below (:mod:`rnngrad.io`, :mod:`rnngrad.cells`,
:mod:`rnngrad.conventions`, :mod:`rnngrad.probes`), :mod:`rnngrad.spectrum.matrix`,
:mod:`rnngrad.report`, NumPy and torch. Never a renderer.

The package is callable: ``rnngrad.bptt(path, options)`` is :func:`rnngrad.bptt.bptt`.
"""

from __future__ import annotations

from rnngrad._lazy import lazy_names, make_callable
from rnngrad.bptt.options import BpttOptions

__getattr__, __dir__ = lazy_names(__name__, {
    "bptt": "rnngrad.bptt.analysis",
    "BpttReport": "rnngrad.bptt.report", "RecurrenceProfile": "rnngrad.bptt.report",
    "LagRow": "rnngrad.bptt.report", "ProfileVerdict": "rnngrad.bptt.verdict",
    "ClipRecommendation": "rnngrad.bptt.clipping", "ClipRule": "rnngrad.bptt.clipping",
})
make_callable(__name__, "bptt")

__all__ = ["BpttOptions", "BpttReport", "ClipRecommendation", "ClipRule", "LagRow",
           "ProfileVerdict", "RecurrenceProfile", "bptt"]
