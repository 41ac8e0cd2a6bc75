"""The sweep's product chain: rows riding along in the product, rescaling, the Elman step
without forming J; all against explicit products of the cells' own Jacobians."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnngrad.bptt.chain import ProductChain
from rnngrad.cells.base import cell_weights
from rnngrad.cells.detection import find_recurrences
from rnngrad.cells.stack import run_recurrence
from rnngrad.io import from_state_dict


def recurrence(kind: str, hidden: int = 9, gain: float = 1.0, seed: int = 0):
    torch.manual_seed(seed)
    module = getattr(torch.nn, kind)(3, hidden, batch_first=True).double()
    with torch.no_grad():
        module.weight_hh_l0.mul_(gain)
    bundle = from_state_dict({f"rnn.{k}": v for k, v in module.state_dict().items()})
    rec = find_recurrences(bundle)[0]
    weights = cell_weights(bundle, rec)
    x = torch.randn(2, 60, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        trace = run_recurrence(rec, weights, x)
    return rec, weights, trace


@pytest.mark.parametrize("kind,gain", [("RNN", 1.0), ("RNN", 4.0), ("GRU", 1.0), ("LSTM", 3.0)])
def test_riders_are_their_start_times_the_product(kind, gain):
    """x_ℓ = x_0 P_ℓ for every rider, P_ℓ = 10^log_scale · product, through rescaling."""
    rec, weights, trace = recurrence(kind, gain=gain)
    size, steps = rec.state_size, len(trace.caches)
    start = torch.randn(2, 3, size, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    chain = ProductChain(2, size, {"x": start}, dtype=torch.float64, device="cpu")
    exact = torch.eye(size, dtype=torch.float64).expand(2, size, size).clone()
    log_exact = np.zeros(2)
    equations = rec.equations
    for lag in range(1, steps + 1):
        cache = trace.caches[steps - lag]
        chain.multiply(equations, weights, cache, rec.nonlinearity)
        chain.rescale()
        exact = exact @ equations.jacobian(weights, cache, rec.nonlinearity)
        norm = torch.linalg.matrix_norm(exact).numpy()  # keep the reference finite too
        exact /= torch.from_numpy(norm)[:, None, None]
        log_exact += np.log10(norm)
        factor = 10.0 ** (chain.log_scale.numpy() - log_exact)
        np.testing.assert_allclose(chain.product.numpy() * factor[:, None, None], exact.numpy(),
                                   rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(chain.rider("x").numpy() * factor[:, None, None],
                                   (start @ exact).numpy(), rtol=1e-9, atol=1e-12)


class Growing:
    """Equations whose every step Jacobian is 1000·Q (Q orthogonal): P_ℓ = 1000^ℓ Q^ℓ."""

    def __init__(self, q: torch.Tensor) -> None:
        self.q = q

    def jacobian(self, weights, cache, nonlinearity, out=None):
        return torch.mul(self.q, 1000.0, out=out[0]).expand_as(out) if out is not None else None


def test_rescaling_keeps_riders_consistent_past_float64():
    q = torch.linalg.qr(torch.randn(6, 6, dtype=torch.float64,
                                    generator=torch.Generator().manual_seed(3))).Q
    start = torch.randn(1, 2, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    chain = ProductChain(1, 6, {"x": start}, dtype=torch.float64, device="cpu")
    for _ in range(150):  # 1000^150 = 1e450
        chain.multiply(Growing(q), None, None, "tanh")
        chain.rescale()
    power = torch.linalg.matrix_power(q, 150)
    scale = float(torch.linalg.matrix_norm(chain.product[0]))  # ‖P‖_F = 1000^150 √6
    assert float(chain.log_scale[0]) > 300
    assert float(chain.log_scale[0]) + np.log10(scale) == pytest.approx(450 + np.log10(6) / 2,
                                                                         abs=1e-9)
    torch.testing.assert_close(chain.product[0] / scale, power / np.sqrt(6), rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(chain.rider("x")[0] / scale, start[0] @ power / np.sqrt(6),
                               rtol=1e-9, atol=1e-12)


def test_free_riders_are_multiplied_but_never_rescaled():
    """A free rider is x_0 P_ℓ at its own scale: 1000^20 = 1e60 times a unit vector here,
    while the product itself is rescaled (its Frobenius norm passes 1e100 at ℓ = 34)."""
    q = torch.linalg.qr(torch.randn(6, 6, dtype=torch.float64,
                                    generator=torch.Generator().manual_seed(5))).Q
    start = torch.zeros(1, 1, 6, dtype=torch.float64)
    start[0, 0, 0] = 1.0
    chain = ProductChain(1, 6, {}, free={"x": start}, dtype=torch.float64, device="cpu")
    for step in range(1, 41):
        chain.multiply(Growing(q), None, None, "tanh")
        chain.rescale()
        if step == 20:
            free = chain.rider("x")[0, 0]
            assert float(torch.linalg.vector_norm(free)) == pytest.approx(1e60, rel=1e-12)
            chain.rider("x").div_(1e60)  # its owner keeps its scale
    assert float(chain.log_scale[0]) > 100  # the product was rescaled
    expected = start[0] @ torch.linalg.matrix_power(q, 40) * 1000.0 ** 20
    torch.testing.assert_close(chain.rider("x")[0], expected, rtol=1e-9, atol=0)


def test_elman_step_without_forming_the_jacobian():
    rec, weights, trace = recurrence("RNN", hidden=7)
    equations = rec.equations
    rows = torch.randn(2, 10, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    expected = rows @ equations.jacobian(weights, trace.caches[5], rec.nonlinearity)
    out = torch.empty_like(rows)
    equations.multiply_jacobian(weights, trace.caches[5], rec.nonlinearity, rows.clone(), out=out)
    torch.testing.assert_close(out, expected, rtol=1e-13, atol=1e-15)
