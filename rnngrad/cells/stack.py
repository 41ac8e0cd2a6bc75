"""Running recurrences over sequences exactly as PyTorch runs them: stacks and directions.

A *group* is what runs together: a stacked module (its layers, each with its directions,
forward first) or a lone cell module. Layer k's input is the concatenation of layer k−1's
outputs (forward first); a reverse direction runs over the time-reversed sequence, so its
steps (and lags) count in its own direction. States start at zero, or at a given s_0 per
recurrence (``--initial-state``, :mod:`rnngrad.probes.initial`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
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
    """A recurrence's forward pass: ``outputs`` (B, T, P), and per step t = 1..T the state
    s_t (B, S) and the cache its Jacobian needs."""

    outputs: torch.Tensor
    final_state: torch.Tensor
    caches: list
    states: list


def run_recurrence(rec: Recurrence, weights: CellWeights, inputs: torch.Tensor,
                   initial: torch.Tensor | None = None, *, check_finite: bool = True,
                   horizon: int | None = None) -> Trace:
    """Run one layer and direction over ``inputs`` (B, T, I), already in its own time order.

    ``initial``: s_0 (B, S) (default zero). ``check_finite``: raise :class:`ForwardOverflow` at
    the first step that leaves the finite range; without it (under ``torch.func.vmap``, where
    a tensor cannot decide a branch) non-finite states run on to a non-finite output.
    ``horizon``: truncated backpropagation: the state is detached before step T − horizon + 1,
    so gradients reach back at most ``horizon`` steps (None: all the way).
    """
    drive = weights.input_drive(inputs)
    state = inputs.new_zeros(inputs.shape[0], rec.state_size) if initial is None else initial
    outputs, caches, states = [], [], []
    equations = rec.equations
    cut = None if horizon is None else inputs.shape[1] - horizon
    # unbind: one backward node for all steps (drive[:, t] would scatter T full-size
    # gradients, O(T²), and triple the cost of a parameter gradient at T = 150).
    for t, drive_t in enumerate(drive.unbind(1)):
        if t == cut:
            state = state.detach()
        state, cache = equations.step(weights, drive_t, state, rec.nonlinearity)
        if check_finite and not torch.isfinite(state).all():
            raise ForwardOverflow(t + 1)
        outputs.append(equations.output(state, rec.hidden_size))
        caches.append(cache)
        states.append(state)
    return Trace(outputs=torch.stack(outputs, dim=1), final_state=state, caches=caches,
                 states=states)


def run_stack(layers: list[list[tuple[Recurrence, CellWeights]]], inputs: torch.Tensor,
              initial: Mapping[Recurrence, torch.Tensor] | None = None, *,
              check_finite: bool = True, horizon: int | None = None,
              ) -> tuple[dict[Recurrence, tuple[Trace, torch.Tensor]], torch.Tensor]:
    """Run a stacked, possibly bidirectional module exactly as PyTorch does.

    ``layers[k]`` holds the directions of layer k, forward first. Layer k's input is the
    concatenation of layer k−1's outputs (forward first); a reverse direction runs over the
    time-reversed sequence, its outputs flipped back to input order (kept in the order computed
    when ``rec.reversed_output``, as Keras' ``go_backwards`` returns them). ``initial`` maps a recurrence to its s_0 (B, S) (absent: zero);
    ``check_finite`` as in :func:`run_recurrence`. Returns each recurrence's trace with the
    inputs it saw (in its own time order) and the module's output sequence (B, T, D·P).
    ``horizon`` truncates the forward directions' backpropagation to that many steps (the
    output at T of a reverse direction depends on no earlier step).
    """
    traces: dict[Recurrence, tuple[Trace, torch.Tensor]] = {}
    current = inputs
    for directions in layers:
        outs = []
        for rec, weights in directions:
            seen = current.flip(1) if rec.direction == "reverse" else current
            start = initial.get(rec) if initial is not None else None
            trace = run_recurrence(rec, weights, seen, start, check_finite=check_finite,
                                   horizon=horizon if rec.direction == "forward" else None)
            traces[rec] = (trace, seen)
            flip = rec.direction == "reverse" and not rec.reversed_output
            outs.append(trace.outputs.flip(1) if flip else trace.outputs)
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
