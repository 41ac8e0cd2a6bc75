"""The hot path: the QR algorithm along a probe trajectory, batched over the probes.

Benettin, Galgani, Giorgilli & Strelcyn (1980); for RNNs Engelken, Wolf & Abbott (2023).
With Q_0 a random orthonormal S × K frame (the same for every probe), at each step
t = 1 .. burn_in + T of the trajectory:

    Z_t = J_t Q_(t−1)          (B, S, K), by the cell's ``jacobian_product``: no S × S matrix
                               is formed, so a step costs O(S²K + SK²) per probe
    Q_t, R_t = qr(Z_t)         Householder (LAPACK), reduced: Q_t (B, S, K), R_t (B, K, K)

and the i-th exponent of a probe is the time average of ln |(R_t)_ii| over the T steps after
the burn-in (during which the frame turns into the leading directions). Columns come out in
descending order of growth; Σ_(i≤k) λ_i is the growth rate of k-dimensional volumes.

Exponents are natural logarithms per step. An exactly zero (R_t)_ii (a direction annihilated,
e.g. by dead ReLUs) makes that exponent −∞.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np
import torch

from rnngrad.cells import Recurrence
from rnngrad.cells.base import CellWeights

RUNNING_POINTS = 80


@dataclass(frozen=True)
class RawSpectrum:
    """Per-probe numbers of one recurrence, in the QR's column order (not yet sorted).

    ``totals`` (B, K): Σ ln|R_ii| over the window of ``steps`` steps (−∞ where a step
    annihilated the direction); ``block_means`` (B, N, K): the mean of ln|R_ii| in each of
    N consecutive blocks of the window (NaN after −∞); ``running`` (C, K): the running
    estimate (1/n) Σ_(t ≤ n) ln|R_ii|, averaged over the probes, at the window steps
    ``running_steps`` (C,).
    """

    totals: np.ndarray
    block_means: np.ndarray
    running_steps: np.ndarray
    running: np.ndarray
    steps: int


def initial_basis(size: int, k: int, seed: int, dtype: torch.dtype = torch.float64,
                  device: str | torch.device = "cpu") -> torch.Tensor:
    """Q_0: a seeded random orthonormal frame (S, K), S ≥ K, the same on every machine."""
    gaussian = np.random.default_rng([seed, 17, size, k]).standard_normal((size, k))
    frame, _ = np.linalg.qr(gaussian)
    return torch.as_tensor(frame, dtype=dtype, device=device)


def block_edges(steps: int, blocks: int) -> list[int]:
    """Where the N = min(blocks, steps) blocks of a window of ``steps`` steps end (1-based)."""
    count = min(blocks, steps)
    return [round(j * steps / count) for j in range(1, count + 1)]


def running_steps(steps: int, points: int = RUNNING_POINTS) -> list[int]:
    """About ``points`` window steps, log-spaced from 1 to ``steps``, where the running
    estimates are kept."""
    spaced = np.unique(np.rint(np.geomspace(1, steps, points)).astype(np.int64))
    return [int(n) for n in spaced]


def _orthonormalised(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Z = QR: the orthonormal Q (B, S, K) and |diag R| (B, K). For K = 1 that is Z over its
    norm (no LAPACK call: λ_1 alone, as ``check`` and the training monitor ask, costs about
    10 % less per step); a zero column gives, as LAPACK's QR does, growth 0 (λ_1 = −∞) and
    Q = e_1, so the iteration goes on from a unit vector."""
    if z.shape[-1] == 1:
        norm = torch.linalg.vector_norm(z, dim=-2)
        q = z / norm.clamp_min(torch.finfo(z.dtype).tiny).unsqueeze(-1)
        dead = norm[:, 0] == 0
        if bool(dead.any()):
            q[dead] = 0
            q[dead, 0] = 1
        return q, norm
    q, r = torch.linalg.qr(z)
    return q, r.diagonal(dim1=-2, dim2=-1).abs()


def qr_exponents(rec: Recurrence, weights: CellWeights,
                 steps: Iterator[tuple[torch.Tensor, Any]], *, batch: int, burn_in: int,
                 window: int, frame: torch.Tensor, blocks: int,
                 on_step: Callable[[int], None] | None = None) -> RawSpectrum:
    """Run the QR algorithm over ``steps`` (the (state, cache) pairs of
    :func:`rnngrad.cells.stack.stream_recurrence`, burn_in + window of them) from the frame
    Q_0 ``frame`` (S, K), for ``batch`` probes at once."""
    equations = rec.equations
    q = frame.expand(batch, *frame.shape).clone()
    total = torch.zeros(batch, frame.shape[1], dtype=torch.float64, device=frame.device)
    block_start = total.clone()
    edges, marks = block_edges(window, blocks), running_steps(window)
    means, running = [], []
    done = 0
    for t, (_, cache) in enumerate(steps, start=1):
        q, growth = _orthonormalised(equations.jacobian_product(weights, cache,
                                                                rec.nonlinearity, q))
        if on_step is not None and t % 100 == 0:
            on_step(t)
        if t <= burn_in:
            continue
        total += growth.log().to(torch.float64)
        n = t - burn_in
        if n == edges[len(means)]:
            length = n - (edges[len(means) - 1] if means else 0)
            means.append(((total - block_start) / length).cpu().numpy())
            block_start = total.clone()
        if n == marks[len(running)]:
            running.append((total / n).mean(dim=0).cpu().numpy())
        done = n
        if n == window:
            break
    if done != window:
        raise ValueError(f"the trajectory ended after {burn_in + done} steps, not "
                         f"{burn_in + window}")
    return RawSpectrum(totals=total.cpu().numpy(), block_means=np.stack(means, axis=1),
                       running_steps=np.array(marks), running=np.stack(running), steps=window)
