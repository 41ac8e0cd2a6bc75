"""Running recurrences over sequences exactly as PyTorch runs them: stacks and directions.

A *group* is what runs together: a stacked module (its layers, each with its directions,
forward first) or a lone cell module. Layer k's input is the concatenation of layer k−1's
outputs (forward first); a reverse direction runs over the time-reversed sequence, so its
steps (and lags) count in its own direction. States start at zero, or at a given s_0 per
recurrence (``--initial-state``, :mod:`rnngrad.probes.initial`).

:func:`run_stack` keeps every step's cache (``bptt`` sweeps them backwards);
:func:`stream_stack` hands them out one step at a time and keeps none (``lyapunov`` runs
thousands of steps forwards).
"""

from __future__ import annotations

import functools
from collections import defaultdict, deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Iterator

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


# Input drives W_ih x_t + b_ih are computed this many steps at a time: a whole long probe's
# drive (B, T, G·H) would cost more memory than the analysis itself.
DRIVE_CHUNK = 256


def stream_recurrence(rec: Recurrence, weights: CellWeights, inputs: torch.Tensor,
                      outputs: list[torch.Tensor] | None = None,
                      initial: torch.Tensor | None = None, *, check_finite: bool = True,
                      horizon: int | None = None) -> Iterator[tuple[torch.Tensor, Any]]:
    """Run one layer and direction over ``inputs`` (B, T, I), already in its own time order,
    yielding (s_t, cache_t) for t = 1..T without keeping them.

    Each step's output (B, P), what the next layer sees, is appended to ``outputs`` when
    given (a list, stacked by the caller: slice writes into one buffer would chain T in-place
    copies in autograd's graph). ``initial``: s_0 (B, S) (default zero). ``check_finite``:
    raise :class:`ForwardOverflow` at the first step whose state is not finite; without it
    (under ``torch.func.vmap``, where a tensor cannot decide a branch) non-finite states run
    on to a non-finite output. ``horizon``: truncated backpropagation: the state is detached
    before step T − horizon + 1, so gradients reach back at most ``horizon`` steps.
    """
    state = inputs.new_zeros(inputs.shape[0], rec.state_size) if initial is None else initial
    equations = rec.equations
    cut = None if horizon is None else inputs.shape[1] - horizon
    for start in range(0, inputs.shape[1], DRIVE_CHUNK):
        drive = weights.input_drive(inputs[:, start:start + DRIVE_CHUNK])
        # unbind: one backward node per chunk (drive[:, t] would scatter a full-size
        # gradient per step, O(T²), and triple the cost of a parameter gradient at T = 150)
        for offset, drive_t in enumerate(drive.unbind(1)):
            if start + offset == cut:
                state = state.detach()
            state, cache = equations.step(weights, drive_t, state, rec.nonlinearity)
            if check_finite and not torch.isfinite(state).all():
                raise ForwardOverflow(start + offset + 1)
            if outputs is not None:
                outputs.append(equations.output(state, rec.hidden_size))
            yield state, cache


def run_recurrence(rec: Recurrence, weights: CellWeights, inputs: torch.Tensor,
                   initial: torch.Tensor | None = None, *, check_finite: bool = True,
                   horizon: int | None = None) -> Trace:
    """Run one layer and direction over ``inputs`` (B, T, I), keeping every step's state and
    cache (options as in :func:`stream_recurrence`)."""
    outputs: list[torch.Tensor] = []
    caches, states = [], []
    state = inputs.new_zeros(inputs.shape[0], rec.state_size) if initial is None else initial
    for state, cache in stream_recurrence(rec, weights, inputs, outputs, initial,
                                          check_finite=check_finite, horizon=horizon):
        caches.append(cache)
        states.append(state)
    return Trace(outputs=torch.stack(outputs, dim=1), final_state=state, caches=caches,
                 states=states)


@dataclass(frozen=True)
class Run:
    """One recurrence of a stack as it runs: the ``inputs`` it sees (B, T, I) in its own time
    order, the list its per-step ``outputs`` (B, P) are appended to (None when nobody needs
    them) and its ``steps``, the iterator of :func:`stream_recurrence`."""

    recurrence: Recurrence
    inputs: torch.Tensor
    outputs: list[torch.Tensor] | None
    steps: Iterator[tuple[torch.Tensor, Any]]

    @functools.cached_property
    def sequence(self) -> torch.Tensor:
        """The output sequence (B, T, P) in the run's own time order, once it has finished."""
        return torch.stack(self.outputs or [], dim=1)

    @property
    def in_input_order(self) -> torch.Tensor:
        """The output sequence as the layer above reads it: a reverse direction's flipped back
        to input order, unless ``reversed_output`` (Keras' ``go_backwards``) keeps it."""
        rec = self.recurrence
        flip = rec.direction == "reverse" and not rec.reversed_output
        return self.sequence.flip(1) if flip else self.sequence


def stream_stack(layers: list[list[tuple[Recurrence, CellWeights]]], inputs: torch.Tensor,
                 initial: Mapping[Recurrence, torch.Tensor] | None = None, *,
                 top_outputs: bool = True, check_finite: bool = True,
                 horizon: int | None = None) -> Iterator[Run]:
    """Run a stacked, possibly bidirectional module exactly as PyTorch does, one recurrence
    at a time, streaming its steps: no cache is kept, only the output sequences the layer
    above reads (and the top layer's when ``top_outputs``).

    ``layers[k]`` holds the directions of layer k, forward first. Layer k's input is the
    concatenation of layer k−1's outputs (forward first); a reverse direction runs over the
    time-reversed sequence, its outputs flipped back to input order (kept in the order computed
    when ``rec.reversed_output``, as Keras' ``go_backwards`` returns them). ``initial`` maps a
    recurrence to its s_0 (B, S) (absent: zero); ``check_finite`` as in
    :func:`stream_recurrence`; ``horizon`` truncates the forward directions' backpropagation
    to that many steps (the output at T of a reverse direction depends on no earlier step).
    Each :class:`Run` is finished before the next one starts (steps its consumer left are run
    then).
    """
    current = inputs
    for depth, directions in enumerate(layers):
        keep = top_outputs or depth < len(layers) - 1
        outs = []
        for rec, weights in directions:
            seen = current.flip(1) if rec.direction == "reverse" else current
            outputs: list[torch.Tensor] | None = [] if keep else None
            start = initial.get(rec) if initial is not None else None
            steps = stream_recurrence(rec, weights, seen, outputs, start,
                                      check_finite=check_finite,
                                      horizon=horizon if rec.direction == "forward" else None)
            run = Run(recurrence=rec, inputs=seen, outputs=outputs, steps=steps)
            yield run
            deque(run.steps, maxlen=0)
            if keep:
                outs.append(run.in_input_order)
        if keep:
            current = torch.cat(outs, dim=-1)


def run_stack(layers: list[list[tuple[Recurrence, CellWeights]]], inputs: torch.Tensor,
              initial: Mapping[Recurrence, torch.Tensor] | None = None, *,
              check_finite: bool = True, horizon: int | None = None,
              ) -> tuple[dict[Recurrence, tuple[Trace, torch.Tensor]], torch.Tensor]:
    """Run a stacked, possibly bidirectional module exactly as PyTorch does, keeping every
    step's state and cache (options as in :func:`stream_stack`).

    Returns each recurrence's trace with the inputs it saw (in its own time order) and the
    module's output sequence (B, T, D·P).
    """
    traces: dict[Recurrence, tuple[Trace, torch.Tensor]] = {}
    top = []
    for run in stream_stack(layers, inputs, initial, check_finite=check_finite,
                            horizon=horizon):
        rec = run.recurrence
        caches, states = [], []
        for state, cache in run.steps:
            caches.append(cache)
            states.append(state)
        traces[rec] = (Trace(outputs=run.sequence, final_state=states[-1] if states else
                             _start(run, initial), caches=caches, states=states), run.inputs)
        if any(rec is top_rec for top_rec, _ in layers[-1]):
            top.append(run.in_input_order)
    return traces, torch.cat(top, dim=-1)


def _start(run: Run, initial: Mapping[Recurrence, torch.Tensor] | None) -> torch.Tensor:
    """s_0 of a run (the final state of a zero-length sequence)."""
    rec = run.recurrence
    given = initial.get(rec) if initial is not None else None
    return given if given is not None else run.inputs.new_zeros(run.inputs.shape[0],
                                                                 rec.state_size)


@dataclass(frozen=True)
class Group:
    """Recurrences run together: a stacked module (layers of directions) or a lone cell."""

    name: str
    layers: list[list[Recurrence]]

    @property
    def first(self) -> Recurrence:
        """The bottom layer's first recurrence (its forward direction when it has one)."""
        return self.layers[0][0]

    @property
    def members(self) -> list[Recurrence]:
        """Every recurrence of the group, bottom layer first, forward before reverse."""
        return [rec for layer in self.layers for rec in layer]


def group_recurrences(recurrences: tuple[Recurrence, ...]) -> list[Group]:
    """The recurrences as they run together: a :class:`Group` per stacked module (layers in
    order, forward direction first) and one per cell module, in order of first appearance."""
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
    """The groups ``--module`` names, in ``groups``' order (all of them when ``modules`` is
    empty); a name not in the file is an OptionError."""
    if not modules:
        return groups
    chosen = [g for g in groups if g.name in modules]
    unknown = sorted(set(modules) - {g.name for g in groups})
    if unknown:
        raise OptionError(f"--module {unknown[0]!r} is not in the file",
                          f"modules: {', '.join(g.name or '(top)' for g in groups)}")
    return chosen
