"""JSON renderer: the report's ``to_dict``, strict (``allow_nan=False``), stable key order."""

from __future__ import annotations

import json
from typing import Any

from ..report import finite_json


def render_json(report: Any) -> str:
    return json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n"


def render_error_json(message: str, hint: str) -> str:
    return json.dumps(finite_json({"error": {"message": message, "hint": hint}}),
                      allow_nan=False) + "\n"
