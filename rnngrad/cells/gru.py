"""GRU cell (``nn.GRU`` / ``nn.GRUCell``); ``weight_hh`` = [W_hr; W_hz; W_hn] (3H × H).

    r = σ(W_ir x + b_ir + W_hr h + b_hr),  z = σ(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)),  h' = (1 − z) ⊙ n + z ⊙ h

Step Jacobian (B, H, H):

    ∂h'/∂h = diag(z) + diag((h − n) σ'(a_z)) W_hz
             + diag((1 − z)(1 − n²)) [diag(r) W_hn + diag((W_hn h + b_hn) σ'(a_r)) W_hr]

γ of the candidate tanh is 1; the gates make the W_hh blocks a weak guide (docs/theory.md, "Bounds").
"""

from __future__ import annotations

import torch

from rnngrad.cells import SPECS, gate_blocks
from rnngrad.cells.base import CellWeights, row_scaled, sigmoid_slope


def output(state: torch.Tensor, hidden_size: int) -> torch.Tensor:
    return state


def step(w: CellWeights, drive: torch.Tensor, state: torch.Tensor, nonlinearity: str):
    i_r, i_z, i_n = drive.chunk(3, dim=-1)
    h_r, h_z, h_n = w.recurrent_drive(state).chunk(3, dim=-1)
    r, dr = sigmoid_slope(i_r + h_r)
    z, dz = sigmoid_slope(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    new = (1 - z) * n + z * state
    return new, (state, r, dr, z, dz, n, h_n)


def jacobian(w: CellWeights, cache, nonlinearity: str,
             out: torch.Tensor | None = None) -> torch.Tensor:
    h, r, dr, z, dz, n, h_n = cache
    w_r, w_z, w_n = w.weight_hh.chunk(3, dim=0)
    through_n = (1 - z) * (1 - n * n)
    jac = (row_scaled((h - n) * dz, w_z) + row_scaled(through_n * r, w_n)
           + row_scaled(through_n * h_n * dr, w_r))
    return torch.add(jac, torch.diag_embed(z), out=out)


def recurrent_blocks(w: CellWeights) -> dict[str, torch.Tensor]:
    return gate_blocks(SPECS["gru"], w.weight_hh, w.weight_hr)
