"""Keras weights read with h5py only (``rnngrad[keras]``); Keras' model loader is never called.

Two layouts, recognised from the file:

- Keras 2 (``save_weights`` to ``.h5``, ``model.save("x.h5")``, and Keras 3's legacy
  ``model.save("x.h5")``): the root (or its ``model_weights`` group) lists ``layer_names``;
  each layer group lists ``weight_names`` (``lstm_1/kernel:0``, ``bidirectional/forward_lstm/
  lstm_cell/recurrent_kernel:0``; Keras 3 prefixes the model's name:
  ``sequential/enc/simple_rnn_cell/kernel``). Full-model files carry the architecture as JSON
  in the ``model_config`` attribute: class names, activations, ``go_backwards``,
  ``reset_after``. The layer a cell belongs to is its layer group (inside a nested model,
  the first layer its weight path names).
- Keras 3 (``.keras`` archives = zip of ``config.json``, ``metadata.json`` and
  ``model.weights.h5``; and ``.weights.h5``): each layer's variables are ``<path>/vars/0, 1, ...``
  with paths built from class names as Keras' saving_lib builds them (``layers/lstm/cell/vars``,
  ``layers/bidirectional/forward_layer/cell/vars``, ``layers/rnn/cell/cells/lstm_cell/vars``).

Recurrent cells become PyTorch-named derived tensors (:mod:`rnngrad.io.keras.layers`; a
Bidirectional layer gives ``<name>.weight_hh_l0`` and ``<name>.weight_hh_l0_reverse``; the
cells of a ``StackedRNNCells`` are ``<name>.cell0``, ``<name>.cell1``, ...). Embedding tables
are listed as ``<layer>.weight`` and Dense layers as ``<layer>.weight`` (kernel transposed)
and ``<layer>.bias``, so ``--tokens`` and ``--loss mse|ce`` find them; other weights as
``<layer>.<weight>``. What each cell runs comes from its layer config; without one (weights-only
files) the layer type comes from the shapes and the activations are the Keras version's
defaults, which the notes say.

Safety (:mod:`rnngrad.io.keras.hdf5`, :mod:`rnngrad.io.keras.archive`): hard links only, no
other file ever opened, every size known before it is read, and the file's weights as float64
checked against the memory budget (:data:`MAX_FILE_MEMORY`, ``--max-memory``) before any of
them is read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from rnngrad.errors import LoadError
from rnngrad.io.budget import MemoryBudget
from rnngrad.io.bundle import TensorInfo, WeightBundle
from rnngrad.io.keras.archive import open_archive, parse_json
from rnngrad.io.keras.hdf5 import SafeHDF5, guarded, nbytes
from rnngrad.io.keras.layers import CLASS_KIND, KerasRNN, describe
from rnngrad.io.layout import Derived, with_derived

# The most memory one Keras file may make rnngrad take: its weights as float64 (and an
# inflated weights member). RNN weights are megabytes to a few gigabytes.
MAX_FILE_MEMORY = 8 * 1024**3
_SNAKE_CLASS = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "SimpleRNN", "cu_dnnlstm": "CuDNNLSTM",
                "cu_dnngru": "CuDNNGRU", "embedding": "Embedding", "dense": "Dense"}
_CONTAINER_NAMES = {"layers", "_layer_checkpoint_dependencies"}
_MODEL_CLASSES = {"Sequential", "Functional", "Model"}


@dataclass
class Found:
    """What one pass over the file found: cells, other weights, and how to describe them."""

    flavour: str
    version: str = ""
    rnns: list[KerasRNN] = field(default_factory=list)
    others: list[tuple[str, str, tuple[int, ...], str, bool]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def read_keras(file: Path, sha: str, *, archive: bool,
               max_memory: float | None = None) -> WeightBundle:
    """A Keras ``.h5``/``.weights.h5`` file or ``.keras`` archive as a bundle.

    ``max_memory`` (GiB, ``--max-memory``) lowers the per-file cap :data:`MAX_FILE_MEMORY`.
    """
    where = str(file)
    budget = MemoryBudget(where, MAX_FILE_MEMORY, max_memory)
    source: Any = file
    config, version = None, ""
    if archive:
        opened = open_archive(file, budget)
        source, config, version = opened.weights, opened.config, opened.version
    with guarded(where), SafeHDF5(source, where, budget) as h5:
        found = _discover(h5, config, version, where, archive)
    _plan_memory(found, budget)

    def read(path: str) -> np.ndarray:
        fresh = MemoryBudget(where, MAX_FILE_MEMORY, max_memory)
        with guarded(where), SafeHDF5(source, where, fresh) as h5:
            return h5.read(h5.dataset(h5.root, path))

    return _bundle(file, sha, found, read, "keras" if archive else "keras-hdf5")


def _plan_memory(found: Found, budget: MemoryBudget) -> None:
    """The file's weights as float64 must fit the budget before any of them is read."""
    for rnn in found.rnns:
        for path, shape in ((rnn.kernel, rnn.kernel_shape), (rnn.recurrent, rnn.recurrent_shape),
                            (rnn.bias, rnn.bias_shape)):
            if path is not None and shape is not None:
                budget.take(nbytes(shape, 8), f"{path} as float64")
    for _, path, shape, _, _ in found.others:
        budget.take(nbytes(shape, 8), f"{path} as float64")


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


# --- which layout -------------------------------------------------------------------------


def _discover(h5: SafeHDF5, config: dict | None, version: str, where: str,
              archive: bool) -> Found:
    root = h5.root
    if not _has_layer_names(h5, root) and h5.has(root, "model_weights"):
        inner = h5.child(root, "model_weights")
        if h5.is_group(inner) and _has_layer_names(h5, inner):
            root = inner
    if _has_layer_names(h5, root):
        return _keras2(h5, root, where)
    if any(h5.has(h5.root, name) for name in ("layers", "_layer_checkpoint_dependencies", "vars")):
        flavour = (f"Keras {version or '3'} .keras archive" if archive
                   else "Keras 3 weights file (.weights.h5)")
        return _keras3(h5, config, flavour, version, where)
    raise LoadError(f"{where}: HDF5 file without Keras weights (no layer_names, no "
                    "layers/…/vars groups)", "rnngrad reads HDF5 files written by Keras")


def _has_layer_names(h5: SafeHDF5, group) -> bool:
    return h5.has_attribute(group, "layer_names") or h5.has_attribute(group, "layer_names0")


# --- Keras 2 ----------------------------------------------------------------------------------


def _keras2(h5: SafeHDF5, root, where: str) -> Found:
    version = h5.text(root, "keras_version") or h5.text(h5.root, "keras_version") or ""
    if not version or version.startswith("1"):
        raise LoadError(f"{where}: Keras 1 weights file (keras_version {version or 'missing'})",
                        "load it in Keras 2 and save it again")
    raw_config = h5.text(h5.root, "model_config")
    configs: dict[str, tuple[str, dict]] = {}
    if raw_config is not None:
        parsed = parse_json(raw_config, "the model_config attribute", where)
        if not isinstance(parsed, dict):
            raise LoadError(f"{where}: the model_config attribute is JSON but not a Keras model "
                            f"config (a {type(parsed).__name__})", "re-save the model")
        configs = _configs_by_name(parsed)
    kind = "full-model HDF5" if raw_config is not None else "save_weights HDF5"
    found = Found(flavour=f"Keras {version} {kind}", version=version)
    for layer in h5.text_list(root, "layer_names"):
        group = h5.node(root, layer)
        if not h5.is_group(group):
            raise LoadError(f"{where}: layer {layer!r} is not a group", "the file is damaged")
        _keras2_layer(h5, group, layer, configs, found, where)
    return found


def _keras2_layer(h5: SafeHDF5, group, layer: str, configs: dict, found: Found,
                  where: str) -> None:
    by_prefix: dict[str, dict[str, str]] = {}
    for name in h5.text_list(group, "weight_names"):
        prefix, _, leaf = name.rpartition("/")
        by_prefix.setdefault(prefix, {})[leaf.split(":")[0]] = f"{group.name}/{name}"
    cells = [p for p, leaves in by_prefix.items() if {"kernel", "recurrent_kernel"} <= set(leaves)]
    analysed: set[str] = set()
    for index, prefix in enumerate(cells):
        identity = _keras2_identity(layer, prefix, index, len(cells), configs, where)
        rnn = _rnn(h5, by_prefix[prefix], identity, found.version, where)
        if rnn is None:
            found.notes.append(f"{identity.module}: recurrent weights that are not matrices (a "
                               "convolutional RNN?) are listed, not analysed")
        else:
            found.rnns.append(rnn)
            analysed.add(prefix)
    for prefix, leaves in by_prefix.items():
        if prefix not in analysed:
            module = _owning_layer(layer, prefix, configs)
            class_name = configs.get(module, (None, {}))[0]
            found.others += _other_weights(h5, module, class_name, leaves)


@dataclass(frozen=True)
class Identity:
    """Which layer a cell belongs to and what its config says (``config`` None: no config)."""

    module: str
    class_name: str | None
    config: dict | None
    direction: str = "forward"
    reversed_output: bool = False


def _keras2_identity(layer: str, prefix: str, index: int, count: int, configs: dict,
                     where: str) -> Identity:
    module = _owning_layer(layer, prefix, configs)
    class_name, config = configs.get(module, (None, None))
    parts = prefix.split("/")
    after = parts[parts.index(module) + 1:] if module in parts else parts
    lowered = "/".join(after).lower()
    if class_name == "Bidirectional" or (class_name is None and ("forward_" in lowered
                                                                 or "backward_" in lowered)):
        reverse = "backward" in lowered or ("forward" not in lowered and index == 1)
        return _bidirectional_half(module, config, reverse, where)
    if class_name is not None and _stacked(class_name, config):
        return _stacked_cell(module, config, after[-1] if after else "", where)
    if count > 1:
        module = f"{module}.cell{index}"
    return _plain(module, class_name, config)


def _owning_layer(layer: str, prefix: str, configs: dict) -> str:
    """The layer a weight path belongs to: its layer group, or inside a nested model's group
    the first layer (not a model) the path names."""
    if configs.get(layer, ("", None))[0] not in _MODEL_CLASSES:
        return layer
    for part in prefix.split("/"):
        if part in configs and configs[part][0] not in _MODEL_CLASSES:
            return part
    return layer


def _plain(module: str, class_name: str | None, config: dict | None) -> Identity:
    backwards = bool(config and config.get("go_backwards"))
    class_name, config = _cell_config(class_name, config)
    return Identity(module, class_name, config, "reverse" if backwards else "forward",
                    reversed_output=backwards)


def _bidirectional_half(module: str, config: dict | None, reverse: bool, where: str) -> Identity:
    """A Bidirectional layer's forward or backward cell; Keras flips the backward outputs
    back, as PyTorch does, so neither keeps a reversed output."""
    if config is None:
        return Identity(module, None, None, "reverse" if reverse else "forward")
    inner = (config.get("backward_layer") if reverse else None) or config.get("layer")
    class_name, inner_config = _unwrap(inner)
    if inner_config is None:
        raise LoadError(f"{where}: Bidirectional layer {module} has no config for its "
                        f"{'backward' if reverse else 'forward'} layer", "re-save the model")
    if not reverse and inner_config.get("go_backwards"):
        raise LoadError(f"{where}: Bidirectional layer {module} wraps a go_backwards layer",
                        "rnngrad reads Bidirectional layers over forward layers")
    class_name, inner_config = _cell_config(class_name, inner_config)
    return Identity(module, class_name, inner_config, "reverse" if reverse else "forward")


def _stacked(class_name: str | None, config: dict | None) -> bool:
    return class_name == "RNN" and _unwrap((config or {}).get("cell"))[0] == "StackedRNNCells"


def _stacked_cell(module: str, config: dict | None, cell_name: str, where: str) -> Identity:
    """One cell of an ``RNN(StackedRNNCells([...]))`` layer, found by its name, analysed as
    its own module ``<layer>.cell<k>`` (k its position in the stack)."""
    cells = (_unwrap((config or {}).get("cell"))[1] or {}).get("cells")
    for position, entry in enumerate(cells if isinstance(cells, list) else []):
        class_name, cell_config = _unwrap(entry)
        if cell_config is not None and cell_config.get("name") == cell_name:
            backwards = bool(config.get("go_backwards"))
            return Identity(f"{module}.cell{position}", class_name, cell_config,
                            "reverse" if backwards else "forward", reversed_output=backwards)
    raise LoadError(f"{where}: layer {module} stacks cells, but its config names no cell "
                    f"{cell_name!r}", "the file is inconsistent; re-save the model")


def _cell_config(class_name: str | None, config: dict | None) -> tuple[str | None, dict | None]:
    """A generic ``RNN(cell)`` layer is described by its cell's class and config."""
    if class_name == "RNN" and config is not None:
        return _unwrap(config.get("cell"))
    return class_name, config


def _unwrap(entry: Any) -> tuple[str | None, dict | None]:
    if not isinstance(entry, dict):
        return None, None
    inner = entry.get("config")
    class_name = entry.get("class_name")
    return (class_name if isinstance(class_name, str) else None,
            inner if isinstance(inner, dict) else {})


def _configs_by_name(config: Any) -> dict[str, tuple[str, dict]]:
    """Every layer config in a Keras model config, by layer name (nested models included);
    walked without recursion, so any nesting the JSON parser accepted is fine."""
    out: dict[str, tuple[str, dict]] = {}
    stack = [config]
    while stack:
        entry = stack.pop()
        if isinstance(entry, dict):
            inner = entry.get("config")
            if isinstance(entry.get("class_name"), str) and isinstance(inner, dict) \
                    and isinstance(inner.get("name"), str):
                out.setdefault(inner["name"], (entry["class_name"], inner))
            stack.extend(reversed(list(entry.values())))
        elif isinstance(entry, list):
            stack.extend(reversed(entry))
    return out


# --- Keras 3 ----------------------------------------------------------------------------------


def _keras3(h5: SafeHDF5, config: dict | None, flavour: str, version: str, where: str) -> Found:
    found = Found(flavour=flavour, version=version or "3")
    paths = _keras3_paths(config) if config else {}
    for owner, group in h5.groups_below(h5.root, _CONTAINER_NAMES):
        vars_group = h5.child(group, "vars")
        if vars_group is None or not h5.is_group(vars_group) or not len(vars_group):
            continue
        datasets = _numbered(h5, vars_group)
        identity, is_cell = _keras3_identity(owner, paths, bool(config), where)
        leaves = dict(zip(("kernel", "recurrent_kernel", "bias"), datasets))
        rnn = None
        if is_cell and len(datasets) in (2, 3):
            rnn = _rnn(h5, leaves, identity, found.version, where)
        if rnn is not None:
            found.rnns.append(rnn)
        else:
            class_name = identity.class_name
            named = dict(zip(("kernel", "bias"), datasets)) if class_name == "Dense" else \
                {("embeddings" if class_name == "Embedding" else str(i)): path
                 for i, path in enumerate(datasets)}
            found.others += _other_weights(h5, identity.module, class_name, named)
    if not config:
        found.notes.append("no config.json: layer types from the weights' paths and shapes")
    first_seen = {rnn.module: index for index, rnn in reversed(list(enumerate(found.rnns)))}
    found.rnns.sort(key=lambda rnn: (first_seen[rnn.module], rnn.direction != "forward"))
    return found


def _keras3_identity(owner: str, paths: dict[str, dict], has_config: bool,
                     where: str) -> tuple[Identity, bool]:
    """(identity, is a cell) of the variables owned by ``owner`` (a path in the file)."""
    stacked_name = None
    if "/cell/cells/" in owner:
        layer_path, _, stacked_name = owner.rpartition("/cell/cells/")
    else:
        layer_path = owner.removesuffix("/cell")
    is_cell = stacked_name is not None or owner.endswith("/cell")
    module, half = _keras3_module(layer_path, paths)
    entry = paths.get(layer_path)
    if not has_config:
        class_name = _class_from_path(layer_path)
        if half is not None:
            return Identity(module, class_name, None, half), is_cell
        return Identity(module if stacked_name is None else f"{module}.{stacked_name}",
                        class_name, None), is_cell
    if entry is None:
        raise LoadError(f"{where}: config.json has no layer for the weights at {owner!r}",
                        "the archive is inconsistent; re-save the model")
    class_name, config = _unwrap(entry)
    if half is not None:
        parent = paths.get(layer_path.rpartition("/")[0])
        return _bidirectional_half(module, _unwrap(parent)[1], half == "reverse", where), is_cell
    if stacked_name is not None:
        return _stacked_cell(module, config, stacked_name, where), is_cell
    return _plain(module, class_name, config), is_cell


def _numbered(h5: SafeHDF5, group) -> list[str]:
    names = [name for name, obj in h5.children(group) if h5.is_dataset(obj)]
    return [f"{group.name}/{name}" for name in sorted(names, key=lambda n: (len(n), n))]


def _keras3_paths(config: dict) -> dict[str, dict]:
    """Layer path in the weights file -> layer config entry, as Keras' saving_lib names them."""
    out: dict[str, dict] = {}
    stack: list[tuple[dict, str]] = [(config, "")]
    while stack:
        entry, prefix = stack.pop()
        layers = (entry.get("config") or {}).get("layers") \
            if isinstance(entry.get("config"), dict) else None
        if not isinstance(layers, list):
            continue
        counts: dict[str, int] = {}
        for layer in layers:
            if not isinstance(layer, dict) or not isinstance(layer.get("class_name"), str):
                continue
            snake = _snake(layer["class_name"])
            counts[snake] = counts.get(snake, -1) + 1
            path = f"{prefix}layers/{snake}" + (f"_{counts[snake]}" if counts[snake] else "")
            inner = layer.get("config") if isinstance(layer.get("config"), dict) else {}
            for key in (path, f"{prefix}_layer_checkpoint_dependencies/{inner.get('name')}"):
                out[key] = layer
            if layer["class_name"] == "Bidirectional":
                out[f"{path}/forward_layer"] = inner.get("layer") or {}
                out[f"{path}/backward_layer"] = inner.get("backward_layer") or inner.get("layer") or {}
            stack.append((layer, f"{path}/"))
    return out


def _snake(name: str) -> str:
    """Keras' naming.to_snake_case."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _keras3_module(layer_path: str, paths: dict[str, dict]) -> tuple[str, str | None]:
    """(module name, "forward"/"reverse" for a Bidirectional half, else None)."""
    parts = layer_path.split("/")
    half = None
    if parts[-1] in ("forward_layer", "backward_layer"):
        half = "reverse" if parts[-1] == "backward_layer" else "forward"
        parts = parts[:-1]
    entry = paths.get("/".join(parts))
    name = _unwrap(entry)[1].get("name") if entry else None
    if not isinstance(name, str) or not name:
        name = ".".join(part for part in parts if part not in _CONTAINER_NAMES)
    return name, half


def _class_from_path(layer_path: str) -> str | None:
    last = re.sub(r"_\d+$", "", layer_path.rsplit("/", 1)[-1])
    return _SNAKE_CLASS.get(last)


# --- shared -----------------------------------------------------------------------------------


def _rnn(h5: SafeHDF5, leaves: dict[str, str], identity: Identity, version: str,
         where: str) -> KerasRNN | None:
    """The cell, or None when kernel and recurrent kernel are not matrices (ConvLSTM, ...)."""
    datasets = {leaf: h5.dataset(h5.root, leaves[leaf])
                for leaf in ("kernel", "recurrent_kernel", "bias") if leaves.get(leaf)}
    infos = {leaf: h5.shape_and_dtype(dataset) for leaf, dataset in datasets.items()}
    if len(infos["kernel"][0]) != 2 or len(infos["recurrent_kernel"][0]) != 2:
        return None
    for leaf, dataset in datasets.items():
        if dataset.dtype.kind != "f":
            raise LoadError(f"{where}: {leaves[leaf]} of layer {identity.module} holds "
                            f"{infos[leaf][1]} values, not floating-point weights",
                            "the file is damaged or not Keras'; re-save the model")
    class_name = identity.class_name
    if identity.config is None and class_name not in CLASS_KIND:
        class_name = None  # no config: the cell type comes from the gate count
    return KerasRNN(module=identity.module, direction=identity.direction,
                    kernel=leaves["kernel"], recurrent=leaves["recurrent_kernel"],
                    bias=leaves.get("bias"), kernel_shape=infos["kernel"][0],
                    recurrent_shape=infos["recurrent_kernel"][0],
                    bias_shape=infos["bias"][0] if "bias" in infos else None,
                    dtype=infos["kernel"][1], class_name=class_name,
                    config=identity.config or {}, has_config=identity.config is not None,
                    version=version, reversed_output=identity.reversed_output)


def _other_weights(h5: SafeHDF5, module: str, class_name: str | None, leaves: dict[str, str]):
    """(name, path, shape, dtype, transpose) of a non-recurrent layer's weights."""
    out = []
    dense = class_name == "Dense" or (class_name is None and set(leaves) <= {"kernel", "bias"}
                                      and "kernel" in leaves)
    for leaf, path in leaves.items():
        shape, dtype = h5.shape_and_dtype(h5.dataset(h5.root, path))
        if leaf == "embeddings" and len(shape) == 2:
            out.append((f"{module}.weight", path, shape, dtype, False))
        elif dense and leaf == "kernel" and len(shape) == 2:
            out.append((f"{module}.weight", path, shape, dtype, True))
        elif dense and leaf == "bias":
            out.append((f"{module}.bias", path, shape, dtype, False))
        else:
            out.append((f"{module}.{leaf}", path, shape, dtype, False))
    return out
