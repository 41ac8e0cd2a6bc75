"""The running product of the backward sweep, P_(ℓ+1) = P_ℓ J_(T−ℓ), with rows riding along.

The product of B probes lives in one buffer of shape (B, S + R, S): rows 0..S−1 hold P_ℓ, the
R rows after them are *riders*, row vectors x that the sweep wants multiplied by the same
factors, x_ℓ = x_0 P_ℓ (the σ_max tracker's block of left vectors, the readout uᵀ). One batched
product per step multiplies both: R extra rows of an (S × S) product cost R/S more arithmetic
and no extra pass over J (a separate (R × S)·(S × S) pass re-reads J from memory).

Two buffers are swapped step by step (a fresh (B, S, S) tensor per step is an mmap and
thousands of page faults once it passes glibc's 32 MiB limit: +15 % of the sweep at S = 1024),
and the step Jacobian is written into a third one. A cell may multiply without forming J
(``multiply_jacobian``: the Elman cell scales columns and multiplies by W_hh, one (B·(S+R) × S)
by (S × S) product).

Whenever the product's Frobenius norm leaves [1e-100, 1e100] (float32: [7e-10, 1.4e9]) every
row is divided by it and log10 of the factor is accumulated, so norms that over- or underflow
stay finite in log space; riders keep their meaning x_0 P_ℓ up to the same factor. *Free*
riders are left out of the rescale: their owner keeps their scale itself (the sweep's error
signal for Ω, made unit after every step).
"""

from __future__ import annotations

import math
from typing import Any

import torch

RESCALE_ABOVE = 1e100


class ProductChain:
    """P_ℓ for a batch of probes (B, S, S) with riders (B, R, S), starting from P_0 = I."""

    def __init__(self, batch: int, size: int, riders: dict[str, torch.Tensor], *,
                 dtype: torch.dtype, device: torch.device | str,
                 free: dict[str, torch.Tensor] | None = None) -> None:
        """``riders``: name -> x_0 of shape (B, r, S), multiplied along as x_0 P_ℓ; ``free``:
        riders multiplied along but never rescaled (module doc)."""
        free = free or {}
        riders = {**riders, **free}  # free riders last: the rescale stops before them
        extra = sum(rider.shape[1] for rider in riders.values())
        self.size = size
        self._buffer = torch.zeros(batch, size + extra, size, dtype=dtype, device=device)
        self._buffer[:, :size].diagonal(dim1=-2, dim2=-1).fill_(1.0)
        self._spare = torch.empty_like(self._buffer)
        self._jac: torch.Tensor | None = None
        self._rows: dict[str, slice] = {}
        start = size
        for name, rider in riders.items():
            self._rows[name] = slice(start, start + rider.shape[1])
            self._buffer[:, self._rows[name]] = rider
            start += rider.shape[1]
        self._scaled_rows = start - sum(rider.shape[1] for rider in free.values())
        self.log_scale = torch.zeros(batch, dtype=torch.float64, device=device)
        # 1e100 in float64; in float32 (max 3.4e38) max^¼ ≈ 1.4e9, so that a step may still
        # grow the norm 1e10-fold before its sum of squares overflows
        self._above = RESCALE_ABOVE if dtype == torch.float64 else torch.finfo(dtype).max ** 0.25

    @property
    def product(self) -> torch.Tensor:
        """P_ℓ (B, S, S), rescaled: the true product is 10^log_scale times this."""
        return self._buffer[:, :self.size]

    def rider(self, name: str) -> torch.Tensor:
        """The rider ``name``, x_0 P_ℓ (B, r, S) at the product's scale; writable in place."""
        return self._buffer[:, self._rows[name]]

    def multiply(self, equations: Any, weights: Any, cache: Any, nonlinearity: str) -> None:
        """Multiply P and the riders on the right by the step Jacobian of ``cache``."""
        fused = getattr(equations, "multiply_jacobian", None)
        if fused is not None:
            fused(weights, cache, nonlinearity, self._buffer, out=self._spare)
        else:
            if self._jac is None:
                self._jac = self._buffer.new_empty(self._buffer.shape[0], self.size, self.size)
            jac = equations.jacobian(weights, cache, nonlinearity, out=self._jac)
            torch.bmm(self._buffer, jac, out=self._spare)
        self._buffer, self._spare = self._spare, self._buffer

    def rescale(self) -> torch.Tensor:
        """Divide by the Frobenius norm where it left [1e-100, 1e100] (float32: [7e-10, 1.4e9])
        or is 0, accumulating log10 of the factor; returns the Frobenius norms (B,) of the
        rescaled products. Free riders are not divided.

        Rescaling only then saves two passes over P per step. An exactly zero product stays
        zero with log scale −∞.
        """
        scale = frobenius(self.product)
        outside = (scale > self._above) | (scale < 1.0 / self._above)
        if not bool(outside.any()):
            return scale
        factor = torch.where(outside & (scale > 0), scale, torch.ones_like(scale))
        self._buffer[:, :self._scaled_rows] /= factor[:, None, None]
        log_scale = self.log_scale + torch.log10(factor).to(torch.float64)
        self.log_scale = torch.where(scale > 0, log_scale, torch.full_like(log_scale, -math.inf))
        return scale / factor


def frobenius(matrices: torch.Tensor) -> torch.Tensor:
    """Frobenius norms of a batch of matrices (B, m, n) -> (B,)."""
    return torch.linalg.vector_norm(matrices, dim=(-2, -1))
