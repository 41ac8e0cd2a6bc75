"""GRU cell (``nn.GRU`` / ``nn.GRUCell``); ``weight_hh`` = [W_hr; W_hz; W_hn] (3H × H).

    r = σ(W_ir x + b_ir + W_hr h + b_hr),  z = σ(W_iz x + b_iz + W_hz h + b_hz)
    n = φ(W_in x + b_in + r ⊙ (W_hn h + b_hn)),  h' = (1 − z) ⊙ n + z ⊙ h

PyTorch's cell has σ = sigmoid, φ = tanh (``nonlinearity`` ``"sigmoid/tanh"``); a Keras or ONNX
file may name others as ``"σ/φ"`` (:mod:`rnngrad.cells.activations`). Step Jacobian (B, H, H):

    ∂h'/∂h = diag(z) + diag((h − n) σ'(a_z)) W_hz
             + diag((1 − z) φ'(a_n)) [diag(r) W_hn + diag((W_hn h + b_hn) σ'(a_r)) W_hr]

γ of the candidate tanh is 1; the gates make the W_hh blocks a weak guide (docs/theory.md, "Bounds").
"""

from __future__ import annotations

import torch

from rnngrad.cells.activations import gated, value_and_slope
from rnngrad.cells.base import CellWeights, row_scaled, times


def output(state: torch.Tensor, hidden_size: int) -> torch.Tensor:
    """The layer's output h_t: the state itself, (B, H)."""
    return state


def step(w: CellWeights, drive: torch.Tensor, state: torch.Tensor, nonlinearity: str):
    """One step from the input drive (B, 3H) and h (B, H); returns (h', cache), the cache
    holding (h, r, σ'(a_r), z, σ'(a_z), n, φ'(a_n), W_hn h + b_hn)."""
    gate, candidate = gated(nonlinearity, 2)
    i_r, i_z, i_n = drive.chunk(3, dim=-1)
    h_r, h_z, h_n = w.recurrent_drive(state).chunk(3, dim=-1)
    r, dr = value_and_slope(i_r + h_r, gate)
    z, dz = value_and_slope(i_z + h_z, gate)
    n, dn = value_and_slope(i_n + r * h_n, candidate)
    new = (1 - z) * n + z * state
    return new, (state, r, dr, z, dz, n, dn, h_n)


def jacobian(w: CellWeights, cache, nonlinearity: str,
             out: torch.Tensor | None = None) -> torch.Tensor:
    """∂h'/∂h of the module doc, shape (B, H, H) (written into ``out`` when given)."""
    h, r, dr, z, dz, n, dn, h_n = cache
    w_r, w_z, w_n = w.weight_hh.chunk(3, dim=0)
    through_n = (1 - z) * dn
    jac = (row_scaled((h - n) * dz, w_z) + row_scaled(through_n * r, w_n)
           + row_scaled(through_n * h_n * dr, w_r))
    return torch.add(jac, torch.diag_embed(z), out=out)


def jacobian_product(w: CellWeights, cache, nonlinearity: str,
                     vectors: torch.Tensor) -> torch.Tensor:
    """J_t V for V (B, H, K), the terms of :func:`jacobian` applied to V: (B, H, K)."""
    h, r, dr, z, dz, n, dn, h_n = cache
    w_r, w_z, w_n = times(w.weight_hh, vectors).chunk(3, dim=1)
    through_n = (1 - z) * dn
    return (z.unsqueeze(-1) * vectors + ((h - n) * dz).unsqueeze(-1) * w_z
            + (through_n * r).unsqueeze(-1) * w_n + (through_n * h_n * dr).unsqueeze(-1) * w_r)
