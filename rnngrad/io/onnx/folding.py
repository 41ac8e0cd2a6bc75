"""Evaluate the constant part of an ONNX graph with NumPy (no onnxruntime, nothing executed).

An RNN node's W, R and B are often computed at run time from initializers (Silero VAD slices
PyTorch's ``weight_ih`` into gate blocks and concatenates them in ONNX's order inside ``If``
branches). :class:`ConstantFolder` evaluates such a value backwards from its name: through
initializers, ``Constant`` nodes and a whitelist of shape and arithmetic operators, across
subgraph scopes (a branch sees its enclosing graphs' names). Anything that depends on a graph
input, or on an operator outside the whitelist, is not constant: :class:`NotConstant` says
which name and why. ``sources(name)`` lists the initializers a value was computed from.

Hostile graphs are bounded: the evaluation is iterative (a chain of thousands of nodes needs
no recursion) and a cycle is a LoadError; every operator's output size is computed from its
inputs' shapes *before* it is computed (``ConstantOfShape``, ``Expand``, ``Tile``, broadcasting
arithmetic and ``Gather`` can ask for billions of values from a few bytes) and charged to the
file's :class:`~rnngrad.io.budget.MemoryBudget`, at 8 bytes a value, with at most
:data:`MAX_ELEMENTS` values per output; an operator that fails on its inputs (a Reshape to
the wrong size, an index out of range, a missing attribute) is a LoadError naming the node.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from rnngrad.errors import LoadError, brief
from rnngrad.io.budget import MemoryBudget

MAX_ELEMENTS = 1 << 28
MAX_BRANCH_DEPTH = 32  # If nodes inside If branches being folded
_MALFORMED = (ValueError, IndexError, TypeError, KeyError, OverflowError, ZeroDivisionError,
              AttributeError, np.exceptions.AxisError)


class NotConstant(Exception):
    """The value depends on a run-time input or an operator rnngrad does not evaluate."""


class Scope:
    """Producers of names in one graph, with its enclosing scope for outer names."""

    def __init__(self, graph, parent: "Scope | None", tensor: Callable[[Any], np.ndarray]):
        self.parent = parent
        self.initializers = {init.name: init for init in graph.initializer}
        self.producers = {out: node for node in graph.node for out in node.output if out}
        self.inputs = {value.name for value in graph.input}
        self.tensor = tensor

    def find(self, name: str):
        """The scope, this one or an enclosing one, that produces or initialises ``name``; None
        when the nearest scope naming it has it as a graph input, or none names it."""
        scope: Scope | None = self
        while scope is not None:
            if name in scope.producers or name in scope.initializers:
                return scope
            if name in scope.inputs:
                return None
            scope = scope.parent
        return None


class ConstantFolder:
    """Memoised constant evaluation; ``tensor(proto)`` turns a TensorProto into an array.

    ``budget`` is charged for every value computed or read, before it exists.
    """

    def __init__(self, tensor: Callable[[Any], np.ndarray], attribute: Callable[[Any], Any],
                 budget: MemoryBudget):
        self.tensor = tensor
        self.attribute = attribute
        self.budget = budget
        self.where = budget.where
        self.cache: dict[tuple[int, str], np.ndarray] = {}
        self.origins: dict[tuple[int, str], frozenset[str]] = {}
        self._depth = 0

    def value(self, name: str, scope: Scope) -> np.ndarray:
        """The value of ``name`` seen from ``scope``, evaluated without recursion."""
        target = self._resolve(name, scope)
        pending, expanding = [target], set()
        while pending:
            owner, current = pending[-1]
            key = (id(owner), current)
            if key in self.cache:
                pending.pop()
                continue
            if current in owner.initializers and current not in owner.producers:
                self._initializer(owner, current)
                pending.pop()
                continue
            node = owner.producers[current]
            missing = [needed for needed in (self._resolve(n, owner) for n in node.input if n)
                       if (id(needed[0]), needed[1]) not in self.cache]
            if missing:
                if key in expanding:
                    raise LoadError(f"{self.where}: ONNX node {_label(node)} depends on its own "
                                    "output (a cycle in the graph)", "the model is malformed")
                expanding.add(key)
                pending.extend(missing)
                continue
            outputs, origins = self._node(node, owner)
            for out, val in zip(node.output, outputs):
                self.cache[(id(owner), out)] = val
                self.origins[(id(owner), out)] = origins
            if key not in self.cache:
                raise LoadError(f"{self.where}: ONNX node {_label(node)} gives no output "
                                f"{current!r}", "the model is malformed")
            pending.pop()
        return self.cache[(id(target[0]), target[1])]

    def sources(self, name: str, scope: Scope) -> frozenset[str]:
        """The initializers the value ``name`` seen from ``scope`` was computed from (empty until
        :meth:`value` has evaluated it)."""
        owner = scope.find(name)
        return self.origins.get((id(owner), name), frozenset()) if owner else frozenset()

    def apply(self, node, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        """``node`` computed on the given input values (sizes checked first)."""
        op = OPS.get(node.op_type) if node.domain in ("", "ai.onnx") else None
        if op is None:
            raise NotConstant(f"operator {node.op_type} ({_label(node)}) is not evaluated by "
                              "rnngrad")
        attrs = {a.name: self._attribute(a) for a in node.attribute}
        elements = _predicted_elements(node.op_type, inputs, attrs, self.where, node)
        if elements > MAX_ELEMENTS:
            raise LoadError(f"{self.where}: ONNX node {_label(node)} ({node.op_type}) would "
                            f"build {elements:,} values", "refused as implausible for weights")
        self.budget.take(8 * elements, f"the output of ONNX node {_label(node)}")
        try:
            outputs = [np.asarray(out) for out in op(inputs, attrs)]
        except NotConstant:
            raise
        except _MALFORMED as exc:
            raise LoadError(f"{self.where}: ONNX node {_label(node)} ({node.op_type}) cannot be "
                            f"evaluated on its inputs ({brief(exc)})",
                            "the model is malformed") from None
        if sum(out.size for out in outputs) > elements + 64:  # + Shape's rank of empty inputs
            raise LoadError(f"{self.where}: ONNX node {_label(node)} built more values than its "
                            "inputs allow", "the model is malformed")
        return outputs

    def _resolve(self, name: str, scope: Scope) -> tuple[Scope, str]:
        owner = scope.find(name)
        if owner is None:
            raise NotConstant(f"{name!r} is a graph input or undefined")
        return owner, name

    def _initializer(self, owner: Scope, name: str) -> None:
        proto = owner.initializers[name]
        self.budget.take(8 * _proto_elements(proto, self.where), f"initializer {name!r}")
        self.cache[(id(owner), name)] = self.tensor(proto)
        self.origins[(id(owner), name)] = frozenset({name})

    def _node(self, node, scope: Scope) -> tuple[list[np.ndarray], frozenset[str]]:
        inputs = [self.cache[(id(scope.find(name)), name)] if name else None
                  for name in node.input]
        origins = frozenset().union(*[self.sources(n, scope) for n in node.input if n])
        if node.op_type == "If" and node.domain in ("", "ai.onnx"):
            return self._if(node, inputs, scope)
        return self.apply(node, inputs), origins

    def _attribute(self, attribute) -> Any:
        """An attribute's value; tensor-valued ones (Constant's ``value``) as arrays."""
        value = self.attribute(attribute)
        return self.tensor(value) if hasattr(value, "dims") and hasattr(value, "data_type") \
            else value

    def _if(self, node, inputs: list, scope: Scope):
        attrs = {a.name: self._attribute(a) for a in node.attribute}
        condition = np.asarray(inputs[0]) if inputs and inputs[0] is not None else np.zeros(0)
        if condition.size < 1 or "then_branch" not in attrs or "else_branch" not in attrs:
            raise LoadError(f"{self.where}: ONNX If node {_label(node)} lacks a condition or a "
                            "branch", "the model is malformed")
        branch = attrs["then_branch" if bool(condition.reshape(-1)[0]) else "else_branch"]
        if self._depth >= MAX_BRANCH_DEPTH:
            raise LoadError(f"{self.where}: ONNX If nodes nested more than {MAX_BRANCH_DEPTH} "
                            "deep", "the model is malformed")
        inner = Scope(branch, scope, self.tensor)
        self._depth += 1
        try:
            outputs = [self.value(out.name, inner) for out in branch.output]
        finally:
            self._depth -= 1
        origins = frozenset().union(*[self.sources(out.name, inner) for out in branch.output])
        return outputs, origins


def _label(node) -> str:
    return node.name or (node.output[0] if node.output else node.op_type)


def _proto_elements(proto, where: str) -> int:
    dims = [int(d) for d in proto.dims]
    if any(d < 0 for d in dims):
        raise LoadError(f"{where}: ONNX tensor {proto.name!r} has negative dims {dims}",
                        "the model is malformed")
    return math.prod(dims)


def _predicted_elements(op: str, inputs: list, attrs: dict, where: str, node) -> int:
    """How many values ``op`` will build from ``inputs``, computed from shapes only."""
    arrays = [np.asarray(a) if a is not None else None for a in inputs]
    present = [a for a in arrays if a is not None]
    try:
        if op in ("Add", "Sub", "Mul", "Div"):
            return math.prod(np.broadcast_shapes(arrays[0].shape, arrays[1].shape))
        if op == "Expand":
            return math.prod(np.broadcast_shapes(arrays[0].shape,
                                                 tuple(_dims(arrays[1], node, where))))
        if op == "Tile":
            repeats = _dims(arrays[1], node, where)
            if len(repeats) != arrays[0].ndim:
                raise ValueError(f"{len(repeats)} repeats for rank {arrays[0].ndim}")
            return math.prod(d * r for d, r in zip(arrays[0].shape, repeats))
        if op == "ConstantOfShape":
            return math.prod(_dims(arrays[0], node, where))
        if op == "Gather":
            data, indices = arrays[0], arrays[1]
            axis = int(attrs.get("axis", 0)) % max(data.ndim, 1)
            rest = data.size // data.shape[axis] if data.ndim and data.shape[axis] else 0
            return indices.size * rest
        if op == "Concat":
            return sum(a.size for a in present)
        if op == "Constant":
            return max((np.size(v) for v in attrs.values()
                        if isinstance(v, (np.ndarray, list, tuple, int, float))), default=1)
    except _MALFORMED as exc:
        raise LoadError(f"{where}: ONNX node {_label(node)} ({op}) has inputs of shapes that do "
                        f"not fit ({brief(exc)})", "the model is malformed") from None
    return max((a.size for a in present), default=1)


def _dims(value, node, where: str) -> list[int]:
    dims = _ints(value)
    if any(d < 0 for d in dims):
        raise LoadError(f"{where}: ONNX node {_label(node)} ({node.op_type}) asks for a shape "
                        f"with negative dims {dims[:8]}", "the model is malformed")
    return dims


# --- operators --------------------------------------------------------------------------------


def _ints(value) -> list[int]:
    return [int(v) for v in np.asarray(value).reshape(-1)]


def _slice(inputs, attrs):
    data = inputs[0]
    if len(inputs) > 1:  # opset ≥ 10: starts, ends, axes, steps are inputs
        starts, ends = _ints(inputs[1]), _ints(inputs[2])
        axes = _ints(inputs[3]) if len(inputs) > 3 and inputs[3] is not None \
            else list(range(len(starts)))
        steps = _ints(inputs[4]) if len(inputs) > 4 and inputs[4] is not None else [1] * len(starts)
    else:
        starts, ends = list(attrs["starts"]), list(attrs["ends"])
        axes = list(attrs.get("axes", range(len(starts))))
        steps = [1] * len(starts)
    index = [slice(None)] * data.ndim
    for start, end, axis, step in zip(starts, ends, axes, steps):
        index[axis] = slice(*_clamp(start, end, step, data.shape[axis]))
    return [data[tuple(index)]]


def _clamp(start: int, end: int, step: int, size: int) -> tuple[int | None, int | None, int]:
    """ONNX Slice bounds (INT64 max/min mean 'to the end') as a Python slice."""
    big = 1 << 62
    start = None if (step > 0 and start <= -big) or (step < 0 and start >= big) else start
    end = None if (step > 0 and end >= big) or (step < 0 and end <= -big) else end
    return start, end, step


def _unsqueeze(inputs, attrs):
    axes = _ints(inputs[1]) if len(inputs) > 1 and inputs[1] is not None else list(attrs["axes"])
    out = inputs[0]
    rank = out.ndim + len(axes)
    for axis in sorted(a % rank for a in axes):
        out = np.expand_dims(out, axis)
    return [out]


def _squeeze(inputs, attrs):
    axes = _ints(inputs[1]) if len(inputs) > 1 and inputs[1] is not None \
        else list(attrs.get("axes", []))
    data = inputs[0]
    if not axes:
        return [np.squeeze(data)]
    return [np.squeeze(data, axis=tuple(a % data.ndim for a in axes))]


def _reshape(inputs, attrs):
    data, shape = inputs[0], _ints(inputs[1])
    if not attrs.get("allowzero", 0):
        shape = [data.shape[i] if d == 0 else d for i, d in enumerate(shape)]
    return [data.reshape(shape)]


def _split(inputs, attrs):
    data, axis = inputs[0], attrs.get("axis", 0)
    sizes = _ints(inputs[1]) if len(inputs) > 1 and inputs[1] is not None else attrs.get("split")
    if sizes:
        return np.split(data, np.cumsum(sizes)[:-1], axis=axis)
    count = attrs.get("num_outputs") or 2
    return np.array_split(data, count, axis=axis)


def _gather(inputs, attrs):
    return [np.take(inputs[0], inputs[1].astype(np.int64), axis=attrs.get("axis", 0))]


def _constant(inputs, attrs):
    for key in ("value_float", "value_int"):
        if key in attrs:
            return [np.asarray(attrs[key])]
    for key in ("value_floats", "value_ints"):
        if key in attrs:
            return [np.asarray(list(attrs[key]))]
    if "value" not in attrs:
        raise NotConstant("Constant without a numeric value")
    return [attrs["value"]]


def _binary(fn):
    return lambda inputs, attrs: [np.asarray(fn(inputs[0], inputs[1]))]


def _divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ONNX Div: integer division truncates for integer tensors."""
    if np.issubdtype(np.result_type(a, b), np.integer):
        return (np.trunc(np.asarray(a) / np.asarray(b))).astype(np.result_type(a, b))
    return np.divide(a, b)


def _cast(inputs, attrs):
    from onnx import helper

    return [inputs[0].astype(helper.tensor_dtype_to_np_dtype(attrs["to"]))]


def _constant_of_shape(inputs, attrs):
    fill = attrs.get("value")
    fill = np.zeros(1, dtype=np.float32) if fill is None else fill.reshape(-1)
    return [np.full(_ints(inputs[0]), fill[0], dtype=fill.dtype)]


OPS: dict[str, Callable[[list, dict], list]] = {
    "Constant": _constant,
    "Identity": lambda i, a: [i[0]],
    "Cast": _cast,
    "Slice": _slice,
    "Concat": lambda i, a: [np.concatenate(i, axis=a.get("axis", 0))],
    "Transpose": lambda i, a: [np.transpose(i[0], a.get("perm"))],
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Reshape": _reshape,
    "Flatten": lambda i, a: [i[0].reshape(int(np.prod(i[0].shape[:a.get("axis", 1)])), -1)],
    "Split": _split,
    "Gather": _gather,
    "Shape": lambda i, a: [np.asarray(i[0].shape[a.get("start", 0):a.get("end")],
                                      dtype=np.int64)],
    "Expand": lambda i, a: [np.broadcast_to(i[0], np.broadcast_shapes(
        i[0].shape, tuple(_ints(i[1])))).copy()],
    "Tile": lambda i, a: [np.tile(i[0], _ints(i[1]))],
    "ConstantOfShape": _constant_of_shape,
    "Add": _binary(np.add),
    "Sub": _binary(np.subtract),
    "Mul": _binary(np.multiply),
    "Div": _binary(_divide),
    "Neg": lambda i, a: [np.negative(i[0])],
}
