"""The ``rnngrad`` command: a thin Typer layer over the library.

parse options -> call the analysis -> render the typed report -> exit code (CONTRACT.md):
0 ran, 1 a finding at or above ``--fail-on``, 2 any error (one line on stderr, and a JSON error
object on stdout with ``--format json``). ``--debug`` anywhere on the line shows tracebacks.
"""

from __future__ import annotations

import contextlib
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Callable, Iterator, Optional

import typer
from rich.console import Console

from . import __version__
from .errors import OptionError, RnngradError
from .verdict import FAIL_ON_MATCHES

try:  # typer >= 0.20 vendors click; older releases use the click package
    from typer._click.exceptions import ClickException, UsageError
except ImportError:  # pragma: no cover - depends on the installed typer
    from click.exceptions import ClickException, UsageError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Will your RNN's gradients vanish or explode? Spectra, per-lag BPTT "
                       "Jacobians and clipping advice from the weights file. Add --debug "
                       "anywhere to see tracebacks.")
_DEBUG = False


class Format(str, Enum):
    table = "table"
    json = "json"
    markdown = "markdown"


class Activation(str, Enum):
    tanh = "tanh"
    relu = "relu"


SpectrumFailOn = Enum("SpectrumFailOn", {name: name for name in FAIL_ON_MATCHES}, type=str)

ModelArg = Annotated[Path, typer.Argument(help="Weights file: .safetensors, .pt/.pth/.bin "
                                          "state dict, .npz, Keras .h5/.keras, or .onnx.",
                                          show_default=False)]
LeakOpt = Annotated[Optional[float], typer.Option(
    "--leak", help="Run Elman layers as leaky rate cells x' = (1−α)x + α(W φ(x) + W_in u + b) "
                   "with α = dt/τ in (0, 1]; also overrides α of mapped/recognised rate models.")]
MapOpt = Annotated[Optional[Path], typer.Option(
    "--map", help="TOML file describing a research checkpoint's recurrence: recurrent/input/bias "
                  "arrays, nonlinearity, leak (or dt, tau), orientation.")]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
OutputOpt = Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the output "
                                                   "to FILE instead of stdout.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or notes.")]
KeyOpt = Annotated[Optional[list[str]], typer.Option("--key", help="Analyse this square "
                                                     "matrix as W_rec (repeatable).")]
PlotOpt = Annotated[Optional[str], typer.Option(
    "--plot", help='Draw the result: FILE.png, FILE.svg, or "term" (needs rnngrad[plot]).')]
ActivationOpt = Annotated[Optional[Activation], typer.Option(
    "--activation", help="Nonlinearity of Elman layers (default: file metadata, else tanh).")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rnngrad {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Show the version and exit.")] = False) -> None:
    """rnngrad: vanishing and exploding gradients of RNN weights."""


@app.command()
def inspect(model: ModelArg, key: KeyOpt = None, activation: ActivationOpt = None,
            leak: LeakOpt = None, map_file: MapOpt = None,
            format: FormatOpt = Format.table, output: OutputOpt = None,
            quiet: QuietOpt = False) -> None:
    """What is in the file: tensors and the recurrences found."""
    from .analysis import inspect as run_inspect

    with handled(format):
        report = run_inspect(model, keys=tuple(key or ()), activation=_value(activation),
                             leak=leak, mapping=str(map_file) if map_file else None)
        emit(report, format, output)


@app.command()
def spectrum(model: ModelArg, top: Annotated[int, typer.Option(
                 "--top", "-k", help="How many eigenvalues to list per block.")] = 5,
             key: KeyOpt = None, activation: ActivationOpt = None,
             leak: LeakOpt = None, map_file: MapOpt = None,
             format: FormatOpt = Format.table, output: OutputOpt = None,
             fail_on: Annotated[SpectrumFailOn, typer.Option(
                 "--fail-on", help="Exit 1 when a recurrence has this verdict "
                 "(explosion-possible includes rest-unstable).")] = "never",
             max_memory: Annotated[float, typer.Option(help="Refuse analyses needing more GiB.")
                                   ] = 8.0,
             plot: PlotOpt = None, quiet: QuietOpt = False) -> None:
    """Eigen- and singular values of every recurrent matrix, Pascanu's bound and a verdict."""
    from .analysis import spectrum as run_spectrum

    with handled(format):
        _check_plot(plot, format, output)
        with progress(quiet, "spectrum") as on_progress:
            report = run_spectrum(model, keys=tuple(key or ()), activation=_value(activation),
                                  top=top, on_progress=on_progress, leak=leak,
                                  mapping=str(map_file) if map_file else None,
                                  max_memory_gib=max_memory)
        emit(report, format, output)
        if plot is not None:
            from .plots import save_plot, spectrum_matrices

            save_plot(report, plot, matrices=spectrum_matrices(model, report))
        matches = FAIL_ON_MATCHES[_value(fail_on)]
        if any(item.verdict in matches for item in report.recurrences):
            raise typer.Exit(1)


class State(str, Enum):
    all = "all"
    h = "h"
    c = "c"


class Dtype(str, Enum):
    float64 = "float64"
    float32 = "float32"


class Loss(str, Enum):
    readout = "readout"
    mse = "mse"
    ce = "ce"


class ClipRule(str, Enum):
    pascanu = "pascanu"
    autoclip = "autoclip"


class ProfileFailOn(str, Enum):
    never = "never"
    exploding = "exploding"
    vanishing = "vanishing"
    unhealthy = "unhealthy"


PROFILE_FAIL_ON = {"never": frozenset(), "exploding": frozenset({"exploding"}),
                   "vanishing": frozenset({"vanishing"}),
                   "unhealthy": frozenset({"exploding", "vanishing"})}
PROBE = "Probe"
THRESHOLDS = "Thresholds and loss"


@app.command()
def bptt(model: ModelArg,
         lags: Annotated[str, typer.Option("--lags", "-l", help="Lags: 1..100, 1..1000:10, "
                                           "1,2,5,10 or log:1..1000:20.")] = "1..100",
         inputs: Annotated[Optional[Path], typer.Option(
             "--inputs", help="Probe sequences .npy, (B, T, I) or (T, I).",
             rich_help_panel=PROBE)] = None,
         tokens: Annotated[bool, typer.Option(
             "--tokens", help="Random token ids through the file's embedding.",
             rich_help_panel=PROBE)] = False,
         tokens_file: Annotated[Optional[Path], typer.Option(
             "--tokens-file", help="Token ids .npy (B, T) through the embedding.",
             rich_help_panel=PROBE)] = None,
         batch: Annotated[int, typer.Option(help="Probe sequences.", rich_help_panel=PROBE)] = 16,
         steps: Annotated[int, typer.Option(help="Analysed steps (longest lag).",
                                            rich_help_panel=PROBE)] = 100,
         burn_in: Annotated[int, typer.Option(help="Steps run before the analysed window.",
                                              rich_help_panel=PROBE)] = 50,
         seed: Annotated[int, typer.Option(help="Seed of the probe and readout.",
                                           rich_help_panel=PROBE)] = 0,
         input_scale: Annotated[float, typer.Option(help="Std of Gaussian inputs.",
                                                    rich_help_panel=PROBE)] = 1.0,
         state: Annotated[State, typer.Option(help="LSTM: all = [h; c], or the h or c block.")
                          ] = State.all,
         vanish_below: Annotated[float, typer.Option(
             help="Vanishing when the norm at the largest lag is below this.",
             rich_help_panel=THRESHOLDS)] = 1e-4,
         explode_above: Annotated[float, typer.Option(
             help="Exploding when the norm at any lag is above this.",
             rich_help_panel=THRESHOLDS)] = 1e4,
         loss: Annotated[Loss, typer.Option(help="Probe loss: random unit readout of s_T, or "
                                            "MSE / cross-entropy through the file's head.",
                                            rich_help_panel=THRESHOLDS)] = Loss.readout,
         targets: Annotated[Optional[Path], typer.Option(
             help="Targets .npy for --loss mse (B, C) or ce (B,).",
             rich_help_panel=THRESHOLDS)] = None,
         clip_rule: Annotated[ClipRule, typer.Option(help="Rule for the clip threshold.",
                                                     rich_help_panel=THRESHOLDS)
                              ] = ClipRule.pascanu,
         module: Annotated[Optional[list[str]], typer.Option(
             "--module", help="Analyse only this module (repeatable).")] = None,
         save_directions: Annotated[Optional[Path], typer.Option(
             help="Write the exploding directions to this .safetensors file.")] = None,
         dtype: Annotated[Dtype, typer.Option(help="Precision of the analysis.")] = Dtype.float64,
         device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
         max_memory: Annotated[float, typer.Option(help="Refuse analyses needing more GiB.")
                               ] = 8.0,
         key: KeyOpt = None, activation: ActivationOpt = None,
         leak: LeakOpt = None, map_file: MapOpt = None,
         format: FormatOpt = Format.table, output: OutputOpt = None,
         fail_on: Annotated[ProfileFailOn, typer.Option(
             "--fail-on", help="Exit 1 when a recurrence's measured verdict is this.")
                            ] = ProfileFailOn.never,
         plot: PlotOpt = None, quiet: QuietOpt = False) -> None:
    """Per-lag BPTT Jacobian norms on a probe, exploding directions, clip threshold."""
    from .bptt import BpttOptions, bptt as run_bptt
    from .probes import ProbeSpec

    with handled(format):
        kind = "file" if inputs else "tokens" if tokens or tokens_file else "gaussian"
        spec = ProbeSpec(kind=kind, batch=batch, steps=steps, seed=seed, input_scale=input_scale,
                         burn_in=burn_in, path=str(inputs or tokens_file or "") or None)
        options = BpttOptions(lags=lags, probe=spec, state=_value(state), dtype=_value(dtype),
                              device=device, vanish_below=vanish_below,
                              explode_above=explode_above, loss=_value(loss),
                              targets=str(targets) if targets else None,
                              clip_rule=_value(clip_rule), modules=tuple(module or ()),
                              keys=tuple(key or ()), activation=_value(activation),
                              max_memory_gib=max_memory, leak=leak,
                              mapping=str(map_file) if map_file else None)
        _check_plot(plot, format, output)
        with progress(quiet, "bptt") as on_progress:
            report = run_bptt(model, options, on_progress=on_progress)
        if save_directions is not None:
            from .directions import save_directions as write_directions

            write_directions(report, save_directions)
        emit(report, format, output)
        if plot is not None:
            from .analysis import spectrum as run_spectrum
            from .plots import pascanu_bounds, save_plot

            bounds = pascanu_bounds(run_spectrum(model, keys=options.keys,
                                                 activation=options.activation,
                                                 leak=leak, mapping=options.mapping))
            save_plot(report, plot, bounds=bounds)
        matches = PROFILE_FAIL_ON[_value(fail_on)]
        if any(item.verdict in matches for item in report.recurrences):
            raise typer.Exit(1)


class CheckFormat(str, Enum):
    table = "table"
    json = "json"
    markdown = "markdown"
    github = "github"
    junit = "junit"


class CheckFailOn(str, Enum):
    any = "any"
    never = "never"


CONFIG = "Configuration and baseline"


@app.command()
def check(models: Annotated[Optional[list[str]], typer.Argument(
              help="Weights files, folders or globs (default: `models` in the config).",
              show_default=False)] = None,
          config: Annotated[Optional[Path], typer.Option(
              help="TOML file with [tool.rnngrad] (default: the nearest pyproject.toml).",
              rich_help_panel=CONFIG)] = None,
          lags: Annotated[Optional[str], typer.Option(help="Lags to check (default 1..100).")
                          ] = None,
          explode_above: Annotated[Optional[float], typer.Option(
              help="Fail if the per-lag norm exceeds this at any lag.")] = None,
          vanish_below: Annotated[Optional[float], typer.Option(
              help="Fail if the norm at the largest lag is below this.")] = None,
          max_spectral_radius: Annotated[Optional[float], typer.Option(
              help="Fail if ρ (W_hh; gated cells: rest Jacobian) exceeds this.")] = None,
          max_bound: Annotated[Optional[float], typer.Option(
              help="Fail if γ·σ_max exceeds this.")] = None,
          batch: Annotated[Optional[int], typer.Option(rich_help_panel=PROBE)] = None,
          steps: Annotated[Optional[int], typer.Option(rich_help_panel=PROBE)] = None,
          seed: Annotated[Optional[int], typer.Option(rich_help_panel=PROBE)] = None,
          input_scale: Annotated[Optional[float], typer.Option(rich_help_panel=PROBE)] = None,
          inputs: Annotated[Optional[str], typer.Option(help="Probe sequences .npy.",
                                                        rich_help_panel=PROBE)] = None,
          activation: ActivationOpt = None, leak: LeakOpt = None, map_file: MapOpt = None,
          baseline: Annotated[Optional[Path], typer.Option(
              help="Fail on regressions against this baseline.", rich_help_panel=CONFIG)] = None,
          write_baseline: Annotated[Optional[Path], typer.Option(
              help="Save the measured figures as a baseline.", rich_help_panel=CONFIG)] = None,
          radius_tolerance: Annotated[Optional[float], typer.Option(
              help="Baseline: allowed relative rise of ρ (default 0.05).",
              rich_help_panel=CONFIG)] = None,
          norm_drop: Annotated[Optional[float], typer.Option(
              help="Baseline: allowed drop factor of the last-lag norm (default 10).",
              rich_help_panel=CONFIG)] = None,
          norm_rise: Annotated[Optional[float], typer.Option(
              help="Baseline: allowed rise factor of the largest norm (default 10).",
              rich_help_panel=CONFIG)] = None,
          format: Annotated[CheckFormat, typer.Option("--format", "-f", help="Output format.")
                            ] = CheckFormat.table,
          output: OutputOpt = None,
          fail_on: Annotated[CheckFailOn, typer.Option(
              "--fail-on", help="any: exit 1 when a threshold fails; never: always 0.")
                             ] = CheckFailOn.any,
          plot: PlotOpt = None, quiet: QuietOpt = False) -> None:
    """The CI gate: spectrum + bptt of each model against thresholds and a baseline."""
    from .baseline import read_baseline, write_baseline as save_baseline
    from .check import run_check
    from .config import load_config
    from .models import expand_models

    with handled(format):
        _check_plot(plot, format, output)
        loaded = load_config(config)
        cli_values = {"lags": lags, "explode-above": explode_above,
                      "vanish-below": vanish_below, "max-spectral-radius": max_spectral_radius,
                      "max-bound": max_bound, "batch": batch, "steps": steps, "seed": seed,
                      "input-scale": input_scale, "inputs": inputs,
                      "activation": _value(activation), "radius-tolerance": radius_tolerance,
                      "norm-drop": norm_drop, "norm-rise": norm_rise, "leak": leak,
                      "map": str(map_file) if map_file else None,
                      "baseline": str(baseline) if baseline else None}
        defaults = loaded.for_model("", cli_values)
        paths = expand_models(models or list(defaults.models))
        if not paths:
            raise OptionError("no model to check",
                              "pass MODEL paths, or set models = [...] in [tool.rnngrad]")
        configs = [loaded.for_model(path, cli_values) for path in paths]
        reference = read_baseline(Path(defaults.baseline)) if defaults.baseline else None
        with progress(quiet, "check") as on_progress:
            report = run_check(paths, configs, baseline=reference,
                               baseline_name=defaults.baseline, config_source=loaded.source,
                               on_progress=on_progress)
        if write_baseline is not None:
            save_baseline(report, write_baseline)
        emit(report, format, output)
        if plot is not None:
            from .plots import save_plot

            save_plot(report, plot)
        _github_summary(report, _value(format))
        if _value(fail_on) == "any" and not report.ok:
            raise typer.Exit(1)


def _check_plot(plot: str | None, fmt: Any, output: Path | None) -> None:
    """Refuse a bad --plot target (or a missing extra) before a long analysis."""
    if plot is None:
        return
    from .plots import check_target

    if check_target(plot) == "term" and _value(fmt) != "table" and output is None:
        raise OptionError(f"--plot term draws on stdout, where --format {_value(fmt)} goes",
                          "write the report with --output FILE, or plot to a .png or .svg file")


def _github_summary(report: Any, fmt_name: str) -> None:
    """With --format github, append the Markdown summary to $GITHUB_STEP_SUMMARY if set."""
    import os

    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if fmt_name != "github" or not target:
        return
    from .render import render_text

    try:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(render_text(report, "markdown"))
    except OSError as exc:
        raise OptionError(f"GITHUB_STEP_SUMMARY={target}: cannot be written ({exc.strerror})",
                          "check the runner's environment") from None


# --- shared plumbing ------------------------------------------------------------------------


def _value(option: Any) -> Any:
    return option.value if isinstance(option, Enum) else option


def emit(report: Any, fmt: Format, output: Path | None) -> None:
    """Render ``report`` in ``fmt`` to ``output`` (a file) or stdout."""
    fmt_name = _value(fmt)
    if fmt_name == "table":
        from .render.console import render_console

        if output is None:
            render_console(report, Console())
        else:
            with _output_file(output) as handle:
                render_console(report, Console(file=handle, width=100, no_color=True))
        return
    from .render import render_text

    text = render_text(report, fmt_name)
    if output is None:
        sys.stdout.write(text)
    else:
        with _output_file(output) as handle:
            handle.write(text)


@contextlib.contextmanager
def _output_file(path: Path) -> Iterator[Any]:
    try:
        handle = path.open("w", encoding="utf-8")
    except OSError as exc:
        raise OptionError(f"--output {path}: cannot be written ({exc.strerror})",
                          "choose a writable path") from None
    with handle:
        yield handle


@contextlib.contextmanager
def handled(fmt: Format) -> Iterator[None]:
    """Turn an :class:`RnngradError` into one line on stderr (+ JSON error) and exit 2."""
    try:
        yield
    except RnngradError as exc:
        fail(exc.message, exc.hint, json_mode=_value(fmt) == "json")


def fail(message: str, hint: str, *, json_mode: bool) -> None:
    if _DEBUG:
        import traceback

        traceback.print_exc()
    if json_mode:
        from .render.json_report import render_error_json

        sys.stdout.write(render_error_json(message, hint))
    line = f"rnngrad: error: {message}" + (f"; {hint}" if hint else "")
    sys.stderr.write(" ".join(line.split()) + "\n")
    raise typer.Exit(2)


@contextlib.contextmanager
def progress(quiet: bool, what: str) -> Iterator[Callable[[int, int, str], None] | None]:
    """A Rich progress bar on stderr, only when stderr is a terminal and not --quiet."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn(f"{what} {{task.description}}"), BarColumn(),
                   TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                   console=Console(stderr=True), transient=True)
    task = bar.add_task("", total=None)

    def update(done: int, total: int, label: str) -> None:
        bar.update(task, completed=done, total=total, description=label)

    with bar:
        yield update


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script: errors become one line and exit code 2."""
    global _DEBUG
    args = list(sys.argv[1:] if argv is None else argv)
    _DEBUG = "--debug" in args
    args = [arg for arg in args if arg != "--debug"]
    json_mode = _json_requested(args)
    try:
        code = app(args=args, prog_name="rnngrad", standalone_mode=False)
    except (typer.Abort, KeyboardInterrupt):
        sys.stderr.write("rnngrad: aborted\n")
        sys.exit(130)
    except UsageError as exc:
        command = exc.ctx.info_name if exc.ctx is not None and exc.ctx.parent else ""
        _exit_with(exc.format_message(), " ".join(f"see `rnngrad {command} --help`".split()),
                   json_mode)
    except ClickException as exc:
        _exit_with(exc.format_message(), "see `rnngrad --help`", json_mode)
    except RnngradError as exc:
        _exit_with(exc.message, exc.hint, json_mode)
    except MemoryError:
        _exit_with("out of memory", "analyse fewer lags or a smaller --batch", json_mode)
    except Exception as exc:  # a bug: still one line, never a traceback, unless --debug
        if _DEBUG:
            raise
        _exit_with(f"internal error: {type(exc).__name__}: {exc}",
                   "rerun with --debug and report the traceback", json_mode)
    sys.exit(code if isinstance(code, int) else 0)


def _exit_with(message: str, hint: str, json_mode: bool) -> None:
    try:
        fail(message, hint, json_mode=json_mode)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)


def _json_requested(args: list[str]) -> bool:
    pairs = zip(args, args[1:] + [""])
    return any(arg in ("--format=json", "-fjson") or (arg in ("--format", "-f") and nxt == "json")
               for arg, nxt in pairs)
