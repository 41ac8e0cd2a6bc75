"""GRU with the reset gate applied *before* the recurrent matmul (``gru_reset_before``).

Keras ``GRU(reset_after=False)`` (the Keras 2 default before 2.3; Cho et al. 2014) and ONNX
``GRU`` with ``linear_before_reset = 0`` (the operator's default). Stored like PyTorch's GRU:
``weight_hh`` = [W_hr; W_hz; W_hn] (3H × H), gate order r, z, n.

    r = σ(W_ir x + b_ir + W_hr h + b_hr),  z = σ(W_iz x + b_iz + W_hz h + b_hz)
    n = φ(W_in x + b_in + W_hn (r ⊙ h) + b_hn),  h' = (1 − z) ⊙ n + z ⊙ h

σ = sigmoid and φ = tanh unless the file names others (``nonlinearity`` ``"σ/φ"``, as for
:mod:`rnngrad.cells.gru`).

(PyTorch's GRU has r ⊙ (W_hn h + b_hn) instead; that is Keras ``reset_after=True`` and ONNX
``linear_before_reset = 1``.) Step Jacobian (B, H, H):

    ∂h'/∂h = diag(z) + diag((h − n) σ'(a_z)) W_hz
             + diag((1 − z) φ'(a_n)) [W_hn diag(r) + W_hn diag(h σ'(a_r)) W_hr]
"""

from __future__ import annotations

import torch

from rnngrad.cells.activations import gated, value_and_slope
from rnngrad.cells.base import CellWeights, row_scaled, times
# Same gates, state and stored blocks as PyTorch's GRU; only the step differs.
from rnngrad.cells.gru import output

__all__ = ["jacobian", "jacobian_product", "output", "step"]


def _recurrent_biases(w: CellWeights):
    if w.bias_hh is None:
        return 0.0, 0.0, 0.0
    return w.bias_hh.chunk(3, dim=-1)


def step(w: CellWeights, drive: torch.Tensor, state: torch.Tensor, nonlinearity: str):
    """One step from the input drive (B, 3H) and h (B, H), the reset gate applied to h before
    W_hn; returns (h', cache), the cache holding (h, r, σ'(a_r), z, σ'(a_z), n, φ'(a_n))."""
    gate, candidate = gated(nonlinearity, 2)
    i_r, i_z, i_n = drive.chunk(3, dim=-1)
    w_r, w_z, w_n = w.weight_hh.chunk(3, dim=0)
    b_r, b_z, b_n = _recurrent_biases(w)
    r, dr = value_and_slope(i_r + state @ w_r.T + b_r, gate)
    z, dz = value_and_slope(i_z + state @ w_z.T + b_z, gate)
    n, dn = value_and_slope(i_n + (r * state) @ w_n.T + b_n, candidate)
    new = (1 - z) * n + z * state
    return new, (state, r, dr, z, dz, n, dn)


def jacobian(w: CellWeights, cache, nonlinearity: str,
             out: torch.Tensor | None = None) -> torch.Tensor:
    """∂h'/∂h of the module doc (W_hn after the reset), shape (B, H, H) (into ``out`` when
    given)."""
    h, r, dr, z, dz, n, dn = cache
    w_r, w_z, w_n = w.weight_hh.chunk(3, dim=0)
    through_n = (1 - z) * dn
    d_candidate = w_n * r.unsqueeze(-2) + torch.matmul(w_n * (h * dr).unsqueeze(-2), w_r)
    jac = row_scaled((h - n) * dz, w_z) + through_n.unsqueeze(-1) * d_candidate
    return torch.add(jac, torch.diag_embed(z), out=out)


def jacobian_product(w: CellWeights, cache, nonlinearity: str,
                     vectors: torch.Tensor) -> torch.Tensor:
    """J_t V for V (B, H, K): W_hn is applied to r ⊙ V + h σ'(a_r) ⊙ (W_hr V), (B, H, K)."""
    h, r, dr, z, dz, n, dn = cache
    w_r, w_z, w_n = w.weight_hh.chunk(3, dim=0)
    through_n = (1 - z) * dn
    reset_v = r.unsqueeze(-1) * vectors + (h * dr).unsqueeze(-1) * times(w_r, vectors)
    return (z.unsqueeze(-1) * vectors + ((h - n) * dz).unsqueeze(-1) * times(w_z, vectors)
            + through_n.unsqueeze(-1) * times(w_n, reset_v))
