"""The spectrum picture: one column per gate block, two rows per recurrence.

Top row: the eigenvalues λ of the block in the complex plane with the unit circle and the 1/γ
circle (they coincide for γ = 1), the leading eigenvalue (|λ| = ρ) starred. Bottom row: the
singular values σ_i, sorted, on a log scale, with σ_max and γ·σ_max (the per-step bound of
Pascanu, Mikolov & Bengio 2013, Sec. 2.1) drawn. The report keeps only the top-K eigenvalues
and σ_max, σ_min of each block; pass the matrices (``spectrum_matrices``) to draw them all.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnngrad.spectrum.report import MatrixSpectrum, RecurrenceSpectrum, SpectrumReport
from rnngrad.plots._common import (BOUND, EXPLODE, GREY, LEADING, MEASURED, dedupe_handles,
                      model_name, mpl_text, new_figure)

ON_CIRCLE = 1e-9  # README: values within 1e-9 of 1 count as on the circle
BLOCK_NAMES = {"hh": "W_hh", "i": "W_hi (input gate)", "f": "W_hf (forget gate)",
               "g": "W_hg (cell candidate)", "o": "W_ho (output gate)", "r": "W_hr (reset gate)",
               "z": "W_hz (update gate)", "n": "W_hn (new gate)"}


def spectrum_figure(report: SpectrumReport) -> Any:
    """A matplotlib Figure of ``report``: every λ and σ when the report kept them
    (``SpectrumOptions(values=True)``), else the top eigenvalues and σ_max, σ_min."""
    items = report.recurrences
    columns = max(len(item.blocks) for item in items)
    figure = new_figure(max(3.1 * columns, 7.0), 5.3 * len(items) + 1.5)
    rows = figure.subfigures(len(items), 1, squeeze=False)[:, 0]
    axes = []
    for subfigure, item in zip(rows, items):
        axes += _recurrence_rows(subfigure, item, columns)
    figure.suptitle(f"rnngrad spectrum · {mpl_text(model_name(report.model.path))}\neigenvalues (top) and "
                    "singular values (bottom) of each recurrent block", fontsize=11)
    handles, labels = dedupe_handles(axes)
    figure.legend(handles, labels, loc="outside lower center", ncols=2 if columns > 2 else 1)
    return figure


def _recurrence_rows(subfigure: Any, item: RecurrenceSpectrum, columns: int) -> list[Any]:
    rec = item.recurrence
    subfigure.suptitle(f"{mpl_text(rec.label)} ({rec.cell}, {rec.nonlinearity}, γ = {item.gamma:g}): "
                       f"{item.verdict}; bound γ·σ_max({item.bound_block}) = {item.bound:.4g}",
                       fontsize=10, fontweight="bold")
    grid = subfigure.add_gridspec(2, columns, height_ratios=(1.0, 0.62))
    axes = []
    for column, block in enumerate(item.blocks):
        top = subfigure.add_subplot(grid[0, column])
        bottom = subfigure.add_subplot(grid[1, column])
        _eigenvalues(top, block.name, block.spectrum, item.gamma)
        _singular_values(bottom, block.name, block.spectrum, item)
        axes += [top, bottom]
    return axes


def _eigenvalues(ax: Any, block: str, spec: MatrixSpectrum, gamma: float) -> None:
    from matplotlib.patches import Circle

    eig = eigenvalues(spec)
    shown = f"all {spec.size}" if spec.all_eigenvalues is not None else \
        f"top {len(eig)} of {spec.size}"
    same = abs(gamma - 1.0) <= ON_CIRCLE
    ax.add_patch(Circle((0, 0), 1.0, fill=False, color=GREY, lw=1.2,
                        label="unit circle |λ| = 1" + (" = 1/γ circle (γ = 1)" if same else "")))
    if not same:
        ax.add_patch(Circle((0, 0), 1.0 / gamma, fill=False, color=BOUND, lw=1.0, ls="--",
                            label="1/γ circle |λ| = 1/γ"))
    outside = np.abs(eig) > 1.0 + ON_CIRCLE
    if (~outside).any():
        ax.scatter(eig.real[~outside], eig.imag[~outside], s=16, color=MEASURED, zorder=3,
                   label="eigenvalue λ of the block, |λ| ≤ 1")
    if outside.any():
        ax.scatter(eig.real[outside], eig.imag[outside], s=18, color=EXPLODE, marker="D",
                   zorder=3, label="eigenvalue λ outside the unit circle, |λ| > 1")
    lead_re, lead_im = spec.leading_eigenvalue
    ax.scatter([lead_re], [lead_im], s=160, marker="*", color=LEADING, edgecolors=BOUND,
               linewidths=0.6, zorder=4, label="leading eigenvalue, |λ| = ρ (spectral radius)")
    limit = 1.12 * max(1.0, 1.0 / gamma, spec.spectral_radius)
    ax.set_xlim(-limit, limit)
    ax.set_ylim(-limit, limit)
    ax.set_aspect("equal")
    ax.axhline(0, color=GREY, lw=0.5)
    ax.axvline(0, color=GREY, lw=0.5)
    ax.set_title(f"{BLOCK_NAMES.get(block, block)}\nρ = {spec.spectral_radius:.4g} ({shown} λ)")
    ax.set_xlabel("Re λ")
    ax.set_ylabel("Im λ")


def _singular_values(ax: Any, block: str, spec: MatrixSpectrum,
                     item: RecurrenceSpectrum) -> None:
    if spec.singular_values is not None:
        sigma = np.asarray(spec.singular_values)
        index = np.arange(1, sigma.size + 1)
        ax.plot(index, np.where(sigma > 0, sigma, np.nan), marker=".", ms=4, lw=1.0,
                color=MEASURED, label="singular values σ_i, sorted")
    else:
        index = np.array([1, spec.size])
        sigma = np.array([spec.sigma_max, spec.sigma_min])
        ax.plot(index, np.where(sigma > 0, sigma, np.nan), marker="o", ms=4, lw=0,
                color=MEASURED, label="σ_max and σ_min (every σ_i with values=True)")
    bound = item.gamma * spec.sigma_max
    ax.axhline(1.0, color=GREY, lw=1.0, ls=":", label="1: γ·σ_max < 1 guarantees vanishing")
    ax.axhline(bound, color=BOUND, lw=1.2, ls="--",
               label="γ·σ_max: ‖∂h_t/∂h_(t−1)‖ ≤ γ·σ_max for Elman cells "
                     "(Pascanu et al. 2013, Sec. 2.1)")
    ax.set_yscale("log")
    same = abs(item.gamma - 1.0) <= ON_CIRCLE
    text = (f"σ_max = γ·σ_max = {spec.sigma_max:.4g}" if same
            else f"σ_max = {spec.sigma_max:.4g}\nγ·σ_max = {bound:.4g}")
    if block == item.bound_block:
        text += "\n(the bound of this recurrence)"
    ax.text(0.03, 0.05, text, transform=ax.transAxes, ha="left", va="bottom", fontsize=8)
    ax.set_xlabel("index i (largest first)")
    ax.set_ylabel("σ_i (log scale)")
    low = min(spec.sigma_min if spec.sigma_min > 0 else spec.sigma_max * 1e-3, 1.0)
    ax.set_ylim(low / 1.6, max(bound, spec.sigma_max, 1.0) * 2.2)


def eigenvalues(spec: MatrixSpectrum) -> np.ndarray:
    """Every eigenvalue the report kept, else its top ones, as complex numbers."""
    pairs = spec.all_eigenvalues if spec.all_eigenvalues is not None else spec.eigenvalues
    return np.array([complex(re, im) for re, im in pairs])
