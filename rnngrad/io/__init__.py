"""Layer 1 of rnngrad: weights files and in-memory weights -> :class:`WeightBundle`.

What lives here: sniffing a file's format by content (:mod:`.sniff`), one reader per format
(:mod:`.safetensors`, :mod:`.pytorch`, :mod:`.npz`, :mod:`.keras`, :mod:`.onnx`), the bundle
itself (:mod:`.bundle`) and the :class:`~rnngrad.io.layout.Layout` records by which a format
describes its recurrences over derived, PyTorch-named tensors (:mod:`.layout`).

What it may import: :mod:`rnngrad.errors` and NumPy; torch only inside the PyTorch reader and
for in-memory torch tensors, h5py and onnx only inside their readers (optional extras). It
never imports the cells, the analyses or anything above them.

Every reader is a safe one: nothing a file holds is ever executed (see the README's Security
section and docs/contract.md).
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from rnngrad.errors import LoadError
from rnngrad.io.archive import MAX_FILE_BYTES
from rnngrad.io.bundle import TensorInfo, WeightBundle
from rnngrad.io.sniff import checked_path, read_head, sha256, sniff
from rnngrad.limits import DEFAULT_MAX_BYTES

__all__ = ["DEFAULT_MAX_BYTES", "MAX_FILE_BYTES", "TensorInfo", "WeightBundle", "as_bundle",
           "from_state_dict", "load", "with_limit"]


def load(path: str | Path, *, max_bytes: int | None = DEFAULT_MAX_BYTES) -> WeightBundle:
    """Read the weights file at ``path`` safely; raise :class:`LoadError` if it can't be.

    The bundle is the file as it is: research conventions and ``--map`` files are applied on
    top of it by :func:`rnngrad.conventions.understand`. ``max_bytes`` (None: no limit) is the
    memory reading may take: what a reader must hold at once (a PyTorch archive) and each
    tensor read later (:attr:`WeightBundle.max_bytes`) are checked against it before they
    are read.
    """
    bundle = _read(checked_path(path), max_bytes)
    return with_limit(bundle, max_bytes)


def with_limit(bundle: WeightBundle, max_bytes: int | None) -> WeightBundle:
    """``bundle`` (and the file as read, when a layout was derived from it) with the memory
    limit ``max_bytes`` on every tensor read."""
    original = bundle.original
    if original is not None:
        original = dataclasses.replace(original, max_bytes=max_bytes)
    return dataclasses.replace(bundle, max_bytes=max_bytes, original=original)


def _read(file: Path, max_bytes: int | None) -> WeightBundle:
    size = file.stat().st_size
    if size > MAX_FILE_BYTES:
        raise LoadError(f"{file}: the file is too large ({size / 1024**3:.0f} GiB; rnngrad "
                        f"reads at most {MAX_FILE_BYTES // 1024**3} GiB)",
                        "export just the recurrent weights to a smaller file")
    kind = sniff(read_head(file), file)
    # the Keras and ONNX readers budget in GiB (rnngrad.io.budget); None: their own caps only
    max_memory = None if max_bytes is None else max_bytes / 1024**3
    if kind == "onnx":  # protobuf parses the whole file: its size is checked before hashing
        from rnngrad.io.onnx.reader import check_model_size

        check_model_size(file, size, max_memory)
    sha = sha256(file)
    if kind in ("hdf5", "keras"):
        from rnngrad.io.keras.reader import read_keras

        return read_keras(file, sha, archive=kind == "keras", max_memory=max_memory)
    if kind == "onnx":
        from rnngrad.io.onnx.reader import read_onnx

        return read_onnx(file, sha, max_memory=max_memory)
    if kind == "safetensors":
        from rnngrad.io.safetensors import read_safetensors

        return read_safetensors(file, sha)
    if kind == "npz":
        from rnngrad.io.npz import read_npz

        return read_npz(file, sha)
    from rnngrad.io.pytorch import read_pytorch

    return read_pytorch(file, sha, max_bytes)


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
    return WeightBundle(path=name, format="memory", sha256=digest.hexdigest(),
                        tensors=tensors, metadata=dict(metadata or {}),
                        _fetch=lambda key: arrays[key])


def as_bundle(source: Any, *, max_bytes: int | None = DEFAULT_MAX_BYTES) -> WeightBundle:
    """A :class:`WeightBundle` from a path, a bundle, a state dict or a ``torch.nn.Module``;
    a file is read with the memory limit ``max_bytes`` (see :func:`load`).

    For a module, the ``nonlinearity`` of its ``nn.RNN``/``nn.RNNCell`` submodules is carried
    into the metadata as ``<prefix>.nonlinearity``, as a safetensors header would carry it.
    """
    if isinstance(source, WeightBundle):
        return source if source.max_bytes == max_bytes else with_limit(source, max_bytes)
    if isinstance(source, (str, Path)):
        return load(source, max_bytes=max_bytes)
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
