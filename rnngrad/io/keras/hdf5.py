"""HDF5 read safely through h5py: this file's own objects only, sizes checked before reading.

:class:`SafeHDF5` is the only way the Keras reader touches a file. It

- follows hard links only: a soft link, an external link (another file, a FIFO, a device) or
  a user-defined link met anywhere on a path or in a walk is refused, never resolved (a soft
  link can point through an external link into another file);
- detects hard-link cycles in walks (a group linked into itself);
- refuses datasets whose data is elsewhere (external storage, virtual datasets), filters
  other than deflate, shuffle, fletcher32 and lzf (nothing loads an HDF5 filter plugin),
  null dataspaces, data that was never written (a chunked dataset can declare gigabytes in a
  few kilobytes), uncompressed data stored shorter than declared and compressed data that
  would inflate more than :data:`MAX_INFLATION` times;
- computes every dataset's and attribute's size from its header (shape × item size) before
  reading it, and charges what it reads to the file's :class:`~rnngrad.io.budget.MemoryBudget`;
  variable-length string attributes (whose size only their heap knows) are read only when
  the whole file fits the budget;
- turns h5py's errors on damaged data (a corrupted gzip chunk) into :class:`LoadError`.

h5py is an optional dependency (``pip install 'rnngrad[keras]'``).
"""

from __future__ import annotations

import contextlib
import io
import traceback
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from rnngrad.errors import LoadError, brief
from rnngrad.io.budget import MemoryBudget, size_text

MAX_DATASET_BYTES = 4 * 1024**3
MAX_ATTRIBUTE_BYTES = 64 * 1024**2
MAX_INFLATION = 2048  # declared / stored bytes of a compressed dataset (gzip tops out near 1030)
ALLOWED_FILTERS = {1: "deflate", 2: "shuffle", 3: "fletcher32", 32000: "lzf"}
# What h5py raises on damaged files (KeyError too: "Unable to open object ...").
H5_ERRORS = (OSError, RuntimeError, ValueError, TypeError, KeyError, IndexError, OverflowError)
INSTALL_HINT = "install the Keras extra: pip install 'rnngrad[keras]' (h5py only, no Keras)"
ONE_FILE_HINT = "re-save the model into one file (model.save('x.keras'))"
DAMAGED_HINT = "the file is damaged; re-save or re-download it"


def h5py_module():
    """The ``h5py`` module, or a LoadError saying how to install it."""
    try:
        import h5py
    except ImportError:
        raise LoadError("reading Keras HDF5 files needs h5py, which is not installed",
                        INSTALL_HINT) from None
    return h5py


class SafeHDF5:
    """A read-only HDF5 file read safely: a path, the bytes of an inflated ``.keras`` member,
    or a stored member read in place (an object with ``open()`` and ``length``).

    Use as a context manager; ``root`` is the file's root group.
    """

    def __init__(self, source: Path | bytes | Any, where: str, budget: MemoryBudget):
        self.h5py = h5py_module()
        self.where = where
        self.budget = budget
        self._handle = None
        try:
            if isinstance(source, bytes):
                self.size = len(source)
                self.file = self.h5py.File(io.BytesIO(source), "r")
            elif isinstance(source, (str, Path)):
                self.size = Path(source).stat().st_size
                self.file = self.h5py.File(source, "r", locking=False)
            else:  # a stored member of a .keras archive, read in place
                self.size = source.length
                self._handle = source.open()
                self.file = self.h5py.File(self._handle, "r")
        except H5_ERRORS as exc:
            if self._handle is not None:
                self._handle.close()
            raise LoadError(f"{where}: not a readable HDF5 file ({brief(exc)})",
                            "re-save or re-download the weights") from None

    def __enter__(self) -> SafeHDF5:
        return self

    def __exit__(self, *exc: object) -> None:
        self.file.close()
        if self._handle is not None:
            self._handle.close()

    @property
    def root(self):
        """The file's root group."""
        return self.file

    # --- links ---------------------------------------------------------------------------

    def child(self, group, name: str):
        """The object ``name`` of ``group`` through a hard link, or None when there is none."""
        link = self._link(group, name)
        if link is None:
            return None
        try:
            return group[name]
        except H5_ERRORS as exc:
            raise LoadError(f"{self.where}: cannot open {_join(group, name)!r} ({brief(exc)})",
                            DAMAGED_HINT) from None

    def has(self, group, name: str) -> bool:
        """Whether ``group`` has a hard link ``name``; a soft, external or user-defined link is a
        LoadError."""
        return self._link(group, name) is not None

    def node(self, group, path: str):
        """``group[path]`` one hard link at a time; a missing part is a LoadError."""
        current = group
        for part in [p for p in path.split("/") if p]:
            if not self.is_group(current):
                raise LoadError(f"{self.where}: {path!r} passes through a dataset",
                                "the file is damaged or was not written by Keras")
            found = self.child(current, part)
            if found is None:
                raise LoadError(f"{self.where}: the file names {path!r} but holds no such object",
                                "the file is damaged or was not written by Keras")
            current = found
        return current

    def children(self, group) -> Iterator[tuple[str, Any]]:
        """(name, object) of a group's members in name order, hard links only."""
        for name in sorted(self._names(group)):
            found = self.child(group, name)
            if found is not None:
                yield name, found

    def groups_below(self, top, names: set[str]) -> Iterator[tuple[str, Any]]:
        """(path, group) of every group below the members ``names`` of ``top``, breadth first.

        Refuses a group reached twice (a hard-link cycle or a group linked from two places).
        """
        seen: set[int] = set()
        queue = [(name, obj) for name, obj in self.children(top)
                 if name in names and self.is_group(obj)]
        while queue:
            path, group = queue.pop(0)
            address = self.h5py.h5o.get_info(group.id).addr
            if address in seen:
                raise LoadError(f"{self.where}: group {path!r} is reached twice (a hard-link "
                                "cycle or a group linked from two places)",
                                "the file was not written by Keras; re-save the model")
            seen.add(address)
            yield path, group
            queue += [(f"{path}/{name}", obj) for name, obj in self.children(group)
                      if self.is_group(obj)]

    def _names(self, group) -> list[str]:
        try:
            return list(group.keys())
        except H5_ERRORS as exc:
            raise LoadError(f"{self.where}: cannot list group {group.name!r} ({brief(exc)})",
                            DAMAGED_HINT) from None

    def _link(self, group, name: str):
        try:
            link = group.get(name, getlink=True)
        except H5_ERRORS as exc:
            raise LoadError(f"{self.where}: cannot read the link {_join(group, name)!r} "
                            f"({brief(exc)})", DAMAGED_HINT) from None
        if link is None or isinstance(link, self.h5py.HardLink):
            return link
        if isinstance(link, self.h5py.ExternalLink):
            raise LoadError(f"{self.where}: {_join(group, name)!r} is an external link to "
                            f"{link.filename!r}; rnngrad reads only the file it is given",
                            ONE_FILE_HINT)
        if isinstance(link, self.h5py.SoftLink):
            raise LoadError(f"{self.where}: {_join(group, name)!r} is a soft link to "
                            f"{link.path!r}; rnngrad follows no links (Keras writes none)",
                            ONE_FILE_HINT)
        raise LoadError(f"{self.where}: {_join(group, name)!r} is a user-defined link; refused",
                        ONE_FILE_HINT)

    # --- objects -------------------------------------------------------------------------

    def is_group(self, obj) -> bool:
        """Whether ``obj`` is an HDF5 group."""
        return isinstance(obj, self.h5py.Group)

    def is_dataset(self, obj) -> bool:
        """Whether ``obj`` is an HDF5 dataset."""
        return isinstance(obj, self.h5py.Dataset)

    def dataset(self, group, path: str):
        """The dataset at ``path``, checked (:meth:`checked`)."""
        found = self.node(group, path)
        if not self.is_dataset(found):
            raise LoadError(f"{self.where}: {path} is not a dataset", DAMAGED_HINT)
        return self.checked(found)

    def checked(self, dataset):
        """The dataset itself, after refusing data stored elsewhere, unknown filters, null
        dataspaces, unwritten or short data and absurd sizes (nothing is read)."""
        name = dataset.name
        try:
            plist = dataset.id.get_create_plist()
            virtual = plist.get_layout() == self.h5py.h5d.VIRTUAL
            external = plist.get_external_count() > 0
            filters = [plist.get_filter(i) for i in range(plist.get_nfilters())]
            shape, dtype = dataset.shape, dataset.dtype
            stored = dataset.id.get_storage_size() if not (virtual or external) else 0
        except H5_ERRORS as exc:
            raise LoadError(f"{self.where}: cannot read the header of dataset {name!r} "
                            f"({brief(exc)})", DAMAGED_HINT) from None
        if virtual:
            raise LoadError(f"{self.where}: dataset {name!r} is virtual (its data lives in "
                            "other files); refused", ONE_FILE_HINT)
        if external:
            raise LoadError(f"{self.where}: dataset {name!r} keeps its data in external files "
                            f"({_external_name(plist)!r}); refused", ONE_FILE_HINT)
        unknown = [f"{code} ({_text(label)})" for code, _, _, label in filters
                   if code not in ALLOWED_FILTERS]
        if unknown:
            raise LoadError(f"{self.where}: dataset {name!r} is stored with HDF5 filter "
                            f"{unknown[0]}; rnngrad reads deflate, shuffle, fletcher32 and lzf "
                            "only and loads no filter plugin", "re-save the weights with Keras")
        if shape is None:
            raise LoadError(f"{self.where}: dataset {name!r} has a null dataspace (no value)",
                            DAMAGED_HINT)
        declared = nbytes(shape, dtype.itemsize)
        if declared > MAX_DATASET_BYTES:
            raise LoadError(f"{self.where}: dataset {name!r} declares {size_text(declared)}",
                            "refused as implausible for RNN weights")
        compressed = any(code in (1, 32000) for code, _, _, _ in filters)
        if declared and stored == 0:
            raise LoadError(f"{self.where}: dataset {name!r} declares {size_text(declared)} "
                            "but the file stores none of it (never written)", DAMAGED_HINT)
        if not compressed and stored < declared:
            raise LoadError(f"{self.where}: dataset {name!r} declares {size_text(declared)} but "
                            f"the file stores only {size_text(stored)} of it", DAMAGED_HINT)
        if compressed and declared > stored * MAX_INFLATION:
            raise LoadError(f"{self.where}: dataset {name!r} would inflate from "
                            f"{size_text(stored)} to {size_text(declared)}",
                            "refused as a compression bomb; re-save the weights")
        return dataset

    def shape_and_dtype(self, dataset) -> tuple[tuple[int, ...], str]:
        """The dataset's shape and dtype name, after :meth:`checked` (no data is read)."""
        checked = self.checked(dataset)
        return tuple(int(d) for d in checked.shape), str(checked.dtype)

    def read(self, dataset) -> np.ndarray:
        """The dataset's values: checked, charged to the budget, h5py's errors as LoadError."""
        checked = self.checked(dataset)
        self.budget.take(nbytes(checked.shape, checked.dtype.itemsize),
                         f"dataset {checked.name!r}")
        try:
            return np.asarray(checked[()])
        except H5_ERRORS as exc:
            raise LoadError(f"{self.where}: cannot read dataset {checked.name!r} "
                            f"({brief(exc)})", DAMAGED_HINT) from None

    # --- attributes ----------------------------------------------------------------------

    def attribute(self, obj, name: str) -> Any:
        """An attribute's value (None when absent), its size checked before it is read."""
        try:
            if name not in obj.attrs:
                return None
            attr = obj.attrs.get_id(name)
            shape, dtype = attr.shape, attr.dtype
        except H5_ERRORS as exc:
            raise LoadError(f"{self.where}: cannot read attribute {name!r} of "
                            f"{obj.name!r} ({brief(exc)})", DAMAGED_HINT) from None
        count = nbytes(shape or (), 1)
        if dtype.kind == "O":  # variable length: the heap, within the file, holds the data
            if self.size > self.budget.limit:
                raise LoadError(f"{self.where}: attribute {name!r} is a variable-length string "
                                f"in a file of {size_text(self.size)}, too large to read it "
                                "safely", "re-save the model")
        elif count * dtype.itemsize > MAX_ATTRIBUTE_BYTES:
            raise LoadError(f"{self.where}: attribute {name!r} of {obj.name!r} declares "
                            f"{size_text(count * dtype.itemsize)}",
                            "refused as implausible for a Keras attribute")
        try:
            return obj.attrs[name]
        except H5_ERRORS as exc:
            raise LoadError(f"{self.where}: cannot read attribute {name!r} of "
                            f"{obj.name!r} ({brief(exc)})", DAMAGED_HINT) from None

    def text(self, obj, name: str) -> str | None:
        """A string attribute as text (None when absent)."""
        value = self.attribute(obj, name)
        if value is None:
            return None
        if isinstance(value, np.ndarray) and value.shape == ():
            value = value[()]
        if not isinstance(value, (bytes, str, np.bytes_, np.str_)):
            raise LoadError(f"{self.where}: attribute {name!r} of {obj.name!r} is not text",
                            DAMAGED_HINT)
        return text(value)

    def text_list(self, group, name: str) -> list[str]:
        """A list-of-strings attribute; Keras splits long ones into ``name0``, ``name1``, ..."""
        value = self.attribute(group, name)
        chunks = [value] if value is not None else []
        index = 0
        while value is None and self.attribute(group, f"{name}{index}") is not None:
            chunks.append(self.attribute(group, f"{name}{index}"))
            index += 1
        out = []
        for chunk in chunks:
            items = np.atleast_1d(np.asarray(chunk, dtype=object)).reshape(-1)
            for item in items:
                if not isinstance(item, (bytes, str, np.bytes_, np.str_)):
                    raise LoadError(f"{self.where}: attribute {name!r} of {group.name!r} holds "
                                    f"{type(item).__name__} values, not names", DAMAGED_HINT)
                out.append(text(item))
        return out

    def has_attribute(self, obj, name: str) -> bool:
        """Whether ``obj`` has the attribute ``name``; unreadable attributes are a LoadError."""
        try:
            return name in obj.attrs
        except H5_ERRORS as exc:
            raise LoadError(f"{self.where}: cannot read the attributes of {obj.name!r} "
                            f"({brief(exc)})", DAMAGED_HINT) from None


@contextlib.contextmanager
def guarded(where: str) -> Iterator[None]:
    """h5py's errors raised inside (a damaged file met where no check expected it) as a
    LoadError; errors from rnngrad's own code pass through."""
    try:
        yield
    except H5_ERRORS as exc:
        if not _raised_in_h5py(exc):
            raise
        raise LoadError(f"{where}: cannot be read as HDF5 ({brief(exc)})", DAMAGED_HINT) from None


def _raised_in_h5py(exc: BaseException) -> bool:
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and ("h5py" in frames[-1].filename or frames[-1].filename.endswith(".pyx"))


def nbytes(shape: tuple[int, ...], itemsize: int) -> int:
    """shape × itemsize in Python integers (no overflow)."""
    total = int(itemsize)
    for dim in shape:
        total *= int(dim)
    return total


def text(value: Any) -> str:
    """An HDF5 string as ``str``: bytes decoded as UTF-8 (bad bytes replaced), else ``str()``."""
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def _text(value: Any) -> str:
    return text(value) if isinstance(value, (bytes, str)) else str(value)


def _join(group, name: str) -> str:
    return f"{group.name.rstrip('/')}/{name}"


def _external_name(plist) -> str:
    try:
        return text(plist.get_external(0)[0])
    except H5_ERRORS:
        return "?"

