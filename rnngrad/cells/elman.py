"""Elman cell (``nn.RNN`` / ``nn.RNNCell``, Keras ``SimpleRNN``, ONNX ``RNN``), one gate block ``hh``.

    h_t = φ(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)
    J_t = ∂h_t/∂h_{t-1} = diag(φ'(a_t)) W_hh          (tanh: φ' = 1 − h_t², relu: 1[a_t > 0])

φ is tanh or relu for PyTorch files; a Keras or ONNX file may name any nonlinearity of
:mod:`rnngrad.cells.activations`. γ = sup |φ'| is 1 for tanh and relu (Pascanu et al. 2013,
Sec. 2.1). State s = h, size H.
"""

from __future__ import annotations

import torch

from rnngrad.cells.activations import value_and_slope
from rnngrad.cells.base import CellWeights, row_scaled, times


def output(state: torch.Tensor, hidden_size: int) -> torch.Tensor:
    """The layer's output h_t: the state itself, (B, H)."""
    return state


def step(w: CellWeights, drive: torch.Tensor, state: torch.Tensor, nonlinearity: str):
    """One step from the input drive (B, H) and state (B, H); returns (new state, φ'(a_t))."""
    return value_and_slope(drive + w.recurrent_drive(state), nonlinearity)


def jacobian(w: CellWeights, cache: torch.Tensor, nonlinearity: str,
             out: torch.Tensor | None = None) -> torch.Tensor:
    """diag(φ'(a_t)) W_hh, shape (B, H, H) (written into ``out`` when given)."""
    return row_scaled(cache, w.weight_hh, out=out)


def jacobian_product(w: CellWeights, cache: torch.Tensor, nonlinearity: str,
                     vectors: torch.Tensor) -> torch.Tensor:
    """J_t V = diag(φ'(a_t)) (W_hh V) for V (B, H, K): (B, H, K)."""
    return cache.unsqueeze(-1) * times(w.weight_hh, vectors)


def multiply_jacobian(w: CellWeights, cache: torch.Tensor, nonlinearity: str,
                      rows: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """rows · J_t = (rows · diag(φ'(a_t))) · W_hh for row blocks ``rows`` (B, R, H), into ``out``.

    The backward sweep's step (:mod:`rnngrad.bptt.chain`) without forming J_t: the columns of
    ``rows`` are scaled in place (its contents are spent), then one (B·R × H)·(H × H) product
    with W_hh, shared by every probe. Both tensors must be contiguous.
    """
    rows.mul_(cache.unsqueeze(-2))
    width = rows.shape[-1]
    torch.mm(rows.view(-1, width), w.weight_hh, out=out.view(-1, width))
    return out
