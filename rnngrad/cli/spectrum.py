"""``rnngrad spectrum MODEL``: eigen- and singular values of every recurrent matrix."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Optional

import typer

from rnngrad.cli.common import (ActivationOpt, Format, FormatOpt, KeyOpt, LeakOpt, MapOpt,
                                MaxMemoryOpt, ModelArg, OutputOpt, PlotOpt, QuietOpt, SPECTRUM,
                                given, handled, model_path, plan_report, progress, with_default)
from rnngrad.spectrum.options import SpectrumOptions

NAME = "spectrum"
# --fail-on choices; FAIL_ON_MATCHES in rnngrad.spectrum.verdict says which verdicts each takes.
FailOn = Enum("FailOn", {name: name for name in (
    "never", "vanishing-guaranteed", "explosion-possible", "rest-unstable", "undetermined")},
    type=str)


def command(model: ModelArg = None,
            top: Annotated[Optional[int], typer.Option(
                "--top", "-k", help=with_default("How many eigenvalues to list per block.",
                                                 SPECTRUM.top))] = None,
            key: KeyOpt = None, activation: ActivationOpt = None,
            leak: LeakOpt = None, map_file: MapOpt = None,
            format: FormatOpt = Format.table, output: OutputOpt = None,
            fail_on: Annotated[FailOn, typer.Option(
                "--fail-on", help="Exit 1 when a recurrence has this verdict "
                "(explosion-possible includes rest-unstable).")] = "never",  # type: ignore
            max_memory: MaxMemoryOpt = None,
            plot: PlotOpt = None, quiet: QuietOpt = False) -> None:
    """Eigen- and singular values of every recurrent matrix, Pascanu's bound and a verdict."""
    from rnngrad.cli.common import value
    from rnngrad.spectrum.analysis import spectrum
    from rnngrad.spectrum.verdict import FAIL_ON_MATCHES

    with handled(format):
        options = SpectrumOptions(**given(SpectrumOptions, top=top, keys=key,
                                          activation=activation, leak=leak, map=map_file,
                                          max_memory=max_memory, values=plot is not None))
        path = model_path(model)
        plan = plan_report((path, map_file), format, output, plot)
        with progress(quiet, "spectrum") as on_progress:
            report = spectrum(path, options, on_progress=on_progress)
        plan.show(report, format, plot, quiet=quiet)
        matches = FAIL_ON_MATCHES[value(fail_on)]
        if any(item.verdict in matches for item in report.recurrences):
            raise typer.Exit(1)
