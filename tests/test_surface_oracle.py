"""``rnngrad surface`` against independent oracles: autograd through PyTorch's own modules, the
dense Hessian of ``torch.autograd.functional.hessian``, and truncated BPTT run by hand.

Cases are data (module, loss, θ); each is turned into a source, a probe and targets and
compared with the oracle of :mod:`surface_oracle`, all in float64.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rnngrad
from rnngrad.io import from_state_dict
from surface_oracle import Model, gradient, hessian_figures, loss_function

RTOL = 1e-6
BATCH, STEPS, INPUTS, HIDDEN, CLASSES = 3, 6, 3, 4, 2

CASES = {
    "rnn-tanh-mse": (torch.nn.RNN, dict(), "mse"),
    "rnn-relu-readout": (torch.nn.RNN, dict(nonlinearity="relu"), "readout"),
    "lstm-ce": (torch.nn.LSTM, dict(), "ce"),
    "gru-mse": (torch.nn.GRU, dict(), "mse"),
    "rnn-stacked-bidir-mse": (torch.nn.RNN, dict(num_layers=2, bidirectional=True), "mse"),
    "gru-stacked-bidir-ce": (torch.nn.GRU, dict(num_layers=2, bidirectional=True), "ce"),
    "lstm-stacked-readout": (torch.nn.LSTM, dict(num_layers=2), "readout"),
}


def make_case(name: str, tmp_path, seed: int = 0):
    """(PyTorch model, rnngrad source, settings, inputs, targets) of a case."""
    cls, kwargs, loss = CASES[name]
    torch.manual_seed(seed)
    rnn = cls(INPUTS, HIDDEN, batch_first=True, **kwargs).double()
    with torch.no_grad():  # livelier dynamics than the default init
        for pname, param in rnn.named_parameters():
            if pname.startswith("weight_hh"):
                param.mul_(2.0)
    width = HIDDEN * (2 if rnn.bidirectional else 1)
    head = torch.nn.Linear(width, CLASSES).double() if loss != "readout" else None
    model = Model(rnn, head)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((BATCH, STEPS, INPUTS))
    np.save(tmp_path / "x.npy", x)
    settings = dict(inputs=str(tmp_path / "x.npy"), loss=loss, lengths="2,4,6", points=9,
                    sgd_steps=2)
    targets = None
    if loss == "mse":
        targets = rng.standard_normal((BATCH, CLASSES))
        np.save(tmp_path / "t.npy", targets)
        settings["targets"] = str(tmp_path / "t.npy")
        targets = torch.as_tensor(targets)
    elif loss == "ce":
        targets = rng.integers(0, CLASSES, size=BATCH)
        np.save(tmp_path / "t.npy", targets)
        settings["targets"] = str(tmp_path / "t.npy")
        targets = torch.as_tensor(targets)
    metadata = {"rnn.nonlinearity": rnn.nonlinearity} if isinstance(rnn, torch.nn.RNN) else {}
    source = from_state_dict(model.state_dict(), metadata=metadata)
    return model, source, settings, torch.as_tensor(x), targets


def theta_names(source, settings) -> list[str]:
    energy = rnngrad.surface.loss_function(source, **settings)
    return [p.name for p in energy.parameters if p.in_theta]


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradient_matches_autograd_through_pytorch_modules(name, tmp_path):
    model, source, settings, x, targets = make_case(name, tmp_path)
    energy = rnngrad.surface.loss_function(source, **settings)
    names = [p.name for p in energy.parameters if p.in_theta]
    oracle, theta = loss_function(model, names, x, settings["loss"], targets)
    assert torch.allclose(energy.theta, theta, rtol=0, atol=0)
    assert float(energy(energy.theta)) == pytest.approx(float(oracle(theta)), rel=1e-12,
                                                        abs=1e-15)
    expected = gradient(oracle, theta)
    got = torch.func.grad(energy)(energy.theta)
    assert torch.allclose(got, expected, rtol=1e-10, atol=1e-13)


# the dense Hessian of the two-layer bidirectional GRU (n = 570) takes seconds
SLOW = {"gru-stacked-bidir-ce", "lstm-stacked-readout", "rnn-stacked-bidir-mse"}


@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.slow) if name in SLOW
                                  else name for name in sorted(CASES)])
def test_curvature_matches_the_dense_hessian(name, tmp_path):
    model, source, settings, x, targets = make_case(name, tmp_path)
    report = rnngrad.surface(source, **settings)
    names = theta_names(source, settings)
    assert report.parameter_count == sum(model.state_dict()[n].numel() for n in names)
    oracle, theta = loss_function(model, names, x, settings["loss"], targets)
    want = hessian_figures(oracle, theta)
    c = report.curvature
    scale = max(abs(want["largest"]), abs(want["smallest"]))
    assert c.converged
    assert c.largest_eigenvalue == pytest.approx(want["largest"], rel=RTOL, abs=RTOL * scale)
    assert c.smallest_eigenvalue == pytest.approx(want["smallest"], rel=RTOL, abs=RTOL * scale)
    assert c.top_eigenvalue == pytest.approx(want["top"], rel=RTOL, abs=RTOL * scale)
    assert c.along_gradient == pytest.approx(want["along"], rel=RTOL, abs=RTOL * scale)
    assert c.cos_gradient_top == pytest.approx(want["cos"], rel=1e-5, abs=1e-6)
    assert report.gradient_norm == pytest.approx(want["gradient_norm"], rel=1e-10, abs=0)
    # the stated accuracy holds: the true eigenvalue lies within the residual
    assert abs(c.largest_eigenvalue - want["largest"]) <= c.largest_residual + 1e-12 * scale


@pytest.mark.parametrize("params", ["recurrent", "hh"])
def test_theta_subsets_match_the_dense_hessian(params, tmp_path):
    model, source, settings, x, targets = make_case("rnn-tanh-mse", tmp_path)
    settings["params"] = params
    report = rnngrad.surface(source, **settings)
    names = theta_names(source, settings)
    assert names == (["rnn.weight_hh_l0"] if params == "hh" else
                     ["rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0", "rnn.bias_hh_l0"])
    oracle, theta = loss_function(model, names, x, "mse", targets)
    want = hessian_figures(oracle, theta)
    assert report.curvature.top_eigenvalue == pytest.approx(want["top"], rel=RTOL)
    assert report.curvature.along_gradient == pytest.approx(want["along"], rel=RTOL)
    fixed = [row for row in report.parameters if not row.in_theta]
    assert {row.name for row in fixed} == {n for n in model.state_dict()} - set(names)
    assert all(row.gradient_norm is None for row in fixed)


def test_per_tensor_gradient_norms(tmp_path):
    model, source, settings, x, targets = make_case("lstm-ce", tmp_path)
    report = rnngrad.surface(source, **settings)
    names = theta_names(source, settings)
    oracle, theta = loss_function(model, names, x, "ce", targets)
    g = gradient(oracle, theta)
    offset = 0
    rows = {row.name: row for row in report.parameters}
    for name in names:
        size = model.state_dict()[name].numel()
        assert rows[name].gradient_norm == pytest.approx(float(g[offset:offset + size].norm()),
                                                         rel=1e-10, abs=1e-15)
        offset += size


def truncated_oracle(model, x, targets, horizon):
    """E through the last ``horizon`` steps: h at T − horizon from nn.RNN, held fixed."""
    names = ["rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0", "rnn.bias_hh_l0",
             "head.weight", "head.bias"]
    cut = x.shape[1] - horizon
    with torch.no_grad():
        h0 = model.rnn(x[:, :cut])[1] if cut > 0 else None
    return loss_function(model, names, x[:, cut:], "mse", targets, h0=h0)


def test_growth_rows_are_truncated_bptt(tmp_path):
    model, source, settings, x, targets = make_case("rnn-tanh-mse", tmp_path)
    report = rnngrad.surface(source, **settings)
    assert [row.steps for row in report.by_length] == [2, 4, 6]
    for row in report.by_length:
        oracle, theta = truncated_oracle(model, x, targets, row.steps)
        want = hessian_figures(oracle, theta)
        assert row.gradient_norm == pytest.approx(want["gradient_norm"], rel=1e-10)
        assert row.top_eigenvalue == pytest.approx(want["top"], rel=RTOL)
        assert row.along_gradient == pytest.approx(want["along"], rel=RTOL)
        assert abs(row.top_eigenvalue - want["top"]) <= row.top_residual + 1e-12


def test_step_losses_and_slice_are_the_loss_along_the_gradient(tmp_path):
    model, source, settings, x, targets = make_case("gru-mse", tmp_path)
    report = rnngrad.surface(source, lr=0.3, max_norm=0.05, **settings)
    names = theta_names(source, settings)
    oracle, theta = loss_function(model, names, x, "mse", targets)
    g = gradient(oracle, theta)
    step = report.step
    assert step.loss_unclipped == pytest.approx(float(oracle(theta - 0.3 * g)), rel=1e-10)
    clipped = theta - 0.3 * min(1.0, 0.05 / float(g.norm())) * g
    assert step.loss_clipped == pytest.approx(float(oracle(clipped)), rel=1e-10)
    assert step.clipped_length == pytest.approx(0.3 * 0.05, rel=1e-12)
    unit = g / g.norm()
    for point in report.slice:
        assert point.loss == pytest.approx(float(oracle(theta - point.step * unit)), rel=1e-10)
    path = report.paths.clipped
    assert path[0].loss == pytest.approx(report.loss, rel=1e-12)
    assert path[1].loss == pytest.approx(step.loss_clipped, rel=1e-10)


def per_probe_gradient_norms(model, names, x, targets) -> list[float]:
    norms = []
    for b in range(BATCH):
        oracle, theta = loss_function(model, names, x[b:b + 1], "mse", targets[b:b + 1])
        norms.append(float(gradient(oracle, theta).norm()))
    return norms


def test_pascanu_clip_threshold_is_bptts_rule_on_per_probe_gradients(tmp_path):
    model, source, settings, x, targets = make_case("rnn-tanh-mse", tmp_path)
    report = rnngrad.surface(source, clip_rule="pascanu", **settings)
    norms = per_probe_gradient_norms(model, theta_names(source, settings), x, targets)
    assert report.clip.norms == pytest.approx(norms, rel=1e-10)
    assert report.clip.max_norm == pytest.approx(float(np.mean(norms)), rel=1e-10)
    assert report.step.max_norm == report.clip.max_norm


@pytest.mark.parametrize("lr", [1e-3, 0.5])
def test_curvature_clip_threshold_against_the_dense_hessian(lr, tmp_path):
    """min(mean per-probe norm, ‖g‖/(η λ_max)) with ‖g‖ and λ_max from autograd's dense
    Hessian of the batch loss: a small η leaves the average norm, a large one the bound."""
    model, source, settings, x, targets = make_case("rnn-tanh-mse", tmp_path)
    report = rnngrad.surface(source, lr=lr, **settings)
    names = theta_names(source, settings)
    oracle, theta = loss_function(model, names, x, "mse", targets)
    want = hessian_figures(oracle, theta)
    mean = float(np.mean(per_probe_gradient_norms(model, names, x, targets)))
    bound = want["gradient_norm"] / (lr * want["largest"])
    clip = report.clip
    assert clip.rule == "curvature" and clip.lr == lr
    assert clip.largest_eigenvalue == pytest.approx(want["largest"], rel=RTOL)
    assert clip.max_norm == pytest.approx(min(mean, bound), rel=RTOL)
    assert (bound < mean) == (lr == 0.5)  # the case covers both branches
    assert report.step.max_norm == clip.max_norm
