"""ONNX models (``rnngrad[onnx]``): the RNN, LSTM and GRU operators, wherever they sit.

Per the ONNX operator specification, for D directions (2 when ``direction`` is
``"bidirectional"``, forward first) and G gate blocks:

- W (D, G·H, I) and R (D, G·H, H): ONNX computes X Wᵀ and H Rᵀ, so each direction's W and R
  already have PyTorch's orientation; B (D, 2·G·H) = [Wb; Rb] -> ``bias_ih``, ``bias_hh``;
- gate orders: LSTM i, o, f, c -> PyTorch i, f, g, o; GRU z, r, h -> PyTorch r, z, n; RNN one
  block (``activations`` Tanh or Relu);
- GRU ``linear_before_reset = 1`` is PyTorch's GRU; ``0`` (the default) applies the reset gate
  before the recurrent matmul, the cell ``gru_reset_before``;
- LSTM ``activations`` must be the defaults (Sigmoid, Tanh, Tanh; GRU Sigmoid, Tanh); ``clip``,
  ``input_forget = 1`` and non-zero peepholes P are refused, as rnngrad's cells have none.

Nodes inside ``If``/``Loop``/``Scan`` bodies are found too, and W, R, B may be computed from
initializers by Slice, Concat, Transpose, Unsqueeze, Reshape, ... (:mod:`rnngrad.io.onnx.folding`
evaluates them with NumPy). Nodes computing the same weights (e.g. the two branches of an
``If``) are analysed once. External data is read only from files inside the model's folder.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import numpy as np

from rnngrad.errors import LoadError
from rnngrad.io.bundle import TensorInfo, WeightBundle
from rnngrad.io.layout import Derived, Layout, derived_tensor, with_derived
from rnngrad.io.onnx.folding import ConstantFolder, NotConstant, Scope

INSTALL_HINT = "install the ONNX extra: pip install 'rnngrad[onnx]'"
MAX_EXTERNAL_BYTES = 4 * 1024**3
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
ORDER = {"RNN": (0,), "GRU": (1, 0, 2), "LSTM": (0, 2, 3, 1)}
GATE_TEXT = {"RNN": "", "GRU": "ONNX z,r,h → PyTorch r,z,n", "LSTM": "ONNX i,o,f,c → PyTorch i,f,g,o"}
DEFAULT_ACTIVATIONS = {"RNN": ("tanh",), "GRU": ("sigmoid", "tanh"),
                       "LSTM": ("sigmoid", "tanh", "tanh")}


def read_onnx(file: Path, sha: str) -> WeightBundle:
    where = str(file)
    onnx = _onnx(where)
    try:
        model = onnx.load(str(file), load_external_data=False)
    except Exception as exc:  # protobuf raises DecodeError and friends
        raise LoadError(f"{where}: not a readable ONNX model ({type(exc).__name__}: "
                        f"{str(exc)[:160]})", "re-export or re-download the model") from None
    reader = _TensorReader(file)
    base = _initializers_bundle(model, file, sha, reader)
    finder = _Finder(model, reader, where)
    finder.walk(model.graph, None, "")
    if not finder.layouts:
        return base
    return with_derived(base, finder.derived, tuple(finder.layouts), tuple(finder.notes))


def _onnx(where: str = ""):
    try:
        import onnx
    except ImportError:
        raise LoadError(f"{where + ': ' if where else ''}this looks like an ONNX model; reading "
                        "it needs the onnx package, which is not installed",
                        INSTALL_HINT) from None
    return onnx


class _TensorReader:
    """TensorProto -> array; external data only from files inside the model's folder."""

    def __init__(self, file: Path):
        self.folder = file.resolve().parent
        self.where = str(file)

    def __call__(self, proto) -> np.ndarray:
        from onnx import TensorProto, numpy_helper

        if proto.data_location == TensorProto.EXTERNAL:
            proto = self._with_external_data(proto)
        return numpy_helper.to_array(proto)

    def _with_external_data(self, proto):
        from onnx import TensorProto

        entries = {entry.key: entry.value for entry in proto.external_data}
        location = entries.get("location", "")
        target = (self.folder / location).resolve()
        if Path(location).is_absolute() or not target.is_relative_to(self.folder) \
                or not target.is_file():
            raise LoadError(f"{self.where}: tensor {proto.name!r} keeps its data in "
                            f"{location!r}, outside the model's folder or missing; refused",
                            "put the external data file next to the model")
        offset, length = int(entries.get("offset", 0)), entries.get("length")
        length = int(length) if length is not None else target.stat().st_size - offset
        if length > MAX_EXTERNAL_BYTES or offset + length > target.stat().st_size:
            raise LoadError(f"{self.where}: tensor {proto.name!r} claims {length} bytes at "
                            f"offset {offset} of {location!r}", "the external data is damaged")
        with target.open("rb") as handle:
            handle.seek(offset)
            data = handle.read(length)
        copy = TensorProto()
        copy.CopyFrom(proto)
        del copy.external_data[:]
        copy.data_location = TensorProto.DEFAULT
        copy.raw_data = data
        return copy


def _initializers_bundle(model, file: Path, sha: str, reader: _TensorReader) -> WeightBundle:
    from onnx import helper

    protos = {init.name: init for init in model.graph.initializer}
    tensors = {}
    for name, proto in protos.items():
        try:
            dtype = str(np.dtype(helper.tensor_dtype_to_np_dtype(proto.data_type)))
        except (KeyError, TypeError, ValueError):
            dtype = f"onnx-type-{proto.data_type}"
        tensors[name] = TensorInfo(name=name, shape=tuple(int(d) for d in proto.dims), dtype=dtype)
    opsets = ", ".join(f"{o.domain or 'ai.onnx'} {o.version}" for o in model.opset_import)
    note = (f"read as ONNX (ir_version {model.ir_version}, opset {opsets}, producer "
            f"{model.producer_name} {model.producer_version})".replace("  ", " "))
    return WeightBundle(path=str(file), format="onnx", sha256=sha, tensors=tensors,
                        notes=(note,), _fetch=lambda name: reader(protos[name]))


class _Finder:
    """Walks every graph and subgraph for RNN/LSTM/GRU nodes and describes them."""

    def __init__(self, model, reader: _TensorReader, where: str):
        from onnx import helper

        self.folder = ConstantFolder(reader, helper.get_attribute_value)
        self.reader = reader
        self.where = where
        self.derived: dict[str, Derived] = {}
        self.layouts: list[Layout] = []
        self.notes: list[str] = []
        self.seen: dict[str, str] = {}
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                          None)

    def walk(self, graph, parent: Scope | None, context: str) -> None:
        from onnx import AttributeProto

        scope = Scope(graph, parent, self.reader)
        for index, node in enumerate(graph.node):
            if node.op_type in GATES and node.domain in ("", "ai.onnx"):
                self._node(node, scope, context, index)
            for attr in node.attribute:
                inside = f"{context}{node.op_type} {node.name or index}.{attr.name} / "
                if attr.type == AttributeProto.GRAPH:
                    self.walk(attr.g, scope, inside)
                elif attr.type == AttributeProto.GRAPHS:
                    for sub in attr.graphs:
                        self.walk(sub, scope, inside)

    def _node(self, node, scope: Scope, context: str, index: int) -> None:
        op = node.op_type
        label = node.name or f"{op} #{index}"
        attrs = {a.name: self.folder.attribute(a) for a in node.attribute}
        w, r, b = (self._weight(node, position, scope, label) for position in (1, 2, 3))
        directions, hidden, inputs = _check_shapes(op, w, r, b, attrs, label, self.where)
        _check_unsupported(node, attrs, label, self.where, self._peepholes(node, scope, label))
        digest = _digest(op, w, r, b, attrs)
        if digest in self.seen:
            self.notes.append(f"ONNX {op} node {label} computes the same recurrence as "
                              f"{self.seen[digest]} (same W, R, B, attributes): analysed once")
            return
        module = self._module_name(label, op)
        self.seen[digest] = label
        sources = tuple(sorted(set().union(*[self.folder.sources(node.input[p], scope)
                                             for p in (1, 2, 3) if len(node.input) > p
                                             and node.input[p]])))
        for d in range(directions):
            self._direction(op, module, d, directions, w[d], r[d], None if b is None else b[d],
                            attrs, hidden, label, context, sources)

    def _weight(self, node, position: int, scope: Scope, label: str):
        if len(node.input) <= position or not node.input[position]:
            if position == 3:
                return None
            raise LoadError(f"{self.where}: ONNX node {label} has no input {position}",
                            "the model is malformed")
        name = node.input[position]
        try:
            value = np.asarray(self.folder.value(name, scope))
            if not np.issubdtype(value.dtype, np.floating):
                raise NotConstant(f"{name!r} has dtype {value.dtype}, not floating point")
            return value
        except NotConstant as exc:
            raise LoadError(f"{self.where}: {'WRB'[position - 1]} of ONNX node {label} is not "
                            f"computed from initializers ({exc})",
                            "rnngrad needs weights stored in the model") from None

    def _peepholes(self, node, scope: Scope, label: str):
        if node.op_type != "LSTM" or len(node.input) <= 7 or not node.input[7]:
            return None
        return self._weight(node, 7, scope, label)

    def _module_name(self, label: str, op: str) -> str:
        name = re.sub(r"[^0-9A-Za-z_.]+", ".", label).strip(".") or op
        taken = {layout.module for layout in self.layouts}
        unique, count = name, 1
        while unique in taken:
            unique, count = f"{name}_{count}", count + 1
        return unique

    def _direction(self, op, module, d, directions, w, r, b, attrs, hidden, label, context,
                   sources) -> None:
        direction = _direction_name(attrs, d)
        activations = _activations(op, attrs, d, directions, label, self.where)
        gru_before = op == "GRU" and not attrs.get("linear_before_reset", 0)
        layout = Layout(
            module=module, direction=direction,
            cell="gru_reset_before" if gru_before else None,
            nonlinearity=activations[0] if op == "RNN" else None,
            convention=_convention(op, label, context, self.opset, gru_before, attrs),
            gate_order=GATE_TEXT[op],
            orientation="W (G·H × I) and R (G·H × H) as stored (ONNX computes X Wᵀ, as "
                        "PyTorch); B = [Wb; Rb] -> bias_ih, bias_hh",
            sources=sources)
        order, rows = ORDER[op], GATES[op] * hidden

        def reorder(matrix: np.ndarray) -> np.ndarray:
            blocks = np.split(matrix, GATES[op], axis=0)
            return np.concatenate([blocks[k] for k in order], axis=0)

        parts = {"weight_ih": reorder(w), "weight_hh": reorder(r)}
        if b is not None:
            parts.update(bias_ih=reorder(b[:rows]), bias_hh=reorder(b[rows:]))
        what = {"weight_ih": f"W[{d}]", "weight_hh": f"R[{d}]", "bias_ih": f"B[{d}, :{rows}]",
                "bias_hh": f"B[{d}, {rows}:]"}
        reordered = ", gates reordered" if GATES[op] > 1 else ""
        for part, value in parts.items():
            name, item = derived_tensor(layout.tensor_name(part), value.shape, str(value.dtype),
                                        lambda v=value: v,
                                        f"{what[part]} of ONNX {op} node {label}{reordered}")
            self.derived[name] = item
        self.layouts.append(layout)


def _check_shapes(op, w, r, b, attrs, label, where):
    gates = GATES[op]
    if w.ndim != 3 or r.ndim != 3 or w.shape[0] != r.shape[0] or r.shape[1] != gates * r.shape[2]:
        raise LoadError(f"{where}: ONNX {op} node {label} has W {list(w.shape)} and R "
                        f"{list(r.shape)}", f"W is (D, {gates}·H, I) and R (D, {gates}·H, H)")
    directions, rows, hidden = r.shape
    expected = 2 if attrs.get("direction", b"forward") in (b"bidirectional", "bidirectional") else 1
    if directions != expected or w.shape[1] != rows or attrs.get("hidden_size", hidden) != hidden:
        raise LoadError(f"{where}: ONNX {op} node {label}: W {list(w.shape)}, R {list(r.shape)}, "
                        f"hidden_size {attrs.get('hidden_size')}, direction "
                        f"{_text(attrs.get('direction', 'forward'))} do not agree",
                        "the model is malformed")
    if b is not None and (b.ndim != 2 or b.shape != (directions, 2 * rows)):
        raise LoadError(f"{where}: ONNX {op} node {label} has B {list(b.shape)}, expected "
                        f"[{directions}, {2 * rows}]", "the model is malformed")
    return directions, hidden, w.shape[2]


def _check_unsupported(node, attrs, label, where, peepholes) -> None:
    if "clip" in attrs:
        raise LoadError(f"{where}: ONNX {node.op_type} node {label} clips its cell input at "
                        f"{attrs['clip']}", "rnngrad's cells have no clip; export without it")
    if attrs.get("input_forget", 0):
        raise LoadError(f"{where}: ONNX LSTM node {label} couples the input and forget gates "
                        "(input_forget = 1)", "rnngrad's LSTM has independent gates")
    if peepholes is not None and np.any(peepholes):
        raise LoadError(f"{where}: ONNX LSTM node {label} has peephole weights P",
                        "rnngrad's LSTM has no peepholes")


def _activations(op, attrs, d, directions, label, where) -> tuple[str, ...]:
    count = len(DEFAULT_ACTIVATIONS[op])
    given = [(_text(a)).lower() for a in attrs.get("activations", [])]
    if len(given) == count:  # one direction's list, read as meant for every direction
        given = given * directions
    chosen = tuple(given[d * count:(d + 1) * count]) if given else DEFAULT_ACTIVATIONS[op]
    allowed = ((("tanh",), ("relu",)) if op == "RNN" else (DEFAULT_ACTIVATIONS[op],))
    if chosen not in allowed or attrs.get("activation_alpha") or attrs.get("activation_beta"):
        raise LoadError(f"{where}: ONNX {op} node {label} uses activations {list(chosen)}",
                        "rnngrad runs RNN with Tanh or Relu, LSTM with Sigmoid/Tanh/Tanh and "
                        "GRU with Sigmoid/Tanh")
    return chosen


def _direction_name(attrs, d: int) -> str:
    direction = _text(attrs.get("direction", "forward"))
    return "reverse" if direction == "reverse" or (direction == "bidirectional" and d == 1) \
        else "forward"


def _convention(op, label, context, opset, gru_before, attrs) -> str:
    text = f"ONNX {op} node {label}"
    if context:
        text += f" inside {context.rstrip(' /')}"
    if op == "GRU":
        text += (", linear_before_reset = 0: reset gate before the recurrent matmul (cell "
                 "gru_reset_before)" if gru_before else ", linear_before_reset = 1 = PyTorch GRU")
    return f"{text} (opset {opset})" if opset else text


def _digest(op, w, r, b, attrs) -> str:
    digest = hashlib.sha256(op.encode())
    for array in (w, r, b):
        digest.update(b"-" if array is None else np.ascontiguousarray(array).tobytes())
    digest.update(repr(sorted((k, repr(v)) for k, v in attrs.items())).encode())
    return digest.hexdigest()


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
