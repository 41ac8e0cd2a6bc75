"""``.keras`` archives (a zip of ``config.json``, ``metadata.json`` and ``model.weights.h5``),
read with every size known before anything is inflated.

- ``config.json`` and ``metadata.json`` are read only when their declared size is under a cap
  (:data:`MAX_CONFIG_BYTES`, :data:`MAX_METADATA_BYTES`), and never past it even if the zip
  directory lies; JSON nested deeper than Python can parse is a LoadError, not a crash.
- ``model.weights.h5`` stored uncompressed (as Keras writes it) is read in place, through a
  window on the archive file: nothing is copied into memory. A compressed one (an archive
  zipped again by another tool) is inflated into memory only up to
  :data:`MAX_INFLATED_WEIGHTS`, within the file's memory budget, inflating at most
  :data:`MAX_INFLATION` times, and never past its declared size.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnngrad.errors import LoadError, brief
from rnngrad.io.archive import ZIP_ERRORS
from rnngrad.io.budget import MemoryBudget, size_text

ARCHIVE_WEIGHTS = "model.weights.h5"
MAX_CONFIG_BYTES = 64 * 1024**2
MAX_METADATA_BYTES = 1024**2
MAX_INFLATION = 1100  # deflate cannot exceed ~1032:1
MAX_INFLATED_WEIGHTS = 1024**3
RESAVE_HINT = "re-save the model with model.save('x.keras')"


@dataclass(frozen=True)
class StoredMember:
    """An uncompressed zip member: ``length`` bytes at ``start`` of ``path``."""

    path: Path
    start: int
    length: int

    def open(self) -> io.RawIOBase:
        """A read-only, seekable raw stream over the member's bytes alone (position 0 is
        ``start``)."""
        return _Window(self.path, self.start, self.length)


@dataclass(frozen=True)
class KerasArchive:
    """What a ``.keras`` archive holds: its weights (in place, or inflated bytes), its model
    config (None when absent) and the Keras version that wrote it ("" when unknown)."""

    weights: StoredMember | bytes
    config: dict | None
    version: str


def open_archive(file: Path, budget: MemoryBudget) -> KerasArchive:
    """The weights, config and Keras version of a ``.keras`` archive, every member's size
    checked before it is read (module doc); a damaged archive is a LoadError."""
    where = str(file)
    try:
        with zipfile.ZipFile(file) as zipped:
            infos = {info.filename: info for info in zipped.infolist()}
            if ARCHIVE_WEIGHTS not in infos:
                weights = [n for n in infos if n.startswith("model.weights")]
                raise LoadError(f"{where}: .keras archive without {ARCHIVE_WEIGHTS} "
                                f"(it has {', '.join(weights) or 'no weights'})",
                                "rnngrad reads HDF5 weights; an .npz weights store needs pickle "
                                "and is refused; re-save with model.save('x.keras')")
            config = _json_member(zipped, infos.get("config.json"), MAX_CONFIG_BYTES, where)
            metadata = _json_member(zipped, infos.get("metadata.json"), MAX_METADATA_BYTES,
                                    where)
            weights = _weights(file, zipped, infos[ARCHIVE_WEIGHTS], budget)
    except ZIP_ERRORS as exc:
        raise LoadError(f"{where}: damaged .keras archive ({brief(exc)})",
                        "re-save or re-download the model") from None
    version = metadata.get("keras_version") if isinstance(metadata, dict) else None
    return KerasArchive(weights=weights, config=config if isinstance(config, dict) else None,
                        version=version if isinstance(version, str) else "")


def parse_json(text: str | bytes, what: str, where: str) -> Any:
    """JSON from a file's text; malformed or absurdly nested JSON is a LoadError."""
    try:
        return json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LoadError(f"{where}: {what} is not JSON ({brief(exc)})", RESAVE_HINT) from None
    except RecursionError:
        raise LoadError(f"{where}: {what} is JSON nested too deeply to read",
                        RESAVE_HINT) from None


def _json_member(zipped: zipfile.ZipFile, info: zipfile.ZipInfo | None, cap: int,
                 where: str) -> Any:
    if info is None:
        return None
    if info.file_size > cap:
        raise LoadError(f"{where}: {info.filename} in the archive declares "
                        f"{size_text(info.file_size)}, more than the {size_text(cap)} a Keras "
                        "config can need", "the archive is damaged or hostile; re-save it")
    with zipped.open(info) as handle:
        data = handle.read(cap + 1)
    if len(data) > cap:
        raise LoadError(f"{where}: {info.filename} inflates past {size_text(cap)}",
                        "the archive is damaged or hostile; re-save it")
    return parse_json(data, f"{info.filename} in the archive", where)


def _weights(file: Path, zipped: zipfile.ZipFile, info: zipfile.ZipInfo,
             budget: MemoryBudget) -> StoredMember | bytes:
    where = str(file)
    if info.compress_type == zipfile.ZIP_STORED and info.file_size == info.compress_size:
        return _stored(file, info)
    if info.file_size > MAX_INFLATED_WEIGHTS:
        raise LoadError(f"{where}: {ARCHIVE_WEIGHTS} is compressed and would inflate to "
                        f"{size_text(info.file_size)}; rnngrad inflates at most "
                        f"{size_text(MAX_INFLATED_WEIGHTS)} in memory",
                        "re-save the model with model.save('x.keras'): Keras stores the "
                        "weights uncompressed, and rnngrad reads them in place")
    if info.file_size > max(info.compress_size, 1) * MAX_INFLATION:
        raise LoadError(f"{where}: {ARCHIVE_WEIGHTS} would inflate from "
                        f"{size_text(info.compress_size)} to {size_text(info.file_size)}",
                        "refused as a compression bomb; re-save the model")
    budget.take(info.file_size, f"{ARCHIVE_WEIGHTS} inflated")
    with zipped.open(info) as handle:
        data = handle.read(info.file_size + 1)
    if len(data) != info.file_size:
        raise LoadError(f"{where}: {ARCHIVE_WEIGHTS} inflates to {len(data)} bytes, not the "
                        f"{info.file_size} the archive declares", "the archive is damaged")
    return data


def _stored(file: Path, info: zipfile.ZipInfo) -> StoredMember:
    """Where a stored member's bytes are, from its local header (checked to fit the file)."""
    where = str(file)
    with file.open("rb") as handle:
        handle.seek(info.header_offset)
        header = handle.read(30)
        size = file.stat().st_size
    if len(header) != 30 or header[:4] != b"PK\x03\x04":
        raise LoadError(f"{where}: {ARCHIVE_WEIGHTS} has no valid local header",
                        "the archive is damaged")
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    start = info.header_offset + 30 + name_length + extra_length
    if start + info.compress_size > size:
        raise LoadError(f"{where}: {ARCHIVE_WEIGHTS} runs past the end of the archive",
                        "the archive is truncated; re-save or re-download it")
    return StoredMember(path=file, start=start, length=info.compress_size)


class _Window(io.RawIOBase):
    """A read-only, seekable view of ``length`` bytes at ``start`` of a file (for h5py)."""

    def __init__(self, path: Path, start: int, length: int):
        super().__init__()
        self._file = path.open("rb")
        self._start, self._length, self._position = start, length, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._length}[whence]
        self._position = max(0, base + offset)
        return self._position

    def tell(self) -> int:
        return self._position

    def readinto(self, buffer) -> int:
        count = max(0, min(len(buffer), self._length - self._position))
        self._file.seek(self._start + self._position)
        data = self._file.read(count)
        buffer[:len(data)] = data
        self._position += len(data)
        return len(data)

    def close(self) -> None:
        self._file.close()
        super().close()

