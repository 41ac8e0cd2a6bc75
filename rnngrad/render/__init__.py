"""Renderers: one report object in, text out. Each knows one format and nothing else.

What lives here: one small renderer class per output format, chosen from :data:`RENDERERS`
(the model is pyinstrument's ``renderers/``): :class:`~.console.ConsoleRenderer` (``table``,
Rich), :class:`~.json_report.JsonRenderer`, :class:`~.markdown.MarkdownRenderer`, and for
``check`` the CI formats :class:`~.ci_formats.GithubRenderer` and
:class:`~.ci_formats.JunitRenderer`. Each has ``render(report) -> str`` and reads only the
typed report, never the model file. Text that came from a file goes through
:mod:`.text` first: it is data, never markup or terminal control.

What it may import: the report types of the analyses and :mod:`rnngrad.gate.check`, and rich
(only in :mod:`.console`). Never torch.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

# format -> (module, class)
RENDERERS: dict[str, tuple[str, str]] = {
    "table": ("rnngrad.render.console", "ConsoleRenderer"),
    "json": ("rnngrad.render.json_report", "JsonRenderer"),
    "markdown": ("rnngrad.render.markdown", "MarkdownRenderer"),
    "github": ("rnngrad.render.ci_formats", "GithubRenderer"),
    "junit": ("rnngrad.render.ci_formats", "JunitRenderer"),
}


class Renderer(Protocol):
    """Turns a report into text; ``extension`` is the file extension of that text."""

    extension: str

    def render(self, report: Any) -> str:
        """The report as text in this renderer's format."""


def renderer(fmt: str, **options: Any) -> Renderer:
    """The renderer of format ``fmt`` (``options`` go to its constructor, e.g. ``width``)."""
    if fmt not in RENDERERS:
        raise ValueError(f"no renderer for {fmt!r}; formats: {', '.join(RENDERERS)}")
    module, name = RENDERERS[fmt]
    return getattr(importlib.import_module(module), name)(**options)


def render_text(report: Any, fmt: str) -> str:
    """``report`` in format ``fmt`` as text (a ``table`` without colour, 100 columns)."""
    return renderer(fmt).render(report)
