"""Keras weights read with h5py only (``rnngrad[keras]``); Keras' model loader is never called.

Two layouts, recognised from the file:

- Keras 2 (``save_weights`` to ``.h5``, ``model.save("x.h5")``, and Keras 3's legacy
  ``model.save("x.h5")``): the root (or its ``model_weights`` group) lists ``layer_names``;
  each layer group lists ``weight_names`` (``lstm_1/kernel:0``, ``bidirectional/forward_lstm/
  lstm_cell/recurrent_kernel:0``, ...). Full-model files carry the architecture as JSON in
  the ``model_config`` attribute: class names, activations, ``go_backwards``, ``reset_after``.
- Keras 3 (``.keras`` archives = zip of ``config.json``, ``metadata.json`` and
  ``model.weights.h5``; and ``.weights.h5``): each layer's variables are ``<path>/vars/0, 1, ...``
  with paths built from class names as Keras' saving_lib builds them (``layers/lstm/cell/vars``,
  ``layers/bidirectional/forward_layer/cell/vars``, ``layers/gru_1/cell/vars``).

Recurrent cells become PyTorch-named derived tensors (:mod:`rnngrad.io.keras.layers`; a Bidirectional
layer gives ``<name>.weight_hh_l0`` and ``<name>.weight_hh_l0_reverse``). Embedding tables are
listed as ``<layer>.weight`` and Dense layers as ``<layer>.weight`` (kernel transposed) and
``<layer>.bias``, so ``--tokens`` and ``--loss mse|ce`` find them; other weights as
``<layer>.<weight>``. Without a config (weights-only files) the layer type comes from the shapes
and the activations are Keras' defaults, which the notes say.
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from rnngrad.errors import LoadError
from rnngrad.io.bundle import TensorInfo, WeightBundle
from rnngrad.io.layout import Derived, with_derived
from rnngrad.io.keras import hdf5
from rnngrad.io.keras.layers import CLASS_KIND, KerasRNN, describe

MAX_ARCHIVE_MEMBER = 4 * 1024**3
ARCHIVE_WEIGHTS = "model.weights.h5"
_SNAKE_CLASS = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "SimpleRNN", "cu_dnnlstm": "CuDNNLSTM",
                "cu_dnngru": "CuDNNGRU", "embedding": "Embedding", "dense": "Dense"}
_CONTAINER_NAMES = {"layers", "_layer_checkpoint_dependencies"}


@dataclass
class Found:
    """What one pass over the file found: cells, other weights, and how to describe them."""

    flavour: str
    rnns: list[KerasRNN] = field(default_factory=list)
    others: list[tuple[str, str, tuple[int, ...], str, bool]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def read_keras(file: Path, sha: str, *, archive: bool) -> WeightBundle:
    """A Keras ``.h5``/``.weights.h5`` file or ``.keras`` archive as a bundle."""
    where = str(file)
    source: Path | bytes = file
    config, version = None, ""
    if archive:
        source, config, version = _archive(file)
    with hdf5.open_file(source, where) as h5:
        found = _discover(h5, config, version, where, archive)

    def read(path: str) -> np.ndarray:
        with hdf5.open_file(source, where) as h5:
            dataset = hdf5.node(h5, path, where)
            return hdf5.read(dataset, where)

    return _bundle(file, sha, found, read, "keras" if archive else "keras-hdf5")


def _bundle(file: Path, sha: str, found: Found, read: Callable[[str], np.ndarray],
            format: str) -> WeightBundle:
    where = str(file)
    derived: dict[str, Derived] = {}
    layouts, notes = [], list(found.notes)
    for rnn in found.rnns:
        layout, tensors, more = describe(rnn, read, found.flavour, where)
        clash = sorted(set(tensors) & set(derived))
        if clash:
            raise LoadError(f"{where}: two recurrent cells map to {clash[0]}",
                            "the file holds duplicate layer names")
        derived.update(tensors)
        layouts.append(layout)
        notes += more
    others = _others(found.others, read, set(derived))
    base = WeightBundle(path=where, format=format, sha256=sha,
                        tensors={name: item.info for name, item in others.items()},
                        notes=(f"read as {found.flavour}",),
                        _fetch=lambda name: others[name].compute())
    if not layouts:
        return base
    return with_derived(base, derived, tuple(layouts), tuple(notes))


def _others(items, read, taken: set[str]) -> dict[str, Derived]:
    out: dict[str, Derived] = {}
    for name, path, shape, dtype, transpose in items:
        unique, index = name, 1
        while unique in out or unique in taken:
            unique, index = f"{name}_{index}", index + 1
        compute = (lambda p=path: read(p).T) if transpose else (lambda p=path: read(p))
        out[unique] = Derived(TensorInfo(name=unique, shape=tuple(reversed(shape)) if transpose
                                         else tuple(shape), dtype=dtype), compute,
                              f"{path}{'ᵀ' if transpose else ''}")
    return out


# --- .keras archives --------------------------------------------------------------------------


def _archive(file: Path) -> tuple[bytes, dict | None, str]:
    try:
        with zipfile.ZipFile(file) as zipped:
            names = zipped.namelist()
            if ARCHIVE_WEIGHTS not in names:
                weights = [n for n in names if n.startswith("model.weights")]
                raise LoadError(f"{file}: .keras archive without {ARCHIVE_WEIGHTS} "
                                f"(it has {', '.join(weights) or 'no weights'})",
                                "rnngrad reads HDF5 weights; an .npz weights store needs pickle "
                                "and is refused; re-save with model.save('x.keras')")
            info = zipped.getinfo(ARCHIVE_WEIGHTS)
            if info.file_size > MAX_ARCHIVE_MEMBER:
                raise LoadError(f"{file}: {ARCHIVE_WEIGHTS} would inflate to "
                                f"{info.file_size / 1024**3:.1f} GiB", "refused")
            data = zipped.read(ARCHIVE_WEIGHTS)
            config = _json_member(zipped, "config.json", file)
            metadata = _json_member(zipped, "metadata.json", file) or {}
    except (zipfile.BadZipFile, OSError) as exc:
        raise LoadError(f"{file}: damaged .keras archive ({exc})",
                        "re-save or re-download the model") from None
    return data, config, str(metadata.get("keras_version", ""))


def _json_member(zipped: zipfile.ZipFile, name: str, file: Path) -> dict | None:
    if name not in zipped.namelist():
        return None
    try:
        value = json.loads(zipped.read(name).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LoadError(f"{file}: {name} in the archive is not JSON ({exc})",
                        "re-save the model") from None
    return value if isinstance(value, dict) else None


# --- which layout -------------------------------------------------------------------------


def _discover(h5, config: dict | None, version: str, where: str, archive: bool) -> Found:
    root = h5
    if not _has_layer_names(h5) and "model_weights" in h5 and _has_layer_names(h5["model_weights"]):
        root = h5["model_weights"]
    if _has_layer_names(root):
        return _keras2(h5, root, where)
    if any(name in h5 for name in ("layers", "_layer_checkpoint_dependencies", "vars")):
        flavour = (f"Keras {version or '3'} .keras archive" if archive
                   else "Keras 3 weights file (.weights.h5)")
        return _keras3(h5, config, flavour, where)
    raise LoadError(f"{where}: HDF5 file without Keras weights (no layer_names, no "
                    "layers/…/vars groups)", "rnngrad reads HDF5 files written by Keras")


def _has_layer_names(group) -> bool:
    return "layer_names" in group.attrs or "layer_names0" in group.attrs


# --- Keras 2 ----------------------------------------------------------------------------------


def _keras2(h5, root, where: str) -> Found:
    version = hdf5.text(root.attrs.get("keras_version", h5.attrs.get("keras_version", b"")))
    if not version or version.startswith("1"):
        raise LoadError(f"{where}: Keras 1 weights file (keras_version {version or 'missing'})",
                        "load it in Keras 2 and save it again")
    raw_config = h5.attrs.get("model_config")
    configs = _configs_by_name(json.loads(hdf5.text(raw_config))) if raw_config is not None else {}
    kind = "full-model HDF5" if raw_config is not None else "save_weights HDF5"
    found = Found(flavour=f"Keras {version} {kind}")
    for layer in hdf5.attribute_list(root, "layer_names"):
        group = hdf5.node(root, layer, where)
        _keras2_layer(group, layer, configs, found, where)
    return found


def _keras2_layer(group, layer: str, configs: dict, found: Found, where: str) -> None:
    by_prefix: dict[str, dict[str, str]] = {}
    for name in hdf5.attribute_list(group, "weight_names"):
        prefix, _, leaf = name.rpartition("/")
        by_prefix.setdefault(prefix, {})[leaf.split(":")[0]] = f"{group.name}/{name}"
    cells = [p for p, leaves in by_prefix.items() if {"kernel", "recurrent_kernel"} <= set(leaves)]
    analysed: set[str] = set()
    for index, prefix in enumerate(cells):
        module, class_name, config, direction = _keras2_identity(layer, prefix, index, len(cells),
                                                                 configs)
        rnn = _rnn(group.file, by_prefix[prefix], module, direction, class_name, config, where)
        if rnn is None:
            found.notes.append(f"{module}: recurrent weights that are not matrices (a "
                               "convolutional RNN?) are listed, not analysed")
        else:
            found.rnns.append(rnn)
            analysed.add(prefix)
    for prefix, leaves in by_prefix.items():
        if prefix not in analysed:
            first = prefix.split("/")[0]
            module = first if first in configs and first != layer else layer
            class_name = configs.get(module, (None, {}))[0]
            found.others += _other_weights(group.file, module, class_name, leaves, where)


def _keras2_identity(layer: str, prefix: str, index: int, count: int, configs: dict):
    first = prefix.split("/")[0]
    module = first if first in configs and first != layer else layer
    class_name, config = configs.get(module, (None, {}))
    lowered = prefix.lower()
    if class_name == "Bidirectional" or "forward_" in lowered or "backward_" in lowered:
        reverse = "backward" in lowered or ("forward" not in lowered and index == 1)
        inner = (config.get("backward_layer") if reverse else None) or config.get("layer") or {}
        class_name, config = _cell_config(*_unwrap(inner))
        return module, class_name, config, "reverse" if reverse else "forward"
    if count > 1:
        module = f"{module}.cell{index}"
    direction = "reverse" if config.get("go_backwards") else "forward"
    class_name, config = _cell_config(class_name, config)
    return module, class_name, config, direction


def _cell_config(class_name: str | None, config: dict) -> tuple[str | None, dict]:
    """A generic ``RNN(cell)`` layer is described by its cell's class and config."""
    if class_name == "RNN":
        return _unwrap(config.get("cell") or {})
    return class_name, config


def _unwrap(entry: Any) -> tuple[str | None, dict]:
    if not isinstance(entry, dict):
        return None, {}
    return entry.get("class_name"), entry.get("config") or {}


def _configs_by_name(config: Any) -> dict[str, tuple[str, dict]]:
    """Every layer config in a Keras model config, by layer name (nested models included)."""
    out: dict[str, tuple[str, dict]] = {}

    def visit(entry: Any) -> None:
        if isinstance(entry, dict):
            inner = entry.get("config")
            if isinstance(entry.get("class_name"), str) and isinstance(inner, dict) \
                    and isinstance(inner.get("name"), str):
                out.setdefault(inner["name"], (entry["class_name"], inner))
            for value in entry.values():
                visit(value)
        elif isinstance(entry, list):
            for value in entry:
                visit(value)

    visit(config)
    return out


# --- Keras 3 ----------------------------------------------------------------------------------


def _keras3(h5, config: dict | None, flavour: str, where: str) -> Found:
    found = Found(flavour=flavour)
    paths = _keras3_paths(config) if config else {}
    for owner, group in _vars_groups(h5, where):
        datasets = _numbered(group, where)
        layer_path = owner.removesuffix("/cell")
        entry = paths.get(layer_path)
        module, direction = _keras3_module(layer_path, paths)
        class_name, layer_config = _unwrap(entry) if entry else (_class_from_path(layer_path), {})
        if layer_path.rsplit("/", 1)[-1] not in ("forward_layer", "backward_layer") \
                and layer_config.get("go_backwards"):
            direction = "reverse"
        class_name, layer_config = _cell_config(class_name, layer_config)
        leaves = dict(zip(("kernel", "recurrent_kernel", "bias"), datasets))
        rnn = None
        if owner.endswith("/cell") and len(datasets) in (2, 3):
            rnn = _rnn(h5, leaves, module, direction, class_name, layer_config, where)
        if rnn is not None:
            found.rnns.append(rnn)
        else:
            named = dict(zip(("kernel", "bias"), datasets)) if class_name == "Dense" else \
                {("embeddings" if class_name == "Embedding" else str(i)): path
                 for i, path in enumerate(datasets)}
            found.others += _other_weights(h5, module, class_name, named, where)
    if not config:
        found.notes.append("no config.json: layer types from the weights' paths and shapes")
    first_seen = {rnn.module: index for index, rnn in reversed(list(enumerate(found.rnns)))}
    found.rnns.sort(key=lambda rnn: (first_seen[rnn.module], rnn.direction != "forward"))
    return found


def _vars_groups(h5, where: str):
    """(owner path, vars group) for every layer's variables, optimizer state excluded."""
    stack = [(name, obj) for name, obj in hdf5.children(h5, where)
             if name in _CONTAINER_NAMES and hdf5.is_group(obj)]
    while stack:
        path, group = stack.pop(0)
        for name, obj in hdf5.children(group, where):
            if not hdf5.is_group(obj):
                continue
            if name == "vars":
                if len(obj):
                    yield path, obj
            else:
                stack.append((f"{path}/{name}", obj))


def _numbered(group, where: str) -> list[str]:
    names = [name for name, obj in hdf5.children(group, where) if hdf5.is_dataset(obj)]
    return [f"{group.name}/{name}" for name in sorted(names, key=lambda n: (len(n), n))]


def _keras3_paths(config: dict) -> dict[str, dict]:
    """Layer path in the weights file -> layer config entry, as Keras' saving_lib names them."""
    out: dict[str, dict] = {}

    def visit(entry: dict, prefix: str) -> None:
        layers = (entry.get("config") or {}).get("layers")
        if not isinstance(layers, list):
            return
        counts: dict[str, int] = {}
        for layer in layers:
            if not isinstance(layer, dict) or not isinstance(layer.get("class_name"), str):
                continue
            snake = _snake(layer["class_name"])
            counts[snake] = counts.get(snake, -1) + 1
            path = f"{prefix}layers/{snake}" + (f"_{counts[snake]}" if counts[snake] else "")
            name = (layer.get("config") or {}).get("name")
            for key in (path, f"{prefix}_layer_checkpoint_dependencies/{name}"):
                out[key] = layer
            if layer["class_name"] == "Bidirectional":
                inner = layer.get("config") or {}
                out[f"{path}/forward_layer"] = inner.get("layer") or {}
                out[f"{path}/backward_layer"] = inner.get("backward_layer") or inner.get("layer") or {}
            visit(layer, f"{path}/")

    visit(config, "")
    return out


def _snake(name: str) -> str:
    """Keras' naming.to_snake_case."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _keras3_module(layer_path: str, paths: dict[str, dict]) -> tuple[str, str]:
    parts = layer_path.split("/")
    direction = "forward"
    if parts[-1] in ("forward_layer", "backward_layer"):
        direction = "reverse" if parts[-1] == "backward_layer" else "forward"
        parts = parts[:-1]
    entry = paths.get("/".join(parts))
    name = (entry or {}).get("config", {}).get("name") if entry else None
    if not name:
        name = ".".join(part for part in parts if part not in _CONTAINER_NAMES)
    return name, direction


def _class_from_path(layer_path: str) -> str | None:
    last = re.sub(r"_\d+$", "", layer_path.rsplit("/", 1)[-1])
    return _SNAKE_CLASS.get(last)


# --- shared -----------------------------------------------------------------------------------


def _rnn(h5, leaves: dict[str, str], module: str, direction: str, class_name: str | None,
         config: dict, where: str) -> KerasRNN | None:
    """The cell, or None when kernel and recurrent kernel are not matrices (ConvLSTM, ...)."""
    def shape(path: str | None):
        if path is None:
            return None
        dataset = hdf5.node(h5, path, where)
        if not hdf5.is_dataset(dataset):
            raise LoadError(f"{where}: {path} is not a dataset", "the file is damaged")
        return tuple(hdf5.checked(dataset, where).shape), str(dataset.dtype)

    (kernel, dtype), (recurrent, _) = shape(leaves["kernel"]), shape(leaves["recurrent_kernel"])
    bias = shape(leaves.get("bias"))
    if len(kernel) != 2 or len(recurrent) != 2:
        return None
    return KerasRNN(module=module, direction=direction, kernel=leaves["kernel"],
                    recurrent=leaves["recurrent_kernel"], bias=leaves.get("bias"),
                    kernel_shape=kernel, recurrent_shape=recurrent,
                    bias_shape=bias[0] if bias else None, dtype=dtype,
                    class_name=class_name if class_name in CLASS_KIND else None, config=config)


def _other_weights(h5, module: str, class_name: str | None, leaves: dict[str, str], where: str):
    """(name, path, shape, dtype, transpose) of a non-recurrent layer's weights."""
    out = []
    dense = class_name == "Dense" or (class_name is None and set(leaves) <= {"kernel", "bias"}
                                      and "kernel" in leaves)
    for leaf, path in leaves.items():
        dataset = hdf5.checked(hdf5.node(h5, path, where), where)
        shape, dtype = tuple(dataset.shape), str(dataset.dtype)
        if leaf == "embeddings" and len(shape) == 2:
            out.append((f"{module}.weight", path, shape, dtype, False))
        elif dense and leaf == "kernel" and len(shape) == 2:
            out.append((f"{module}.weight", path, shape, dtype, True))
        elif dense and leaf == "bias":
            out.append((f"{module}.bias", path, shape, dtype, False))
        else:
            out.append((f"{module}.{leaf}", path, shape, dtype, False))
    return out
