"""LSTM cell (``nn.LSTM`` / ``nn.LSTMCell``); ``weight_hh`` = [W_hi; W_hf; W_hg; W_ho].

    i, f, o = σ(W_i* x + b_i* + W_h* h + b_h*),  g = tanh(W_ig x + b_ig + W_hg h + b_hg)
    c' = f ⊙ c + i ⊙ g,  h̃' = o ⊙ tanh(c'),  h' = W_hr h̃' (with proj_size P) else h̃'

The recurrent state is s = [h; c], h first: size P + H (2H without projection). Its step
Jacobian (B, P+H, P+H) has the blocks

    ∂c'/∂h = diag(c σ'(a_f)) W_hf + diag(g σ'(a_i)) W_hi + diag(i (1 − g²)) W_hg,  ∂c'/∂c = diag(f)
    ∂h̃'/∂· = diag(tanh(c') σ'(a_o)) [W_ho, 0] + diag(o (1 − tanh² c')) ∂c'/∂·
    ∂h'/∂· = W_hr ∂h̃'/∂·   (projection only)

With projection the gate blocks of ``weight_hh`` are H × P; their spectra are taken of the
square H × H maps W_h* W_hr (h̃ at t−1 to the gate's pre-activation at t).
"""

from __future__ import annotations

import torch

from rnngrad.cells import SPECS, gate_blocks
from rnngrad.cells.base import CellWeights, row_scaled, sigmoid_slope


def output(state: torch.Tensor, hidden_size: int) -> torch.Tensor:
    return state[..., : state.shape[-1] - hidden_size]


def step(w: CellWeights, drive: torch.Tensor, state: torch.Tensor, nonlinearity: str):
    hidden = w.weight_hh.shape[0] // 4
    h, c = state[..., :-hidden], state[..., -hidden:]
    a_i, a_f, a_g, a_o = (drive + w.recurrent_drive(h)).chunk(4, dim=-1)
    i, di = sigmoid_slope(a_i)
    f, df = sigmoid_slope(a_f)
    o, do = sigmoid_slope(a_o)
    g = torch.tanh(a_g)
    c_new = f * c + i * g
    tanh_c = torch.tanh(c_new)
    h_new = o * tanh_c
    if w.weight_hr is not None:
        h_new = h_new @ w.weight_hr.T
    return torch.cat([h_new, c_new], dim=-1), (c, i, di, f, df, g, o, do, tanh_c)


def jacobian(w: CellWeights, cache, nonlinearity: str,
             out: torch.Tensor | None = None) -> torch.Tensor:
    c, i, di, f, df, g, o, do, tanh_c = cache
    w_i, w_f, w_g, w_o = w.weight_hh.chunk(4, dim=0)
    dc_dh = row_scaled(c * df, w_f) + row_scaled(g * di, w_i) + row_scaled(i * (1 - g * g), w_g)
    dc_dc = torch.diag_embed(f)
    out_slope = o * (1 - tanh_c * tanh_c)
    dh_dh = row_scaled(tanh_c * do, w_o) + out_slope.unsqueeze(-1) * dc_dh
    dh_dc = torch.diag_embed(out_slope * f)
    if w.weight_hr is not None:
        dh_dh = w.weight_hr @ dh_dh
        dh_dc = w.weight_hr @ dh_dc
    top = torch.cat([dh_dh, dh_dc], dim=-1)
    bottom = torch.cat([dc_dh, dc_dc], dim=-1)
    return torch.cat([top, bottom], dim=-2, out=out)


def recurrent_blocks(w: CellWeights) -> dict[str, torch.Tensor]:
    return gate_blocks(SPECS["lstm"], w.weight_hh, w.weight_hr)
