"""Hand-written reference cells in plain torch, in each format's *own* conventions.

Nothing here imports rnngrad. Keras cells compute x·kernel + h·recurrent_kernel + bias with
Keras' gate orders (LSTM i,f,c,o; GRU z,r,h, h' = z h + (1 − z) h̃), as Keras' LSTMCell and
GRUCell do; the rate cell is x' = (1 − α)x + α(W φ(x) + W_in u + b). ``lag_norm`` measures
‖∂s_T/∂s_(T−ℓ)‖ of any step function through ``torch.func.jacrev``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch.func import jacrev

Step = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x_t, s_(t−1)) -> s_t, flat


def _t(array) -> torch.Tensor:
    return torch.tensor(np.array(array, dtype=np.float64), dtype=torch.float64)


def hard_sigmoid_02(x: torch.Tensor) -> torch.Tensor:
    """Keras ≤ 2's and ONNX's hard sigmoid: clip(0.2 x + 0.5, 0, 1)."""
    return torch.clamp(0.2 * x + 0.5, 0.0, 1.0)


def keras_lstm(kernel, recurrent, bias=None, *, gate=torch.sigmoid, act=torch.tanh) -> Step:
    """Keras LSTMCell (``recurrent_activation`` = gate, ``activation`` = act); s = [h; c]."""
    k, r = _t(kernel), _t(recurrent)
    b = _t(bias) if bias is not None else torch.zeros(k.shape[1], dtype=torch.float64)
    hidden = r.shape[0]

    def step(x, s):
        h, c = s[:hidden], s[hidden:]
        i, f, g, o = (x @ k + h @ r + b).chunk(4)
        c = gate(f) * c + gate(i) * act(g)
        return torch.cat([gate(o) * act(c), c])

    return step


def keras_gru(kernel, recurrent, bias=None, *, reset_after: bool, gate=torch.sigmoid,
              act=torch.tanh) -> Step:
    """Keras GRUCell (bias (2, 3H) when reset_after, else (3H,))."""
    k, r = _t(kernel), _t(recurrent)
    width = k.shape[1]
    b = _t(bias) if bias is not None else torch.zeros((2, width) if reset_after else width,
                                                        dtype=torch.float64)

    def step(x, h):
        if reset_after:
            xz, xr, xh = (x @ k + b[0]).chunk(3)
            hz, hr, hh = (h @ r + b[1]).chunk(3)
            z, reset = gate(xz + hz), gate(xr + hr)
            candidate = act(xh + reset * hh)
        else:
            xz, xr, xh = (x @ k + b).chunk(3)
            rz, rr, rh = r.chunk(3, dim=1)
            z, reset = gate(xz + h @ rz), gate(xr + h @ rr)
            candidate = act(xh + (reset * h) @ rh)
        return z * h + (1 - z) * candidate

    return step


def keras_simple(kernel, recurrent, bias=None, *, activation: str = "tanh") -> Step:
    k, r = _t(kernel), _t(recurrent)
    b = _t(bias) if bias is not None else torch.zeros(k.shape[1], dtype=torch.float64)
    phi = torch.relu if activation == "relu" else torch.tanh
    return lambda x, h: phi(x @ k + h @ r + b)


def rate_cell(weight, weight_in, bias, *, alpha: float, phi: str) -> Step:
    """x' = (1 − α)x + α(W φ(x) + W_in u + b), W with rows = new state."""
    w, w_in = _t(weight), _t(weight_in)
    b = _t(bias) if bias is not None else torch.zeros(w.shape[0], dtype=torch.float64)
    f = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid,
         "identity": lambda v: v}[phi]
    return lambda u, x: (1 - alpha) * x + alpha * (w @ f(x) + w_in @ u + b)


def torch_lstm_cell(weight_ih, weight_hh, bias_ih, bias_hh) -> Step:
    """PyTorch's own nn.LSTMCell with the given weights; state s = [h; c]."""
    cell = torch.nn.LSTMCell(weight_ih.shape[1], weight_hh.shape[1]).to(torch.float64)
    with torch.no_grad():
        for name, value in (("weight_ih", weight_ih), ("weight_hh", weight_hh),
                            ("bias_ih", bias_ih), ("bias_hh", bias_hh)):
            getattr(cell, name).copy_(_t(value))
    hidden = weight_hh.shape[1]

    def step(x, s):
        h, c = cell(x[None], (s[None, :hidden], s[None, hidden:]))
        return torch.cat([h[0], c[0]])

    return step


def run(step: Step, inputs: np.ndarray, state: torch.Tensor) -> torch.Tensor:
    for x in _t(inputs):
        state = step(x, state)
    return state


def lag_norm(step: Step, inputs: np.ndarray, state_size: int, lag: int) -> float:
    """‖∂s_T/∂s_(T−lag)‖₂ for one sequence (T, I) from the zero state."""
    steps = inputs.shape[0]
    start = run(step, inputs[:steps - lag], torch.zeros(state_size, dtype=torch.float64))
    jac = jacrev(lambda s: run(step, inputs[steps - lag:], s))(start.detach())
    return float(torch.linalg.matrix_norm(jac.detach(), ord=2))


def outputs(step: Step, inputs: np.ndarray, state_size: int, out: int) -> np.ndarray:
    """The first ``out`` state entries after each step (T, out): h of any of these cells."""
    state = torch.zeros(state_size, dtype=torch.float64)
    rows = []
    for x in _t(inputs):
        state = step(x, state)
        rows.append(state[:out].detach().numpy().copy())
    return np.stack(rows)


def keras_from_cudnn(kernel: np.ndarray, recurrent: np.ndarray, bias: np.ndarray,
                     gates: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keras' own conversion of CuDNN weights (``_convert_rnn_weights``), as its code reads."""
    def per_gate(matrix, func):
        return np.hstack([func(block) for block in np.hsplit(matrix, gates)])

    kernel = per_gate(kernel, lambda k: k.T.reshape(k.shape, order="F"))
    recurrent = per_gate(recurrent, lambda k: k.T)
    if gates == 4:
        bias = np.sum(np.split(bias, 2, axis=0), axis=0)
    else:
        bias = np.asarray(bias).reshape((2, -1))
    return kernel, recurrent, bias
