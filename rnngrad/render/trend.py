"""How the key figures move from one checkpoint to the next (shared by table and Markdown)."""

from __future__ import annotations

import math

from rnngrad.render.numbers import fmt


def trend_rows(report) -> list[list[str]]:
    """Rows of (model, recurrence, ρ, bound, log10 norm at the last lag, verdict) with changes."""
    rows, previous = [], {}
    for figures in report.models:
        for rec in figures.recurrences:
            before = previous.get(rec.weight_hh)
            rows.append([figures.model.path, rec.label,
                         _with_change(rec.spectral_radius, before and before.spectral_radius),
                         _with_change(rec.bound, before and before.bound),
                         _log_with_change(math.inf if rec.overflowed else rec.log10_norm_last,
                                          before.log10_norm_last if before else None),
                         str(rec.verdict) if rec.verdict is not None else "not measured"])
            previous[rec.weight_hh] = rec
    return rows


def _with_change(value: float, before: float | None) -> str:
    if before is None or before == 0:
        return fmt(value)
    return f"{fmt(value)} ({value / before - 1:+.1%})"


def _log_with_change(value: float | None, before: float | None) -> str:
    if value is None:
        return "—"
    if not math.isfinite(value):
        return "overflow" if value > 0 else "−∞"
    if before is None or not math.isfinite(before):
        return f"{value:.2f}"
    return f"{value:.2f} ({value - before:+.2f})"
