"""How much of the recurrent-weight gradient comes from long lags (seed eq. 3-4)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from rnngrad.cells import Recurrence
from rnngrad.cells.base import CellWeights


def replay_shares(rec: Recurrence, weights: CellWeights, inputs: torch.Tensor,
                  readout: torch.Tensor, block: slice, initial: torch.Tensor | None = None,
                  horizons: tuple[int, ...] = (10, 100)) -> dict[int, np.ndarray]:
    """Share of the W_hh gradient from terms more than k steps before T, per probe (B,).

    Eq. (3)-(4) of the seed: ∂E/∂W_hh = Σ_t δ_t h_(t−1)ᵀ with δ_t = ∂E/∂(W_hh h_(t−1) + b_hh),
    for E = uᵀ s_T. The term of step t sits at lag ℓ = T − t; its size is ‖δ_t‖·‖h_(t−1)‖.
    The share beyond k is Σ_(ℓ>k) ‖term‖ / Σ_ℓ ‖term‖ (sizes, so that terms of opposite signs
    do not hide each other). δ_t comes from autograd through a zero tap on b_hh at each step.
    The replay starts from ``initial`` (B, S), or zero.
    """
    drive = weights.input_drive(inputs).unbind(1)  # per-step views: see run_recurrence
    batch, steps = inputs.shape[:2]
    rows = weights.weight_hh.shape[0]
    bias = weights.bias_hh if weights.bias_hh is not None else inputs.new_zeros(rows)
    taps = [inputs.new_zeros(batch, rows, requires_grad=True) for _ in range(steps)]
    state = inputs.new_zeros(batch, rec.state_size) if initial is None else initial
    previous = []
    equations = rec.equations
    with torch.enable_grad():
        for t in range(steps):
            previous.append(equations.output(state, rec.hidden_size).detach())
            tapped = replace(weights, bias_hh=bias + taps[t])
            state, _ = equations.step(tapped, drive[t], state, rec.nonlinearity)
        loss = (state[:, block] @ readout).sum()
        deltas = torch.autograd.grad(loss, taps)
    sizes = torch.stack([torch.linalg.vector_norm(d, dim=-1) * torch.linalg.vector_norm(h, dim=-1)
                         for d, h in zip(deltas, previous)], dim=1)  # (B, T), step t = 1..T
    lag_of_step = torch.arange(steps - 1, -1, -1, device=sizes.device)  # ℓ = T − t
    total = sizes.sum(dim=1).clamp_min(1e-300)
    return {k: (sizes[:, lag_of_step > k].sum(dim=1) / total).cpu().numpy() for k in horizons}
