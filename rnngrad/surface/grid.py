"""``--vary``: E over one or two axes through θ, each a parameter element or a direction.

- A parameter: a tensor of the module with one element (``w``), or one element of any
  tensor (``rnn.weight_hh_l0[3,4]``). Names are the file's; a tensor that a map copies
  unchanged into the recurrence (``w`` → ``unit.weight_hh``) is found by its file name too.
  The axis values are the parameter's values; everything else stays at the file's values.
- ``gradient``: the unit vector −ĝ (positive steps go downhill, as in the slice).
- ``curvature``: u_1, the unit eigenvector of the dominant curvature λ_1, signed so that it
  points downhill (u_1ᵀg ≤ 0).
- ``random``: a seeded Gaussian direction over θ, filter-normalised as Li, Xu, Taylor, Studer
  & Goldstein (2018), "Visualizing the loss landscape of neural nets": each row of a matrix
  (the weights into one unit, an RNN's "filter") rescaled to the norm of that row of θ; a
  vector (a bias) set equal to θ's own, as their code does by default. Steps along it are in
  units of θ's own scale.

Paths are drawn on the grid by their coordinates: a parameter axis reads the parameter, the
others are least-squares coordinates of θ_k − θ in the span of the axes' vectors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch

from rnngrad.errors import OptionError
from rnngrad.io import WeightBundle
from rnngrad.surface.objective import Objective
from rnngrad.surface.options import VARY_HINT, VaryAxis
from rnngrad.surface.report import Axis, Grid
from rnngrad.surface.slices import losses

_ELEMENT = re.compile(r"^(?P<name>.+?)\[(?P<index>[0-9]+(?:,[0-9]+)*)\]$")


@dataclass(frozen=True)
class ResolvedAxis:
    """An axis as a line p(v) = p + (v − origin) · vector in the full parameter space."""

    axis: Axis
    vector: torch.Tensor


Directions = dict[str, tuple[torch.Tensor | None, str]]


def resolve_axes(axes: tuple[VaryAxis, ...], objective: Objective, bundle: WeightBundle,
                 directions: Directions) -> tuple[ResolvedAxis, ...]:
    """Each ``--vary`` axis as a line; ``directions`` maps gradient/curvature/random to a
    full-space vector (None when it does not exist, e.g. a zero gradient) and its words."""
    resolved = []
    for axis in axes:
        values = tuple(float(v) for v in np.linspace(axis.start, axis.stop, axis.count))
        if axis.is_direction:
            vector, words = directions[axis.name]
            if vector is None:
                raise OptionError(f"--vary {axis.name}: {words}", VARY_HINT)
            resolved.append(ResolvedAxis(Axis(name=axis.name, kind="direction", values=values,
                                              origin=0.0, description=words), vector))
            continue
        index, words = parameter_index(axis.name, objective, bundle)
        vector = torch.zeros_like(objective.vector)
        vector[index] = 1.0
        origin = float(objective.vector[index])
        resolved.append(ResolvedAxis(Axis(name=axis.name, kind="parameter", values=values,
                                          origin=origin, description=words), vector))
    return tuple(resolved)


def parameter_index(name: str, objective: Objective, bundle: WeightBundle) -> tuple[int, str]:
    """Where the scalar parameter ``name`` (or ``name[i,j]``) sits in p, and its description."""
    match = _ELEMENT.match(name)
    base, index = (match["name"], tuple(int(i) for i in match["index"].split(","))) \
        if match else (name, None)
    by_name = {parameter.name: parameter for parameter in objective.parameters}
    aliases = {origin: derived for derived, origin in bundle.derived.items()
               if origin in bundle.tensors and derived in by_name}
    parameter = by_name.get(base) or by_name.get(aliases.get(base, ""))
    if parameter is None:
        known = ", ".join(sorted(set(by_name) | set(aliases)))
        raise OptionError(f"--vary {name!r}: no tensor {base!r} in the analysed module",
                          f"tensors: {known}; or a direction: gradient, curvature, random")
    if index is None:
        if parameter.size != 1:
            zeros = ",".join("0" for _ in parameter.shape)
            raise OptionError(f"--vary {name!r}: {base} has shape {list(parameter.shape)}, not "
                              "one value", f"name one element, e.g. {base}[{zeros}]")
        index = (0,) * len(parameter.shape)
    if len(index) != len(parameter.shape) or any(i >= d for i, d in zip(index, parameter.shape)):
        raise OptionError(f"--vary {name!r}: index {list(index)} is outside {base}'s shape "
                          f"{list(parameter.shape)}", "indices count from 0")
    flat = int(np.ravel_multi_index(index, parameter.shape)) if parameter.shape else 0
    element = f"{parameter.name}[{','.join(map(str, index))}]" if parameter.size > 1 \
        else parameter.name
    words = f"parameter {element}" + ("" if parameter.in_theta else " (held fixed outside θ)")
    return parameter.offset + flat, words


def random_direction(objective: Objective, seed: int) -> torch.Tensor:
    """A filter-normalised random direction over θ (zero on the tensors outside θ)."""
    rng = np.random.default_rng([seed, 17])
    direction = torch.zeros_like(objective.vector)
    for parameter in objective.parameters:
        if not parameter.in_theta:
            continue
        weights = objective.vector[parameter.span].reshape(parameter.shape)
        if weights.dim() <= 1:
            direction[parameter.span] = weights.reshape(-1)
            continue
        rows = torch.as_tensor(rng.standard_normal(tuple(parameter.shape)), dtype=weights.dtype,
                               device=weights.device).reshape(weights.shape[0], -1)
        target = torch.linalg.vector_norm(weights.reshape(weights.shape[0], -1), dim=1,
                                          keepdim=True)
        rows = rows / torch.linalg.vector_norm(rows, dim=1, keepdim=True) * target
        direction[parameter.span] = rows.reshape(-1)
    return direction


def evaluate_grid(objective: Objective, axes: tuple[ResolvedAxis, ...]) -> Grid:
    """E at every point of the axes' grid (rows along the first axis)."""
    p = objective.vector
    offsets = [torch.as_tensor(np.asarray(a.axis.values) - a.axis.origin, dtype=p.dtype,
                               device=p.device) for a in axes]
    if len(axes) == 1:
        points = p + offsets[0][:, None] * axes[0].vector
        shape = (1, len(offsets[0]))
    else:
        first, second = torch.meshgrid(offsets[0], offsets[1], indexing="ij")
        points = (p + first.reshape(-1, 1) * axes[0].vector
                  + second.reshape(-1, 1) * axes[1].vector)
        shape = (len(offsets[0]), len(offsets[1]))
    values = losses(objective, points).reshape(shape)
    grid = tuple(tuple(None if np.isnan(v) else float(v) for v in row) for row in values)
    return Grid(axes=tuple(a.axis for a in axes), loss=grid)


def coordinates_on(axes: tuple[ResolvedAxis, ...], objective: Objective):
    """θ (the analysed part of p) -> its coordinates on the axes (empty without axes)."""
    if not axes:
        return lambda theta: ()
    matrix = torch.stack([a.vector for a in axes], dim=1)  # (n_full, K)
    origins = torch.tensor([a.axis.origin for a in axes], dtype=matrix.dtype)

    def coordinates(theta: torch.Tensor) -> tuple[float, ...]:
        moved = objective.embed(theta.detach()) - objective.vector
        solution = torch.linalg.lstsq(matrix, moved[:, None]).solution[:, 0]
        return tuple(float(v) for v in origins + solution.cpu())

    return coordinates
