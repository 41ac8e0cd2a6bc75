"""Pure linear algebra on one square matrix: eigenvalues, singular values, leading eigenvector.

Only what is asked is computed: eigenvalues come from LAPACK ``geev`` without eigenvectors
(``numpy.linalg.eigvals``), singular values from ``gesdd`` without singular vectors; the one
eigenvector reported (the leading one, the linear-case exploding direction v of Pascanu et al.
2013) comes from inverse iteration on the already known leading eigenvalue. So ρ, σ_max and
σ_min are numpy's own numbers, and the whole analysis costs less than ``eigvals`` + ``svd``.
"""

from __future__ import annotations

import numpy as np
import torch

from rnngrad.spectrum.report import MatrixSpectrum


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
    singular = np.linalg.svd(a, compute_uv=False)
    moduli = np.abs(eig)
    sigma_max, sigma_min = float(singular[0]), float(singular[-1])
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


def _leading_eigenvector(a: np.ndarray, eigenvalue: complex, iterations: int = 3) -> np.ndarray:
    """Unit eigenvector for a known eigenvalue by inverse iteration (one LU, a few solves).

    The shift is nudged off the eigenvalue by a relative 1e-10 so the factorisation is not
    exactly singular; each solve then multiplies the wanted component by about 1e10. The LU
    is factored once (a complex LU when the eigenvalue is complex).
    """
    n = a.shape[0]
    real = abs(eigenvalue.imag) <= 1e-14 * max(abs(eigenvalue), 1e-300)
    shift = (eigenvalue.real if real else eigenvalue) * (1 + 1e-10) + 1e-14
    dtype = np.float64 if real else np.complex128
    shifted = a.astype(dtype)  # a copy
    shifted.flat[::n + 1] -= shift
    shifted = torch.from_numpy(shifted)
    factors, pivots, _ = torch.linalg.lu_factor_ex(shifted)
    vector = torch.from_numpy(np.random.default_rng(0).standard_normal((n, 1)).astype(dtype))
    for _ in range(iterations):
        vector = torch.linalg.lu_solve(factors, pivots, vector)
        norm = float(torch.linalg.vector_norm(vector))
        if not np.isfinite(norm) or norm == 0:  # the shift hit the eigenvalue exactly
            return canonical_phase(_null_vector(shifted.numpy()).astype(np.complex128))
        vector = vector / norm
    return canonical_phase(vector.numpy()[:, 0].astype(np.complex128))


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
    """σ_max, the largest singular value of ``matrix`` (float64)."""
    return float(np.linalg.svd(np.asarray(matrix, dtype=np.float64), compute_uv=False)[0])


def spectral_radius(matrix: np.ndarray) -> float:
    """ρ = max |λ| over the eigenvalues of the square ``matrix`` (float64)."""
    return float(np.max(np.abs(np.linalg.eigvals(np.asarray(matrix, dtype=np.float64)))))
