"""Views of a training monitor's summary: the gradient norms seen, and the measurements."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from rnngrad.render.numbers import fmt
from rnngrad.render.rich_parts import verdict_text
from rnngrad.render.text import cell, plain


def point_rows(summary: Any) -> list[list[str]]:
    """(step, recurrence, ρ, γσ_max, log10 norm at the largest lag, λ_1, verdict) rows."""
    rows = []
    for point in summary.points:
        for item in point.recurrences:
            last = "—" if item.log10_norm_last is None else f"{item.log10_norm_last:.2f}"
            rows.append([str(point.step), item.label, fmt(item.spectral_radius), fmt(item.bound),
                         f"{last} (ℓ={item.lag_last})", fmt(item.lyapunov), str(item.verdict)])
    return rows


def norms_line(summary: Any) -> str:
    """The gradient norms a monitor saw, in one line: count, mean, median, 10th percentile,
    maximum, last, and how many were not finite."""
    stats = summary.grad_norms
    return (f"gradient norm over {stats.count} steps: mean {fmt(stats.mean)}, median "
            f"{fmt(stats.median)}, 10th pct {fmt(stats.p10)}, max {fmt(stats.maximum)}, last "
            f"{fmt(stats.last)}" + (f"; {stats.nonfinite} not finite" if stats.nonfinite else ""))


HEADER = ["step", "recurrence", "ρ", "γσ_max", "log10 ‖·‖ last", "λ_1", "verdict"]


def monitor_view(summary: Any) -> Group:
    """A monitor summary as Rich parts: the step count, :func:`norms_line`, and a row per
    measurement and recurrence."""
    table = Table(title=f"Measured every {summary.every} steps (lags {plain(summary.lags)})",
                  title_justify="left")
    for column in HEADER:
        table.add_column(column, justify="left" if column in ("recurrence", "verdict")
                         else "right")
    for row in point_rows(summary):
        table.add_row(*(cell(value) for value in row[:-1]), verdict_text(row[-1]))
    return Group(Text.assemble(("rnngrad monitor", "bold"), f"  {summary.steps} steps"),
                 Text(norms_line(summary)), table)
