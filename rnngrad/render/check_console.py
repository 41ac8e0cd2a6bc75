"""The ``table`` view of a check report: one row per model × recurrence × threshold, then
the key figures by model."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from rnngrad.render.numbers import fmt
from rnngrad.render.text import cell, plain
from rnngrad.render.trend import trend_rows


def check_view(report: Any) -> Group:
    checked = len(report.models) + len(report.errors)
    parts: list[Any] = [Text.assemble(("rnngrad check", "bold"), (
        f"  {checked} model(s); config: {plain(report.config_source or 'none')}"
        + (f"; baseline: {plain(report.baseline)}" if report.baseline else ""), "dim"))]
    table = Table(title="Thresholds", title_justify="left")
    for column in ("model", "recurrence", "threshold", "value", "limit", ""):
        table.add_column(column, justify="right" if column in ("value", "limit") else "left",
                         overflow="fold")
    for result in report.results:
        mark = Text("pass", style="green") if result.passed else Text("FAIL", style="bold red")
        table.add_row(cell(_short(result.model)), cell(result.recurrence), str(result.threshold),
                      fmt(result.value), fmt(result.limit), mark)
    if report.results:
        parts.append(table)
    elif report.models:
        parts.append(Text("no thresholds configured: figures only (set e.g. explode-above in "
                          "[tool.rnngrad])", style="yellow"))
    for result in report.failed:
        parts.append(Text(f"FAIL {plain(_short(result.model))} {plain(result.recurrence)} "
                          f"{result.threshold}: {plain(result.message)}", style="red"))
    if len(report.models) > 1 or (report.models and not report.results):
        parts.append(_trend_table(report))
    for error in report.errors:
        parts.append(Text(f"ERROR {plain(error.text)} ({plain(error.hint)})", style="bold red"))
    parts.append(summary_text(report))
    return Group(*parts)


def summary_text(report: Any) -> Text:
    """The last line: models that could not be checked, then failed or passed checks."""
    return Text(report.summary, style="bold red" if report.failed or report.errors
                else "bold green")


def _trend_table(report) -> Table:
    table = Table(title="Key figures by model (in order)", title_justify="left")
    for column in ("model", "recurrence", "ρ", "γσ_max", "log10 ‖·‖ last", "verdict"):
        table.add_column(column, justify="left" if column in ("model", "recurrence", "verdict")
                         else "right", overflow="fold")
    for row in trend_rows(report):
        table.add_row(cell(_short(row[0])), *(cell(value) for value in row[1:]))
    return table


def _short(path: str) -> str:
    """The file name, cut to 22 characters, so the table fits 80 columns."""
    from pathlib import Path

    name = Path(path).name
    return name if len(name) <= 22 else name[:10] + "…" + name[-11:]
