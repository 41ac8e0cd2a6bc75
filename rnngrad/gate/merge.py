"""Checking on many machines: a shard of the models per CI job, one report from their JSON.

``rnngrad check --shard K/N`` checks the K-th of N shards of the models (after expanding
folders and globs, in natural order): the K-th of N consecutive runs of nearly equal length
(their sizes differ by at most one). Each job writes ``--format json``; ``rnngrad merge`` reads
the shards' reports back (:meth:`CheckReport.from_dict`) and joins them in shard order, which
is model order, into the report one machine would have written, with the exit code and every
output format of ``check``. Shards must have been checked against
the same thresholds (anything else would be a different gate).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from rnngrad.errors import OptionError
from rnngrad.gate.results import CheckReport

MAX_REPORT_BYTES = 256 * 1024 * 1024
_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` as (K, N) with 1 ≤ K ≤ N, or an OptionError."""
    match = _SHARD.match(text)
    if match is None or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise OptionError(f"--shard {text!r} must be K/N with 1 ≤ K ≤ N",
                          "e.g. --shard 2/4 checks the second of four shards")
    return int(match.group(1)), int(match.group(2))


def shard_of(models: list[str], shard: tuple[int, int]) -> list[str]:
    """The K-th of N consecutive runs of ``models`` (1-based), sizes within one of each other."""
    index, count = shard
    return models[(index - 1) * len(models) // count:index * len(models) // count]


def read_report(path: Path) -> CheckReport:
    """A ``rnngrad check --format json`` document read back, or an OptionError saying why not."""
    from rnngrad.io.textfiles import read_text

    text = read_text(path, "merge", MAX_REPORT_BYTES)
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise OptionError(f"{path}: not JSON ({exc})",
                          "pass the files `rnngrad check --format json --output FILE` wrote"
                          ) from None
    if isinstance(data, dict) and "error" in data and "command" not in data:
        error = data["error"]
        message = error.get("message", "?") if isinstance(error, dict) else "?"
        raise OptionError(f"{path}: that check stopped with an error: {message}",
                          "fix that shard and rerun it")
    try:
        return CheckReport.from_dict(data)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise OptionError(f"{path}: not a rnngrad check report ({exc})",
                          "pass the files `rnngrad check --format json --output FILE` wrote"
                          ) from None


def merge_reports(reports: list[CheckReport], names: list[str] | None = None) -> CheckReport:
    """One report of several shards' reports: models, results and errors in order.

    ``names`` (the shards' file names) only serve error messages. The config source and
    baseline are kept when every shard agrees on them, else left out.
    """
    if not reports:
        raise OptionError("no report to merge", "pass the shards' JSON reports")
    names = names or [f"report {index + 1}" for index in range(len(reports))]
    # a shard that checked nothing (more shards than models) names no thresholds: skip it
    checked = [(name, report) for name, report in zip(names, reports)
               if report.models or report.errors] or [(names[0], reports[0])]
    first_name, first = checked[0]
    for name, report in checked:
        if report.thresholds != first.thresholds:
            raise OptionError(f"{name} was checked against other thresholds than {first_name} "
                              f"({_limits(report)} vs {_limits(first)})",
                              "run every shard with the same configuration")
    return CheckReport(models=tuple(m for r in reports for m in r.models),
                       results=tuple(x for r in reports for x in r.results),
                       thresholds=first.thresholds,
                       config_source=_agreed(r.config_source for r in reports),
                       baseline=_agreed(r.baseline for r in reports),
                       errors=tuple(e for r in reports for e in r.errors))


def _limits(report: CheckReport) -> str:
    return ", ".join(f"{item.name} {item.limit:g}" for item in report.thresholds) or "none"


def _agreed(values: Any) -> str | None:
    distinct = set(values)
    return distinct.pop() if len(distinct) == 1 else None
