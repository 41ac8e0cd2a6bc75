"""Running recurrences over sequences exactly as PyTorch runs them: stacks and directions.

A *group* is what runs together: a stacked module (its layers, each with its directions,
forward first) or a lone cell module. Layer k's input is the concatenation of layer k−1's
outputs (forward first); a reverse direction runs over the time-reversed sequence, so its
steps (and lags) count in its own direction. States start at zero.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import torch

from rnngrad.cells import Recurrence
from rnngrad.cells.base import CellWeights
from rnngrad.errors import OptionError


class ForwardOverflow(Exception):
    """The forward pass left the finite range at ``step`` (1-based)."""

    def __init__(self, step: int) -> None:
        super().__init__(f"the forward pass overflowed at step {step}")
        self.step = step


@dataclass(frozen=True)
class Trace:
    """A recurrence's forward pass: ``outputs`` (B, T, P) and one cache per step (t = 1..T)."""

    outputs: torch.Tensor
    final_state: torch.Tensor
    caches: list


def run_recurrence(rec: Recurrence, weights: CellWeights, inputs: torch.Tensor, *,
                   horizon: int | None = None) -> Trace:
    """Run one layer and direction over ``inputs`` (B, T, I), already in its own time order.

    ``horizon``: truncated backpropagation: the state is detached before step T − horizon + 1,
    so gradients reach back at most ``horizon`` steps (None: all the way).
    """
    # One view per step: indexing drive[:, t] instead would make autograd write each step's
    # gradient into a zero tensor of the whole (B, T, G·H) drive, T² work over a sequence.
    drive = weights.input_drive(inputs).unbind(1)
    state = inputs.new_zeros(inputs.shape[0], rec.state_size)
    outputs, caches = [], []
    equations = rec.equations
    cut = None if horizon is None else inputs.shape[1] - horizon
    for t in range(inputs.shape[1]):
        if t == cut:
            state = state.detach()
        state, cache = equations.step(weights, drive[t], state, rec.nonlinearity)
        if not torch.isfinite(state).all():
            raise ForwardOverflow(t + 1)
        outputs.append(equations.output(state, rec.hidden_size))
        caches.append(cache)
    return Trace(outputs=torch.stack(outputs, dim=1), final_state=state, caches=caches)


def run_stack(layers: list[list[tuple[Recurrence, CellWeights]]], inputs: torch.Tensor, *,
              horizon: int | None = None,
              ) -> tuple[dict[Recurrence, tuple[Trace, torch.Tensor]], torch.Tensor]:
    """Run a stacked, possibly bidirectional module exactly as PyTorch does.

    ``layers[k]`` holds the directions of layer k, forward first. Layer k's input is the
    concatenation of layer k−1's outputs (forward first); a reverse direction runs over the
    time-reversed sequence. Returns each recurrence's trace with the inputs it saw (in its own
    time order) and the module's output sequence (B, T, D·P). ``horizon`` truncates the
    forward directions' backpropagation to that many steps (the output at T of a reverse
    direction depends on no earlier step).
    """
    traces: dict[Recurrence, tuple[Trace, torch.Tensor]] = {}
    current = inputs
    for directions in layers:
        outs = []
        for rec, weights in directions:
            seen = current.flip(1) if rec.direction == "reverse" else current
            trace = run_recurrence(rec, weights, seen,
                                   horizon=horizon if rec.direction == "forward" else None)
            traces[rec] = (trace, seen)
            outs.append(trace.outputs.flip(1) if rec.direction == "reverse" else trace.outputs)
        current = torch.cat(outs, dim=-1)
    return traces, current


@dataclass(frozen=True)
class Group:
    """Recurrences run together: a stacked module (layers of directions) or a lone cell."""

    name: str
    layers: list[list[Recurrence]]

    @property
    def first(self) -> Recurrence:
        return self.layers[0][0]

    @property
    def members(self) -> list[Recurrence]:
        return [rec for layer in self.layers for rec in layer]


def group_recurrences(recurrences: tuple[Recurrence, ...]) -> list[Group]:
    stacks: dict[str, dict[int, list[Recurrence]]] = defaultdict(lambda: defaultdict(list))
    order: list[str] = []
    singles: list[Group] = []
    for rec in recurrences:
        if rec.cell_module:
            singles.append(Group(rec.module, [[rec]]))
            order.append(f"\0{len(singles) - 1}")
            continue
        if rec.module not in stacks:
            order.append(rec.module)
        stacks[rec.module][rec.layer].append(rec)
    groups = []
    for key in order:
        if key.startswith("\0"):
            groups.append(singles[int(key[1:])])
            continue
        layers = [sorted(stacks[key][k], key=lambda r: r.direction != "forward")
                  for k in sorted(stacks[key])]
        groups.append(Group(key, layers))
    return groups


def select_groups(groups: list[Group], modules: tuple[str, ...]) -> list[Group]:
    if not modules:
        return groups
    chosen = [g for g in groups if g.name in modules]
    unknown = sorted(set(modules) - {g.name for g in groups})
    if unknown:
        raise OptionError(f"--module {unknown[0]!r} is not in the file",
                          f"modules: {', '.join(g.name or '(top)' for g in groups)}")
    return chosen
