"""Zip archives (PyTorch files, ``.npz``, ``.keras``): the central directory, read safely."""

from __future__ import annotations

import zipfile
from pathlib import Path

from rnngrad.errors import LoadError

# zipfile raises many types for damaged or hostile archives (NotImplementedError for an
# unknown compression method or version byte, KeyError for a missing member, ...).
ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError,
              NotImplementedError, RuntimeError, KeyError, UnicodeDecodeError)


def zip_members(file: Path, hint: str) -> list[zipfile.ZipInfo]:
    """The archive's central directory; a damaged archive is a LoadError with ``hint``."""
    try:
        with zipfile.ZipFile(file) as archive:
            return archive.infolist()
    except ZIP_ERRORS as exc:
        raise LoadError(f"{file}: damaged zip archive ({exc})", hint) from None
