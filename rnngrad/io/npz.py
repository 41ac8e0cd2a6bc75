""".npz archives, through ``numpy.load(allow_pickle=False)`` only.

Object arrays (which would need pickle) are skipped and named in a note. The declared
decompressed size of every member is checked before anything is inflated (no zip bombs).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rnngrad.errors import LoadError
from rnngrad.io.archive import zip_members
from rnngrad.io.bundle import TensorInfo, WeightBundle

MAX_NPZ_MEMBER_BYTES = 4 * 1024**3
MAX_NPZ_RATIO = 1000


def read_npz(file: Path, sha: str) -> WeightBundle:
    """The arrays of an ``.npz`` file (``sha``: its SHA-256), read without pickle: members are
    size-checked first, object arrays skipped with a note."""
    _check_npz_sizes(file)
    try:
        archive = np.load(file, allow_pickle=False)
    except Exception as exc:
        raise LoadError(f"{file}: cannot be read as .npz ({exc})",
                        "re-save it with numpy.savez") from None
    arrays: dict[str, np.ndarray] = {}
    skipped = []
    with archive:
        for name in archive.files:
            try:
                arrays[name] = archive[name]
            except ValueError:
                skipped.append(name)  # object arrays need pickle, which is never allowed
            except Exception as exc:
                raise LoadError(f"{file}: member {name!r} cannot be read ({exc})",
                                "re-save it with numpy.savez") from None
    notes = (f"skipped object arrays (would need pickle): {', '.join(skipped)}",) if skipped else ()
    tensors = {name: TensorInfo(name=name, shape=tuple(a.shape), dtype=str(a.dtype))
               for name, a in arrays.items()}
    return WeightBundle(path=str(file), format="npz", sha256=sha, tensors=tensors, notes=notes,
                        _fetch=lambda name: arrays[name])


def _check_npz_sizes(file: Path) -> None:
    for info in zip_members(file, "re-save it with numpy.savez"):
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > MAX_NPZ_MEMBER_BYTES or (info.file_size > 64 * 1024**2
                                                     and ratio > MAX_NPZ_RATIO):
            raise LoadError(f"{file}: member {info.filename!r} would inflate to "
                            f"{info.file_size / 1024**3:.1f} GiB from "
                            f"{info.compress_size} bytes (zip bomb?)",
                            "refused; save the weights uncompressed with numpy.savez")
