"""``rnngrad lyapunov MODEL``: the Lyapunov spectrum of every recurrence and its memory time
scales."""

from __future__ import annotations

from dataclasses import replace
from enum import Enum
from typing import Annotated, Optional

import typer

from rnngrad.cli.common import (ActivationOpt, Format, FormatOpt, InputScaleOpt, InputsOpt, KeyOpt,
                                LeakOpt, MapOpt, MaxMemoryOpt, ModelArg, OutputOpt, PROBE_PANEL,
                                PlotOpt, QuietOpt, SeedOpt, TokensFileOpt, TokensOpt, given,
                                handled, model_path, plan_report, progress, value, with_default)
from rnngrad.lyapunov.options import DTYPES, LyapunovOptions
from rnngrad.probes.spec import ProbeSpec

NAME = "lyapunov"
LYAPUNOV = LyapunovOptions()
Dtype = Enum("Dtype", {name: name for name in DTYPES}, type=str)


class FailOn(str, Enum):
    """``--fail-on``: exit 1 when a recurrence's verdict is ``chaotic`` (or ``unbounded``),
    ``stable``, anything but ``edge-of-chaos`` (``not-edge``), or ``never``."""

    never = "never"
    chaotic = "chaotic"
    stable = "stable"
    not_edge = "not-edge"


FAIL_ON = {"never": frozenset(), "chaotic": frozenset({"chaotic", "unbounded"}),
           "stable": frozenset({"stable"}),
           "not-edge": frozenset({"chaotic", "unbounded", "stable"})}


def command(model: ModelArg = None,
            k: Annotated[Optional[int], typer.Option(
                "--k", "-k", help=with_default("How many exponents per recurrence, the "
                                               "largest first (all of them when the state is "
                                               "smaller).", LYAPUNOV.k))] = None,
            inputs: InputsOpt = None, tokens: TokensOpt = False,
            tokens_file: TokensFileOpt = None,
            batch: Annotated[Optional[int], typer.Option(
                "--batch", help=with_default("Probe sequences (the exponents are averaged "
                                             "over them).", LYAPUNOV.probe.batch),
                rich_help_panel=PROBE_PANEL)] = None,
            steps: Annotated[Optional[int], typer.Option(
                "--steps", help=with_default("Steps averaged after the burn-in.",
                                             LYAPUNOV.probe.steps),
                rich_help_panel=PROBE_PANEL)] = None,
            burn_in: Annotated[Optional[int], typer.Option(
                "--burn-in", help=with_default("Transient steps run first and not averaged "
                                               "(file probes: the first steps of the file's "
                                               "sequences).", LYAPUNOV.probe.burn_in),
                rich_help_panel=PROBE_PANEL)] = None,
            seed: SeedOpt = None, input_scale: InputScaleOpt = None,
            edge: Annotated[Optional[float], typer.Option(
                "--edge", help=with_default("ε of the verdict (nats per step): chaotic above "
                                            "ε, stable below −ε, edge-of-chaos between.",
                                            LYAPUNOV.edge))] = None,
            blocks: Annotated[Optional[int], typer.Option(
                "--blocks", help=with_default("Blocks the window is cut into for the standard "
                                              "error.", LYAPUNOV.blocks))] = None,
            bptt_lags: Annotated[Optional[str], typer.Option(
                "--bptt-lags", help="Also run bptt with these lags on the same trajectory "
                                    "and compare its per-step rate with e^λ_1.")] = None,
            module: Annotated[Optional[list[str]], typer.Option(
                "--module", help="Analyse only this module (repeatable).")] = None,
            dtype: Annotated[Optional[Dtype], typer.Option(
                help=with_default("Precision of the analysis.", LYAPUNOV.dtype))] = None,
            device: Annotated[Optional[str], typer.Option(
                help=with_default("cpu or cuda.", LYAPUNOV.device))] = None,
            max_memory: MaxMemoryOpt = None,
            key: KeyOpt = None, activation: ActivationOpt = None,
            leak: LeakOpt = None, map_file: MapOpt = None,
            format: FormatOpt = Format.table, output: OutputOpt = None,
            fail_on: Annotated[FailOn, typer.Option(
                "--fail-on", help="Exit 1 when a recurrence's verdict is this (chaotic "
                                  "includes unbounded).")] = FailOn.never,
            plot: PlotOpt = None, quiet: QuietOpt = False) -> None:
    """Lyapunov exponents of every recurrence along its probe trajectory: memory time scales,
    chaos, and a verdict on λ_1."""
    from rnngrad.lyapunov.analysis import lyapunov

    with handled(format):
        # lyapunov's own probe defaults (long), not ProbeSpec's (bptt's)
        probe = replace(LYAPUNOV.probe, **given(
            ProbeSpec, inputs=inputs, tokens=tokens, tokens_file=tokens_file, batch=batch,
            steps=steps, burn_in=burn_in, seed=seed, input_scale=input_scale))
        options = LyapunovOptions(probe=probe, **given(
            LyapunovOptions, k=k, edge=edge, blocks=blocks, bptt_lags=bptt_lags,
            modules=module, dtype=dtype, device=device, max_memory=max_memory, keys=key,
            activation=activation, leak=leak, map=map_file))
        path = model_path(model)
        plan = plan_report((path, inputs, tokens_file, map_file), format, output, plot)
        with progress(quiet, "lyapunov") as on_progress:
            report = lyapunov(path, options, on_progress=on_progress)
        plan.show(report, format, plot, quiet=quiet)
        if any(item.verdict in FAIL_ON[value(fail_on)] for item in report.recurrences):
            raise typer.Exit(1)
