"""Elementwise nonlinearities of the cells, each with its slope φ'(x), for steps and Jacobians.

The names are rnngrad's; the file formats' names map onto them in their readers (Keras
``linear`` is ``identity``; ONNX ``HardSigmoid`` with its default α = 0.2, β = 0.5 is
``hard_sigmoid_0.2``):

==================  ==========================================  ===================  ========
name                φ(x)                                        φ'(x)                γ
==================  ==========================================  ===================  ========
tanh                tanh x                                      1 − φ²               1
sigmoid             1 / (1 + e^−x)                              φ (1 − φ)            1/4
relu                max(x, 0)                                   1[x > 0]             1
identity            x                                           1                    1
hard_sigmoid        clip(x/6 + 1/2, 0, 1)  (Keras 3, PyTorch)   1/6 on (−3, 3)       1/6
hard_sigmoid_0.2    clip(0.2 x + 0.5, 0, 1)  (Keras ≤ 2, ONNX)   0.2 on (−2.5, 2.5)   0.2
softsign            x / (1 + |x|)                               1 / (1 + |x|)²       1
softplus            ln(1 + e^x)                                 sigmoid(x)           1
elu                 x, or e^x − 1 for x ≤ 0                     1, or e^x            1
selu                λ x, or λ α (e^x − 1) for x ≤ 0             λ, or λ α e^x        λ α
silu (swish)        x sigmoid(x)                                σ (1 + x (1 − σ))    1.0998
relu6               clip(x, 0, 6)                               1 on (0, 6)          1
gelu                x Φ(x)  (exact, erf)                        Φ(x) + x Φ'(x)        1.1289
==================  ==========================================  ===================  ========

γ = sup |φ'| bounds a step Jacobian through φ (Pascanu et al. 2013, Sec. 2.1); its values are
in :data:`rnngrad.cells.GAMMA` (torch-free). At a kink (relu at 0, the ends of the hard
sigmoids) the slope is the one-sided value autograd takes: 0. Functions use tensor methods and
``torch.special``; this module imports torch only when a function runs.
"""

from __future__ import annotations

import math
from typing import Callable

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _tanh(x):
    t = x.tanh()
    return t, 1 - t * t


def _sigmoid(x):
    s = x.sigmoid()
    return s, s * (1 - s)


def _relu(x):
    return x.relu(), (x > 0).to(x.dtype)


def _identity(x):
    return x, x.new_ones(x.shape)


def _hard(x, slope: float):
    """clip(slope·x + 1/2, 0, 1) and its slope (0 outside the linear part)."""
    y = slope * x + 0.5
    inside = ((y > 0) & (y < 1)).to(x.dtype)
    return y.clamp(0, 1), slope * inside


def _softsign(x):
    denominator = 1 + x.abs()
    return x / denominator, 1 / (denominator * denominator)


def _softplus(x):
    import torch.nn.functional as F

    return F.softplus(x), x.sigmoid()


def _elu(x):
    negative = x.clamp(max=0).exp()
    positive = (x > 0).to(x.dtype)
    return x.clamp(min=0) + (negative - 1), positive + (1 - positive) * negative


def _selu(x):
    negative = x.clamp(max=0).exp()
    positive = (x > 0).to(x.dtype)
    value = SELU_SCALE * (x.clamp(min=0) + SELU_ALPHA * (negative - 1))
    return value, SELU_SCALE * (positive + (1 - positive) * SELU_ALPHA * negative)


def _silu(x):
    s = x.sigmoid()
    return x * s, s * (1 + x * (1 - s))


def _relu6(x):
    return x.clamp(0, 6), ((x > 0) & (x < 6)).to(x.dtype)


def _gelu(x):
    import torch

    cdf = 0.5 * (1 + torch.special.erf(x / math.sqrt(2)))
    density = (-0.5 * x * x).exp() / math.sqrt(2 * math.pi)
    return x * cdf, cdf + x * density


FUNCTIONS: dict[str, Callable] = {
    "tanh": _tanh, "sigmoid": _sigmoid, "relu": _relu, "identity": _identity,
    "hard_sigmoid": lambda x: _hard(x, 1 / 6), "hard_sigmoid_0.2": lambda x: _hard(x, 0.2),
    "softsign": _softsign, "softplus": _softplus, "elu": _elu, "selu": _selu, "silu": _silu,
    "relu6": _relu6, "gelu": _gelu,
}


def value_and_slope(x, name: str):
    """φ(x) and φ'(x), tensors shaped like ``x``, for the nonlinearity ``name``."""
    try:
        function = FUNCTIONS[name]
    except KeyError:
        raise ValueError(f"unknown nonlinearity {name!r}") from None
    return function(x)


def gated(nonlinearity: str, parts: int) -> tuple[str, ...]:
    """The activations of a gated cell from its ``nonlinearity`` text.

    ``"gate/candidate"`` (``"sigmoid/tanh"``: PyTorch's cells) or, for an LSTM whose cell
    output uses a third function, ``"gate/candidate/output"``. Returns ``parts`` names: (gate,
    candidate) for a GRU, (gate, candidate, output) for an LSTM, the output repeating the
    candidate when not given (Keras' LSTM applies ``activation`` to both).
    """
    names = tuple(nonlinearity.split("/"))
    if len(names) == 2 and parts == 3:
        names = (*names, names[1])
    if len(names) != parts or any(name not in FUNCTIONS for name in names):
        raise ValueError(f"{nonlinearity!r} does not name {parts} activations")
    return names
