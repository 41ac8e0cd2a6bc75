"""ONNX TensorProto -> NumPy array, with the size checked before anything is read.

A tensor's size is its dims × item size. It must match the bytes the proto holds (a tensor
claiming dims larger than its data is refused, not reshaped into garbage), fit the file's
memory budget, and come from a known numeric data type. External data
(``data_location = EXTERNAL``) is read only from a regular file inside the model's folder,
at a decimal, non-negative ``offset`` and ``length`` that match the tensor's size and lie
within the file; a location holding a NUL, an absolute path or ``..`` leaving the folder, a
FIFO or a device is refused before it is opened.
"""

from __future__ import annotations

import math
import os
import re
import stat
from pathlib import Path

import numpy as np

from rnngrad.errors import LoadError, brief
from rnngrad.io.budget import MemoryBudget, size_text

MAX_EXTERNAL_BYTES = 4 * 1024**3
_DECIMAL = re.compile(r"^[0-9]{1,19}$")
_NUMERIC_KINDS = "biuf"
MALFORMED_HINT = "the model is malformed; re-export it"


class TensorReader:
    """TensorProto -> array, for one model file and its memory budget."""

    def __init__(self, file: Path, budget: MemoryBudget):
        self.folder = file.resolve().parent
        self.where = str(file)
        self.budget = budget

    def __call__(self, proto) -> np.ndarray:
        from onnx import TensorProto, numpy_helper

        dtype = self.dtype(proto)
        count = self.elements(proto)
        size = count * dtype.itemsize
        self.budget.check(size, f"ONNX tensor {proto.name!r}")  # the folder counts what it keeps
        if proto.data_location == TensorProto.EXTERNAL:
            proto = self._with_external_data(proto, size)
        else:
            self._check_inline(proto, count, dtype)
        try:
            return numpy_helper.to_array(proto)
        except Exception as exc:  # onnx raises ValueError, TypeError, KeyError, ... on bad data
            raise LoadError(f"{self.where}: ONNX tensor {proto.name!r} cannot be read "
                            f"({brief(exc)})", MALFORMED_HINT) from None

    def dtype(self, proto) -> np.dtype:
        """The NumPy dtype of ``proto``'s data type; an unknown or non-numeric type is a
        LoadError."""
        from onnx import helper

        try:
            dtype = np.dtype(helper.tensor_dtype_to_np_dtype(proto.data_type))
        except (KeyError, TypeError, ValueError):
            raise LoadError(f"{self.where}: ONNX tensor {proto.name!r} has unknown data type "
                            f"{proto.data_type}", MALFORMED_HINT) from None
        if dtype.kind not in _NUMERIC_KINDS and not _is_low_float(dtype):
            raise LoadError(f"{self.where}: ONNX tensor {proto.name!r} holds {dtype} values, "
                            "not numbers", MALFORMED_HINT)
        return dtype

    def elements(self, proto) -> int:
        """The number of values ``proto``'s dims declare (1 for a scalar); a negative dim is a
        LoadError."""
        dims = [int(d) for d in proto.dims]
        if any(d < 0 for d in dims):
            raise LoadError(f"{self.where}: ONNX tensor {proto.name!r} has negative dims "
                            f"{dims}", MALFORMED_HINT)
        return math.prod(dims)

    def _check_inline(self, proto, count: int, dtype: np.dtype) -> None:
        """The data the proto holds (raw bytes or a typed field) must be ``count`` values."""
        if proto.raw_data:
            held, unit = len(proto.raw_data), dtype.itemsize
            if held != count * unit:
                raise LoadError(f"{self.where}: ONNX tensor {proto.name!r} declares dims "
                                f"{list(proto.dims)} ({size_text(count * unit)}) but holds "
                                f"{size_text(held)}", MALFORMED_HINT)
            return
        fields = [len(getattr(proto, name)) for name in
                  ("float_data", "int32_data", "int64_data", "double_data", "uint64_data")]
        held = max(fields)
        per_value = 2 if dtype.kind == "c" else 1
        if held != count * per_value:
            raise LoadError(f"{self.where}: ONNX tensor {proto.name!r} declares dims "
                            f"{list(proto.dims)} ({count:,} values) but holds {held:,}",
                            MALFORMED_HINT)

    def _with_external_data(self, proto, size: int):
        from onnx import TensorProto

        entries = {entry.key: entry.value for entry in proto.external_data}
        target, location = self._location(proto, entries.get("location", ""))
        offset = self._number(proto, entries, "offset", 0)
        length = self._number(proto, entries, "length", size)
        if length != size:
            raise LoadError(f"{self.where}: tensor {proto.name!r} claims {length} bytes of "
                            f"external data, its dims need {size}", MALFORMED_HINT)
        if size > MAX_EXTERNAL_BYTES:
            raise LoadError(f"{self.where}: tensor {proto.name!r} claims "
                            f"{size_text(size)} of external data", "refused as implausible")
        with _open_regular(target, self.where, location) as handle:
            available = os.fstat(handle.fileno()).st_size
            if offset + size > available:
                raise LoadError(f"{self.where}: tensor {proto.name!r} claims {size} bytes at "
                                f"offset {offset} of {location!r}, which has {available}",
                                "the external data is damaged or truncated")
            handle.seek(offset)
            data = handle.read(size)
        if len(data) != size:
            raise LoadError(f"{self.where}: {location!r} shrank while being read",
                            "the external data is damaged")
        copy = TensorProto()
        copy.CopyFrom(proto)
        del copy.external_data[:]
        copy.data_location = TensorProto.DEFAULT
        copy.raw_data = data
        return copy

    def _location(self, proto, location: str) -> tuple[Path, str]:
        if not location or "\x00" in location:
            raise LoadError(f"{self.where}: tensor {proto.name!r} names its external data file "
                            f"{location!r}", MALFORMED_HINT)
        target = (self.folder / location).resolve()
        if Path(location).is_absolute() or not target.is_relative_to(self.folder):
            raise LoadError(f"{self.where}: tensor {proto.name!r} keeps its data in "
                            f"{location!r}, outside the model's folder; refused",
                            "put the external data file next to the model")
        return target, location

    def _number(self, proto, entries: dict, key: str, default: int) -> int:
        if key not in entries:
            return default
        text = entries[key]
        if not _DECIMAL.match(text):
            raise LoadError(f"{self.where}: tensor {proto.name!r} has external-data {key} "
                            f"{text!r}, not a non-negative whole number", MALFORMED_HINT)
        return int(text)


def _open_regular(target: Path, where: str, location: str):
    """``target`` opened for reading if it is a regular file (a FIFO or device is refused
    without blocking)."""
    try:
        descriptor = os.open(target, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise LoadError(f"{where}: external data file {location!r} cannot be opened "
                        f"({exc.strerror})", "put the external data file next to the model") \
            from None
    handle = os.fdopen(descriptor, "rb")
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        handle.close()
        raise LoadError(f"{where}: external data {location!r} is not a regular file (a pipe or "
                        "a device)", "put the external data file next to the model")
    return handle


def _is_low_float(dtype: np.dtype) -> bool:
    """ml_dtypes' float8/bfloat16 types (kind 'V'): numbers rnngrad lists but does not run."""
    return "float" in dtype.name
