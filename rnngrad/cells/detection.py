"""Find recurrences in a :class:`~rnngrad.loading.WeightBundle` by PyTorch's key patterns.

Recognised under any prefix (``encoder.rnn.``):

- ``nn.RNN/LSTM/GRU``: ``weight_hh_l{k}[_reverse]`` with ``weight_ih_l{k}``, ``bias_ih_l{k}``,
  ``bias_hh_l{k}`` (optional: ``bias=False``) and, for LSTM ``proj_size``, ``weight_hr_l{k}``;
- ``nn.RNNCell/LSTMCell/GRUCell``: ``weight_hh`` with ``weight_ih``, ``bias_ih``, ``bias_hh``;
- any square matrix named with ``--key`` (an Elman recurrence with only W_hh known).

The cell type comes from the ratio of ``weight_hh``'s rows to the hidden size: 1 Elman,
3 GRU, 4 LSTM. The Elman nonlinearity comes from ``--activation``, else the safetensors
metadata (``<module>.nonlinearity`` or ``nonlinearity``; for ``--key W``: ``W.nonlinearity``,
then the modules enclosing ``W``), else the default tanh (``nonlinearity_source``
``"default"``).

Files read through a format (Keras, ONNX) or a mapping describe their recurrences themselves
(``bundle.layouts``): those are taken as described (cell, nonlinearity, gate order, leak) over
their derived, PyTorch-named tensors, and key patterns are not searched (not even when a
Keras or ONNX file describes none: the error then says why, e.g. an unrolled ONNX graph).

``leak`` (``--leak α``) turns every Elman recurrence into the leaky rate cell
x' = (1 − α)x + α(W φ(x) + W_in u + b) (:mod:`rnngrad.cells.leaky`) and sets α of rate cells.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import replace

from rnngrad.errors import LoadError, NoRecurrenceError, OptionError
from rnngrad.io.bundle import TensorInfo, WeightBundle
from rnngrad.io.onnx import EXPORT_HINT
from rnngrad.cells import ACTIVATIONS, CELL_BY_GATE_COUNT, GATED_DEFAULT, Recurrence

# Formats whose readers describe every recurrence they can run (bundle.layouts): their tensors
# are never matched against PyTorch's key patterns (an unrolled ONNX graph's initializers may
# carry PyTorch's names, but nothing says which nonlinearity the graph runs).
DESCRIBING_FORMATS = ("keras", "keras-hdf5", "onnx")
NO_RECURRENT_NODE = "no RNN, LSTM or GRU node"
# DOTALL and \Z: a name is data, whatever it holds (a newline in a module name included).
_LAYER_KEY = re.compile(r"(?P<prefix>(?:.*\.)?)weight_hh_l(?P<layer>[0-9]+)(?P<rev>_reverse)?\Z",
                        re.DOTALL)
_CELL_KEY = re.compile(r"(?P<prefix>(?:.*\.)?)weight_hh\Z", re.DOTALL)


def find_recurrences(bundle: WeightBundle, *, keys: tuple[str, ...] = (),
                     activation: str | None = None,
                     leak: float | None = None) -> tuple[Recurrence, ...]:
    """Every recurrence in the file, in file order; raise if there is none.

    ``activation`` and ``leak`` are validated by :class:`~rnngrad.conventions.ReadOptions`.
    """
    found = [_from_key(bundle, key, activation) for key in keys]
    if not keys and bundle.layouts:
        found += _from_layouts(bundle, activation)
    elif not keys and bundle.format not in DESCRIBING_FORMATS:
        found += _from_patterns(bundle, activation)
    if not found:
        hint = EXPORT_HINT if bundle.format == "onnx" else (
            "name the recurrent matrix with --key NAME (any square matrix), give a --map "
            "FILE.toml, or check the file")
        raise NoRecurrenceError(_nothing_found_message(bundle), hint)
    _check_stacks(bundle, found)
    return tuple(_with_leak(found, float(leak)) if leak is not None else found)


def _with_leak(found: list[Recurrence], alpha: float) -> list[Recurrence]:
    """Elman and rate recurrences become rate cells with leak α; gated ones stay as they are."""
    if not any(rec.cell in ("rnn", "leaky") for rec in found):
        cells = ", ".join(sorted({rec.cell for rec in found}))
        raise OptionError(f"--leak applies to Elman (rnn) and rate recurrences; this file has "
                          f"only {cells}", "drop --leak for gated cells")
    return [replace(rec, cell="leaky", leak=alpha, leak_source="option --leak")
            if rec.cell in ("rnn", "leaky") else rec for rec in found]


def _from_layouts(bundle: WeightBundle, activation: str | None) -> list[Recurrence]:
    """The recurrences a format or mapping described, checked like PyTorch's."""
    found = []
    for layout in bundle.layouts:
        name = layout.tensor_name("weight_hh")
        prefix = f"{layout.module}." if layout.module else ""
        suffix = name.removeprefix(f"{prefix}weight_hh")
        rec = _build(bundle, name, prefix=prefix, suffix=suffix, layer=layout.layer,
                     direction=layout.direction, activation=activation,
                     cell_module=layout.cell_module)
        nonlinearity, source = rec.nonlinearity, rec.nonlinearity_source
        overridden = rec.cell == "rnn" and activation is not None  # --activation: Elman only
        if layout.nonlinearity and not overridden:
            nonlinearity, source = layout.nonlinearity, layout.nonlinearity_source
        found.append(replace(
            rec, cell=layout.cell or rec.cell, nonlinearity=nonlinearity,
            nonlinearity_source=source, leak=layout.leak,
            leak_source=layout.leak_source if layout.leak is not None else "",
            convention=layout.convention, gate_order=layout.gate_order,
            orientation=layout.orientation, low_rank=layout.low_rank, sources=layout.sources,
            missing=rec.missing if layout.has_input else (),
            reversed_output=layout.reversed_output))
    return found


def _nothing_found_message(bundle: WeightBundle) -> str:
    unrolled = [note for note in bundle.notes if note.startswith(NO_RECURRENT_NODE)]
    if unrolled:
        return f"{bundle.path}: {unrolled[0]}"
    listed = ", ".join(f"{info.name} {list(info.shape)}" for info in
                       list(bundle.tensors.values())[:12])
    more = f" and {len(bundle.tensors) - 12} more" if len(bundle.tensors) > 12 else ""
    seen = f"it holds {len(bundle.tensors)} tensors: {listed}{more}" if bundle.tensors \
        else "it holds no tensors"
    skipped = "".join(f"; {note}" for note in bundle.notes if "skipped" in note)
    return f"{bundle.path}: no recurrence found ({seen}{skipped})"


def _from_patterns(bundle: WeightBundle, activation: str | None) -> list[Recurrence]:
    found = []
    for name in bundle.tensors:
        match = _LAYER_KEY.match(name)
        if match:
            suffix = f"_l{match['layer']}{match['rev'] or ''}"
            found.append(_build(bundle, name, prefix=match["prefix"], suffix=suffix,
                                layer=int(match["layer"]),
                                direction="reverse" if match["rev"] else "forward",
                                activation=activation, cell_module=False))
            continue
        match = _CELL_KEY.match(name)
        if match:
            found.append(_build(bundle, name, prefix=match["prefix"], suffix="", layer=0,
                                direction="forward", activation=activation, cell_module=True))
    return found


def _build(bundle: WeightBundle, name: str, *, prefix: str, suffix: str, layer: int,
           direction: str, activation: str | None, cell_module: bool) -> Recurrence:
    tensors = bundle.tensors
    w_hh = tensors[name]
    if not w_hh.is_float:
        raise LoadError(f"{bundle.path}: {name} has dtype {w_hh.dtype}, not a floating-point "
                        "type", "rnngrad analyses float16/bfloat16/float32/float64 weights")
    companion = {part: f"{prefix}{part}{suffix}"
                 for part in ("weight_ih", "bias_ih", "bias_hh", "weight_hr")}
    w_hr = tensors.get(companion["weight_hr"])
    hidden, proj = _hidden_and_proj(bundle, w_hh, w_hr)
    gates = w_hh.shape[0] // hidden
    cell = CELL_BY_GATE_COUNT.get(gates)
    if cell is None or gates * hidden != w_hh.shape[0]:
        raise LoadError(f"{bundle.path}: {name} has shape {list(w_hh.shape)}: rows are not 1, "
                        f"3 or 4 times the hidden size {hidden}",
                        "an RNN's weight_hh is H×H, a GRU's 3H×H, an LSTM's 4H×H")
    if w_hr is not None and cell != "lstm":
        raise LoadError(f"{bundle.path}: {companion['weight_hr']} (a projection) belongs to an "
                        f"LSTM, but {name} has {gates} gate blocks", "check the file")
    w_ih = tensors.get(companion["weight_ih"])
    input_size = _input_size(bundle, name, w_hh, w_ih)
    for bias in ("bias_ih", "bias_hh"):
        _check_bias(bundle, tensors.get(companion[bias]), w_hh, companion[bias])
    nonlinearity, source = _nonlinearity(bundle, prefix, cell, activation)
    return Recurrence(
        module=prefix.removesuffix("."), cell=cell, layer=layer, direction=direction,
        hidden_size=hidden, input_size=input_size, proj_size=proj, nonlinearity=nonlinearity,
        nonlinearity_source=source, weight_hh=name,
        weight_ih=companion["weight_ih"] if w_ih is not None else None,
        bias_ih=companion["bias_ih"] if companion["bias_ih"] in tensors else None,
        bias_hh=companion["bias_hh"] if companion["bias_hh"] in tensors else None,
        weight_hr=companion["weight_hr"] if w_hr is not None else None,
        missing=() if w_ih is not None else (companion["weight_ih"],),
        cell_module=cell_module)


def _hidden_and_proj(bundle: WeightBundle, w_hh: TensorInfo,
                     w_hr: TensorInfo | None) -> tuple[int, int]:
    if len(w_hh.shape) != 2:
        raise LoadError(f"{bundle.path}: {w_hh.name} has shape {list(w_hh.shape)}, "
                        "not a matrix", "weight_hh must be 2-D")
    rows, cols = w_hh.shape
    if w_hr is None:
        hidden, proj = cols, 0
    else:
        if len(w_hr.shape) != 2 or w_hr.shape[0] != cols:
            raise LoadError(f"{bundle.path}: {w_hr.name} has shape {list(w_hr.shape)}, "
                            f"which does not match {w_hh.name} {list(w_hh.shape)}",
                            "an LSTM with proj_size P has weight_hh 4H×P and weight_hr P×H")
        hidden, proj = w_hr.shape[1], cols
    if hidden == 0 or rows == 0:
        raise LoadError(f"{bundle.path}: {w_hh.name} has shape {list(w_hh.shape)}: "
                        "hidden size 0", "the recurrence is empty; check the file")
    if rows % hidden:
        raise LoadError(f"{bundle.path}: {w_hh.name} has shape {list(w_hh.shape)}, not square "
                        f"(rows are not a multiple of the hidden size {hidden})",
                        "an RNN's weight_hh is H×H, a GRU's 3H×H, an LSTM's 4H×H")
    return hidden, proj


def _input_size(bundle: WeightBundle, name: str, w_hh: TensorInfo,
                w_ih: TensorInfo | None) -> int | None:
    if w_ih is None:
        return None
    if len(w_ih.shape) != 2 or w_ih.shape[0] != w_hh.shape[0]:
        raise LoadError(f"{bundle.path}: {w_ih.name} has shape {list(w_ih.shape)} but "
                        f"{name} has {list(w_hh.shape)}: their row counts must agree",
                        "weight_ih is (G·H)×I and weight_hh (G·H)×H for the same G·H")
    return w_ih.shape[1]


def _check_bias(bundle: WeightBundle, bias: TensorInfo | None, w_hh: TensorInfo,
                name: str) -> None:
    if bias is not None and bias.shape != (w_hh.shape[0],):
        raise LoadError(f"{bundle.path}: {name} has shape {list(bias.shape)}, expected "
                        f"[{w_hh.shape[0]}] to match {w_hh.name}", "check the file")


def _nonlinearity(bundle: WeightBundle, prefix: str, cell: str, activation: str | None,
                  enclosing: bool = False) -> tuple[str, str]:
    """An Elman recurrence's φ: ``--activation``, else the metadata's ``<prefix>nonlinearity``
    (with ``enclosing``, also each enclosing module's, innermost first) or ``nonlinearity``,
    else tanh."""
    if cell != "rnn":
        return GATED_DEFAULT, "cell"
    if activation is not None:
        return activation, "option"
    parts = prefix.removesuffix(".").split(".") if prefix else []
    keys = [f"{'.'.join(parts[:end])}.nonlinearity"
            for end in range(len(parts), 0 if enclosing else len(parts) - 1, -1) if end]
    for key in (*keys, "nonlinearity"):
        value = bundle.metadata.get(key)
        if value is not None:
            if value not in ACTIVATIONS:
                raise LoadError(f"{bundle.path}: metadata {key}={value!r} is not a supported "
                                "nonlinearity", "override it with --activation tanh|relu")
            return value, "metadata"
    return "tanh", "default"


def _from_key(bundle: WeightBundle, key: str, activation: str | None) -> Recurrence:
    info = bundle.tensors.get(key)
    if info is None:
        names = ", ".join(list(bundle.tensors)[:12])
        raise OptionError(f"--key {key!r}: no such tensor in {bundle.path}",
                          f"tensors in the file: {names}")
    if len(info.shape) != 2 or info.shape[0] != info.shape[1] or info.shape[0] == 0:
        raise OptionError(f"--key {key!r} has shape {list(info.shape)}, not a non-empty square "
                          "matrix", "--key names a recurrent matrix W_rec of shape H×H")
    # the module of a --key W is W itself, or the module that holds it ("rnn" of
    # "rnn.weight_hh_l0"), or one enclosing that
    nonlinearity, source = _nonlinearity(bundle, f"{key}.", "rnn", activation, enclosing=True)
    return Recurrence(module=key, cell="rnn", layer=0, direction="forward",
                      hidden_size=info.shape[0], input_size=None, proj_size=0,
                      nonlinearity=nonlinearity, nonlinearity_source=source,
                      weight_hh=key, cell_module=True)


def _check_stacks(bundle: WeightBundle, found: list[Recurrence]) -> None:
    """Layers of a module must run 0..L-1, with matching directions and widths."""
    stacks: dict[str, list[Recurrence]] = defaultdict(list)
    for rec in found:
        if not rec.cell_module:
            stacks[rec.module].append(rec)
    for module, recs in stacks.items():
        layers = sorted({rec.layer for rec in recs})
        absent = sorted(set(range(layers[-1] + 1)) - set(layers))
        if absent:
            raise LoadError(f"{bundle.path}: module {module or '(top)'} has layers "
                            f"{layers} but no layer {absent[0]}",
                            "a stacked RNN needs every layer from 0 up; check the file")
        if len({rec.cell for rec in recs}) > 1:
            raise LoadError(f"{bundle.path}: module {module or '(top)'} mixes cell types",
                            "check the file")
        _check_widths(bundle, module, recs)


def _check_widths(bundle: WeightBundle, module: str, recs: list[Recurrence]) -> None:
    by_layer: dict[int, list[Recurrence]] = defaultdict(list)
    for rec in recs:
        by_layer[rec.layer].append(rec)
    for layer in sorted(by_layer)[1:]:
        below = by_layer[layer - 1]
        width = sum(rec.output_size for rec in below)
        for rec in by_layer[layer]:
            if rec.input_size is not None and rec.input_size != width:
                raise LoadError(f"{bundle.path}: {rec.weight_ih} takes {rec.input_size} inputs "
                                f"but layer {layer - 1} of {module or '(top)'} gives {width}",
                                "the layers of this stack do not fit together; check the file")
