"""The ``table`` view of a :class:`~rnngrad.surface.report.SurfaceReport`."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from rnngrad.render.bptt_console import probe_line
from rnngrad.render.numbers import fmt, fmt_shape
from rnngrad.render.rich_parts import model_line, notes_text, verdict_text
from rnngrad.render.sparkline import sparkline
from rnngrad.render.surface_text import (curvature_lines, finite, grid_lines, module_line,
                                         wall_line)
from rnngrad.render.text import cell, plain
from rnngrad.surface.report import SurfaceReport

MAX_TENSORS = 12


def surface_view(report: SurfaceReport) -> Group:
    """A surface report as Rich parts: E and ‖∂E/∂θ‖, the tensors, the curvature, its growth,
    the slice, the SGD step and paths, the ``--vary`` grid, the clip rule and notes."""
    parts: list[Any] = [model_line(report, "surface"), Text(probe_line(report.probe), style="dim"),
                        Text(module_line(report), style="dim"),
                        Text.assemble(("E = ", "bold"), fmt(report.loss), ("   ‖∂E/∂θ‖ = ", "bold"),
                                      fmt(report.gradient_norm)),
                        _tensors(report), _section("Curvature", curvature_lines(report)),
                        _growth(report), _slice(report),
                        Text.assemble(("SGD step\n", "bold"), (plain(report.step.sentence),
                                                               _step_style(report))),
                        Text.assemble(("SGD paths\n", "bold"), plain(report.paths.sentence))]
    if report.grid is not None:
        parts.append(_section("Grid (--vary)", grid_lines(report)))
    parts.append(Text(f"clip rule: {plain(report.clip.rule_text)}; {plain(report.clip.line)}",
                      style="dim"))
    parts.append(notes_text(report.notes))
    return Group(*parts)


def _section(title: str, lines: list[str]) -> Text:
    return Text.assemble((f"{title}\n", "bold"), "\n".join(f"  {plain(line)}" for line in lines))


def _tensors(report: SurfaceReport) -> Table:
    table = Table(title="‖∂E/∂θ‖ by tensor", title_justify="left")
    for column in ("tensor", "shape", "‖∂E/∂·‖"):
        table.add_column(column, justify="left" if column == "tensor" else "right")
    rows = sorted(report.parameters, key=lambda p: -(p.gradient_norm or -1.0))
    for row in rows[:MAX_TENSORS]:
        table.add_row(cell(row.name), fmt_shape(row.shape),
                      fmt(row.gradient_norm) if row.in_theta else "fixed (not in θ)")
    if len(rows) > MAX_TENSORS:
        table.caption = f"{MAX_TENSORS} of {len(rows)} tensors; --format json has all"
    return table


def _growth(report: SurfaceReport) -> Group:
    table = Table(title="Growth with the BPTT horizon (gradient and Hessian through the last T "
                        "steps)", title_justify="left")
    for column in ("T", "‖g‖", "λ_1", "ĝᵀHĝ", "|cos(g, u_1)|"):
        table.add_column(column, justify="right")
    for row in report.by_length:
        table.add_row(str(row.steps), fmt(row.gradient_norm), fmt(row.top_eigenvalue),
                      fmt(row.along_gradient), fmt(row.cos_gradient_top))
    g = report.growth
    table.add_row("per step", _rate(g.gradient_rate), _rate(g.top_eigenvalue_rate),
                  _rate(g.along_gradient_rate), "", style="bold")
    sentence = Text.assemble("  ", verdict_text(str(g.regime)), f": {plain(g.sentence)}")
    return Group(table, sentence)


def _rate(value: float | None) -> str:
    return "—" if value is None else f"×{fmt(value)}"


def _slice(report: SurfaceReport) -> Text:
    if not report.slice:
        return Text("Slice: none (the gradient is zero or not finite)", style="dim")
    losses = [point.loss for point in report.slice]
    known = [v for v in losses if v is not None]
    first, last = report.slice[0].step, report.slice[-1].step
    spread = f"E from {fmt(min(known))} to {fmt(max(known))}" if known else "E not finite"
    return Text.assemble(
        ("Slice E(θ − tĝ)", "bold"), f" for t in [{fmt(first)}, {fmt(last)}], "
        f"{len(report.slice)} points: {spread}\n  ", sparkline(finite(losses), 40),
        f"\n  {wall_line(report)}")


def _step_style(report: SurfaceReport) -> str:
    step = report.step
    if step.crosses_wall and not step.clipped_crosses_wall:
        return "yellow"
    if step.crosses_wall:
        return "red"
    return "green" if step.wall_distance is not None else ""
