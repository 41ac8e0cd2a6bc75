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
    """The ``markdown`` format: GitHub-flavoured tables (module doc)."""

    extension = ".md"

    def render(self, report: Any) -> str:
        """The report as Markdown, by its command; a TypeError for a report without a view."""
        views = {"inspect": _inspect, "spectrum": _spectrum, "bptt": _bptt, "check": _check,
                 "monitor": _monitor, "surface": _surface, "lyapunov": _lyapunov}
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
    out += "".join(f"> **Caveat:** {md(caveat)}\n\n" for caveat in report.caveats)
    out += table(["recurrence", "lag", "norm", "log10", "per step", "flag"], rows)
    out += "\n" + table(["recurrence", "state", "Ω", "Ω per step", "verdict", "why"],
                        [[md(item.recurrence.label), item.state, fmt(item.omega),
                          fmt(item.omega_per_step), f"**{item.verdict}**", md(item.reason)]
                         for item in report.recurrences])
    out += ("\nΩ: Pascanu's regulariser `Σ_k (‖δ_(k+1) ∂s_(k+1)/∂s_k‖/‖δ_(k+1)‖ − 1)²` on the "
            "probe loss, over the analysed lags (Pascanu et al. 2013, eq. 9).\n")
    clip = report.clip
    if clip is not None and clip.max_norm is not None:
        out += f"\nClip ({clip.regime}): {code(clip.line)} ({md(clip.rule_text)}).\n"
    if clip is not None and clip.advice:
        out += f"\n{'**No clip threshold:** ' if clip.max_norm is None else ''}{md(clip.advice)}.\n"
    return out + _notes(report.notes)


def _surface(report: Any) -> str:
    from rnngrad.render.surface_text import curvature_lines, grid_lines, module_line, wall_line

    out = _title(report, "surface") + (f"{md(module_line(report))}.\n\n"
                                       f"E = {fmt(report.loss)}, ‖∂E/∂θ‖ = "
                                       f"{fmt(report.gradient_norm)}.\n\n")
    out += table(["tensor", "shape", "‖∂E/∂·‖"],
                 [[code(p.name), fmt_shape(p.shape),
                   fmt(p.gradient_norm) if p.in_theta else "fixed"] for p in report.parameters])
    out += "\n**Curvature.** " + " ".join(md(line) + "." for line in curvature_lines(report))
    out += "\n\n" + table(["T (horizon)", "‖g‖", "λ_1", "ĝᵀHĝ", "\\|cos(g, u_1)\\|"],
                          [[str(r.steps), fmt(r.gradient_norm), fmt(r.top_eigenvalue),
                            fmt(r.along_gradient), fmt(r.cos_gradient_top)]
                           for r in report.by_length])
    out += f"\n**Growth** ({report.growth.regime}). {md(report.growth.sentence)}\n\n"
    out += f"**Slice.** {md(wall_line(report))}.\n\n"
    out += f"**SGD step.** {md(report.step.sentence)}\n\n"
    out += f"**SGD paths.** {md(report.paths.sentence)}\n"
    if report.grid is not None:
        out += "\n**Grid.** " + " ".join(md(line) + "." for line in grid_lines(report)) + "\n"
    out += f"\nClip: {code(report.clip.line)} ({md(report.clip.rule_text)}).\n"
    return out + _notes(report.notes)


def _lyapunov(report: Any) -> str:
    from rnngrad.lyapunov.verdict import exponent_text
    from rnngrad.render.lyapunov_console import memory_text

    out = _title(report, "lyapunov")
    out += table(["recurrence", "state", "λ_1 ± s.e.", "e^λ_1", "memory", "λ > ε", "D_KY",
                  "verdict", "why"],
                 [[md(item.recurrence.label), item.state,
                   exponent_text(item.exponents[0], item.exponents_stderr[0])
                   if item.exponents else "—", fmt(item.factor), md(memory_text(item)),
                   "" if item.positive_count is None else str(item.positive_count),
                   fmt(item.kaplan_yorke, 3), f"**{item.verdict}**", md(item.reason)]
                  for item in report.recurrences])
    for item in report.recurrences:
        if not item.exponents:
            continue
        out += f"\n### {md(item.recurrence.label)}: exponents (nats per step)\n\n"
        out += table(["i", "λ_i", "s.e.", "probe s.d.", "−1/λ_i (steps)"],
                     [[str(index), exponent_text(value), fmt(item.exponents_stderr[index - 1], 2),
                       fmt(item.exponents_probe_sd[index - 1], 2),
                       fmt(item.time_scales[index - 1], 3)]
                      for index, value in enumerate(item.exponents, start=1)])
        if item.bptt is not None:
            out += f"\nbptt: {md(item.bptt.text)}\n"
    return out + _notes(report.notes)


def _check(report: Any) -> str:
    from rnngrad.render.trend import (FIGURES_FOOTNOTE, figure_rows, figures_title, legend,
                                      model_ids)

    ids = model_ids(report)
    out = f"## rnngrad check: {md(report.summary)}\n\n"
    if report.errors:
        out += table(["model", "error", "what to do"],
                     [[code(e.model), md(e.message), md(e.hint)] for e in report.errors]) + "\n"
    if report.results:
        rows = [[md(ids.get(r.model, r.model)), md(r.recurrence), str(r.threshold), fmt(r.value),
                 fmt(r.limit), "✅ pass" if r.passed else "❌ **FAIL**", md(r.message)]
                for r in report.results]
        out += table(["model", "recurrence", "threshold", "value", "limit", "result", "meaning"],
                     rows)
    if report.models and (len(report.models) > 1 or not report.results):
        out += f"\n**{md(figures_title(report))}**\n\n"
        out += table(["model", "recurrence", "ρ", "γσ_max", "log10 norm last", "verdict"],
                     [[md(value) for value in row] for row in figure_rows(report)])
        out += f"\n{md(FIGURES_FOOTNOTE)}\n"
    out += "".join(f"\n- {code(line.split(' = ', 1)[0])} = {code(line.split(' = ', 1)[1])}"
                   for line in legend(ids))
    return out + "\n"


def _monitor(summary: Any) -> str:
    from rnngrad.render.train_views import HEADER, norms_line, point_rows

    out = f"## rnngrad monitor: {summary.steps} steps\n\n{md(norms_line(summary))}\n\n"
    return out + table(HEADER, [[md(value) for value in row] for row in point_rows(summary)])
