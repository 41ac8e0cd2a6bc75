"""The ``rnngrad`` command: a thin Typer layer over the library.

What lives here: the app and its entry point (:mod:`.app`), the options and plumbing every
command shares (:mod:`.common`: errors to one line and exit 2, progress bars), the guard of
every file a command writes (:mod:`.outputs`: never an input, never half-written), and one
module per command (:mod:`.inspect`, :mod:`.spectrum`, :mod:`.bptt`, :mod:`.surface`,
:mod:`.lyapunov`, :mod:`.check`): parse options -> the library's options dataclass -> the
analysis -> a renderer -> exit code.

Exit codes (docs/contract.md): 0 ran, 1 a finding at or above ``--fail-on``, 2 any error (one
line on stderr, and a JSON error object on stdout with ``--format json``), 130 Ctrl-C (one
line, at any moment). ``--debug`` anywhere on the line shows tracebacks and library warnings.

Start-up stays in a blink: ``--version`` answers before typer is imported, and no command
module imports torch, NumPy or an analysis until it runs.
"""

from __future__ import annotations

import signal
import sys


class Interrupted(BaseException):
    """Ctrl-C, raised by rnngrad's own SIGINT handler: unlike KeyboardInterrupt, no library on
    the way (click prints a blank line for it) catches it before :func:`main` does."""


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script and of ``python -m rnngrad``."""
    previous = _on_sigint(_interrupt)
    try:
        _run(list(sys.argv[1:] if argv is None else argv))
    except (Interrupted, KeyboardInterrupt):
        _say("rnngrad: aborted (Ctrl-C)\n")
        sys.exit(130)
    finally:
        # The console script is about to exit: a late Ctrl-C must not print a traceback from
        # the interpreter's shutdown. In-process callers get their own handler back.
        _on_sigint(signal.SIG_IGN if argv is None else previous)


def _run(args: list[str]) -> None:
    if args in (["--version"], ["-V"]):
        from rnngrad._version import __version__

        sys.stdout.write(f"rnngrad {__version__}\n")
        sys.exit(0)
    _plain_streams()
    from rnngrad.cli.app import run

    run(args)


def _interrupt(signum: int, frame: object) -> None:
    """Ctrl-C: raise :class:`Interrupted`, or, while a module is being imported, leave at once
    (an exception raised inside torch's import unwinds through its C++ extension, which
    aborts the process with a C++ traceback; nothing has been written yet at that point)."""
    if _importing(frame):
        import os

        _say("rnngrad: aborted (Ctrl-C)\n")
        os._exit(130)
    raise Interrupted()


def _importing(frame: object) -> bool:
    """Whether the interrupted code runs inside an import."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):  # type: ignore[attr-defined]
            return True
        frame = frame.f_back  # type: ignore[attr-defined]
    return False


def _on_sigint(handler):
    """Install ``handler`` for SIGINT (main thread only); the previous one, or None."""
    try:
        return signal.signal(signal.SIGINT, handler)
    except (ValueError, TypeError):  # not the main thread, or no previous Python handler
        return None


def _say(text: str) -> None:
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _plain_streams() -> None:
    """With an ASCII-only locale (``LC_ALL=C`` without UTF-8, ``PYTHONIOENCODING=ascii``),
    characters the streams cannot encode (ρ, σ, —, box drawing) are written as ``?`` instead
    of ending the run with a UnicodeEncodeError."""
    for stream in (sys.stdout, sys.stderr):
        encoding = getattr(stream, "encoding", None) or "ascii"
        try:
            "ρσ—…━".encode(encoding)
        except (UnicodeEncodeError, LookupError):
            reconfigure = getattr(stream, "reconfigure", None)
            if reconfigure is not None:
                reconfigure(errors="replace")
