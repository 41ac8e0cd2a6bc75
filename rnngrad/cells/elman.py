"""Elman cell (``nn.RNN`` / ``nn.RNNCell``), one gate block ``hh``.

    h_t = φ(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh),   φ = tanh or relu
    J_t = ∂h_t/∂h_{t-1} = diag(φ'(a_t)) W_hh          (tanh: φ' = 1 − h_t², relu: 1[a_t > 0])

γ = max |φ'| = 1 for both (Pascanu et al. 2013, Sec. 2.1). State s = h, size H.
"""

from __future__ import annotations

import torch

from rnngrad.cells import SPECS, gate_blocks
from rnngrad.cells.base import CellWeights, row_scaled


def output(state: torch.Tensor, hidden_size: int) -> torch.Tensor:
    return state


def step(w: CellWeights, drive: torch.Tensor, state: torch.Tensor, nonlinearity: str):
    """One step from the input drive (B, H) and state (B, H); returns (new state, cache)."""
    a = drive + w.recurrent_drive(state)
    if nonlinearity == "relu":
        h = torch.relu(a)
        slope = (a > 0).to(a.dtype)
    else:
        h = torch.tanh(a)
        slope = 1 - h * h
    return h, slope


def jacobian(w: CellWeights, cache: torch.Tensor, nonlinearity: str,
             out: torch.Tensor | None = None) -> torch.Tensor:
    """diag(φ'(a_t)) W_hh, shape (B, H, H) (written into ``out`` when given)."""
    return row_scaled(cache, w.weight_hh, out=out)


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


def recurrent_blocks(w: CellWeights) -> dict[str, torch.Tensor]:
    return gate_blocks(SPECS["rnn"], w.weight_hh, w.weight_hr)
