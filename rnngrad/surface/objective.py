"""E(θ): the probe loss of one module as a pure function of a flat parameter vector.

E = (1/B) Σ_b E_b, the mean over the B probe sequences of each one's loss at its last step
(:func:`rnngrad.probes.heads.per_probe_loss`), computed with the cells' own ``step``
equations through :func:`rnngrad.cells.stack.run_stack`, so that autograd and ``torch.func``
(grad, jvp, vmap) differentiate exactly what ``bptt`` runs.

The flat vector p holds every tensor of the module's recurrences (in the group's order:
layer by layer, forward first; within one, ``weight_ih``, ``weight_hh``, ``bias_ih``,
``bias_hh``, ``weight_hr``) and of the head the loss goes through (``weight``, ``bias``),
each flattened row-major. The tensors in θ (``--params``) come first, so θ = p[:n] and the
others are held fixed at their values in the file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from rnngrad.cells import Recurrence
from rnngrad.cells.base import CellWeights
from rnngrad.cells.stack import Group, run_recurrence, run_stack
from rnngrad.probes.heads import Head, per_probe_loss

FIELDS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")


@dataclass(frozen=True)
class Parameter:
    """One tensor of p: its ``name`` in the (understood) file, ``shape``, where it sits in p
    (``offset``), whose it is (``owner``: the index of its recurrence in the group, None for
    the head) and which field (a :class:`~rnngrad.cells.base.CellWeights` field, or the head's
    ``weight``/``bias``); ``in_theta``: part of θ."""

    name: str
    shape: tuple[int, ...]
    offset: int
    owner: int | None
    field: str
    in_theta: bool

    @property
    def size(self) -> int:
        """The tensor's number of elements (1 for a scalar)."""
        return math.prod(self.shape)

    @property
    def span(self) -> slice:
        """Where the tensor sits in p: ``offset`` to ``offset + size``."""
        return slice(self.offset, self.offset + self.size)


@dataclass(frozen=True)
class Objective:
    """E as a function of p (or of θ = p[:theta_size]) for one module on fixed probes.

    ``inputs`` (B, T, I) and ``initial`` (s_0 per recurrence, (B, S); None: zero) are the
    probe; ``targets`` stacks each probe's readout, target or class id
    (:func:`rnngrad.probes.heads.probe_target`); ``vector`` is p at the file's values.
    """

    group: Group
    parameters: tuple[Parameter, ...]
    vector: torch.Tensor
    theta_size: int
    loss_kind: str
    targets: torch.Tensor
    inputs: torch.Tensor
    initial: dict[Recurrence, torch.Tensor] | None

    @property
    def theta(self) -> torch.Tensor:
        """θ at the file's values, (n,)."""
        return self.vector[:self.theta_size]

    def embed(self, theta: torch.Tensor) -> torch.Tensor:
        """The full p with θ replaced (θ first, the fixed tensors after)."""
        return torch.cat([theta, self.vector[self.theta_size:]])

    def lift(self, direction: torch.Tensor) -> torch.Tensor:
        """A direction in θ as a direction in p (zero on the fixed tensors)."""
        return torch.cat([direction, torch.zeros_like(self.vector[self.theta_size:])])

    def __call__(self, theta: torch.Tensor) -> torch.Tensor:
        """E(θ), a 0-d tensor."""
        return self.loss(self.embed(theta))

    def loss(self, p: torch.Tensor, *, check_finite: bool = True) -> torch.Tensor:
        """E(p), the mean over the probes; ``check_finite`` False for ``torch.func.vmap``
        (an overflow then gives a non-finite E instead of :class:`ForwardOverflow`)."""
        return self.per_probe(p, check_finite=check_finite).mean()

    def per_probe(self, p: torch.Tensor, *, check_finite: bool = True) -> torch.Tensor:
        """E_b(p) for every probe b, (B,)."""
        layers, weight, bias = self.unflatten(p)
        _, outputs = run_stack(layers, self.inputs, self.initial, check_finite=check_finite)
        return per_probe_loss(outputs[:, -1], self.loss_kind, self.targets, weight, bias)

    def unflatten(self, p: torch.Tensor):
        """The layers of (recurrence, weights) for :func:`run_stack`, and the head's weight and
        bias (None without a head), as views of p."""
        members = self.group.members
        fields: list[dict[str, torch.Tensor]] = [{} for _ in members]
        head: dict[str, torch.Tensor] = {}
        for parameter in self.parameters:
            value = p[parameter.span].reshape(parameter.shape)
            (head if parameter.owner is None else fields[parameter.owner])[parameter.field] = value
        weights = {rec: CellWeights(**fields[index]) for index, rec in enumerate(members)}
        layers = [[(rec, weights[rec]) for rec in layer] for layer in self.group.layers]
        return layers, head.get("weight"), head.get("bias")

    def truncated(self, horizon: int) -> Objective:
        """E through the last ``horizon`` steps only (truncated BPTT, at the file's values).

        The same forward values: forward directions start the last ``horizon`` steps from
        their state at T − horizon (computed at p, held fixed: no gradient flows into it);
        reverse directions start from their own s_0 at T as always. E is unchanged; its
        derivatives count only the terms of the last ``horizon`` steps (seed eq. 4 with
        k > T − horizon).
        """
        length = self.inputs.shape[1]
        if horizon >= length:
            return self
        cut = length - horizon
        layers, _, _ = self.unflatten(self.vector)
        starts = dict(self.initial) if self.initial is not None else {}
        with torch.no_grad():
            traces, _ = run_stack(layers, self.inputs, self.initial)
            for rec, weights in (pair for layer in layers for pair in layer):
                if rec.direction != "reverse":
                    seen = traces[rec][1]
                    starts[rec] = run_recurrence(rec, weights, seen[:, :cut],
                                                 starts.get(rec)).final_state
        return replace(self, inputs=self.inputs[:, cut:], initial=starts)


def build_objective(group: Group, weights: dict[Recurrence, CellWeights], head: Head | None,
                    loss_kind: str, targets: torch.Tensor, inputs: torch.Tensor,
                    initial: dict[Recurrence, torch.Tensor] | None,
                    params: str) -> Objective:
    """The objective of ``group`` with θ chosen by ``params`` (``all``, ``recurrent``,
    ``hh``; see :class:`~rnngrad.surface.options.SurfaceOptions`)."""
    found = []
    for index, rec in enumerate(group.members):
        for name in FIELDS:
            value = getattr(weights[rec], name)
            if value is not None:
                found.append((getattr(rec, name), index, name, value,
                              params != "hh" or name == "weight_hh"))
    if head is not None:
        bias_name = head.name.removesuffix("weight") + "bias"
        for name, field_name, value in ((head.name, "weight", head.weight),
                                        (bias_name, "bias", head.bias)):
            if value is not None:
                found.append((name, None, field_name, value, params == "all"))
    found.sort(key=lambda item: not item[4])  # θ first, stable otherwise
    parameters, pieces, offset = [], [], 0
    for name, owner, field_name, value, in_theta in found:
        parameters.append(Parameter(name=name, shape=tuple(value.shape), offset=offset,
                                    owner=owner, field=field_name, in_theta=in_theta))
        pieces.append(value.reshape(-1))
        offset += value.numel()
    theta_size = sum(parameter.size for parameter in parameters if parameter.in_theta)
    return Objective(group=group, parameters=tuple(parameters), vector=torch.cat(pieces),
                     theta_size=theta_size, loss_kind=loss_kind, targets=targets,
                     inputs=inputs, initial=initial)
