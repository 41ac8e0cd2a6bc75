"""``--map FILE.toml`` and the built-in research conventions, on files the tests write."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import reference_cells as ref
from rnngrad.inspection import inspect
from rnngrad.spectrum import spectrum
from rnngrad.bptt import BpttOptions, bptt
from rnngrad.errors import LoadError, OptionError
from rnngrad.conventions.understand import load
from rnngrad.probes import ProbeSpec


def _probe(tmp_path, width, batch=2, steps=8, seed=1):
    x = np.random.default_rng(seed).standard_normal((batch, steps, width))
    np.save(tmp_path / "probe.npy", x)
    return x, ProbeSpec(inputs=str(tmp_path / "probe.npy"))


def _norms_match(item, step, x, size):
    for row in item.rows:
        truth = [ref.lag_norm(step, x[b], size, row.lag) for b in range(x.shape[0])]
        assert row.log10_norm == pytest.approx(float(np.mean(np.log10(truth))), abs=1e-7)


def _psychrnn_arrays(size=7, inputs=2, seed=0, dale=False):
    rng = np.random.default_rng(seed)
    arrays = {"W_rec": rng.standard_normal((size, size)) * 0.6,
              "W_in": rng.standard_normal((size, inputs)), "b_rec": rng.standard_normal(size) * 0.1,
              "rec_connectivity": (rng.random((size, size)) > 0.2).astype(np.float32),
              "input_connectivity": np.ones((size, inputs), np.float32),
              "Dale_rec": np.eye(size, dtype=np.float32), "W_rec/Adam": np.zeros((size, size))}
    if dale:
        arrays["Dale_rec"] = np.diag([1.0] * (size - 2) + [-1.0, -1.0])
    return arrays


def test_psychrnn_convention(tmp_path):
    arrays = _psychrnn_arrays()
    np.savez(tmp_path / "saved_weights.npz", **arrays)
    path = str(tmp_path / "saved_weights.npz")
    report = inspect(path)
    text = " ".join(report.notes)
    assert "PsychRNN" in text and "α = dt/τ = 0.1" in text and "--map" in text
    (rec,) = report.recurrences
    assert (rec.cell, rec.nonlinearity, rec.leak) == ("leaky", "relu", 0.1)
    used = {row.name for row in report.tensors if row.used_by}
    assert {"W_rec", "W_in", "b_rec", "rec_connectivity"} <= used and "W_rec/Adam" not in used
    w = arrays["W_rec"] * arrays["rec_connectivity"]
    (item,) = spectrum(path).recurrences
    assert item.block("hh").spectral_radius == pytest.approx(
        np.max(np.abs(np.linalg.eigvals(w))), rel=1e-12)
    x, probe = _probe(tmp_path, 2)
    (prof,) = bptt(path, BpttOptions(lags="1,3,8", probe=probe)).recurrences
    _norms_match(prof, ref.rate_cell(w, arrays["W_in"], arrays["b_rec"], alpha=0.1, phi="relu"),
                 x, 7)


def test_psychrnn_dale(tmp_path):
    arrays = _psychrnn_arrays(dale=True)
    np.savez(tmp_path / "w.npz", **arrays)
    report = inspect(str(tmp_path / "w.npz"))
    assert "Dale's law" in " ".join(report.notes)
    bundle = load(tmp_path / "w.npz")
    expected = np.abs(arrays["W_rec"] * arrays["rec_connectivity"]) @ arrays["Dale_rec"]
    assert np.allclose(bundle.array("psychrnn.weight_hh"), expected, atol=0)


def test_min_char_rnn_convention(tmp_path):
    rng = np.random.default_rng(2)
    arrays = {"Wxh": rng.standard_normal((6, 11)) * 0.3, "Whh": rng.standard_normal((6, 6)) * 0.5,
              "bh": rng.standard_normal((6, 1)), "Why": rng.standard_normal((11, 6)),
              "by": np.zeros((11, 1))}
    np.savez(tmp_path / "char.npz", **arrays)
    (rec,) = inspect(str(tmp_path / "char.npz")).recurrences
    assert (rec.cell, rec.nonlinearity, rec.leak) == ("rnn", "tanh", None)
    x, probe = _probe(tmp_path, 11)
    (prof,) = bptt(str(tmp_path / "char.npz"), BpttOptions(lags="1,4,8", probe=probe)).recurrences
    step = ref.keras_simple(arrays["Wxh"].T, arrays["Whh"].T, arrays["bh"][:, 0])
    _norms_match(prof, step, x, 6)


def _mackelab_state(size=9, rank=None, seed=3):
    rng = np.random.default_rng(seed)
    state = {"x0": torch.zeros(1, size), "rnn.w_inp": torch.randn(3, size, dtype=torch.float64),
             "rnn.w_out": torch.randn(size, 1), "rnn.w_inp_scale": torch.tensor([0.5]),
             "rnn.w_out_scale": torch.ones(1, 1)}
    if rank:
        state["rnn.m"] = torch.from_numpy(rng.standard_normal((size, rank)) * 2)
        state["rnn.n"] = torch.from_numpy(rng.standard_normal((rank, size)) * 2)
    else:
        state["rnn.w_rec"] = torch.from_numpy(rng.standard_normal((size, size)) * 1.5 / 3)
    return state


@pytest.mark.parametrize("rank", [None, 2])
def test_mackelab_convention_with_params(tmp_path, rank):
    state = _mackelab_state(rank=rank)
    torch.save(state, tmp_path / "N9_T1_state_dict.pkl")
    (tmp_path / "N9_T1_params.json").write_text(json.dumps(
        {"nonlinearity": "tanh", "dt": 1, "tau_lims": [4], "apply_dale": False}))
    path = str(tmp_path / "N9_T1_state_dict.pkl")
    report = inspect(path)
    assert "mackelab" in " ".join(report.notes) and "N9_T1_params.json" in " ".join(report.notes)
    (rec,) = report.recurrences
    assert rec.leak == pytest.approx(0.25, rel=1e-15) and rec.nonlinearity == "tanh"
    w = (state["rnn.m"] @ state["rnn.n"] / 9).numpy() if rank else state["rnn.w_rec"].numpy()
    w_in = 0.5 * state["rnn.w_inp"].numpy().T
    (item,) = spectrum(path).recurrences
    assert item.block("hh").spectral_radius == pytest.approx(
        np.max(np.abs(np.linalg.eigvals(w))), rel=1e-9)
    x, probe = _probe(tmp_path, 3)
    (prof,) = bptt(path, BpttOptions(lags="1,2,8", probe=probe)).recurrences
    _norms_match(prof, ref.rate_cell(w, w_in, None, alpha=0.25, phi="tanh"), x, 9)


def test_mackelab_without_params_assumes_and_says_so(tmp_path):
    torch.save(_mackelab_state(), tmp_path / "model.pt")
    report = inspect(str(tmp_path / "model.pt"))
    text = " ".join(report.notes)
    assert "assumed α = 0.1" in text and "--leak" in text
    assert report.recurrences[0].leak == 0.1


def test_mackelab_dale_in_params_is_refused(tmp_path):
    torch.save(_mackelab_state(), tmp_path / "a_state_dict.pkl")
    (tmp_path / "a_params.json").write_text(json.dumps(
        {"nonlinearity": "tanh", "dt": 2, "tau_lims": [20], "apply_dale": True}))
    with pytest.raises(LoadError, match="apply_dale"):
        load(tmp_path / "a_state_dict.pkl")


def test_map_overrides_the_convention(tmp_path):
    arrays = _psychrnn_arrays()
    np.savez(tmp_path / "w.npz", **arrays)
    (tmp_path / "m.toml").write_text(
        '[recurrence]\nname = "mine"\nrecurrent = "W_rec"\ninput = "W_in"\n'
        'nonlinearity = "tanh"\nleak = 0.5\n')
    report = inspect(str(tmp_path / "w.npz"), map=str(tmp_path / "m.toml"))
    (rec,) = report.recurrences
    assert (rec.module, rec.nonlinearity, rec.leak) == ("mine", "tanh", 0.5)
    assert not any(name.startswith("psychrnn.") for name in (t.name for t in report.tensors))
    assert "--map" in " ".join(report.notes)


def test_top_level_keys_and_bias_list(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "w.npz", A=rng.standard_normal((4, 4)), b1=np.ones(4), b2=np.ones((4, 1)))
    (tmp_path / "m.toml").write_text('recurrent = "A"\nbias = ["b1", "b2"]\nleak = 1.0\n')
    bundle_report = inspect(str(tmp_path / "w.npz"), map=str(tmp_path / "m.toml"))
    (rec,) = bundle_report.recurrences
    assert rec.input_size is None and rec.bias_ih is not None


@pytest.mark.parametrize("text, match", [
    ('recurrent = "W"\ncolour = "red"\n', "unknown key"),
    ('recurrent = "W"\norientation = "diagonal"\n', "orientation"),
    ('recurrent = "W"\nleak = 2.0\n', "leak"),
    ('recurrent = "W"\nleak = 0.1\ndt = 1\ntau = 10\n', "either leak or dt"),
    ('recurrent = "W"\nform = "elman"\nleak = 0.5\n', "no leak"),
    ('left = "W"\n', "either recurrent or both"),
    ('recurrent = "W"\nnonlinearity = "softplus"\n', "nonlinearity"),
    ('this is not toml', "TOML"),
])
def test_map_errors(tmp_path, text, match):
    np.savez(tmp_path / "w.npz", W=np.eye(3))
    (tmp_path / "m.toml").write_text(text)
    with pytest.raises(OptionError, match=match):
        inspect(str(tmp_path / "w.npz"), map=str(tmp_path / "m.toml"))


def test_map_names_a_missing_tensor(tmp_path):
    np.savez(tmp_path / "w.npz", W=np.eye(3))
    (tmp_path / "m.toml").write_text('recurrent = "V"\n')
    with pytest.raises(LoadError, match="'V', which is not in the file"):
        inspect(str(tmp_path / "w.npz"), map=str(tmp_path / "m.toml"))


def test_map_file_missing(tmp_path):
    np.savez(tmp_path / "w.npz", W=np.eye(3))
    with pytest.raises(OptionError, match="no such file"):
        spectrum(str(tmp_path / "w.npz"), map=str(tmp_path / "absent.toml"))


def test_pytorch_files_are_not_reinterpreted(tmp_path):
    module = torch.nn.RNN(3, 4)
    state = {**module.state_dict(), "W_rec": torch.eye(4), "W_in": torch.ones(4, 3),
             "b_rec": torch.zeros(4)}
    torch.save(state, tmp_path / "m.pt")
    (rec,) = inspect(str(tmp_path / "m.pt")).recurrences
    assert rec.cell == "rnn" and not rec.convention
    assert math.isfinite(spectrum(str(tmp_path / "m.pt")).recurrences[0].bound)
