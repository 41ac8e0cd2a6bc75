"""``rnngrad merge REPORT.json...``: the check reports of several shards as one report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rnngrad.cli.check import (CheckFailOn, CheckFailOnOpt, CheckFormat, CheckFormatOpt,
                               conclude, summary_target)
from rnngrad.cli.common import OutputOpt, QuietOpt, emit, handled, outputs_for, planned, value

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
        outputs = outputs_for(*reports)
        target = planned(outputs, output, "--output")
        summary = summary_target(value(format), outputs)
        report = merge_reports([read_report(path) for path in reports],
                               [str(path) for path in reports])
        emit(report, format, target, outputs, quiet=quiet)
        conclude(report, fail_on, summary)
