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

from dataclasses import dataclass

import numpy as np

from .spectral import MatrixSpectrum, analyze_matrix


@dataclass(frozen=True, kw_only=True)
class LowRank:
    """W = scale · L R from two tensors of the file.

    ``left`` is stored (N × r); ``right`` is stored (r × N), or (N × r) when
    ``right_transposed``. ``transposed`` means the file's orientation has W acting on rows
    (x' = φ(x) W), so rnngrad's W (rows = new state) is the transpose of the product.
    """

    left: str
    right: str
    scale: float
    right_transposed: bool = False
    transposed: bool = False

    def describe(self) -> str:
        product = f"{self.left} {self.right}{'ᵀ' if self.right_transposed else ''}"
        text = f"W = {self.scale:.6g} · {product}"
        return f"{text}, transposed (columns orientation)" if self.transposed else text

    def factors(self, bundle) -> tuple[np.ndarray, np.ndarray]:
        """(L, R) with W = L @ R in rnngrad's orientation, the scale folded into L."""
        left = bundle.array(self.left)
        right = bundle.array(self.right)
        if self.right_transposed:
            right = right.T
        if self.transposed:
            left, right = right.T, left.T
        return self.scale * left, right


def low_rank_spectrum(left: np.ndarray, right: np.ndarray, *, gamma: float = 1.0,
                      top: int = 5) -> MatrixSpectrum:
    """The spectrum of W = left @ right (N × r)(r × N) from r × r problems only."""
    size, rank = left.shape
    small_eig, small_vec = np.linalg.eig(right @ left)
    if rank >= size or not np.any(small_eig):
        return analyze_matrix(left @ right, gamma=gamma, top=top)
    eig = np.concatenate([small_eig, np.zeros(size - rank)])
    order = np.argsort(-np.abs(eig), kind="stable")
    eig = eig[order]
    moduli = np.abs(eig)
    _, t_left = np.linalg.qr(left)
    _, t_right = np.linalg.qr(right.T)
    core = np.linalg.svd(t_left @ t_right.T, compute_uv=False)
    leading = int(np.argmax(np.abs(small_eig)))
    vector = _unit_phase(left @ small_vec[:, leading])
    value = complex(small_eig[leading])
    sigma_max = float(core[0])
    return MatrixSpectrum(
        size=size, spectral_radius=float(moduli[0]), sigma_max=sigma_max, sigma_min=0.0,
        condition_number=None,
        eigenvalues=tuple((float(z.real), float(z.imag)) for z in eig[:top]),
        outside_unit_circle=int(np.count_nonzero(moduli > 1.0)),
        outside_inverse_gamma=int(np.count_nonzero(moduli * gamma > 1.0)),
        leading_eigenvalue=(value.real, value.imag),
        leading_eigenvector=tuple((float(z.real), float(z.imag)) for z in vector))


def _unit_phase(vector: np.ndarray) -> np.ndarray:
    """Unit norm, largest-modulus component real and positive (as spectral.py reports)."""
    vector = vector.astype(np.complex128)
    vector = vector / np.linalg.norm(vector)
    pivot = vector[np.argmax(np.abs(vector))]
    return vector * (abs(pivot) / pivot)
