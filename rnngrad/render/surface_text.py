"""The sentences of a :class:`~rnngrad.surface.report.SurfaceReport` that every human format
shows (plain text, no markup; file text made plain)."""

from __future__ import annotations

import math
from typing import Any

from rnngrad.render.numbers import fmt
from rnngrad.render.text import plain

ALIGNED, PARTLY = 0.9, 0.5


def module_line(report: Any) -> str:
    """Which module, cell and θ were analysed, with which loss."""
    rec = report.recurrences[0]
    cell = f"{rec.cell} {rec.nonlinearity}" if rec.cell in ("rnn", "leaky") else rec.cell
    layers = len({(r.layer, r.direction) for r in report.recurrences})
    units = "unit" if rec.hidden_size == 1 else "units"
    shape = f"{layers} recurrences" if layers > 1 else f"{rec.hidden_size} {units}"
    return (f"module {plain(report.module or '(top)')} ({plain(cell)}, {shape}); θ: "
            f"{report.parameter_count:,} values ({plain(report.options.params)}); loss "
            f"{plain(report.loss_name)}, the mean over the probes at the last step")


def alignment(cosine: float | None) -> str:
    """|cos(g, u_1)| in words."""
    if cosine is None:
        return "no gradient direction"
    if cosine >= ALIGNED:
        return "aligned: the gradient points along the dominant curvature (the seed's wall)"
    if cosine >= PARTLY:
        return "partly aligned"
    return "not aligned: the dominant curvature is across the gradient"


def curvature_lines(report: Any) -> list[str]:
    """λ_1, the extremes with their accuracy, ĝᵀHĝ and the alignment."""
    c = report.curvature
    state = "converged" if c.converged else "not converged: the bounds say how far off"
    return [
        f"λ_1 = {fmt(c.top_eigenvalue)} (the dominant curvature); λ_max = "
        f"{fmt(c.largest_eigenvalue)} (± {fmt(c.largest_error_bound, 2)}), λ_min = "
        f"{fmt(c.smallest_eigenvalue)} (± {fmt(c.smallest_error_bound, 2)}); Lanczos, "
        f"{c.lanczos_steps} steps, {c.products} Hessian-vector products, {state}",
        f"ĝᵀHĝ = {fmt(c.along_gradient)} along the gradient; |cos(g, u_1)| = "
        f"{fmt(c.cos_gradient_top)}: {alignment(c.cos_gradient_top)}",
    ]


def wall_line(report: Any) -> str:
    """Where the slice's wall is, or that there is none."""
    span = max((abs(p.step) for p in report.slice), default=0.0)
    wall = report.wall
    if wall is None:
        return f"no wall on the slice ahead (E changes smoothly for t up to {fmt(span)})"
    if wall.loss_after is None:
        return (f"wall at t = {fmt(wall.distance)} ahead: there E leaves float64 (the forward "
                f"pass overflows), from {fmt(wall.loss_before)} on the slice before it")
    return (f"wall at t = {fmt(wall.distance)} ahead: E jumps {fmt(wall.loss_before)} → "
            f"{fmt(wall.loss_after)} ({fmt(wall.jump_ratio)}× the median change); slope "
            f"{fmt(wall.slope)}, curvature {fmt(wall.curvature)} there")


def grid_lines(report: Any) -> list[str]:
    """The grid's axes and the range of E on it."""
    grid = report.grid
    if grid is None:
        return []
    lines = [f"{plain(axis.name)}: {plain(axis.description)}, {len(axis.values)} values "
             f"{fmt(axis.values[0])} … {fmt(axis.values[-1])} (θ at {fmt(axis.origin)})"
             for axis in grid.axes]
    values = [(v, i, j) for i, row in enumerate(grid.loss) for j, v in enumerate(row)
              if v is not None]
    total = sum(len(row) for row in grid.loss)
    if values:
        low, high = min(values), max(values)
        lines.append(f"E from {fmt(low[0])} (at {_where(grid, low)}) to {fmt(high[0])} (at "
                     f"{_where(grid, high)}); {total - len(values)} of {total} points not finite")
    return lines


def _where(grid: Any, found: tuple[float, int, int]) -> str:
    _, i, j = found
    if len(grid.axes) == 1:
        return f"{plain(grid.axes[0].name)} = {fmt(grid.axes[0].values[j])}"
    return (f"{plain(grid.axes[0].name)} = {fmt(grid.axes[0].values[i])}, "
            f"{plain(grid.axes[1].name)} = {fmt(grid.axes[1].values[j])}")


def finite(values: list[float | None]) -> list[float]:
    """None as NaN, for sparklines."""
    return [math.nan if v is None else v for v in values]
