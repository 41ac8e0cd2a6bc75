"""Text from files is data: never Rich markup, never terminal control.

Tensor names, metadata, layer names and file names come from files nobody here wrote. Every
renderer passes them through :func:`plain` (control characters removed: ESC sequences, C1
codes, NUL, bidi overrides) and hands them to Rich as :class:`rich.text.Text` objects
(:func:`cell`), which Rich never parses for markup, so ``[/oops]`` stays text and
``[link=...]`` never becomes a hyperlink.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

# C0 controls but tab, newline and carriage return, DEL, C1 controls, the bidirectional
# overrides and isolates that can reorder what a terminal shows, lone surrogates (a file name
# that is not UTF-8, as Python decodes it: no terminal or file encoding can write them) and the
# noncharacters U+FFFE/U+FFFF (not allowed in XML).
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e"
                      "\u2066-\u2069\ud800-\udfff\ufffe\uffff]")


def plain(value: Any, *, newlines: bool = False) -> str:
    """``value`` as text without control characters; line breaks and tabs become spaces
    unless ``newlines`` (for formats that escape them themselves)."""
    text = value if type(value) is str else str(value)
    if text.isascii() and text.isprintable():  # the common case, at C speed: nothing to do
        return text
    text = _CONTROL.sub("\N{REPLACEMENT CHARACTER}", text)
    if not newlines:
        text = text.replace("\r\n", " ").replace("\r", " ").replace("\n", " ").replace("\t", " ")
    return unicodedata.normalize("NFC", text)


def cell(value: Any, style: str = "") -> Any:
    """A Rich Text of ``value`` made plain: safe in tables and lines whatever it holds."""
    from rich.text import Text

    return Text(plain(value), style=style)
