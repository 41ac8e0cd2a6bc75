"""safetensors files, validated by rnngrad and read with NumPy alone (no torch).

The header is checked as safetensors' own parser checks it, with messages for people: the
8-byte length within the file and under ``MAX_HEADER_BYTES``, a JSON object without duplicate
keys, string-to-string ``__metadata__``, known dtypes, offsets inside the data that match each
shape and do not overlap. Tensors are then read one at a time, on demand, straight from their
validated byte ranges (little-endian; bfloat16 widened to float32 bit for bit).
"""

from __future__ import annotations

import contextlib
import gc
import json
import struct
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from rnngrad.errors import LoadError
from rnngrad.io.bundle import TensorInfo, WeightBundle

MAX_HEADER_BYTES = 100 * 1024 * 1024
ITEMSIZE = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2,
    "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}
DTYPE_NAMES = {
    "F16": "float16", "BF16": "bfloat16", "F32": "float32", "F64": "float64", "BOOL": "bool",
    "U8": "uint8", "I8": "int8", "I16": "int16", "U16": "uint16", "I32": "int32",
    "U32": "uint32", "I64": "int64", "U64": "uint64", "F8_E5M2": "float8_e5m2",
    "F8_E4M3": "float8_e4m3fn",
}
# The float dtypes rnngrad reads, as NumPy dtypes of the stored bytes (BF16 as raw uint16).
_NUMPY_FLOAT = {"F16": "<f2", "BF16": "<u2", "F32": "<f4", "F64": "<f8"}


def read_safetensors(file: Path, sha: str) -> WeightBundle:
    """The bundle of a safetensors file; tensors are read when asked for."""
    with _gc_paused():
        header, metadata, data_start, order = _safetensors_header(file)
        tensors = {}
        for name in order:
            entry = header[name]
            dtype = DTYPE_NAMES.get(entry["dtype"], entry["dtype"].lower())
            tensors[name] = TensorInfo(name=name, shape=tuple(entry["shape"]), dtype=dtype)

    def fetch(name: str) -> np.ndarray:
        entry = header[name]
        return _read_tensor(file, name, entry, data_start)

    return WeightBundle(path=str(file), format="safetensors", sha256=sha, tensors=tensors,
                        metadata=metadata, _fetch=fetch)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """No garbage collection while a header's objects are built: they hold no cycles, and with
    600,000 entries the collector's passes over the growing heap cost more than the parsing."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _read_tensor(file: Path, name: str, entry: dict[str, Any], data_start: int) -> np.ndarray:
    """One float tensor from its byte range, as float64 (BF16: the high half of a float32)."""
    dtype = _NUMPY_FLOAT.get(entry["dtype"])
    if dtype is None:  # callers refuse non-float dtypes before fetching; never guess
        raise LoadError(f"{file}: tensor {name!r} has dtype {entry['dtype']}, not a float",
                        "rnngrad analyses float16/bfloat16/float32/float64 weights")
    start, end = entry["data_offsets"]
    count = (end - start) // ITEMSIZE[entry["dtype"]]
    try:
        with file.open("rb") as handle:
            handle.seek(data_start + start)
            raw = handle.read(end - start)
    except OSError as exc:
        raise LoadError(f"{file}: tensor {name!r} cannot be read ({exc.strerror})",
                        "check the file") from None
    if len(raw) != end - start:
        raise LoadError(f"{file}: tensor {name!r} is cut off ({len(raw)} of {end - start} "
                        "bytes): the file changed or was truncated while being read",
                        "wait until the file is fully written, or re-save it")
    values = np.frombuffer(raw, dtype=dtype, count=count)
    if entry["dtype"] == "BF16":
        values = (values.astype(np.uint32) << 16).view(np.float32)
    with np.errstate(invalid="ignore", over="ignore"):  # NaN/Inf are refused by the caller
        return values.astype(np.float64).reshape(entry["shape"])


def _safetensors_header(file: Path) -> tuple[dict[str, Any], dict[str, str], int, list[str]]:
    """Validate the header; return it, its metadata, where the data starts and the tensor
    names in data order. Linear in the number of entries (600,000 take about a second)."""
    size = file.stat().st_size
    with file.open("rb") as handle:
        raw_len = handle.read(8)
        if len(raw_len) < 8:
            raise LoadError(f"{file}: truncated safetensors file (the 8-byte header length "
                            f"is cut off at {len(raw_len)} bytes)", "re-save or re-download it")
        (header_len,) = struct.unpack("<Q", raw_len)
        if header_len > MAX_HEADER_BYTES:
            raise LoadError(f"{file}: safetensors header length {header_len} bytes is absurd "
                            f"(limit {MAX_HEADER_BYTES})", "the file is corrupt or hostile")
        if 8 + header_len > size:
            raise LoadError(f"{file}: truncated safetensors file (header of {header_len} bytes "
                            f"but only {size - 8} bytes follow)", "re-save or re-download it")
        raw = handle.read(header_len)
    try:
        parsed = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LoadError(f"{file}: safetensors header is not valid JSON ({exc})",
                        "the file is corrupt; re-save it") from None
    except RecursionError:
        raise LoadError(f"{file}: safetensors header nests JSON too deeply",
                        "the file is corrupt or hostile; re-save it") from None
    except _DuplicateKey as exc:
        raise LoadError(f"{file}: safetensors header names tensor {exc.args[0]!r} twice",
                        "the file is corrupt or hostile; re-save it") from None
    if not isinstance(parsed, dict):
        raise LoadError(f"{file}: safetensors header is not a JSON object",
                        "the file is corrupt; re-save it")
    metadata = parsed.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise LoadError(f"{file}: safetensors __metadata__ must map strings to strings",
                        "the file is corrupt; re-save it")
    order = _check_safetensors_entries(file, parsed, size - 8 - header_len)
    return parsed, metadata, 8 + header_len, order


class _DuplicateKey(Exception):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return result


def _check_safetensors_entries(file: Path, header: dict[str, Any], data_len: int) -> list[str]:
    """Check every entry (dtype, shape, offsets within the data, no overlaps) in one pass and
    one sort; return the names in data order."""
    spans = []
    for name, entry in header.items():
        start, end, numel, itemsize = _entry_span(file, name, entry)
        if not 0 <= start <= end or end - start != numel * itemsize:
            raise LoadError(f"{file}: tensor {name!r} has offsets {entry['data_offsets']} that "
                            f"do not fit its shape {entry['shape']}", "the file is corrupt")
        if end > data_len:
            raise LoadError(f"{file}: truncated safetensors file (tensor {name!r} needs bytes "
                            f"up to {end}, the data holds {data_len})", "re-save or re-download it")
        spans.append((start, end, name))
    spans.sort()
    for (_, end, first), (start, _, second) in zip(spans, spans[1:]):
        if start < end:
            raise LoadError(f"{file}: tensors {first!r} and {second!r} overlap in the data",
                            "the file is corrupt or hostile; re-save it")
    return [name for _, _, name in spans]


def _entry_span(file: Path, name: str, entry: Any) -> tuple[int, int, int, int]:
    """(start, end, numel, itemsize) of a well-formed entry, else a LoadError."""
    try:
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        itemsize = ITEMSIZE[dtype]
        ok = type(entry) is dict and type(shape) is list and type(offsets) is list
        start, end = offsets
    except (TypeError, KeyError, ValueError):
        ok = False
    numel = 1
    if ok:
        for dim in shape:
            if type(dim) is not int or dim < 0:  # type(): a bool is not a dimension
                ok = False
                break
            numel *= dim
    if not ok or type(start) is not int or type(end) is not int:
        raise LoadError(f"{file}: safetensors entry {name!r} is malformed ({entry!r:.80})",
                        "the file is corrupt; re-save it")
    return start, end, numel, itemsize
