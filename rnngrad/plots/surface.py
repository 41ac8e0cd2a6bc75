"""The surface picture: E over the ``--vary`` grid with the SGD paths, the slice along the
gradient with its wall and the step, and the growth of gradient and curvature with the horizon.

- Grid of two axes: E as a heat map with contours, like the error-surface figure of Pascanu
  et al. (2013) (the seed's Fig. 4), with θ and the paths of a few SGD steps on it, unclipped
  and clipped at max_norm (each path point at its coordinates on the axes). One axis: E along
  it, with the paths' points.
- The slice E(θ − tĝ): where one unclipped and one clipped step land, and the wall.
- By horizon T: ‖g‖, |λ_1| and |ĝᵀHĝ| on a log scale, with their fitted per-step rates.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rnngrad.plots._common import (BAND, EXPLODE, GRADIENT, GREY, LEADING, MEASURED,
                                   finite_or_nan, model_name, mpl_text, new_figure,
                                   probe_words)
from rnngrad.surface.report import SurfaceReport

UNCLIPPED, CLIPPED = EXPLODE, MEASURED


def surface_figure(report: SurfaceReport) -> Any:
    """A matplotlib Figure of ``report``."""
    grid = report.grid
    figure = new_figure(11.0, 9.0 if grid is not None else 4.8)
    layout = figure.add_gridspec(2 if grid is not None else 1, 2,
                                 height_ratios=[1.5, 1.0] if grid is not None else [1.0])
    if grid is not None:
        ax = figure.add_subplot(layout[0, :])
        (_grid_2d if len(grid.axes) == 2 else _grid_1d)(ax, report)
    row = 1 if grid is not None else 0
    _slice(figure.add_subplot(layout[row, 0]), report)
    _growth(figure.add_subplot(layout[row, 1]), report)
    figure.suptitle(f"rnngrad surface · {mpl_text(model_name(report.model.path))} · module "
                    f"{mpl_text(report.module or '(top)')}\nprobe: {probe_words(report.probe)}; "
                    f"η = {report.step.lr:g}, max_norm = {_g(report.step.max_norm)}",
                    fontsize=11)
    return figure


def _grid_2d(ax: Any, report: SurfaceReport) -> None:
    grid = report.grid
    first, second = grid.axes
    values = np.array([finite_or_nan(row) for row in grid.loss])  # (first, second)
    x, y = np.asarray(first.values), np.asarray(second.values)
    # rasterized: a vector SVG of every cell would be megabytes; axes and paths stay vectors
    mesh = ax.pcolormesh(x, y, values.T, shading="auto", cmap="viridis", rasterized=True)
    finite = values[np.isfinite(values)]
    if finite.size and finite.max() > finite.min():
        ax.contour(x, y, values.T, levels=12, colors="white", linewidths=0.5, alpha=0.7)
    ax.figure.colorbar(mesh, ax=ax, label="E")
    for path, color, label in _paths(report):
        points = [p.coordinates for p in path if len(p.coordinates) == 2]
        if points:
            px, py = np.array(points).T
            ax.plot(px, py, color=color, lw=1.6, marker="o", ms=3.5, label=label)
    ax.plot([first.origin], [second.origin], marker="*", ms=13, color=LEADING, ls="none",
            markeredgecolor="black", label="θ (the file's parameters)")
    ax.set_xlim(x.min(), x.max())
    ax.set_ylim(y.min(), y.max())
    ax.set_xlabel(_axis_label(first))
    ax.set_ylabel(_axis_label(second))
    ax.set_title("E over the grid, with SGD paths from θ")
    ax.legend(loc="upper right", frameon=True, framealpha=0.9, edgecolor="none")


def _grid_1d(ax: Any, report: SurfaceReport) -> None:
    axis = report.grid.axes[0]
    ax.plot(axis.values, finite_or_nan(report.grid.loss[0]), color=MEASURED, lw=1.8, label="E")
    for path, color, label in _paths(report):
        points = [(p.coordinates[0], p.loss) for p in path
                  if len(p.coordinates) == 1 and p.loss is not None]
        if points:
            ax.plot(*np.array(points).T, color=color, lw=1.0, marker="o", ms=4, label=label)
    ax.axvline(axis.origin, color=LEADING, lw=1.2, ls="--", label="θ")
    ax.set_xlabel(_axis_label(axis))
    ax.set_ylabel("E")
    ax.set_title("E along the --vary axis, with SGD paths from θ (projected)")
    ax.legend(loc="best")


def _paths(report: SurfaceReport) -> list[tuple[Any, str, str]]:
    lr = report.step.lr
    paths = [(report.paths.unclipped, UNCLIPPED, f"plain SGD, η = {lr:g}")]
    if report.step.max_norm is not None:
        paths.append((report.paths.clipped, CLIPPED,
                      f"clipped at max_norm = {_g(report.step.max_norm)}"))
    return paths


def _axis_label(axis: Any) -> str:
    if axis.kind == "parameter":
        return f"{mpl_text(axis.name)} ({mpl_text(axis.description)})"
    return f"step t along {mpl_text(axis.name)}: {mpl_text(axis.description)}"


def _slice(ax: Any, report: SurfaceReport) -> None:
    ax.set_title("Slice E(θ − tĝ) along the gradient")
    ax.set_xlabel("step t along −ĝ (t > 0: downhill)")
    ax.set_ylabel("E")
    if not report.slice:
        ax.text(0.5, 0.5, "no slice: the gradient is zero or not finite", ha="center",
                va="center", transform=ax.transAxes)
        return
    steps = [p.step for p in report.slice]
    ax.plot(steps, finite_or_nan(p.loss for p in report.slice), color=MEASURED, lw=1.8,
            label="E(θ − tĝ)")
    step = report.step
    if report.wall is not None:
        ax.axvspan(report.wall.distance, max(steps), color=EXPLODE, alpha=0.10, lw=0,
                   label=f"past the wall (t > {_g(report.wall.distance)})")
        ax.axvline(report.wall.distance, color=EXPLODE, lw=1.2)
    for length, loss, color, label in (
            (step.step_length, step.loss_unclipped, UNCLIPPED, "one plain step lands"),
            (step.clipped_length, step.loss_clipped, CLIPPED, "one clipped step lands")):
        if length is not None and loss is not None and length <= max(steps):
            ax.plot([length], [loss], marker="o", ms=7, color=color, ls="none",
                    label=f"{label} (t = {_g(length)})")
    ax.axvline(0.0, color=GREY, lw=0.8, ls=":")
    _legend_below(ax)


def _growth(ax: Any, report: SurfaceReport) -> None:
    rows = report.by_length
    steps = [row.steps for row in rows]
    growth = report.growth
    for name, rate, color, label in (
            ("gradient_norm", growth.gradient_rate, MEASURED, "‖g‖"),
            ("top_eigenvalue", growth.top_eigenvalue_rate, EXPLODE, "|λ_1|"),
            ("along_gradient", growth.along_gradient_rate, GRADIENT, "|ĝᵀHĝ|")):
        values = [abs(v) if v else math.nan for v in (getattr(row, name) for row in rows)]
        words = f" (×{rate:.4g} per step)" if rate is not None else ""
        ax.plot(steps, values, color=color, lw=1.6, marker="o", ms=4, label=label + words)
    ax.set_yscale("log")
    ax.set_xlabel("BPTT horizon T (gradient and Hessian through the last T steps)")
    ax.set_ylabel("size (log scale)")
    ax.set_title(f"Growth with the horizon: {growth.regime}")
    ax.grid(True, which="both", color=BAND, lw=0.3)
    _legend_below(ax)


def _legend_below(ax: Any) -> None:
    """Under the panel, where it never hides a curve."""
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=2, fontsize=8)


def _g(value: float | None) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.4g}"
