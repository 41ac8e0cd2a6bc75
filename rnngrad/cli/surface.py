"""``rnngrad surface MODEL``: the error surface, its curvature walls and what SGD does there."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Optional

import typer

from rnngrad.cli.bptt import Dtype
from rnngrad.cli.common import (ActivationOpt, BatchOpt, BurnInOpt, Format, FormatOpt,
                                InitialStateOpt, InputScaleOpt, InputsOpt, KeyOpt, LeakOpt, MapOpt,
                                MaxMemoryOpt, ModelArg, OutputOpt, PlotOpt, QuietOpt, SeedOpt,
                                StepsOpt, THRESHOLDS_PANEL, TokensFileOpt, TokensOpt, given,
                                handled, model_path, plan_report, progress, value, with_default)
from rnngrad.probes.spec import ProbeSpec
from rnngrad.surface.options import CLIP_RULES, LOSSES, PARAMS, SurfaceOptions

NAME = "surface"
SURFACE = SurfaceOptions()
SURFACE_PANEL = "Surface, step and grid"
Loss = Enum("Loss", {name: name for name in LOSSES}, type=str)
Params = Enum("Params", {name: name for name in PARAMS}, type=str)
ClipRule = Enum("SurfaceClipRule", {name: name for name in CLIP_RULES}, type=str)


class FailOn(str, Enum):
    """``--fail-on``: exit 1 when the unclipped SGD step crosses a wall (``wall``), when
    η ≥ 2/λ_max (``unstable``), either (``any``), or ``never``."""

    never = "never"
    wall = "wall"
    unstable = "unstable"
    any = "any"


def command(model: ModelArg = None,
            inputs: InputsOpt = None, tokens: TokensOpt = False,
            tokens_file: TokensFileOpt = None, batch: BatchOpt = None, steps: StepsOpt = None,
            burn_in: BurnInOpt = None, seed: SeedOpt = None, input_scale: InputScaleOpt = None,
            initial_state: InitialStateOpt = None,
            loss: Annotated[Optional[Loss], typer.Option(
                help="Probe loss E_b at the last step: random unit readout, MSE / "
                     "cross-entropy through the file's head, or squared ‖y_T − target‖² (no "
                     "head, no ½). Default: the model's own [probe], else readout.",
                rich_help_panel=THRESHOLDS_PANEL, show_default=False)] = None,
            targets: Annotated[Optional[str], typer.Option(
                metavar="VALUE|FILE.npy",
                help="Targets: .npy for mse (B, C) or ce (B,); a number or .npy (B, W) for "
                     "squared.", rich_help_panel=THRESHOLDS_PANEL)] = None,
            params: Annotated[Optional[Params], typer.Option(
                help=with_default("θ: every tensor of the recurrences and of the loss's head "
                                  "(all), the recurrences' only (recurrent), or their W_hh "
                                  "only (hh).", SURFACE.params))] = None,
            lengths: Annotated[Optional[str], typer.Option(
                help="BPTT horizons for the growth table, e.g. 10,20,50,100 (default: a few up "
                     "to the probe length).", show_default=False)] = None,
            lr: Annotated[Optional[float], typer.Option(
                "--lr", help=with_default("Learning rate η of the SGD step.", SURFACE.lr),
                rich_help_panel=SURFACE_PANEL)] = None,
            max_norm: Annotated[Optional[float], typer.Option(
                help="Clip threshold (default: recommended by --clip-rule).", rich_help_panel=SURFACE_PANEL,
                show_default=False)] = None,
            clip_rule: Annotated[Optional[ClipRule], typer.Option(
                help=with_default("Rule for the recommended clip threshold: curvature = "
                                  "‖g‖/(η·λ_max), the effective learning rate 1/λ_max; "
                                  "pascanu, autoclip as in bptt.",
                                  SURFACE.clip_rule), rich_help_panel=SURFACE_PANEL)] = None,
            span: Annotated[Optional[float], typer.Option(
                help="The slice E(θ − tĝ) covers t in [−span, span] (default: 10 × the step "
                     "η‖g‖).", rich_help_panel=SURFACE_PANEL, show_default=False)] = None,
            points: Annotated[Optional[int], typer.Option(
                help=with_default("Points on the slice.", SURFACE.points),
                rich_help_panel=SURFACE_PANEL)] = None,
            sgd_steps: Annotated[Optional[int], typer.Option(
                help=with_default("Steps of the SGD paths (unclipped and clipped).",
                                  SURFACE.sgd_steps), rich_help_panel=SURFACE_PANEL)] = None,
            vary: Annotated[Optional[list[str]], typer.Option(
                "--vary", metavar="NAME=START:STOP:N",
                help="Grid axis: a scalar parameter (w, rnn.weight_hh_l0[3,4]) or a direction "
                     "(gradient, curvature, random); once for a slice, twice (or two joined "
                     "by a comma) for a surface.", rich_help_panel=SURFACE_PANEL)] = None,
            module: Annotated[Optional[str], typer.Option(
                "--module", help="Analyse this module (default: the first).")] = None,
            dtype: Annotated[Optional[Dtype], typer.Option(
                help=with_default("Precision of the analysis.", SURFACE.dtype))] = None,
            device: Annotated[Optional[str], typer.Option(
                help=with_default("cpu or cuda.", SURFACE.device))] = None,
            max_memory: MaxMemoryOpt = None,
            key: KeyOpt = None, activation: ActivationOpt = None,
            leak: LeakOpt = None, map_file: MapOpt = None,
            format: FormatOpt = Format.table, output: OutputOpt = None,
            fail_on: Annotated[FailOn, typer.Option(
                "--fail-on", help="Exit 1 when the unclipped step crosses a wall (wall), when "
                                  "η ≥ 2/λ_max (unstable), or either (any).")] = FailOn.never,
            plot: PlotOpt = None, quiet: QuietOpt = False) -> None:
    """The error surface at θ: curvature (Lanczos), its growth with the horizon, the slice
    along the gradient with its wall, one SGD step clipped and not, --vary grids."""
    from rnngrad.surface.analysis import surface

    with handled(format):
        settings = {
            **given(ProbeSpec, inputs=inputs, tokens=tokens, tokens_file=tokens_file,
                    batch=batch, steps=steps, burn_in=burn_in, seed=seed,
                    input_scale=input_scale, initial_state=initial_state),
            **given(SurfaceOptions, loss=loss, targets=targets, params=params,
                    lengths=lengths, lr=lr, max_norm=max_norm, clip_rule=clip_rule, span=span,
                    points=points, sgd_steps=sgd_steps, vary=vary, module=module,
                    dtype=dtype, device=device, max_memory=max_memory, keys=key,
                    activation=activation, leak=leak, map=map_file)}
        path = model_path(model)
        plan = plan_report((path, inputs, tokens_file, targets, map_file,
                            initial_state if str(initial_state).endswith(".npy") else None),
                           format, output, plot)
        with progress(quiet, "surface") as on_progress:
            report = surface(path, on_progress=on_progress, **settings)
        plan.show(report, format, plot, quiet=quiet)
        if _fails(report.step, value(fail_on)):
            raise typer.Exit(1)


def _fails(step, fail_on: str) -> bool:
    wall = bool(step.crosses_wall)
    unstable = step.stable_lr is not None and step.lr >= step.stable_lr
    return {"never": False, "wall": wall, "unstable": unstable, "any": wall or unstable}[fail_on]
