"""Independent reference numbers: PyTorch's own nn.RNN/LSTM/GRU through torch.func.jacrev.

Nothing here imports rnngrad's cells or Jacobian code. For layer k and a direction of a stacked
module, the layer's input sequence comes from running PyTorch's own stack of the layers below;
the layer's lag-ℓ Jacobian is then the jacrev of the single-layer PyTorch module run from the
state at T−ℓ over the last ℓ inputs (its diagonal block of the whole stack's Jacobian).
"""

from __future__ import annotations

import torch
from torch.func import jacrev


def single_layer(module: torch.nn.Module, layer: int, reverse: bool) -> torch.nn.Module:
    """A one-layer, one-direction copy of ``module``'s layer ``layer`` (direction)."""
    suffix = f"_l{layer}{'_reverse' if reverse else ''}"
    kwargs = dict(batch_first=True, bias=module.bias)
    if isinstance(module, torch.nn.RNN):
        kwargs["nonlinearity"] = module.nonlinearity
    if isinstance(module, torch.nn.LSTM) and module.proj_size:
        kwargs["proj_size"] = module.proj_size
    width = getattr(module, f"weight_ih{suffix}").shape[1]
    copy = type(module)(width, module.hidden_size, **kwargs).to(torch.float64)
    with torch.no_grad():
        for name, _ in copy.named_parameters():
            getattr(copy, name).copy_(getattr(module, name.replace("_l0", suffix)))
    return copy


def layer_inputs(module: torch.nn.Module, x: torch.Tensor, layer: int) -> torch.Tensor:
    """The input sequence of ``layer`` (B, T, ·): PyTorch's own stack of the layers below."""
    if layer == 0:
        return x
    kwargs = dict(batch_first=True, bias=module.bias, bidirectional=module.bidirectional,
                  num_layers=layer)
    if isinstance(module, torch.nn.RNN):
        kwargs["nonlinearity"] = module.nonlinearity
    if isinstance(module, torch.nn.LSTM) and module.proj_size:
        kwargs["proj_size"] = module.proj_size
    below = type(module)(module.input_size, module.hidden_size, **kwargs).to(torch.float64)
    with torch.no_grad():
        for name, _ in below.named_parameters():
            getattr(below, name).copy_(getattr(module, name))
        return below(x)[0]


def state_size(layer: torch.nn.Module) -> int:
    if isinstance(layer, torch.nn.LSTM):
        return (layer.proj_size or layer.hidden_size) + layer.hidden_size
    return layer.hidden_size


def run_from(layer: torch.nn.Module, x: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
    """Final state s_T (flat, h first) of a one-layer module over x (1, ℓ, I) from ``state``."""
    if isinstance(layer, torch.nn.LSTM):
        out = layer.proj_size or layer.hidden_size
        _, (h, c) = layer(x, (state[:out].view(1, 1, -1), state[out:].view(1, 1, -1)))
        return torch.cat([h.flatten(), c.flatten()])
    _, h = layer(x, state.view(1, 1, -1))
    return h.flatten()


def state_at(layer: torch.nn.Module, x: torch.Tensor, steps: int) -> torch.Tensor:
    """The state after the first ``steps`` inputs of x (1, T, I), from zero."""
    zero = torch.zeros(state_size(layer), dtype=torch.float64)
    return zero if steps == 0 else run_from(layer, x[:, :steps], zero)


def lag_jacobian(module: torch.nn.Module, x: torch.Tensor, *, layer: int = 0,
                 reverse: bool = False, lag: int) -> torch.Tensor:
    """∂s_T/∂s_(T−lag) of one layer and direction for one sequence x (1, T, I)."""
    one = single_layer(module, layer, reverse)
    seq = layer_inputs(module, x, layer)
    if reverse:
        seq = seq.flip(1)
    steps = seq.shape[1]
    start = state_at(one, seq, steps - lag).detach()
    return jacrev(lambda s: run_from(one, seq[:, steps - lag:], s))(start)


def spectral_norm(matrix: torch.Tensor) -> float:
    return float(torch.linalg.matrix_norm(matrix.detach(), ord=2))


def lag_norms(module: torch.nn.Module, x, *, layer: int, reverse: bool, lag: int) -> list[float]:
    """‖∂s_T/∂s_(T−lag)‖₂ of one layer and direction for each sequence of x (B, T, I)."""
    inputs = torch.as_tensor(x)
    return [spectral_norm(lag_jacobian(module, inputs[b:b + 1], layer=layer, reverse=reverse,
                                       lag=lag)) for b in range(inputs.shape[0])]


def mean_field_lambda_1(gain: float, nodes: int = 201) -> tuple[float, float]:
    """Discrete-time mean-field theory of x_(t+1) = tanh(g W x_t), W_ij ~ N(0, 1/N), N → ∞.

    The pre-activations a = g W x are Gaussian with variance q, mapped by
    q_(t+1) = g² ∫ tanh²(√q_t z) Dz to the fixed point q*; a perturbation δx is multiplied by
    diag(sech²(a)) g W, whose squared norm gain is g² ∫ sech⁴(√q* z) Dz on average, so
    λ_1 = ½ ln(g² ∫ sech⁴(√q* z) Dz) (= ln g for g ≤ 1, where q* = 0). Gauss–Hermite
    quadrature (probabilists'), fixed-point iteration. Returns (q*, λ_1).
    """
    import numpy as np
    from numpy.polynomial.hermite_e import hermegauss

    z, weights = hermegauss(nodes)
    weights = weights / weights.sum()
    q = 1.0
    for _ in range(20000):
        new = gain * gain * float(np.sum(weights * np.tanh(np.sqrt(q) * z) ** 2))
        if abs(new - q) < 1e-15:
            break
        q = new
    sech4 = float(np.sum(weights / np.cosh(np.sqrt(q) * z) ** 4))
    return q, float(0.5 * np.log(gain * gain * sech4))
