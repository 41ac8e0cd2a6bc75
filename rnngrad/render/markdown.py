"""Markdown renderer: GitHub-flavoured tables of the same numbers as the console tables."""

from __future__ import annotations

from typing import Any

from ..report import InspectReport, SpectrumReport
from .numbers import fmt, fmt_complex, fmt_shape


def render_markdown(report: Any) -> str:
    if isinstance(report, InspectReport):
        return _inspect(report)
    if isinstance(report, SpectrumReport):
        return _spectrum(report)
    if getattr(report, "command", None) == "check":
        return _check(report)
    if getattr(report, "command", None) == "bptt":
        return _bptt(report)
    raise TypeError(f"no Markdown renderer for {type(report).__name__}")


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _title(report: Any, what: str) -> str:
    return f"## rnngrad {what}: `{report.model.path}` ({report.model.format})\n\n"


def _inspect(report: InspectReport) -> str:
    out = _title(report, "inspect")
    out += table(["recurrence", "cell", "hidden", "input", "nonlinearity", "W_hh"],
                 [[rec.label, rec.cell, str(rec.hidden_size), str(rec.input_size or "—"),
                   f"{rec.nonlinearity} ({rec.nonlinearity_source})", f"`{rec.weight_hh}`"]
                  for rec in report.recurrences])
    out += "\n" + table(["tensor", "shape", "dtype", "used by"],
                        [[f"`{row.name}`", fmt_shape(row.shape), row.dtype,
                          row.used_by or "**unused**"] for row in report.tensors])
    return out + "".join(f"\n- {note}" for note in report.notes) + "\n"


def _spectrum(report: SpectrumReport) -> str:
    out = _title(report, "spectrum")
    rows = []
    for item in report.recurrences:
        for name, spec in item.blocks:
            rows.append([item.recurrence.label, name, fmt(spec.spectral_radius),
                         fmt(spec.sigma_max), fmt(spec.sigma_min), fmt(spec.condition_number),
                         str(spec.outside_unit_circle),
                         ", ".join(fmt_complex(z) for z in spec.eigenvalues)])
    out += table(["recurrence", "block", "ρ", "σ_max", "σ_min", "κ", "|λ|>1",
                  f"top {report.top} eigenvalues"], rows)
    out += "\n" + table(["recurrence", "γ·σ_max", "rest ρ(J)", "verdict", "why"],
                        [[item.recurrence.label, fmt(item.bound), fmt(item.rest.spectral_radius),
                          f"**{item.verdict}**", item.reason] for item in report.recurrences])
    return out


def _bptt(report) -> str:
    out = _title(report, "bptt")
    rows = []
    for item in report.recurrences:
        for row in item.rows:
            rows.append([item.recurrence.label, str(row.lag), fmt(row.norm) if row.norm is not None
                         else f"10^{row.log10_norm:.1f}", f"{row.log10_norm:.3f}",
                         fmt(row.rate), row.flag or ""])
    out += table(["recurrence", "lag", "norm", "log10", "per step", "flag"], rows)
    out += "\n" + table(["recurrence", "state", "verdict", "why"],
                        [[item.recurrence.label, item.state, f"**{item.verdict}**", item.reason]
                         for item in report.recurrences])
    if report.clip is not None:
        out += f"\nClip: `{report.clip.line}` ({report.clip.rule_text}).\n"
    return out


def _check(report) -> str:
    from .trend import trend_rows

    failed = len(report.failed)
    head = (f"## rnngrad check: {failed} of {len(report.results)} checks failed\n\n" if failed
            else f"## rnngrad check: all {len(report.results)} checks passed\n\n")
    rows = [[f"`{r.model}`", r.recurrence, r.threshold, fmt(r.value), fmt(r.limit),
             "✅ pass" if r.passed else "❌ **FAIL**", r.message] for r in report.results]
    out = head + table(["model", "recurrence", "threshold", "value", "limit", "", "meaning"], rows)
    if len(report.models) > 1:
        out += "\n" + table(["model", "recurrence", "ρ", "γσ_max", "log10 norm last", "verdict"],
                            [[f"`{r[0]}`", *r[1:]] for r in trend_rows(report)])
    return out
