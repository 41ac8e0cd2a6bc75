"""rnngrad inside the training loop: a live gradient monitor, an online clipper, Pascanu's Ω.

What lives here: :class:`GradientMonitor` (:mod:`.monitor`: the gradient norm every step, the
per-lag profile, ρ, γσ_max and λ_1 every N steps, logged to TensorBoard, a file or a
callable; :mod:`.sinks`; its typed summary in :mod:`.report`), :class:`Clipper`
(:mod:`.clipper`: online clipping by a named rule, resumable), :func:`omega` (:mod:`.regulariser`:
Pascanu's regulariser as a differentiable loss term), and the tasks of Pascanu et al.'s
experiments (:mod:`.tasks`). The PyTorch Lightning callback is :mod:`rnngrad.lightning`.

What it may import: the analyses (:mod:`rnngrad.bptt`, :mod:`rnngrad.spectrum`,
:mod:`rnngrad.lyapunov`) and the layers below them, torch. TensorBoard and Lightning are
optional: importing this package needs neither.
"""

from __future__ import annotations

from rnngrad._lazy import lazy_names

__getattr__, __dir__ = lazy_names(__name__, {
    "GradientMonitor": "rnngrad.train.monitor", "Clipper": "rnngrad.train.clipper",
    "omega": "rnngrad.train.regulariser", "MonitorSummary": "rnngrad.train.report",
    "adding_problem": "rnngrad.train.tasks",
})

__all__ = ["Clipper", "GradientMonitor", "MonitorSummary", "adding_problem", "omega"]
