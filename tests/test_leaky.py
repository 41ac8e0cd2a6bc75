"""Leaky rate cells: spectra against numpy, per-lag norms against jacrev of a plain-torch cell.

The reference is x' = (1 − α)x + α(W φ(x) + W_in u + b) written out in
``reference_cells.rate_cell``; rnngrad reaches it through a map file, a built-in convention or
``--leak`` on a PyTorch nn.RNN state dict.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import reference_cells as ref
from rnngrad.spectrum import spectrum
from rnngrad.bptt import BpttOptions, bptt
from rnngrad.errors import OptionError
from rnngrad.io import from_state_dict
from rnngrad.probes import ProbeSpec

LAGS = (1, 2, 5, 9)
ATOL_LOG = 1e-7


def _rate_model(size=6, inputs=3, seed=0, gain=1.6):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((size, size)) * gain / math.sqrt(size),
            rng.standard_normal((size, inputs)), rng.standard_normal(size) * 0.3)


def _write_map(tmp_path, **keys) -> str:
    lines = ["[[recurrence]]"] + [f"{k} = {v!r}".replace("'", '"') for k, v in keys.items()]
    path = tmp_path / "model.toml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _probe(tmp_path, batch=3, steps=9, width=3, seed=4) -> tuple[np.ndarray, ProbeSpec]:
    x = np.random.default_rng(seed).standard_normal((batch, steps, width))
    path = tmp_path / "probe.npy"
    np.save(path, x)
    return x, ProbeSpec(inputs=str(path))


def _check_against(report_rows, step, x, state_size):
    for row in report_rows:
        truth = [ref.lag_norm(step, x[b], state_size, row.lag) for b in range(x.shape[0])]
        assert row.log10_norm == pytest.approx(float(np.mean(np.log10(truth))), abs=ATOL_LOG)


@pytest.mark.parametrize("phi", ["tanh", "relu", "sigmoid", "identity"])
def test_mapped_rate_cell_matches_jacrev(tmp_path, phi):
    w, w_in, b = _rate_model()
    np.savez(tmp_path / "m.npz", J=w, B=w_in, c=b)
    mapping = _write_map(tmp_path, recurrent="J", input="B", bias="c", nonlinearity=phi,
                         leak=0.3)
    x, probe = _probe(tmp_path)
    report = bptt(str(tmp_path / "m.npz"),
                  BpttOptions(lags=",".join(map(str, LAGS)), probe=probe, map=mapping))
    (item,) = report.recurrences
    assert item.recurrence.cell == "leaky" and item.recurrence.leak == 0.3
    assert item.state == "x"
    _check_against(item.rows, ref.rate_cell(w, w_in, b, alpha=0.3, phi=phi), x, 6)


def test_columns_orientation_and_dt_tau(tmp_path):
    w, w_in, b = _rate_model(seed=3)
    np.savez(tmp_path / "m.npz", Wt=w.T, Win_t=w_in.T, bias=b[None, :])
    mapping = _write_map(tmp_path, recurrent="Wt", input="Win_t", bias="bias",
                         orientation="columns", input_orientation="columns", dt=2, tau=10)
    x, probe = _probe(tmp_path, seed=5)
    report = bptt(str(tmp_path / "m.npz"), BpttOptions(lags="1,4,9", probe=probe,
                                                       map=mapping))
    (item,) = report.recurrences
    assert item.recurrence.leak == pytest.approx(0.2, rel=1e-15)
    _check_against(item.rows, ref.rate_cell(w, w_in, b, alpha=0.2, phi="tanh"), x, 6)


def test_leak_option_on_pytorch_rnn(tmp_path):
    torch.manual_seed(0)
    module = torch.nn.RNN(3, 5, batch_first=True, nonlinearity="relu").to(torch.float64)
    state = {f"rnn.{k}": v for k, v in module.state_dict().items()}
    source = from_state_dict(state, metadata={"rnn.nonlinearity": "relu"})
    x, probe = _probe(tmp_path)
    report = bptt(source, BpttOptions(lags="1,3,9", probe=probe, leak=0.25))
    (item,) = report.recurrences
    assert (item.recurrence.cell, item.recurrence.nonlinearity) == ("leaky", "relu")
    assert item.recurrence.leak_source == "option --leak"
    w = module.weight_hh_l0.detach().numpy()
    bias = (module.bias_ih_l0 + module.bias_hh_l0).detach().numpy()
    step = ref.rate_cell(w, module.weight_ih_l0.detach().numpy(), bias, alpha=0.25, phi="relu")
    _check_against(item.rows, step, x, 5)


def test_leaky_spectrum_reports_w_and_effective_matrix(tmp_path):
    w, w_in, b = _rate_model(size=8, seed=7)
    np.savez(tmp_path / "m.npz", W=w, U=w_in)
    mapping = _write_map(tmp_path, recurrent="W", input="U", leak=0.1, nonlinearity="tanh")
    (item,) = spectrum(str(tmp_path / "m.npz"), map=mapping, top=8).recurrences
    eff = 0.9 * np.eye(8) + 0.1 * w
    for name, matrix in (("hh", w), ("eff", eff)):
        block = item.block(name)
        assert block.spectral_radius == pytest.approx(np.max(np.abs(np.linalg.eigvals(matrix))),
                                                      rel=1e-12)
        assert block.sigma_max == pytest.approx(np.linalg.norm(matrix, 2), rel=1e-12)
    assert item.rest_jacobian.spectral_radius == pytest.approx(item.block("eff").spectral_radius, rel=1e-12)
    assert item.bound == pytest.approx(0.9 + 0.1 * np.linalg.norm(w, 2), rel=1e-12)
    eig_w = np.linalg.eigvals(w)
    eig_eff = sorted(np.abs(0.9 + 0.1 * eig_w))[::-1]
    got = sorted(abs(complex(*pair)) for pair in item.block("eff").eigenvalues)[::-1]
    assert np.allclose(got, eig_eff, atol=1e-12)


def test_relu_effective_matrix_takes_the_active_slope(tmp_path):
    w, _, _ = _rate_model(size=5, seed=2)
    np.savez(tmp_path / "m.npz", W=w)
    mapping = _write_map(tmp_path, recurrent="W", nonlinearity="relu", leak=0.5)
    (item,) = spectrum(str(tmp_path / "m.npz"), map=mapping).recurrences
    assert item.block("eff").sigma_max == pytest.approx(np.linalg.norm(0.5 * np.eye(5) + 0.5 * w, 2), rel=1e-12)


def test_sigmoid_effective_matrix_uses_quarter_slope(tmp_path):
    w, _, _ = _rate_model(size=5, seed=2)
    np.savez(tmp_path / "m.npz", W=w)
    mapping = _write_map(tmp_path, recurrent="W", nonlinearity="sigmoid", leak=0.5)
    (item,) = spectrum(str(tmp_path / "m.npz"), map=mapping).recurrences
    eff = 0.5 * np.eye(5) + 0.5 * 0.25 * w
    assert item.block("eff").sigma_max == pytest.approx(np.linalg.norm(eff, 2), rel=1e-12)
    assert item.gamma == 0.25


def test_low_rank_spectrum_from_small_problem(tmp_path):
    rng = np.random.default_rng(11)
    size, rank = 40, 3
    m, n = rng.standard_normal((size, rank)), rng.standard_normal((rank, size))
    np.savez(tmp_path / "lr.npz", m=m, n=n, u=rng.standard_normal((2, size)))
    mapping = _write_map(tmp_path, left="m", right="n", scale="1/N", input="u", leak=0.2)
    (item,) = spectrum(str(tmp_path / "lr.npz"), map=mapping, top=5).recurrences
    block = item.block("hh")
    dense = m @ n / size
    small = np.linalg.eigvals(n @ m / size)
    assert block.spectral_radius == pytest.approx(np.max(np.abs(small)), rel=1e-12)
    assert block.spectral_radius == pytest.approx(np.max(np.abs(np.linalg.eigvals(dense))),
                                                  rel=1e-9)
    assert block.sigma_max == pytest.approx(np.linalg.norm(dense, 2), rel=1e-12)
    assert block.sigma_min == 0.0 and block.condition_number is None
    listed = [complex(*pair) for pair in block.eigenvalues]
    assert sorted(abs(z) for z in listed[:rank]) == pytest.approx(sorted(abs(small)), rel=1e-12)
    assert listed[rank:] == [0j, 0j]
    vector = np.array([complex(*pair) for pair in block.leading_eigenvector])
    value = complex(*block.leading_eigenvalue)
    assert np.allclose(dense @ vector, value * vector, atol=1e-10)
    assert item.recurrence.low_rank is not None


def test_leak_option_errors(tmp_path):
    module = torch.nn.LSTM(3, 4)
    with pytest.raises(OptionError, match="--leak applies to Elman"):
        spectrum(module.state_dict(), leak=0.1)
    rnn = torch.nn.RNN(3, 4)
    for bad in (0.0, 1.5, float("nan")):
        with pytest.raises(OptionError, match="leak"):
            spectrum(rnn.state_dict(), leak=bad)


def test_leaky_cell_identity_fields(tmp_path):
    rnn = torch.nn.RNN(3, 4)
    (item,) = spectrum(rnn.state_dict(), leak=0.5).recurrences
    identity = item.recurrence.to_dict()
    assert identity["cell"] == "leaky" and identity["leak"] == 0.5
    assert [block.name for block in item.blocks] == ["hh", "eff"]
    plain = spectrum(rnn.state_dict()).recurrences[0].recurrence.to_dict()
    assert "leak" not in plain and "convention" not in plain
