"""Per-lag norms, gradients and shares against PyTorch's own modules (jacrev/autograd)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from oracle import lag_jacobian, spectral_norm
from rnngrad.bptt import BpttOptions, bptt
from rnngrad.probes import ProbeSpec

RTOL = 1e-6
LAGS = (1, 2, 3, 7, 12)

CONFIGS = {
    "rnn-tanh": (torch.nn.RNN, dict()),
    "rnn-relu": (torch.nn.RNN, dict(nonlinearity="relu")),
    "rnn-nobias": (torch.nn.RNN, dict(bias=False)),
    "rnn-stacked-bidir": (torch.nn.RNN, dict(num_layers=2, bidirectional=True)),
    "gru": (torch.nn.GRU, dict()),
    "gru-stacked-bidir": (torch.nn.GRU, dict(num_layers=2, bidirectional=True)),
    "lstm": (torch.nn.LSTM, dict()),
    "lstm-stacked": (torch.nn.LSTM, dict(num_layers=2)),
    "lstm-proj-bidir": (torch.nn.LSTM, dict(proj_size=3, bidirectional=True, num_layers=2)),
    "lstm-nobias": (torch.nn.LSTM, dict(bias=False)),
}


def make_module(name: str, hidden: int = 7, inputs: int = 4, seed: int = 0) -> torch.nn.Module:
    cls, kwargs = CONFIGS[name]
    torch.manual_seed(seed)
    module = cls(inputs, hidden, batch_first=True, **kwargs).to(torch.float64)
    with torch.no_grad():  # livelier dynamics than the default init, so lags differ visibly
        for pname, param in module.named_parameters():
            if pname.startswith("weight_hh"):
                param.mul_(2.5)
    return module


def state_dict_of(module: torch.nn.Module, prefix: str = "rnn.") -> dict:
    return {prefix + k: v for k, v in module.state_dict().items()}


def run(module, x: np.ndarray, tmp_path, **overrides):
    path = tmp_path / "probe.npy"
    np.save(path, x)
    options = BpttOptions(lags=",".join(map(str, LAGS)), probe=ProbeSpec(inputs=str(path)),
                          **overrides)
    source = {**state_dict_of(module)}
    if isinstance(module, torch.nn.RNN):
        from rnngrad.io import from_state_dict

        source = from_state_dict(source, metadata={"rnn.nonlinearity": module.nonlinearity})
    return bptt(source, options)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_norms_match_jacrev(name, tmp_path):
    module = make_module(name)
    x = np.random.default_rng(1).standard_normal((3, 12, 4))
    report = run(module, x, tmp_path)
    expected_count = module.num_layers * (2 if module.bidirectional else 1)
    assert len(report.recurrences) == expected_count
    for item in report.recurrences:
        rec = item.recurrence
        for row in item.rows:
            truth = [spectral_norm(lag_jacobian(module, torch.from_numpy(x[b:b + 1]),
                                                layer=rec.layer,
                                                reverse=rec.direction == "reverse",
                                                lag=row.lag)) for b in range(3)]
            logs = np.log10(truth)
            assert row.log10_norm == pytest.approx(float(np.mean(logs)), abs=RTOL / math.log(10))
            assert row.norm_min == pytest.approx(min(truth), rel=RTOL)
            assert row.norm_max == pytest.approx(max(truth), rel=RTOL)
            assert row.norm == pytest.approx(10 ** float(np.mean(logs)), rel=RTOL)
            assert row.rate == pytest.approx(row.norm ** (1 / row.lag), rel=RTOL)


@pytest.mark.parametrize("state", ["h", "c"])
def test_lstm_state_blocks_match_jacrev(state, tmp_path):
    module = make_module("lstm-proj-bidir")
    x = np.random.default_rng(2).standard_normal((2, 12, 4))
    report = run(module, x, tmp_path, state=state)
    out = module.proj_size
    block = slice(0, out) if state == "h" else slice(out, out + module.hidden_size)
    for item in report.recurrences:
        assert item.state == state
        rec = item.recurrence
        for row in item.rows:
            truth = [spectral_norm(lag_jacobian(module, torch.from_numpy(x[b:b + 1]),
                                                layer=rec.layer,
                                                reverse=rec.direction == "reverse",
                                                lag=row.lag)[block, block]) for b in range(2)]
            assert row.norm == pytest.approx(10 ** np.mean(np.log10(truth)), rel=RTOL)


def test_frobenius_and_gradient_by_lag_match_autograd(tmp_path):
    module = make_module("gru")
    x = np.random.default_rng(3).standard_normal((1, 12, 4))
    report = run(module, x, tmp_path)
    item = report.recurrences[0]
    # The probe loss is E = uᵀ s_T with rnngrad's seeded unit readout u (seed 0, keyed by the
    # recurrence's weight name); ‖∂E/∂s_(T−ℓ)‖ = ‖uᵀ ∂s_T/∂s_(T−ℓ)‖ from jacrev's Jacobian.
    from rnngrad.bptt.analysis import _readout
    import zlib

    u = _readout(item.state_size, 0, zlib.crc32(item.recurrence.weight_hh.encode()),
                 torch.float64, "cpu")
    for row in item.rows:
        jac = lag_jacobian(module, torch.from_numpy(x), lag=row.lag).detach()
        assert row.frobenius == pytest.approx(float(torch.linalg.matrix_norm(jac)), rel=RTOL)
        assert row.grad_norm == pytest.approx(float(torch.linalg.vector_norm(u @ jac)),
                                              rel=RTOL)


def test_gradient_by_lag_equals_autograd_of_readout(tmp_path):
    """‖∂E/∂s_(T−ℓ)‖ for E = uᵀ s_T, with u read back from the lag-1 gradient direction."""
    from rnngrad.bptt.analysis import _readout
    import zlib

    module = make_module("rnn-tanh")
    x = np.random.default_rng(4).standard_normal((1, 12, 4))
    report = run(module, x, tmp_path)
    u = _readout(7, 0, zlib.crc32(b"rnn.weight_hh_l0"), torch.float64, "cpu")
    for row in report.recurrences[0].rows:
        jac = lag_jacobian(module, torch.from_numpy(x), lag=row.lag)
        assert row.grad_norm == pytest.approx(float(torch.linalg.vector_norm(u @ jac)), rel=RTOL)


def test_w_hh_gradient_shares_match_per_step_autograd(tmp_path):
    """Share of ∂E/∂W_hh from terms more than k steps back, from per-step copies of W_hh."""
    from rnngrad.bptt.analysis import _readout
    import zlib

    module = make_module("rnn-tanh")
    x = np.random.default_rng(5).standard_normal((2, 130, 4))
    path = tmp_path / "p.npy"
    np.save(path, x)
    report = bptt(state_dict_of(module), BpttOptions(lags="1..120", probe=ProbeSpec(
        inputs=str(path))))
    u = _readout(7, 0, zlib.crc32(b"rnn.weight_hh_l0"), torch.float64, "cpu")
    w_ih, w_hh = module.weight_ih_l0.detach(), module.weight_hh_l0.detach()
    b = (module.bias_ih_l0 + module.bias_hh_l0).detach()
    shares = {10: [], 100: []}
    for index in range(2):
        copies = [w_hh.clone().requires_grad_(True) for _ in range(130)]
        h = torch.zeros(7, dtype=torch.float64)
        for t in range(130):
            h = torch.tanh(w_ih @ torch.from_numpy(x[index, t]) + copies[t] @ h + b)
        grads = torch.autograd.grad(u @ h, copies)
        sizes = np.array([float(torch.linalg.matrix_norm(g)) for g in grads])
        lag = np.arange(129, -1, -1)
        for k in shares:
            shares[k].append(sizes[lag > k].sum() / sizes.sum())
    item = report.recurrences[0]
    assert item.share_beyond_10 == pytest.approx(np.mean(shares[10]), rel=1e-9)
    assert item.share_beyond_100 == pytest.approx(np.mean(shares[100]), rel=1e-9, abs=1e-300)


def test_clip_norms_match_per_probe_autograd_through_nn_rnn(tmp_path):
    module = make_module("lstm-stacked")
    x = np.random.default_rng(6).standard_normal((4, 12, 4))
    report = run(module, x, tmp_path)
    expected = []
    for index in range(4):
        module.zero_grad()
        out, _ = module(torch.from_numpy(x[index:index + 1]))
        u = np.random.default_rng([0, 11, index]).standard_normal(7)
        u = torch.from_numpy(u / np.linalg.norm(u))
        (out[0, -1] @ u).backward()
        expected.append(math.sqrt(sum(float((p.grad ** 2).sum()) for p in module.parameters())))
    assert report.clip.norms == pytest.approx(expected, rel=1e-9)
    assert report.clip.rule == "pascanu"
    assert report.clip.max_norm == pytest.approx(np.mean(expected), rel=1e-9)
    assert report.clip.spike_ratio == pytest.approx(max(expected) / np.median(expected), rel=1e-9)
    assert "clip_grad_norm_(model.parameters(), max_norm=" in report.clip.line


def test_tracked_spectral_norms_match_jacrev_above_exact_svd_size(tmp_path):
    """State size above the exact-SVD cut-off: the block Krylov tracker, against jacrev."""
    module = make_module("rnn-tanh", hidden=80)
    module.weight_hh_l0.data.mul_(0.5)
    x = np.random.default_rng(7).standard_normal((2, 12, 4))
    report = run(module, x, tmp_path)
    for row in report.recurrences[0].rows:
        truth = [spectral_norm(lag_jacobian(module, torch.from_numpy(x[b:b + 1]), lag=row.lag))
                 for b in range(2)]
        assert row.norm == pytest.approx(10 ** np.mean(np.log10(truth)), rel=RTOL)


def test_float32_is_close_to_float64(tmp_path):
    module = make_module("gru")
    x = np.random.default_rng(8).standard_normal((2, 12, 4))
    double = run(module, x, tmp_path)
    single = run(module, x, tmp_path, dtype="float32")
    for a, b in zip(double.recurrences[0].rows, single.recurrences[0].rows):
        assert b.norm == pytest.approx(a.norm, rel=1e-3)


def pascanu_omega(module, x: torch.Tensor, u: torch.Tensor, block: slice, window: int) -> float:
    """Ω of Pascanu et al. (2013), eq. 9, for one sequence x (1, T, I), brute force: every
    δ_k = ∂E/∂s_k of E = uᵀ s_T[block] by autograd (retain_grad on each state), every step
    Jacobian ∂s_(k+1)/∂s_k by jacrev through PyTorch's own module."""
    from oracle import run_from, single_layer, state_at
    from torch.func import jacrev

    one = single_layer(module, 0, False)
    steps = x.shape[1]
    states = [state_at(one, x, steps - window).detach().requires_grad_(True)]
    for t in range(steps - window, steps):
        states.append(run_from(one, x[:, t:t + 1], states[-1]))
        states[-1].retain_grad()
    (states[-1][block] @ u).backward()
    omega = 0.0
    for k in range(window):  # the term of the step from s_k to s_(k+1), k = T−L .. T−1
        t = steps - window + k
        jac = jacrev(lambda s: run_from(one, x[:, t:t + 1], s))(states[k].detach())
        delta = states[k + 1].grad
        ratio = torch.linalg.vector_norm(delta @ jac) / torch.linalg.vector_norm(delta)
        omega += (float(ratio.detach()) - 1) ** 2
    return omega


@pytest.mark.parametrize("name,state", [("rnn-tanh", "all"), ("gru", "all"), ("lstm", "all"),
                                        ("lstm", "h")])
def test_pascanu_omega_matches_brute_force_autograd(name, state, tmp_path):
    from rnngrad.bptt.analysis import _readout
    import zlib

    module = make_module(name)
    x = np.random.default_rng(9).standard_normal((2, 12, 4))
    path = tmp_path / "p.npy"
    np.save(path, x)
    report = bptt(state_dict_of(module), BpttOptions(lags="1..10", state=state,
                                                     probe=ProbeSpec(inputs=str(path))))
    item = report.recurrences[0]
    size = 7 if state == "h" else item.state_size
    block = slice(0, size)
    u = _readout(size, 0, zlib.crc32(b"rnn.weight_hh_l0"), torch.float64, "cpu")
    expected = [pascanu_omega(module, torch.from_numpy(x[b:b + 1]), u, block, 10)
                for b in range(2)]
    assert item.omega == pytest.approx(float(np.mean(expected)), rel=1e-9)
    assert item.omega_per_step == pytest.approx(float(np.mean(expected)) / 10, rel=1e-9)
    assert item.omega > 0


def test_omega_is_zero_for_an_orthogonal_linear_chain(tmp_path):
    """At the rest state of a tanh RNN with orthogonal W_hh every backward step is W_hh: it
    keeps the error signal's norm, so Ω = 0 exactly (up to rounding)."""
    from rnngrad.io import from_state_dict

    q, _ = np.linalg.qr(np.random.default_rng(10).standard_normal((7, 7)))
    zeros = torch.zeros(7, dtype=torch.float64)
    source = from_state_dict({"rnn.weight_hh_l0": torch.tensor(q), "rnn.bias_ih_l0": zeros,
                              "rnn.weight_ih_l0": torch.zeros(7, 4, dtype=torch.float64),
                              "rnn.bias_hh_l0": zeros})
    report = bptt(source, BpttOptions(lags="1..50", probe=ProbeSpec(batch=2, steps=50,
                                                                     input_scale=0.0)))
    assert report.recurrences[0].omega == pytest.approx(0.0, abs=1e-20)


def test_omega_is_null_with_a_reason_when_the_error_signal_dies(tmp_path):
    """ReLU at rest with zero bias: every unit is dead, the first backward step zeroes δ and
    the later ratios are 0/0."""
    from rnngrad.io import from_state_dict

    zeros = torch.zeros(7, dtype=torch.float64)
    source = from_state_dict({"rnn.weight_hh_l0": torch.eye(7, dtype=torch.float64),
                              "rnn.weight_ih_l0": torch.zeros(7, 4, dtype=torch.float64),
                              "rnn.bias_ih_l0": zeros, "rnn.bias_hh_l0": zeros},
                             metadata={"rnn.nonlinearity": "relu"})
    report = bptt(source, BpttOptions(lags="1..5", probe=ProbeSpec(batch=2, steps=5)))
    data = report.recurrences[0].to_dict()
    assert data["omega"] is None and data["omega_per_step"] is None
    assert "exactly zero" in data["omega_reason"]


def test_omega_is_exact_across_the_products_rescaling(tmp_path):
    """tanh at rest with W_hh = 3Q (Q orthogonal): every backward step multiplies the error
    signal's norm by exactly 3, so Ω = L·(3 − 1)² = 4L; over 300 lags the product passes
    1e100 (3^300 ≈ 1e143) and is rescaled, which must not leak into Ω's ratios."""
    from rnngrad.io import from_state_dict

    q, _ = np.linalg.qr(np.random.default_rng(11).standard_normal((7, 7)))
    zeros = torch.zeros(7, dtype=torch.float64)
    source = from_state_dict({"rnn.weight_hh_l0": torch.tensor(3 * q), "rnn.bias_ih_l0": zeros,
                              "rnn.weight_ih_l0": torch.zeros(7, 4, dtype=torch.float64),
                              "rnn.bias_hh_l0": zeros})
    report = bptt(source, BpttOptions(lags="1..300", probe=ProbeSpec(batch=2, steps=300,
                                                                      input_scale=0.0)))
    item = report.recurrences[0]
    assert item.rows[-1].log10_norm == pytest.approx(300 * np.log10(3), rel=1e-12)
    assert item.omega == pytest.approx(4 * 300, rel=1e-12)


def test_float32_products_are_rescaled_before_they_overflow(tmp_path):
    """3Q over 150 lags is 3^150 ≈ 1e71, past float32's 3.4e38: the float32 chain must rescale
    (its threshold is float32's, not float64's 1e100) and give log10 ‖P_ℓ‖ = ℓ·log10 3."""
    from rnngrad.io import from_state_dict

    q, _ = np.linalg.qr(np.random.default_rng(12).standard_normal((7, 7)))
    zeros = torch.zeros(7, dtype=torch.float64)
    source = from_state_dict({"rnn.weight_hh_l0": torch.tensor(3 * q), "rnn.bias_ih_l0": zeros,
                              "rnn.weight_ih_l0": torch.zeros(7, 4, dtype=torch.float64),
                              "rnn.bias_hh_l0": zeros})
    report = bptt(source, BpttOptions(lags="1,100,150", dtype="float32",
                                      probe=ProbeSpec(batch=2, steps=150, input_scale=0.0)))
    rows = report.recurrences[0].rows
    assert [row.log10_norm for row in rows] == pytest.approx(
        [np.log10(3), 100 * np.log10(3), 150 * np.log10(3)], rel=1e-5)
