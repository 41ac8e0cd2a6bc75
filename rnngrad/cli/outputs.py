"""Files the command line writes: never one of its inputs, never half-written.

Every output a command writes (``--output``, ``--write-baseline``, ``--plot FILE``,
``--save-directions``, the ``GITHUB_STEP_SUMMARY`` file) goes through :class:`Outputs`:

- :meth:`Outputs.plan`, before the analysis runs, refuses a path that is, or is a hard or
  symbolic link to, an input of the run (model, probe, targets, map, config, baseline, the
  nearest ``pyproject.toml``) or another output of it; a directory, a missing folder or a
  block device is refused with one line naming the path;
- :meth:`Outputs.write` writes a regular file through a temporary file in the target's own
  folder, renamed over the target only once every byte is written: a crash, a full disk or
  Ctrl-C leaves the previous file as it was and no empty or partial file behind. The new file
  keeps the old one's permissions (a new one gets the umask's). A symbolic link is followed:
  the file it points to is replaced, the link stays.
- An existing FIFO or character device (``/dev/null``, a terminal, a pipe to another program)
  and any path under ``/dev/`` or ``/proc/`` (``/dev/stdout``, ``/dev/fd/3``, even when they
  lead to a regular file) is written in place, appending, never replaced by a regular file: a
  report to ``/dev/stdout`` goes where stdout goes, ``>>`` included. A FIFO that nobody
  reads is refused instead of waiting forever.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from rnngrad.errors import OptionError

WRITE_HINT = "choose a writable path"


@dataclass(frozen=True)
class Target:
    """A checked output: its ``path`` as given, the ``option`` that named it, and whether it
    is a ``stream`` (an existing FIFO, a character device or a path under ``/dev/`` or
    ``/proc/``: appended to in place)."""

    path: Path
    option: str
    stream: bool = False


class Outputs:
    """The outputs of one run, checked against its inputs and each other."""

    def __init__(self, inputs: Iterable[str | Path | None]) -> None:
        self._inputs: list[tuple[str, os.stat_result]] = []
        for name in inputs:
            if name is None:
                continue
            try:
                self._inputs.append((str(name), os.stat(name)))
            except (OSError, ValueError):  # not there: the reader will say so
                continue
        self._planned: list[tuple[Target, os.stat_result | None]] = []

    def plan(self, path: str | Path, option: str) -> Target:
        """``path`` checked as an output of this run (see the module docstring)."""
        target = Path(path)
        try:
            info = os.stat(target)
        except FileNotFoundError:
            _check_folder(target, option)
            info = None
        except OSError as exc:
            raise OptionError(f"{option} {target}: cannot be written ({exc.strerror})",
                              WRITE_HINT) from None
        if info is not None:
            self.refuse_inputs(target, option, info)
        checked = Target(target, option, stream=info is not None and _is_stream(
            target, option, info))
        for other, other_info in self._planned:
            same_name = os.path.abspath(other.path) == os.path.abspath(target)
            if same_name or (info is not None and other_info is not None
                             and _same(info, other_info)):
                raise OptionError(f"{option} {target}: {other.option} writes the same file",
                                  "give each output its own file")
        self._planned.append((checked, info))
        return checked

    def refuse_inputs(self, target: Path, option: str, info: os.stat_result) -> None:
        """Refuse ``target`` (stat ``info``) if it is an input, by name or through a link."""
        for name, input_info in self._inputs:
            if _same(info, input_info):
                link = ("" if os.path.abspath(name) == os.path.abspath(target)
                        else f" (the same file as {name}, through a link)")
                raise OptionError(f"{option} {target}: is an input of this run{link}; rnngrad "
                                  "never overwrites its inputs", "write the output to another file")

    def write(self, target: Target, data: str | bytes) -> None:
        """Write ``data`` (text as UTF-8) to ``target``: in place for a stream, else through
        a temporary file renamed over the target once complete."""
        raw = data.encode("utf-8") if isinstance(data, str) else data
        try:
            if target.stream:
                _write_stream(target.path, raw)
            else:
                _write_replacing(target.path, raw)
        except OSError as exc:
            raise OptionError(f"{target.option} {target.path}: cannot be written "
                              f"({_reason(exc)})", _hint(exc)) from None


def plan_summary(path: str, outputs: Outputs) -> Path:
    """The ``GITHUB_STEP_SUMMARY`` file checked before the analysis: a regular file (or one to
    create) that is not an input; a FIFO or a device there is refused, never waited on."""
    option = "GITHUB_STEP_SUMMARY"
    target = Path(path)
    try:
        info = os.stat(target)
    except FileNotFoundError:
        _check_folder(target, option)
        return target
    except OSError as exc:
        raise OptionError(f"{option}={path}: cannot be written ({_reason(exc)})",
                          "check the runner's environment") from None
    if not stat.S_ISREG(info.st_mode):
        raise OptionError(f"{option}={path}: not a regular file (a pipe or a device)",
                          "point it at a file")
    outputs.refuse_inputs(target, option, info)
    return target


def append_summary(target: Path, text: str) -> None:
    """Append ``text`` to the summary file :func:`plan_summary` accepted."""
    option = "GITHUB_STEP_SUMMARY"
    try:
        descriptor = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK
                             | getattr(os, "O_CLOEXEC", 0), 0o666)
        with os.fdopen(descriptor, "ab") as handle:
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):  # replaced since the check
                raise OptionError(f"{option}={target}: not a regular file (a pipe or a "
                                  "device)", "point it at a file")
            handle.write(text.encode("utf-8"))
    except OSError as exc:
        raise OptionError(f"{option}={target}: cannot be written ({_reason(exc)})",
                          _hint(exc)) from None


def _check_folder(target: Path, option: str) -> None:
    """A new file's folder must exist (a dangling link: the folder it points into)."""
    real = Path(os.path.realpath(target))
    folder = real.parent
    if not folder.exists():
        raise OptionError(f"{option} {target}: the folder {folder} does not exist",
                          "create it first, or choose another path")
    if not folder.is_dir():
        raise OptionError(f"{option} {target}: {folder} is not a folder", WRITE_HINT)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OptionError(f"{option} {target}: cannot be written (the folder {folder} is not "
                          "writable)", WRITE_HINT)


def _is_stream(target: Path, option: str, info: os.stat_result) -> bool:
    mode = info.st_mode
    if stat.S_ISDIR(mode):
        raise OptionError(f"{option} {target}: is a directory", "name a file in it")
    if stat.S_ISREG(mode) and not _special(target):
        _check_folder(target, option)
        return False
    if stat.S_ISREG(mode) or stat.S_ISFIFO(mode) or stat.S_ISCHR(mode):
        return True
    raise OptionError(f"{option} {target}: is a block device or socket; rnngrad writes reports "
                      "only to files, pipes and terminals", "choose a file")


def _special(target: Path) -> bool:
    """A path into the kernel's file systems (``/dev/stdout``, ``/proc/self/fd/1``): it
    names an open file, which renaming a temporary file over would cut off."""
    parts = Path(os.path.abspath(target)).parts
    return len(parts) > 1 and parts[1] in ("dev", "proc")


def _same(first: os.stat_result, second: os.stat_result) -> bool:
    return (first.st_dev, first.st_ino) == (second.st_dev, second.st_ino)


def _write_stream(path: Path, raw: bytes) -> None:
    """Append to an existing FIFO, device or kernel path; a FIFO without a reader fails at
    once (ENXIO) instead of blocking."""
    sys.stdout.flush()  # /dev/stdout: what rnngrad printed before comes first
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK
                         | getattr(os, "O_CLOEXEC", 0))
    try:
        os.set_blocking(descriptor, True)
        view = memoryview(raw)
        while view:
            view = view[os.write(descriptor, view):]
    finally:
        os.close(descriptor)


def _write_replacing(path: Path, raw: bytes) -> None:
    """Write a temporary file next to the target, then rename it over the target."""
    real = Path(os.path.realpath(path))
    mode = _mode_for(real)
    descriptor, temporary = tempfile.mkstemp(dir=real.parent, prefix=f".{real.name}.",
                                             suffix=".rnngrad-tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(raw)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
        os.replace(temporary, real)
    except BaseException:  # a full disk, Ctrl-C, anything: the old file stays, no debris
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _mode_for(real: Path) -> int:
    """The permissions the written file gets: the old file's, else what the umask allows."""
    try:
        return stat.S_IMODE(os.stat(real).st_mode)
    except OSError:
        mask = os.umask(0o022)
        os.umask(mask)
        return 0o666 & ~mask


def _reason(exc: OSError) -> str:
    if exc.errno == errno.ENXIO:
        return "a pipe that no program is reading"
    return exc.strerror or str(exc)


def _hint(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "free some space or choose another disk; the previous file is unchanged"
    if exc.errno == errno.ENXIO:
        return "start the program that reads the pipe first"
    return WRITE_HINT
