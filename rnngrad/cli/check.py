"""``rnngrad check MODEL...``: the CI gate, spectrum + bptt of each model against thresholds."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from rnngrad.cli.common import (ActivationOpt, BatchOpt, InputScaleOpt, LagsOpt, LeakOpt, MapOpt,
                                MaxMemoryOpt, OutputOpt, PROBE_PANEL, PlotOpt, QuietOpt, SeedOpt,
                                StepsOpt, error_line, handled, plan_report, planned, progress,
                                value, with_default)
from rnngrad.errors import OptionError
from rnngrad.gate.config import CheckConfig

NAME = "check"
GATE = CheckConfig()
CONFIG_PANEL = "Configuration and baseline"


class CheckFormat(str, Enum):
    """``check --format``: ``table``, ``json``, ``markdown``, or for CI ``github`` (workflow
    commands) and ``junit`` (XML)."""

    table = "table"
    json = "json"
    markdown = "markdown"
    github = "github"
    junit = "junit"


class CheckFailOn(str, Enum):
    """``check --fail-on``: ``any`` exits 1 when a threshold fails or a model cannot be checked;
    ``never`` exits 0 regardless."""

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
            max_lyapunov: Annotated[Optional[float], typer.Option(
                help="Fail if the largest Lyapunov exponent λ_1 (nats per step) exceeds "
                     "this.")] = None,
            min_lyapunov: Annotated[Optional[float], typer.Option(
                help="Fail if λ_1 is below this.")] = None,
            batch: BatchOpt = None, steps: StepsOpt = None, seed: SeedOpt = None,
            input_scale: InputScaleOpt = None,
            inputs: Annotated[Optional[str], typer.Option(
                help="Probe sequences .npy.", rich_help_panel=PROBE_PANEL)] = None,
            activation: ActivationOpt = None, leak: LeakOpt = None, map_file: MapOpt = None,
            max_memory: MaxMemoryOpt = None,
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
    from rnngrad.gate.baseline import read_baseline
    from rnngrad.gate.check import run_check
    from rnngrad.gate.config import load_config
    from rnngrad.gate.models import expand_models

    cli_values: dict[str, Any] = {
        "lags": lags, "explode_above": explode_above, "vanish_below": vanish_below,
        "max_spectral_radius": max_spectral_radius, "max_bound": max_bound,
        "max_lyapunov": max_lyapunov, "min_lyapunov": min_lyapunov, "batch": batch,
        "steps": steps, "seed": seed, "input_scale": input_scale, "inputs": inputs,
        "activation": activation, "radius_tolerance": radius_tolerance,
        "norm_drop": norm_drop, "norm_rise": norm_rise, "leak": leak, "map": map_file,
        "baseline": baseline, "max_memory": max_memory, "jobs": jobs}
    with handled(format):
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
        refresh = defaults.baseline is not None and _same_file(defaults.baseline, write_baseline)
        reference_path = defaults.baseline if defaults.baseline and not refresh else None
        plan = plan_report([*paths, loaded.source, reference_path,
                            *(item for c in configs for item in (
                                c.bptt.probe.inputs, c.bptt.probe.tokens_file, c.bptt.map,
                                c.bptt.targets))], format, output, plot)
        baseline_target = planned(plan.outputs, write_baseline, "--write-baseline")
        summary = summary_target(value(format), plan.outputs)
        reference = read_baseline(Path(reference_path)) if reference_path else None
        with progress(quiet, "check") as on_progress:
            report = run_check(paths, configs, baseline=reference, baseline_name=reference_path,
                               config_source=loaded.source, on_progress=on_progress,
                               keep_going=True, jobs=defaults.jobs,
                               shared=defaults)
        _write_baseline(report, baseline_target, plan.outputs)
        plan.show(report, format, plot, quiet=quiet)
        conclude(report, fail_on, summary)


def conclude(report: Any, fail_on: Any, summary: Any) -> None:
    """After the report is out: the Markdown summary for GitHub (``summary``, planned by
    :func:`summary_target`), each model's error as one line on stderr, and the exit code
    (2: a model could not be checked; 1: a threshold failed, unless ``--fail-on never``)."""
    if summary is not None:
        from rnngrad.cli.outputs import append_summary
        from rnngrad.render import render_text

        append_summary(summary, render_text(report, "markdown"))
    for error in report.errors:
        error_line(error.message, error.hint)
    if report.errors:
        raise typer.Exit(2)
    if value(fail_on) == "any" and not report.ok:
        raise typer.Exit(1)


def _same_file(first: str, second: Path | None) -> bool:
    """Whether ``second`` names the file ``first`` names (a link included)."""
    import os

    if second is None:
        return False
    try:
        return os.path.samefile(first, second)
    except OSError:
        return Path(first).resolve() == second.resolve()


def _write_baseline(report: Any, target: Any, outputs: Any) -> None:
    """Save the figures as a baseline, unless a model could not be checked (the baseline
    would silently lose it)."""
    from rnngrad.gate.baseline import baseline_text

    if target is None:
        return
    if report.errors:
        error_line(f"--write-baseline {target.path}: not written, {len(report.errors)} "
                   "model(s) could not be checked", "fix them first; the old baseline is kept")
        return
    outputs.write(target, baseline_text(report))


def summary_target(fmt_name: str, outputs: Any) -> Any:
    """With --format github, the $GITHUB_STEP_SUMMARY file (checked now) to append the
    Markdown summary to; else None."""
    import os

    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if fmt_name != "github" or not target:
        return None
    from rnngrad.cli.outputs import plan_summary

    return plan_summary(target, outputs)
