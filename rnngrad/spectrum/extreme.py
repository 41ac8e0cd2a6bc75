"""σ_max and σ_min of a large square matrix without its full SVD, each certified by a residual.

LAPACK's values-only SVD (``gesdd``) first reduces the matrix to bidiagonal form, half of it
in matrix-vector products that run at memory speed: at H = 2048 it costs about as much as the
eigenvalues themselves. ``spectrum`` reports only σ_max, σ_min and their ratio (all singular
values only with ``--plot``), so for large matrices it asks for just those:

* σ_max(A) by block Golub–Kahan–Lanczos (block of ``BLOCK`` vectors, full
  reorthogonalisation, thick restart at ``MAX_BASIS`` vectors). Stopping rule, as for the bptt
  tracker (:mod:`rnngrad.bptt.sigma_max`): the top Ritz triplet (σ, u, v), for which A v = σ u
  holds exactly, has residual r = ‖Aᵀu − σv‖ with min(r, r²/gap) ≤ ``TOLERANCE``·σ, gap being σ
  minus the second Ritz value; σ is then within that bound of a singular value of A
  (Kato–Temple for the symmetric [[0, A], [Aᵀ, 0]]), and Ritz values never exceed the true
  ones. Each step costs two thin passes over A.
* σ_min(A) = 1 / σ_max(A⁻¹), the same iteration on the inverse (LU with partial pivoting and
  triangular solves, ``numpy.linalg.inv``: level-3 BLAS). Its relative accuracy is that of the
  computed inverse, about eps·κ(A), as for ``gesdd``'s σ_min; when κ passes ``MAX_CONDITION``
  or A is singular, the SVD answers instead.

Anything that does not converge in ``MAX_ITERATIONS`` steps falls back to ``gesdd``, so the
numbers are LAPACK's to the tolerance whatever the matrix.
"""

from __future__ import annotations

import numpy as np

BLOCK = 8
MAX_BASIS = 128
MAX_ITERATIONS = 300
TOLERANCE = 1e-12
MAX_CONDITION = 1e10
TINY = 1e-300


def extreme_singular_values(matrix: np.ndarray) -> tuple[float, float]:
    """(σ_max, σ_min) of a square float64 matrix, certified to ``TOLERANCE`` relative (σ_min:
    or to the accuracy of the inverse, eps·κ)."""
    top = largest_singular_value(matrix)
    if top is None or top == 0.0:
        return _svd_extremes(matrix)
    try:
        inverse = np.linalg.inv(matrix)
    except np.linalg.LinAlgError:  # exactly singular: gesdd gives σ_min = 0 (or its rounding)
        return _svd_extremes(matrix)
    top_inverse = largest_singular_value(inverse) if np.all(np.isfinite(inverse)) else None
    if top_inverse is None or top_inverse == 0.0 or top * top_inverse > MAX_CONDITION:
        return _svd_extremes(matrix)
    return top, 1.0 / top_inverse


def largest_singular_value(matrix: np.ndarray, *, tolerance: float = TOLERANCE,
                           seed: int = 0) -> float | None:
    """σ_max of ``matrix`` (m × n) by block Golub–Kahan–Lanczos; None if not converged."""
    a = np.asarray(matrix, dtype=np.float64)
    size = a.shape[1]
    width = min(BLOCK, size)
    capacity = min(MAX_BASIS, size)
    basis = np.empty((size, capacity))   # V: orthonormal right vectors (columns)
    mapped = np.empty((a.shape[0], capacity))  # A V
    used = 0
    block = np.random.default_rng(seed).standard_normal((size, width))
    for _ in range(MAX_ITERATIONS):
        used = _extend(a, basis, mapped, used, block)
        try:  # entries past ~1e150 overflow AᵀA: LAPACK's SVD (the caller's fallback) scales
            with np.errstate(over="ignore", invalid="ignore"):
                values, vectors = np.linalg.eigh(mapped[:, :used].T @ mapped[:, :used])
        except np.linalg.LinAlgError:
            return None
        values, vectors = np.maximum(values[::-1], 0.0), vectors[:, ::-1]
        sigmas = np.sqrt(values)
        sigma = float(sigmas[0])
        if not np.isfinite(sigma):
            return None
        if sigma == 0.0:
            return 0.0 if used >= size else None
        keep = vectors[:, :width]
        lefts = mapped[:, :used] @ keep
        lefts /= np.maximum(np.linalg.norm(lefts, axis=0), TINY)
        image = a.T @ lefts  # Aᵀ U: the residual and the next right block in one pass
        right = basis[:, :used] @ vectors[:, 0]
        residual = float(np.linalg.norm(image[:, 0] - sigma * right))
        gap = max(sigma - (float(sigmas[1]) if sigmas.size > 1 else 0.0), TINY)
        if min(residual, residual * residual / gap) <= tolerance * sigma or used >= size:
            return sigma
        if used + width > capacity:  # thick restart to the top Ritz vectors
            basis[:, :width] = basis[:, :used] @ keep
            mapped[:, :width] = mapped[:, :used] @ keep
            used = width
        block = image
    return None


def _extend(a: np.ndarray, basis: np.ndarray, mapped: np.ndarray, used: int,
            block: np.ndarray) -> int:
    """Append the part of ``block``'s columns orthogonal to the basis, and A times it."""
    block = _orthonormal_complement(block[:, :basis.shape[1] - used], basis[:, :used])
    end = used + block.shape[1]
    basis[:, used:end] = block
    mapped[:, used:end] = a @ block
    return end


def _orthonormal_complement(block: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Orthonormal columns spanning ``block`` minus its part in span(``basis``); columns that
    vanish there (an invariant subspace was found) are replaced by random directions."""
    rng = np.random.default_rng(basis.shape[1])
    for _ in range(3):
        for _ in range(2):  # classical Gram–Schmidt, twice is enough
            block = block - basis @ (basis.T @ block)
        q, r = np.linalg.qr(block)
        lost = np.abs(np.diag(r)) <= 1e-10 * max(float(np.abs(r).max()), TINY)
        if not lost.any():
            return q
        block = np.where(lost, rng.standard_normal(block.shape), q)
    return q


def _svd_extremes(matrix: np.ndarray) -> tuple[float, float]:
    values = np.linalg.svd(matrix, compute_uv=False)
    return float(values[0]), float(values[-1])
