"""What every cell shares: the :class:`Cell` interface, the weights of one recurrence.

Conventions (PyTorch's): gate blocks are stacked along rows of ``weight_ih``/``weight_hh``;
states are row vectors in batches, shape (B, S); a step Jacobian has shape (B, S, S) with
``J[b, i, j] = ∂s_t[i] / ∂s_{t-1}[j]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import torch


if TYPE_CHECKING:
    from rnngrad.cells import Recurrence
    from rnngrad.io import WeightBundle


class Cell(Protocol):
    """The equations of one cell type (a cell module, or a cell object with constants bound).

    ``step(w, drive, state, nonlinearity)``: one step from the input drive W_ih x_t + b_ih
    (B, G·H) and the state s_(t−1) (B, S); returns s_t (B, S) and a cache for ``jacobian``.
    ``jacobian(w, cache, nonlinearity, out=None)``: ∂s_t/∂s_(t−1), (B, S, S).
    ``jacobian_product(w, cache, nonlinearity, vectors)``: J_t V for vectors V (B, S, K),
    shape (B, S, K), without forming J_t (O(S²K) per probe instead of O(S²) memory per step).
    ``output(state, hidden_size)``: the part of s_t the next layer sees, (B, P).
    Optional, ``multiply_jacobian(w, cache, nonlinearity, rows, out)``: rows · J_t for row
    blocks (B, R, S) without forming J_t (the backward sweep uses it when a cell has it).
    """

    def step(self, w: CellWeights, drive: torch.Tensor, state: torch.Tensor,
             nonlinearity: str) -> tuple[torch.Tensor, Any]:
        """One step: s_t (B, S) from the input drive (B, G·H) and s_(t−1) (B, S), and a cache
        for :meth:`jacobian`."""

    def jacobian(self, w: CellWeights, cache: Any, nonlinearity: str,
                 out: torch.Tensor | None = None) -> torch.Tensor:
        """∂s_t/∂s_(t−1) from the step's cache, shape (B, S, S) (into ``out`` when given)."""

    def jacobian_product(self, w: CellWeights, cache: Any, nonlinearity: str,
                         vectors: torch.Tensor) -> torch.Tensor:
        """J_t V for V (B, S, K), shape (B, S, K), without forming J_t."""

    def output(self, state: torch.Tensor, hidden_size: int) -> torch.Tensor:
        """The part of s_t the next layer sees, (B, P); ``hidden_size`` is H."""


@dataclass(frozen=True, kw_only=True)
class CellWeights:
    """Float tensors of one recurrence (one layer, one direction).

    ``weight_hh``: (G·H, P) where G is the number of gate blocks (1, 3 or 4) and P = H except
    for an LSTM with ``proj_size`` P, whose ``weight_hr`` (P, H) projects h. ``weight_ih`` is
    (G·H, I) or None when only the recurrent matrix is known (``--key``).
    """

    weight_hh: torch.Tensor
    weight_ih: torch.Tensor | None = None
    bias_ih: torch.Tensor | None = None
    bias_hh: torch.Tensor | None = None
    weight_hr: torch.Tensor | None = None

    def input_drive(self, x: torch.Tensor) -> torch.Tensor:
        """W_ih x + b_ih for a whole sequence batch x of shape (B, T, I): (B, T, G·H)."""
        rows = self.weight_hh.shape[0]
        drive = (x @ self.weight_ih.T if self.weight_ih is not None
                 else x.new_zeros(*x.shape[:-1], rows))
        return drive + self.bias_ih if self.bias_ih is not None else drive

    def recurrent_drive(self, h: torch.Tensor) -> torch.Tensor:
        """W_hh h + b_hh for a batch of previous outputs h (B, P): (B, G·H)."""
        drive = h @ self.weight_hh.T
        return drive + self.bias_hh if self.bias_hh is not None else drive

    def rest_drive(self, batch: int = 1) -> torch.Tensor:
        """W_ih·0 + b_ih: the input drive at x = 0, shape (batch, G·H)."""
        rows = self.weight_hh.shape[0]
        zero = self.weight_hh.new_zeros(batch, rows)
        return zero + self.bias_ih if self.bias_ih is not None else zero


def row_scaled(scale: torch.Tensor, matrix: torch.Tensor,
               out: torch.Tensor | None = None) -> torch.Tensor:
    """diag(scale_b) @ matrix for each batch row b: (B, R) x (R, C) -> (B, R, C), into ``out``
    when given (the sweep reuses one buffer: a fresh 32 MiB tensor per step costs page faults)."""
    return torch.mul(scale.unsqueeze(-1), matrix, out=out)


def times(matrix: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
    """matrix @ V_b for every probe b: (R, C) x (B, C, K) -> (B, R, K), as one GEMM.

    ``torch.matmul`` would broadcast the matrix to (B, R, C) and read it once per probe; laid
    side by side, the B·K columns share one pass over it.
    """
    batch, size, count = vectors.shape
    side_by_side = vectors.transpose(0, 1).reshape(size, batch * count)
    return (matrix @ side_by_side).reshape(-1, batch, count).transpose(0, 1)


def cell_weights(bundle: WeightBundle, recurrence: Recurrence, dtype: torch.dtype = torch.float64,
                 device: str | torch.device = "cpu") -> CellWeights:
    """The recurrence's tensors from ``bundle`` as torch tensors of ``dtype`` on ``device``."""

    def get(name: str | None) -> torch.Tensor | None:
        if name is None:
            return None
        return torch.from_numpy(bundle.array(name)).to(dtype=dtype, device=device)

    return CellWeights(weight_hh=get(recurrence.weight_hh), weight_ih=get(recurrence.weight_ih),
                       bias_ih=get(recurrence.bias_ih), bias_hh=get(recurrence.bias_hh),
                       weight_hr=get(recurrence.weight_hr))
