"""The ``table`` view of a check report: one row per model × recurrence × threshold, then
the key figures by model."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from rnngrad.render.numbers import fmt
from rnngrad.render.text import cell, plain
from rnngrad.render.trend import (FIGURES_FOOTNOTE, figure_rows, figures_title, legend,
                                   model_ids)


def check_view(report: Any) -> Group:
    """A check report as Rich parts: the thresholds table, a FAIL line per failed result, the
    figures by model (for several models, or no results), a model legend, an ERROR line per
    model that could not be checked, and the summary."""
    ids = model_ids(report)
    checked = len(report.models) + len(report.errors)
    parts: list[Any] = [Text.assemble(("rnngrad check", "bold"), (
        f"  {checked} model(s); config: {plain(report.config_source or 'none')}"
        + (f"; baseline: {plain(report.baseline)}" if report.baseline else ""), "dim"))]
    if report.results:
        parts.append(_results_table(report, ids))
    for result in report.failed:
        parts.append(Text(f"FAIL {plain(ids.get(result.model, result.model))} "
                          f"{plain(result.recurrence)} {result.threshold}: "
                          f"{plain(result.message)}", style="red"))
    if report.models and (len(report.models) > 1 or not report.results):
        parts.append(_figures_table(report))
        parts.append(Text(FIGURES_FOOTNOTE, style="dim"))
    names = legend(ids)
    if names:
        parts.append(Text("models: " + "; ".join(plain(line) for line in names), style="dim"))
    for error in report.errors:
        parts.append(Text(f"ERROR {plain(error.text)} ({plain(error.hint)})", style="bold red"))
    parts.append(summary_line(report))
    return Group(*parts)


def summary_line(report: Any) -> Text:
    """The last line: models that could not be checked, then failed or passed checks."""
    style = ("bold red" if report.failed or report.errors else
             "bold green" if report.results else "bold yellow")
    return Text(report.summary, style=style)


def _results_table(report: Any, ids: dict[str, str]) -> Table:
    table = Table(title="Thresholds", title_justify="left")
    for column in ("model", "recurrence", "threshold", "value", "limit", "result"):
        table.add_column(column, justify="right" if column in ("value", "limit") else "left",
                         overflow="fold")
    for result in report.results:
        mark = Text("pass", style="green") if result.passed else Text("FAIL", style="bold red")
        table.add_row(cell(ids.get(result.model, result.model)), cell(result.recurrence),
                      str(result.threshold), fmt(result.value), fmt(result.limit), mark)
    return table


def _figures_table(report: Any) -> Table:
    table = Table(title=figures_title(report), title_justify="left")
    for column in ("model", "recurrence", "ρ", "γσ_max", "log10 ‖·‖ last", "verdict"):
        table.add_column(column, justify="left" if column in ("model", "recurrence", "verdict")
                         else "right", overflow="fold")
    for row in figure_rows(report):
        table.add_row(*(cell(value) for value in row))
    return table
