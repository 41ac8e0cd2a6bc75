"""Rich renderer: tables that read well at 80 columns, verdicts in colour, details below."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from ..report import BpttReport, InspectReport, SpectrumReport
from ..verdict import EXPLOSION_POSSIBLE, REST_UNSTABLE, UNDETERMINED, VANISHING
from .numbers import fmt, fmt_complex, fmt_shape, top_units

VERDICT_STYLE = {VANISHING: "bold blue", EXPLOSION_POSSIBLE: "bold yellow",
                 REST_UNSTABLE: "bold red", UNDETERMINED: "bold cyan",
                 "vanishing": "bold blue", "exploding": "bold red", "healthy": "bold green"}


def render_console(report: Any, console: Console) -> None:
    if isinstance(report, InspectReport):
        console.print(_inspect(report))
    elif isinstance(report, SpectrumReport):
        console.print(_spectrum(report))
    elif isinstance(report, BpttReport):
        from .bptt_console import render_bptt

        console.print(render_bptt(report, verdict_text, model_line, notes_text))
    elif getattr(report, "command", None) == "check":
        from .check_console import render_check

        console.print(render_check(report, model_line))
    else:
        raise TypeError(f"no table renderer for {type(report).__name__}")


def verdict_text(verdict: str) -> Text:
    return Text(verdict, style=VERDICT_STYLE.get(verdict, "bold"))


def model_line(report: Any, what: str) -> Text:
    return Text.assemble((f"rnngrad {what} ", "bold"), (report.model.path, "cyan"),
                         (f"  ({report.model.format}, sha256 {report.model.sha256[:12]}…)",
                          "dim"))


def notes_text(notes: tuple[str, ...]) -> Text:
    return Text("\n".join(f"note: {note}" for note in notes), style="dim")


def _inspect(report: InspectReport) -> Group:
    recs = Table(title="Recurrences", title_justify="left", expand=False)
    for column in ("recurrence", "cell", "H", "in", "nonlinearity", "params"):
        recs.add_column(column, justify="right" if column in ("H", "in", "params") else "left")
    sizes = {row.name: row for row in report.tensors}
    for rec in report.recurrences:
        params = sum(_numel(sizes[name].shape) for name in rec.tensor_names)
        nonlin = f"{rec.nonlinearity} ({rec.nonlinearity_source})"
        proj = f" P={rec.proj_size}" if rec.proj_size else ""
        recs.add_row(rec.label, rec.cell + proj, str(rec.hidden_size),
                     str(rec.input_size or "—"), nonlin, f"{params:,}")
    tensors = Table(title="Tensors", title_justify="left")
    tensors.add_column("name", overflow="fold")
    tensors.add_column("shape", justify="right")
    tensors.add_column("dtype")
    tensors.add_column("used by", overflow="fold")
    for row in report.tensors:
        tensors.add_row(row.name, fmt_shape(row.shape), row.dtype,
                        row.used_by or Text("unused", style="yellow"))
    parts: list[Any] = [model_line(report, "inspect"), recs, tensors]
    missing = [f"{rec.label}: missing {', '.join(rec.missing)}" for rec in report.recurrences
               if rec.missing]
    if missing:
        parts.append(Text("\n".join(missing), style="yellow"))
    if report.unused:
        parts.append(Text(f"{len(report.unused)} tensor(s) not used by any recurrence: "
                          + ", ".join(row.name for row in report.unused), style="dim"))
    if report.metadata:
        parts.append(Text("metadata: " + ", ".join(f"{k}={v}" for k, v in report.metadata),
                          style="dim"))
    parts.append(notes_text(report.notes))
    return Group(*parts)


def _numel(shape: tuple[int, ...]) -> int:
    count = 1
    for dim in shape:
        count *= dim
    return count


def _spectrum(report: SpectrumReport) -> Group:
    table = Table(title="Recurrent blocks", title_justify="left")
    for column in ("recurrence", "blk", "ρ", "σ_max", "σ_min", "κ", "|λ|>1", "|λ|>1/γ"):
        table.add_column(column, justify="left" if column in ("recurrence", "blk") else "right")
    for item in report.recurrences:
        for index, (name, spec) in enumerate(item.blocks):
            table.add_row(item.recurrence.label if index == 0 else "", name,
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
    text = Text.assemble((f"{rec.label}", "bold"), f" ({rec.cell}, {rec.nonlinearity} from "
                         f"{rec.nonlinearity_source}, γ = {fmt(item.gamma)}): ",
                         verdict_text(item.verdict))
    text.append(f"\n  {item.reason}", style="italic")
    for name, spec in item.blocks:
        eigen = ", ".join(fmt_complex(z) for z in spec.eigenvalues[:top])
        text.append(f"\n  {name}: top |λ|: {eigen}")
        if spec.leading_eigenvector:
            text.append(f"; leading v: {top_units(spec.leading_eigenvector)}", style="dim")
    return text
