"""ONNX RNN nodes that feed each other: the layers of one stacked module, as PyTorch runs it.

``torch.onnx.export`` writes a multi-layer ``nn.RNN``/``nn.GRU``/``nn.LSTM`` as one RNN node
per layer: layer k's Y (T, D, B, H) is turned into layer k+1's X (T, B, D·H) by a Transpose
and a Reshape (or a Squeeze when D = 1). Node N is stacked on node M when

- N's X is M's Y through layout operators only (Transpose, Reshape, Squeeze, Unsqueeze,
  Flatten, Identity) in the same graph, and no other RNN node is fed by M;
- both are the same operator with the same direction, activations and GRU variant, their
  names share a scope (``/rnn/LSTM`` and ``/rnn/LSTM_1``: module ``rnn``), and N's input
  size is D × H of M;
- those operators, evaluated on a numbered probe in place of Y, give exactly PyTorch's layer
  input: X[t, b, d·H + h] = Y[t, d, b, h] (directions concatenated forward first), for the
  ``layout`` attribute of either node. A probe of T = 3, B = 2 is tried first, then the
  time and batch sizes a Reshape in the chain has baked in (the dynamo exporter writes
  fixed shapes).

Nodes that look chained but fail a check stay separate modules, and a note says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnngrad.errors import LoadError
from rnngrad.io.onnx.folding import ConstantFolder, NotConstant, Scope

LAYOUT_OPS = {"Transpose", "Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity"}
MAX_CHAIN = 8
MAX_PROBE = 1 << 16


@dataclass
class RnnNode:
    """One RNN/GRU/LSTM node as read: its weights, sizes and what it runs."""

    node: Any
    label: str
    op: str
    attrs: dict
    w: np.ndarray
    r: np.ndarray
    b: np.ndarray | None
    directions: int
    hidden: int
    inputs: int
    nonlinearity: tuple[str, str]  # (text, source), the same for every direction
    cell: str | None
    context: str
    sources: tuple[str, ...]
    digest: str
    below: "RnnNode | None" = field(default=None, repr=False)

    @property
    def scope_path(self) -> str:
        """The scope part of the node's name (``/rnn`` for ``/rnn/LSTM``; "" without a ``/``)."""
        return self.label.rpartition("/")[0] if "/" in self.label else ""

    @property
    def layout(self) -> int:
        """The ``layout`` attribute: 0 for (T, B, ·) inputs and outputs, 1 for batch first."""
        return int(self.attrs.get("layout", 0) or 0)

    @property
    def direction_text(self) -> str:
        """The ``direction`` attribute as text: ``forward``, ``reverse`` or ``bidirectional``."""
        value = self.attrs.get("direction", "forward")
        return value.decode() if isinstance(value, bytes) else str(value)


def stacks(found: list[RnnNode], scope: Scope, folder: ConstantFolder,
           notes: list[str]) -> list[list[RnnNode]]:
    """The nodes of one graph grouped into stacks (bottom layer first), in file order."""
    by_output = {item.node.output[0]: item for item in found
                 if len(item.node.output) and item.node.output[0]}
    feeds: dict[int, RnnNode] = {}
    fed_by: dict[int, list[RnnNode]] = {}
    for item in found:
        link = _feeding(item, scope, by_output)
        if link is None:
            continue
        below, chain = link
        if _compatible(below, item) and _verified(below, item, chain, scope, folder):
            feeds[id(item)] = below
            fed_by.setdefault(id(below), []).append(item)
        else:
            notes.append(f"ONNX nodes {below.label} and {item.label} are chained, but not as "
                         "the layers of one PyTorch module: analysed as separate modules")
    for below_id, above in fed_by.items():
        if len(above) > 1:  # one output feeding two RNNs is no stack
            for item in above:
                feeds.pop(id(item), None)
    groups, placed = [], set()
    for item in found:
        if id(item) in feeds or id(item) in placed:
            continue
        chain, current = [item], item
        while True:
            above = [n for n in fed_by.get(id(current), []) if feeds.get(id(n)) is current]
            if not above:
                break
            current = above[0]
            chain.append(current)
        placed.update(id(n) for n in chain)
        groups.append(chain)
    return groups


def _feeding(item: RnnNode, scope: Scope,
             by_output: dict[str, RnnNode]) -> tuple[RnnNode, list] | None:
    """The RNN node whose Y becomes ``item``'s X through layout operators, and those
    operators in the order they apply; None when X comes from elsewhere."""
    if not item.node.input:
        return None
    name, chain = item.node.input[0], []
    while name not in by_output:
        producer = scope.producers.get(name)
        if producer is None or producer.op_type not in LAYOUT_OPS \
                or producer.domain not in ("", "ai.onnx") or len(chain) >= MAX_CHAIN \
                or not producer.input:
            return None
        chain.append(producer)
        name = producer.input[0]
    below = by_output[name]
    return (below, chain[::-1]) if below is not item else None


def _compatible(below: RnnNode, above: RnnNode) -> bool:
    return (below.op == above.op and below.direction_text == above.direction_text
            and below.nonlinearity[0] == above.nonlinearity[0] and below.cell == above.cell
            and below.scope_path == above.scope_path
            and above.inputs == below.directions * below.hidden)


def _verified(below: RnnNode, above: RnnNode, chain: list, scope: Scope,
              folder: ConstantFolder) -> bool:
    for steps, batch in _probe_sizes(below, chain, scope, folder):
        d, h = below.directions, below.hidden
        canonical = np.arange(steps * d * batch * h, dtype=np.float64).reshape(steps, d, batch, h)
        y = canonical.transpose(2, 0, 1, 3) if below.layout else canonical
        expected = canonical.transpose(0, 2, 1, 3).reshape(steps, batch, d * h)
        if above.layout:
            expected = expected.transpose(1, 0, 2)
        try:
            x = _run_chain(chain, y, scope, folder)
        except (NotConstant, LoadError):
            continue
        if x.shape == expected.shape and np.array_equal(x, expected):
            return True
    return False


def _probe_sizes(below: RnnNode, chain: list, scope: Scope, folder: ConstantFolder):
    """(T, B) to try: 3 and 2, then those a Reshape's constant shape fixes."""
    yield 3, 2
    for op in chain:
        if op.op_type != "Reshape" or len(op.input) < 2:
            continue
        try:
            shape = [int(v) for v in np.asarray(folder.value(op.input[1], scope)).reshape(-1)]
        except (NotConstant, LoadError, ValueError, OverflowError):
            continue
        if len(shape) == 3 and all(v > 0 for v in shape[:2]) \
                and shape[0] * shape[1] * below.directions * below.hidden <= MAX_PROBE:
            yield (shape[1], shape[0]) if below.layout else (shape[0], shape[1])


def _run_chain(chain: list, value: np.ndarray, scope: Scope,
               folder: ConstantFolder) -> np.ndarray:
    for op in chain:
        others = [folder.value(name, scope) if name else None for name in op.input[1:]]
        value = folder.apply(op, [value, *others])[0]
    return value
