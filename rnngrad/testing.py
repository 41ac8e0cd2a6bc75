"""Assertions for your own test suite: fail a test when a model's gradients misbehave.

    from rnngrad.testing import assert_healthy

    def test_model_keeps_long_range_gradients():
        assert_healthy(model, vanish_below=1e-6, explode_above=1e3, lags="1..50")

With no thresholds given, the ``bptt`` verdict's defaults apply
(:class:`~rnngrad.bptt.options.BpttOptions`: ``explode_above=1e4``, ``vanish_below=1e-4``).
The AssertionError's message reads like the ``check`` table. Settings are the
``[tool.rnngrad]`` keys with underscores (:func:`rnngrad.check`).
"""

from __future__ import annotations

from typing import Any

from rnngrad.bptt.options import BpttOptions
from rnngrad.gate.check import check
from rnngrad.gate.results import CheckReport
from rnngrad.gate.config import THRESHOLDS


def assert_healthy(model: Any, **settings: Any) -> CheckReport:
    """Raise AssertionError listing every failed threshold; return the report otherwise."""
    if not any(name in settings for name in THRESHOLDS):
        defaults = BpttOptions()
        settings = {"explode_above": defaults.explode_above,
                    "vanish_below": defaults.vanish_below, **settings}
    report = check(model, **settings)
    if not report.ok:
        raise AssertionError(format_failures(report))
    return report


def format_failures(report: CheckReport) -> str:
    """The failed checks as a plain-text table (the AssertionError's message)."""
    rows = [("recurrence", "threshold", "value", "limit", "meaning")]
    for result in report.failed:
        value = "—" if result.value is None else f"{result.value:.4g}"
        limit = "—" if result.limit is None else f"{result.limit:g}"
        rows.append((result.recurrence, str(result.threshold), value, limit, result.message))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [f"rnngrad: {len(report.failed)} of {len(report.results)} checks failed"]
    for row in rows:
        lines.append("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths))
                     + "  " + row[4])
    return "\n".join(lines)
