"""Lyapunov exponents against closed forms (fixed points, linear maps) and a brute-force QR over
Jacobians from ``torch.func.jacrev`` through PyTorch's own modules; the statistics, the meaning
in steps, the verdict and the report's JSON."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch.func import jacrev

import reference_cells as ref
from oracle import layer_inputs, run_from, single_layer, state_size
from rnngrad.cells import SPECS
from rnngrad.cells.base import CellWeights
from rnngrad.cells.leaky import LeakyCell
from rnngrad.io import from_state_dict
from rnngrad.lyapunov import LyapunovOptions, LyapunovReport, LyapunovVerdict, lyapunov
from rnngrad.lyapunov.meaning import (doubling_time, entropy_rate, half_life, kaplan_yorke,
                                      time_scales)
from rnngrad.lyapunov.qr import initial_basis
from rnngrad.lyapunov.verdict import lyapunov_verdict

FIXED_POINT = dict(steps=5000, burn_in=1000, batch=2, input_scale=0.0)


# --- the building block: J_t V without forming J_t -------------------------------------------


@pytest.mark.parametrize("name,proj,nonlinearity", [
    ("rnn", 0, "tanh"), ("rnn", 0, "relu"), ("gru", 0, "sigmoid/tanh"),
    ("gru_reset_before", 0, "sigmoid/tanh"), ("lstm", 0, "sigmoid/tanh"),
    ("lstm", 2, "sigmoid/tanh"), ("gru", 0, "hard_sigmoid/relu"),
    ("lstm", 0, "hard_sigmoid_0.2/softsign/relu")])
def test_jacobian_product_is_the_jacobian_times_the_vectors(name, proj, nonlinearity):
    import importlib

    cell = importlib.import_module(SPECS[name].module)
    gates, hidden, batch, count = SPECS[name].gate_count, 5, 3, 4
    gen = torch.Generator().manual_seed(1)

    def rand(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64)

    weights = CellWeights(weight_hh=rand(gates * hidden, proj or hidden),
                          bias_hh=rand(gates * hidden),
                          weight_hr=rand(proj, hidden) if proj else None)
    size = SPECS[name].state_size(hidden, proj)
    _, cache = cell.step(weights, rand(batch, gates * hidden), rand(batch, size), nonlinearity)
    vectors = rand(batch, size, count)
    expected = cell.jacobian(weights, cache, nonlinearity) @ vectors
    assert torch.allclose(cell.jacobian_product(weights, cache, nonlinearity, vectors), expected,
                          rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("phi", ["tanh", "relu", "sigmoid", "identity"])
def test_leaky_jacobian_product(phi):
    cell = LeakyCell(alpha=0.3, nonlinearity=phi)
    gen = torch.Generator().manual_seed(2)
    weights = CellWeights(weight_hh=torch.randn(6, 6, generator=gen, dtype=torch.float64))
    _, cache = cell.step(weights, torch.randn(3, 6, generator=gen, dtype=torch.float64),
                         torch.randn(3, 6, generator=gen, dtype=torch.float64))
    vectors = torch.randn(3, 6, 4, generator=gen, dtype=torch.float64)
    assert torch.allclose(cell.jacobian_product(weights, cache, None, vectors),
                          cell.jacobian(weights, cache) @ vectors, rtol=1e-12, atol=1e-12)


# --- closed forms: every step Jacobian is the same matrix -------------------------------------


def matrix_with_moduli(moduli_pairs, moduli_real, seed=0) -> np.ndarray:
    """A real matrix with eigenvalues r e^{±iθ} for each r in ``moduli_pairs`` and real
    eigenvalues ``moduli_real`` (alternating signs), in a random non-orthogonal basis."""
    rng = np.random.default_rng(seed)
    blocks = []
    for r in moduli_pairs:
        theta = rng.uniform(0.3, 2.8)
        blocks.append(r * np.array([[math.cos(theta), -math.sin(theta)],
                                    [math.sin(theta), math.cos(theta)]]))
    blocks += [np.array([[(-1) ** i * r]]) for i, r in enumerate(moduli_real)]
    size = sum(b.shape[0] for b in blocks)
    core = np.zeros((size, size))
    at = 0
    for b in blocks:
        core[at:at + b.shape[0], at:at + b.shape[0]] = b
        at += b.shape[0]
    basis = np.eye(size) + 0.3 * rng.standard_normal((size, size))
    return basis @ core @ np.linalg.inv(basis)


def elman(weight_hh: np.ndarray, inputs: int = 3, nonlinearity: str = "tanh",
          input_weight: float = 0.0) -> dict:
    """An nn.RNN state dict with W_hh = ``weight_hh``, every input weight ``input_weight``
    (zero: the input does nothing) and zero biases."""
    size = weight_hh.shape[0]
    zeros = torch.zeros(size, dtype=torch.float64)
    w_ih = torch.full((size, inputs), input_weight, dtype=torch.float64)
    return from_state_dict({"rnn.weight_hh_l0": torch.tensor(weight_hh),
                            "rnn.weight_ih_l0": w_ih,
                            "rnn.bias_ih_l0": zeros, "rnn.bias_hh_l0": zeros},
                           metadata={"rnn.nonlinearity": nonlinearity})


def log_moduli(matrix: np.ndarray) -> np.ndarray:
    return np.sort(np.log(np.abs(np.linalg.eigvals(matrix))))[::-1]


def test_tanh_network_at_its_fixed_point_has_the_log_moduli_of_w():
    """Zero input and bias: the state stays at 0, where every step Jacobian is W exactly."""
    w = matrix_with_moduli([1.3, 0.9, 0.6], [1.1, 0.8, 0.5, 0.3], seed=1)
    report = lyapunov(elman(w), k=10, **FIXED_POINT)
    (item,) = report.recurrences
    assert item.exponents == pytest.approx(log_moduli(w), abs=1e-3)
    assert item.exponents[0] == pytest.approx(item.exponents[1], abs=1e-3)  # a complex pair
    assert item.verdict == LyapunovVerdict.CHAOTIC  # the rest state is unstable: λ_1 = ln 1.3


def test_linear_map_driven_by_noise_has_the_log_moduli_of_w(tmp_path):
    """x' = W x + W_in u: a rate cell with φ = identity and α = 1; the input does not matter."""
    w = matrix_with_moduli([0.95, 0.7], [1.02, 0.85, 0.4], seed=2)
    np.savez(tmp_path / "linear.npz", W=w, U=np.ones((w.shape[0], 2)))
    (tmp_path / "map.toml").write_text('[[recurrence]]\nrecurrent = "W"\ninput = "U"\n'
                                       'nonlinearity = "identity"\nleak = 1.0\n')
    report = lyapunov(str(tmp_path / "linear.npz"), map=str(tmp_path / "map.toml"),
                      k=7, steps=5000, burn_in=1000, batch=2)
    (item,) = report.recurrences
    assert item.recurrence.cell == "leaky"
    assert item.exponents == pytest.approx(log_moduli(w), abs=1e-3)


def test_orthogonal_w_gives_all_zeros():
    q, _ = np.linalg.qr(np.random.default_rng(3).standard_normal((12, 12)))
    report = lyapunov(elman(q), k=12, steps=2000, burn_in=100, batch=2, input_scale=0.0)
    (item,) = report.recurrences
    assert item.exponents == pytest.approx([0.0] * 12, abs=1e-12)
    assert item.verdict == LyapunovVerdict.EDGE
    assert item.half_life is None or item.half_life > 1e10


def test_leaky_cell_at_its_fixed_point(tmp_path):
    """x' = (1 − α)x + α W tanh(x) at x = 0: J = (1 − α)I + αW."""
    w = matrix_with_moduli([1.6, 1.2], [1.4, 0.9, 0.5], seed=4)
    alpha = 0.3
    np.savez(tmp_path / "rate.npz", W=w, U=np.ones((len(w), 2)))
    (tmp_path / "map.toml").write_text(f'[[recurrence]]\nrecurrent = "W"\ninput = "U"\n'
                                       f'leak = {alpha}\n')
    report = lyapunov(str(tmp_path / "rate.npz"), map=str(tmp_path / "map.toml"), k=7,
                      **FIXED_POINT)
    (item,) = report.recurrences
    effective = (1 - alpha) * np.eye(len(w)) + alpha * w
    assert item.exponents == pytest.approx(log_moduli(effective), abs=1e-3)


@pytest.mark.slow
def test_symmetric_w_agrees_with_bptt_rate_exactly():
    """Symmetric W at the fixed point: ‖W^ℓ‖ = ρ^ℓ, so bptt's per-step rate is ρ = e^{λ_1}."""
    a = np.random.default_rng(5).standard_normal((10, 10))
    w = (a + a.T) / 8
    report = lyapunov(elman(w), k=3, steps=3000, burn_in=500, batch=2, input_scale=0.0,
                      bptt_lags="1..200")
    (item,) = report.recurrences
    rho = float(np.max(np.abs(np.linalg.eigvalsh(w))))
    assert item.exponents[0] == pytest.approx(math.log(rho), abs=1e-3)
    assert item.bptt.lag == 200
    assert item.bptt.log_rate == pytest.approx(math.log(rho), abs=1e-12)
    assert item.bptt.difference == pytest.approx(0.0, abs=1e-3)


# --- brute force: jacrev through PyTorch's own modules, numpy's QR --------------------------


BRUTE = {
    "lstm": (torch.nn.LSTM, dict()),
    "lstm-stacked-bidir": (torch.nn.LSTM, dict(num_layers=2, bidirectional=True)),
    "lstm-proj": (torch.nn.LSTM, dict(proj_size=3)),
    "gru": (torch.nn.GRU, dict()),
    "gru-stacked-bidir": (torch.nn.GRU, dict(num_layers=2, bidirectional=True)),
    "rnn-relu": (torch.nn.RNN, dict(nonlinearity="relu")),
}
BURN_IN, WINDOW, BLOCKS, K = 15, 45, 5, 4


def qr_logs(step, inputs: torch.Tensor, size: int, frame: np.ndarray) -> np.ndarray:
    """ln|R_ii| (T, K) of the QR algorithm from s_0 = 0 over inputs (T, I): every Jacobian of
    ``step(x_t, s) -> s'`` by jacrev, numpy's QR."""
    state, q, logs = torch.zeros(size, dtype=torch.float64), frame.copy(), []
    for x in inputs:
        jac = jacrev(lambda s: step(x, s))(state).detach().numpy()
        state = step(x, state).detach()
        q, r = np.linalg.qr(jac @ q)
        with np.errstate(divide="ignore"):  # dead ReLUs: an exactly zero R_ii is −∞
            logs.append(np.log(np.abs(np.diag(r))))
    return np.array(logs)


def window_stats(logs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-probe (B, K) means over the window after the burn-in, and block means (B, N, K)."""
    windows = np.array([probe[BURN_IN:] for probe in logs])
    return windows.mean(axis=1), windows.reshape(len(logs), BLOCKS, -1, K).mean(axis=2)


def brute_force(module, x: np.ndarray, layer: int, reverse: bool, frame: np.ndarray):
    """Per-probe (B, K) time averages of ln|R_ii| and block means (B, N, K), unsorted."""
    one = single_layer(module, layer, reverse)
    seq = layer_inputs(module, torch.from_numpy(x), layer).detach()
    if reverse:
        seq = seq.flip(1)
    return window_stats([qr_logs(lambda u, s: run_from(one, u.view(1, 1, -1), s), probe,
                                 state_size(one), frame) for probe in seq])


@pytest.mark.parametrize("name", sorted(BRUTE))
def test_same_as_a_brute_force_qr_over_jacrev_jacobians(name, tmp_path):
    cls, kwargs = BRUTE[name]
    torch.manual_seed(0)
    module = cls(3, 5, batch_first=True, **kwargs).to(torch.float64)
    with torch.no_grad():
        for pname, param in module.named_parameters():
            if pname.startswith("weight_hh"):
                param.mul_(3.0)
    x = np.random.default_rng(6).standard_normal((2, BURN_IN + WINDOW, 3))
    np.save(tmp_path / "x.npy", x)
    source = from_state_dict({f"rnn.{k}": v for k, v in module.state_dict().items()},
                             metadata={"rnn.nonlinearity": getattr(module, "nonlinearity", "")})
    report = lyapunov(source, k=K, inputs=str(tmp_path / "x.npy"), burn_in=BURN_IN,
                      blocks=BLOCKS)
    assert len(report.recurrences) == module.num_layers * (1 + module.bidirectional)
    for item in report.recurrences:
        rec = item.recurrence
        frame = initial_basis(item.state_size, K, 0).numpy()
        totals, blocks = brute_force(module, x, rec.layer, rec.direction == "reverse", frame)
        order = np.argsort(-totals.mean(axis=0), kind="stable")
        assert item.values() == pytest.approx(totals.mean(axis=0)[order], abs=1e-9)
        pooled = blocks[:, :, order].reshape(-1, K)
        with np.errstate(invalid="ignore"):
            stderr = pooled.std(axis=0, ddof=1) / math.sqrt(len(pooled))
            spread = totals[:, order].std(axis=0, ddof=1)
        assert _nan_for_none(item.exponents_stderr) == pytest.approx(stderr, rel=1e-6, abs=1e-12,
                                                                    nan_ok=True)
        assert _nan_for_none(item.exponents_probe_sd) == pytest.approx(spread, rel=1e-6,
                                                                      abs=1e-12, nan_ok=True)


def _nan_for_none(values) -> list[float]:
    return [math.nan if value is None else value for value in values]


def test_leaky_rate_cell_against_brute_force(tmp_path):
    w, w_in, b = (np.random.default_rng(7).standard_normal(s) for s in ((6, 6), (6, 2), 6))
    w *= 2.0 / math.sqrt(6)
    np.savez(tmp_path / "m.npz", J=w, B=w_in, c=b)
    (tmp_path / "map.toml").write_text('[[recurrence]]\nrecurrent = "J"\ninput = "B"\n'
                                       'bias = "c"\nleak = 0.4\n')
    x = np.random.default_rng(8).standard_normal((2, BURN_IN + WINDOW, 2))
    np.save(tmp_path / "x.npy", x)
    report = lyapunov(str(tmp_path / "m.npz"), map=str(tmp_path / "map.toml"), k=K,
                      inputs=str(tmp_path / "x.npy"), burn_in=BURN_IN, blocks=BLOCKS)
    step = ref.rate_cell(w, w_in, b, alpha=0.4, phi="tanh")
    frame = initial_basis(6, K, 0).numpy()
    totals, _ = window_stats([qr_logs(step, torch.from_numpy(seq), 6, frame) for seq in x])
    expected = np.sort(totals.mean(axis=0))[::-1]
    assert report.recurrences[0].exponents == pytest.approx(expected, abs=1e-9)


def test_keras_gru_with_the_reset_gate_before_against_brute_force(tmp_path):
    """Keras GRU(reset_after=False), read from an HDF5 file, against Keras' own equations."""
    pytest.importorskip("h5py")
    from test_keras import H, arrays, rnn_weights, write_keras2

    weights = arrays(3, (3 * H,), seed=3)
    weights = (weights[0], 3.0 * weights[1], weights[2])  # livelier dynamics
    path = write_keras2(tmp_path / "gru.h5", [("gru", rnn_weights("gru", *weights))])
    x = np.random.default_rng(9).standard_normal((2, BURN_IN + WINDOW, weights[0].shape[0]))
    np.save(tmp_path / "x.npy", x)
    report = lyapunov(str(path), k=K, inputs=str(tmp_path / "x.npy"), burn_in=BURN_IN,
                      blocks=BLOCKS)
    (item,) = report.recurrences
    assert item.recurrence.cell == "gru_reset_before"
    # a Keras 2.2 weights file without config runs that Keras' default gate, hard_sigmoid
    assert item.recurrence.nonlinearity == "hard_sigmoid_0.2/tanh"
    step = ref.keras_gru(*weights, reset_after=False,
                         gate=lambda a: torch.clamp(0.2 * a + 0.5, 0.0, 1.0))
    frame = initial_basis(H, K, 0).numpy()
    totals, _ = window_stats([qr_logs(step, torch.from_numpy(seq), H, frame) for seq in x])
    assert item.exponents == pytest.approx(np.sort(totals.mean(axis=0))[::-1], abs=1e-9)


# --- random tanh networks: the discrete-time mean-field λ_1 ------------------------------------


def random_tanh_network(size: int, gain: float, seed: int = 0) -> tuple[dict, np.ndarray]:
    """x_(t+1) = tanh(g W x_t + w u_t), W_ij ~ N(0, 1/N); u only kicks the state at t = 1."""
    rng = np.random.default_rng(seed)
    w = gain * rng.standard_normal((size, size)) / math.sqrt(size)
    zeros = torch.zeros(size, dtype=torch.float64)
    source = from_state_dict({"rnn.weight_hh_l0": torch.tensor(w),
                              "rnn.weight_ih_l0": torch.tensor(rng.standard_normal((size, 2))),
                              "rnn.bias_ih_l0": zeros, "rnn.bias_hh_l0": zeros})
    return source, w


def kicked_probe(tmp_path, batch: int, length: int) -> str:
    x = np.zeros((batch, length, 2))
    x[:, 0] = np.random.default_rng(1).standard_normal((batch, 2))
    np.save(tmp_path / "kick.npy", x)
    return str(tmp_path / "kick.npy")


@pytest.mark.slow
@pytest.mark.parametrize("gain", [2.0, 3.0])
def test_random_tanh_network_matches_the_mean_field_lambda_1(gain, tmp_path):
    """N = 500; at g = 1.5 the finite-size spread is larger: benchmarks/bench_lyapunov.py
    shows that case at N = 2000, averaged over networks."""
    from oracle import mean_field_lambda_1

    source, _ = random_tanh_network(500, gain)
    report = lyapunov(source, k=1, inputs=kicked_probe(tmp_path, 2, 6000), burn_in=1000)
    assert report.recurrences[0].exponents[0] == pytest.approx(mean_field_lambda_1(gain)[1],
                                                               abs=0.01)


@pytest.mark.slow
@pytest.mark.parametrize("gain", [0.5, 0.9])
def test_random_tanh_network_below_the_transition_is_ln_g_rho(gain):
    """No input: the state stays at 0, where J = gW: λ_1 = ln(g ρ(W))."""
    source, w = random_tanh_network(500, gain)
    report = lyapunov(source, k=1, steps=5000, burn_in=1000, batch=2, input_scale=0.0)
    rho = float(np.max(np.abs(np.linalg.eigvals(w))))
    assert report.recurrences[0].exponents[0] == pytest.approx(math.log(rho), abs=1e-3)


# --- meaning and verdict -----------------------------------------------------------------------


def test_time_scales_and_half_lives_in_steps():
    assert half_life(-math.log(2) / 10) == pytest.approx(10.0, rel=1e-12)
    assert doubling_time(math.log(2) / 4) == pytest.approx(4.0, rel=1e-12)
    assert half_life(0.1) is None and doubling_time(-0.1) is None
    assert time_scales([0.2, -0.5, -math.inf]) == (None, pytest.approx(2.0, rel=1e-12), 0.0)


def test_kaplan_yorke_dimension_closed_forms():
    # Hénon-like pair: D = 1 + λ_1/|λ_2|
    assert kaplan_yorke([0.42, -1.62])[0] == pytest.approx(1 + 0.42 / 1.62, rel=1e-12)
    assert kaplan_yorke([0.3, 0.1, -0.2, -0.8])[0] == pytest.approx(3 + 0.2 / 0.8, rel=1e-12)
    assert kaplan_yorke([-0.1, -0.2])[0] == 0.0
    value, reason = kaplan_yorke([0.3, 0.1])
    assert value is None and "at least 2" in reason


def test_entropy_rate_sums_the_positive_exponents():
    assert entropy_rate([0.3, 0.1, 0.005, -0.2], edge=0.01) == (pytest.approx(0.4, rel=1e-12), False)
    assert entropy_rate([0.3, 0.1], edge=0.01) == (pytest.approx(0.4, rel=1e-12), True)


@pytest.mark.parametrize("lambda_1,verdict", [(0.02, "chaotic"), (0.01, "edge-of-chaos"),
                                              (-0.0099, "edge-of-chaos"), (-0.02, "stable"),
                                              (-math.inf, "stable")])
def test_verdict_thresholds(lambda_1, verdict):
    assert lyapunov_verdict(lambda_1, 0.001, 0.01)[0] == verdict


# --- the report --------------------------------------------------------------------------------


def test_report_round_trips_through_strict_json():
    w = matrix_with_moduli([1.2], [0.9, 0.5], seed=9)
    report = lyapunov(elman(w), k=4, steps=300, burn_in=50, batch=2, input_scale=0.0,
                      bptt_lags="1..20")
    text = json.dumps(report.to_dict(), allow_nan=False)
    data = json.loads(text)
    assert data["command"] == "lyapunov" and data["schema_version"] == 1
    item = data["recurrences"][0]
    assert item["exponents"] == pytest.approx(sorted(item["exponents"], reverse=True), abs=0)
    assert len(item["exponents_stderr"]) == 4 and item["weight_hh"] == "rnn.weight_hh_l0"
    assert LyapunovReport.from_dict(data) == report


@pytest.mark.parametrize("k", [1, 3])
def test_annihilated_directions_are_null_with_a_reason(k):
    """ReLU at rest: every unit dead, every step Jacobian zero: all exponents −∞ (k = 1, the
    normalisation that replaces the QR for λ_1 alone, included)."""
    report = lyapunov(elman(np.eye(5), nonlinearity="relu"), k=k, steps=100, burn_in=10,
                      batch=2, input_scale=0.0)
    data = report.to_dict()["recurrences"][0]
    assert data["exponents"] == [None] * k
    assert "−∞" in data["exponents_reason"] and data["verdict"] == "stable"
    assert LyapunovReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report


def test_overflowing_states_are_unbounded():
    report = lyapunov(elman(3.0 * np.eye(4), nonlinearity="relu", input_weight=1.0), k=2,
                      steps=2000, burn_in=10, batch=2)
    (item,) = report.recurrences
    assert item.verdict == LyapunovVerdict.UNBOUNDED and item.overflow_step is not None
    assert item.exponents == () and "overflowed" in item.reason
    assert LyapunovReport.from_dict(report.to_dict()) == report


def test_k_is_capped_at_the_state_size():
    report = lyapunov(elman(0.5 * np.eye(3)), k=10, steps=50, burn_in=5, batch=1)
    assert len(report.recurrences[0].exponents) == 3
    assert report.recurrences[0].exponents_probe_sd == (None, None, None)  # one probe


def test_file_probe_shorter_than_the_burn_in_is_refused(tmp_path):
    from rnngrad.errors import ProbeError

    np.save(tmp_path / "short.npy", np.zeros((1, 30, 3)))
    with pytest.raises(ProbeError, match="--burn-in 1000 leaves none"):
        lyapunov(elman(0.5 * np.eye(3)), inputs=str(tmp_path / "short.npy"))


@pytest.mark.parametrize("setting", [dict(k=0), dict(edge=-0.1), dict(edge=math.nan),
                                     dict(blocks=1), dict(dtype="float16"), dict(k=True)])
def test_bad_options_are_option_errors(setting):
    from rnngrad.errors import OptionError

    with pytest.raises(OptionError):
        LyapunovOptions(**setting)
