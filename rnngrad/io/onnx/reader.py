"""ONNX models (``rnngrad[onnx]``): the RNN, LSTM and GRU operators, wherever they sit.

Per the ONNX operator specification, for D directions (2 when ``direction`` is
``"bidirectional"``, forward first) and G gate blocks:

- W (D, G·H, I) and R (D, G·H, H): ONNX computes X Wᵀ and H Rᵀ, so each direction's W and R
  already have PyTorch's orientation; B (D, 2·G·H) = [Wb; Rb] -> ``bias_ih``, ``bias_hh``;
- gate orders: LSTM i, o, f, c -> PyTorch i, f, g, o; GRU z, r, h -> PyTorch r, z, n; RNN one
  block;
- GRU ``linear_before_reset = 1`` is PyTorch's GRU; ``0`` (the default) applies the reset gate
  before the recurrent matmul, the cell ``gru_reset_before``;
- ``activations`` (RNN f; GRU f, g; LSTM f, g, h) run as given when rnngrad knows them with
  their default parameters (Tanh, Sigmoid, Relu, HardSigmoid = clip(0.2x + 0.5, 0, 1),
  Softsign, Softplus, Elu, Affine = identity), source "config"; absent, the operator's
  documented defaults, source "default"; ``clip``, ``input_forget = 1``, non-zero peepholes P
  and ``activation_alpha``/``beta`` are refused, as rnngrad's cells have none.

Nodes inside ``If``/``Loop``/``Scan`` bodies are found too, and W, R, B may be computed from
initializers by Slice, Concat, Transpose, Unsqueeze, Reshape, ... (:mod:`rnngrad.io.onnx.folding`
evaluates them with NumPy). Nodes computing the same weights (e.g. the two branches of an
``If``) are analysed once. Nodes feeding each other as ``torch.onnx.export`` writes a
multi-layer module are the layers of one stack (:mod:`rnngrad.io.onnx.stacks`), named after
their scope (``/rnn/LSTM`` -> module ``rnn``). A graph without recurrent nodes (the dynamo
exporter unrolls ``nn.RNN``) gets a note the detection turns into the error.

Memory: the model is parsed whole only below 2 GiB (protobuf's limit) and the per-file cap;
tensors are read and folded only after their sizes are checked (:mod:`rnngrad.io.onnx.tensors`,
:mod:`rnngrad.io.onnx.folding`); external data only from regular files inside the model's folder.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from rnngrad.errors import LoadError, brief
from rnngrad.io.budget import MemoryBudget, size_text
from rnngrad.io.bundle import TensorInfo, WeightBundle
from rnngrad.io.layout import Derived, Layout, derived_tensor, with_derived
from rnngrad.io.onnx.folding import ConstantFolder, NotConstant, Scope
from rnngrad.io.onnx.stacks import RnnNode, stacks
from rnngrad.io.onnx.tensors import TensorReader

INSTALL_HINT = "install the ONNX extra: pip install 'rnngrad[onnx]'"
# protobuf parses a model whole and cannot parse 2 GiB or more; larger models keep their
# weights as external data. The most memory one ONNX file may make rnngrad take:
MAX_MODEL_BYTES = 2 * 1024**3 - 1
MAX_FILE_MEMORY = 8 * 1024**3
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
ORDER = {"RNN": (0,), "GRU": (1, 0, 2), "LSTM": (0, 2, 3, 1)}
GATE_TEXT = {"RNN": "", "GRU": "ONNX z,r,h → PyTorch r,z,n", "LSTM": "ONNX i,o,f,c → PyTorch i,f,g,o"}
DEFAULT_ACTIVATIONS = {"RNN": ("tanh",), "GRU": ("sigmoid", "tanh"),
                       "LSTM": ("sigmoid", "tanh", "tanh")}
# ONNX activation names (their default α, β) -> rnngrad's (rnngrad.cells.activations).
ACTIVATIONS = {"tanh": "tanh", "sigmoid": "sigmoid", "relu": "relu",
               "hardsigmoid": "hard_sigmoid_0.2", "softsign": "softsign",
               "softplus": "softplus", "elu": "elu", "affine": "identity"}


def check_model_size(file: Path, size: int, max_memory: float | None = None) -> None:
    """Refuse a model protobuf cannot parse, or whose parsing would pass the memory limit,
    before it is hashed or read."""
    if size > MAX_MODEL_BYTES:
        raise LoadError(f"{file}: an ONNX model of {size_text(size)}; protobuf parses at most "
                        "2 GiB", "export the weights as external data "
                        "(onnx.save_model(..., save_as_external_data=True))")
    MemoryBudget(str(file), MAX_FILE_MEMORY, max_memory).take(size, "the ONNX model, parsed whole")


def read_onnx(file: Path, sha: str, *, max_memory: float | None = None) -> WeightBundle:
    """The initializers of an ONNX model and the recurrences of its RNN, GRU, LSTM nodes.

    ``max_memory`` (GiB, ``--max-memory``) lowers the per-file cap :data:`MAX_FILE_MEMORY`.
    """
    where = str(file)
    onnx = _onnx(where)
    size = file.stat().st_size
    check_model_size(file, size, max_memory)
    budget = MemoryBudget(where, MAX_FILE_MEMORY, max_memory)
    budget.take(size, "the ONNX model, parsed whole")
    try:
        model = onnx.load(str(file), load_external_data=False)
    except Exception as exc:  # protobuf raises DecodeError, RecursionError and friends
        raise LoadError(f"{where}: not a readable ONNX model ({type(exc).__name__}: "
                        f"{brief(exc)})", "re-export or re-download the model") from None
    reader = TensorReader(file, budget)
    base = _initializers_bundle(model, file, sha, reader)
    finder = _Finder(model, reader, where, budget)
    try:
        finder.walk(model.graph)
    except RecursionError:
        raise LoadError(f"{where}: the ONNX graph is nested too deeply to read",
                        "the model is malformed") from None
    if not finder.layouts:
        return replace(base, notes=base.notes + (_no_recurrent_node(model),))
    return with_derived(base, finder.derived, tuple(finder.layouts), tuple(finder.notes))


def _onnx(where: str = ""):
    try:
        import onnx
    except ImportError:
        raise LoadError(f"{where + ': ' if where else ''}this looks like an ONNX model; reading "
                        "it needs the onnx package, which is not installed",
                        INSTALL_HINT) from None
    return onnx


def _no_recurrent_node(model) -> str:
    """The note for a graph without recurrent nodes (the detection turns it into the error)."""
    counts: dict[str, int] = {}
    for node in model.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    common = ", ".join(f"{op} ×{count}" for op, count in
                       sorted(counts.items(), key=lambda kv: -kv[1])[:6])
    return ("no RNN, LSTM or GRU node in the ONNX graph" + (f" (it has {common})" if common
                                                           else "") +
            ": a recurrence unrolled into MatMul/Add steps, as the default (dynamo) exporter "
            "writes it, cannot be read as a recurrence")


def _initializers_bundle(model, file: Path, sha: str, reader: TensorReader) -> WeightBundle:
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
    """Walks every graph and subgraph for RNN/LSTM/GRU nodes and describes them, nodes that
    feed each other as the layers of one module (:mod:`rnngrad.io.onnx.stacks`)."""

    def __init__(self, model, reader: TensorReader, where: str, budget: MemoryBudget):
        from onnx import helper

        self.folder = ConstantFolder(reader, helper.get_attribute_value, budget)
        self.reader = reader
        self.where = where
        self.derived: dict[str, Derived] = {}
        self.layouts: list[Layout] = []
        self.notes: list[str] = []
        self.seen: dict[str, str] = {}
        self.initializer_names = {init.name for init in model.graph.initializer}
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                          None)

    def walk(self, graph) -> None:
        """Every graph, outer first, without recursion; each graph's nodes in file order."""
        from onnx import AttributeProto

        pending = [(graph, None, "")]
        while pending:
            current, parent, context = pending.pop()
            scope = Scope(current, parent, self.reader)
            found, inner = [], []
            for index, node in enumerate(current.node):
                if node.op_type in GATES and node.domain in ("", "ai.onnx"):
                    found.append(self._read(node, scope, context, index))
                for attr in node.attribute:
                    where = f"{context}{node.op_type} {node.name or index}.{attr.name} / "
                    graphs = [attr.g] if attr.type == AttributeProto.GRAPH else \
                        list(attr.graphs) if attr.type == AttributeProto.GRAPHS else []
                    inner += [(sub, scope, where) for sub in graphs]
            for chain in stacks(found, scope, self.folder, self.notes):
                self._describe(chain)
            pending += reversed(inner)

    def _read(self, node, scope: Scope, context: str, index: int) -> RnnNode:
        op = node.op_type
        label = node.name or f"{op} #{index}"
        attrs = {a.name: self.folder.attribute(a) for a in node.attribute}
        w, r, b = (self._weight(node, position, scope, label) for position in (1, 2, 3))
        directions, hidden, inputs = _check_shapes(op, w, r, b, attrs, label, self.where)
        _check_unsupported(node, attrs, label, self.where, self._peepholes(node, scope, label))
        self._initial_state_note(node, scope, label)
        gru_before = op == "GRU" and not attrs.get("linear_before_reset", 0)
        sources = tuple(sorted(set().union(*[self.folder.sources(node.input[p], scope)
                                             for p in (1, 2, 3) if len(node.input) > p
                                             and node.input[p]])))
        return RnnNode(node=node, label=label, op=op, attrs=attrs, w=w, r=r, b=b,
                       directions=directions, hidden=hidden, inputs=inputs,
                       nonlinearity=_activations(op, attrs, directions, label, self.where),
                       cell="gru_reset_before" if gru_before else None, context=context,
                       sources=sources, digest=_digest(op, w, r, b, attrs))

    def _describe(self, chain: list[RnnNode]) -> None:
        digest = "|".join(item.digest for item in chain)
        first = chain[0]
        if digest in self.seen:
            self.notes.append(f"ONNX {first.op} node {first.label} computes the same recurrence "
                              f"as {self.seen[digest]} (same W, R, B, attributes): analysed once")
            return
        self.seen[digest] = first.label
        module = self._module_name(first)
        if len(chain) > 1:
            self.notes.append(f"{module}: ONNX {first.op} nodes "
                              f"{', '.join(item.label for item in chain)} feed each other: "
                              f"layers 0..{len(chain) - 1} of one stack, as PyTorch runs them")
        for layer, item in enumerate(chain):
            for d in range(item.directions):
                self._direction(item, module, layer, d)

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

    def _initial_state_note(self, node, scope: Scope, label: str) -> None:
        """A constant, non-zero initial_h/initial_c is said: rnngrad's probes start at zero.
        (A run-time input, as exporters write, is whatever the caller passes.)"""
        for position, name in ((5, "initial_h"), (6, "initial_c")):
            if len(node.input) <= position or not node.input[position]:
                continue
            try:
                value = np.asarray(self.folder.value(node.input[position], scope))
            except NotConstant:
                continue
            if value.size and np.any(value != 0):
                self.notes.append(f"ONNX node {label} starts from a constant non-zero {name}; "
                                  "rnngrad's probes start every recurrence from zero")

    def _peepholes(self, node, scope: Scope, label: str):
        if node.op_type != "LSTM" or len(node.input) <= 7 or not node.input[7]:
            return None
        return self._weight(node, 7, scope, label)

    def _module_name(self, item: RnnNode) -> str:
        """The node's scope (``/rnn/LSTM`` -> ``rnn``, as PyTorch's exporter names nodes after
        their module), else its name; made unique, and never a prefix of an initializer's
        name the derived tensors would take."""
        base = item.scope_path.strip("/") or item.label
        name = re.sub(r"[^0-9A-Za-z_.]+", ".", base).strip(".") or item.op
        taken = {layout.module for layout in self.layouts}
        unique, count = name, 1
        while unique in taken or any(init.startswith(f"{unique}.weight_")
                                     or init.startswith(f"{unique}.bias_")
                                     for init in self.initializer_names):
            unique, count = f"{name}_{count}", count + 1
        return unique

    def _direction(self, item: RnnNode, module: str, layer: int, d: int) -> None:
        op, label = item.op, item.label
        direction = _direction_name(item.attrs, d)
        nonlinearity, source = item.nonlinearity
        layout = Layout(
            module=module, layer=layer, direction=direction, cell=item.cell,
            nonlinearity=nonlinearity, nonlinearity_source=source,
            convention=_convention(op, label, item.context, self.opset, item.cell is not None),
            gate_order=GATE_TEXT[op],
            orientation="W (G·H × I) and R (G·H × H) as stored (ONNX computes X Wᵀ, as "
                        "PyTorch); B = [Wb; Rb] -> bias_ih, bias_hh",
            sources=item.sources)
        order, rows = ORDER[op], GATES[op] * item.hidden

        def reorder(matrix: np.ndarray) -> np.ndarray:
            blocks = np.split(matrix, GATES[op], axis=0)
            return np.concatenate([blocks[k] for k in order], axis=0)

        parts = {"weight_ih": reorder(item.w[d]), "weight_hh": reorder(item.r[d])}
        if item.b is not None:
            parts.update(bias_ih=reorder(item.b[d][:rows]), bias_hh=reorder(item.b[d][rows:]))
        what = {"weight_ih": f"W[{d}]", "weight_hh": f"R[{d}]", "bias_ih": f"B[{d}, :{rows}]",
                "bias_hh": f"B[{d}, {rows}:]"}
        reordered = ", gates reordered" if GATES[op] > 1 else ""
        for part, value in parts.items():
            name, derived = derived_tensor(layout.tensor_name(part), value.shape,
                                           str(value.dtype), lambda v=value: v,
                                           f"{what[part]} of ONNX {op} node {label}{reordered}")
            self.derived[name] = derived
        self.layouts.append(layout)


def _check_shapes(op, w, r, b, attrs, label, where):
    gates = GATES[op]
    if w.ndim != 3 or r.ndim != 3 or w.shape[0] != r.shape[0] or r.shape[1] != gates * r.shape[2]:
        raise LoadError(f"{where}: ONNX {op} node {label} has W {list(w.shape)} and R "
                        f"{list(r.shape)}", f"W is (D, {gates}·H, I) and R (D, {gates}·H, H)")
    directions, rows, hidden = r.shape
    expected = 2 if attrs.get("direction", b"forward") in (b"bidirectional", "bidirectional") else 1
    if directions != expected or w.shape[1] != rows or attrs.get("hidden_size", hidden) != hidden \
            or hidden == 0:
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


def _activations(op, attrs, directions, label, where) -> tuple[str, str]:
    """(nonlinearity, source): the node's ``activations`` under rnngrad's names ("config"),
    or the operator's documented defaults ("default"). Every direction must run the same."""
    count = len(DEFAULT_ACTIVATIONS[op])
    given = [_text(a) for a in attrs.get("activations", [])]
    if attrs.get("activation_alpha") or attrs.get("activation_beta"):
        raise LoadError(f"{where}: ONNX {op} node {label} sets activation_alpha/beta",
                        "rnngrad runs the activations with their default parameters only")
    if not given:
        chosen, source = DEFAULT_ACTIVATIONS[op], "default"
    else:
        if len(given) not in (count, count * directions):
            raise LoadError(f"{where}: ONNX {op} node {label} lists {len(given)} activations, "
                            f"expected {count} per direction", "the model is malformed")
        per_direction = {tuple(given[d * count:(d + 1) * count]) if len(given) > count
                         else tuple(given) for d in range(directions)}
        if len(per_direction) > 1:
            raise LoadError(f"{where}: ONNX {op} node {label} runs different activations in its "
                            f"two directions ({given})", "rnngrad runs one set per node")
        unknown = [name for name in given if name.lower() not in ACTIVATIONS]
        if unknown:
            raise LoadError(f"{where}: ONNX {op} node {label} uses activation {unknown[0]!r}, "
                            "which rnngrad's cells do not run",
                            "rnngrad runs Tanh, Sigmoid, Relu, HardSigmoid, Softsign, Softplus, "
                            "Elu and Affine with their default parameters")
        chosen = tuple(ACTIVATIONS[name.lower()] for name in per_direction.pop())
        source = "config"
    if op == "LSTM" and chosen[1] == chosen[2]:
        chosen = chosen[:2]
    return "/".join(chosen), source


def _direction_name(attrs, d: int) -> str:
    direction = _text(attrs.get("direction", "forward"))
    return "reverse" if direction == "reverse" or (direction == "bidirectional" and d == 1) \
        else "forward"


def _convention(op, label, context, opset, gru_before) -> str:
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
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)
