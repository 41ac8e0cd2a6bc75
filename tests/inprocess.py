"""The command line run in this process: ``rnngrad.cli.main`` with its exit code, stdout
and stderr captured, as a user's shell would see them, without a 3 s torch import per call."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import signal
import threading
from typing import Iterator


@dataclasses.dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return f"exit {self.code}\nstdout:\n{self.stdout[-2000:]}\nstderr:\n{self.stderr[-2000:]}"


def invoke(*args: object, env: dict | None = None, encoding: str = "utf-8") -> Outcome:
    """``rnngrad ARGS`` in-process; ``env`` entries are set (None: removed) for the call.

    stdout and stderr are real text streams of ``encoding`` with strict errors, as a
    terminal's are (``"ascii"``: as with ``PYTHONIOENCODING=ascii``), so that text a real
    stream cannot encode fails here as it would there."""
    from rnngrad.cli import main

    out, err = _stream(encoding), _stream(encoding)
    code = 0
    with _environment(env or {}), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(arg) for arg in args])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return Outcome(code, _text(out), _text(err))


def _stream(encoding: str) -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BytesIO(), encoding=encoding, errors="strict",
                            write_through=True)


def _text(stream: io.TextIOWrapper) -> str:
    stream.flush()
    return stream.buffer.getvalue().decode(stream.encoding)


@contextlib.contextmanager
def _environment(changes: dict) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in changes}
    try:
        for name, value in changes.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = str(value)
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class Hang(BaseException):
    """Raised by the alarm of :func:`time_limit`; a BaseException, so that no ``except
    Exception`` in the code under test turns it into an ordinary error."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Interrupt the main thread after ``seconds`` (a blocking open of a FIFO included);
    elsewhere, or without ``setitimer``, no limit."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(
            signal, "setitimer"):
        yield
        return

    def on_alarm(signum, frame):
        raise Hang(f"no answer within {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
