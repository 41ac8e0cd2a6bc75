"""Pictures of rnngrad's reports: PNG or SVG through matplotlib, or the terminal through plotext.

An optional extra, ``pip install "rnngrad[plot]"``. Importing this package imports neither
library; each call imports what its target needs and raises :class:`~rnngrad.errors.OptionError`
(exit code 2 from the CLI) with the install hint when it is missing. Pictures are built on a
:class:`matplotlib.figure.Figure` with an Agg canvas inside an ``rc_context``: pyplot's global
state and the user's rcParams are never touched, and two runs write byte-identical files.

A picture is drawn from the report alone; the model file is never read again. A spectrum
report made with ``values=True`` (``rnngrad spectrum --plot`` does this) carries every
eigenvalue and singular value, and the picture shows them all::

    import rnngrad
    from rnngrad.plots import save_plot

    report = rnngrad.spectrum("model.safetensors", values=True)
    save_plot(report, "spectrum.svg")
    save_plot(rnngrad.bptt("model.safetensors"), "term")      # draws in the terminal

``*_figure`` functions return the Figure itself, for notebooks or further styling.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

from rnngrad.errors import OptionError
from rnngrad.plots._common import TERM, require, target_kind

__all__ = ["bptt_figure", "check_figure", "check_target", "lyapunov_figure", "plot_bptt",
           "plot_bytes", "plot_check", "plot_lyapunov", "plot_spectrum", "save_plot",
           "spectrum_figure", "surface_figure"]

# command -> (module, figure function); the terminal pictures are rnngrad.plots.term.TEXTS
_DRAWERS = {
    "spectrum": ("rnngrad.plots.spectrum", "spectrum_figure"),
    "bptt": ("rnngrad.plots.bptt", "bptt_figure"),
    "check": ("rnngrad.plots.check", "check_figure"),
    "surface": ("rnngrad.plots.surface", "surface_figure"),
    "lyapunov": ("rnngrad.plots.lyapunov", "lyapunov_figure"),
}


def check_target(target: str | Path) -> str:
    """Validate a ``--plot`` target before a long analysis: ``"png"``, ``"svg"`` or ``"term"``.

    Raises :class:`OptionError` for another extension or when the library it needs is missing.
    """
    kind = target_kind(target)
    require(kind)
    return kind


def save_plot(report: Any, target: str | Path) -> None:
    """Draw ``report`` (spectrum, bptt, surface, lyapunov or check) to ``target``: a ``.png``
    or ``.svg`` path, or ``"term"`` (stdout). Anything with ``results`` draws as a check report."""
    command = _command(report)
    kind = check_target(target)
    if kind == TERM:
        from rnngrad.plots.term import TEXTS

        _print(lambda color: TEXTS[command](report, color=color))
        return
    data = plot_bytes(report, kind)
    try:
        Path(target).write_bytes(data)
    except OSError as exc:
        raise OptionError(f"--plot {target}: cannot be written ({exc.strerror or exc})",
                          "choose a writable path") from None


def plot_bytes(report: Any, kind: str) -> bytes:
    """The picture of ``report`` as the bytes of a ``"png"`` or ``"svg"`` file (the command
    line writes them through its output guard; :func:`save_plot` to a path)."""
    import io

    from rnngrad.plots._common import save, style

    command = _command(report)
    require(kind)
    buffer = io.BytesIO()
    with style():
        save(_figure(command)(report), buffer, kind)
    return buffer.getvalue()


def _command(report: Any) -> str:
    command = getattr(report, "command", None) or ("check" if hasattr(report, "results") else None)
    if command not in _DRAWERS:
        raise OptionError(f"--plot cannot draw a {command or type(report).__name__} report",
                          "use --plot with spectrum, bptt, surface, lyapunov or check")
    return command


def plot_spectrum(report: Any, target: str | Path) -> None:
    """Eigenvalues and singular values of every block (all of them when the report kept
    them, else the top eigenvalues and σ_max, σ_min)."""
    save_plot(report, target)


def plot_bptt(report: Any, target: str | Path) -> None:
    """The per-lag profiles with thresholds and Pascanu's bound, and the clip histogram."""
    save_plot(report, target)


def plot_lyapunov(report: Any, target: str | Path) -> None:
    """The running estimates of the top exponents and the spectrum with its errors."""
    save_plot(report, target)


def plot_check(report: Any, target: str | Path) -> None:
    """Value against limit for every threshold of a check report."""
    save_plot(report, target)


def spectrum_figure(report: Any) -> Any:
    """The spectrum picture as a :class:`matplotlib.figure.Figure` (current rcParams)."""
    return _figure("spectrum")(report)


def bptt_figure(report: Any) -> Any:
    """The bptt picture as a :class:`matplotlib.figure.Figure` (current rcParams)."""
    return _figure("bptt")(report)


def surface_figure(report: Any) -> Any:
    """The surface picture as a :class:`matplotlib.figure.Figure` (current rcParams)."""
    return _figure("surface")(report)


def lyapunov_figure(report: Any) -> Any:
    """The lyapunov picture as a :class:`matplotlib.figure.Figure` (current rcParams)."""
    return _figure("lyapunov")(report)


def check_figure(report: Any) -> Any:
    """The check picture as a :class:`matplotlib.figure.Figure` (current rcParams)."""
    return _figure("check")(report)


def _figure(command: str) -> Callable[[Any], Any]:
    import importlib

    require("png")
    module, function = _DRAWERS[command]
    return getattr(importlib.import_module(module), function)


def _print(text: Callable[[bool], str]) -> None:
    """Write ``text(color)`` to stdout, with colours only when stdout is a terminal."""
    isatty = getattr(sys.stdout, "isatty", None)
    sys.stdout.write(text(bool(isatty and isatty())).rstrip("\n") + "\n")
