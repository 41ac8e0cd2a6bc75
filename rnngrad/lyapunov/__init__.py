"""The lyapunov analysis: the Lyapunov spectrum of every recurrence and its memory time scales.

What lives here: the options (:mod:`.options`, torch-free), the QR algorithm along the probe
trajectory (:mod:`.qr`), what the exponents mean in steps (:mod:`.meaning`) and the verdict
on λ_1 (:mod:`.verdict`), both torch-free, the comparison with ``bptt``'s per-step rate
(:mod:`.agreement`), the typed report (:mod:`.report`) and the analysis (:mod:`.analysis`).

What it may import: the layers below (:mod:`rnngrad.io`, :mod:`rnngrad.cells`,
:mod:`rnngrad.conventions`, :mod:`rnngrad.probes`), :mod:`rnngrad.bptt` (its probe and
device helpers, and the bptt run of ``--bptt-lags``), :mod:`rnngrad.report`, NumPy and
torch. Never a renderer.

The package is callable: ``rnngrad.lyapunov(path, k=4)`` is :func:`rnngrad.lyapunov.lyapunov`.
"""

from __future__ import annotations

from rnngrad._lazy import lazy_names, make_callable
from rnngrad.lyapunov.options import LyapunovOptions

__getattr__, __dir__ = lazy_names(__name__, {
    "lyapunov": "rnngrad.lyapunov.analysis",
    "LyapunovReport": "rnngrad.lyapunov.report",
    "RecurrenceExponents": "rnngrad.lyapunov.report",
    "LyapunovVerdict": "rnngrad.lyapunov.verdict",
    "initial_basis": "rnngrad.lyapunov.qr",
})
make_callable(__name__, "lyapunov")

__all__ = ["LyapunovOptions", "LyapunovReport", "LyapunovVerdict", "RecurrenceExponents",
           "initial_basis", "lyapunov"]
