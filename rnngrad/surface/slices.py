"""E along straight lines in parameter space: values, exact derivatives at a point, walls.

Along a direction d (in the full parameter vector p), f(t) = E(p + t d). Many values of f (a
slice, a ``--vary`` grid) are evaluated at once with ``torch.func.vmap``, chunk by chunk. The
slope f'(t) and curvature f''(t) = dᵀH(p + t d)d are taken where they are reported, at the
wall: a gradient and one Hessian-vector product there. (Exact derivatives at every slice point
by nested forward mode under vmap measured 18× slower than E alone at H = 256.)

A *wall* ahead on the slice (t ≥ 0, the side a descent step goes): the interval of the slice
where E changes most, when that change is at least :data:`JUMP_RATIO` times the median change
between neighbouring points of the slice ("E jumps"), or the first point ahead where E is not
finite any more. Its place is where E crosses half-way between the two sides, by bisection.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.func import vmap

from rnngrad.surface.objective import Objective

JUMP_RATIO = 10.0
BISECTIONS = 48
# Elements held at once by one vmap chunk (probes × steps × state × points); keeps a chunk
# to some tens of MiB in float64 whatever the model.
CHUNK_ELEMENTS = 4_000_000


def chunk_size(objective: Objective) -> int:
    """How many points one vmap chunk evaluates."""
    batch, length = objective.inputs.shape[:2]
    state = sum(rec.state_size for rec in objective.group.members) + 1
    return int(max(1, min(1024, CHUNK_ELEMENTS // (batch * length * state))))


def derivatives_at(objective: Objective, origin: torch.Tensor, direction: torch.Tensor,
                   step: float) -> tuple[float, float, float]:
    """f(t), f'(t) = ∇E·d and f''(t) = dᵀHd of f(t) = E(origin + t · direction) at t = ``step``
    (a gradient and one Hessian-vector product there, by double backward)."""
    from rnngrad.surface.curvature import HessianAt

    point = origin + step * direction
    hessian = HessianAt(objective.loss, point)
    slope = float(hessian.gradient @ direction)
    return hessian.loss, slope, float(direction @ hessian(direction))


def along(objective: Objective, origin: torch.Tensor, direction: torch.Tensor,
          steps: np.ndarray) -> np.ndarray:
    """E(origin + t · direction) for every t in ``steps`` (NaN where not finite)."""
    values = torch.as_tensor(np.asarray(steps), dtype=origin.dtype, device=origin.device)
    return losses(objective, origin + values[:, None] * direction)


def losses(objective: Objective, points: torch.Tensor) -> np.ndarray:
    """E at every row of ``points`` (G, n_full) as float64 (NaN where not finite)."""
    evaluate = vmap(lambda p: objective.loss(p, check_finite=False))
    size = chunk_size(objective)
    parts = []
    with torch.no_grad():
        for begin in range(0, points.shape[0], size):
            parts.append(evaluate(points[begin:begin + size]).double().cpu().numpy())
    return _finite(np.concatenate(parts)) if parts else np.zeros(0)


def _finite(values: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(values), values, np.nan)


@dataclass(frozen=True)
class FoundWall:
    """Where E jumps ahead on a line: ``distance`` t, E on either side, the jump ratio."""

    distance: float
    loss_before: float
    loss_after: float
    jump_ratio: float


def find_wall(objective: Objective, origin: torch.Tensor, direction: torch.Tensor,
              steps: np.ndarray, loss: np.ndarray) -> FoundWall | None:
    """The wall ahead (t ≥ 0) on the slice E(origin + t · direction) = ``loss`` at ``steps``,
    located by bisection; None if E does not jump."""
    ahead = steps >= 0
    broken = np.flatnonzero(ahead & ~np.isfinite(loss))
    if broken.size:
        return _overflow_wall(objective, origin, direction, steps, loss, int(broken[0]))
    changes = np.abs(np.diff(loss))
    candidates = [i for i in range(changes.size) if ahead[i] and np.isfinite(changes[i])]
    if not candidates:
        return None
    index = max(candidates, key=lambda i: changes[i])
    typical = float(np.nanmedian(changes))
    ratio = changes[index] / typical if typical > 0 else math.inf
    if changes[index] == 0 or ratio < JUMP_RATIO:
        return None
    low, high = float(steps[index]), float(steps[index + 1])
    before, after = float(loss[index]), float(loss[index + 1])
    middle = 0.5 * (before + after)
    with torch.no_grad():
        for _ in range(BISECTIONS):
            mid = 0.5 * (low + high)
            value = float(objective.loss(origin + mid * direction, check_finite=False))
            if (value - middle) * (after - before) < 0:
                low = mid
            else:
                high = mid
    return FoundWall(distance=0.5 * (low + high), loss_before=before, loss_after=after,
                     jump_ratio=float(ratio))


def _overflow_wall(objective: Objective, origin: torch.Tensor, direction: torch.Tensor,
                   steps: np.ndarray, loss: np.ndarray, first: int) -> FoundWall:
    """Ahead, E stops being finite (the forward pass overflows) between the last finite
    slice point (or t = 0) and ``steps[first]``: bisect to where."""
    low = max(float(steps[first - 1]), 0.0) if first > 0 else 0.0
    before = float(loss[first - 1]) if first > 0 else math.nan
    high = float(steps[first])
    with torch.no_grad():
        for _ in range(BISECTIONS):
            mid = 0.5 * (low + high)
            value = float(objective.loss(origin + mid * direction, check_finite=False))
            low, high = (mid, high) if math.isfinite(value) else (low, mid)
    return FoundWall(distance=low, loss_before=before, loss_after=math.inf,
                     jump_ratio=math.inf)
