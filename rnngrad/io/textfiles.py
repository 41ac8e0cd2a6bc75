"""Files a user names by option (``--config``, ``--map``, ``--baseline``, ``--inputs``,
``--targets``, JSON sidecars): opened only when they are regular files, never read past a cap.

A FIFO or a device (``/dev/zero``) would hang rnngrad or feed it forever; a huge file is not a
config. Both are refused with one line naming the option and the path, before a byte is read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from rnngrad.errors import OptionError


def open_regular(path: Path | str, option: str, max_bytes: int | None = None) -> BinaryIO:
    """``path`` opened for reading if it is a regular file of at most ``max_bytes`` (None: any
    size), else an OptionError naming ``option``. The caller closes the handle."""
    file = Path(path)
    try:
        # O_NONBLOCK: opening a FIFO with no writer must not block before fstat can refuse it.
        descriptor = os.open(file, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise OptionError(f"{option} {file}: no such file", "check the path") from None
    except IsADirectoryError:
        raise OptionError(f"{option} {file}: is a directory, not a file", "name a file") from None
    except OSError as exc:
        raise OptionError(f"{option} {file}: cannot be read ({exc.strerror})",
                          "check the path and its permissions") from None
    handle = os.fdopen(descriptor, "rb")
    try:
        info = os.fstat(handle.fileno())
        if stat.S_ISDIR(info.st_mode):
            raise OptionError(f"{option} {file}: is a directory, not a file", "name a file")
        if not stat.S_ISREG(info.st_mode):
            raise OptionError(f"{option} {file}: not a regular file (a pipe or a device)",
                              "name a regular file")
        if max_bytes is not None and info.st_size > max_bytes:
            raise OptionError(f"{option} {file}: {info.st_size:,} bytes, more than the "
                              f"{max_bytes:,} such a file can need", "check the path")
        os.set_blocking(descriptor, True)
    except BaseException:
        handle.close()
        raise
    return handle


def read_bytes(path: Path | str, option: str, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``, or an OptionError."""
    with open_regular(path, option, max_bytes) as handle:
        try:
            data = handle.read(max_bytes + 1)
        except OSError as exc:
            raise OptionError(f"{option} {path}: cannot be read ({exc.strerror})",
                              "check the file") from None
    if len(data) > max_bytes:
        raise OptionError(f"{option} {path}: grew past {max_bytes:,} bytes while being read",
                          "check the path")
    return data


def read_text(path: Path | str, option: str, max_bytes: int) -> str:
    """The UTF-8 text of a regular file of at most ``max_bytes``, or an OptionError."""
    data = read_bytes(path, option, max_bytes)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise OptionError(f"{option} {path}: not UTF-8 text ({exc.reason} at byte {exc.start})",
                          "save the file as UTF-8") from None
