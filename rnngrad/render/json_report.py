"""The ``json`` format: the report's ``to_dict``, strict (``allow_nan=False``), stable order."""

from __future__ import annotations

import json
from typing import Any

from rnngrad.report import finite_json


class JsonRenderer:
    """The ``json`` format: the report's ``to_dict`` (docs/contract.md)."""

    extension = ".json"

    def render(self, report: Any) -> str:
        """``report.to_dict()`` as indented JSON, a final newline; NaN and ∞ are refused."""
        return json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n"


def render_error_json(message: str, hint: str) -> str:
    """The error object of docs/contract.md: ``{"error": {"message": ..., "hint": ...}}``."""
    return json.dumps(finite_json({"error": {"message": message, "hint": hint}}),
                      allow_nan=False) + "\n"
