"""The clip recommendation in every regime: healthy, exploding gradients, exploding states.

Oracles: per-probe parameter-gradient norms and truncated-BPTT gradient norms computed here
by autograd through PyTorch's own ``nn.RNN`` (a hand-written truncation: the hidden state is
detached ℓ* steps before the end), never through rnngrad's code.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import rnngrad
from conftest import SAMPLES, run_json
from rnngrad.bptt.clipping import ClipRecommendation


def chaotic_rnn(gain: float = 3.0, hidden: int = 32, seed: int = 0) -> torch.nn.RNN:
    """A tanh RNN with W_hh ~ N(0, gain²/H): bounded states, exploding gradients."""
    torch.manual_seed(seed)
    module = torch.nn.RNN(6, hidden, batch_first=True).double()
    with torch.no_grad():
        module.weight_hh_l0.copy_(torch.randn(hidden, hidden, dtype=torch.float64)
                                  * gain / hidden ** 0.5)
    return module


def readout_loss(output_last: torch.Tensor, index: int, seed: int = 0) -> torch.Tensor:
    """rnngrad's default probe loss for probe ``index``: a seeded random unit readout of the
    top output at T (docs/theory.md, "Clipping thresholds"; rnngrad.probes.heads)."""
    rng = np.random.default_rng([seed, 11, index])
    u = rng.standard_normal(output_last.shape[-1])
    return output_last @ torch.as_tensor(u / np.linalg.norm(u))


def truncated_gradient_norm(module: torch.nn.RNN, x: np.ndarray, horizon: int | None,
                            index: int) -> float:
    """‖∂E/∂θ‖ through nn.RNN, with the state detached ``horizon`` steps before the end."""
    module.zero_grad()
    seq = torch.from_numpy(x[None])
    h = torch.zeros(1, 1, module.hidden_size, dtype=torch.float64)
    cut = seq.shape[1] - (horizon if horizon is not None else seq.shape[1])
    if cut > 0:
        _, h = module(seq[:, :cut], h)
        h = h.detach()
    out, _ = module(seq[:, cut:], h)
    readout_loss(out[0, -1], index).backward()
    return float(torch.sqrt(sum((p.grad.double() ** 2).sum() for p in module.parameters())))


def probe_inputs(tmp_path, batch: int = 3, steps: int = 60, seed: int = 1):
    x = np.random.default_rng(seed).standard_normal((batch, steps, 6))
    np.save(tmp_path / "x.npy", x)
    return x, str(tmp_path / "x.npy")


def test_healthy_profile_recommends_pascanus_average(tmp_path):
    module = chaotic_rnn(gain=0.5)
    x, path = probe_inputs(tmp_path)
    report = rnngrad.bptt(module, lags="1..60", inputs=path)
    clip = report.clip
    expected = [truncated_gradient_norm(module, x[b], None, b) for b in range(3)]
    assert (clip.rule, clip.regime, clip.horizon) == ("pascanu", "healthy", None)
    assert clip.max_norm == pytest.approx(np.mean(expected), rel=1e-9)
    assert clip.trusted and "max_norm=" in clip.line


def test_exploding_gradients_take_the_healthy_horizon(tmp_path):
    module = chaotic_rnn(gain=3.0)
    x, path = probe_inputs(tmp_path)
    report = rnngrad.bptt(module, lags="1..60", inputs=path)
    (profile,) = report.recurrences
    clip = report.clip
    assert profile.verdict == "exploding" and clip.regime == "exploding"
    assert clip.rule == "horizon" and clip.trusted
    # ℓ*: the last lag before the per-lag norm passes --explode-above (1e4)
    inside = [row.lag for row in profile.rows if row.log10_norm <= 4]
    first_out = min(row.lag for row in profile.rows if row.log10_norm > 4)
    assert clip.horizon == max(lag for lag in inside if lag < first_out) == first_out - 1
    truncated = [truncated_gradient_norm(module, x[b], clip.horizon, b) for b in range(3)]
    full = [truncated_gradient_norm(module, x[b], None, b) for b in range(3)]
    assert clip.norms == pytest.approx(truncated, rel=1e-9)
    assert clip.max_norm == pytest.approx(np.mean(truncated), rel=1e-9)
    assert clip.full_mean == pytest.approx(np.mean(full), rel=1e-9)
    assert clip.max_norm < clip.full_mean / 100  # the explosion is not the threshold
    assert f"after lag {clip.horizon}" in clip.advice and "max_norm=" in clip.line


def test_asking_for_pascanu_on_exploding_gradients_says_so(tmp_path):
    module = chaotic_rnn(gain=3.0)
    _, path = probe_inputs(tmp_path)
    clip = rnngrad.bptt(module, lags="1..60", inputs=path, clip_rule="pascanu").clip
    assert clip.rule == "pascanu" and clip.regime == "exploding" and not clip.trusted
    assert clip.max_norm == pytest.approx(clip.full_mean, rel=1e-12)
    assert "rests on exploding gradients" in clip.advice


def test_exploding_states_give_no_threshold():
    """ReLU with ρ(W) = 1.1: the states themselves grow 1.1^100 ≈ 1.4e4 over the window."""
    code, document = run_json("bptt", SAMPLES / "elman_exploding.safetensors", "--batch", "2")
    clip = document["clip"]
    assert code == 0 and clip["regime"] == "states-explode"
    assert clip["max_norm"] is None and clip["trusted"] is False
    assert clip["line"].startswith("no clip threshold") and "forward states" in clip["line"]
    assert clip["mean"] > 1e6  # the norms are there to see, the number is not recommended
    assert "max_norm_reason" in clip


def test_table_marks_a_threshold_that_rests_on_exploding_gradients(tmp_path):
    from conftest import run_cli

    state = {f"rnn.{k}": v for k, v in chaotic_rnn(gain=3.0).state_dict().items()}
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "m.safetensors"))
    _, path = probe_inputs(tmp_path)
    result = run_cli("bptt", tmp_path / "m.safetensors", "--inputs", path, "--lags", "1..60",
                     "--clip-rule", "autoclip")
    assert result.returncode == 0
    assert "rests on exploding gradients" in " ".join(result.stdout.split())


def test_clip_recommendation_round_trips():
    clip = rnngrad.bptt(chaotic_rnn(gain=3.0), lags="1..60", batch=2).clip
    again = ClipRecommendation.from_dict(json.loads(json.dumps(clip.to_dict())))
    assert again == clip


@pytest.mark.parametrize("lr, top, gradient_norm, expected, says", [
    (0.5, 10.0, 2.0, 0.4, "below the average"),        # ‖g‖/(ηλ) = 0.4 < mean 2
    (0.01, 10.0, 2.0, 2.0, "bounds it"),               # bound 20 > mean: the average
    (0.5, -3.0, 2.0, 2.0, "no direction curves"),      # no upward curvature
    (0.5, 10.0, float("inf"), 2.0, "not finite"),      # no usable gradient
])
def test_curvature_rule_closed_forms(lr, top, gradient_norm, expected, says):
    from rnngrad.bptt.clipping import recommend_by_curvature
    clip = recommend_by_curvature(np.array([1.0, 2.0, 3.0]), gradient_norm=gradient_norm,
                                  largest_eigenvalue=top, lr=lr, loss="mse")
    assert clip.rule == "curvature" and clip.lr == lr
    assert clip.max_norm == pytest.approx(expected, rel=1e-15)
    assert says in clip.advice
    assert clip.clipped_share == pytest.approx(np.mean(np.array([1.0, 2.0, 3.0]) > expected),
                                               abs=0)
    assert "rnngrad surface" not in clip.caveat  # it is the surface's own rule
    assert ClipRecommendation.from_dict(json.loads(json.dumps(clip.to_dict()))) == clip


def test_bptt_points_to_the_curvature_rule(tmp_path):
    report = rnngrad.bptt(chaotic_rnn(gain=0.5), lags="1..5", batch=2)
    assert "rnngrad surface MODEL --lr" in report.clip.caveat


def test_zero_gradients_give_no_threshold():
    """max_norm=0 would zero every gradient: saturated probes get no threshold, and say why."""
    from rnngrad.bptt.clipping import recommend

    for norms in (np.zeros(4), np.full(4, 1e-320)):
        clip = recommend(norms)
        assert clip.max_norm is None and "nothing to clip" in clip.advice
        assert clip.line.startswith("no clip threshold")
