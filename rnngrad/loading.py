"""Weights file -> :class:`WeightBundle`, by content, through safe loaders only.

Formats (recognised from the first bytes, not the extension):

- safetensors: the header is validated here first (length, JSON, duplicate keys, offsets,
  dtypes) and the data is then memory-mapped by ``safetensors.safe_open``; nothing is read
  until a tensor is asked for.
- PyTorch zip archives (``torch.save``): only ``torch.load(weights_only=True, mmap=True)``,
  which refuses arbitrary Python globals. Checkpoint dicts that nest a state dict
  (``state_dict``, ``model``, ``model_state_dict``, ...) are unwrapped. TorchScript archives and
  the legacy (pre-zip) pickle format are refused: rnngrad never runs a file's code.
- ``.npz``: ``numpy.load(allow_pickle=False)``; object arrays are skipped and mentioned; the
  declared decompressed sizes are checked before anything is inflated.
- Keras HDF5 and ``.keras`` archives (:mod:`rnngrad.formats.keras`, h5py only) and ONNX
  models (:mod:`rnngrad.formats.onnx_file`); research checkpoints in known conventions are
  recognised (:mod:`rnngrad.formats.conventions`). These describe their recurrences as
  :class:`~rnngrad.formats.Layout` records over derived tensors in PyTorch's layout.

A bundle holds tensor *descriptions* (name, shape, dtype) and fetches the values on demand as
float64 NumPy arrays, so ``inspect`` on a large file reads only its header.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from .errors import LoadError

MAX_HEADER_BYTES = 100 * 1024 * 1024
# RNN weight files are megabytes to a few gigabytes; a larger file is refused before it is
# hashed or parsed (a sparse file can claim terabytes of zeros).
MAX_FILE_BYTES = 64 * 1024**3
ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError,
              NotImplementedError, RuntimeError, KeyError, UnicodeDecodeError)
MAX_NPZ_MEMBER_BYTES = 4 * 1024**3
MAX_NPZ_RATIO = 1000

FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
_SAFETENSORS_ITEMSIZE = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2,
    "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}
_SAFETENSORS_DTYPE_NAMES = {
    "F16": "float16", "BF16": "bfloat16", "F32": "float32", "F64": "float64", "BOOL": "bool",
    "U8": "uint8", "I8": "int8", "I16": "int16", "U16": "uint16", "I32": "int32",
    "U32": "uint32", "I64": "int64", "U64": "uint64", "F8_E5M2": "float8_e5m2",
    "F8_E4M3": "float8_e4m3fn",
}
# Keys under which training scripts commonly nest the model's state dict, in order of preference.
STATE_DICT_KEYS = (
    "state_dict", "model_state_dict", "model_state", "model", "net", "network", "module",
    "params", "weights", "ema_state_dict", "ema",
)
SAVE_STATE_DICT_HINT = "save model.state_dict() with torch.save or safetensors instead"


@dataclass(frozen=True, kw_only=True)
class TensorInfo:
    """Name, shape and dtype of one tensor in the file (dtype as a numpy/torch name)."""

    name: str
    shape: tuple[int, ...]
    dtype: str

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_DTYPES

    @property
    def numel(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1


@dataclass(frozen=True, kw_only=True)
class WeightBundle:
    """The tensors of one weights file, described eagerly and read lazily.

    ``tensors`` keeps file order. ``metadata`` is the safetensors header's ``__metadata__``
    (empty for other formats). ``notes`` are things the loader skipped or assumed, for people.
    ``layouts`` describe the recurrences explicitly when the format or a mapping knows them
    (empty: found by PyTorch's key patterns); ``derived`` names the tensors rnngrad computed
    (name -> what from); ``original`` is the bundle as read, before any mapping.
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


def load(path: str | Path) -> WeightBundle:
    """Read the weights file at ``path`` safely; raise :class:`LoadError` if it can't be."""
    file = _checked_path(path)
    size = file.stat().st_size
    if size > MAX_FILE_BYTES:
        raise LoadError(f"{file}: the file is too large ({size / 1024**3:.0f} GiB; rnngrad "
                        f"reads at most {MAX_FILE_BYTES // 1024**3} GiB)",
                        "export just the recurrent weights to a smaller file")
    head = _read_head(file)
    kind = _sniff(head, file)
    sha = _sha256(file)
    if kind in ("hdf5", "keras"):
        from .formats.keras import load_keras

        return load_keras(file, sha, archive=kind == "keras")
    if kind == "onnx":
        from .formats.onnx_file import load_onnx

        return load_onnx(file, sha)
    from .formats.conventions import recognise

    if kind == "safetensors":
        return recognise(_load_safetensors(file, sha))
    if kind == "npz":
        return recognise(_load_npz(file, sha))
    return recognise(_load_torch(file, sha))


def _checked_path(path: str | Path) -> Path:
    file = Path(path)
    if not file.exists():
        raise LoadError(f"{file}: no such file", "check the path")
    if file.is_dir():
        raise LoadError(f"{file}: is a directory, not a weights file",
                        "pass a .safetensors, .pt/.pth/.bin, .npz, Keras .h5/.keras or .onnx "
                        "file")
    if not file.is_file():
        raise LoadError(f"{file}: not a regular file", "pass a weights file")
    return file


def _read_head(file: Path, size: int = 64) -> bytes:
    try:
        with file.open("rb") as handle:
            return handle.read(size)
    except OSError as exc:
        raise LoadError(f"{file}: cannot be read ({exc.strerror})",
                        "check the file's permissions") from None


def _sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _sniff(head: bytes, file: Path) -> str:
    """Which loader may read this file, judged by its first bytes."""
    if not head:
        raise LoadError(f"{file}: the file is empty", "re-save or re-download the weights")
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return _zip_kind(file)
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "hdf5"
    if len(head) >= 9 and head[8:9] == b"{":  # before the pickle test: a length may start 0x80
        return "safetensors"
    if head[:1] == b"\x80":
        raise LoadError(f"{file}: legacy (non-zip) pickle format is refused: it can run code",
                        "re-save with a current PyTorch: torch.save(model.state_dict(), path)")
    if _looks_like_onnx(head) or file.suffix == ".onnx":
        return "onnx"
    if len(head) < 8 and file.suffix == ".safetensors":
        raise LoadError(f"{file}: truncated safetensors file ({len(head)} bytes, "
                        "shorter than its 8-byte header length)",
                        "re-save or re-download the weights")
    if file.suffix == ".safetensors":
        raise LoadError(f"{file}: not a safetensors file (its header is not a JSON object)",
                        "the file is corrupt or not safetensors; re-save it")
    raise LoadError(f"{file}: unrecognised file format", SUPPORTED_HINT)


SUPPORTED_HINT = ("rnngrad reads .safetensors, PyTorch state dicts (.pt/.pth/.bin), .npz, "
                  "Keras .h5/.keras and .onnx")
# ModelProto fields that may follow ir_version (field 1, varint): producer_name .. opset_import,
# metadata_props, training_info, functions.
_ONNX_NEXT_TAGS = (0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42, 0x72, 0xA2, 0xCA)


def _looks_like_onnx(head: bytes) -> bool:
    """An ONNX ModelProto starts with ir_version (tag 0x08, a small varint), then a known tag."""
    if len(head) < 3 or head[0] != 0x08 or not 1 <= head[1] <= 64:
        return False
    return head[2] in _ONNX_NEXT_TAGS


def _zip_members(file: Path, hint: str) -> list[zipfile.ZipInfo]:
    """The archive's central directory; a damaged archive is a LoadError with ``hint``."""
    try:
        with zipfile.ZipFile(file) as archive:
            return archive.infolist()
    except ZIP_ERRORS as exc:
        raise LoadError(f"{file}: damaged zip archive ({exc})", hint) from None


def _zip_kind(file: Path) -> str:
    names = [info.filename for info in _zip_members(file, "re-save or re-download the weights")]
    if "config.json" in names and any(name.startswith("model.weights") for name in names):
        return "keras"
    if any(name.endswith(".npy") for name in names):
        return "npz"
    if any("/code/" in name or name.endswith("constants.pkl") for name in names):
        raise LoadError(f"{file}: TorchScript archive; rnngrad never runs a file's code",
                        f"load it in your own code and {SAVE_STATE_DICT_HINT}")
    if any(name.endswith("data.pkl") for name in names):
        return "torch"
    raise LoadError(f"{file}: zip archive that is neither a PyTorch file, an .npz nor a "
                    ".keras archive", SUPPORTED_HINT)


# --- safetensors ----------------------------------------------------------------------------


def _load_safetensors(file: Path, sha: str) -> WeightBundle:
    header, metadata = _safetensors_header(file)
    tensors = {name: TensorInfo(name=name, shape=tuple(entry["shape"]),
                                dtype=_SAFETENSORS_DTYPE_NAMES.get(entry["dtype"],
                                                                   entry["dtype"].lower()))
               for name, entry in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"])}

    def fetch(name: str) -> np.ndarray:
        from safetensors import safe_open

        try:
            with safe_open(str(file), framework="pt") as handle:
                return handle.get_tensor(name).double().numpy()
        except Exception as exc:  # the Rust parser's errors carry no stable type
            raise LoadError(f"{file}: tensor {name!r} cannot be read ({exc})",
                            "the file is corrupt; re-save it") from None

    return WeightBundle(path=str(file), format="safetensors", sha256=sha, tensors=tensors,
                        metadata=metadata, _fetch=fetch)


def _safetensors_header(file: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """Validate the header as safetensors' own parser does, with messages for people."""
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
    _check_safetensors_entries(file, parsed, size - 8 - header_len)
    return parsed, metadata


class _DuplicateKey(Exception):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


def _check_safetensors_entries(file: Path, header: dict[str, Any], data_len: int) -> None:
    spans = []
    for name, entry in header.items():
        if (not isinstance(entry, dict) or entry.get("dtype") not in _SAFETENSORS_ITEMSIZE
                or not _is_int_list(entry.get("shape")) or not _is_int_list(entry.get("data_offsets"))
                or len(entry["data_offsets"]) != 2):
            raise LoadError(f"{file}: safetensors entry {name!r} is malformed ({entry!r:.80})",
                            "the file is corrupt; re-save it")
        start, end = entry["data_offsets"]
        numel = 1
        for dim in entry["shape"]:
            numel *= dim
        if not 0 <= start <= end or end - start != numel * _SAFETENSORS_ITEMSIZE[entry["dtype"]]:
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


def _is_int_list(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)


# --- PyTorch --------------------------------------------------------------------------------


def _load_torch(file: Path, sha: str) -> WeightBundle:
    import pickle

    import torch

    try:
        obj = torch.load(file, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unsupported object"
        raise LoadError(f"{file}: refused: the pickle holds Python objects beyond plain tensors "
                        f"and containers ({first[:160]})", SAVE_STATE_DICT_HINT) from None
    except Exception as exc:  # torch raises many types for damaged archives
        raise LoadError(f"{file}: cannot be read as a PyTorch file "
                        f"({type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''})",
                        "re-save or re-download the weights") from None
    state, where = _find_state_dict(obj)
    if state is None:
        raise LoadError(f"{file}: holds no tensors rnngrad can find "
                        f"(top level is {type(obj).__name__})", SAVE_STATE_DICT_HINT)
    notes = (f"state dict taken from checkpoint key {where!r}",) if where else ()
    arrays = {str(name): value for name, value in state.items() if isinstance(value, torch.Tensor)}
    skipped = sorted(str(name) for name, value in state.items()
                     if not isinstance(value, torch.Tensor))
    if skipped:
        notes += (f"skipped {len(skipped)} non-tensor entries: {', '.join(skipped[:5])}",)
    tensors = {name: TensorInfo(name=name, shape=tuple(t.shape),
                                dtype=str(t.dtype).removeprefix("torch."))
               for name, t in arrays.items()}
    return WeightBundle(path=str(file), format="pytorch", sha256=sha, tensors=tensors,
                        notes=notes, _fetch=lambda name: arrays[name].double().numpy())


def _find_state_dict(obj: Any) -> tuple[dict[str, Any] | None, str]:
    """The mapping of tensors in a checkpoint, and the key it was nested under ('' if top)."""
    import torch

    if not isinstance(obj, Mapping):
        return None, ""
    if any(isinstance(value, torch.Tensor) for value in obj.values()):
        return dict(obj), ""
    for key in STATE_DICT_KEYS:
        inner = obj.get(key)
        if isinstance(inner, Mapping) and any(isinstance(v, torch.Tensor) for v in inner.values()):
            return dict(inner), key
    nested = [(key, value) for key, value in obj.items()
              if isinstance(value, Mapping)
              and any(isinstance(v, torch.Tensor) for v in value.values())]
    if len(nested) == 1:
        return dict(nested[0][1]), str(nested[0][0])
    return None, ""


# --- npz ------------------------------------------------------------------------------------


def _load_npz(file: Path, sha: str) -> WeightBundle:
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
    for info in _zip_members(file, "re-save it with numpy.savez"):
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > MAX_NPZ_MEMBER_BYTES or (info.file_size > 64 * 1024**2
                                                     and ratio > MAX_NPZ_RATIO):
            raise LoadError(f"{file}: member {info.filename!r} would inflate to "
                            f"{info.file_size / 1024**3:.1f} GiB from "
                            f"{info.compress_size} bytes (zip bomb?)",
                            "refused; save the weights uncompressed with numpy.savez")


# --- in-memory sources ----------------------------------------------------------------------


def from_state_dict(state: Mapping[str, Any], *, name: str = "<state dict>",
                    metadata: Mapping[str, str] | None = None) -> WeightBundle:
    """A bundle over an in-memory mapping of name -> tensor/array (e.g. ``model.state_dict()``)."""
    arrays: dict[str, np.ndarray] = {}
    for key, value in state.items():
        if hasattr(value, "detach"):
            value = value.detach().cpu()
            value = value.double().numpy() if value.is_floating_point() else value.numpy()
        if isinstance(value, np.ndarray):
            arrays[str(key)] = value
    digest = hashlib.sha256()
    for key, value in arrays.items():
        digest.update(key.encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    tensors = {key: TensorInfo(name=key, shape=tuple(a.shape), dtype=str(a.dtype))
               for key, a in arrays.items()}
    from .formats.conventions import recognise

    return recognise(WeightBundle(path=name, format="memory", sha256=digest.hexdigest(),
                                  tensors=tensors, metadata=dict(metadata or {}),
                                  _fetch=lambda key: arrays[key]))


def as_bundle(source: Any) -> WeightBundle:
    """A :class:`WeightBundle` from a path, a bundle, a state dict or a ``torch.nn.Module``.

    For a module, the ``nonlinearity`` of its ``nn.RNN``/``nn.RNNCell`` submodules is carried
    into the metadata as ``<prefix>.nonlinearity``, as a safetensors header would carry it.
    """
    if isinstance(source, WeightBundle):
        return source
    if isinstance(source, (str, Path)):
        return load(source)
    if isinstance(source, Mapping):
        return from_state_dict(source)
    if hasattr(source, "state_dict") and hasattr(source, "named_modules"):
        metadata = {f"{name}.nonlinearity" if name else "nonlinearity": module.nonlinearity
                    for name, module in source.named_modules()
                    if isinstance(getattr(module, "nonlinearity", None), str)}
        return from_state_dict(source.state_dict(), name=f"<{type(source).__name__}>",
                               metadata=metadata)
    raise TypeError(f"cannot analyse a {type(source).__name__}: pass a path, a state dict "
                    "or a torch.nn.Module")
