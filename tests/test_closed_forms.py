"""Cases with known answers: linear (J = W), orthogonal (norm 1), and very long products."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rnngrad.bptt import BpttOptions, bptt
from rnngrad.probes import ProbeSpec


def key_model(matrix: np.ndarray) -> dict:
    return {"W_rec": torch.from_numpy(matrix)}


def test_linear_case_lag_jacobian_is_w_to_the_lag():
    """--key with no inputs runs at rest, where tanh'(0) = 1: ∂s_T/∂s_(T−ℓ) = W^ℓ exactly."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((20, 20)) / math.sqrt(20) * 1.1
    report = bptt(key_model(w), BpttOptions(lags="1..60", keys=("W_rec",),
                                            probe=ProbeSpec(batch=2, steps=60)))
    for row in report.recurrences[0].rows:
        power = np.linalg.matrix_power(w, row.lag)
        assert row.norm == pytest.approx(np.linalg.norm(power, 2), rel=1e-9)
        assert row.frobenius == pytest.approx(np.linalg.norm(power), rel=1e-9)


def test_linear_case_direction_is_the_leading_eigenvector():
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.standard_normal((16, 16)))
    w = q @ np.diag(np.linspace(0.3, 1.2, 16)) @ q.T  # symmetric, real leading eigenvalue 1.2
    report = bptt(key_model(w), BpttOptions(lags="1..80", keys=("W_rec",),
                                            probe=ProbeSpec(batch=2, steps=80)))
    directions = report.recurrences[0].directions
    assert directions.cos_right_leading == pytest.approx(1.0, abs=1e-9)
    assert directions.cos_left_leading == pytest.approx(1.0, abs=1e-9)
    assert abs(np.dot(directions.right, q[:, -1])) == pytest.approx(1.0, abs=1e-9)
    assert report.recurrences[0].verdict == "exploding"
    assert 10 ** directions.log10_sigma == pytest.approx(1.2 ** 80, rel=1e-9)


def test_orthogonal_matrix_keeps_norm_one_at_every_lag():
    q, _ = np.linalg.qr(np.random.default_rng(2).standard_normal((24, 24)))
    report = bptt(key_model(q), BpttOptions(lags="1..100", keys=("W_rec",),
                                            probe=ProbeSpec(batch=3, steps=100)))
    item = report.recurrences[0]
    assert item.verdict == "healthy"
    for row in item.rows:
        assert row.norm == pytest.approx(1.0, abs=1e-12)
        assert row.norm_min == pytest.approx(1.0, abs=1e-12)
        assert row.norm_max == pytest.approx(1.0, abs=1e-12)


@pytest.mark.slow
def test_ten_thousand_lags_on_a_chaotic_network_stay_finite_in_log_space():
    """A chaotic tanh RNN (gain 3): the product overflows float64 long before lag 10000."""
    torch.manual_seed(0)
    hidden = 32
    state = {"rnn.weight_ih_l0": torch.randn(hidden, 3, dtype=torch.float64),
             "rnn.weight_hh_l0": torch.randn(hidden, hidden, dtype=torch.float64) * 4 / math.sqrt(hidden)}
    report = bptt(state, BpttOptions(lags="1..10000", probe=ProbeSpec(batch=1, steps=10000,
                                                                       input_scale=0.5)))
    rows = report.recurrences[0].rows
    logs = np.array([row.log10_norm for row in rows])
    assert np.all(np.isfinite(logs))
    assert logs[-1] > 400  # far beyond float64's 1e308
    assert rows[-1].norm is None  # the plain value overflows, log10 carries it
    slope = (logs[-1] - logs[4999]) / 5000  # a steady per-step growth (the top Lyapunov exponent)
    assert slope > 0.01
    assert report.recurrences[0].verdict == "exploding"
    import json

    document = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    clip = document["clip"]
    assert clip["full_mean"] is None  # the whole parameter gradient overflows float64 here
    assert "overflowing" in clip["advice"]
    # the default rule falls back to the gradient over the healthy horizon: a finite number
    assert clip["rule"] == "horizon" and clip["regime"] == "exploding"
    assert 1 <= clip["horizon"] < 100 and math.isfinite(clip["max_norm"])


def test_vanishing_products_underflow_to_finite_logs():
    w = np.eye(8) * 0.01
    report = bptt(key_model(w), BpttOptions(lags="1..200", keys=("W_rec",),
                                            probe=ProbeSpec(batch=1, steps=200)))
    last = report.recurrences[0].rows[-1]
    assert last.log10_norm == pytest.approx(-400.0, abs=1e-9)
    assert last.norm is None
    assert report.recurrences[0].verdict == "vanishing"


def test_nilpotent_matrix_gives_an_exact_zero_not_nan():
    w = np.diag(np.ones(5), k=1)  # W^6 = 0
    report = bptt(key_model(w), BpttOptions(lags="1..10", keys=("W_rec",),
                                            probe=ProbeSpec(batch=1, steps=10)))
    rows = report.recurrences[0].rows
    assert rows[0].norm == pytest.approx(1.0, rel=1e-12)
    # exactly zero: reports hold no ±inf, log10 is None (−∞) and the JSON says why
    assert rows[-1].log10_norm is None and rows[5].log10_norm is None
    assert rows[4].log10_norm == pytest.approx(0.0, abs=1e-12)  # ‖W^5‖ = 1
    document = report.to_dict()
    import json

    text = json.dumps(document, allow_nan=False)
    last = document["recurrences"][0]["lags"][-1]
    assert last["log10_norm"] is None and last["norm"] is None
    assert "zero" in last["norm_reason"] and "zero" in last["log10_norm_reason"]
    assert "NaN" not in text
