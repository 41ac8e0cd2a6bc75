"""Renderers: one report object in, text out. Each knows one format and nothing else.

``render(report, fmt)`` returns the text for ``json`` and ``markdown``; the ``table`` format is
drawn by :mod:`rnngrad.render.console` onto a Rich console (imported only when used).
"""

from __future__ import annotations

from typing import Any

FORMATS = ("table", "json", "markdown")
CHECK_FORMATS = FORMATS + ("github", "junit")


def render_text(report: Any, fmt: str) -> str:
    if fmt == "github":
        from .ci_formats import render_github

        return render_github(report)
    if fmt == "junit":
        from .ci_formats import render_junit

        return render_junit(report)
    if fmt == "json":
        from .json_report import render_json

        return render_json(report)
    if fmt == "markdown":
        from .markdown import render_markdown

        return render_markdown(report)
    raise ValueError(f"no text renderer for {fmt!r}")
