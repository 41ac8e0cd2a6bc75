"""HDF5 read safely through h5py: this file's own objects only, never external data.

Refused: external links (they open other files), external datasets (raw data in other files)
and virtual datasets (data mapped from other files), and datasets declaring more than
``MAX_DATASET_BYTES``. h5py is an optional dependency (``pip install 'rnngrad[keras]'``).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from rnngrad.errors import LoadError

MAX_DATASET_BYTES = 4 * 1024**3
INSTALL_HINT = "install the Keras extra: pip install 'rnngrad[keras]' (h5py only, no Keras)"


def h5py_module():
    try:
        import h5py
    except ImportError:
        raise LoadError("reading Keras HDF5 files needs h5py, which is not installed",
                        INSTALL_HINT) from None
    return h5py


def open_file(source: Path | bytes, where: str):
    """An h5py.File opened read-only on a path or on bytes (a member of a .keras archive)."""
    h5py = h5py_module()
    try:
        if isinstance(source, bytes):
            return h5py.File(io.BytesIO(source), "r")
        return h5py.File(source, "r", locking=False)
    except (OSError, ValueError) as exc:
        raise LoadError(f"{where}: not a readable HDF5 file ({exc})",
                        "re-save or re-download the weights") from None


def node(group, path: str, where: str):
    """``group[path]``, refusing to follow an external link on the way."""
    h5py = h5py_module()
    current = group
    for part in [p for p in path.split("/") if p]:
        link = current.get(part, getlink=True)
        if link is None:
            raise LoadError(f"{where}: the file names {path!r} but holds no such object",
                            "the file is damaged or was not written by Keras")
        if isinstance(link, h5py.ExternalLink):
            raise LoadError(f"{where}: {path!r} is an external link to {link.filename!r}; "
                            "rnngrad reads only the file it is given",
                            "re-save the model into one file")
        current = current[part]
    return current


def children(group, where: str) -> Iterator[tuple[str, Any]]:
    """(name, object) of a group's members, in name order, without following external links."""
    h5py = h5py_module()
    for name in sorted(group.keys()):
        link = group.get(name, getlink=True)
        if isinstance(link, h5py.ExternalLink):
            raise LoadError(f"{where}: {group.name}/{name} is an external link to "
                            f"{link.filename!r}; rnngrad reads only the file it is given",
                            "re-save the model into one file")
        if isinstance(link, h5py.SoftLink):
            continue  # an alias of an object reached through its hard link anyway
        yield name, group[name]


def is_group(obj) -> bool:
    return isinstance(obj, h5py_module().Group)


def is_dataset(obj) -> bool:
    return isinstance(obj, h5py_module().Dataset)


def checked(dataset, where: str):
    """The dataset itself, after refusing virtual/external storage and absurd sizes."""
    if dataset.is_virtual:
        raise LoadError(f"{where}: dataset {dataset.name!r} is virtual (its data lives in "
                        "other files); refused", "re-save the model into one file")
    if dataset.external:
        raise LoadError(f"{where}: dataset {dataset.name!r} keeps its data in external files "
                        f"({dataset.external[0][0]!r}); refused", "re-save the model into one file")
    size = int(np.prod(dataset.shape, dtype=np.int64)) * dataset.dtype.itemsize \
        if dataset.shape is not None else 0
    if size > MAX_DATASET_BYTES:
        raise LoadError(f"{where}: dataset {dataset.name!r} declares {size / 1024**3:.1f} GiB",
                        "refused as implausible for RNN weights")
    return dataset


def read(dataset, where: str) -> np.ndarray:
    return np.asarray(checked(dataset, where)[()])


def attribute_list(group, name: str) -> list[str]:
    """A list-of-strings attribute; Keras splits long ones into ``name0``, ``name1``, ..."""
    if name in group.attrs:
        values = list(group.attrs[name])
    else:
        values, index = [], 0
        while f"{name}{index}" in group.attrs:
            values += list(group.attrs[f"{name}{index}"])
            index += 1
    return [text(value) for value in values]


def text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
