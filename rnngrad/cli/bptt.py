"""``rnngrad bptt MODEL``: per-lag BPTT Jacobian norms, exploding directions, clip threshold."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from rnngrad.bptt.options import CLIP_RULES, DTYPES, LOSSES, STATES, BpttOptions
from rnngrad.cli.common import (ActivationOpt, BPTT, BatchOpt, BurnInOpt, Format, FormatOpt,
                                InitialStateOpt, InputScaleOpt, InputsOpt, KeyOpt, LagsOpt, LeakOpt,
                                MapOpt, MaxMemoryOpt, ModelArg, OutputOpt, PlotOpt, QuietOpt,
                                SeedOpt, StepsOpt, THRESHOLDS_PANEL, TokensFileOpt, TokensOpt,
                                given, handled, model_path, plan_report, planned, probe_spec,
                                progress, value, with_default)

NAME = "bptt"
State = Enum("State", {name: name for name in STATES}, type=str)
Dtype = Enum("Dtype", {name: name for name in DTYPES}, type=str)
Loss = Enum("Loss", {name: name for name in LOSSES}, type=str)
ClipRule = Enum("ClipRule", {name: name for name in CLIP_RULES}, type=str)


class FailOn(str, Enum):
    """``--fail-on``: exit 1 when a recurrence's measured verdict is ``exploding``,
    ``vanishing``, either (``unhealthy``), or ``never``."""

    never = "never"
    exploding = "exploding"
    vanishing = "vanishing"
    unhealthy = "unhealthy"


FAIL_ON = {"never": frozenset(), "exploding": frozenset({"exploding"}),
           "vanishing": frozenset({"vanishing"}),
           "unhealthy": frozenset({"exploding", "vanishing"})}


def command(model: ModelArg = None, lags: LagsOpt = None,
            inputs: InputsOpt = None, tokens: TokensOpt = False,
            tokens_file: TokensFileOpt = None, batch: BatchOpt = None, steps: StepsOpt = None,
            burn_in: BurnInOpt = None, seed: SeedOpt = None, input_scale: InputScaleOpt = None,
            initial_state: InitialStateOpt = None,
            state: Annotated[Optional[State], typer.Option(
                help=with_default("LSTM: all = \\[h; c], or the h or c block.", BPTT.state))
                             ] = None,
            vanish_below: Annotated[Optional[float], typer.Option(
                help=with_default("Vanishing when the norm at the largest lag is below this.",
                                  BPTT.vanish_below), rich_help_panel=THRESHOLDS_PANEL)] = None,
            explode_above: Annotated[Optional[float], typer.Option(
                help=with_default("Exploding when the norm at any lag is above this.",
                                  BPTT.explode_above), rich_help_panel=THRESHOLDS_PANEL)] = None,
            loss: Annotated[Optional[Loss], typer.Option(
                help=with_default("Probe loss: random unit readout of s_T, or MSE / "
                                  "cross-entropy through the file's head.", BPTT.loss),
                rich_help_panel=THRESHOLDS_PANEL)] = None,
            targets: Annotated[Optional[Path], typer.Option(
                help="Targets .npy for --loss mse (B, C) or ce (B,).", metavar="FILE.npy",
                rich_help_panel=THRESHOLDS_PANEL)] = None,
            clip_rule: Annotated[Optional[ClipRule], typer.Option(
                help=with_default("Rule for the clip threshold: auto = pascanu while nothing "
                                  "explodes, horizon once gradients do.", BPTT.clip_rule),
                rich_help_panel=THRESHOLDS_PANEL)] = None,
            module: Annotated[Optional[list[str]], typer.Option(
                "--module", help="Analyse only this module (repeatable).", metavar="NAME")
                              ] = None,
            save_directions: Annotated[Optional[Path], typer.Option(
                help="Write the top singular directions to this .safetensors file.",
                metavar="FILE")] = None,
            dtype: Annotated[Optional[Dtype], typer.Option(
                help=with_default("Precision of the analysis.", BPTT.dtype))] = None,
            device: Annotated[Optional[str], typer.Option(
                help=with_default("cpu or cuda.", BPTT.device))] = None,
            max_memory: MaxMemoryOpt = None,
            key: KeyOpt = None, activation: ActivationOpt = None,
            leak: LeakOpt = None, map_file: MapOpt = None,
            format: FormatOpt = Format.table, output: OutputOpt = None,
            fail_on: Annotated[FailOn, typer.Option(
                "--fail-on", help="Exit 1 when a recurrence's measured verdict is this.")
                               ] = FailOn.never,
            plot: PlotOpt = None, quiet: QuietOpt = False) -> None:
    """Per-lag BPTT Jacobian norms on a probe, exploding directions, clip threshold."""
    from rnngrad.bptt.analysis import bptt

    with handled(format):
        probe = probe_spec(inputs=inputs, tokens=tokens, tokens_file=tokens_file, batch=batch,
                           steps=steps, burn_in=burn_in, seed=seed, input_scale=input_scale,
                           initial_state=initial_state)
        options = BpttOptions(probe=probe, **given(
            BpttOptions, lags=lags, state=state, vanish_below=vanish_below,
            explode_above=explode_above, loss=loss, targets=targets, clip_rule=clip_rule,
            modules=module, dtype=dtype, device=device, max_memory=max_memory, keys=key,
            activation=activation, leak=leak, map=map_file))
        path = model_path(model)
        plan = plan_report((path, inputs, tokens_file, targets, map_file,
                            initial_state if str(initial_state).endswith(".npy") else None),
                           format, output, plot)
        directions = planned(plan.outputs, save_directions, "--save-directions")
        with progress(quiet, "bptt") as on_progress:
            report = bptt(path, options, on_progress=on_progress)
        if directions is not None:
            from rnngrad.bptt.directions import directions_bytes

            plan.outputs.write(directions, directions_bytes(report))
        plan.show(report, format, plot, quiet=quiet)
        if any(item.verdict in FAIL_ON[value(fail_on)] for item in report.recurrences):
            raise typer.Exit(1)
