"""The ``table`` format: Rich tables that read well at 80 columns, verdicts in colour.

:class:`ConsoleRenderer` picks the view of each report's command from :data:`VIEWS`; a view
returns a Rich renderable, printed straight to a terminal (with colour) or rendered to text.
"""

from __future__ import annotations

import importlib
import io
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from rnngrad.render.numbers import fmt, fmt_complex, fmt_shape, top_units
from rnngrad.render.rich_parts import model_line, notes_text, verdict_text
from rnngrad.render.text import cell, plain

# command -> (module, function) building the Rich renderable of that report
VIEWS = {
    "inspect": ("rnngrad.render.console", "inspect_view"),
    "spectrum": ("rnngrad.render.console", "spectrum_view"),
    "bptt": ("rnngrad.render.bptt_console", "bptt_view"),
    "surface": ("rnngrad.render.surface_console", "surface_view"),
    "lyapunov": ("rnngrad.render.lyapunov_console", "lyapunov_view"),
    "check": ("rnngrad.render.check_console", "check_view"),
    "monitor": ("rnngrad.render.train_views", "monitor_view"),
}
FILE_WIDTH = 100
# A terminal table of 600,000 tensors takes Rich minutes and nobody reads it: the inspect
# table lists every tensor a recurrence uses and at most this many others (all of them are in
# --format json and markdown), and the line of unused names is cut as short.
MAX_UNUSED_ROWS = 40
MAX_UNUSED_NAMES = 20


class ConsoleRenderer:
    """Rich tables; ``render`` gives plain text ``width`` columns wide (no colour)."""

    extension = ".txt"

    def __init__(self, width: int = FILE_WIDTH, color: bool = False) -> None:
        self.width = width
        self.color = color

    def renderable(self, report: Any) -> Any:
        """The Rich renderable of the report's command (:data:`VIEWS`); a TypeError for a report
        without a table view."""
        command = getattr(report, "command", None)
        if command not in VIEWS:
            raise TypeError(f"no table view for {type(report).__name__}")
        module, function = VIEWS[command]
        return getattr(importlib.import_module(module), function)(report)

    def render(self, report: Any) -> str:
        """The report as text ``width`` columns wide, with ANSI colour only when ``color``."""
        buffer = io.StringIO()
        console = Console(file=buffer, width=self.width, no_color=not self.color,
                          force_terminal=self.color, highlight=False, emoji=False)
        console.print(self.renderable(report))
        return buffer.getvalue()

    def print(self, report: Any, console: Console) -> None:
        """Print the report's view to ``console`` (colour as the console allows)."""
        console.print(self.renderable(report), highlight=False, emoji=False)


def inspect_view(report: Any) -> Group:
    """An inspect report as Rich parts: recurrences, tensors (unused ones marked), missing
    companions, metadata and notes."""
    recs = Table(title="Recurrences", title_justify="left", expand=False)
    for column in ("recurrence", "cell", "H", "in", "nonlinearity", "params"):
        recs.add_column(column, justify="right" if column in ("H", "in", "params") else "left")
    sizes = {row.name: row for row in report.tensors}
    for info in report.recurrences:
        rec = info
        params = sum(_numel(sizes[name].shape) for name in info.tensor_names if name in sizes)
        nonlin = f"{rec.nonlinearity} ({rec.nonlinearity_source})"
        proj = f" P={rec.proj_size}" if rec.proj_size else ""
        recs.add_row(cell(rec.label), cell(rec.cell + proj), str(rec.hidden_size),
                     str(rec.input_size or "—"), cell(nonlin), f"{params:,}")
    tensors = Table(title="Tensors", title_justify="left")
    tensors.add_column("name", overflow="fold")
    tensors.add_column("shape", justify="right")
    tensors.add_column("dtype")
    tensors.add_column("used by", overflow="fold")
    unused = report.unused
    shown_unused = {id(row) for row in unused[:MAX_UNUSED_ROWS]}
    for row in report.tensors:
        if row.used_by is None and id(row) not in shown_unused:
            continue
        tensors.add_row(cell(row.name), fmt_shape(row.shape), cell(row.dtype),
                        cell(row.used_by) if row.used_by else Text("unused", style="yellow"))
    if len(unused) > MAX_UNUSED_ROWS:
        tensors.caption = Text(f"… and {len(unused) - MAX_UNUSED_ROWS:,} more unused tensors "
                               "(--format json or markdown lists them all)", style="dim")
        tensors.caption_justify = "left"
    parts: list[Any] = [model_line(report, "inspect"), recs, tensors]
    missing = [f"{plain(info.label)}: missing {plain(', '.join(info.missing))}"
               for info in report.recurrences if info.missing]
    if missing:
        parts.append(Text("\n".join(missing), style="yellow"))
    if unused:
        names = ", ".join(plain(row.name) for row in unused[:MAX_UNUSED_NAMES])
        more = f", … ({len(unused) - MAX_UNUSED_NAMES:,} more)" if len(
            unused) > MAX_UNUSED_NAMES else ""
        parts.append(Text(f"{len(unused):,} tensor(s) not used by any recurrence: {names}{more}",
                          style="dim"))
    if report.metadata:
        parts.append(Text("metadata: " + ", ".join(f"{plain(k)}={plain(v)}"
                                                   for k, v in report.metadata.items()),
                          style="dim"))
    parts.append(notes_text(report.notes))
    return Group(*parts)


def _numel(shape: tuple[int, ...]) -> int:
    count = 1
    for dim in shape:
        count *= dim
    return count


def spectrum_view(report: Any) -> Group:
    """A spectrum report as Rich parts: a row per recurrent block, then each recurrence's
    verdict, reason and top eigenvalues, and notes."""
    table = Table(title="Recurrent blocks", title_justify="left")
    for column in ("recurrence", "blk", "ρ", "σ_max", "σ_min", "κ", "|λ|>1", "|λ|>1/γ"):
        table.add_column(column, justify="left" if column in ("recurrence", "blk") else "right")
    for item in report.recurrences:
        for index, block in enumerate(item.blocks):
            spec = block.spectrum
            table.add_row(cell(item.recurrence.label) if index == 0 else "", block.name,
                          fmt(spec.spectral_radius), fmt(spec.sigma_max), fmt(spec.sigma_min),
                          fmt(spec.condition_number), str(spec.outside_unit_circle),
                          str(spec.outside_inverse_gamma), end_section=index == len(item.blocks) - 1)
    parts: list[Any] = [model_line(report, "spectrum"), table]
    for item in report.recurrences:
        parts.append(_spectrum_details(item, report.top))
    parts.append(notes_text(report.notes))
    return Group(*parts)


def _spectrum_details(item: Any, top: int) -> Text:
    rec = item.recurrence
    text = Text.assemble((plain(rec.label), "bold"), f" ({plain(rec.cell)}, "
                         f"{plain(rec.nonlinearity)} from {plain(rec.nonlinearity_source)}, "
                         f"γ = {fmt(item.gamma)}): ", verdict_text(item.verdict))
    text.append(f"\n  {plain(item.reason)}", style="italic")
    for block in item.blocks:
        spec = block.spectrum
        eigen = ", ".join(fmt_complex(z) for z in spec.eigenvalues[:top])
        text.append(f"\n  {block.name}: top |λ|: {eigen}")
        if spec.leading_eigenvector:
            text.append(f"; leading v: {top_units(spec.leading_eigenvector)}", style="dim")
    return text
