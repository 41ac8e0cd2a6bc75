"""The ``table`` view of a :class:`~rnngrad.lyapunov.report.LyapunovReport`."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from rnngrad.lyapunov.meaning import entropy_rate, factor
from rnngrad.lyapunov.report import LyapunovReport, RecurrenceExponents
from rnngrad.lyapunov.verdict import exponent_text
from rnngrad.render.bptt_console import probe_line
from rnngrad.render.numbers import fmt
from rnngrad.render.rich_parts import model_line, notes_text, verdict_text
from rnngrad.render.text import cell, plain

MAX_ROWS = 12


def lyapunov_view(report: LyapunovReport) -> Group:
    """A lyapunov report as Rich parts: model and probe lines, the summary, each recurrence's
    details and notes."""
    steps = report.probe.steps if report.probe else 0
    parts: list[Any] = [model_line(report, "lyapunov"),
                        Text(probe_line(report.probe, f"{steps} steps averaged"), style="dim"),
                        _summary(report)]
    parts += [_details(item) for item in report.recurrences]
    parts.append(notes_text(report.notes))
    return Group(*parts)


def memory_text(item: RecurrenceExponents) -> str:
    """The half-life (λ_1 < 0) or doubling time (λ_1 > 0) in steps, in a few characters."""
    if item.half_life is not None:
        return f"½ in {fmt(item.half_life, 3)}"
    if item.doubling_time is not None:
        return f"×2 in {fmt(item.doubling_time, 3)}"
    return "—"


def _summary(report: LyapunovReport) -> Table:
    table = Table(title="largest Lyapunov exponent λ_1 (nats per step, mean over probes)",
                  title_justify="left")
    for column in ("recurrence", "s", "λ_1", "s.e.", "e^λ_1", "memory", "verdict"):
        table.add_column(column, justify="left" if column in ("recurrence", "s", "verdict")
                         else "right")
    for item in report.recurrences:
        if not item.exponents:
            table.add_row(cell(item.recurrence.label), item.state, "—", "", "—", "—",
                          verdict_text(item.verdict))
            continue
        table.add_row(cell(item.recurrence.label), item.state, exponent_text(item.exponents[0]),
                      fmt(item.exponents_stderr[0], 2), fmt(item.factor), memory_text(item),
                      verdict_text(item.verdict))
    return table


def _details(item: RecurrenceExponents) -> Group:
    rec = item.recurrence
    head = Text.assemble((plain(rec.label), "bold"),
                         f" ({plain(rec.cell)}, state {item.state}, size {item.state_size}): ",
                         verdict_text(item.verdict), (f"\n  {plain(item.reason)}", "italic"))
    if not item.exponents:
        return Group(head)
    table = Table(show_edge=False, pad_edge=False, box=None)
    for column in ("i", "λ_i", "s.e.", "probe s.d.", "e^λ_i", "−1/λ_i (steps)"):
        table.add_column(column, justify="right")
    rows = list(enumerate(item.exponents, start=1))
    for index, value in rows[:MAX_ROWS]:
        table.add_row(str(index), exponent_text(value), fmt(item.exponents_stderr[index - 1], 2),
                      fmt(item.exponents_probe_sd[index - 1], 2),
                      fmt(0.0 if value is None else factor(value)),
                      fmt(item.time_scales[index - 1], 3))
    return Group(head, table, Text("".join(_facts(item, len(rows)))))


def _facts(item: RecurrenceExponents, count: int) -> list[str]:
    lines = []
    if count > MAX_ROWS:
        lines.append(f"  ({MAX_ROWS} of {count} exponents shown; --format json has all)\n")
    if item.positive_count:
        dimension = fmt(item.kaplan_yorke, 3) if item.kaplan_yorke is not None else f"≥ {count}"
        at_least = "≥ " if entropy_rate(item.values(), item.edge)[1] else ""
        lines.append(f"  {item.positive_count} exponent(s) above ε; Kaplan–Yorke dimension "
                     f"{dimension}; entropy rate {at_least}{fmt(item.entropy_rate)} nats per "
                     "step\n")
    if item.converged is False:
        lines.append(f"  not converged: the s.e. of λ_1 ({fmt(item.exponents_stderr[0], 2)}) is "
                     f"above ε/2 = {item.edge / 2:g}; run more --steps or --batch\n")
    if item.bptt is not None:
        lines.append(f"  bptt: {plain(item.bptt.text)}\n")
    return lines
