"""Pascanu's vanishing-gradient regulariser Ω as a term to add to the loss.

Pascanu, Mikolov & Bengio (2013), Sec. 3.3, eq. 9: for a recurrence with states s_1..s_T and
the training loss E,

    Ω = Σ_k ( ‖δ_(k+1) ∂s_(k+1)/∂s_k‖ / ‖δ_(k+1)‖ − 1 )²,      δ_k = ∂E/∂s_k,

how far each backward step is from preserving the norm of the error signal. As in the paper,
the δ's are held constant when Ω is differentiated (they are computed by autograd, then
detached): the gradient of Ω moves the step Jacobians ∂s_(k+1)/∂s_k (through the weights and
the states) towards norm preservation along the error signal, without differentiating E twice.

:func:`omega` runs the module's recurrences with rnngrad's cell equations on the module's own
parameters (so Ω is differentiable with respect to them), over every layer and direction (an
LSTM's state is [h; c]); terms with δ_(k+1) = 0 are left out; Ω is summed over steps and
recurrences and averaged over the batch. k runs over 0..T−1 (s_0 is the zero initial state).
"""

from __future__ import annotations

import weakref
from typing import Callable

import torch

from rnngrad.cells.base import CellWeights
from rnngrad.cells.stack import group_recurrences, run_stack
from rnngrad.conventions.understand import understand
from rnngrad.errors import OptionError


def omega(module: torch.nn.Module, inputs: torch.Tensor,
          loss_fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Ω of ``module`` (an ``nn.RNN``/``nn.LSTM``/``nn.GRU``) on a batch.

    ``inputs``: the batch in the module's own layout ((B, T, I) with ``batch_first``, else
    (T, B, I)); ``loss_fn(outputs)``: the training loss from the module's output sequence in
    the same layout (e.g. ``lambda out: mse(head(out[:, -1]), y)``). Returns a scalar tensor
    differentiable with respect to the module's parameters; add ``λ · omega(...)`` to the loss.
    """
    batch_first = bool(getattr(module, "batch_first", False))
    sequence = inputs if batch_first else inputs.transpose(0, 1)
    layers = _live_layers(module)
    traces, output = run_stack(layers, sequence.to(_dtype(module)))
    loss = loss_fn(output if batch_first else output.transpose(0, 1))
    states = [state for trace, _ in traces.values() for state in trace.states]
    deltas = torch.autograd.grad(loss, states, retain_graph=True, allow_unused=True)
    by_state = {id(state): delta for state, delta in zip(states, deltas)}
    total = sequence.new_zeros(())
    for rec, weights in (pair for layer in layers for pair in layer):
        trace, _ = traces[rec]
        total = total + _recurrence_omega(rec, weights, trace, by_state)
    return total / sequence.shape[0]


def _recurrence_omega(rec, weights: CellWeights, trace, by_state: dict) -> torch.Tensor:
    """Σ_k (‖δ_(k+1) J_(k+1)‖/‖δ_(k+1)‖ − 1)² over the steps of one recurrence, summed over the
    batch; J_(k+1) from the cell's explicit step Jacobian, δ held constant."""
    equations = rec.equations
    total = trace.outputs.new_zeros(())
    for k, state in enumerate(trace.states):  # s_(k+1), J_(k+1) = ∂s_(k+1)/∂s_k, k = 0..T−1
        delta = by_state.get(id(state))
        if delta is None:
            continue
        delta = delta.detach()
        size = torch.linalg.vector_norm(delta, dim=-1)
        keep = size > 0
        if not bool(keep.any()):
            continue
        jac = equations.jacobian(weights, trace.caches[k], rec.nonlinearity)
        carried = torch.linalg.vector_norm(torch.bmm(delta[:, None, :], jac)[:, 0], dim=-1)
        total = total + ((carried[keep] / size[keep] - 1) ** 2).sum()
    return total


_GROUPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _live_layers(module: torch.nn.Module):
    """The module's recurrences as (recurrence, weights) by layer, the weights being the
    module's own parameters (not copies), so gradients reach them. What the recurrences are is
    found once per module (reading it hashes every weight)."""
    if module not in _GROUPS:
        _GROUPS[module] = group_recurrences(understand(module).recurrences)
    groups = _GROUPS[module]
    params = dict(module.named_parameters())
    if len(groups) != 1:
        raise OptionError(f"omega() takes one nn.RNN/nn.LSTM/nn.GRU, got {len(groups)} "
                          "recurrent modules", "call it on each recurrent module")
    dtype = _dtype(module)

    def live(name: str | None) -> torch.Tensor | None:
        return None if name is None else params[name].to(dtype)

    return [[(rec, CellWeights(weight_hh=live(rec.weight_hh), weight_ih=live(rec.weight_ih),
                               bias_ih=live(rec.bias_ih), bias_hh=live(rec.bias_hh),
                               weight_hr=live(rec.weight_hr))) for rec in layer]
            for layer in groups[0].layers]


def _dtype(module: torch.nn.Module) -> torch.dtype:
    return next(module.parameters()).dtype
