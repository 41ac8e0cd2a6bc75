"""Independent references for ``rnngrad surface``: E(θ) through PyTorch's own nn.RNN/LSTM/GRU +
nn.Linear (``torch.func.functional_call``), its gradient by autograd and its dense Hessian by
``torch.autograd.functional.hessian``; and the single sigmoid unit by hand.

Nothing here imports rnngrad. What it shares with rnngrad is only the documented convention:
E = mean over probes b of the loss of the top output at the last step; the readout u_b of
probe b is the unit vector of ``numpy.random.default_rng([seed, 11, b]).standard_normal(W)``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.func import functional_call


class Model(torch.nn.Module):
    """A recurrent module under ``rnn`` (keys ``rnn.weight_hh_l0``, ...) and an optional
    ``head`` Linear, as users save them."""

    def __init__(self, rnn: torch.nn.Module, head: torch.nn.Module | None = None) -> None:
        super().__init__()
        self.rnn = rnn
        if head is not None:
            self.head = head


def readouts(batch: int, width: int, seed: int) -> torch.Tensor:
    rows = []
    for index in range(batch):
        u = np.random.default_rng([seed, 11, index]).standard_normal(width)
        rows.append(u / np.linalg.norm(u))
    return torch.as_tensor(np.stack(rows))


def loss_function(model: Model, names: list[str], x: torch.Tensor, loss: str,
                  targets: torch.Tensor | None = None, seed: int = 0, h0=None):
    """E(θ) for θ = the flat concatenation of the tensors ``names`` (others fixed)."""
    params = {name: value.detach().double() for name, value in model.state_dict().items()}
    shapes = [params[name].shape for name in names]
    sizes = [params[name].numel() for name in names]
    rnn_keys = {k for k in params if k.startswith("rnn.")}

    def energy(theta: torch.Tensor) -> torch.Tensor:
        current = dict(params)
        for name, piece, shape in zip(names, theta.split(sizes), shapes):
            current[name] = piece.reshape(shape)
        rnn_params = {k[4:]: v for k, v in current.items() if k in rnn_keys}
        args = (x,) if h0 is None else (x, h0)
        out = functional_call(model.rnn, rnn_params, args)[0][:, -1]
        if loss == "readout":
            return (out * readouts(out.shape[0], out.shape[1], seed)).sum(-1).mean()
        logits = out @ current["head.weight"].T + current["head.bias"]
        if loss == "mse":
            return (0.5 * ((logits - targets) ** 2).sum(-1)).mean()
        return torch.nn.functional.cross_entropy(logits, targets, reduction="mean")

    theta = torch.cat([params[name].reshape(-1) for name in names])
    return energy, theta


def gradient(energy, theta: torch.Tensor) -> torch.Tensor:
    leaf = theta.clone().requires_grad_(True)
    return torch.autograd.grad(energy(leaf), leaf)[0]


def dense_hessian(energy, theta: torch.Tensor) -> torch.Tensor:
    return torch.autograd.functional.hessian(energy, theta)


def hessian_figures(energy, theta: torch.Tensor) -> dict[str, float]:
    """λ_max, λ_min, λ_1 (largest |λ|), ĝᵀHĝ and |cos(g, u_1)| from the dense Hessian."""
    hessian = dense_hessian(energy, theta)
    values, vectors = torch.linalg.eigh(hessian)
    g = gradient(energy, theta)
    unit = g / g.norm()
    top = int(torch.argmax(values.abs()))
    return {"largest": float(values[-1]), "smallest": float(values[0]),
            "top": float(values[top]), "along": float(unit @ hessian @ unit),
            "cos": abs(float(unit @ vectors[:, top])), "gradient_norm": float(g.norm())}


# --- the single sigmoid unit x_t = w σ(x_(t−1)) + b, by hand ----------------------------------


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def unit_derivatives(w: float, b: float, x0: float, steps: int, target: float):
    """E = (σ(x_T) − target)², its gradient (2,) and Hessian (2, 2) in (w, b), by carrying
    x and its first and second derivatives forward (forward mode, plain floats)."""
    x, dx, ddx = x0, np.zeros(2), np.zeros((2, 2))
    for _ in range(steps):
        s = sigmoid(x)
        s1 = s * (1 - s)
        s2 = s1 * (1 - 2 * s)
        # x' = w σ(x) + b: d/dθ and d²/dθ² by the chain rule, θ = (w, b)
        unit_w = np.array([1.0, 0.0])
        new_dx = unit_w * s + w * s1 * dx + np.array([0.0, 1.0])
        new_ddx = (np.outer(unit_w, s1 * dx) + np.outer(s1 * dx, unit_w)
                   + w * (s2 * np.outer(dx, dx) + s1 * ddx))
        x, dx, ddx = w * s + b, new_dx, new_ddx
    s = sigmoid(x)
    s1 = s * (1 - s)
    s2 = s1 * (1 - 2 * s)
    r = s - target
    e = r * r
    # E = r², r = σ(x): dE = 2 r σ' dx, d²E = 2(σ' dx)(σ' dx)ᵀ + 2 r (σ'' dx dxᵀ + σ' ddx)
    grad = 2 * r * s1 * dx
    hess = 2 * np.outer(s1 * dx, s1 * dx) + 2 * r * (s2 * np.outer(dx, dx) + s1 * ddx)
    return e, grad, hess, x


def unit_loss(w: float, b: float, x0: float, steps: int, target: float) -> float:
    x = x0
    for _ in range(steps):
        x = w * sigmoid(x) + b
    return (sigmoid(x) - target) ** 2


def saddle_nodes(w: float) -> tuple[float, float]:
    """The b where x = wσ(x) + b gains or loses a pair of fixed points: also wσ'(x) = 1, so
    σ(x) = (1 ± √(1 − 4/w))/2 and b = x − wσ(x) (real for w > 4)."""
    root = math.sqrt(1 - 4 / w)
    out = []
    for s in ((1 - root) / 2, (1 + root) / 2):
        x = math.log(s / (1 - s))
        out.append(x - w * s)
    return min(out), max(out)


def fixed_points(w: float, b: float, low: float = -20.0, high: float = 20.0) -> list[float]:
    """Every root of x − wσ(x) − b in [low, high], by sign changes and bisection."""
    xs = np.linspace(low, high, 40001)
    f = xs - w / (1 + np.exp(-xs)) - b
    roots = []
    for i in np.flatnonzero(np.sign(f[:-1]) != np.sign(f[1:])):
        a, c = xs[i], xs[i + 1]
        for _ in range(80):
            m = 0.5 * (a + c)
            if (m - w * sigmoid(m) - b) * (a - w * sigmoid(a) - b) <= 0:
                c = m
            else:
                a = m
        roots.append(0.5 * (a + c))
    return roots
