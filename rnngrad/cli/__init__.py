"""The ``rnngrad`` command: a thin Typer layer over the library.

What lives here: the app and its entry point (:mod:`.app`), the options and plumbing every
command shares (:mod:`.common`: errors to one line and exit 2, output files, progress bars),
and one module per command (:mod:`.inspect`, :mod:`.spectrum`, :mod:`.bptt`, :mod:`.surface`,
:mod:`.lyapunov`, :mod:`.check`): parse options -> the library's options dataclass -> the
analysis -> a renderer -> exit code.

Exit codes (docs/contract.md): 0 ran, 1 a finding at or above ``--fail-on``, 2 any error (one
line on stderr, and a JSON error object on stdout with ``--format json``). ``--debug`` anywhere
on the line shows tracebacks.

Start-up stays in a blink: ``--version`` answers before typer is imported, and no command
module imports torch, NumPy or an analysis until it runs.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script and of ``python -m rnngrad``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args in (["--version"], ["-V"]):
        from rnngrad._version import __version__

        sys.stdout.write(f"rnngrad {__version__}\n")
        sys.exit(0)
    from rnngrad.cli.app import run

    run(args)
