"""Real Keras 3 files (torch backend), written here by Keras itself as ``.keras``, ``.weights.h5``
and legacy ``.h5``, read by rnngrad and compared against the Keras layer that wrote them.

The oracle is Keras: the layer's own output sequence (``return_sequences=True``) for the forward
pass, and ‖∂s_T/∂s_(T−ℓ)‖ through ``torch.func.jacrev`` of the Keras cell's own ``call`` for the
per-lag norms. Layers are float64, but Keras' torch backend rounds every ``ops.matmul`` result
to float32 (``BIT64_TO_BIT32_DTYPE`` in keras/src/backend/common/dtypes.py), so the tolerances
are float32's: a wrong activation, gate order or direction is off by far more.
"""

from __future__ import annotations

import os

os.environ["KERAS_BACKEND"] = "torch"  # before keras is imported, here or anywhere

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import reference_cells as ref  # noqa: E402
from rnngrad.bptt import BpttOptions, bptt  # noqa: E402
from rnngrad.cells.base import cell_weights  # noqa: E402
from rnngrad.cells.stack import run_stack  # noqa: E402
from rnngrad.conventions.understand import understand  # noqa: E402
from rnngrad.inspection import inspect  # noqa: E402
from rnngrad.io import load  # noqa: E402
from rnngrad.probes import ProbeSpec  # noqa: E402

keras = pytest.importorskip("keras")
pytest.importorskip("h5py")
# Keras' own numpy-2 DeprecationWarnings, hundreds per run
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
if keras.backend.backend() != "torch":  # pragma: no cover - keras imported earlier elsewhere
    pytest.skip("keras was imported with another backend", allow_module_level=True)

L = keras.layers
T, I, B = 6, 3, 2
LAGS = (1, 3, 6)
FORMATS = ("keras", "h5", "weights.h5")


def _layers():
    """name -> (Keras layer, rnngrad cell, nonlinearity rnngrad must run)."""
    f64 = dict(dtype="float64", return_sequences=True)
    return {
        "simple_relu": (L.SimpleRNN(4, activation="relu", name="enc", **f64), "rnn", "relu"),
        "lstm_relu_hard": (L.LSTM(3, activation="relu", recurrent_activation="hard_sigmoid",
                                  name="enc", **f64), "lstm", "hard_sigmoid/relu"),
        "gru_after_relu": (L.GRU(3, activation="relu", reset_after=True, name="enc", **f64),
                           "gru", "sigmoid/relu"),
        "gru_before_backwards": (L.GRU(3, activation="softsign", reset_after=False,
                                       go_backwards=True, name="enc", **f64),
                                 "gru_reset_before", "sigmoid/softsign"),
        "bidirectional_lstm": (L.Bidirectional(L.LSTM(3, **f64), name="enc", dtype="float64"),
                               "lstm", "sigmoid/tanh"),
    }


CASES = sorted(_layers())


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """Each case's model saved three ways, with its Keras layer and a probe."""
    folder = tmp_path_factory.mktemp("keras")
    keras.utils.set_random_seed(1)  # Keras' initial weights: the same test every run
    x = np.random.default_rng(11).standard_normal((B, T, I))
    np.save(folder / "probe.npy", x)
    out = {}
    for name, (layer, cell, nonlinearity) in _layers().items():
        model = keras.Sequential([keras.Input((T, I), dtype="float64"), layer])
        weights = model.get_weights()
        rng = np.random.default_rng(len(name))  # larger weights than Glorot: lags that matter
        model.set_weights([w + 0.4 * rng.standard_normal(w.shape) for w in weights])
        paths = {fmt: folder / f"{name}.{fmt}" for fmt in FORMATS}
        model.save(paths["keras"])
        model.save(paths["h5"])
        model.save_weights(paths["weights.h5"])
        out[name] = (layer, cell, nonlinearity, paths)
    return out, x, folder / "probe.npy"


def _recurrences(path):
    bundle = load(path)
    return bundle, sorted(understand(bundle).recurrences, key=lambda r: r.direction != "forward")


def _keras_steps(layer):
    """(direction, step function s_(t−1), x_t -> s_t through the Keras cell, state size)."""
    halves = ([("forward", layer.forward_layer), ("reverse", layer.backward_layer)]
              if isinstance(layer, L.Bidirectional) else
              [("reverse" if layer.go_backwards else "forward", layer)])
    out = []
    for direction, half in halves:
        cell, units = half.cell, half.cell.units
        if isinstance(cell, L.LSTMCell):
            def step(x, s, cell=cell, units=units):
                _, (h, c) = cell(x[None], [s[None, :units], s[None, units:]])
                return torch.cat([h[0], c[0]])
            out.append((direction, step, 2 * units))
        else:
            def step(x, s, cell=cell):
                _, states = cell(x[None], [s[None]])
                new = states[0] if isinstance(states, (list, tuple)) else states
                return new[0]
            out.append((direction, step, units))
    return out


@pytest.mark.parametrize("fmt", ["keras", "h5"])
@pytest.mark.parametrize("case", CASES)
def test_file_with_config_runs_what_keras_runs(written, case, fmt):
    models, x, _ = written
    layer, cell, nonlinearity, paths = models[case]
    bundle, recs = _recurrences(paths[fmt])
    assert {(rec.module, rec.cell, rec.nonlinearity, rec.nonlinearity_source) for rec in recs} \
        == {("enc", cell, nonlinearity, "config")}
    _, out = run_stack([[(rec, cell_weights(bundle, rec)) for rec in recs]], torch.from_numpy(x))
    expected = layer(torch.from_numpy(x)).detach().numpy()
    assert out.numpy() == pytest.approx(expected, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("case", CASES)
def test_per_lag_norms_match_the_keras_cell_through_autograd(written, case):
    models, x, probe = written
    layer, _, _, paths = models[case]
    report = bptt(str(paths["keras"]), BpttOptions(
        lags=",".join(map(str, LAGS)), probe=ProbeSpec(inputs=str(probe))))
    by_direction = {item.recurrence.direction: item for item in report.recurrences}
    for direction, step, size in _keras_steps(layer):
        seqs = x[:, ::-1] if direction == "reverse" else x
        for row in by_direction[direction].rows:
            truth = [ref.lag_norm(step, seqs[b].copy(), size, row.lag) for b in range(B)]
            assert min(truth) > 0, "a probe whose Jacobian vanishes exactly: pick another seed"
            assert row.log10_norm == pytest.approx(float(np.mean(np.log10(truth))),
                                                   rel=0, abs=1e-6)


@pytest.mark.parametrize("case", CASES)
def test_weights_only_file_says_what_it_assumed(written, case):
    """A .weights.h5 has no config: Keras 3's defaults run, with the source "default" and a
    note; where those are the layer's own, the forward pass is Keras' (up to go_backwards,
    which a weights file cannot say)."""
    models, x, _ = written
    layer, cell, nonlinearity, paths = models[case]
    report = inspect(str(paths["weights.h5"]))
    default = "tanh" if cell == "rnn" else "sigmoid/tanh"
    assert {(rec.cell, rec.nonlinearity, rec.nonlinearity_source)
            for rec in report.recurrences} == {(cell, default, "default")}
    assert any("no layer config in the file: assumed activation tanh" in note
               for note in report.notes)
    if nonlinearity == default and not getattr(layer, "go_backwards", False):
        bundle, recs = _recurrences(paths["weights.h5"])
        _, out = run_stack([[(rec, cell_weights(bundle, rec)) for rec in recs]],
                           torch.from_numpy(x))
        expected = layer(torch.from_numpy(x)).detach().numpy()
        assert out.numpy() == pytest.approx(expected, rel=1e-5, abs=1e-6)
