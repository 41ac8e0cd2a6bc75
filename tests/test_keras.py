"""Keras HDF5 and .keras files written here with h5py (no Keras), checked against Keras-style
reference cells (x·kernel + h·recurrent_kernel + bias, Keras' gate orders) through jacrev."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
import torch

import reference_cells as ref
from rnngrad.inspection import inspect
from rnngrad.spectrum import spectrum
from rnngrad.bptt import BpttOptions, bptt
from rnngrad.cells.base import cell_weights
from rnngrad.conventions.understand import understand
from rnngrad.errors import LoadError
from rnngrad.cells.stack import run_stack
from rnngrad.io import load
from rnngrad.probes import ProbeSpec

h5py = pytest.importorskip("h5py")

I, H = 3, 4
RNG = np.random.default_rng(0)


def arrays(gates: int, bias_shape, inputs=I, hidden=H, seed=0):
    rng = np.random.default_rng(seed)
    kernel = rng.standard_normal((inputs, gates * hidden)) * 0.7
    recurrent = rng.standard_normal((hidden, gates * hidden)) * 0.9
    bias = rng.standard_normal(bias_shape) * 0.3 if bias_shape else None
    return kernel, recurrent, bias


def write_keras2(path, layers, *, version="2.2.4", model_config=None):
    """layers: [(layer name, [(weight name, array), ...])] as Keras 2 save_weights writes."""
    with h5py.File(path, "w") as f:
        root = f
        if model_config is not None:
            f.attrs["model_config"] = json.dumps(model_config).encode()
            f.attrs["keras_version"] = version.encode()
            root = f.create_group("model_weights")
        root.attrs["layer_names"] = np.array([name.encode() for name, _ in layers])
        root.attrs["keras_version"] = version.encode()
        root.attrs["backend"] = b"tensorflow"
        for name, weights in layers:
            group = root.create_group(name)
            group.attrs["weight_names"] = np.array([w.encode() for w, _ in weights])
            for weight, value in weights:
                group.create_dataset(weight, data=value)
    return path


def rnn_weights(prefix, kernel, recurrent, bias):
    out = [(f"{prefix}/kernel:0", kernel), (f"{prefix}/recurrent_kernel:0", recurrent)]
    return out + ([(f"{prefix}/bias:0", bias)] if bias is not None else [])


def write_keras3(target, entries):
    """entries: {layer path: [arrays]} as Keras 3's H5IOStore writes ``<path>/vars/<i>``."""
    with h5py.File(target, "w") as f:
        f.create_group("vars")
        for path, values in entries.items():
            group = f.require_group(f"{path}/vars")
            for index, value in enumerate(values):
                group.create_dataset(str(index), data=value)


def probe(tmp_path, width=I, batch=2, steps=7, seed=3):
    x = np.random.default_rng(seed).standard_normal((batch, steps, width))
    np.save(tmp_path / "probe.npy", x)
    return x, ProbeSpec(inputs=str(tmp_path / "probe.npy"))


def check_profile(item, step, x, size):
    if item.recurrence.direction == "reverse":  # a reverse direction counts lags in its own time
        x = x[:, ::-1]
    for row in item.rows:
        truth = [ref.lag_norm(step, x[b], size, row.lag) for b in range(x.shape[0])]
        assert row.log10_norm == pytest.approx(float(np.mean(np.log10(truth))), abs=1e-7)


def check_outputs(path, steps_by_label, x):
    """rnngrad's forward pass equals the Keras reference cells' (forward, then reverse), and
    its outputs come in Keras' order."""
    bundle = load(path)
    by_module: dict[str, list] = {}
    for rec in understand(bundle).recurrences:
        if rec.label in steps_by_label:
            by_module.setdefault(rec.module, []).append(rec)
    assert by_module, "no recurrence to compare"
    for module, recs in by_module.items():
        recs.sort(key=lambda r: r.direction != "forward")
        layers = [[(rec, cell_weights(bundle, rec)) for rec in recs]]
        _, out = run_stack(layers, torch.from_numpy(x))
        expected = []
        for rec in recs:
            step, size = steps_by_label[rec.label]
            seq = x[0][::-1] if rec.direction == "reverse" else x[0]
            ys = ref.outputs(step, seq, size, rec.hidden_size)
            # a Bidirectional layer flips its backward outputs back; go_backwards does not
            flip = rec.direction == "reverse" and not rec.reversed_output
            expected.append(ys[::-1] if flip else ys)
        assert np.allclose(out[0].numpy(), np.concatenate(expected, axis=1), atol=1e-12)


# --- Keras 2 save_weights ---------------------------------------------------------------------


def test_lstm_gru_simple_rnn_save_weights(tmp_path):
    lstm = arrays(4, (4 * H,), seed=1)
    gru_after = arrays(3, (2, 3 * H), seed=2)
    gru_before = arrays(3, (3 * H,), seed=3)
    simple = arrays(1, (H,), seed=4)
    path = write_keras2(tmp_path / "w.h5", [
        ("input_1", []),
        ("lstm_1", rnn_weights("lstm_1", *lstm)),
        ("gru_1", rnn_weights("gru_1", *gru_after)),
        ("gru_2", rnn_weights("gru_2", *gru_before)),
        ("simple_rnn_1", rnn_weights("simple_rnn_1", *simple)),
        ("dense_1", [("dense_1/kernel:0", RNG.standard_normal((H, 5))),
                     ("dense_1/bias:0", np.zeros(5))]),
    ])
    report = inspect(str(path))
    cells = {rec.module: rec.cell for rec in report.recurrences}
    assert cells == {"lstm_1": "lstm", "gru_1": "gru", "gru_2": "gru_reset_before",
                     "simple_rnn_1": "rnn"}
    notes = " ".join(report.notes)
    assert "Keras 2.2.4 save_weights" in notes and "Keras z,r,h → PyTorch r,z,n" in notes
    # no config: Keras 2.2.4's defaults, said in a note, with the source "default"
    assert "assumed activation tanh and recurrent_activation hard_sigmoid_0.2" in notes
    assert {(rec.nonlinearity, rec.nonlinearity_source) for rec in report.recurrences} == {
        ("hard_sigmoid_0.2/tanh", "default"), ("tanh", "default")}
    assert {t.name for t in report.tensors} >= {"dense_1.weight", "dense_1.bias"}
    hard = ref.hard_sigmoid_02
    steps = {"lstm_1 L0": (ref.keras_lstm(*lstm, gate=hard), 2 * H),
             "gru_1 L0": (ref.keras_gru(*gru_after, reset_after=True, gate=hard), H),
             "gru_2 L0": (ref.keras_gru(*gru_before, reset_after=False, gate=hard), H),
             "simple_rnn_1 L0": (ref.keras_simple(*simple), H)}
    x, spec = probe(tmp_path)
    check_outputs(str(path), steps, x)
    profile = bptt(str(path), BpttOptions(lags="1,2,7", probe=spec))
    for item in profile.recurrences:
        check_profile(item, *steps[item.recurrence.label][:1], x,
                      steps[item.recurrence.label][1])


def test_recurrent_blocks_are_keras_kernels_transposed(tmp_path):
    kernel, recurrent, bias = arrays(3, (2, 3 * H), seed=5)
    path = write_keras2(tmp_path / "g.h5", [("gru", rnn_weights("gru", kernel, recurrent, bias))])
    (item,) = spectrum(str(path)).recurrences
    z, r, h = np.hsplit(recurrent, 3)
    for name, block in (("r", r), ("z", z), ("n", h)):
        assert item.block(name).sigma_max == pytest.approx(np.linalg.norm(block, 2), rel=1e-12)
    bundle = load(path)
    assert np.array_equal(bundle.array("gru.weight_hh_l0"), np.concatenate([r.T, z.T, h.T]))
    assert np.array_equal(bundle.array("gru.bias_hh_l0"),
                          np.concatenate([np.split(bias[1], 3)[i] for i in (1, 0, 2)]))


@pytest.mark.parametrize("gates, inputs", [(4, 3), (4, 4), (3, 5)])
def test_cudnn_weights_convert_as_keras_does(tmp_path, gates, inputs):
    kernel, recurrent, bias = arrays(gates, (2 * gates * H,), inputs=inputs, seed=gates + inputs)
    name = "cu_dnnlstm_1" if gates == 4 else "cu_dnngru_1"
    path = write_keras2(tmp_path / "c.h5", [(name, rnn_weights(name, kernel, recurrent, bias))],
                        version="2.1.5")
    k, r, b = ref.keras_from_cudnn(kernel, recurrent, bias, gates)
    step = ref.keras_lstm(k, r, b) if gates == 4 else ref.keras_gru(k, r, b, reset_after=True)
    size = 2 * H if gates == 4 else H
    x, spec = probe(tmp_path, width=inputs)
    check_outputs(str(path), {f"{name} L0": (step, size)}, x)
    (item,) = bptt(str(path), BpttOptions(lags="1,3,7", probe=spec)).recurrences
    check_profile(item, step, x, size)
    (rec,) = inspect(str(path)).recurrences
    assert "cuDNN" in rec.convention and "cuDNN layout" in rec.orientation


def test_bidirectional_save_weights(tmp_path):
    fwd, bwd = arrays(4, (4 * H,), seed=7), arrays(4, (4 * H,), seed=8)
    path = write_keras2(tmp_path / "b.h5", [("bidirectional_1",
                                              rnn_weights("bidirectional_1/forward_lstm_1", *fwd)
                                              + rnn_weights("bidirectional_1/backward_lstm_1",
                                                            *bwd))], version="2.3.1")
    recs = inspect(str(path)).recurrences
    assert [(r.module, r.direction) for r in recs] == [("bidirectional_1", "forward"),
                                                        ("bidirectional_1", "reverse")]
    x, spec = probe(tmp_path)
    steps = {"bidirectional_1 L0": (ref.keras_lstm(*fwd), 2 * H),
             "bidirectional_1 L0 rev": (ref.keras_lstm(*bwd), 2 * H)}
    check_outputs(str(path), steps, x)
    for item in bptt(str(path), BpttOptions(lags="1,6", probe=spec)).recurrences:
        check_profile(item, *steps[item.recurrence.label][:1], x, 2 * H)


# --- Keras 2 full model -----------------------------------------------------------------------


def _layer(cls, name, **config):
    return {"class_name": cls, "config": {"name": name, "units": H, **config}}


def test_full_model_config_sets_activation_and_direction(tmp_path):
    simple = arrays(1, (H,), seed=9)
    gru = arrays(3, (3 * H,), seed=10)
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        _layer("SimpleRNN", "encoder", activation="relu"),
        _layer("GRU", "decoder", activation="tanh", recurrent_activation="sigmoid",
               reset_after=False, go_backwards=True)]}}
    path = write_keras2(tmp_path / "full.h5", [("encoder", rnn_weights("encoder", *simple)),
                                               ("decoder", rnn_weights("decoder", *gru))],
                        model_config=config)
    recs = {rec.module: rec for rec in inspect(str(path)).recurrences}
    assert recs["encoder"].nonlinearity == "relu"
    assert recs["encoder"].nonlinearity_source == "config"
    assert (recs["decoder"].nonlinearity, recs["decoder"].nonlinearity_source) == (
        "sigmoid/tanh", "config")
    assert (recs["decoder"].cell, recs["decoder"].direction) == ("gru_reset_before", "reverse")
    x, _ = probe(tmp_path)
    check_outputs(str(path), {"encoder L0": (ref.keras_simple(*simple, activation="relu"), H),
                              "decoder L0 rev": (ref.keras_gru(*gru, reset_after=False), H)}, x)


@pytest.mark.parametrize("version, gate, name", [
    ("2.2.4", ref.hard_sigmoid_02, "hard_sigmoid_0.2"),
    ("3.6.0", torch.nn.functional.hardsigmoid, "hard_sigmoid")])
def test_hard_sigmoid_is_the_one_of_the_files_keras_version(tmp_path, version, gate, name):
    lstm = arrays(4, (4 * H,), seed=22)
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        _layer("LSTM", "lstm", activation="relu", recurrent_activation="hard_sigmoid")]}}
    path = write_keras2(tmp_path / "hs.h5", [("lstm", rnn_weights("lstm", *lstm))],
                        model_config=config, version=version)
    (rec,) = inspect(str(path)).recurrences
    assert (rec.nonlinearity, rec.nonlinearity_source) == (f"{name}/relu", "config")
    x, _ = probe(tmp_path)
    check_outputs(str(path), {"lstm L0": (ref.keras_lstm(*lstm, gate=gate, act=torch.relu),
                                          2 * H)}, x)


def test_unknown_activation_is_refused_naming_layer_and_activation(tmp_path):
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        _layer("GRU", "decoder", activation="exponential", reset_after=False)]}}
    path = write_keras2(tmp_path / "e.h5", [("decoder", rnn_weights("decoder",
                                                                    *arrays(3, (3 * H,))))],
                        model_config=config, version="2.4.0")
    with pytest.raises(LoadError, match=r"layer decoder uses activation 'exponential'"):
        load(path)


def test_keras1_file_is_refused(tmp_path):
    path = write_keras2(tmp_path / "k1.h5", [("lstm", [])], version="1.2.2")
    with pytest.raises(LoadError, match="Keras 1"):
        load(path)


# --- Keras 3 ----------------------------------------------------------------------------------


def _keras3_config():
    return {"module": "keras", "class_name": "Sequential", "config": {"name": "sequential",
            "layers": [
                {"class_name": "InputLayer", "config": {"name": "input_layer"}},
                {"class_name": "LSTM", "config": {"name": "encoder", "units": H,
                                                  "activation": "tanh",
                                                  "recurrent_activation": "sigmoid"}},
                {"class_name": "Bidirectional", "config": {
                    "name": "bi", "layer": {"class_name": "GRU", "config": {
                        "name": "forward_gru", "units": H, "reset_after": True}},
                    "backward_layer": {"class_name": "GRU", "config": {
                        "name": "backward_gru", "units": H, "reset_after": True,
                        "go_backwards": True}}}},
                {"class_name": "Dense", "config": {"name": "head", "units": 2}}]}}


def _keras3_entries(lstm, fwd, bwd):
    return {"layers/lstm": [], "layers/lstm/cell": list(lstm),
            "layers/bidirectional/forward_layer/cell": list(fwd),
            "layers/bidirectional/backward_layer/cell": list(bwd),
            "layers/dense": [RNG.standard_normal((2 * H, 2)), np.zeros(2)],
            "optimizer": [np.zeros(3)]}


def test_keras_archive(tmp_path):
    lstm = arrays(4, (4 * H,), seed=11)
    fwd = arrays(3, (2, 3 * H), inputs=H, seed=12)
    bwd = arrays(3, (2, 3 * H), inputs=H, seed=13)
    weights = io.BytesIO()
    write_keras3(weights, _keras3_entries(lstm, fwd, bwd))
    path = tmp_path / "model.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.6.0"}))
        archive.writestr("config.json", json.dumps(_keras3_config()))
        archive.writestr("model.weights.h5", weights.getvalue())
    report = inspect(str(path))
    assert report.model.format == "keras"
    labels = [rec.label for rec in report.recurrences]
    assert labels == ["encoder L0", "bi L0", "bi L0 rev"]
    assert "Keras 3.6.0 .keras archive" in " ".join(report.notes)
    assert "head.weight" in {t.name for t in report.tensors}
    x, _ = probe(tmp_path)
    check_outputs(str(path), {"encoder L0": (ref.keras_lstm(*lstm), 2 * H)}, x)
    xh, _ = probe(tmp_path, width=H, seed=5)
    check_outputs(str(path), {"bi L0": (ref.keras_gru(*fwd, reset_after=True), H),
                              "bi L0 rev": (ref.keras_gru(*bwd, reset_after=True), H)}, xh)


def test_keras3_weights_file_without_config(tmp_path):
    lstm = arrays(4, (4 * H,), seed=14)
    simple = arrays(1, (H,), seed=15)
    path = tmp_path / "m.weights.h5"
    write_keras3(path, {"layers/lstm/cell": list(lstm), "layers/simple_rnn_1/cell": list(simple)})
    report = inspect(str(path))
    assert [(r.module, r.cell) for r in report.recurrences] == [("lstm", "lstm"),
                                                               ("simple_rnn_1", "rnn")]
    x, _ = probe(tmp_path)
    check_outputs(str(path), {"lstm L0": (ref.keras_lstm(*lstm), 2 * H),
                              "simple_rnn_1 L0": (ref.keras_simple(*simple), H)}, x)


def test_keras_archive_with_npz_weights_is_refused(tmp_path):
    path = tmp_path / "model.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", "{}")
        archive.writestr("model.weights.npz", b"PK")
    with pytest.raises(LoadError, match="pickle"):
        load(path)


# --- hostile HDF5 -----------------------------------------------------------------------------


def test_external_link_is_refused(tmp_path):
    other = write_keras2(tmp_path / "other.h5", [("lstm", rnn_weights("lstm", *arrays(4, None)))])
    path = tmp_path / "link.h5"
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([b"lstm"])
        f.attrs["keras_version"] = b"2.2.4"
        f["lstm"] = h5py.ExternalLink(str(other), "/lstm")
    with pytest.raises(LoadError, match="external link"):
        load(path)


def test_external_dataset_is_refused(tmp_path):
    raw = tmp_path / "raw.bin"
    kernel, recurrent, _ = arrays(4, None)
    raw.write_bytes(kernel.astype("<f8").tobytes())
    path = tmp_path / "ext.h5"
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([b"lstm"])
        f.attrs["keras_version"] = b"2.2.4"
        group = f.create_group("lstm")
        group.attrs["weight_names"] = np.array([b"lstm/kernel:0", b"lstm/recurrent_kernel:0"])
        group.create_dataset("lstm/kernel:0", shape=kernel.shape, dtype="<f8",
                             external=[(str(raw), 0, kernel.nbytes)])
        group.create_dataset("lstm/recurrent_kernel:0", data=recurrent)
    with pytest.raises(LoadError, match="external files"):
        load(path)


def test_virtual_dataset_is_refused(tmp_path):
    source = tmp_path / "src.h5"
    kernel, recurrent, _ = arrays(4, None)
    with h5py.File(source, "w") as f:
        f.create_dataset("k", data=kernel)
    path = tmp_path / "virtual.h5"
    layout = h5py.VirtualLayout(shape=kernel.shape, dtype=kernel.dtype)
    layout[:] = h5py.VirtualSource(str(source), "k", shape=kernel.shape)
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([b"lstm"])
        f.attrs["keras_version"] = b"2.2.4"
        group = f.create_group("lstm")
        group.attrs["weight_names"] = np.array([b"lstm/kernel:0", b"lstm/recurrent_kernel:0"])
        group.create_virtual_dataset("lstm/kernel:0", layout)
        group.create_dataset("lstm/recurrent_kernel:0", data=recurrent)
    with pytest.raises(LoadError, match="virtual"):
        load(path)


def test_hdf5_without_keras_layout(tmp_path):
    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.eye(3))
    with pytest.raises(LoadError, match="without Keras weights"):
        load(path)


def test_bad_bias_shape(tmp_path):
    kernel, recurrent, _ = arrays(4, None)
    path = write_keras2(tmp_path / "bad.h5", [("lstm", rnn_weights("lstm", kernel, recurrent,
                                                                   np.zeros(5)))])
    with pytest.raises(LoadError, match="fits no Keras LSTM"):
        load(path)


def test_missing_h5py_is_explained(tmp_path, monkeypatch):
    path = write_keras2(tmp_path / "w.h5", [("lstm", rnn_weights("lstm", *arrays(4, (4 * H,))))])
    monkeypatch.setitem(__import__("sys").modules, "h5py", None)
    with pytest.raises(LoadError, match=r"rnngrad\[keras\]"):
        load(path)


def test_conv_lstm_weights_are_listed_not_analysed(tmp_path):
    lstm = arrays(4, (4 * H,), seed=21)
    path = write_keras2(tmp_path / "c.h5", [
        ("conv_lst_m2d_1", [("conv_lst_m2d_1/kernel:0", np.zeros((3, 3, 2, 4 * H))),
                            ("conv_lst_m2d_1/recurrent_kernel:0", np.zeros((3, 3, H, 4 * H))),
                            ("conv_lst_m2d_1/bias:0", np.zeros(4 * H))]),
        ("lstm_1", rnn_weights("lstm_1", *lstm))])
    report = inspect(str(path))
    assert [rec.module for rec in report.recurrences] == ["lstm_1"]
    assert "conv_lst_m2d_1.kernel" in {t.name for t in report.tensors}
    assert "not analysed" in " ".join(report.notes)


def test_cudnn_layer_runs_cudnn_activations_whatever_the_version(tmp_path):
    kernel, recurrent, bias = arrays(4, (8 * H,), seed=23)
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "CuDNNLSTM", "config": {"name": "cu", "units": H}}]}}
    path = write_keras2(tmp_path / "cu.h5", [("cu", rnn_weights("cu", kernel, recurrent, bias))],
                        model_config=config, version="2.1.5")
    (rec,) = inspect(str(path)).recurrences
    assert (rec.nonlinearity, rec.nonlinearity_source) == ("sigmoid/tanh", "cell")


def test_config_without_recurrent_activation_says_what_it_assumed(tmp_path):
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "LSTM", "config": {"name": "old", "units": H, "activation": "tanh"}}]}}
    path = write_keras2(tmp_path / "o.h5", [("old", rnn_weights("old", *arrays(4, (4 * H,))))],
                        model_config=config, version="2.1.5")
    report = inspect(str(path))
    (rec,) = report.recurrences
    assert (rec.nonlinearity, rec.nonlinearity_source) == ("hard_sigmoid_0.2/tanh", "default")
    assert any("names no recurrent_activation" in note for note in report.notes)


def test_stacked_cells_are_read_with_their_own_configs(tmp_path):
    lstm, gru = arrays(4, (4 * H,), seed=24), arrays(3, (2, 3 * H), inputs=H, seed=25)
    cells = [{"class_name": "LSTMCell", "config": {"name": "lstm_cell", "units": H}},
             {"class_name": "GRUCell", "config": {"name": "gru_cell", "units": H,
                                                  "activation": "relu", "reset_after": True}}]
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "RNN", "config": {"name": "stk", "cell": {
            "class_name": "StackedRNNCells", "config": {"name": "stacked", "cells": cells}}}}]}}
    path = write_keras2(tmp_path / "stk.h5", [("stk", rnn_weights("stk/lstm_cell", *lstm)
                                               + rnn_weights("stk/gru_cell", *gru))],
                        model_config=config, version="2.4.0")
    recs = {rec.module: rec for rec in inspect(str(path)).recurrences}
    assert (recs["stk.cell0"].cell, recs["stk.cell0"].nonlinearity) == ("lstm", "sigmoid/tanh")
    assert (recs["stk.cell1"].cell, recs["stk.cell1"].nonlinearity) == ("gru", "sigmoid/relu")
    xh, _ = probe(tmp_path, width=H, seed=6)
    check_outputs(str(path), {"stk.cell1 L0": (ref.keras_gru(*gru, reset_after=True,
                                                             act=torch.relu), H)}, xh)


def test_unknown_layer_class_with_a_config_is_refused(tmp_path):
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "PeepholeLSTM", "config": {"name": "p", "units": H}}]}}
    path = write_keras2(tmp_path / "p.h5", [("p", rnn_weights("p", *arrays(4, (4 * H,))))],
                        model_config=config, version="2.4.0")
    with pytest.raises(LoadError, match="layer p is a PeepholeLSTM"):
        load(path)
