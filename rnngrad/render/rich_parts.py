"""Pieces every Rich table view shares: the model line, verdicts in colour, notes."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from rnngrad.render.text import plain

VERDICT_STYLE = {"vanishing-guaranteed": "bold blue", "explosion-possible": "bold yellow",
                 "rest-unstable": "bold red", "undetermined": "bold cyan",
                 "vanishing": "bold blue", "exploding": "bold red", "healthy": "bold green",
                 "chaotic": "bold red", "edge-of-chaos": "bold green", "stable": "bold blue",
                 "unbounded": "bold red"}


def verdict_text(verdict: str) -> Text:
    """A verdict in its colour (red exploding, blue vanishing, green healthy, ...)."""
    return Text(str(verdict), style=VERDICT_STYLE.get(str(verdict), "bold"))


def model_line(report: Any, what: str) -> Text:
    """The first line of a view: the command, the model's path, format and sha256."""
    return Text.assemble((f"rnngrad {what} ", "bold"), (plain(report.model.path), "cyan"),
                         (f"  ({plain(report.model.format)}, sha256 "
                          f"{report.model.sha256[:12]}…)", "dim"))


def notes_text(notes: tuple[str, ...]) -> Text:
    """The report's notes, one ``note:`` line each, dimmed."""
    return Text("\n".join(f"note: {plain(note)}" for note in notes), style="dim")
