"""The surface analysis: the error surface E(θ) at the file's parameters, its curvature walls
(Pascanu, Mikolov & Bengio 2013, Sec. 2.3), and what one SGD step does there.

What lives here: the options (:mod:`.options`, torch-free), E as a function of the parameters
(:mod:`.objective`), Hessian-vector products and Lanczos (:mod:`.curvature`), growth with the
BPTT horizon (:mod:`.growth`), slices, walls and grids (:mod:`.slices`, :mod:`.grid`), SGD
steps and paths (:mod:`.steps`), the typed report (:mod:`.report`) and the analysis
(:mod:`.analysis`).

What it may import: the layers below (:mod:`rnngrad.io`, :mod:`rnngrad.cells`,
:mod:`rnngrad.conventions`, :mod:`rnngrad.probes`), the probe, clip and forward-pass helpers of
:mod:`rnngrad.bptt`, :mod:`rnngrad.report`, NumPy and torch. Never a renderer.

The package is callable: ``rnngrad.surface(path, options)`` is :func:`rnngrad.surface.surface`.
"""

from __future__ import annotations

from rnngrad._lazy import lazy_names, make_callable
from rnngrad.surface.options import SurfaceOptions

__getattr__, __dir__ = lazy_names(__name__, {
    "surface": "rnngrad.surface.analysis", "loss_function": "rnngrad.surface.analysis",
    "SurfaceReport": "rnngrad.surface.report",
})
make_callable(__name__, "surface")

__all__ = ["SurfaceOptions", "SurfaceReport", "loss_function", "surface"]
