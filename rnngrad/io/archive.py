"""Zip archives (PyTorch files, ``.npz``, ``.keras``): the central directory, read safely.

A zip's central directory declares every member's inflated size before anything is inflated:
:func:`check_declared_sizes` refuses an archive whose declarations are absurd (a zip bomb, one
big member or many small ones) from those numbers alone.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from pathlib import Path

from rnngrad.errors import LoadError

# RNN weight files are megabytes to a few gigabytes; rnngrad never reads more from one file.
MAX_FILE_BYTES = 64 * 1024**3
# Weights do not compress much (float noise: about 1.1×); more than this, over more than
# ZIP_BOMB_FLOOR bytes, is a file of zeros built to be inflated.
MAX_ZIP_RATIO = 1000
ZIP_BOMB_FLOOR = 64 * 1024**2

# zipfile raises many types for damaged or hostile archives (NotImplementedError for an
# unknown compression method or version byte, KeyError for a missing member, zlib.error for
# a damaged deflate stream, ...).
ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError,
              NotImplementedError, RuntimeError, KeyError, UnicodeDecodeError, zlib.error,
              struct.error)


def zip_members(file: Path, hint: str) -> list[zipfile.ZipInfo]:
    """The archive's central directory; a damaged archive is a LoadError with ``hint``."""
    try:
        with zipfile.ZipFile(file) as archive:
            return archive.infolist()
    except ZIP_ERRORS as exc:
        raise LoadError(f"{file}: damaged zip archive ({exc})", hint) from None


def check_declared_sizes(file: Path, members: list[zipfile.ZipInfo], hint: str) -> int:
    """Refuse a zip bomb from the central directory alone; return the declared total.

    Refused: a declared total past :data:`MAX_FILE_BYTES`, and a member, or the archive as a
    whole, that inflates more than :data:`MAX_ZIP_RATIO` times past :data:`ZIP_BOMB_FLOOR`
    (200 members of 60 MiB each pass a per-member check; their total does not).
    """
    total = sum(info.file_size for info in members)
    packed = sum(info.compress_size for info in members)
    if total > MAX_FILE_BYTES:
        raise LoadError(f"{file}: the archive declares {total / 1024**3:.0f} GiB of members, "
                        f"more than the {MAX_FILE_BYTES // 1024**3} GiB rnngrad reads from a "
                        "file (zip bomb?)", hint)
    whole = ("its members together", total, packed)
    for what, size, stored in [(f"member {info.filename!r}", info.file_size, info.compress_size)
                               for info in members] + [whole]:
        if size > ZIP_BOMB_FLOOR and size > MAX_ZIP_RATIO * max(stored, 1):
            raise LoadError(f"{file}: {what} would inflate to {size / 1024**3:.1f} GiB "
                            f"from {stored:,} bytes (zip bomb?)", hint)
    return total
