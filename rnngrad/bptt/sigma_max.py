"""σ_max of every running product P_ℓ of the backward sweep, at a few thin passes per lag.

The sweep (:mod:`rnngrad.bptt.sweep`) forms P_(ℓ+1) = P_ℓ J with one (S × S) product per probe;
that product is the cost no method avoids. A full SVD of P_ℓ at every lag costs about ten such
products, and vector power iteration reads P_ℓ hundreds of times. Instead, a block of K = 8
approximate top *left* singular vectors U (rows, K × S) is carried from lag to lag:

* the left singular vectors of P_ℓ = J_T ··· J_(T−ℓ+1) belong to the end of the sequence and
  settle as ℓ grows (slowly near the edge of stability, where the singular values stay
  clustered), so the block found at lag ℓ is a good start at lag ℓ+1;
* the start costs no pass over P: U·P_(ℓ+1) = (U·P_ℓ)·J, and U·P_ℓ is left over from lag ℓ's
  convergence check. The sweep's product chain carries these K rows along in its own product
  (:meth:`LeadingSingular.image_at_identity`, :mod:`rnngrad.bptt.chain`); used on its own, the
  tracker carries them with :meth:`LeadingSingular.advance`.

At each lag a block Krylov (Golub–Kahan) iteration alternates passes P·V and U·P (K vectors
each; P times columns, not rows times Pᵀ, which is twice as slow in MKL), with Rayleigh–Ritz
on the accumulated right basis (at most 3 blocks, then a thick restart to the top K Ritz
vectors), until the top Ritz triplet (σ, u, v), for which P·v = σu holds exactly, has residual
r = ‖Pᵀu − σv‖ with min(r, r²/gap) ≤ ``tolerance``·σ, gap being σ minus the second Ritz
value. σ is then within that bound of a singular value of P_ℓ
(Kato–Temple for the symmetric [[0, P], [Pᵀ, 0]]), and Ritz values never exceed the true
ones. ``tolerance`` is 1e-10 in float64 (100·eps in float32); items not converged in
``MAX_ITERATIONS`` fall back to LAPACK's SVD. On a tanh net at the edge of stability
(ρ(W) = 1, H = 512) this takes about 3 iterations per lag late in the sweep and tens at the
first lags, where the singular subspace still moves: even at lag 100 the top singular values
are within 12 % of each other and the top left vector turns by about 1e-2 per lag, while the
r²/gap bound asks for residuals near 3e-6·σ. Wider blocks (K = 16, 24, 32) and larger bases
cut the iterations (to 400, 330, 290 of 570) but not the time: each pass and the small
eigenproblems grow with K (docs/performance.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

BLOCK = 8
MAX_ITERATIONS = 200
MAX_BASIS = 3  # blocks kept in the Krylov basis before a thick restart to the top K
TINY = 1e-300


def tolerance_for(dtype: torch.dtype) -> float:
    """The relative tolerance on σ in ``dtype``: 1e-10, or 100·eps where that is larger."""
    return max(1e-10, 100.0 * torch.finfo(dtype).eps)


@dataclass
class TopTriplet:
    """σ_max (B,) of each matrix in a batch, with its left and right singular vectors (B, S)."""

    sigma: torch.Tensor
    left: torch.Tensor
    right: torch.Tensor


class LeadingSingular:
    """Tracks the top singular triplets of the rows ``block`` of a product that grows on the right.

    The left vectors must follow the product: either carried as rows of the product itself
    (:class:`~rnngrad.bptt.chain.ProductChain`'s tracker rider, from :meth:`image_at_identity`,
    as the sweep does) or by :meth:`advance` with each new factor J *before* the product is
    updated; :meth:`solve` takes the product's rows ``P[:, block, :]`` at the lags where σ is
    wanted.
    """

    def __init__(self, batch: int, size: int, block: slice, *, dtype: torch.dtype,
                 device: torch.device | str, width: int | None = None) -> None:
        width = min(width or BLOCK, size)
        generator = torch.Generator(device="cpu").manual_seed(0)
        start = torch.randn(batch, size, width, generator=generator, dtype=dtype)
        self.rows = torch.linalg.qr(start).Q.mT.contiguous().to(device)  # U: (B, K, S)
        self.image: torch.Tensor | None = None  # U·P[block, :]: (B, K, S_full)
        self.block = block
        self.tolerance = tolerance_for(dtype)
        self.last: TopTriplet | None = None

    def image_at_identity(self, size: int) -> torch.Tensor:
        """U·P[block, :] for P = I (S × S): U in the block's columns, (B, K, S). The start of
        the rows the sweep's product chain carries along instead of calling :meth:`advance`."""
        image = self.rows.new_zeros(*self.rows.shape[:2], size)
        image[:, :, self.block] = self.rows
        return image

    def advance(self, factor: torch.Tensor) -> None:
        """The product becomes P·J: carry U·P to U·P·J (rows rescaled to unit length, which
        leaves the subspace they start the next solve from unchanged and keeps them finite)."""
        if self.image is not None:
            image = torch.bmm(self.image, factor)
            norms = torch.linalg.vector_norm(image, dim=-1, keepdim=True)
            self.image = image / norms.clamp_min(TINY)

    def solve(self, rows: torch.Tensor) -> TopTriplet:
        """Top triplet of A = ``rows[:, :, block]`` (``rows`` = P[:, block, :]).

        Each iteration is two thin passes over A: A·V for the new right block V (columns) and
        U·P[block, :] for the top K Ritz left vectors U (rows), which gives the residual and
        the next right block at once.
        """
        matrix = rows[:, :, self.block]
        if self.image is None:  # the first solve: no carried U·P yet
            self.image = torch.bmm(self.rows, rows)
        image = self.image[:, :, self.block]
        krylov = _Basis(matrix, self.rows.shape[1])
        for _ in range(MAX_ITERATIONS):
            krylov.extend(image)
            triplet, second, keep = self._rayleigh_ritz(krylov.basis, krylov.mapped)
            self.image = torch.bmm(self.rows, rows)
            image = self.image[:, :, self.block]
            residual = torch.linalg.vector_norm(image[:, 0] - triplet.sigma[:, None] * triplet.right,
                                                dim=-1)
            gap = (triplet.sigma - second).clamp_min(TINY)
            bound = torch.minimum(residual, residual * residual / gap)
            converged = bound <= self.tolerance * triplet.sigma
            if bool(converged.all()):
                self.last = triplet
                return triplet
            krylov.restart_if_full(keep)
        self.last = self._exact_fallback(matrix, triplet, converged)
        return self.last

    def _rayleigh_ritz(self, basis: torch.Tensor, mapped: torch.Tensor):
        """Ritz triplets of A on span V (columns of A·V in ``mapped``): eigenpairs of the Gram
        matrix of A·V; the top K left vectors become U."""
        values, vectors = torch.linalg.eigh(mapped.mT @ mapped)
        values, vectors = values.flip(-1).clamp_min(0), vectors.flip(-1)
        sigmas = values.sqrt()
        width = self.rows.shape[1]
        keep = vectors[:, :, :width]
        lefts = (mapped @ keep).mT  # rows σ_i u_iᵀ
        norms = torch.linalg.vector_norm(lefts, dim=-1, keepdim=True)
        self.rows = (lefts / norms.clamp_min(TINY)).contiguous()
        right = (basis @ vectors[:, :, :1]).squeeze(-1)
        second = sigmas[:, 1] if sigmas.shape[1] > 1 else torch.zeros_like(sigmas[:, 0])
        return TopTriplet(sigma=sigmas[:, 0], left=self.rows[:, 0], right=right), second, keep

    def _exact_fallback(self, matrix: torch.Tensor, triplet: TopTriplet,
                        converged: torch.Tensor) -> TopTriplet:
        stuck = ~converged
        left, sigma, right_h = torch.linalg.svd(matrix[stuck])
        result = TopTriplet(sigma=triplet.sigma.clone(), left=triplet.left.clone(),
                            right=triplet.right.clone())
        result.sigma[stuck] = sigma[:, 0]
        result.left[stuck] = left[:, :, 0]
        result.right[stuck] = right_h[:, 0, :]
        return result


class _Basis:
    """An orthonormal basis V of right vectors and A·V, as columns of preallocated buffers.

    Columns, not rows: A·V (A times a thin block) is about twice as fast in CPU BLAS as the
    same numbers computed as V·Aᵀ (measured with MKL at S = 512 and 1024).
    """

    def __init__(self, matrix: torch.Tensor, width: int) -> None:
        batch, _, size = matrix.shape
        self.matrix, self.width, self.used = matrix, width, 0
        capacity = min(MAX_BASIS * width, size)
        self._basis = matrix.new_empty(batch, size, capacity)
        self._mapped = matrix.new_empty(batch, size, capacity)

    @property
    def basis(self) -> torch.Tensor:
        return self._basis[:, :, :self.used]

    @property
    def mapped(self) -> torch.Tensor:
        return self._mapped[:, :, :self.used]

    def extend(self, rows: torch.Tensor) -> None:
        """Add the part of the row vectors ``rows`` (B, k, S) orthogonal to V; one pass over A."""
        room = self._basis.shape[2] - self.used
        block = rows[:, :room].mT
        if self.used:
            basis = self.basis
            for _ in range(2):  # classical Gram–Schmidt, twice is enough
                block = block - basis @ (basis.mT @ block)
        block = torch.linalg.qr(block).Q
        end = self.used + block.shape[2]
        self._basis[:, :, self.used:end] = block
        self._mapped[:, :, self.used:end] = torch.bmm(self.matrix, block)
        self.used = end

    def restart_if_full(self, keep: torch.Tensor) -> None:
        """Thick restart: keep the span of the top Ritz vectors when no block fits any more."""
        if self.used + self.width <= self._basis.shape[2]:
            return
        basis, mapped = self.basis @ keep, self.mapped @ keep
        self.used = basis.shape[2]
        self._basis[:, :, :self.used] = basis
        self._mapped[:, :, :self.used] = mapped
