"""rnngrad in the training loop: monitor, clipper, Ω, Lightning, tasks.

Oracles: torch's own gradient norms and ``clip_grad_norm_``; NumPy statistics; Ω recomputed
here from ``torch.func.jacrev`` through PyTorch's own cells and checked by finite differences;
TensorBoard's own event reader.
"""

from __future__ import annotations

import copy
import csv
import json
import math

import numpy as np
import pytest
import torch

import rnngrad
from rnngrad.train import Clipper, GradientMonitor, adding_problem, omega
from rnngrad.train.report import MonitorSummary


class AddingRNN(torch.nn.Module):
    def __init__(self, cell: str = "rnn", hidden: int = 12, layers: int = 1,
                 bidirectional: bool = False) -> None:
        super().__init__()
        kind = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
        self.rnn = kind(2, hidden, num_layers=layers, batch_first=True,
                        bidirectional=bidirectional)
        self.fc = torch.nn.Linear(hidden * (2 if bidirectional else 1), 1)

    def forward(self, x):
        return self.fc(self.rnn(x)[0][:, -1])


def train(model, steps: int, monitor=None, clipper=None, seed: int = 0, lr: float = 0.05):
    data = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    for _ in range(steps):
        x, y = adding_problem(8, 20, data)
        loss = torch.nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        if monitor is not None:
            monitor.step()
        if clipper is not None:
            clipper.clip_(model.parameters())
        optimizer.step()
    return model


def fresh(seed: int = 1, **kwargs) -> AddingRNN:
    torch.manual_seed(seed)
    return AddingRNN(**kwargs)


# --- tasks ----------------------------------------------------------------------------------


def test_adding_problem_marks_one_value_in_each_half():
    x, y = adding_problem(64, 30, torch.Generator().manual_seed(0))
    markers = x[..., 1]
    assert torch.equal(markers.sum(dim=1), torch.full((64,), 2.0))
    assert torch.all(markers[:, :15].sum(dim=1) == 1) and torch.all(markers[:, 15:].sum(dim=1) == 1)
    assert torch.allclose(y[:, 0], (x[..., 0] * markers).sum(dim=1), rtol=0, atol=1e-6)


# --- monitor --------------------------------------------------------------------------------


def test_training_is_bit_for_bit_the_same_with_the_monitor(tmp_path):
    plain = train(fresh(), 12)
    watched = fresh()
    monitor = GradientMonitor(watched, every=5, log=tmp_path / "m.jsonl")
    train(watched, 12, monitor)
    for a, b in zip(plain.parameters(), watched.parameters()):
        assert torch.equal(a, b)
    assert len(monitor.points) == 3  # steps 1, 5, 10


def test_monitor_records_the_real_gradient_norm_and_the_profile():
    model = fresh()
    records = []
    monitor = GradientMonitor(model, every=4, log=records.append, lyapunov_every=0)
    data = torch.Generator().manual_seed(3)
    x, y = adding_problem(8, 20, data)
    loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward()
    expected = float(torch.sqrt(sum((p.grad ** 2).sum() for p in model.parameters())))
    assert monitor.step() == pytest.approx(expected, rel=1e-6)
    assert records[0] == {"step": 1, "grad_norm": pytest.approx(expected, rel=1e-6)}
    profile = [r for r in records if "recurrence" in r][0]
    # the same profile as rnngrad bptt on the same weights with the monitor's options
    report = rnngrad.bptt(copy.deepcopy(model), monitor.options)
    assert profile["profile"] == {str(row.lag): pytest.approx(row.log10_norm, rel=1e-12)
                                  for row in report.recurrences[0].rows}
    radius = np.max(np.abs(np.linalg.eigvals(model.rnn.weight_hh_l0.detach().double().numpy())))
    assert profile["spectral_radius"] == pytest.approx(radius, rel=1e-9)


def test_monitor_lambda_1_closed_form_and_cadence():
    """No input, no bias: the state stays at 0, where tanh' = 1, so J_t = W_hh = 0.8 Q (Q
    orthogonal) at every step and λ_1 = ln 0.8 exactly; λ_1 is measured at the first profile
    and every ``lyapunov_every`` steps, not at the others."""
    torch.manual_seed(0)
    model = AddingRNN(hidden=16).double()
    q, _ = torch.linalg.qr(torch.randn(16, 16, dtype=torch.float64))
    with torch.no_grad():
        model.rnn.weight_hh_l0.copy_(0.8 * q)
        for name in ("weight_ih_l0", "bias_ih_l0", "bias_hh_l0"):
            getattr(model.rnn, name).zero_()
    monitor = GradientMonitor(model, every=2, lyapunov_every=4)
    for _ in range(4):
        monitor.step()
    assert [p.step for p in monitor.points] == [1, 2, 4]
    values = [p.recurrences[0].lyapunov for p in monitor.points]
    assert values[0] == pytest.approx(math.log(0.8), abs=1e-9)
    assert values[1] is None and values[2] == pytest.approx(math.log(0.8), abs=1e-9)


def test_monitor_summary_round_trips_and_renders(tmp_path):
    model = fresh(cell="lstm")
    monitor = GradientMonitor(model, every=3, lyapunov_every=0)
    train(model, 6, monitor)
    summary = monitor.summary()
    assert summary.steps == 6 and [p.step for p in summary.points] == [1, 3, 6]
    assert summary.grad_norms.count == 6
    assert MonitorSummary.from_dict(json.loads(json.dumps(summary.to_dict()))) == summary
    from rnngrad.render import render_text

    table = render_text(summary, "table")
    assert "rnn L0" in table and "grad" in table
    assert "| step |" in render_text(summary, "markdown")


def test_file_sinks(tmp_path):
    model = fresh()
    train(model, 4, GradientMonitor(model, every=2, log=tmp_path / "m.csv", lyapunov_every=0))
    rows = list(csv.DictReader((tmp_path / "m.csv").open()))
    assert [r["step"] for r in rows if r["name"] == "grad_norm"] == ["1", "2", "3", "4"]
    assert any(r["name"] == "rnn L0/log10_norm@50" for r in rows)
    train(model, 2, GradientMonitor(model, every=2, log=tmp_path / "m.jsonl", lyapunov_every=0))
    lines = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert lines[0]["step"] == 1 and "grad_norm" in lines[0]


def test_tensorboard_sink_writes_scalars_and_the_profile(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    model = fresh()
    monitor = GradientMonitor(model, every=2, log=tmp_path / "tb", lyapunov_every=0)
    train(model, 4, monitor)
    monitor.close()
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    tags = events.Tags()
    assert [e.step for e in events.Scalars("rnngrad/grad_norm")] == [1, 2, 3, 4]
    assert "rnngrad/rnn L0/spectral_radius" in tags["scalars"]
    assert "rnngrad/rnn L0/profile" in tags["images"]


def test_monitor_refuses_a_bad_every():
    from rnngrad.errors import OptionError

    with pytest.raises(OptionError, match="every"):
        GradientMonitor(fresh(), every=0)


# --- clipper --------------------------------------------------------------------------------


@pytest.mark.parametrize("rule", ["pascanu", "autoclip"])
@pytest.mark.parametrize("warmup", [0, 3])
def test_clipper_rules_follow_the_norms_seen(rule, warmup):
    """Each step's norm joins the statistics before its threshold is taken (AutoClip's
    algorithm); with a warm-up, nothing is clipped until more than ``warmup`` norms are in."""
    model = fresh()
    clipper = Clipper(rule, warmup=warmup)
    reference = copy.deepcopy(model)
    data = torch.Generator().manual_seed(0)
    seen = []
    for step in range(8):
        x, y = adding_problem(8, 20, data)
        for net in (model, reference):
            net.zero_grad()
            torch.nn.functional.mse_loss(net(x), y).backward()
        seen.append(float(torch.nn.utils.get_total_norm(
            [p.grad for p in reference.parameters()])))
        expected = (None if len(seen) <= warmup else float(np.mean(seen)) if rule == "pascanu"
                    else float(np.percentile(seen, 10)))
        threshold, norm = clipper.clip_(model.parameters())
        assert norm == pytest.approx(seen[-1], rel=1e-6)
        if expected is None:
            assert threshold is None
        else:
            assert threshold == pytest.approx(expected, rel=1e-6)
            torch.nn.utils.clip_grad_norm_(reference.parameters(), threshold)
        for a, b in zip(model.parameters(), reference.parameters()):
            assert torch.allclose(a.grad, b.grad, rtol=1e-6, atol=1e-9)
        assert clipper.threshold == threshold
    assert clipper.clipped > 0


def test_clipper_resumes_from_its_state_dict():
    """A clipper restored from a JSON state_dict after 3 steps gives the same thresholds on
    steps 4-6 as one clipper that ran all six."""
    def feed(clipper, scales):
        used = []
        for scale in scales:
            weight = torch.zeros(3, requires_grad=True)
            weight.grad = torch.full((3,), float(scale))
            used.append(clipper.clip_([weight])[0])
        return used

    scales = [5.0, 1.0, 3.0, 8.0, 0.5, 2.0]
    straight = feed(Clipper("autoclip", warmup=2), scales)
    first = Clipper("autoclip", warmup=2)
    feed(first, scales[:3])
    resumed = Clipper("pascanu")
    resumed.load_state_dict(json.loads(json.dumps(first.state_dict())))
    assert resumed.rule == "autoclip" and resumed.norms == first.norms
    assert resumed.threshold == first.threshold
    assert feed(resumed, scales[3:]) == straight[3:]


def test_fixed_clipper_and_bad_rules():
    from rnngrad.errors import OptionError

    clipper = Clipper.fixed(0.5)
    assert clipper.threshold == 0.5
    with pytest.raises(OptionError):
        Clipper("sometimes")
    with pytest.raises(OptionError):
        Clipper("fixed")


# --- omega ----------------------------------------------------------------------------------


def reference_omega(module, x, loss_fn):
    """Ω from PyTorch's own cells: states by nn.*Cell, step Jacobians by jacrev, δ by autograd
    (then held constant); one layer, one direction."""
    cell_type = {torch.nn.RNN: torch.nn.RNNCell, torch.nn.GRU: torch.nn.GRUCell,
                 torch.nn.LSTM: torch.nn.LSTMCell}[type(module)]
    cell = cell_type(module.input_size, module.hidden_size).double()
    params = {"weight_ih": module.weight_ih_l0, "weight_hh": module.weight_hh_l0,
              "bias_ih": module.bias_ih_l0, "bias_hh": module.bias_hh_l0}
    lstm = isinstance(module, torch.nn.LSTM)
    hidden = module.hidden_size

    def step(state, inp):
        if lstm:
            h, c = torch.func.functional_call(cell, params, (inp, (state[..., :hidden],
                                                                   state[..., hidden:])))
            return torch.cat([h, c], dim=-1)
        return torch.func.functional_call(cell, params, (inp, state))

    batch = x.shape[0]
    state = x.new_zeros(batch, 2 * hidden if lstm else hidden)
    states, previous = [], []
    for t in range(x.shape[1]):
        previous.append(state)
        state = step(state, x[:, t])
        states.append(state)
    outputs = torch.stack([s[..., :hidden] for s in states], dim=1)
    deltas = [d.detach() for d in torch.autograd.grad(loss_fn(outputs), states,
                                                      retain_graph=True)]
    total = x.new_zeros(())
    for k in range(len(states)):
        for b in range(batch):
            jac = torch.func.jacrev(lambda s: step(s[None], x[b:b + 1, k])[0])(previous[k][b])
            size = deltas[k][b].norm()
            if size > 0:
                total = total + ((deltas[k][b] @ jac).norm() / size - 1) ** 2
    return total / batch


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_omega_and_its_gradient_match_an_independent_implementation(cell):
    torch.manual_seed(4)
    kind = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
    module = kind(3, 5, batch_first=True).double()
    x = torch.randn(2, 7, 3, dtype=torch.float64)
    readout = torch.randn(5, dtype=torch.float64)

    def loss_fn(out):
        return (out[:, -1] @ readout).pow(2).mean()

    ours = omega(module, x, loss_fn)
    ours_grad = torch.autograd.grad(ours, module.weight_hh_l0)[0]
    theirs = reference_omega(module, x, loss_fn)
    theirs_grad = torch.autograd.grad(theirs, module.weight_hh_l0)[0]
    assert float(ours) == pytest.approx(float(theirs), rel=1e-10, abs=1e-12)
    assert torch.allclose(ours_grad, theirs_grad, rtol=1e-8, atol=1e-10)


def test_omega_gradient_matches_finite_differences_with_the_deltas_held():
    torch.manual_seed(5)
    module = torch.nn.RNN(3, 4, batch_first=True).double()
    x = torch.randn(2, 6, 3, dtype=torch.float64)
    readout = torch.randn(4, dtype=torch.float64)

    def loss_fn(out):
        return (out[:, -1] @ readout).sum()

    grad = torch.autograd.grad(omega(module, x, loss_fn), module.weight_hh_l0)[0]
    # δ depends on θ too; hold it: E is linear in s_T, so here δ_T = u is constant and the
    # earlier δ are u J_T ···, which Ω's definition holds fixed. Finite differences of the
    # reference with δ frozen at θ:
    frozen = _omega_frozen(module, x, loss_fn)
    eps = 1e-6
    for i, j in [(0, 0), (1, 2), (3, 1)]:
        with torch.no_grad():
            module.weight_hh_l0[i, j] += eps
        up = frozen(module)
        with torch.no_grad():
            module.weight_hh_l0[i, j] -= 2 * eps
        down = frozen(module)
        with torch.no_grad():
            module.weight_hh_l0[i, j] += eps
        assert float(grad[i, j]) == pytest.approx((up - down) / (2 * eps), rel=1e-5, abs=1e-8)


def _omega_frozen(module, x, loss_fn):
    """Ω(θ) with δ computed once at the current θ and frozen (the definition's derivative)."""
    states = []
    state = x.new_zeros(x.shape[0], module.hidden_size)
    for t in range(x.shape[1]):
        state = torch.tanh(x[:, t] @ module.weight_ih_l0.T + module.bias_ih_l0
                           + state @ module.weight_hh_l0.T + module.bias_hh_l0)
        states.append(state)
    outputs = torch.stack(states, dim=1)
    deltas = [d.detach() for d in torch.autograd.grad(loss_fn(outputs), states)]

    def value(mod):
        with torch.no_grad():
            total, state = 0.0, x.new_zeros(x.shape[0], mod.hidden_size)
            for t in range(x.shape[1]):
                new = torch.tanh(x[:, t] @ mod.weight_ih_l0.T + mod.bias_ih_l0
                                 + state @ mod.weight_hh_l0.T + mod.bias_hh_l0)
                jac = (1 - new ** 2)[:, :, None] * mod.weight_hh_l0  # diag(1 − h²) W
                for b in range(x.shape[0]):
                    size = deltas[t][b].norm()
                    total += float(((deltas[t][b] @ jac[b]).norm() / size - 1) ** 2)
                state = new
            return total / x.shape[0]

    return value


def test_omega_as_a_loss_term_trains():
    model = fresh(cell="gru")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    data = torch.Generator().manual_seed(0)
    x, y = adding_problem(8, 15, data)
    before = float(omega(model.rnn, x, lambda out: torch.nn.functional.mse_loss(
        model.fc(out[:, -1]), y)))
    for _ in range(20):
        optimizer.zero_grad()
        reg = omega(model.rnn, x, lambda out: torch.nn.functional.mse_loss(model.fc(out[:, -1]), y))
        reg.backward()
        optimizer.step()
    after = float(omega(model.rnn, x, lambda out: torch.nn.functional.mse_loss(
        model.fc(out[:, -1]), y)))
    assert after < before


# --- optional dependencies ------------------------------------------------------------------


@pytest.mark.slow
def test_importing_train_needs_neither_tensorboard_nor_lightning():
    import subprocess
    import sys

    code = ("import sys, rnngrad.train; rnngrad.train.GradientMonitor; rnngrad.train.Clipper; "
            "print([m for m in ('tensorboard', 'lightning', 'pytorch_lightning') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip() == "[]", out.stderr


@pytest.mark.slow
def test_lightning_trainer_fit_with_the_callback(tmp_path):
    import lightning.pytorch as pl
    from lightning.pytorch.loggers import CSVLogger

    from rnngrad.lightning import RnngradCallback

    class Module(pl.LightningModule):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.net = AddingRNN()

        def training_step(self, batch, _):
            x, y = batch
            return torch.nn.functional.mse_loss(self.net(x), y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.05)

    x, y = adding_problem(64, 20, torch.Generator().manual_seed(0))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)
    callback = RnngradCallback(every=4, clip="autoclip", lyapunov_every=0)
    callback.clipper.warmup = 2
    trainer = pl.Trainer(max_epochs=1, logger=CSVLogger(str(tmp_path)), callbacks=[callback],
                         enable_progress_bar=False, enable_model_summary=False,
                         enable_checkpointing=False, default_root_dir=str(tmp_path))
    trainer.fit(Module(), loader)
    assert callback.monitor.steps == 8 and callback.clipper.steps == 8
    assert callback.clipper.clipped > 0
    (metrics,) = list(tmp_path.rglob("metrics.csv"))
    header = metrics.read_text().splitlines()[0]
    assert "rnngrad/grad_norm" in header and "rnngrad/net.rnn L0/spectral_radius" in header
    restored = RnngradCallback(clip="autoclip")
    restored.load_state_dict(callback.state_dict())
    assert restored.clipper.norms == callback.clipper.norms


def test_the_example_training_script_runs(tmp_path, monkeypatch, capsys):
    """examples/train_adding.py with the shipped data, a few steps, so it never rots."""
    import runpy
    import sys

    from conftest import ROOT

    log = tmp_path / "adding.jsonl"
    monkeypatch.setattr(sys, "argv", ["train_adding.py", "--steps", "6", "--every", "3",
                                      "--log", str(log)])
    runpy.run_path(str(ROOT / "examples" / "train_adding.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "rnngrad monitor" in out and "Clipper(rule='autoclip'" in out
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["step"] for r in records if "grad_norm" in r] == [1, 2, 3, 4, 5, 6]


def test_gradient_norm_of_huge_or_absent_gradients_never_raises():
    from rnngrad.train.monitor import gradient_norm

    layer = torch.nn.Linear(3, 2).double()
    assert gradient_norm(layer) == 0.0  # no gradients yet
    for parameter in layer.parameters():
        parameter.grad = torch.full_like(parameter, 1e200)  # squares past float64's range
    assert gradient_norm(layer) in (math.inf, pytest.approx(math.sqrt(8) * 1e200, rel=1e-12))
    for parameter in layer.parameters():
        parameter.grad = torch.full_like(parameter, 3.0)
    assert gradient_norm(layer) == pytest.approx(math.sqrt(8 * 9), rel=1e-15)
