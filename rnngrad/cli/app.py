"""The Typer app: the root callback, the commands, and :func:`run` (errors -> exit codes)."""

from __future__ import annotations

import sys
import warnings
from typing import Annotated

import typer

from rnngrad._version import __version__
from rnngrad.cli import common
from rnngrad.errors import RnngradError
from rnngrad.limits import allocation_failed

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
    from rnngrad.cli import bptt, check, inspect, lyapunov, merge, spectrum, surface

    for module in (inspect, spectrum, bptt, surface, lyapunov, check, merge):
        app.command(name=module.NAME)(module.command)


_register()


def run(args: list[str]) -> None:
    """Run the app on ``args``: every error becomes one line on stderr and exit code 2."""
    common.DEBUG = "--debug" in args
    args = [arg for arg in args if arg != "--debug"]
    json_mode = _json_requested(args)
    if not args:  # bare `rnngrad`: the help, as asked for, not an error
        args = ["--help"]
    with warnings.catch_warnings():
        if not common.DEBUG:  # numpy, torch, h5py, matplotlib: never extra lines on stderr
            warnings.simplefilter("ignore")
        code = _invoke(args, json_mode)
    _flush_stdout()
    sys.exit(code)


def _invoke(args: list[str], json_mode: bool) -> int:
    """The app's exit code (errors already written as one line)."""
    try:
        code = app(args=args, prog_name="rnngrad", standalone_mode=False)
    except typer.Abort:
        raise KeyboardInterrupt from None  # click's word for Ctrl-C: main() says it
    except UsageError as exc:
        return _exit_with(exc.format_message().rstrip("."),
                          f"see `{_command_path(exc, args)} --help`", json_mode)
    except ClickException as exc:
        return _exit_with(exc.format_message(), "see `rnngrad --help`", json_mode)
    except RnngradError as exc:
        return _exit_with(exc.message, exc.hint, json_mode)
    except MemoryError:
        return _exit_with("out of memory", "analyse fewer lags or a smaller --batch", json_mode)
    except RuntimeError as exc:
        if not allocation_failed(exc):
            return _internal_error(exc, json_mode)
        # torch's allocator says so in a RuntimeError, past what the estimates foresaw (an
        # address-space limit below --max-memory, other processes)
        return _exit_with("out of memory: the system refused an allocation the --max-memory "
                          "estimate allowed", "use a smaller --batch or --steps, or lower "
                          "--max-memory to what this machine can give", json_mode)
    except BrokenPipeError:
        return _stdout_closed()
    except typer.Exit as exc:
        return exc.exit_code
    except Exception as exc:  # a bug: still one line, never a traceback, unless --debug
        return _internal_error(exc, json_mode)
    if code == 130:  # typer's silent word for a KeyboardInterrupt: main() says it
        raise KeyboardInterrupt
    return code if isinstance(code, int) else 0


def _internal_error(exc: Exception, json_mode: bool) -> int:
    """A bug: still one line, never a traceback, unless --debug."""
    if common.DEBUG:
        raise exc
    return _exit_with(f"internal error: {type(exc).__name__}: {exc}",
                      "rerun with --debug and report the traceback", json_mode)


def _command_path(exc: UsageError, args: list[str]) -> str:
    """``rnngrad CMD`` for the command a usage error belongs to (``rnngrad`` at the root)."""
    names = {command.name for command in app.registered_commands}
    if exc.ctx is not None and exc.ctx.parent is not None:
        return f"rnngrad {exc.ctx.info_name}"
    command = next((arg for arg in args if not arg.startswith("-")), "")
    return f"rnngrad {command}" if command in names else "rnngrad"


def _flush_stdout() -> None:
    """Flush stdout now, so that a reader gone away (``| head``) or a full disk is one line
    or a quiet exit, not Python's "Exception ignored" at shutdown."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        sys.exit(_stdout_closed())
    except OSError as exc:
        common.error_line(f"stdout cannot be written ({exc.strerror})",
                          "check where the output goes")
        sys.exit(2)


def _stdout_closed() -> int:
    """The reader of stdout went away: stop quietly, as a Unix tool does (SIGPIPE's 141)."""
    import os

    try:  # what is still buffered must not fail again at shutdown
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 141


def _exit_with(message: str, hint: str, json_mode: bool) -> int:
    try:
        common.fail(message, hint, json_mode=json_mode)
    except typer.Exit as exc:
        return exc.exit_code
    return 2


def _json_requested(args: list[str]) -> bool:
    pairs = zip(args, args[1:] + [""])
    return any(arg in ("--format=json", "-fjson") or (arg in ("--format", "-f") and nxt == "json")
               for arg, nxt in pairs)
