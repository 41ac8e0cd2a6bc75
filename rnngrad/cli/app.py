"""The Typer app: the root callback, the commands, and :func:`run` (errors -> exit codes)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from rnngrad._version import __version__
from rnngrad.cli import common
from rnngrad.errors import RnngradError

try:  # typer >= 0.20 vendors click; older releases use the click package
    from typer._click.exceptions import ClickException, UsageError
except ImportError:  # pragma: no cover - depends on the installed typer
    from click.exceptions import ClickException, UsageError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Will your RNN's gradients vanish or explode? Spectra, per-lag BPTT "
                       "Jacobians and clipping advice from the weights file. Add --debug "
                       "anywhere to see tracebacks.")


def _version(show: bool) -> None:
    if show:
        typer.echo(f"rnngrad {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", "-V", callback=_version,
                                                is_eager=True,
                                                help="Show the version and exit.")] = False) -> None:
    """rnngrad: vanishing and exploding gradients of RNN weights."""


def _register() -> None:
    from rnngrad.cli import bptt, check, inspect, merge, spectrum

    for module in (inspect, spectrum, bptt, check, merge):
        app.command(name=module.NAME)(module.command)


_register()


def run(args: list[str]) -> None:
    """Run the app on ``args``: every error becomes one line on stderr and exit code 2."""
    common.DEBUG = "--debug" in args
    args = [arg for arg in args if arg != "--debug"]
    json_mode = _json_requested(args)
    if not args:  # bare `rnngrad`: the help, as asked for, not an error
        args = ["--help"]
    try:
        code = app(args=args, prog_name="rnngrad", standalone_mode=False)
    except (typer.Abort, KeyboardInterrupt):
        sys.stderr.write("rnngrad: aborted\n")
        sys.exit(130)
    except UsageError as exc:
        _exit_with(exc.format_message().rstrip("."), f"see `{_command_path(exc, args)} --help`",
                   json_mode)
    except ClickException as exc:
        _exit_with(exc.format_message(), "see `rnngrad --help`", json_mode)
    except RnngradError as exc:
        _exit_with(exc.message, exc.hint, json_mode)
    except MemoryError:
        _exit_with("out of memory", "analyse fewer lags or a smaller --batch", json_mode)
    except Exception as exc:  # a bug: still one line, never a traceback, unless --debug
        if common.DEBUG:
            raise
        _exit_with(f"internal error: {type(exc).__name__}: {exc}",
                   "rerun with --debug and report the traceback", json_mode)
    sys.exit(code if isinstance(code, int) else 0)


def _command_path(exc: UsageError, args: list[str]) -> str:
    """``rnngrad CMD`` for the command a usage error belongs to (``rnngrad`` at the root)."""
    from rnngrad.cli import bptt, check, inspect, merge, spectrum

    names = {module.NAME for module in (inspect, spectrum, bptt, check, merge)}
    if exc.ctx is not None and exc.ctx.parent is not None:
        return f"rnngrad {exc.ctx.info_name}"
    command = next((arg for arg in args if not arg.startswith("-")), "")
    return f"rnngrad {command}" if command in names else "rnngrad"


def _exit_with(message: str, hint: str, json_mode: bool) -> None:
    try:
        common.fail(message, hint, json_mode=json_mode)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)


def _json_requested(args: list[str]) -> bool:
    pairs = zip(args, args[1:] + [""])
    return any(arg in ("--format=json", "-fjson") or (arg in ("--format", "-f") and nxt == "json")
               for arg, nxt in pairs)
