"""Running recurrences over sequences exactly as PyTorch runs them: stacks and directions.

A *group* is what runs together: a stacked module (its layers, each with its directions,
forward first) or a lone cell module. Layer k's input is the concatenation of layer k−1's
outputs (forward first); a reverse direction runs over the time-reversed sequence, so its
steps (and lags) count in its own direction. States start at zero.

:func:`run_stack` keeps every step's cache (``bptt`` sweeps them backwards);
:func:`stream_stack` hands them out one step at a time and keeps none (``lyapunov`` runs
thousands of steps forwards).
"""

from __future__ import annotations

import functools
from collections import defaultdict, deque
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
    """A recurrence's forward pass: ``outputs`` (B, T, P) and one cache per step (t = 1..T)."""

    outputs: torch.Tensor
    final_state: torch.Tensor
    caches: list


# Input drives W_ih x_t + b_ih are computed this many steps at a time: a whole long probe's
# drive (B, T, G·H) would cost more memory than the analysis itself.
DRIVE_CHUNK = 256


def stream_recurrence(rec: Recurrence, weights: CellWeights, inputs: torch.Tensor,
                      outputs: list[torch.Tensor] | None = None
                      ) -> Iterator[tuple[torch.Tensor, Any]]:
    """Run one layer and direction over ``inputs`` (B, T, I), already in its own time order,
    yielding (s_t, cache_t) for t = 1..T without keeping them.

    Each step's output (B, P), what the next layer sees, is appended to ``outputs`` when
    given (a list, stacked by the caller: slice writes into one buffer would chain T in-place
    copies in autograd's graph). Raises :class:`ForwardOverflow` at the first step whose state
    is not finite.
    """
    state = inputs.new_zeros(inputs.shape[0], rec.state_size)
    equations = rec.equations
    for start in range(0, inputs.shape[1], DRIVE_CHUNK):
        drive = weights.input_drive(inputs[:, start:start + DRIVE_CHUNK])
        for offset in range(drive.shape[1]):
            state, cache = equations.step(weights, drive[:, offset], state, rec.nonlinearity)
            if not torch.isfinite(state).all():
                raise ForwardOverflow(start + offset + 1)
            if outputs is not None:
                outputs.append(equations.output(state, rec.hidden_size))
            yield state, cache


def run_recurrence(rec: Recurrence, weights: CellWeights, inputs: torch.Tensor) -> Trace:
    """Run one layer and direction over ``inputs`` (B, T, I), keeping every step's cache."""
    outputs: list[torch.Tensor] = []
    caches, state = [], inputs.new_zeros(inputs.shape[0], rec.state_size)
    for state, cache in stream_recurrence(rec, weights, inputs, outputs):
        caches.append(cache)
    return Trace(outputs=torch.stack(outputs, dim=1), final_state=state, caches=caches)


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


def stream_stack(layers: list[list[tuple[Recurrence, CellWeights]]], inputs: torch.Tensor, *,
                 top_outputs: bool = True) -> Iterator[Run]:
    """Run a stacked, possibly bidirectional module exactly as PyTorch does, one recurrence
    at a time, streaming its steps: no cache is kept, only the output sequences the layer
    above reads (and the top layer's when ``top_outputs``).

    ``layers[k]`` holds the directions of layer k, forward first. Layer k's input is the
    concatenation of layer k−1's outputs (forward first); a reverse direction runs over the
    time-reversed sequence. Each :class:`Run` is finished before the next one starts (steps
    its consumer left are run then).
    """
    current = inputs
    for depth, directions in enumerate(layers):
        keep = top_outputs or depth < len(layers) - 1
        outs = []
        for rec, weights in directions:
            seen = current.flip(1) if rec.direction == "reverse" else current
            outputs: list[torch.Tensor] | None = [] if keep else None
            run = Run(recurrence=rec, inputs=seen, outputs=outputs,
                      steps=stream_recurrence(rec, weights, seen, outputs))
            yield run
            deque(run.steps, maxlen=0)
            if keep:
                outs.append(run.sequence.flip(1) if rec.direction == "reverse"
                            else run.sequence)
        if keep:
            current = torch.cat(outs, dim=-1)


def run_stack(layers: list[list[tuple[Recurrence, CellWeights]]], inputs: torch.Tensor
              ) -> tuple[dict[Recurrence, tuple[Trace, torch.Tensor]], torch.Tensor]:
    """Run a stacked, possibly bidirectional module exactly as PyTorch does, keeping caches.

    ``layers[k]`` holds the directions of layer k, forward first (see :func:`stream_stack`).
    Returns each recurrence's trace with the inputs it saw (in its own time order) and the
    module's output sequence (B, T, D·P).
    """
    traces: dict[Recurrence, tuple[Trace, torch.Tensor]] = {}
    for run in stream_stack(layers, inputs):
        rec = run.recurrence
        caches, state = [], run.inputs.new_zeros(run.inputs.shape[0], rec.state_size)
        for state, cache in run.steps:
            caches.append(cache)
        traces[rec] = (Trace(outputs=run.sequence, final_state=state, caches=caches), run.inputs)
    top = [(traces[rec][0].outputs, rec.direction) for rec, _ in layers[-1]]
    return traces, torch.cat([out.flip(1) if direction == "reverse" else out
                              for out, direction in top], dim=-1)


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
