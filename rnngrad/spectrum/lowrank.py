"""Low-rank recurrent matrices W = scale · m nᵀ, analysed through the small r × r problem.

For W = L R with L (N × r) and R (r × N), r < N (Mastrogiuseppe & Ostojic 2018; the mackelab
networks store L = m, R = n with scale 1/N):

- eigenvalues: the r eigenvalues of R L (r × r) and N − r exact zeros; an eigenvector of W for
  a non-zero λ is L v where (R L) v = λ v;
- singular values: with L = Q_L T_L and Rᵀ = Q_R T_R (thin QR), W = Q_L (T_L T_Rᵀ) Q_Rᵀ, so the
  singular values are those of the r × r core T_L T_Rᵀ and N − r exact zeros.

Nothing is inverted: σ_min = 0 exactly and the condition number is reported as undefined.
"""

from __future__ import annotations

import numpy as np

from rnngrad.spectrum.matrix import analyze_matrix, canonical_phase, pairs
from rnngrad.spectrum.report import MatrixSpectrum


def low_rank_spectrum(left: np.ndarray, right: np.ndarray, *, gamma: float = 1.0,
                      top: int = 5, values: bool = False) -> MatrixSpectrum:
    """The spectrum of W = left @ right (N × r)(r × N) from r × r problems only."""
    size, rank = left.shape
    small_eig, small_vec = np.linalg.eig(right @ left)
    if rank >= size or not np.any(small_eig):
        return analyze_matrix(left @ right, gamma=gamma, top=top, values=values)
    eig = np.concatenate([small_eig, np.zeros(size - rank)])
    order = np.argsort(-np.abs(eig), kind="stable")
    eig = eig[order]
    moduli = np.abs(eig)
    _, t_left = np.linalg.qr(left)
    _, t_right = np.linalg.qr(right.T)
    core = np.linalg.svd(t_left @ t_right.T, compute_uv=False)
    leading = int(np.argmax(np.abs(small_eig)))
    vector = canonical_phase(left @ small_vec[:, leading])
    value = complex(small_eig[leading])
    sigma_max = float(core[0])
    return MatrixSpectrum(
        size=size, spectral_radius=float(moduli[0]), sigma_max=sigma_max, sigma_min=0.0,
        condition_number=None,
        eigenvalues=pairs(eig[:top]),
        outside_unit_circle=int(np.count_nonzero(moduli > 1.0)),
        outside_inverse_gamma=int(np.count_nonzero(moduli * gamma > 1.0)),
        leading_eigenvalue=(value.real, value.imag),
        leading_eigenvector=pairs(vector),
        all_eigenvalues=pairs(eig) if values else None,
        singular_values=(tuple(float(v) for v in core) + (0.0,) * (size - rank)
                         if values else None))
