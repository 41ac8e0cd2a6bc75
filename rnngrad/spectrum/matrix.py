"""Pure linear algebra on one square matrix: eigenvalues, singular values, leading eigenvector.

NumPy only (no torch), and only what is asked is computed: eigenvalues come from LAPACK
``geev`` without eigenvectors (``numpy.linalg.eigvals``); σ_max and σ_min from ``gesdd``
without singular vectors up to ``EXACT_SVD_MAX``, above it from the certified Lanczos
iterations of :mod:`rnngrad.spectrum.extreme` (every singular value, for pictures, always from
``gesdd``); the one eigenvector reported (the leading one, the linear-case exploding direction
v of Pascanu et al. 2013) comes from inverse iteration on the already known leading
eigenvalue. So ρ is numpy's own number, σ_max and σ_min are LAPACK's to 1e-12 relative, and
the whole analysis costs less than ``eigvals`` + ``svd(compute_uv=False)``.
"""

from __future__ import annotations

import numpy as np

from rnngrad.spectrum.extreme import extreme_singular_values, largest_singular_value
from rnngrad.spectrum.report import MatrixSpectrum

# Up to this size gesdd's values-only SVD is as fast as the Lanczos iterations (measured).
EXACT_SVD_MAX = 512
# Inverse iteration: right-hand sides solved with one LU, and the residual it must reach.
RITZ_BLOCK = 8
EIGENVECTOR_RESIDUAL = 1e-12


def analyze_matrix(matrix: np.ndarray, *, gamma: float = 1.0, top: int = 5,
                   eigenvector: bool = True, values: bool = False) -> MatrixSpectrum:
    """Spectrum of a square float matrix; ``gamma`` sets the 1/γ circle that is counted;
    ``values`` keeps every eigenvalue and singular value."""
    a = np.asarray(matrix, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] == 0:
        raise ValueError(f"analyze_matrix needs a non-empty square matrix, got {a.shape}")
    eig = np.linalg.eigvals(a)
    order = np.argsort(-np.abs(eig), kind="stable")
    eig = eig[order]
    singular = np.linalg.svd(a, compute_uv=False) if values or a.shape[0] <= EXACT_SVD_MAX else None
    moduli = np.abs(eig)
    sigma_max, sigma_min = ((float(singular[0]), float(singular[-1])) if singular is not None
                            else extreme_singular_values(a))
    leading = complex(eig[0])
    vector = _leading_eigenvector(a, leading) if eigenvector else np.zeros(0, dtype=complex)
    return MatrixSpectrum(
        size=a.shape[0],
        spectral_radius=float(moduli[0]),
        sigma_max=sigma_max,
        sigma_min=sigma_min,
        condition_number=sigma_max / sigma_min if sigma_min > 0 else None,
        eigenvalues=pairs(eig[:top]),
        outside_unit_circle=int(np.count_nonzero(moduli > 1.0)),
        outside_inverse_gamma=int(np.count_nonzero(moduli * gamma > 1.0)),
        leading_eigenvalue=(leading.real, leading.imag),
        leading_eigenvector=pairs(vector),
        all_eigenvalues=pairs(eig) if values else None,
        singular_values=tuple(float(v) for v in singular) if values else None,
    )


def pairs(values: np.ndarray) -> tuple[tuple[float, float], ...]:
    """Complex values as (re, im) pairs of floats."""
    return tuple((float(z.real), float(z.imag)) for z in values)


def _leading_eigenvector(a: np.ndarray, eigenvalue: complex) -> np.ndarray:
    """Unit eigenvector for a known eigenvalue by block inverse iteration with one LU.

    The shift μ is nudged off the eigenvalue by a relative 1e-10 so the factorisation is not
    exactly singular; ``RITZ_BLOCK`` random right-hand sides are solved with one LU of A − μI,
    which multiplies the wanted component by about 1e10 and those of the eigenvalues next to μ
    by less; Rayleigh–Ritz on their span then picks the eigenvector out. Another solve follows
    only if the residual ‖Ax − λx‖ is still above ``EIGENVECTOR_RESIDUAL``·‖A‖_F.

    For a complex eigenvalue the real matrix (A − μI)(A − μ̄I) = A² − 2 Re(μ) A + |μ|² I is
    factored first: it amplifies the real span of the pair (v, v̄) alike, and one real product
    with two real solves cost less than two complex ones (0.6 s against 0.9 s at H = 2048,
    where one solve leaves a residual near 1e-9). Only if its Ritz vector misses the residual
    is the complex LU of A − μI used.
    """
    scale = float(np.abs(a).max())
    if scale > 0 and not 1e-100 < scale < 1e100:  # A² and AᵀA would over- or underflow
        return _leading_eigenvector(a / scale, eigenvalue / scale)  # the same eigenvectors
    n = a.shape[0]
    real = abs(eigenvalue.imag) <= 1e-14 * max(abs(eigenvalue), 1e-300)
    value = eigenvalue.real if real else eigenvalue
    shift = value * (1 + 1e-10) + 1e-14
    start = np.random.default_rng(0).standard_normal((n, min(RITZ_BLOCK, n)))
    limit = EIGENVECTOR_RESIDUAL * max(float(np.linalg.norm(a)), 1e-300)
    if not real:
        quadratic = a @ a - (2 * shift.real) * a
        quadratic.flat[::n + 1] += abs(shift) ** 2
        vector = _inverse_iteration(a, quadratic, start, value, limit, rounds=2)
        if vector is not None and np.linalg.norm(a @ vector - value * vector) <= limit:
            return canonical_phase(vector)
    dtype = np.float64 if real else np.complex128
    shifted = a.astype(dtype)  # a copy
    shifted.flat[::n + 1] -= shift
    vector = _inverse_iteration(a, shifted, start.astype(dtype), value, limit, rounds=3)
    if vector is None:
        return canonical_phase(_null_vector(shifted).astype(np.complex128))
    return canonical_phase(vector)


def _inverse_iteration(a: np.ndarray, shifted: np.ndarray, start: np.ndarray, value: complex,
                       limit: float, rounds: int) -> np.ndarray | None:
    """Up to ``rounds`` solves with ``shifted``, each followed by Rayleigh–Ritz with A, until
    the Ritz vector's residual is within ``limit``; None if a solve fails outright."""
    vector = None
    for _ in range(rounds):
        try:
            block = np.linalg.solve(shifted, start)
        except np.linalg.LinAlgError:  # the shift hit the eigenvalue exactly
            return vector
        if not np.all(np.isfinite(block)):
            return vector
        vector = _ritz_vector(a, block, value)
        if np.linalg.norm(a @ vector - value * vector) <= limit:
            return vector
        start = vector[:, None].astype(shifted.dtype) if np.iscomplexobj(shifted) else \
            np.stack([vector.real, vector.imag], axis=1)
    return vector


def _ritz_vector(a: np.ndarray, block: np.ndarray, value: complex) -> np.ndarray:
    """The Ritz vector of A on span(``block``) whose Ritz value is nearest ``value``."""
    basis = np.linalg.qr(block)[0]
    small = basis.conj().T @ (a @ basis)
    values, vectors = np.linalg.eig(small)
    pick = int(np.argmin(np.abs(values - value)))
    vector = basis @ vectors[:, pick]
    return vector / np.linalg.norm(vector)


def _null_vector(matrix: np.ndarray) -> np.ndarray:
    _, _, vh = np.linalg.svd(matrix)
    return vh[-1].conj()


def canonical_phase(vector: np.ndarray) -> np.ndarray:
    """Scale to unit norm with the largest-modulus component real and positive."""
    vector = vector.astype(np.complex128)
    vector = vector / np.linalg.norm(vector)
    pivot = vector[np.argmax(np.abs(vector))]
    return vector * (abs(pivot) / pivot)


def leading_eigenvectors(matrix: np.ndarray) -> tuple[complex, np.ndarray, np.ndarray]:
    """The eigenvalue λ of largest modulus with its right and left unit eigenvectors
    (Wx = λx and Wᵀy = λy): one eigenvalue computation, two inverse iterations."""
    a = np.asarray(matrix, dtype=np.float64)
    eig = np.linalg.eigvals(a)
    value = complex(eig[np.argmax(np.abs(eig))])
    return value, _leading_eigenvector(a, value), _leading_eigenvector(a.T, value)


def spectral_norm(matrix: np.ndarray) -> float:
    """σ_max: LAPACK up to ``EXACT_SVD_MAX``, certified Lanczos above (LAPACK if it stalls)."""
    a = np.asarray(matrix, dtype=np.float64)
    top = largest_singular_value(a) if min(a.shape) > EXACT_SVD_MAX else None
    return top if top is not None else float(np.linalg.svd(a, compute_uv=False)[0])


def spectral_radius(matrix: np.ndarray) -> float:
    """ρ = max |λ| over the eigenvalues of the square ``matrix`` (float64)."""
    return float(np.max(np.abs(np.linalg.eigvals(np.asarray(matrix, dtype=np.float64)))))
