"""What a file is, judged by its first bytes (not its extension), and its identity.

:func:`sniff` names the one reader that may open a file, or refuses it: the legacy (non-zip)
pickle format and TorchScript archives can run code and are never opened; anything not
recognised is refused with the list of formats rnngrad reads.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from rnngrad.errors import LoadError
from rnngrad.io.archive import zip_members
from rnngrad.io.pytorch import SAVE_STATE_DICT_HINT


def checked_path(path: str | Path) -> Path:
    """``path`` as a Path to an existing regular file; anything else is a LoadError."""
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


def read_head(file: Path, size: int = 64) -> bytes:
    """The first ``size`` bytes of ``file`` (fewer when it is shorter), for :func:`sniff`."""
    try:
        with file.open("rb") as handle:
            return handle.read(size)
    except OSError as exc:
        raise LoadError(f"{file}: cannot be read ({exc.strerror})",
                        "check the file's permissions") from None


def sha256(file: Path) -> str:
    """The file's SHA-256 as hex, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with file.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sniff(head: bytes, file: Path) -> str:
    """The reader for this file (safetensors, torch, npz, hdf5, keras, onnx), or a LoadError."""
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


def _zip_kind(file: Path) -> str:
    names = [info.filename for info in zip_members(file, "re-save or re-download the weights")]
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
