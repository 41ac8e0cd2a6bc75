"""The spectrum analysis: what the recurrent matrices allow (Pascanu et al. 2013, Sec. 2.1).

What lives here: one matrix's eigen- and singular values (:mod:`.matrix`), low-rank matrices
through their r × r problem (:mod:`.lowrank`), the verdicts in the theory's terms
(:mod:`.verdict`), the options (:mod:`.options`), the typed report (:mod:`.report`) and the
analysis itself (:mod:`.analysis`).

What it may import: the layers below (:mod:`rnngrad.io`, :mod:`rnngrad.cells`,
:mod:`rnngrad.conventions`), :mod:`rnngrad.report`, NumPy and torch. Never a renderer.

The package is callable: ``rnngrad.spectrum(path)`` is :func:`rnngrad.spectrum.spectrum`.
"""

from __future__ import annotations

from rnngrad._lazy import lazy_names, make_callable
from rnngrad.spectrum.options import SpectrumOptions

__getattr__, __dir__ = lazy_names(__name__, {
    "spectrum": "rnngrad.spectrum.analysis", "recurrence_spectrum": "rnngrad.spectrum.analysis",
    "SpectrumReport": "rnngrad.spectrum.report", "RecurrenceSpectrum": "rnngrad.spectrum.report",
    "SpectrumVerdict": "rnngrad.spectrum.verdict", "MatrixSpectrum": "rnngrad.spectrum.report",
    "analyze_matrix": "rnngrad.spectrum.matrix",
})
make_callable(__name__, "spectrum")

__all__ = ["MatrixSpectrum", "RecurrenceSpectrum", "SpectrumOptions", "SpectrumReport",
           "SpectrumVerdict", "analyze_matrix", "recurrence_spectrum", "spectrum"]
