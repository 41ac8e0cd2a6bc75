"""``rnngrad merge REPORT.json...``: the check reports of several shards as one report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rnngrad.cli.check import (CheckFailOn, CheckFailOnOpt, CheckFormat, CheckFormatOpt,
                               _github_summary)
from rnngrad.cli.common import OutputOpt, QuietOpt, emit, handled, value

NAME = "merge"


def command(reports: Annotated[list[Path], typer.Argument(
                help="JSON reports of `rnngrad check --shard K/N --format json`, in order.",
                show_default=False, metavar="REPORT.json...")],
            format: CheckFormatOpt = CheckFormat.table,
            output: OutputOpt = None,
            fail_on: CheckFailOnOpt = CheckFailOn.any,
            quiet: QuietOpt = False) -> None:
    """Join the check reports of several shards (CI jobs) into the report of one run."""
    from rnngrad.gate.merge import merge_reports, read_report

    with handled(format):
        report = merge_reports([read_report(path) for path in reports],
                               [str(path) for path in reports])
        emit(report, format, output, quiet=quiet)
        _github_summary(report, value(format))
        if value(fail_on) == "any" and not report.ok:
            raise typer.Exit(1)
