"""Spectrum numbers against numpy.linalg, rest-state Jacobians against jacrev, verdicts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.func import jacrev

import rnngrad
from rnngrad.spectrum.matrix import analyze_matrix


@pytest.mark.parametrize("size,seed", [(1, 0), (2, 1), (7, 2), (33, 3), (128, 4)])
def test_analyze_matrix_matches_numpy(size, seed):
    a = np.random.default_rng(seed).standard_normal((size, size)) * 1.3 / math.sqrt(size)
    spec = analyze_matrix(a, gamma=0.25, top=4)
    eig = np.linalg.eigvals(a)
    sv = np.linalg.svd(a, compute_uv=False)
    assert spec.spectral_radius == pytest.approx(np.abs(eig).max(), rel=1e-9)
    assert spec.sigma_max == pytest.approx(sv[0], rel=1e-9)
    assert spec.sigma_min == pytest.approx(sv[-1], rel=1e-9)
    assert spec.condition_number == pytest.approx(sv[0] / sv[-1], rel=1e-9)
    assert spec.outside_unit_circle == int(np.sum(np.abs(eig) > 1))
    assert spec.outside_inverse_gamma == int(np.sum(np.abs(eig) > 4))
    top = sorted(np.abs(eig), reverse=True)[:4]
    assert [math.hypot(*z) for z in spec.eigenvalues] == pytest.approx(top, rel=1e-9)
    value = complex(*spec.leading_eigenvalue)
    vector = np.array([complex(*p) for p in spec.leading_eigenvector])
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-12)
    assert np.linalg.norm(a @ vector - value * vector) < 1e-9 * max(1.0, abs(value))


def test_singular_matrix_has_no_condition_number_and_valid_json(tmp_path):
    w = np.zeros((4, 4))
    w[0, 1] = 2.0
    spec = analyze_matrix(w)
    assert spec.sigma_min == 0.0 and spec.condition_number is None
    report = rnngrad.spectrum({"W": torch.from_numpy(w)}, keys=("W",))
    import json

    block = json.loads(json.dumps(report.to_dict(), allow_nan=False))["recurrences"][0]["blocks"]["hh"]
    assert block["condition_number"] is None and "singular" in block["condition_number_reason"]


def test_orthogonal_matrix_sits_at_the_edge():
    q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((16, 16)))
    report = rnngrad.spectrum({"W": torch.from_numpy(q)}, keys=("W",))
    item = report.recurrences[0]
    assert item.block("hh").sigma_max == pytest.approx(1.0, abs=1e-12)
    assert item.block("hh").sigma_min == pytest.approx(1.0, abs=1e-12)
    assert item.bound == pytest.approx(1.0, abs=1e-12)
    assert item.verdict == "explosion-possible"


def _module(kind: str, **kwargs) -> torch.nn.Module:
    torch.manual_seed(3)
    return getattr(torch.nn, kind)(5, 6, **kwargs).double()


@pytest.mark.parametrize("kind,blocks", [("RNN", ["hh"]), ("GRU", ["r", "z", "n"]),
                                         ("LSTM", ["i", "f", "g", "o"])])
def test_blocks_match_numpy_on_every_cell(kind, blocks):
    module = _module(kind)
    report = rnngrad.spectrum(module)
    item = report.recurrences[0]
    assert [block.name for block in item.blocks] == blocks
    w_hh = module.weight_hh_l0.detach().numpy()
    for index, (name, spec) in enumerate((b.name, b.spectrum) for b in item.blocks):
        block = w_hh[index * 6:(index + 1) * 6]
        assert spec.spectral_radius == pytest.approx(np.abs(np.linalg.eigvals(block)).max(), rel=1e-9)
        sv = np.linalg.svd(block, compute_uv=False)
        assert (spec.sigma_max, spec.sigma_min) == pytest.approx((sv[0], sv[-1]), rel=1e-9)


def test_lstm_projection_blocks_are_the_square_maps_w_times_w_hr():
    module = _module("LSTM", proj_size=3)
    item = rnngrad.spectrum(module).recurrences[0]
    w_hh = module.weight_hh_l0.detach().numpy()
    w_hr = module.weight_hr_l0.detach().numpy()
    g = w_hh[12:18] @ w_hr
    assert item.block("g").spectral_radius == pytest.approx(np.abs(np.linalg.eigvals(g)).max(), rel=1e-9)
    assert item.recurrence.proj_size == 3 and item.rest_jacobian.size == 3 + 6


def _rest_oracle(cell: torch.nn.Module) -> np.ndarray:
    x = torch.zeros(1, cell.input_size, dtype=torch.float64)
    if isinstance(cell, torch.nn.LSTMCell):
        hidden = cell.hidden_size

        def step(s):
            h, c = cell(x, (s[:hidden][None], s[hidden:][None]))
            return torch.cat([h[0], c[0]])

        return jacrev(step)(torch.zeros(2 * hidden, dtype=torch.float64)).detach().numpy()
    return jacrev(lambda s: cell(x, s[None])[0])(
        torch.zeros(cell.hidden_size, dtype=torch.float64)).detach().numpy()


@pytest.mark.parametrize("kind", ["RNNCell", "GRUCell", "LSTMCell"])
def test_rest_jacobian_matches_jacrev_of_the_torch_cell(kind):
    torch.manual_seed(4)
    cell = getattr(torch.nn, kind)(3, 5).double()
    with torch.no_grad():
        for p in cell.parameters():
            p.mul_(3)
    item = rnngrad.spectrum({f"dec.{k}": v for k, v in cell.state_dict().items()}).recurrences[0]
    truth = _rest_oracle(cell)
    assert item.recurrence.cell_module and item.recurrence.module == "dec"
    assert item.rest_jacobian.spectral_radius == pytest.approx(np.abs(np.linalg.eigvals(truth)).max(), rel=1e-9)
    assert item.rest_jacobian.norm == pytest.approx(np.linalg.norm(truth, 2), rel=1e-9)


@pytest.mark.parametrize("scale,bias,verdict", [(0.5, 0.0, "vanishing-guaranteed"),
                                                (1.5, 0.0, "rest-unstable"),
                                                (1.5, 3.0, "explosion-possible")])
def test_elman_verdicts_follow_the_bound(scale, bias, verdict):
    q, _ = np.linalg.qr(np.random.default_rng(5).standard_normal((8, 8)))
    state = {"weight_ih_l0": torch.zeros(8, 2, dtype=torch.float64),
             "weight_hh_l0": torch.from_numpy(q * scale),
             "bias_ih_l0": torch.full((8,), bias, dtype=torch.float64),
             "bias_hh_l0": torch.zeros(8, dtype=torch.float64)}
    item = rnngrad.spectrum(state).recurrences[0]
    assert item.bound == pytest.approx(scale, rel=1e-12)
    assert item.verdict == verdict
    assert str(round(scale, 1)) in item.reason
    # With a large bias tanh saturates at rest: J = diag(1 − tanh(b)²) W.
    expected = (1 - math.tanh(bias) ** 2) * scale
    assert item.rest_jacobian.spectral_radius == pytest.approx(expected, rel=1e-9)


def test_gated_cells_are_never_given_a_w_hh_only_verdict():
    item = rnngrad.spectrum(_module("GRU")).recurrences[0]
    assert item.verdict in ("undetermined", "rest-unstable")
    assert "gated" in item.reason and "bptt" in item.reason


def test_spectrum_refuses_before_allocating_past_max_memory():
    from rnngrad.errors import ResourceError

    state = {"W": torch.eye(300, dtype=torch.float64)}
    with pytest.raises(ResourceError, match="GiB"):
        rnngrad.spectrum(state, keys=("W",), max_memory=0.001)
    assert rnngrad.spectrum(state, keys=("W",)).recurrences[0].block("hh").sigma_max == 1.0
