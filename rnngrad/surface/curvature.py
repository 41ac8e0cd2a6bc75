"""The Hessian ∂²E/∂θ² without forming it: exact Hessian-vector products and Lanczos.

Hessian-vector products by double backward (Pearlmutter 1994): g = ∂E/∂θ is computed once
with its graph kept (``create_graph``), then each H v = ∂(gᵀv)/∂θ is one more backward pass
through that graph, batched over the probes like E itself. Measured at H = 256 (Elman,
16 probes × 150 steps, float64, 1 thread): a product costs about 1.8 gradients
(``benchmarks/bench_surface.py``); forward-over-reverse (``torch.func.jvp`` over
``torch.func.grad``) gives the same numbers to 1e-14 at about 5 gradients.

The extreme eigenvalues come from the Lanczos method with full reorthogonalisation (Golub &
Van Loan, *Matrix Computations*, 4th ed., Sec. 10.1) from a seeded random start. Stated
accuracy: for each reported eigenvalue θ with unit Ritz vector y the true residual
r = ‖H y − θ y‖ is measured with one more product; H has an eigenvalue in [θ − r, θ + r]
(for any symmetric H), and ``error_bound`` = min(r, r²/gap) with the gap to the next Ritz
value, the sharper estimate once the eigenvalue is separated. Lanczos stops when both extreme
pairs' residuals are below ``tolerance`` · max|θ|, or when the Krylov space is the whole
space (then the eigenvalues are exact up to rounding).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

MAX_STEPS = 80
TOLERANCE = 1e-10


class HessianAt:
    """E, its gradient g and Hessian-vector products at one θ (for ``objective(θ) -> E``)."""

    def __init__(self, objective: Callable[[torch.Tensor], torch.Tensor],
                 theta: torch.Tensor) -> None:
        self._theta = theta.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            loss = objective(self._theta)
            (self._grad,) = torch.autograd.grad(loss, self._theta, create_graph=True)
        self.loss = float(loss.detach())
        self.gradient = self._grad.detach()
        self.products = 0

    def __call__(self, vector: torch.Tensor) -> torch.Tensor:
        """H v, the same shape as θ."""
        self.products += 1
        if not self._grad.requires_grad:  # E is linear in θ: H = 0
            return torch.zeros_like(vector)
        (product,) = torch.autograd.grad(self._grad, self._theta, vector, retain_graph=True,
                                         allow_unused=True)
        return torch.zeros_like(vector) if product is None else product.detach()


@dataclass(frozen=True)
class Eigenpair:
    """A Ritz pair: ``value`` θ, unit ``vector`` y, true residual ‖H y − θ y‖ and the error
    bound min(r, r²/gap)."""

    value: float
    vector: torch.Tensor
    residual: float
    error_bound: float


@dataclass(frozen=True)
class Extremes:
    """The largest and smallest eigenvalues of H (``largest``, ``smallest``), the Lanczos
    ``steps`` taken and whether they met the tolerance (``converged``)."""

    largest: Eigenpair
    smallest: Eigenpair
    steps: int
    converged: bool

    @property
    def top(self) -> Eigenpair:
        """λ_1, the eigenvalue of largest magnitude (the dominant curvature), either sign."""
        return self.largest if abs(self.largest.value) >= abs(self.smallest.value) \
            else self.smallest


def lanczos_extremes(matvec: Callable[[torch.Tensor], torch.Tensor], start: torch.Tensor, *,
                     max_steps: int = MAX_STEPS, tolerance: float = TOLERANCE) -> Extremes:
    """The extreme eigenpairs of the symmetric operator ``matvec`` (n × n, n = start.numel())."""
    size = start.numel()
    steps_allowed = min(size, max_steps)
    basis = [start / torch.linalg.vector_norm(start)]
    alphas: list[float] = []
    betas: list[float] = []
    converged = False
    for step in range(steps_allowed):
        w = matvec(basis[-1])
        alphas.append(float(basis[-1] @ w))
        stacked = torch.stack(basis)
        for _ in range(2):  # full reorthogonalisation, twice is enough (Kahan)
            w = w - stacked.T @ (stacked @ w)
        beta = float(torch.linalg.vector_norm(w))
        values, vectors = _ritz(alphas, betas)
        scale = max(abs(values[0]), abs(values[-1]), np.finfo(np.float64).tiny)
        estimates = beta * np.abs(vectors[-1, [0, -1]])
        if beta <= 1e-14 * scale or max(estimates) <= tolerance * scale:
            converged = True
            break
        if step + 1 == steps_allowed:
            converged = step + 1 == size
            break
        betas.append(beta)
        basis.append(w / beta)
    values, vectors = _ritz(alphas, betas)
    stacked = torch.stack(basis)
    pairs = [_pair(matvec, stacked, values, vectors, index) for index in (-1, 0)]
    return Extremes(largest=pairs[0], smallest=pairs[1], steps=len(alphas),
                    converged=converged)


def _ritz(alphas: list[float], betas: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (ascending) and eigenvectors of the tridiagonal Lanczos matrix."""
    count = len(alphas)
    tridiagonal = np.diag(alphas)
    if count > 1:
        off = np.asarray(betas[:count - 1])
        tridiagonal += np.diag(off, 1) + np.diag(off, -1)
    return np.linalg.eigh(tridiagonal)


def _pair(matvec, basis: torch.Tensor, values: np.ndarray, vectors: np.ndarray,
          index: int) -> Eigenpair:
    value = float(values[index])
    coefficients = torch.as_tensor(vectors[:, index], dtype=basis.dtype, device=basis.device)
    vector = coefficients @ basis
    vector = vector / torch.linalg.vector_norm(vector)
    residual = float(torch.linalg.vector_norm(matvec(vector) - value * vector))
    bound = residual
    if values.size > 1:
        gap = abs(value - float(values[-2] if index == -1 else values[1]))
        if gap > 0:
            bound = min(residual, residual * residual / gap)
    return Eigenpair(value=value, vector=vector, residual=residual, error_bound=bound)


def start_vector(size: int, seed: int, dtype: torch.dtype, device) -> torch.Tensor:
    """A seeded random unit start for Lanczos (numbers the same on every run)."""
    vector = np.random.default_rng([seed, 13]).standard_normal(size)
    return torch.as_tensor(vector / np.linalg.norm(vector), dtype=dtype, device=device)
