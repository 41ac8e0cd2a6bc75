"""The step Jacobian at rest: ∂s_t/∂s_(t−1) at s = 0, x = 0 (biases included).

One implementation per cell kind, used by ``spectrum`` (its spectral radius decides
``rest-unstable``) and by ``bptt`` (the exploding directions are compared with its leading
eigenvectors for gated and rate cells):

- Elman with tanh, relu, sigmoid or identity: diag(φ'(b_ih + b_hh)) W_hh in closed form,
  with φ' as the cell's step takes it (tanh: 1 − tanh², relu: 1[a > 0], sigmoid: σ(1 − σ),
  identity: 1); NumPy only, so ``spectrum`` of such a file never imports torch (tests check it
  against the cell's torch equations). Other nonlinearities (Keras and ONNX files can name
  softsign, elu, ...) go through the cell's equations, like gated cells;
- leaky rate cells: the *effective* matrix (1 − α)I + α φ'(0) W (:func:`effective_matrix`),
  with relu's slope at 0 taken as that of an active unit, 1: with autograd's slope 0 it would
  be (1 − α)I for every network;
- gated cells (GRU, LSTM): one step of the cell's own torch equations from s = 0 and its
  ``jacobian``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from rnngrad.cells import Recurrence

if TYPE_CHECKING:
    from rnngrad.cells.base import CellWeights
    from rnngrad.io import WeightBundle

# φ'(a) of the Elman nonlinearities the closed form knows, on NumPy arrays.
ELMAN_SLOPES = {
    "tanh": lambda a: 1 - np.tanh(a) ** 2,
    "relu": lambda a: (a > 0).astype(np.float64),
    "sigmoid": lambda a: (s := 0.5 * (1 + np.tanh(a / 2))) * (1 - s),  # no overflow in exp
    "identity": np.ones_like,
}
# φ'(0) of the leaky cell's rate nonlinearities (relu: the active slope, module doc).
REST_SLOPE = {"tanh": 1.0, "relu": 1.0, "sigmoid": 0.25, "identity": 1.0}


def has_closed_form(rec: Recurrence) -> bool:
    """Whether the rest Jacobian of ``rec`` comes from NumPy alone (module doc)."""
    return rec.cell == "leaky" or rec.cell == "rnn" and rec.nonlinearity in ELMAN_SLOPES


def effective_matrix(weight_hh: np.ndarray, alpha: float, nonlinearity: str) -> np.ndarray:
    """(1 − α) I + α φ'(0) W: the leaky cell's step Jacobian at rest (x = 0)."""
    size = weight_hh.shape[0]
    return (1 - alpha) * np.eye(size) + alpha * REST_SLOPE[nonlinearity] * weight_hh


def rest_jacobian(rec: Recurrence, weights: CellWeights) -> np.ndarray:
    """The (S, S) step Jacobian at rest as float64 on the CPU, whatever ``weights`` hold."""
    arrays = {name: None if value is None else value.detach().double().cpu().numpy()
              for name, value in vars(weights).items()}
    if has_closed_form(rec):
        return closed_form_rest_jacobian(rec, arrays["weight_hh"], arrays["bias_ih"],
                                         arrays["bias_hh"])
    return equations_rest_jacobian(rec, weights)


def rest_jacobian_of(rec: Recurrence, bundle: WeightBundle) -> np.ndarray:
    """The step Jacobian at rest from a bundle's arrays: without torch where
    :func:`has_closed_form`, through the cell's equations (and torch) otherwise."""
    if has_closed_form(rec):
        bias_ih, bias_hh = (bundle.array(name) if name else None
                            for name in (rec.bias_ih, rec.bias_hh))
        return closed_form_rest_jacobian(rec, bundle.array(rec.weight_hh), bias_ih, bias_hh)
    from rnngrad.cells.base import cell_weights

    return equations_rest_jacobian(rec, cell_weights(bundle, rec))


def closed_form_rest_jacobian(rec: Recurrence, weight_hh: np.ndarray, bias_ih: Any,
                              bias_hh: Any) -> np.ndarray:
    """Elman: diag(φ'(b_ih + b_hh)) W_hh; leaky: (1 − α)I + α φ'(0) W (float64 arrays)."""
    weight_hh = np.asarray(weight_hh, dtype=np.float64)
    if rec.cell == "leaky":
        return effective_matrix(weight_hh, 1.0 if rec.leak is None else rec.leak,
                                rec.nonlinearity)
    drive = np.zeros(weight_hh.shape[0])
    if bias_ih is not None:
        drive = drive + bias_ih
    if bias_hh is not None:  # the order of the cell's step: b_ih + (W_hh·0 + b_hh)
        drive = drive + bias_hh
    return ELMAN_SLOPES[rec.nonlinearity](drive)[:, None] * weight_hh


def equations_rest_jacobian(rec: Recurrence, weights: CellWeights) -> np.ndarray:
    """One step of the cell's torch equations from s = 0, x = 0, and its Jacobian there."""
    import torch

    from rnngrad.cells.base import CellWeights

    cpu = CellWeights(**{name: None if value is None else value.detach().double().cpu()
                         for name, value in vars(weights).items()})
    state = cpu.weight_hh.new_zeros(1, rec.state_size)
    equations = rec.equations
    with torch.no_grad():
        _, cache = equations.step(cpu, cpu.rest_drive(), state, rec.nonlinearity)
        return equations.jacobian(cpu, cache, rec.nonlinearity)[0].numpy()
