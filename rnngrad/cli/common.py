"""What every command shares: its options, errors as one line, output files, progress bars.

Every default shown in ``--help`` is read from the library's options dataclasses (the one
place it is written); an option left out on the command line is not passed on, so the
library's default applies.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass, fields
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Callable, Iterator, Optional

import typer

from rnngrad.bptt.options import BpttOptions
from rnngrad.cli.outputs import Outputs, Target
from rnngrad.errors import OptionError, RnngradError
from rnngrad.probes.spec import DEFAULT_BURN_IN, LONG_PROBE, ProbeSpec
from rnngrad.spectrum.options import SpectrumOptions

DEBUG = False
BPTT = BpttOptions()
PROBE = ProbeSpec()
SPECTRUM = SpectrumOptions()

PROBE_PANEL = "Probe"
THRESHOLDS_PANEL = "Thresholds and loss"
READING_PANEL = "Reading the model"


def with_default(text: str, value: Any) -> str:
    """Help text ending in the default as ``--help`` shows it (read from the options
    dataclasses; the option itself defaults to None, "not given")."""
    shown = f"{value:g}" if isinstance(value, float) else str(value)
    return f"{text} \\[default: {shown}]"


class Format(str, Enum):
    """``--format``: a Rich ``table``, ``json`` (docs/contract.md) or ``markdown``."""

    table = "table"
    json = "json"
    markdown = "markdown"


class Activation(str, Enum):
    """``--activation``: the nonlinearity of Elman layers, ``tanh`` or ``relu`` (as ``nn.RNN``)."""

    tanh = "tanh"
    relu = "relu"


ModelArg = Annotated[Optional[Path], typer.Argument(
    help="Weights file: .safetensors, .pt/.pth/.bin state dict, .npz, Keras .h5/.keras, or "
         ".onnx (default: the one model `models` in \\[tool.rnngrad] names).",
    show_default=False, metavar="MODEL")]
LeakOpt = Annotated[Optional[float], typer.Option(
    "--leak", help="Run Elman layers as leaky rate cells x' = (1−α)x + α(W φ(x) + W_in u + b) "
                   "with α = dt/τ in (0, 1]; also overrides α of mapped/recognised rate models.",
    metavar="ALPHA", rich_help_panel=READING_PANEL)]
MapOpt = Annotated[Optional[Path], typer.Option(
    "--map", help="TOML file describing a research checkpoint's recurrence: recurrent/input/bias "
                  "arrays, nonlinearity, leak (or dt, tau), orientation.",
    metavar="FILE.toml", rich_help_panel=READING_PANEL)]
KeyOpt = Annotated[Optional[list[str]], typer.Option(
    "--key", help="Analyse this square matrix as W_rec (repeatable).", metavar="NAME",
    rich_help_panel=READING_PANEL)]
ActivationOpt = Annotated[Optional[Activation], typer.Option(
    "--activation", help="Nonlinearity of Elman layers (default: what the file says, else "
                         "tanh).", rich_help_panel=READING_PANEL)]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
OutputOpt = Annotated[Optional[Path], typer.Option(
    "--output", "-o", help="Write the output to FILE instead of stdout.", metavar="FILE")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or notes.")]
PlotOpt = Annotated[Optional[str], typer.Option(
    "--plot", help='Draw the result: FILE.png, FILE.svg, or "term" (needs rnngrad\\[plot]).',
    metavar="TARGET")]
MaxMemoryOpt = Annotated[Optional[float], typer.Option(
    "--max-memory", metavar="GIB",
    help=with_default("Refuse analyses needing more GiB (estimated before allocating).",
                      SPECTRUM.max_memory))]
LagsOpt = Annotated[Optional[str], typer.Option(
    "--lags", "-l", metavar="SPEC",
    help=with_default("Lags: 1..100, 1..1000:10, 1,2,5,10 or log:1..1000:20.", BPTT.lags))]
InputsOpt = Annotated[Optional[Path], typer.Option(
    "--inputs", help="Probe sequences .npy, (B, T, I) or (T, I).", metavar="FILE.npy",
    rich_help_panel=PROBE_PANEL)]
TokensOpt = Annotated[bool, typer.Option(
    "--tokens", help="Random token ids through the file's embedding.",
    rich_help_panel=PROBE_PANEL)]
TokensFileOpt = Annotated[Optional[Path], typer.Option(
    "--tokens-file", help="Token ids .npy (B, T) through the embedding.", metavar="FILE.npy",
    rich_help_panel=PROBE_PANEL)]
BatchOpt = Annotated[Optional[int], typer.Option(
    "--batch", help=with_default("Probe sequences.", PROBE.batch), rich_help_panel=PROBE_PANEL)]
StepsOpt = Annotated[Optional[int], typer.Option(
    "--steps", help=with_default("Analysed steps, the longest lag possible.", "the largest lag"),
    rich_help_panel=PROBE_PANEL)]
BurnInOpt = Annotated[Optional[int], typer.Option(
    "--burn-in", rich_help_panel=PROBE_PANEL,
    help=with_default("Steps run before the analysed window, so the state leaves zero.",
                      f"{DEFAULT_BURN_IN} for {LONG_PROBE}+ steps, else 0"))]
SeedOpt = Annotated[Optional[int], typer.Option(
    "--seed", help=with_default("Seed of the probe, readout and random targets.", PROBE.seed),
    rich_help_panel=PROBE_PANEL)]
InputScaleOpt = Annotated[Optional[float], typer.Option(
    "--input-scale", help=with_default("Standard deviation of Gaussian inputs.",
                                       PROBE.input_scale), rich_help_panel=PROBE_PANEL)]
InitialStateOpt = Annotated[Optional[str], typer.Option(
    "--initial-state", metavar="VALUE|FILE.npy",
    help="Starting state s_0: a number for every entry, or .npy (S,), (R, S) or (R, B, S) "
         "with R recurrences in PyTorch's h0 order (LSTM: \\[h0; c0]). Default: zero.",
    rich_help_panel=PROBE_PANEL, show_default=False)]


def value(option: Any) -> Any:
    """An option's plain value (Enum members to their value, paths to strings)."""
    if isinstance(option, Enum):
        return option.value
    if isinstance(option, Path):
        return str(option)
    if isinstance(option, list):
        return tuple(value(item) for item in option)
    return option


def given(cls: type, **options: Any) -> dict[str, Any]:
    """The options actually given on the command line (not None, not an empty list), as
    plain values, for the fields of ``cls``; unknown names are a bug here, not a user error."""
    names = {spec.name for spec in fields(cls)}
    unknown = set(options) - names
    assert not unknown, f"not fields of {cls.__name__}: {unknown}"
    return {name: value(option) for name, option in options.items()
            if option is not None and option != [] and option is not False}


def probe_spec(**options: Any) -> ProbeSpec:
    """The probe from the probe options given (``inputs``, ``tokens``, ``batch``, ...)."""
    return ProbeSpec(**given(ProbeSpec, **options))


def model_path(model: Path | None) -> str:
    """MODEL, or the one model ``models`` in ``[tool.rnngrad]`` names."""
    if model is not None:
        return str(model)
    from rnngrad.gate.config import load_config
    from rnngrad.gate.models import expand_models

    loaded = load_config()
    configured = expand_models(list(loaded.for_model("", {}).models))
    if not configured:
        where = f"in {loaded.source}" if loaded.source else "(no pyproject.toml found)"
        raise OptionError(f"no MODEL given, and no `models` in [tool.rnngrad] {where}",
                          "name a weights file, e.g. rnngrad bptt model.safetensors")
    if len(configured) > 1:
        shown = ", ".join(configured[:4]) + (", ..." if len(configured) > 4 else "")
        raise OptionError(f"no MODEL given, and [tool.rnngrad] names {len(configured)} models "
                          f"({shown})", "name one of them, or run `rnngrad check` for all")
    return configured[0]


# --- errors ---------------------------------------------------------------------------------


@contextlib.contextmanager
def handled(fmt: Any) -> Iterator[None]:
    """Turn an :class:`RnngradError` into one line on stderr (+ JSON error) and exit 2."""
    try:
        yield
    except RnngradError as exc:
        fail(exc.message, exc.hint, json_mode=value(fmt) == "json")


def fail(message: str, hint: str, *, json_mode: bool) -> None:
    """One line on stderr (file text made plain), the JSON error object too, exit 2."""
    from rnngrad.render.text import plain

    if DEBUG:
        import traceback

        traceback.print_exc()
    if json_mode:
        from rnngrad.render.json_report import render_error_json

        with contextlib.suppress(OSError):  # stdout itself may be what failed
            sys.stdout.write(render_error_json(plain(message), plain(hint)))
            sys.stdout.flush()
    error_line(message, hint)
    raise typer.Exit(2)


def error_line(message: str, hint: str) -> None:
    """``rnngrad: error: message; hint`` as one line on stderr, file text made plain."""
    from rnngrad.render.text import plain

    line = f"rnngrad: error: {message}" + (f"; {hint}" if hint else "")
    with contextlib.suppress(OSError):
        sys.stderr.write(" ".join(plain(line).split()) + "\n")


# --- output ---------------------------------------------------------------------------------


def outputs_for(*inputs: str | Path | None) -> Outputs:
    """The output guard of a run that reads ``inputs`` (None entries ignored); the nearest
    ``pyproject.toml`` always counts as an input."""
    from rnngrad.gate.config import find_pyproject

    return Outputs([*inputs, find_pyproject(Path.cwd())])


def planned(outputs: Outputs, path: Path | str | None, option: str) -> Target | None:
    """``path`` checked as an output (None when the option was not given)."""
    return outputs.plan(path, option) if path is not None else None


def emit(report: Any, fmt: Any, output: Target | None, outputs: Outputs, *,
         quiet: bool = False) -> None:
    """Render ``report`` in ``fmt`` to ``output`` (a checked file) or stdout; ``quiet`` leaves
    the notes out of the table and Markdown (machine formats keep everything)."""
    from dataclasses import replace

    from rnngrad.render import renderer

    fmt_name = value(fmt)
    if quiet and fmt_name in ("table", "markdown") and getattr(report, "notes", None):
        report = replace(report, notes=())
    if output is not None:
        outputs.write(output, renderer(fmt_name).render(report))
        return
    try:
        if fmt_name == "table":
            from rnngrad.render.console import ConsoleRenderer

            ConsoleRenderer().print(report, terminal_console())
        else:
            sys.stdout.write(renderer(fmt_name).render(report))
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:  # a full disk behind a redirection: one line, not a traceback
        raise OptionError(f"stdout cannot be written ({exc.strerror})",
                          "check where the output goes (a full disk?)") from None


@dataclass(frozen=True)
class ReportPlan:
    """Where a command's report goes, checked before the analysis runs: the output guard of
    its inputs, the ``--output`` file and the ``--plot`` target (None: stdout, no file)."""

    outputs: Outputs
    target: Target | None
    picture: Target | None

    def show(self, report: Any, fmt: Any, plot: str | None, *, quiet: bool = False) -> None:
        """Render the report (:func:`emit`) and draw its ``--plot`` (:func:`draw_plot`)."""
        emit(report, fmt, self.target, self.outputs, quiet=quiet)
        draw_plot(report, plot, self.picture, self.outputs)


def plan_report(inputs: tuple[str | Path | None, ...] | list, fmt: Any, output: Path | None,
                plot: str | None = None) -> ReportPlan:
    """The :class:`ReportPlan` of a run that reads ``inputs``: nothing it writes may be one of
    them, and a bad ``--output`` or ``--plot`` is refused before the analysis."""
    outputs = outputs_for(*inputs)
    target = planned(outputs, output, "--output")
    return ReportPlan(outputs, target, plan_plot(plot, fmt, target, outputs))


def terminal_console() -> Any:
    """Rich's console on stdout; a width of 0 or nonsense (``COLUMNS=0``) falls back to 80
    columns instead of printing nothing."""
    from rich.console import Console

    console = Console()
    if console.width < 20:
        console = Console(width=80)
    return console


def plan_plot(plot: str | None, fmt: Any, output: Target | None,
              outputs: Outputs) -> Target | None:
    """Refuse a bad --plot target (or a missing extra) before a long analysis; the checked
    file, or None for ``--plot term`` and no plot."""
    if plot is None:
        return None
    from rnngrad.plots import check_target

    if check_target(plot) == "term":
        if value(fmt) != "table" and output is None:
            raise OptionError(f"--plot term draws on stdout, where --format {value(fmt)} goes",
                              "write the report with --output FILE, or plot to a .png or .svg "
                              "file")
        return None
    return outputs.plan(plot, "--plot")


def draw_plot(report: Any, plot: str | None, target: Target | None, outputs: Outputs) -> None:
    """Draw ``report`` for ``--plot``: on the terminal, or into the checked file."""
    if plot is None:
        return
    from rnngrad.plots import plot_bytes, save_plot
    from rnngrad.plots._common import target_kind

    if target is None:
        save_plot(report, "term")
    else:
        outputs.write(target, plot_bytes(report, target_kind(plot)))


@contextlib.contextmanager
def progress(quiet: bool, what: str) -> Iterator[Callable[[int, int, str], None] | None]:
    """A Rich progress bar on stderr, only when stderr is a terminal and not --quiet."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn(f"{what} {{task.description}}"), BarColumn(),
                   TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                   console=Console(stderr=True), transient=True)
    task = bar.add_task("", total=None)

    def update(done: int, total: int, label: str) -> None:
        from rnngrad.render.text import plain

        bar.update(task, completed=done, total=total, description=plain(label))

    with bar:
        yield update
