"""Evaluate the constant part of an ONNX graph with NumPy (no onnxruntime, nothing executed).

An RNN node's W, R and B are often computed at run time from initializers (Silero VAD slices
PyTorch's ``weight_ih`` into gate blocks and concatenates them in ONNX's order inside ``If``
branches). :class:`ConstantFolder` evaluates such a value backwards from its name: through
initializers, ``Constant`` nodes and a whitelist of shape and arithmetic operators, across
subgraph scopes (a branch sees its enclosing graphs' names). Anything that depends on a graph
input, or on an operator outside the whitelist, is not constant: :class:`NotConstant` says
which name and why. ``sources(name)`` lists the initializers a value was computed from.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

MAX_ELEMENTS = 1 << 28


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
        scope: Scope | None = self
        while scope is not None:
            if name in scope.producers or name in scope.initializers:
                return scope
            if name in scope.inputs:
                return None
            scope = scope.parent
        return None


class ConstantFolder:
    """Memoised constant evaluation; ``tensor(proto)`` turns a TensorProto into an array."""

    def __init__(self, tensor: Callable[[Any], np.ndarray], attribute: Callable[[Any], Any]):
        self.tensor = tensor
        self.attribute = attribute
        self.cache: dict[tuple[int, str], np.ndarray] = {}
        self.origins: dict[tuple[int, str], frozenset[str]] = {}

    def value(self, name: str, scope: Scope) -> np.ndarray:
        owner = scope.find(name)
        if owner is None:
            raise NotConstant(f"{name!r} is a graph input or undefined")
        key = (id(owner), name)
        if key not in self.cache:
            if name in owner.initializers and name not in owner.producers:
                self.cache[key] = self.tensor(owner.initializers[name])
                self.origins[key] = frozenset({name})
            else:
                node = owner.producers[name]
                outputs, origins = self._node(node, owner)
                for out, val in zip(node.output, outputs):
                    self.cache[(id(owner), out)] = val
                    self.origins[(id(owner), out)] = origins
        return self.cache[key]

    def sources(self, name: str, scope: Scope) -> frozenset[str]:
        owner = scope.find(name)
        return self.origins.get((id(owner), name), frozenset()) if owner else frozenset()

    def _node(self, node, scope: Scope) -> tuple[list[np.ndarray], frozenset[str]]:
        attrs = {a.name: self._attribute(a) for a in node.attribute}
        if node.op_type == "If" and node.domain in ("", "ai.onnx"):
            return self._if(node, attrs, scope)
        op = OPS.get(node.op_type) if node.domain in ("", "ai.onnx") else None
        if op is None:
            raise NotConstant(f"operator {node.op_type} ({node.name or node.output[0]}) is not "
                              "evaluated by rnngrad")
        inputs = [self.value(name, scope) if name else None for name in node.input]
        origins = frozenset().union(*[self.sources(n, scope) for n in node.input if n])
        outputs = op(inputs, attrs)
        for out in outputs:
            if np.size(out) > MAX_ELEMENTS:
                raise NotConstant(f"{node.op_type} {node.name} would build {np.size(out)} values")
        return outputs, origins

    def _attribute(self, attribute) -> Any:
        """An attribute's value; tensor-valued ones (Constant's ``value``) as arrays."""
        value = self.attribute(attribute)
        return self.tensor(value) if hasattr(value, "dims") and hasattr(value, "data_type") \
            else value

    def _if(self, node, attrs: dict, scope: Scope):
        condition = self.value(node.input[0], scope)
        branch = attrs["then_branch" if bool(np.asarray(condition).reshape(-1)[0])
                       else "else_branch"]
        inner = Scope(branch, scope, self.tensor)
        outputs = [self.value(out.name, inner) for out in branch.output]
        origins = frozenset().union(*[self.sources(out.name, inner) for out in branch.output])
        return outputs, origins


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
    "Expand": lambda i, a: [i[0] * np.ones(_ints(i[1]), dtype=i[0].dtype)],
    "Tile": lambda i, a: [np.tile(i[0], _ints(i[1]))],
    "ConstantOfShape": _constant_of_shape,
    "Add": _binary(np.add),
    "Sub": _binary(np.subtract),
    "Mul": _binary(np.multiply),
    "Div": _binary(_divide),
    "Neg": lambda i, a: [np.negative(i[0])],
}
