"""The hot path: the per-lag BPTT Jacobian profile of one recurrence, in one backward sweep.

For a probe x_1..x_T from s_0 (zero unless ``--initial-state``), the lag-ℓ Jacobian is
(docs/theory.md "Lags"; the seed's eq. 5)

    P_ℓ = ∂s_T/∂s_(T−ℓ) = J_T J_(T−1) ··· J_(T−ℓ+1),    J_t = ∂s_t/∂s_(t−1).

One backward sweep extends the running product by one step Jacobian at a time,
P_(ℓ+1) = P_ℓ J_(T−ℓ), batched over the probe sequences: one (S × S) product per step and
probe, the bare chain's arithmetic. Whenever a product's Frobenius norm leaves [1e-100, 1e100]
it is divided by that norm and log10 of the factor is accumulated, so norms that over- or
underflow float64 stay finite as ``log10_norm``.

The same sweep carries the error signal of the probe loss E = uᵀ s_T backwards, δ_(T−ℓ) =
∂E/∂s_(T−ℓ) = δ_(T−ℓ+1) J_(T−ℓ+1) over the whole state (a unit row, rescaled each step), for
Pascanu's regulariser (Pascanu, Mikolov & Bengio 2013, Sec. 3.3, eq. 9)

    Ω = Σ_k (‖δ_(k+1) ∂s_(k+1)/∂s_k‖ / ‖δ_(k+1)‖ − 1)²,   k = T−1 down to T−L,

one term per step of the analysed window (L the largest lag): 0 when every backward step
keeps the error signal's norm. A term whose δ_(k+1) is exactly zero is not defined (NaN).

Spectral norms: for S ≤ ``EXACT_SVD_MAX`` by LAPACK (exact); above, by the block Krylov
tracker of :mod:`rnngrad.bptt.sigma_max`, which carries the top left singular vectors from lag to
lag and certifies each σ to 1e-10 relative (float64) by its residual, with an exact SVD
fallback.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from rnngrad.cells import Recurrence
from rnngrad.cells.base import CellWeights
from rnngrad.bptt.sigma_max import LeadingSingular, TopTriplet
from rnngrad.cells.stack import Trace

EXACT_SVD_MAX = 64


@dataclass(frozen=True, kw_only=True)
class Profile:
    """Per-lag numbers for one recurrence, per probe (B, L) in log10, and the directions.

    ``log10_norm``: spectral norm of the chosen block of P_ℓ; ``log10_frobenius`` its
    Frobenius norm; ``log10_grad``: ‖uᵀ P_ℓ‖ for the unit readout u of the state block.
    ``right``/``left`` (B, S_block): top right/left singular vectors of the block at the
    largest lag, with ``log10_sigma`` (B,) their singular value. ``omega`` (B,): Pascanu's Ω
    over lags 1..L (NaN where the error signal became exactly zero).
    """

    lags: tuple[int, ...]
    log10_norm: np.ndarray
    log10_frobenius: np.ndarray
    log10_grad: np.ndarray
    right: np.ndarray
    left: np.ndarray
    log10_sigma: np.ndarray
    omega: np.ndarray


def sweep(rec: Recurrence, weights: CellWeights, trace: Trace, lags: tuple[int, ...], *,
          block: slice, readout: torch.Tensor,
          on_lag: Callable[[int, int], None] | None = None) -> Profile:
    """The per-lag profile of ∂s_T/∂s_(T−ℓ) for every ℓ in ``lags`` (sorted, ≤ T).

    ``block`` picks the rows and columns of the state (all of s, or h or c of an LSTM);
    ``readout`` is the unit vector u (size of the block) of the probe loss E = uᵀ s_T.
    """
    batch = trace.outputs.shape[0]
    size = rec.state_size
    steps = len(trace.caches)
    wanted = {lag: index for index, lag in enumerate(lags)}
    product = torch.eye(size, dtype=trace.outputs.dtype, device=trace.outputs.device)
    product = product.expand(batch, size, size).clone()
    log_scale = torch.zeros(batch, dtype=torch.float64, device=product.device)
    out = {name: np.full((batch, len(lags)), -np.inf) for name in ("norm", "frob", "grad")}
    block_size = len(range(size)[block])
    tracker = None if block_size <= EXACT_SVD_MAX else LeadingSingular(
        batch, block_size, block, dtype=product.dtype, device=product.device)
    # Reused buffers: a fresh (B, S, S) tensor per step is an mmap and thousands of page faults
    # once it passes glibc's 32 MiB limit (measured: +15 % of the sweep at S = 1024).
    jac, spare = torch.empty_like(product), torch.empty_like(product)
    signal = product.new_zeros(batch, size)
    signal[:, block] = readout
    omega = torch.zeros(batch, dtype=torch.float64, device=product.device)
    equations = rec.equations
    for lag in range(1, lags[-1] + 1):
        equations.jacobian(weights, trace.caches[steps - lag], rec.nonlinearity, out=jac)
        signal, ratio = _backward_step(signal, jac)
        omega += (ratio.to(torch.float64) - 1) ** 2
        if tracker is not None:
            tracker.advance(jac)
        product, spare = torch.bmm(product, jac, out=spare), product
        product, log_scale, frobenius = _rescaled(product, log_scale)
        if lag in wanted:
            rows = product[:, block, :]
            sigma = _top_sigma(rows[:, :, block], rows, tracker)
            if block_size < size:
                frobenius = _frobenius(rows[:, :, block])
            logs = log_scale.cpu().numpy()
            column = wanted[lag]
            out["norm"][:, column] = _log10(sigma) + logs
            out["frob"][:, column] = _log10(frobenius) + logs
            grad = torch.linalg.vector_norm(readout @ rows[:, :, block], dim=-1)
            out["grad"][:, column] = _log10(grad) + logs
        if on_lag:
            on_lag(lag, lags[-1])
    top = _top_triplet(product[:, block, block], tracker)
    logs = log_scale.cpu().numpy()
    return Profile(lags=lags, log10_norm=out["norm"], log10_frobenius=out["frob"],
                   log10_grad=out["grad"], right=top.right.cpu().numpy(),
                   left=top.left.cpu().numpy(), log10_sigma=_log10(top.sigma) + logs,
                   omega=omega.cpu().numpy())


def _backward_step(signal: torch.Tensor, jac: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """δ J for the error signals δ (B, S) and step Jacobians J (B, S, S): the new signals
    made unit (zero stays zero), and the ratios ‖δ J‖/‖δ‖ (NaN where δ is zero)."""
    new = torch.bmm(signal.unsqueeze(1), jac).squeeze(1)
    size = torch.linalg.vector_norm(new, dim=-1)
    ratio = size / torch.linalg.vector_norm(signal, dim=-1)
    return new / torch.where(size > 0, size, torch.ones_like(size)).unsqueeze(-1), ratio


RESCALE_ABOVE = 1e100


def _rescaled(product: torch.Tensor, log_scale: torch.Tensor):
    """Divide each product by its Frobenius norm when that leaves [1e-100, 1e100] (or is 0).

    Rescaling only then saves two passes over P per lag; log10 of the factor is accumulated.
    An exactly zero product stays zero with log scale −∞. Also returns the Frobenius norms of
    the (rescaled) products.
    """
    scale = _frobenius(product)
    outside = (scale > RESCALE_ABOVE) | (scale < 1.0 / RESCALE_ABOVE)
    if not bool(outside.any()):
        return product, log_scale, scale
    factor = torch.where(outside & (scale > 0), scale, torch.ones_like(scale))
    product /= factor[:, None, None]
    log_scale = log_scale + torch.log10(factor).to(torch.float64)
    log_scale = torch.where(scale > 0, log_scale, torch.full_like(log_scale, -math.inf))
    return product, log_scale, scale / factor


def _frobenius(matrices: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(matrices, dim=(-2, -1))


def _top_sigma(matrix: torch.Tensor, rows: torch.Tensor,
               tracker: LeadingSingular | None) -> torch.Tensor:
    if tracker is None:
        return torch.linalg.matrix_norm(matrix, ord=2)
    return tracker.solve(rows).sigma


def _top_triplet(matrix: torch.Tensor, tracker: LeadingSingular | None) -> TopTriplet:
    """The top singular triplet at the largest lag: the tracker's, or LAPACK's when small."""
    if tracker is not None and tracker.last is not None:
        return tracker.last
    left, sigma, right_h = torch.linalg.svd(matrix)
    return TopTriplet(sigma=sigma[:, 0], left=left[:, :, 0], right=right_h[:, 0, :])


def _log10(values: torch.Tensor) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log10(values.detach().to(torch.float64).cpu().numpy())
