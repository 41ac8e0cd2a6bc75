"""LSTM cell (``nn.LSTM`` / ``nn.LSTMCell``); ``weight_hh`` = [W_hi; W_hf; W_hg; W_ho].

    i, f, o = σ(W_i* x + b_i* + W_h* h + b_h*),  g = φ(W_ig x + b_ig + W_hg h + b_hg)
    c' = f ⊙ c + i ⊙ g,  h̃' = o ⊙ ψ(c'),  h' = W_hr h̃' (with proj_size P) else h̃'

PyTorch's cell has σ = sigmoid and φ = ψ = tanh (``nonlinearity`` ``"sigmoid/tanh"``). A Keras
or ONNX file may name others (:mod:`rnngrad.cells.activations`): ``"σ/φ"`` (Keras'
``recurrent_activation`` and ``activation``, ψ = φ) or ``"σ/φ/ψ"`` (ONNX's f, g, h).

The recurrent state is s = [h; c], h first: size P + H (2H without projection). Its step
Jacobian (B, P+H, P+H) has the blocks

    ∂c'/∂h = diag(c σ'(a_f)) W_hf + diag(g σ'(a_i)) W_hi + diag(i φ'(a_g)) W_hg,  ∂c'/∂c = diag(f)
    ∂h̃'/∂· = diag(ψ(c') σ'(a_o)) [W_ho, 0] + diag(o ψ'(c')) ∂c'/∂·
    ∂h'/∂· = W_hr ∂h̃'/∂·   (projection only)

With projection the gate blocks of ``weight_hh`` are H × P; their spectra are taken of the
square H × H maps W_h* W_hr (h̃ at t−1 to the gate's pre-activation at t).
"""

from __future__ import annotations

import torch

from rnngrad.cells.activations import gated, value_and_slope
from rnngrad.cells.base import CellWeights, row_scaled, times


def output(state: torch.Tensor, hidden_size: int) -> torch.Tensor:
    """h_t, the first P (H without projection) entries of s_t = [h; c]: (B, P); ``hidden_size``
    is H, the size of c."""
    return state[..., : state.shape[-1] - hidden_size]


def step(w: CellWeights, drive: torch.Tensor, state: torch.Tensor, nonlinearity: str):
    """One step from the input drive (B, 4H) and s = [h; c] (B, P+H); returns ([h'; c'], cache),
    the cache holding (c, i, σ'(a_i), f, σ'(a_f), g, φ'(a_g), o, σ'(a_o), ψ(c'), ψ'(c'))."""
    gate, candidate, cell_out = gated(nonlinearity, 3)
    hidden = w.weight_hh.shape[0] // 4
    h, c = state[..., :-hidden], state[..., -hidden:]
    a_i, a_f, a_g, a_o = (drive + w.recurrent_drive(h)).chunk(4, dim=-1)
    i, di = value_and_slope(a_i, gate)
    f, df = value_and_slope(a_f, gate)
    o, do = value_and_slope(a_o, gate)
    g, dg = value_and_slope(a_g, candidate)
    c_new = f * c + i * g
    act_c, dact_c = value_and_slope(c_new, cell_out)
    h_new = o * act_c
    if w.weight_hr is not None:
        h_new = h_new @ w.weight_hr.T
    return torch.cat([h_new, c_new], dim=-1), (c, i, di, f, df, g, dg, o, do, act_c, dact_c)


def jacobian(w: CellWeights, cache, nonlinearity: str,
             out: torch.Tensor | None = None) -> torch.Tensor:
    """∂[h'; c']/∂[h; c] with the blocks of the module doc, shape (B, P+H, P+H) (into ``out``
    when given)."""
    c, i, di, f, df, g, dg, o, do, act_c, dact_c = cache
    w_i, w_f, w_g, w_o = w.weight_hh.chunk(4, dim=0)
    dc_dh = row_scaled(c * df, w_f) + row_scaled(g * di, w_i) + row_scaled(i * dg, w_g)
    dc_dc = torch.diag_embed(f)
    out_slope = o * dact_c
    dh_dh = row_scaled(act_c * do, w_o) + out_slope.unsqueeze(-1) * dc_dh
    dh_dc = torch.diag_embed(out_slope * f)
    if w.weight_hr is not None:
        dh_dh = w.weight_hr @ dh_dh
        dh_dc = w.weight_hr @ dh_dc
    top = torch.cat([dh_dh, dh_dc], dim=-1)
    bottom = torch.cat([dc_dh, dc_dc], dim=-1)
    return torch.cat([top, bottom], dim=-2, out=out)


def jacobian_product(w: CellWeights, cache, nonlinearity: str,
                     vectors: torch.Tensor) -> torch.Tensor:
    """J_t V for V = [V_h; V_c] (B, P+H, K), the blocks of :func:`jacobian` applied to V:

        c-rows:  (∂c'/∂h) V_h + f ⊙ V_c
        h̃-rows: ψ(c') σ'(a_o) ⊙ (W_ho V_h) + o ψ'(c') ⊙ (c-rows)   (ψ = tanh by default)
        h-rows:  W_hr (h̃-rows) with projection, else the h̃-rows
    """
    c, i, di, f, df, g, dg, o, do, act_c, dact_c = cache
    hidden = c.shape[-1]
    v_h, v_c = vectors[:, :-hidden], vectors[:, -hidden:]
    w_i, w_f, w_g, w_o = times(w.weight_hh, v_h).chunk(4, dim=1)
    dc = ((c * df).unsqueeze(-1) * w_f + (g * di).unsqueeze(-1) * w_i
          + (i * dg).unsqueeze(-1) * w_g + f.unsqueeze(-1) * v_c)
    dh = (act_c * do).unsqueeze(-1) * w_o + (o * dact_c).unsqueeze(-1) * dc
    if w.weight_hr is not None:
        dh = times(w.weight_hr, dh)
    return torch.cat([dh, dc], dim=1)
