"""The hot path: forward passes and the per-lag BPTT Jacobian profile of one recurrence.

For a probe x_1..x_T and s_0 = 0, the lag-ℓ Jacobian is (THEORY.md "Lags", seed eq. 5)

    P_ℓ = ∂s_T/∂s_(T−ℓ) = J_T J_(T−1) ··· J_(T−ℓ+1),    J_t = ∂s_t/∂s_(t−1).

One backward sweep extends the running product by one step Jacobian at a time,
P_(ℓ+1) = P_ℓ J_(T−ℓ), batched over the probe sequences: one (S × S) product per step and
probe, the bare chain's arithmetic. Whenever a product's Frobenius norm leaves [1e-100, 1e100]
it is divided by that norm and log10 of the factor is accumulated, so norms that over- or
underflow float64 stay finite as ``log10_norm``.

Spectral norms: for S ≤ ``EXACT_SVD_MAX`` by LAPACK (exact); above, by the block Krylov
tracker of :mod:`rnngrad.sigma_max`, which carries the top left singular vectors from lag to
lag and certifies each σ to 1e-10 relative (float64) by its residual, with an exact SVD
fallback.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
import torch

from .cells import CellWeights, Recurrence
from .sigma_max import LeadingSingular, TopTriplet

EXACT_SVD_MAX = 64


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


def run_recurrence(rec: Recurrence, weights: CellWeights, inputs: torch.Tensor) -> Trace:
    """Run one layer and direction over ``inputs`` (B, T, I), already in its own time order."""
    drive = weights.input_drive(inputs)
    state = inputs.new_zeros(inputs.shape[0], rec.state_size)
    outputs, caches = [], []
    for t in range(inputs.shape[1]):
        state, cache = rec.kind.step(weights, drive[:, t], state, rec.nonlinearity)
        if not torch.isfinite(state).all():
            raise ForwardOverflow(t + 1)
        outputs.append(rec.kind.output(state, rec.hidden_size))
        caches.append(cache)
    return Trace(outputs=torch.stack(outputs, dim=1), final_state=state, caches=caches)


def run_stack(layers: list[list[tuple[Recurrence, CellWeights]]],
              inputs: torch.Tensor) -> tuple[dict[Recurrence, tuple[Trace, torch.Tensor]], torch.Tensor]:
    """Run a stacked, possibly bidirectional module exactly as PyTorch does.

    ``layers[k]`` holds the directions of layer k, forward first. Layer k's input is the
    concatenation of layer k−1's outputs (forward first); a reverse direction runs over the
    time-reversed sequence. Returns each recurrence's trace with the inputs it saw (in its own
    time order) and the module's output sequence (B, T, D·P).
    """
    traces: dict[Recurrence, tuple[Trace, torch.Tensor]] = {}
    current = inputs
    for directions in layers:
        outs = []
        for rec, weights in directions:
            seen = current.flip(1) if rec.direction == "reverse" else current
            trace = run_recurrence(rec, weights, seen)
            traces[rec] = (trace, seen)
            outs.append(trace.outputs.flip(1) if rec.direction == "reverse" else trace.outputs)
        current = torch.cat(outs, dim=-1)
    return traces, current


@dataclass(frozen=True, kw_only=True)
class Profile:
    """Per-lag numbers for one recurrence, per probe (B, L) in log10, and the directions.

    ``log10_norm``: spectral norm of the chosen block of P_ℓ; ``log10_frobenius`` its
    Frobenius norm; ``log10_grad``: ‖uᵀ P_ℓ‖ for the unit readout u of the state block.
    ``right``/``left`` (B, S_block): top right/left singular vectors of the block at the
    largest lag, with ``log10_sigma`` (B,) their singular value.
    """

    lags: tuple[int, ...]
    log10_norm: np.ndarray
    log10_frobenius: np.ndarray
    log10_grad: np.ndarray
    right: np.ndarray
    left: np.ndarray
    log10_sigma: np.ndarray


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
    for lag in range(1, lags[-1] + 1):
        rec.kind.jacobian(weights, trace.caches[steps - lag], rec.nonlinearity, out=jac)
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
                   left=top.left.cpu().numpy(), log10_sigma=_log10(top.sigma) + logs)


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


def replay_shares(rec: Recurrence, weights: CellWeights, inputs: torch.Tensor,
                  readout: torch.Tensor, block: slice,
                  horizons: tuple[int, ...] = (10, 100)) -> dict[int, np.ndarray]:
    """Share of the W_hh gradient from terms more than k steps before T, per probe (B,).

    Eq. (3)-(4) of the seed: ∂E/∂W_hh = Σ_t δ_t h_(t−1)ᵀ with δ_t = ∂E/∂(W_hh h_(t−1) + b_hh),
    for E = uᵀ s_T. The term of step t sits at lag ℓ = T − t; its size is ‖δ_t‖·‖h_(t−1)‖.
    The share beyond k is Σ_(ℓ>k) ‖term‖ / Σ_ℓ ‖term‖ (sizes, so that terms of opposite signs
    do not hide each other). δ_t comes from autograd through a zero tap on b_hh at each step.
    """
    drive = weights.input_drive(inputs)
    batch, steps = inputs.shape[:2]
    bias = weights.bias_hh if weights.bias_hh is not None else drive.new_zeros(drive.shape[-1])
    taps = [drive.new_zeros(batch, drive.shape[-1], requires_grad=True) for _ in range(steps)]
    state = inputs.new_zeros(batch, rec.state_size)
    previous = []
    with torch.enable_grad():
        for t in range(steps):
            previous.append(rec.kind.output(state, rec.hidden_size).detach())
            tapped = replace(weights, bias_hh=bias + taps[t])
            state, _ = rec.kind.step(tapped, drive[:, t], state, rec.nonlinearity)
        loss = (state[:, block] @ readout).sum()
        deltas = torch.autograd.grad(loss, taps)
    sizes = torch.stack([torch.linalg.vector_norm(d, dim=-1) * torch.linalg.vector_norm(h, dim=-1)
                         for d, h in zip(deltas, previous)], dim=1)  # (B, T), step t = 1..T
    lag_of_step = torch.arange(steps - 1, -1, -1, device=sizes.device)  # ℓ = T − t
    total = sizes.sum(dim=1).clamp_min(1e-300)
    return {k: (sizes[:, lag_of_step > k].sum(dim=1) / total).cpu().numpy() for k in horizons}
