"""The block Krylov σ_max tracker against LAPACK, and the sweep's tracked path against its exact one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rnngrad.bptt.sweep as jacobians
import rnngrad.bptt.sigma_max as sigma_max
from rnngrad.cells.base import cell_weights
from rnngrad.cells.detection import find_recurrences
from rnngrad.cells.stack import run_recurrence
from rnngrad.bptt.sweep import sweep
from rnngrad.io import from_state_dict
from rnngrad.bptt.sigma_max import LeadingSingular, tolerance_for

RTOL = 1e-9  # the tracker's stated bound is 1e-10 relative


def tracker_for(matrices: torch.Tensor, block: slice | None = None) -> LeadingSingular:
    size = matrices.shape[-1]
    block = block or slice(0, size)
    return LeadingSingular(matrices.shape[0], len(range(size)[block]), block,
                           dtype=matrices.dtype, device="cpu")


def exact_top(matrices: torch.Tensor):
    u, s, vh = np.linalg.svd(matrices.numpy())
    return s[:, 0], u[:, :, 0], vh[:, 0, :]


@pytest.mark.parametrize("size", [65, 150])
def test_sigma_and_vectors_match_lapack_on_random_matrices(size):
    generator = torch.Generator().manual_seed(size)
    matrices = torch.randn(3, size, size, generator=generator, dtype=torch.float64)
    triplet = tracker_for(matrices).solve(matrices)
    sigma, left, right = exact_top(matrices)
    np.testing.assert_allclose(triplet.sigma.numpy(), sigma, rtol=RTOL)
    # random Gaussian matrices have a clear top gap: the vectors are determined (up to sign)
    assert np.abs(np.sum(triplet.left.numpy() * left, axis=1)) == pytest.approx(1, abs=1e-6)
    assert np.abs(np.sum(triplet.right.numpy() * right, axis=1)) == pytest.approx(1, abs=1e-6)


def test_tracks_a_growing_product_lag_by_lag():
    """P_(ℓ+1) = P_ℓ J with J near the edge of stability: σ at every lag, as the sweep uses it."""
    size, batch = 90, 2
    generator = torch.Generator().manual_seed(3)
    product = torch.eye(size, dtype=torch.float64).expand(batch, size, size).clone()
    tracker = tracker_for(product)
    for _ in range(40):
        jac = torch.randn(batch, size, size, generator=generator, dtype=torch.float64) / size ** 0.5
        tracker.advance(jac)
        product = product @ jac
        triplet = tracker.solve(product)
        np.testing.assert_allclose(triplet.sigma.numpy(), exact_top(product)[0], rtol=RTOL)


def test_repeated_top_singular_value_and_zero_matrix():
    """An orthogonal matrix (all σ = 1, no gap) and an all-zero one (σ = 0, no NaN)."""
    generator = torch.Generator().manual_seed(5)
    q = torch.linalg.qr(torch.randn(80, 80, generator=generator, dtype=torch.float64)).Q
    matrices = torch.stack([q, torch.zeros(80, 80, dtype=torch.float64)])
    triplet = tracker_for(matrices).solve(matrices)
    assert triplet.sigma.tolist() == [pytest.approx(1.0, rel=1e-12), 0.0]
    assert torch.isfinite(triplet.left[0]).all() and torch.isfinite(triplet.right[0]).all()


def test_rank_one_matrix():
    generator = torch.Generator().manual_seed(6)
    u = torch.randn(1, 70, 1, generator=generator, dtype=torch.float64)
    v = torch.randn(1, 1, 70, generator=generator, dtype=torch.float64)
    matrices = u @ v
    triplet = tracker_for(matrices).solve(matrices)
    assert float(triplet.sigma[0]) == pytest.approx(float(u.norm() * v.norm()), rel=1e-12)


def test_block_of_rows_and_columns():
    """σ of P[block, block] from the rows P[block, :], as for an LSTM's --state h."""
    generator = torch.Generator().manual_seed(7)
    product = torch.randn(2, 140, 140, generator=generator, dtype=torch.float64)
    block = slice(0, 70)
    triplet = tracker_for(product, block).solve(product[:, block, :])
    np.testing.assert_allclose(triplet.sigma.numpy(), exact_top(product[:, block, block])[0],
                               rtol=RTOL)


def test_not_converged_falls_back_to_the_exact_svd(monkeypatch):
    monkeypatch.setattr(sigma_max, "MAX_ITERATIONS", 1)
    generator = torch.Generator().manual_seed(8)
    matrices = torch.randn(2, 100, 100, generator=generator, dtype=torch.float64)
    triplet = tracker_for(matrices).solve(matrices)
    np.testing.assert_allclose(triplet.sigma.numpy(), exact_top(matrices)[0], rtol=1e-13)


def test_tolerance_follows_the_dtype():
    assert tolerance_for(torch.float64) == 1e-10
    assert tolerance_for(torch.float32) == pytest.approx(100 * 1.1920929e-07, rel=1e-7)


def _profile(module: torch.nn.Module, lags: tuple[int, ...], block=None, seed: int = 0):
    bundle = from_state_dict({f"rnn.{k}": v.detach() for k, v in module.state_dict().items()})
    rec = find_recurrences(bundle)[0]
    weights = cell_weights(bundle, rec)
    x = torch.randn(2, lags[-1], module.input_size, dtype=torch.float64,
                    generator=torch.Generator().manual_seed(seed))
    block = block or slice(0, rec.state_size)
    readout = torch.ones(len(range(rec.state_size)[block]), dtype=torch.float64)
    with torch.no_grad():
        trace = run_recurrence(rec, weights, x)
        return sweep(rec, weights, trace, lags, block=block, readout=readout / readout.norm())


@pytest.mark.parametrize("case", ["chaotic-sparse-lags", "lstm-h-block", "gru"])
def test_sweep_tracker_path_equals_exact_path(case, monkeypatch):
    """The sweep above EXACT_SVD_MAX (tracker) against the same sweep forced onto LAPACK.

    Sparse lags on a chaotic net carry the block across hundreds of unanalysed steps, through
    the product's rescaling (norms pass 10^100 here).
    """
    torch.manual_seed(1)
    if case == "chaotic-sparse-lags":
        module, lags, block = torch.nn.RNN(3, 80, batch_first=True).double(), (1, 2, 150, 1500), None
        with torch.no_grad():
            module.weight_hh_l0.mul_(4.0)
    elif case == "lstm-h-block":
        module, lags, block = torch.nn.LSTM(3, 70, batch_first=True).double(), (1, 5, 30), slice(0, 70)
    else:
        module, lags, block = torch.nn.GRU(3, 72, batch_first=True).double(), (1, 4, 9, 25), None
    tracked = _profile(module, lags, block)
    monkeypatch.setattr(jacobians, "EXACT_SVD_MAX", 10_000)
    exact = _profile(module, lags, block)
    assert np.isfinite(tracked.log10_norm).all()
    np.testing.assert_allclose(10 ** (tracked.log10_norm - exact.log10_norm), 1, rtol=RTOL)
    np.testing.assert_allclose(tracked.log10_sigma, exact.log10_sigma, atol=1e-9)
    cos = np.abs(np.sum(tracked.right * exact.right, axis=1))
    assert cos == pytest.approx(1, abs=1e-6)
    if case == "chaotic-sparse-lags":
        assert tracked.log10_norm[:, -1].min() > 100  # past RESCALE_ABOVE
