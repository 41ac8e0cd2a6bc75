"""``rnngrad merge REPORT.json...``: the check reports of several shards as one report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rnngrad.cli.check import (CheckFailOn, CheckFailOnOpt, CheckFormat, CheckFormatOpt,
                               conclude, summary_target)
from rnngrad.cli.common import OutputOpt, QuietOpt, handled, plan_report, value

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
        plan = plan_report(reports, format, output)
        summary = summary_target(value(format), plan.outputs)
        report = merge_reports([read_report(path) for path in reports],
                               [str(path) for path in reports])
        plan.show(report, format, None, quiet=quiet)
        conclude(report, fail_on, summary)
