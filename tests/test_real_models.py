"""The four published checkpoints in ../shared/real_models, against hand computations.

Spectra are recomputed here from the raw arrays with numpy; per-lag norms come from jacrev of
reference cells written in each project's own conventions (``reference_cells``). The whole
module skips when the shared folder is absent (it is not part of the repository).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.func import jacrev

import reference_cells as ref
from rnngrad.inspection import inspect
from rnngrad.spectrum import spectrum
from rnngrad.bptt import BpttOptions, bptt
from rnngrad.conventions.understand import load
from rnngrad.probes import ProbeSpec

REAL = Path(__file__).resolve().parents[2] / "shared" / "real_models"
pytestmark = pytest.mark.skipif(not REAL.is_dir(), reason="../shared/real_models is absent")

PSYCHRNN = REAL / "psychrnn_pd" / "saved_weights.npz"
MACKELAB = REAL / "plc_rnn_mackelab"
TEXTGENRNN = REAL / "textgenrnn_keras" / "textgenrnn_weights.hdf5"
SILERO = REAL / "silero_vad_onnx"
SHA256 = {
    PSYCHRNN: "f3c2c34a03c870f1defb7f8a87a4382519a8a78ca5e49bd6536dd7c5bd9ead4f",
    MACKELAB / "N100_T1208-100644_state_dict.pkl":
        "5d1217251dc3f3271cd98960f646a74d9d2fd33cec2e7e63350332ed1fd8ef31",
    MACKELAB / "fr_lfp_Trained_state_dict.pkl":
        "6dc5ee9962f9ff606222849a97993783f71171b9323cca74ca9545cd7de10132",
    MACKELAB / "N512_T0217-151523_state_dict.pkl":
        "86228d65dd5baec4ff7bb12422a13ae2a402b6c6144d7dec8f15fcc237bee11c",
    TEXTGENRNN: "6a89ca4235ed9f00be7b2acd65d5fe4a099967d676bfe20afb696106286ffbca",
    SILERO / "silero_vad_16k_op15.onnx":
        "7ed98ddbad84ccac4cd0aeb3099049280713df825c610a8ed34543318f1b2c49",
}


def radius(matrix: np.ndarray) -> float:
    return float(np.max(np.abs(np.linalg.eigvals(matrix))))


def file_probe(tmp_path, width, batch=2, steps=8, seed=0, scale=1.0):
    x = np.random.default_rng(seed).standard_normal((batch, steps, width)) * scale
    np.save(tmp_path / f"probe{width}.npy", x)
    return x, ProbeSpec(inputs=str(tmp_path / f"probe{width}.npy"))


def check_norms(item, step, x, size, atol=1e-7):
    for row in item.rows:
        truth = [ref.lag_norm(step, x[b], size, row.lag) for b in range(x.shape[0])]
        assert row.log10_norm == pytest.approx(float(np.mean(np.log10(truth))), abs=atol)


@pytest.mark.parametrize("path", sorted(SHA256, key=str), ids=lambda p: p.name)
def test_files_are_the_published_ones(path):
    assert load(path).sha256 == SHA256[path]


# --- PsychRNN ---------------------------------------------------------------------------------


def test_psychrnn(tmp_path):
    raw = np.load(PSYCHRNN, allow_pickle=False)
    w = raw["W_rec"].astype(np.float64) * raw["rec_connectivity"]
    w_in = raw["W_in"].astype(np.float64) * raw["input_connectivity"]
    b = raw["b_rec"].astype(np.float64)
    report = inspect(PSYCHRNN)
    (rec,) = report.recurrences
    assert (rec.cell, rec.nonlinearity, rec.leak, rec.hidden_size) == ("leaky", "relu", 0.1, 50)
    assert "PsychRNN" in " ".join(report.notes)
    (item,) = spectrum(PSYCHRNN, top=10).recurrences
    assert item.block("hh").spectral_radius == pytest.approx(radius(w), rel=1e-12)
    assert item.block("hh").sigma_max == pytest.approx(np.linalg.norm(w, 2), rel=1e-12)
    eff = 0.9 * np.eye(50) + 0.1 * w
    assert item.block("eff").spectral_radius == pytest.approx(radius(eff), rel=1e-12)
    assert item.rest_jacobian.spectral_radius == pytest.approx(radius(eff), rel=1e-12)
    assert item.bound == pytest.approx(0.9 + 0.1 * np.linalg.norm(w, 2), rel=1e-12)
    x, probe = file_probe(tmp_path, 2, steps=20)
    (prof,) = bptt(PSYCHRNN, BpttOptions(lags="1,5,20", probe=probe)).recurrences
    check_norms(prof, ref.rate_cell(w, w_in, b, alpha=0.1, phi="relu"), x, 50)


# --- mackelab ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["N100_T1208-100644", "fr_lfp_Trained"])
def test_mackelab_full_rank(tmp_path, name):
    path = MACKELAB / f"{name}_state_dict.pkl"
    raw = torch.load(path, map_location="cpu", weights_only=True)
    w = raw["rnn.w_rec"].double().numpy()
    w_in = float(raw["rnn.w_inp_scale"]) * raw["rnn.w_inp"].double().numpy().T
    (rec,) = inspect(path).recurrences
    assert (rec.cell, rec.nonlinearity, rec.leak) == ("leaky", "tanh", pytest.approx(0.1, rel=1e-15))
    (item,) = spectrum(path).recurrences
    assert item.block("hh").spectral_radius == pytest.approx(radius(w), rel=1e-12)
    assert item.block("eff").spectral_radius == pytest.approx(
        radius(0.9 * np.eye(100) + 0.1 * w), rel=1e-12)
    x, probe = file_probe(tmp_path, 3, steps=12)
    (prof,) = bptt(path, BpttOptions(lags="1,4,12", probe=probe)).recurrences
    check_norms(prof, ref.rate_cell(w, w_in, None, alpha=0.1, phi="tanh"), x, 100)


def test_mackelab_low_rank(tmp_path):
    path = MACKELAB / "N512_T0217-151523_state_dict.pkl"
    raw = torch.load(path, map_location="cpu", weights_only=True)
    m, n = raw["rnn.m"].double().numpy(), raw["rnn.n"].double().numpy()
    dense = m @ n / 512
    (item,) = spectrum(path, top=4).recurrences
    block = item.block("hh")
    small = np.linalg.eigvals(n @ m / 512)
    assert block.spectral_radius == pytest.approx(np.max(np.abs(small)), rel=1e-12)
    assert block.spectral_radius == pytest.approx(radius(dense), rel=1e-8)
    assert block.sigma_max == pytest.approx(np.linalg.norm(dense, 2), rel=1e-10)
    assert block.sigma_min == 0.0 and block.condition_number is None
    assert [complex(*z) for z in block.eigenvalues[2:]] == [0j, 0j]
    assert item.block("eff").spectral_radius == pytest.approx(
        radius(0.9 * np.eye(512) + 0.1 * dense), rel=1e-10)
    assert item.recurrence.low_rank.startswith("W = 0.00195312 · rnn.m rnn.n")
    w_in = float(raw["rnn.w_inp_scale"]) * raw["rnn.w_inp"].double().numpy().T
    x, probe = file_probe(tmp_path, 3, batch=1, steps=4)
    (prof,) = bptt(path, BpttOptions(lags="1,4", probe=probe)).recurrences
    check_norms(prof, ref.rate_cell(dense, w_in, None, alpha=0.1, phi="tanh"), x, 512)


# --- textgenrnn (Keras 2.1.5, CuDNNLSTM weights) -----------------------------------------------


def _textgenrnn_layer(name):
    h5py = pytest.importorskip("h5py")
    with h5py.File(TEXTGENRNN, "r") as f:
        group = f[name][name]
        return tuple(np.asarray(group[k][()], dtype=np.float64)
                     for k in ("kernel:0", "recurrent_kernel:0", "bias:0"))


@pytest.mark.parametrize("layer, width", [("rnn_1", 100), ("rnn_2", 128)])
def test_textgenrnn(tmp_path, layer, width):
    kernel, recurrent, bias = _textgenrnn_layer(layer)
    k, r, b = ref.keras_from_cudnn(kernel, recurrent, bias, 4)
    step = ref.keras_lstm(k, r, b)
    report = spectrum(TEXTGENRNN)
    item = next(i for i in report.recurrences if i.recurrence.module == layer)
    for name, block in zip("ifgo", np.hsplit(r, 4)):  # Keras i,f,c,o = PyTorch i,f,g,o
        assert item.block(name).spectral_radius == pytest.approx(radius(block), rel=1e-10)
        assert item.block(name).sigma_max == pytest.approx(np.linalg.norm(block, 2), rel=1e-10)
    zero = torch.zeros(256, dtype=torch.float64)
    at_rest = jacrev(lambda s: step(torch.zeros(width, dtype=torch.float64), s))(zero)
    assert item.rest_jacobian.spectral_radius == pytest.approx(radius(at_rest.detach().numpy()), rel=1e-9)
    x, probe = file_probe(tmp_path, width, steps=8, scale=0.5)
    (prof,) = bptt(TEXTGENRNN, BpttOptions(lags="1,3,8", probe=probe,
                                            modules=(layer,))).recurrences
    check_norms(prof, step, x, 256, atol=1e-6)


# --- Silero VAD (ONNX, LSTM inside If branches) -----------------------------------------------


def test_silero(tmp_path):
    pytest.importorskip("onnx")
    path = SILERO / "silero_vad_16k_op15.onnx"
    arrays = np.load(SILERO / "DERIVED_decoder_lstmcell_weights.npz")
    w_ih, w_hh, b_ih, b_hh = (arrays[k].astype(np.float64)
                              for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
    report = inspect(path)
    (rec,) = report.recurrences
    assert rec.cell == "lstm" and "inside If" in rec.convention
    bundle = load(path)
    for part, value in (("weight_ih", w_ih), ("weight_hh", w_hh), ("bias_ih", b_ih),
                        ("bias_hh", b_hh)):
        assert np.array_equal(bundle.array(getattr(rec, part)), value)
    (item,) = spectrum(path).recurrences
    for name, block in zip("ifgo", np.split(w_hh, 4)):
        assert item.block(name).spectral_radius == pytest.approx(radius(block), rel=1e-10)
    step = ref.torch_lstm_cell(w_ih, w_hh, b_ih, b_hh)
    zero = torch.zeros(256, dtype=torch.float64)
    at_rest = jacrev(lambda s: step(torch.zeros(128, dtype=torch.float64), s))(zero)
    assert item.rest_jacobian.spectral_radius == pytest.approx(radius(at_rest.detach().numpy()), rel=1e-9)
    x, probe = file_probe(tmp_path, 128, steps=10)
    (prof,) = bptt(path, BpttOptions(lags="1,4,10", probe=probe)).recurrences
    check_norms(prof, step, x, 256)
    assert math.isfinite(prof.share_beyond_10)


# --- lyapunov on every published checkpoint ---------------------------------------------------


@pytest.mark.slow
def test_psychrnn_lyapunov_against_brute_force(tmp_path):
    """Leaky ReLU rate cell: rnngrad's QR against jacrev of PsychRNN's own equations."""
    from rnngrad.lyapunov import lyapunov
    from rnngrad.lyapunov.qr import initial_basis
    from test_lyapunov import qr_logs

    raw = np.load(PSYCHRNN, allow_pickle=False)
    w = raw["W_rec"].astype(np.float64) * raw["rec_connectivity"]
    w_in = raw["W_in"].astype(np.float64) * raw["input_connectivity"]
    b = raw["b_rec"].astype(np.float64)
    x, probe = file_probe(tmp_path, 2, steps=40)
    report = lyapunov(PSYCHRNN, k=3, inputs=probe.inputs, burn_in=10, blocks=3)
    step = ref.rate_cell(w, w_in, b, alpha=0.1, phi="relu")
    frame = initial_basis(50, 3, 0).numpy()
    logs = [qr_logs(step, torch.from_numpy(seq), 50, frame)[10:].mean(axis=0) for seq in x]
    expected = np.sort(np.mean(logs, axis=0))[::-1]
    assert report.recurrences[0].exponents == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("path", [PSYCHRNN, MACKELAB / "N100_T1208-100644_state_dict.pkl",
                                  MACKELAB / "N512_T0217-151523_state_dict.pkl", TEXTGENRNN,
                                  SILERO / "silero_vad_16k_op15.onnx"], ids=lambda p: p.name)
def test_lyapunov_runs_on_every_real_model(path):
    from rnngrad.lyapunov import LyapunovVerdict, lyapunov

    if path.suffix == ".onnx":
        pytest.importorskip("onnx")
    if path.suffix == ".hdf5":
        pytest.importorskip("h5py")
    report = lyapunov(path, k=3, steps=150, burn_in=50, batch=2)
    for item in report.recurrences:
        assert item.verdict in set(LyapunovVerdict)
        values = item.values()
        assert values == sorted(values, reverse=True) and all(map(math.isfinite, values))
        assert len(values) == min(3, item.state_size)
