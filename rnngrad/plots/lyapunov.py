"""The lyapunov picture: per recurrence, how the exponents converged and the spectrum itself.

Left: the running estimates (1/n) Σ_(t ≤ n) ln|R_ii| of the top exponents (mean over the
probes) against the averaged steps n, on a log axis: flat on the right means converged. The
band ±ε is the edge of chaos of the verdict. Right: the exponents λ_i against i with their
standard errors, the same band, λ = 0 (a perturbation, or a gradient, neither growing nor
shrinking) and, for chaotic recurrences, the Kaplan–Yorke dimension. Exponents of −∞ are
marked below the others.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnngrad.lyapunov.report import LyapunovReport, RecurrenceExponents
from rnngrad.plots._common import (BAND, EXPLODE, GREY, MEASURED, OKABE_ITO, dedupe_handles,
                                   finite_or_nan, model_name, mpl_text, new_figure,
                                   probe_words)

# Running estimates of the first exponents in distinct colours, the rest in grey.
COLOURS = (OKABE_ITO["vermillion"], OKABE_ITO["blue"], OKABE_ITO["green"],
           OKABE_ITO["orange"], OKABE_ITO["purple"])


def lyapunov_figure(report: LyapunovReport) -> Any:
    """A matplotlib Figure of ``report``: one row of two panels per recurrence."""
    items = report.recurrences
    figure = new_figure(11.0, 3.6 * len(items) + 1.7)
    grid = figure.add_gridspec(len(items), 2, width_ratios=(1.5, 1.0))
    axes = []
    for row, item in enumerate(items):
        left, right = figure.add_subplot(grid[row, 0]), figure.add_subplot(grid[row, 1])
        _running(left, item)
        _spectrum(right, item)
        axes += [left, right]
    figure.suptitle(f"rnngrad lyapunov · {mpl_text(model_name(report.model.path))}\n"
                    f"probe: {probe_words(report.probe)}, burn-in "
                    f"{report.probe.burn_in if report.probe else 0} steps", fontsize=11)
    handles, labels = dedupe_handles(axes)
    figure.legend(handles, labels, loc="outside lower center", ncols=3)
    return figure


def _edge_band(ax: Any, edge: float) -> None:
    ax.axhspan(-edge, edge, color=BAND, alpha=0.35, lw=0,
               label=f"edge of chaos |λ| ≤ ε = {edge:g} (--edge)")
    ax.axhline(0.0, color=GREY, lw=0.8, ls=":")


def _running(ax: Any, item: RecurrenceExponents) -> None:
    rec = item.recurrence
    ax.set_title(f"{mpl_text(rec.label)} ({rec.cell}, s = {item.state}, {item.state_size} "
                 f"units): {item.verdict}", loc="left")
    _edge_band(ax, item.edge)
    if item.running is None:
        ax.text(0.5, 0.5, mpl_text(item.reason), ha="center", va="center", wrap=True,
                transform=ax.transAxes, fontsize=9)
        return
    steps = np.array(item.running.steps, dtype=np.float64)
    for index, series in enumerate(item.running.exponents):
        colour = COLOURS[index] if index < len(COLOURS) else GREY
        label = f"λ_{index + 1}" if index < len(COLOURS) else "λ_6 … (grey)"
        ax.plot(steps, finite_or_nan(series), color=colour, lw=1.6 if index == 0 else 1.1,
                label=f"running estimate of {label}" if index < len(COLOURS) or index == 5
                else None)
    ax.set_xscale("log")
    ax.set_xlabel("steps averaged after the burn-in")
    ax.set_ylabel("λ (nats per step)")


def _spectrum(ax: Any, item: RecurrenceExponents) -> None:
    _edge_band(ax, item.edge)
    if not item.exponents:
        ax.set_axis_off()
        return
    index = np.arange(1, len(item.exponents) + 1)
    values = np.array(finite_or_nan(item.exponents))
    errors = np.array([0.0 if e is None else e for e in item.exponents_stderr])
    ax.errorbar(index, values, yerr=errors, fmt="o", color=MEASURED, ms=4, capsize=2,
                label="λ_i ± standard error (mean over probes)")
    dead = np.isnan(values)
    if dead.any():
        bottom = np.nanmin(values) - 0.1 if (~dead).any() else -1.0
        ax.scatter(index[dead], np.full(dead.sum(), bottom), marker="v", color=EXPLODE,
                   label="λ_i = −∞ (direction annihilated)")
    if item.kaplan_yorke is not None:
        ax.axvline(item.kaplan_yorke, color=OKABE_ITO["green"], lw=1.2, ls="--",
                   label="Kaplan–Yorke dimension (partial sums of λ_i reach 0)")
    ax.set_xlabel("i (largest first)")
    ax.set_ylabel("λ_i (nats per step)")
    ax.set_title("exponents" + (f"; λ_1 = {item.exponents[0]:+.4g}, ×{item.factor:.4g} per step"
                                if item.exponents[0] is not None and item.factor else ""),
                 loc="left")
