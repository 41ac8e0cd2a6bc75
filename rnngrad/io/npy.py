"""``.npy`` files a user names by option (``--inputs``, ``--tokens-file``, ``--targets``):
the header first, the values only after their size has been accepted.

:func:`npy_header` opens the path only if it is a regular file (:mod:`.textfiles`), reads the
magic and the header (at most :data:`MAX_NPY_HEADER` bytes), refuses object arrays (they would
need pickle) and checks that the file holds the bytes its shape declares: a 4 GB sparse file
costs nothing to describe. :func:`read_npy` then reads exactly those bytes into memory, after
checking them against a memory limit. No memory map: a file truncated while it is read is a
short read and a clean error, not SIGBUS.
"""

from __future__ import annotations

import os
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from rnngrad.errors import ProbeError, ResourceError
from rnngrad.io.textfiles import open_regular
from rnngrad.limits import gib

# numpy refuses longer headers by default too; a real one is about a hundred bytes.
MAX_NPY_HEADER = 10_000
# What numpy's header parser raises for a damaged or hostile header (it tokenizes a Python
# literal: a stray newline is a TokenError, a bad dtype a TypeError, ...).
NPY_HEADER_ERRORS = (ValueError, EOFError, TypeError, SyntaxError, OSError, OverflowError,
                     KeyError, RecursionError, tokenize.TokenError)
SAVE_HINT = "save a plain numeric array with numpy.save"


@dataclass(frozen=True)
class NpyHeader:
    """What a ``.npy`` file declares: ``shape``, ``dtype``, ``fortran_order``, and where the
    values start (``offset``, bytes)."""

    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool
    offset: int

    @property
    def numel(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count

    @property
    def nbytes(self) -> int:
        return self.numel * self.dtype.itemsize


def npy_header(path: Path | str, option: str) -> NpyHeader:
    """The header of the ``.npy`` file ``path`` (named by ``option`` in errors)."""
    with open_regular(path, option) as handle:
        return _header(handle, path, option)


def read_npy(path: Path | str, option: str, max_bytes: int) -> np.ndarray:
    """The array in ``path``, read only if its declared values fit in ``max_bytes``."""
    with open_regular(path, option) as handle:
        header = _header(handle, path, option)
        if header.nbytes > max_bytes:
            raise ResourceError(f"{option} {path}: shape {list(header.shape)} "
                                f"({header.dtype}) needs {gib(header.nbytes)}, over the "
                                f"{gib(max_bytes)} memory limit",
                                "use fewer or shorter sequences, or raise --max-memory")
        try:
            values = np.fromfile(handle, dtype=header.dtype, count=header.numel)
        except (OSError, ValueError) as exc:
            raise ProbeError(f"{option} {path}: cannot be read ({exc})", SAVE_HINT) from None
    if values.size != header.numel:
        raise ProbeError(f"{option} {path}: truncated while being read ({values.size} of "
                         f"{header.numel} values)", "wait until the file is fully written")
    if header.fortran_order:
        return values.reshape(header.shape[::-1]).transpose()
    return values.reshape(header.shape)


def _header(handle: BinaryIO, path: Path | str, option: str) -> NpyHeader:
    try:
        version = np.lib.format.read_magic(handle)
        read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                else np.lib.format.read_array_header_2_0)
        shape, fortran_order, dtype = read(handle, max_header_size=MAX_NPY_HEADER)
    except NPY_HEADER_ERRORS as exc:
        raise ProbeError(f"{option} {path}: not a readable .npy array ({exc})",
                         "save the array with numpy.save") from None
    if dtype.hasobject:
        raise ProbeError(f"{option} {path}: holds Python objects (needs pickle), refused",
                         SAVE_HINT)
    header = NpyHeader(shape=tuple(int(dim) for dim in shape), dtype=dtype,
                       fortran_order=bool(fortran_order), offset=handle.tell())
    size = os.fstat(handle.fileno()).st_size
    if header.offset + header.nbytes > size:
        raise ProbeError(f"{option} {path}: shape {list(header.shape)} ({dtype}) needs "
                         f"{header.nbytes:,} bytes, the file holds {size - header.offset:,}",
                         "the file is truncated; save it again with numpy.save")
    return header
