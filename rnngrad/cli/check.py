"""``rnngrad check MODEL...``: the CI gate, spectrum + bptt of each model against thresholds."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from rnngrad.cli.common import (PROBE_PANEL, ActivationOpt, BatchOpt, InputScaleOpt, LagsOpt,
                                LeakOpt, MapOpt, OutputOpt, PlotOpt, QuietOpt, SeedOpt, StepsOpt,
                                check_plot, emit, handled, progress, value, with_default)
from rnngrad.errors import OptionError
from rnngrad.gate.config import CheckConfig

NAME = "check"
GATE = CheckConfig()
CONFIG_PANEL = "Configuration and baseline"


class CheckFormat(str, Enum):
    table = "table"
    json = "json"
    markdown = "markdown"
    github = "github"
    junit = "junit"


class CheckFailOn(str, Enum):
    any = "any"
    never = "never"


CheckFormatOpt = Annotated[CheckFormat, typer.Option("--format", "-f", help="Output format.")]
CheckFailOnOpt = Annotated[CheckFailOn, typer.Option(
    "--fail-on", help="any: exit 1 when a threshold fails; never: always 0.")]


def command(models: Annotated[Optional[list[str]], typer.Argument(
                help="Weights files, folders or globs (default: `models` in the config).",
                show_default=False, metavar="MODEL...")] = None,
            config: Annotated[Optional[Path], typer.Option(
                help="TOML file with \\[tool.rnngrad] (default: the nearest pyproject.toml).",
                rich_help_panel=CONFIG_PANEL)] = None,
            lags: LagsOpt = None,
            explode_above: Annotated[Optional[float], typer.Option(
                help="Fail if the per-lag norm exceeds this at any lag.")] = None,
            vanish_below: Annotated[Optional[float], typer.Option(
                help="Fail if the norm at the largest lag is below this.")] = None,
            max_spectral_radius: Annotated[Optional[float], typer.Option(
                help="Fail if ρ (W_hh; gated cells: rest Jacobian) exceeds this.")] = None,
            max_bound: Annotated[Optional[float], typer.Option(
                help="Fail if γ·σ_max exceeds this.")] = None,
            batch: BatchOpt = None, steps: StepsOpt = None, seed: SeedOpt = None,
            input_scale: InputScaleOpt = None,
            inputs: Annotated[Optional[str], typer.Option(
                help="Probe sequences .npy.", rich_help_panel=PROBE_PANEL)] = None,
            activation: ActivationOpt = None, leak: LeakOpt = None, map_file: MapOpt = None,
            baseline: Annotated[Optional[Path], typer.Option(
                help="Fail on regressions against this baseline.",
                rich_help_panel=CONFIG_PANEL)] = None,
            write_baseline: Annotated[Optional[Path], typer.Option(
                help="Save the measured figures as a baseline.",
                rich_help_panel=CONFIG_PANEL)] = None,
            radius_tolerance: Annotated[Optional[float], typer.Option(
                help=with_default("Baseline: allowed relative rise of ρ.",
                                  GATE.radius_tolerance),
                rich_help_panel=CONFIG_PANEL)] = None,
            norm_drop: Annotated[Optional[float], typer.Option(
                help=with_default("Baseline: allowed drop factor of the last-lag norm.",
                                  GATE.norm_drop),
                rich_help_panel=CONFIG_PANEL)] = None,
            norm_rise: Annotated[Optional[float], typer.Option(
                help=with_default("Baseline: allowed rise factor of the largest norm.",
                                  GATE.norm_rise),
                rich_help_panel=CONFIG_PANEL)] = None,
            format: CheckFormatOpt = CheckFormat.table,
            output: OutputOpt = None,
            fail_on: CheckFailOnOpt = CheckFailOn.any,
            shard: Annotated[Optional[str], typer.Option(
                "--shard", metavar="K/N", help="Check only the K-th of N consecutive runs of "
                "the models; join the shards' JSON with `rnngrad merge`.")] = None,
            jobs: Annotated[Optional[int], typer.Option(
                "--jobs", "-j", metavar="N", help=with_default(
                    "Models measured at once, each in its own process (1: one after another).",
                    "the number of cores"))] = None,
            plot: PlotOpt = None, quiet: QuietOpt = False) -> None:
    """The CI gate: spectrum + bptt of each model against thresholds and a baseline."""
    from rnngrad.gate.baseline import baseline_text, read_baseline
    from rnngrad.gate.check import run_check
    from rnngrad.gate.config import load_config
    from rnngrad.gate.models import expand_models

    cli_values: dict[str, Any] = {
        "lags": lags, "explode_above": explode_above, "vanish_below": vanish_below,
        "max_spectral_radius": max_spectral_radius, "max_bound": max_bound, "batch": batch,
        "steps": steps, "seed": seed, "input_scale": input_scale, "inputs": inputs,
        "activation": activation, "radius_tolerance": radius_tolerance,
        "norm_drop": norm_drop, "norm_rise": norm_rise, "leak": leak, "map": map_file,
        "baseline": baseline, "jobs": jobs}
    with handled(format):
        check_plot(plot, format, output)
        loaded = load_config(config)
        cli = {name: value(option) for name, option in cli_values.items() if option is not None}
        defaults = loaded.for_model("", cli)
        paths = expand_models(models or list(defaults.models))
        if not paths:
            raise OptionError("no model to check",
                              "pass MODEL paths, or set models = [...] in [tool.rnngrad]")
        if shard is not None:  # an empty shard (more shards than models) checks nothing: exit 0
            from rnngrad.gate.merge import parse_shard, shard_of

            paths = shard_of(paths, parse_shard(shard))
        configs = [loaded.for_model(path, cli) for path in paths]
        reference = None
        if defaults.baseline and (write_baseline is None
                                  or Path(defaults.baseline).resolve() != write_baseline.resolve()):
            reference = read_baseline(Path(defaults.baseline))
        with progress(quiet, "check") as on_progress:
            report = run_check(paths, configs, baseline=reference,
                               baseline_name=defaults.baseline if reference else None,
                               config_source=loaded.source, on_progress=on_progress,
                               jobs=defaults.jobs)
        if write_baseline is not None:
            from rnngrad.cli.common import write_output

            write_output(write_baseline, baseline_text(report), "--write-baseline")
        emit(report, format, output, quiet=quiet)
        if plot is not None:
            from rnngrad.plots import save_plot

            save_plot(report, plot)
        _github_summary(report, value(format))
        if value(fail_on) == "any" and not report.ok:
            raise typer.Exit(1)


def _github_summary(report: Any, fmt_name: str) -> None:
    """With --format github, append the Markdown summary to $GITHUB_STEP_SUMMARY if set."""
    import os

    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if fmt_name != "github" or not target:
        return
    from rnngrad.render import render_text

    try:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(render_text(report, "markdown"))
    except OSError as exc:
        raise OptionError(f"GITHUB_STEP_SUMMARY={target}: cannot be written ({exc.strerror})",
                          "check the runner's environment") from None
