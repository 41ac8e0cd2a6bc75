"""Assertions for your own test suite: fail a test when a model's gradients misbehave.

    from rnngrad.testing import assert_healthy

    def test_model_keeps_long_range_gradients():
        assert_healthy(model, vanish_below=1e-6, explode_above=1e3, lags="1..50")

With no thresholds given, the ``bptt`` defaults apply: ``explode_above=1e4`` and
``vanish_below=1e-4``. The AssertionError's message reads like the ``check`` table.
"""

from __future__ import annotations

from typing import Any

from .check import CheckReport, check

DEFAULT_THRESHOLDS = {"explode_above": 1e4, "vanish_below": 1e-4}
THRESHOLD_NAMES = ("explode_above", "vanish_below", "max_spectral_radius", "max_bound")


def assert_healthy(model: Any, **settings: Any) -> CheckReport:
    """Raise AssertionError listing every failed threshold; return the report otherwise."""
    if not any(name in settings for name in THRESHOLD_NAMES):
        settings = {**DEFAULT_THRESHOLDS, **settings}
    report = check(model, **settings)
    if not report.ok:
        raise AssertionError(format_failures(report))
    return report


def format_failures(report: CheckReport) -> str:
    rows = [("recurrence", "threshold", "value", "limit", "meaning")]
    for result in report.failed:
        value = "—" if result.value is None else f"{result.value:.4g}"
        rows.append((result.recurrence, result.threshold, value, f"{result.limit:g}",
                     result.message))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [f"rnngrad: {len(report.failed)} of {len(report.results)} checks failed"]
    for row in rows:
        lines.append("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths))
                     + "  " + row[4])
    return "\n".join(lines)
