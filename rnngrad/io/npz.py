""".npz archives: NumPy's ``.npy`` members, read lazily and never through pickle.

Opening reads only the zip's central directory and the small ``.npy`` header at the start of
each member (its shape and dtype), so ``inspect`` inflates almost nothing. The declared sizes
are checked first (:func:`~rnngrad.io.archive.check_declared_sizes`: no zip bombs), and each
header against its member's declared size. A member's values are inflated only when an
analysis asks for that tensor, one member at a time, after the bundle's memory limit has
accepted its shape. Object arrays (which would need pickle) and members that are not ``.npy``
are skipped and named in a note.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import IO

import numpy as np

from rnngrad.errors import LoadError
from rnngrad.io.archive import ZIP_ERRORS, check_declared_sizes, zip_members
from rnngrad.io.bundle import TensorInfo, WeightBundle
from rnngrad.io.npy import MAX_NPY_HEADER, NPY_HEADER_ERRORS

HINT = "re-save it with numpy.savez"


def read_npz(file: Path, sha: str) -> WeightBundle:
    """The bundle of an ``.npz``: tensor descriptions now, values on demand."""
    members = zip_members(file, HINT)
    check_declared_sizes(file, members, HINT)
    _refuse_duplicates(file, members)
    tensors: dict[str, TensorInfo] = {}
    where: dict[str, zipfile.ZipInfo] = {}
    objects, other = [], []
    try:
        with zipfile.ZipFile(file) as archive:
            for info in members:
                if not info.filename.endswith(".npy"):
                    other.append(info.filename)
                    continue
                name = info.filename.removesuffix(".npy")
                with archive.open(info) as member:
                    shape, dtype = _member_header(file, name, member, info.file_size)
                if dtype.hasobject:
                    objects.append(name)
                    continue
                tensors[name] = TensorInfo(name=name, shape=shape, dtype=str(dtype))
                where[name] = info
    except ZIP_ERRORS as exc:
        raise LoadError(f"{file}: cannot be read as .npz ({exc})", HINT) from None
    notes = ((f"skipped object arrays (would need pickle): {', '.join(objects)}",)
             if objects else ())
    if other:
        notes += (f"skipped {len(other)} member(s) that are not .npy arrays: "
                  f"{', '.join(other[:5])}",)

    def fetch(name: str) -> np.ndarray:
        return _read_member(file, name, where[name])

    return WeightBundle(path=str(file), format="npz", sha256=sha, tensors=tensors, notes=notes,
                        _fetch=fetch)


def _refuse_duplicates(file: Path, members: list[zipfile.ZipInfo]) -> None:
    """Two members of one name: which one NumPy reads is an accident; refuse the file."""
    seen: set[str] = set()
    for info in members:
        if info.filename in seen:
            raise LoadError(f"{file}: the archive holds member {info.filename!r} twice",
                            "the file is corrupt or hostile; " + HINT)
        seen.add(info.filename)


def _member_header(file: Path, name: str, member: IO[bytes],
                   declared: int) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) from a member's ``.npy`` header, checked against its declared size."""
    try:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(
                member, max_header_size=MAX_NPY_HEADER)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(
                member, max_header_size=MAX_NPY_HEADER)
    except NPY_HEADER_ERRORS as exc:
        raise LoadError(f"{file}: member {name!r} is not a readable .npy array ({exc})",
                        HINT) from None
    if not dtype.hasobject:
        count = 1
        for dim in shape:
            count *= dim
        needed = count * dtype.itemsize
        if needed > declared:
            raise LoadError(f"{file}: member {name!r} declares shape {list(shape)} "
                            f"({needed:,} bytes) but holds {declared:,} bytes",
                            "the file is corrupt or truncated; " + HINT)
    return tuple(int(dim) for dim in shape), dtype


def _read_member(file: Path, name: str, info: zipfile.ZipInfo) -> np.ndarray:
    """One member's array, inflated now (its size was checked when the bundle was made)."""
    try:
        with zipfile.ZipFile(file) as archive, archive.open(info) as member:
            return np.lib.format.read_array(member, allow_pickle=False,
                                            max_header_size=MAX_NPY_HEADER)
    except ZIP_ERRORS + NPY_HEADER_ERRORS as exc:
        raise LoadError(f"{file}: member {name!r} cannot be read ({exc})",
                        "the file is corrupt or changed while being read; " + HINT) from None
