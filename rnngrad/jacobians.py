"""The hot path: forward passes and the per-lag BPTT Jacobian profile of one recurrence.

For a probe x_1..x_T and s_0 = 0, the lag-ℓ Jacobian is (THEORY.md "Lags", seed eq. 5)

    P_ℓ = ∂s_T/∂s_(T−ℓ) = J_T J_(T−1) ··· J_(T−ℓ+1),    J_t = ∂s_t/∂s_(t−1).

One backward sweep extends the running product by one step Jacobian at a time,
P_(ℓ+1) = P_ℓ J_(T−ℓ), batched over the probe sequences: one (S × S) product per step and
probe, as cheap as the bare chain. After every step the product is divided by its Frobenius
norm and log10 of that factor is accumulated, so norms that over- or underflow float64 stay
finite as ``log10_norm``.

Spectral norms: for S ≤ ``EXACT_SVD_MAX`` by LAPACK (exact); above, by power iteration on
P_ℓᵀP_ℓ warm-started from the previous lag's top left singular vector, iterated until σ
changes by less than ``POWER_RTOL`` relative (the error is then below about 1e-10 relative
unless σ_1 ≈ σ_2, where any unit vector in their span gives σ to the same accuracy); items
that do not converge in ``POWER_MAXITER`` iterations fall back to the exact SVD.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
import torch

from .cells import CellWeights, Recurrence

EXACT_SVD_MAX = 64
POWER_RTOL = 1e-13
POWER_MAXITER = 300


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
    warm: torch.Tensor | None = None
    for lag in range(1, lags[-1] + 1):
        jac = rec.kind.jacobian(weights, trace.caches[steps - lag], rec.nonlinearity)
        product = torch.bmm(product, jac)
        scale = torch.linalg.vector_norm(product.flatten(1), dim=1)
        safe = torch.where(scale > 0, scale, torch.ones_like(scale))
        product = product / safe[:, None, None]
        log_scale += torch.log10(safe).to(torch.float64)
        log_scale = torch.where(scale > 0, log_scale, torch.full_like(log_scale, -math.inf))
        if lag in wanted:
            part = product[:, block, block]
            sigma, warm = spectral_norms(part, warm)
            column = wanted[lag]
            out["norm"][:, column] = _log10(sigma) + log_scale.cpu().numpy()
            out["frob"][:, column] = (_log10(torch.linalg.vector_norm(part.flatten(1), dim=1))
                                      + log_scale.cpu().numpy())
            grad = torch.linalg.vector_norm(readout @ part, dim=-1)
            out["grad"][:, column] = _log10(grad) + log_scale.cpu().numpy()
        if on_lag:
            on_lag(lag, lags[-1])
    left, sigma, right = torch.linalg.svd(product[:, block, block])
    return Profile(lags=lags, log10_norm=out["norm"], log10_frobenius=out["frob"],
                   log10_grad=out["grad"], right=right[:, 0, :].cpu().numpy(),
                   left=left[:, :, 0].cpu().numpy(),
                   log10_sigma=_log10(sigma[:, 0]) + log_scale.cpu().numpy())


def _log10(values: torch.Tensor) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log10(values.detach().to(torch.float64).cpu().numpy())


def spectral_norms(matrices: torch.Tensor, warm: torch.Tensor | None = None,
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """σ_max of each matrix in a batch (B, S, S), and the left vectors for the next warm start."""
    size = matrices.shape[-1]
    if size <= EXACT_SVD_MAX:
        return torch.linalg.matrix_norm(matrices, ord=2), None
    if warm is None:
        generator = torch.Generator(device="cpu").manual_seed(0)
        warm = torch.randn(matrices.shape[0], size, generator=generator,
                           dtype=matrices.dtype).to(matrices.device)
    sigma, left, converged = _power_iteration(matrices, warm)
    if not bool(converged.all()):
        exact = torch.linalg.matrix_norm(matrices[~converged], ord=2)
        sigma = sigma.clone()
        sigma[~converged] = exact
    return sigma, left


def _power_iteration(matrices: torch.Tensor, start: torch.Tensor):
    left = start / torch.linalg.vector_norm(start, dim=-1, keepdim=True).clamp_min(1e-300)
    transposed = matrices.transpose(1, 2)
    sigma = torch.zeros(matrices.shape[0], dtype=matrices.dtype, device=matrices.device)
    converged = torch.zeros_like(sigma, dtype=torch.bool)
    for _ in range(POWER_MAXITER):
        right = torch.bmm(transposed, left.unsqueeze(-1)).squeeze(-1)
        right = right / torch.linalg.vector_norm(right, dim=-1, keepdim=True).clamp_min(1e-300)
        image = torch.bmm(matrices, right.unsqueeze(-1)).squeeze(-1)
        new_sigma = torch.linalg.vector_norm(image, dim=-1)
        left = image / new_sigma.clamp_min(1e-300).unsqueeze(-1)
        converged = (new_sigma - sigma).abs() <= POWER_RTOL * new_sigma
        sigma = new_sigma
        if bool(converged.all()):
            break
    return sigma, left, converged


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
