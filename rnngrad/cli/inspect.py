"""``rnngrad inspect MODEL``: the tensors of a file and the recurrences found in it."""

from __future__ import annotations

from rnngrad.cli.common import (ActivationOpt, Format, FormatOpt, KeyOpt, LeakOpt, MapOpt,
                                MaxMemoryOpt, ModelArg, OutputOpt, QuietOpt, given, handled,
                                model_path, plan_report)
from rnngrad.conventions.options import ReadOptions

NAME = "inspect"


def command(model: ModelArg = None, key: KeyOpt = None, activation: ActivationOpt = None,
            leak: LeakOpt = None, map_file: MapOpt = None, max_memory: MaxMemoryOpt = None,
            format: FormatOpt = Format.table, output: OutputOpt = None,
            quiet: QuietOpt = False) -> None:
    """What is in the file: tensors and the recurrences found."""
    from rnngrad.inspection import inspect

    with handled(format):
        options = ReadOptions(**given(ReadOptions, keys=key, activation=activation, leak=leak,
                                      map=map_file, max_memory=max_memory))
        path = model_path(model)
        plan = plan_report((path, map_file), format, output)
        report = inspect(path, options)
        plan.show(report, format, None, quiet=quiet)
