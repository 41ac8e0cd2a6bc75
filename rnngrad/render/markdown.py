"""The ``markdown`` format: GitHub-flavoured tables of the same numbers as the console tables.

Text from files is escaped (:func:`md`, :func:`code`): it renders as the text it is, never as
Markdown, HTML or a broken table.
"""

from __future__ import annotations

import re
from typing import Any

from rnngrad.render.numbers import fmt, fmt_complex, fmt_shape
from rnngrad.render.text import plain

# What is special inside a table cell: emphasis, code, links, HTML, pipes, strikethrough and
# math ($). A line start never occurs in a cell, so # - + . need no escape.
_SPECIAL = re.compile(r"([\\`*_\[\]<>|~$])")


class MarkdownRenderer:
    extension = ".md"

    def render(self, report: Any) -> str:
        views = {"inspect": _inspect, "spectrum": _spectrum, "bptt": _bptt, "check": _check}
        command = getattr(report, "command", None)
        if command not in views:
            raise TypeError(f"no Markdown view for {type(report).__name__}")
        return views[command](report)


def md(value: Any) -> str:
    """Text shown as itself in Markdown: plain, with every Markdown/HTML character escaped."""
    return _SPECIAL.sub(r"\\\1", plain(value).replace("&", "&amp;"))


def code(value: Any) -> str:
    """Text as an inline code span, with a fence longer than any backtick run inside."""
    text = plain(value).replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0) if "`" in text else 0
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def table(header: list[str], rows: list[list[str]]) -> str:
    """A table; cells are Markdown already (escape file text with :func:`md`/:func:`code`)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    """A cell's Markdown with unescaped pipes escaped (a pipe ends a cell even in code)."""
    if "|" not in text and "\n" not in text:  # most cells: nothing to do (600,000 rows)
        return text
    return re.sub(r"(?<!\\)\|", r"\\|", text.replace("\n", " "))


def _title(report: Any, what: str) -> str:
    return f"## rnngrad {what}: {code(report.model.path)} ({md(report.model.format)})\n\n"


def _inspect(report: Any) -> str:
    out = _title(report, "inspect")
    out += table(["recurrence", "cell", "hidden", "input", "nonlinearity", "W_hh"],
                 [[md(info.label), md(info.cell), str(info.hidden_size),
                   str(info.input_size or "—"),
                   md(f"{info.nonlinearity} ({info.nonlinearity_source})"),
                   code(info.weight_hh)] for info in report.recurrences])
    out += "\n" + table(["tensor", "shape", "dtype", "used by"],
                        [[code(row.name), fmt_shape(row.shape), md(row.dtype),
                          md(row.used_by) if row.used_by else "**unused**"]
                         for row in report.tensors])
    return out + _notes(report.notes)


def _notes(notes: tuple[str, ...]) -> str:
    return "".join(f"\n- {md(note)}" for note in notes) + "\n"


def _spectrum(report: Any) -> str:
    out = _title(report, "spectrum")
    rows = []
    for item in report.recurrences:
        for block in item.blocks:
            spec = block.spectrum
            rows.append([md(item.recurrence.label), md(block.name), fmt(spec.spectral_radius),
                         fmt(spec.sigma_max), fmt(spec.sigma_min), fmt(spec.condition_number),
                         str(spec.outside_unit_circle),
                         ", ".join(fmt_complex(z) for z in spec.eigenvalues)])
    out += table(["recurrence", "block", "ρ", "σ_max", "σ_min", "κ", "\\|λ\\|>1",
                  f"top {report.top} eigenvalues"], rows)
    out += "\n" + table(["recurrence", "γ·σ_max", "rest ρ(J)", "verdict", "why"],
                        [[md(item.recurrence.label), fmt(item.bound),
                          fmt(item.rest_jacobian.spectral_radius), f"**{item.verdict}**",
                          md(item.reason)] for item in report.recurrences])
    return out + _notes(report.notes)


def _log_text(value: float | None, log10: float | None) -> str:
    if value is not None:
        return fmt(value)
    return "0" if log10 is None else f"10^{log10:.1f}"


def _bptt(report: Any) -> str:
    out = _title(report, "bptt")
    rows = []
    for item in report.recurrences:
        for row in item.rows:
            rows.append([md(item.recurrence.label), str(row.lag),
                         _log_text(row.norm, row.log10_norm),
                         "−∞" if row.log10_norm is None else f"{row.log10_norm:.3f}",
                         fmt(row.rate), str(row.flag or "")])
    out += table(["recurrence", "lag", "norm", "log10", "per step", "flag"], rows)
    out += "\n" + table(["recurrence", "state", "verdict", "why"],
                        [[md(item.recurrence.label), item.state, f"**{item.verdict}**",
                          md(item.reason)] for item in report.recurrences])
    if report.clip is not None:
        out += f"\nClip: {code(report.clip.line)} ({md(report.clip.rule_text)}).\n"
    return out + _notes(report.notes)


def _check(report: Any) -> str:
    from rnngrad.render.trend import trend_rows

    head = f"## rnngrad check: {report.summary}\n\n"
    if report.errors:
        head += table(["model", "error", "what to do"],
                      [[code(e.model), md(e.message), md(e.hint)] for e in report.errors]) + "\n"
    rows = [[code(r.model), md(r.recurrence), str(r.threshold), fmt(r.value), fmt(r.limit),
             "✅ pass" if r.passed else "❌ **FAIL**", md(r.message)] for r in report.results]
    out = head + (table(["model", "recurrence", "threshold", "value", "limit", "", "meaning"],
                        rows) if rows or not report.errors else "")
    if len(report.models) > 1:
        out += "\n" + table(["model", "recurrence", "ρ", "γσ_max", "log10 norm last", "verdict"],
                            [[code(r[0]), md(r[1]), *r[2:]]
                             for r in trend_rows(report)])
    return out
