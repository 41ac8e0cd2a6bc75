"""The hot path: the per-lag BPTT Jacobian profile of one recurrence, in one backward sweep.

For a probe x_1..x_T from s_0 (zero unless ``--initial-state``), the lag-ℓ Jacobian is
(docs/theory.md "Lags"; the seed's eq. 5)

    P_ℓ = ∂s_T/∂s_(T−ℓ) = J_T J_(T−1) ··· J_(T−ℓ+1),    J_t = ∂s_t/∂s_(t−1).

One backward sweep extends the running product by one step Jacobian at a time,
P_(ℓ+1) = P_ℓ J_(T−ℓ), batched over the probe sequences: one (S × S) product per step and
probe, the bare chain's arithmetic (:class:`~rnngrad.bptt.chain.ProductChain`, which also
carries the readout row uᵀP_ℓ and the σ_max tracker's left vectors along in the same product,
and keeps norms that over- or underflow float64 finite as ``log10_norm``).

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

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from rnngrad.bptt.chain import ProductChain, frobenius
from rnngrad.bptt.sigma_max import LeadingSingular, TopTriplet
from rnngrad.cells import Recurrence
from rnngrad.cells.base import CellWeights
from rnngrad.cells.stack import Trace

EXACT_SVD_MAX = 64
TRACKER, READOUT, SIGNAL = "tracker", "readout", "signal"


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
    batch, size, steps = trace.outputs.shape[0], rec.state_size, len(trace.caches)
    dtype, device = trace.outputs.dtype, trace.outputs.device
    wanted = {lag: index for index, lag in enumerate(lags)}
    out = {name: np.full((batch, len(lags)), -np.inf) for name in ("norm", "frob", "grad")}
    block_size = len(range(size)[block])
    tracker = None if block_size <= EXACT_SVD_MAX else LeadingSingular(
        batch, block_size, block, dtype=dtype, device=device)
    riders = _riders(tracker, readout, batch, size, block)
    chain = ProductChain(batch, size, riders, free={SIGNAL: riders[READOUT].clone()},
                         dtype=dtype, device=device)
    signal_norms = torch.empty(lags[-1], batch, dtype=dtype, device=device)
    equations = rec.equations
    for lag in range(1, lags[-1] + 1):
        chain.multiply(equations, weights, trace.caches[steps - lag], rec.nonlinearity)
        _renormalise_signal(chain, signal_norms[lag - 1])
        frobenius_norm = chain.rescale()
        if lag in wanted:
            _record(chain, tracker, block, block_size < size, frobenius_norm, out, wanted[lag])
        if on_lag:
            on_lag(lag, lags[-1])
    top = _top_triplet(chain.product[:, block, block], tracker)
    logs = chain.log_scale.cpu().numpy()
    return Profile(lags=lags, log10_norm=out["norm"], log10_frobenius=out["frob"],
                   log10_grad=out["grad"], right=top.right.cpu().numpy(),
                   left=top.left.cpu().numpy(), log10_sigma=_log10(top.sigma) + logs,
                   omega=_omega(signal_norms))


def _renormalise_signal(chain: ProductChain, norm: torch.Tensor) -> None:
    """After a step δ ← δ J of a unit δ: ‖δ J‖ into ``norm`` (B,) and δ J made unit in place
    (zero stays zero), so the signal neither over- nor underflows over long sweeps."""
    signal = chain.rider(SIGNAL)
    torch.linalg.vector_norm(signal[:, 0], dim=-1, out=norm)
    signal /= norm.clamp_min(torch.finfo(norm.dtype).tiny)[:, None, None]


def _omega(norms: torch.Tensor) -> np.ndarray:
    """Ω (B,) from the per-step ‖δ_(k+1) J‖ of unit δ's (L, B): Σ (ratio − 1)², where a step
    from an exactly zero δ (the step before gave 0) has no ratio and makes Ω NaN."""
    values = norms.to(torch.float64)
    before = torch.ones_like(values)
    before[1:] = (values[:-1] > 0).to(values.dtype)
    return ((values / before - 1) ** 2).sum(dim=0).cpu().numpy()


def _riders(tracker: LeadingSingular | None, readout: torch.Tensor, batch: int, size: int,
            block: slice) -> dict[str, torch.Tensor]:
    """The rows multiplied along with P from P_0 = I: the readout uᵀ (placed in the block's
    columns; also the start of the error signal δ, a free rider made unit each step for Ω)
    and the tracker's left vectors U (U·P_0[block, :])."""
    start = readout.new_zeros(batch, 1, size)
    start[:, 0, block] = readout
    riders = {READOUT: start}
    if tracker is not None:
        riders[TRACKER] = tracker.image_at_identity(size)
    return riders


def _record(chain: ProductChain, tracker: LeadingSingular | None, block: slice, partial: bool,
            frobenius_norm: torch.Tensor, out: dict[str, np.ndarray], column: int) -> None:
    """σ_max, Frobenius and readout-gradient norms of the block of P_ℓ, in log10, at a lag."""
    rows = chain.product[:, block, :]
    if tracker is None:
        sigma = torch.linalg.matrix_norm(rows[:, :, block], ord=2)
    else:
        tracker.image = chain.rider(TRACKER)
        sigma = tracker.solve(rows).sigma
        chain.rider(TRACKER).copy_(tracker.image)  # the refreshed block rides on from here
    if partial:
        frobenius_norm = frobenius(rows[:, :, block])
    grad = torch.linalg.vector_norm(chain.rider(READOUT)[:, 0, block], dim=-1)
    logs = chain.log_scale.cpu().numpy()
    out["norm"][:, column] = _log10(sigma) + logs
    out["frob"][:, column] = _log10(frobenius_norm) + logs
    out["grad"][:, column] = _log10(grad) + logs


def _top_triplet(matrix: torch.Tensor, tracker: LeadingSingular | None) -> TopTriplet:
    """The top singular triplet at the largest lag: the tracker's, or LAPACK's when small."""
    if tracker is not None and tracker.last is not None:
        return tracker.last
    left, sigma, right_h = torch.linalg.svd(matrix)
    return TopTriplet(sigma=sigma[:, 0], left=left[:, :, 0], right=right_h[:, 0, :])


def _log10(values: torch.Tensor) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log10(values.detach().to(torch.float64).cpu().numpy())
