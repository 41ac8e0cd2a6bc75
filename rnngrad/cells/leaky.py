"""Leaky rate RNN: a continuous-time RNN discretised by Euler's method, one gate block ``hh``.

    x_t = (1 − α) x_(t−1) + α (W φ(x_(t−1)) + W_in u_t + b),      α = dt/τ ∈ (0, 1]
    r_t = φ(x_t)                                                    (rates: the layer's output)
    J_t = ∂x_t/∂x_(t−1) = (1 − α) I + α W diag(φ'(x_(t−1)))

This is the form of PsychRNN, of the mackelab low-rank RNNs and of most rate models in
computational neuroscience: the state is the pre-activation x, the nonlinearity acts on the
state *before* W. rnngrad uses it for every mapped research checkpoint and for ``--leak α`` on an
Elman layer. (A leaky Elman cell h' = (1 − α)h + α φ(W h + ...) would have the Jacobian
(1 − α)I + α diag(φ'(a)) W instead; rnngrad does not use that form.) At α = 1 the cell is the
Elman cell seen through h = φ(x): the per-step Jacobians are conjugate, with the same spectra.

Weights in PyTorch orientation: ``weight_hh`` = W (N × N, rows index the new state),
``weight_ih`` = W_in (N × I), ``bias_ih`` = b; ``bias_hh``, when present, adds to b.
φ ∈ {tanh, relu, sigmoid, identity}; γ = max|φ'| is 1, 1, 1/4, 1, so
‖J_t‖ ≤ (1 − α) + α γ σ_max(W) (Pascanu et al. 2013, Sec. 2.1, with the leak added).

At rest (x = 0) every unit has the slope φ'(0): 1 for tanh and identity, 1/4 for sigmoid, and
for relu rnngrad takes the slope of an active unit, 1 (relu has no derivative at 0; with slope 0
the matrix would be (1 − α)I for every network). The *effective* matrix
(1 − α)I + α φ'(0) W is reported next to W: its eigenvalues are 1 − α + α φ'(0) λ(W).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rnngrad.cells.activations import value_and_slope
from rnngrad.cells.base import CellWeights, times

def rate_and_slope(x: torch.Tensor, nonlinearity: str) -> tuple[torch.Tensor, torch.Tensor]:
    """φ(x) and φ'(x); relu's slope is 1[x > 0], as autograd takes it."""
    return value_and_slope(x, nonlinearity)


@dataclass(frozen=True)
class LeakyCell:
    """The :class:`~rnngrad.cells.base.Cell` interface with α and φ bound
    (``Recurrence.equations``)."""

    alpha: float
    nonlinearity: str

    def output(self, state: torch.Tensor, hidden_size: int) -> torch.Tensor:
        """The rates r_t = φ(x_t), (B, N): the layer's output (``hidden_size`` is not needed)."""
        return rate_and_slope(state, self.nonlinearity)[0]

    def step(self, w: CellWeights, drive: torch.Tensor, state: torch.Tensor,
             nonlinearity: str | None = None):
        """One Euler step from the input drive W_in u + b (B, N); the cache is φ'(x_(t−1))."""
        rate, slope = rate_and_slope(state, self.nonlinearity)
        new = (1 - self.alpha) * state + self.alpha * (drive + w.recurrent_drive(rate))
        return new, slope

    def jacobian(self, w: CellWeights, cache: torch.Tensor, nonlinearity: str | None = None,
                 out: torch.Tensor | None = None) -> torch.Tensor:
        """(1 − α) I + α W diag(φ'(x_(t−1))), shape (B, N, N) (into ``out`` when given)."""
        size = cache.shape[-1]
        eye = torch.eye(size, dtype=cache.dtype, device=cache.device)
        return torch.add((1 - self.alpha) * eye, w.weight_hh * cache.unsqueeze(-2),
                         alpha=self.alpha, out=out)

    def jacobian_product(self, w: CellWeights, cache: torch.Tensor,
                         nonlinearity: str | None, vectors: torch.Tensor) -> torch.Tensor:
        """J_t V = (1 − α) V + α W (φ'(x_(t−1)) ⊙ V) for V (B, N, K): (B, N, K)."""
        scaled = times(w.weight_hh, cache.unsqueeze(-1) * vectors)
        return torch.add((1 - self.alpha) * vectors, scaled, alpha=self.alpha)
