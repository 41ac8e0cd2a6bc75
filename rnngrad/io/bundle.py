"""The :class:`WeightBundle`: the tensors of one weights file, described eagerly, read lazily.

Every reader in :mod:`rnngrad.io` ends in a bundle. It holds tensor *descriptions* (name,
shape, dtype) and fetches the values on demand as float64 NumPy arrays, so ``inspect`` on a
large file reads only its header. Readers of formats that describe their recurrences
themselves (Keras, ONNX) and the research conventions (:mod:`rnngrad.conventions`) attach
:class:`~rnngrad.io.layout.Layout` records over *derived* tensors named the PyTorch way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from rnngrad.errors import LoadError, ResourceError
from rnngrad.limits import gib

FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
# Bytes per element of the dtypes a reader names (unknown names count as 8: never too few).
ITEMSIZES = {"bool": 1, "uint8": 1, "int8": 1, "float8_e5m2": 1, "float8_e4m3fn": 1,
             "int16": 2, "uint16": 2, "float16": 2, "bfloat16": 2, "int32": 4, "uint32": 4,
             "float32": 4, "int64": 8, "uint64": 8, "float64": 8}


@dataclass(frozen=True, kw_only=True)
class TensorInfo:
    """Name, shape and dtype of one tensor in the file (dtype as a numpy/torch name)."""

    name: str
    shape: tuple[int, ...]
    dtype: str

    @property
    def is_float(self) -> bool:
        """The dtype is float16, bfloat16, float32 or float64."""
        return self.dtype in FLOAT_DTYPES

    @property
    def numel(self) -> int:
        """The number of elements (exact, as a Python int: a hostile shape cannot overflow)."""
        count = 1
        for dim in self.shape:
            count *= int(dim)
        return count

    @property
    def fetch_bytes(self) -> int:
        """Bytes that reading this tensor as float64 holds at once: the stored values
        (``numel`` × the dtype's item size) and their float64 copy."""
        return self.numel * (ITEMSIZES.get(self.dtype, 8) + 8)


@dataclass(frozen=True, kw_only=True)
class WeightBundle:
    """The tensors of one weights file, described eagerly and read lazily.

    ``tensors`` keeps file order. ``metadata`` is the safetensors header's ``__metadata__``
    (empty for other formats). ``notes`` are things the loader skipped or assumed, for people.
    ``layouts`` describe the recurrences explicitly when the format or a mapping knows them
    (empty: found by PyTorch's key patterns); ``derived`` names the tensors rnngrad computed
    (name -> what from); ``original`` is the bundle as read, before any mapping.
    ``max_bytes`` (None: no limit) is the memory one :meth:`array` may hold: a tensor whose
    declared shape needs more is refused before anything is read, inflated or expanded.
    """

    path: str
    format: str
    sha256: str
    tensors: Mapping[str, TensorInfo]
    metadata: Mapping[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    layouts: tuple[Any, ...] = ()
    derived: Mapping[str, str] = field(default_factory=dict)
    original: "WeightBundle | None" = field(default=None, repr=False, compare=False)
    max_bytes: int | None = field(default=None, repr=False, compare=False)
    _fetch: Callable[[str], np.ndarray] = field(repr=False, compare=False)

    def array(self, name: str) -> np.ndarray:
        """The tensor ``name`` as a float64 array; refuses non-float dtypes and NaN/Inf."""
        info = self.tensors.get(name)
        if info is None:
            raise LoadError(f"{self.path}: no tensor named {name!r}",
                            "run `rnngrad inspect` to list the tensors in the file")
        if not info.is_float:
            raise LoadError(f"{self.path}: tensor {name!r} has dtype {info.dtype}, "
                            "not a floating-point type",
                            "rnngrad analyses float16/bfloat16/float32/float64 weights")
        if self.max_bytes is not None and info.fetch_bytes > self.max_bytes:
            raise ResourceError(f"{self.path}: tensor {name!r} of shape {list(info.shape)} "
                                f"needs {gib(info.fetch_bytes)} to read as float64, over the "
                                f"{gib(self.max_bytes)} memory limit",
                                "raise --max-memory if the machine has the memory")
        values = np.asarray(self._fetch(name), dtype=np.float64)
        if values.shape != info.shape:
            raise LoadError(f"{self.path}: tensor {name!r} holds shape {values.shape}, "
                            f"its header says {info.shape}", "the file is corrupt; re-save it")
        if not np.all(np.isfinite(values)):
            bad = int(np.size(values) - np.count_nonzero(np.isfinite(values)))
            raise LoadError(f"{self.path}: tensor {name!r} contains {bad} NaN or Inf values",
                            "the weights diverged or the file is corrupt; use an earlier "
                            "checkpoint")
        return values

