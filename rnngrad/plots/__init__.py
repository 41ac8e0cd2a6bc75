"""Pictures of rnngrad's reports: PNG or SVG through matplotlib, or the terminal through plotext.

An optional extra, ``pip install "rnngrad[plot]"``. Importing this package imports neither
library; each call imports what its target needs and raises :class:`~rnngrad.errors.OptionError`
(exit code 2 from the CLI) with the install hint when it is missing. Pictures are built on a
:class:`matplotlib.figure.Figure` with an Agg canvas inside an ``rc_context``: pyplot's global
state and the user's rcParams are never touched, and two runs write byte-identical files.

    import rnngrad
    from rnngrad.plots import save_plot, spectrum_matrices

    report = rnngrad.spectrum("model.safetensors")
    save_plot(report, "spectrum.svg", matrices=spectrum_matrices("model.safetensors", report))
    save_plot(report, "term")                       # draws in the terminal

``*_figure`` functions return the Figure itself, for notebooks or further styling.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..errors import OptionError
from ..report import BpttReport, SpectrumReport
from ._common import TERM, require, target_kind

Matrices = Mapping[tuple[str, str], Any]

__all__ = ["bptt_figure", "check_figure", "check_target", "pascanu_bounds", "plot_bptt",
           "plot_check", "plot_spectrum", "save_plot", "spectrum_figure", "spectrum_matrices"]


def check_target(target: str | Path) -> str:
    """Validate a ``--plot`` target before a long analysis: ``"png"``, ``"svg"`` or ``"term"``.

    Raises :class:`OptionError` for another extension or when the library it needs is missing.
    """
    kind = target_kind(target)
    require(kind)
    return kind


def save_plot(report: Any, target: str | Path, *, matrices: Matrices | None = None,
              bounds: Mapping[str, float] | None = None) -> None:
    """Draw ``report`` to ``target``: a ``.png`` or ``.svg`` path, or ``"term"`` (stdout).

    ``matrices`` (spectrum) and ``bounds`` (bptt) are passed on to :func:`plot_spectrum` and
    :func:`plot_bptt`; a check report is any object with ``plot_kind == "check"`` or ``results``.
    """
    if isinstance(report, SpectrumReport):
        plot_spectrum(report, target, matrices)
    elif isinstance(report, BpttReport):
        plot_bptt(report, target, bounds)
    elif getattr(report, "plot_kind", None) == "check" or hasattr(report, "results"):
        plot_check(report, target)
    else:
        command = getattr(report, "command", type(report).__name__)
        raise OptionError(f"--plot cannot draw a {command} report",
                          "use --plot with spectrum, bptt or check")


def plot_spectrum(report: SpectrumReport, target: str | Path,
                  matrices: Matrices | None = None) -> None:
    """Eigenvalues and singular values of every block; all of them when ``matrices`` is given.

    ``matrices`` maps ``(recurrence label, block)`` to the block's square matrix (numpy array
    or CPU tensor), as :func:`spectrum_matrices` returns; without it the report's top-K
    eigenvalues and σ_max, σ_min are drawn.
    """
    kind = check_target(target)
    if kind == TERM:
        from .term import spectrum_text

        _print(lambda color: spectrum_text(report, matrices, color=color))
        return
    from ._common import save, style
    from .spectrum import spectrum_figure

    with style():
        save(spectrum_figure(report, matrices), target, kind)


def plot_bptt(report: BpttReport, target: str | Path,
              bounds: Mapping[str, float] | None = None) -> None:
    """The per-lag profiles, thresholds and clip histogram of a bptt report.

    ``bounds`` maps a recurrence label to γ·σ_max from a spectrum run (:func:`pascanu_bounds`);
    those recurrences also get the dashed bound (γσ_max)^ℓ.
    """
    kind = check_target(target)
    if kind == TERM:
        from .term import bptt_text

        _print(lambda color: bptt_text(report, bounds, color=color))
        return
    from ._common import save, style
    from .bptt import bptt_figure

    with style():
        save(bptt_figure(report, bounds), target, kind)


def plot_check(report: Any, target: str | Path) -> None:
    """Value against limit for every threshold of a check report (see :mod:`.check`)."""
    kind = check_target(target)
    if kind == TERM:
        from .term import check_text

        _print(lambda color: check_text(report, color=color))
        return
    from ._common import save, style
    from .check import check_figure

    with style():
        save(check_figure(report), target, kind)


def spectrum_figure(report: SpectrumReport, matrices: Matrices | None = None) -> Any:
    """The spectrum picture as a :class:`matplotlib.figure.Figure` (current rcParams)."""
    require("png")
    from .spectrum import spectrum_figure as build

    return build(report, matrices)


def bptt_figure(report: BpttReport, bounds: Mapping[str, float] | None = None) -> Any:
    """The bptt picture as a :class:`matplotlib.figure.Figure` (current rcParams)."""
    require("png")
    from .bptt import bptt_figure as build

    return build(report, bounds)


def check_figure(report: Any) -> Any:
    """The check picture as a :class:`matplotlib.figure.Figure` (current rcParams)."""
    require("png")
    from .check import check_figure as build

    return build(report)


def spectrum_matrices(source: Any, report: SpectrumReport) -> dict[tuple[str, str], np.ndarray]:
    """The recurrent block matrices of ``report``'s recurrences, float64, keyed (label, block).

    ``source`` is what the report was computed from (path, bundle, state dict or module); it
    must hold the same weights (same sha256), else :class:`OptionError`.
    """
    from ..cells import cell_weights
    from ..loading import as_bundle

    bundle = as_bundle(source)
    if bundle.sha256 != report.model.sha256:
        raise OptionError(f"the weights of {bundle.path} are not those of the report "
                          f"({report.model.path})", "pass the source the report was computed from")
    matrices = {}
    for item in report.recurrences:
        rec = item.recurrence
        blocks = rec.kind.recurrent_blocks(cell_weights(bundle, rec))
        for name, block in blocks.items():
            matrices[(rec.label, name)] = block.detach().cpu().numpy().astype(np.float64)
    return matrices


def pascanu_bounds(report: SpectrumReport) -> dict[str, float]:
    """γ·σ_max(W_hh) per Elman recurrence label, the rate of the bound (γσ_max)^ℓ.

    Only Elman cells: for LSTM and GRU the W_hh blocks do not bound the state Jacobian
    (Pascanu et al.'s derivation is for s_t = W_hh φ(s_(t−1)) + ...), so no line is drawn.
    """
    return {item.recurrence.label: item.bound for item in report.recurrences
            if item.recurrence.cell == "rnn"}


def _print(text: Any) -> None:
    """Write ``text(color)`` to stdout, with colours only when stdout is a terminal."""
    isatty = getattr(sys.stdout, "isatty", None)
    sys.stdout.write(text(bool(isatty and isatty())).rstrip("\n") + "\n")
