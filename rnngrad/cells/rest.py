"""The step Jacobian at rest: ∂s_t/∂s_(t−1) at s = 0, x = 0 (biases included).

One implementation for every cell, used by ``spectrum`` (its spectral radius decides
``rest-unstable``) and by ``bptt`` (the exploding directions are compared with its leading
eigenvectors for gated and rate cells).

For the leaky rate cell the matrix is the *effective* matrix (1 − α)I + α φ'(0) W, with relu's
slope at 0 taken as that of an active unit, 1 (:mod:`rnngrad.cells.leaky`): with autograd's
slope 0 it would be (1 − α)I for every network.
"""

from __future__ import annotations

import numpy as np
import torch

from rnngrad.cells import Recurrence
from rnngrad.cells.base import CellWeights
from rnngrad.cells.leaky import effective_matrix


def rest_jacobian(rec: Recurrence, weights: CellWeights) -> np.ndarray:
    """The (S, S) step Jacobian at rest as float64 on the CPU, whatever ``weights`` hold."""
    cpu = CellWeights(**{name: None if value is None else value.detach().double().cpu()
                         for name, value in vars(weights).items()})
    if rec.cell == "leaky":
        alpha = 1.0 if rec.leak is None else rec.leak
        return effective_matrix(cpu.weight_hh.numpy(), alpha, rec.nonlinearity)
    state = cpu.weight_hh.new_zeros(1, rec.state_size)
    equations = rec.equations
    with torch.no_grad():
        _, cache = equations.step(cpu, cpu.rest_drive(), state, rec.nonlinearity)
        return equations.jacobian(cpu, cache, rec.nonlinearity)[0].numpy()
