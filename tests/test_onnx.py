"""ONNX models written here with onnx.helper; rnngrad's forward pass is compared with ONNX's own
reference implementation (onnx.reference), and per-lag norms with jacrev of reference cells."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import reference_cells as ref
from rnngrad.inspection import inspect
from rnngrad.spectrum import spectrum
from rnngrad.bptt import BpttOptions, bptt
from rnngrad.cells.base import cell_weights
from rnngrad.errors import LoadError
from rnngrad.cells.stack import run_stack
from rnngrad.io import load
from rnngrad.conventions.understand import understand
from rnngrad.probes import ProbeSpec

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

I, H, T = 3, 4, 6
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}


def weights(op, directions=1, seed=0, inputs=I, hidden=H):
    rng = np.random.default_rng(seed)
    rows = GATES[op] * hidden
    return (rng.standard_normal((directions, rows, inputs)).astype(np.float32) * 0.8,
            rng.standard_normal((directions, rows, hidden)).astype(np.float32) * 0.9,
            rng.standard_normal((directions, 2 * rows)).astype(np.float32) * 0.3)


def rnn_model(op, w, r, b, *, direction="forward", opset=15, **attrs):
    directions = w.shape[0]
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [T, 1, I])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [T, directions, 1, H])
    inits = [numpy_helper.from_array(w, "W"), numpy_helper.from_array(r, "R")]
    inputs = ["X", "W", "R"]
    if b is not None:
        inits.append(numpy_helper.from_array(b, "B"))
        inputs.append("B")
    node = helper.make_node(op, inputs, ["Y"], name=f"/enc/{op}", hidden_size=H,
                            direction=direction, **attrs)
    graph = helper.make_graph([node], "g", [x], [y], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def save(model, path):
    onnx.save_model(model, str(path))
    return str(path)


def relu_rnn_reference(w, r, b, direction, x):
    """Y of an ONNX RNN with Relu (onnx.reference only has Tanh): H_t = relu(X W^T + H R^T + B)."""
    out = []
    for d in range(w.shape[0]):
        step = ref.keras_simple(w[d].T, r[d].T, b[d, :H] + b[d, H:], activation="relu")
        reverse = direction == "reverse" or d == 1
        seq = x[:, 0][::-1] if reverse else x[:, 0]
        ys = ref.outputs(step, seq, H, H)
        out.append(ys[::-1] if reverse else ys)
    return np.stack(out, axis=1)[:, :, None]


def compare_forward(model, path, relu=None):
    """rnngrad's output sequence equals onnx.reference's Y for the same input."""
    x = np.random.default_rng(9).standard_normal((T, 1, I)).astype(np.float32)
    if relu is not None:
        expected = relu_rnn_reference(*relu, x)
    else:
        (expected,) = ReferenceEvaluator(model).run(None, {"X": x})  # (T, D, 1, H)
    bundle = load(path)
    recs = sorted(understand(bundle).recurrences, key=lambda rec: rec.direction != "forward")
    _, out = run_stack([[(rec, cell_weights(bundle, rec)) for rec in recs]],
                       torch.from_numpy(x[:, 0].astype(np.float64))[None])
    want = np.concatenate([expected[:, d, 0] for d in range(expected.shape[1])], axis=1)
    assert np.allclose(out[0].numpy(), want, atol=2e-6)


@pytest.mark.parametrize("op, attrs", [
    ("LSTM", {}),
    ("GRU", {"linear_before_reset": 1}),
    ("GRU", {"linear_before_reset": 0}),
    ("RNN", {}),
    ("RNN", {"activations": ["Relu"]}),
])
@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
def test_matches_onnx_reference(tmp_path, op, attrs, direction):
    w, r, b = weights(op, 2 if direction == "bidirectional" else 1, seed=len(op))
    model = rnn_model(op, w, r, b, direction=direction, **attrs)
    path = save(model, tmp_path / "m.onnx")
    compare_forward(model, path, relu=(w, r, b, direction) if attrs.get("activations") == ["Relu"] else None)
    recs = inspect(path).recurrences
    expected_cell = {"LSTM": "lstm", "RNN": "rnn",
                     "GRU": "gru" if attrs.get("linear_before_reset") else "gru_reset_before"}[op]
    assert {rec.cell for rec in recs} == {expected_cell}
    if op == "RNN":
        assert {rec.nonlinearity for rec in recs} == {"relu" if attrs else "tanh"}


def test_lstm_gate_order_against_pytorch(tmp_path):
    torch.manual_seed(0)
    module = torch.nn.LSTM(I, H, batch_first=True).to(torch.float64)
    w_ih, w_hh = module.weight_ih_l0.detach().numpy(), module.weight_hh_l0.detach().numpy()
    b_ih, b_hh = module.bias_ih_l0.detach().numpy(), module.bias_hh_l0.detach().numpy()

    def onnx_order(m):  # PyTorch i,f,g,o -> ONNX i,o,f,c
        i, f, g, o = np.split(m, 4)
        return np.concatenate([i, o, f, g])

    w = onnx_order(w_ih)[None].astype(np.float64)
    r = onnx_order(w_hh)[None].astype(np.float64)
    b = np.concatenate([onnx_order(b_ih), onnx_order(b_hh)])[None]
    model = rnn_model("LSTM", w.astype(np.float32), r.astype(np.float32), b.astype(np.float32))
    # keep full precision: rebuild the initializers as doubles
    for init in model.graph.initializer:
        init.CopyFrom(numpy_helper.from_array({"W": w, "R": r, "B": b}[init.name], init.name))
    path = save(model, tmp_path / "lstm.onnx")
    bundle = load(path)
    rec = inspect(bundle).recurrences[0]
    for part, value in (("weight_ih", w_ih), ("weight_hh", w_hh), ("bias_ih", b_ih),
                        ("bias_hh", b_hh)):
        assert np.array_equal(bundle.array(getattr(rec, part)), value)
    x = np.random.default_rng(2).standard_normal((2, T, I))
    np.save(tmp_path / "x.npy", x)
    (item,) = bptt(path, BpttOptions(lags="1,3,6", probe=ProbeSpec(
        inputs=str(tmp_path / "x.npy")))).recurrences
    step = ref.torch_lstm_cell(w_ih, w_hh, b_ih, b_hh)
    for row in item.rows:
        truth = [ref.lag_norm(step, x[k], 2 * H, row.lag) for k in range(2)]
        assert row.log10_norm == pytest.approx(float(np.mean(np.log10(truth))), abs=1e-7)


def _if_model():
    """Silero-like: PyTorch-order initializers sliced and concatenated into ONNX order inside
    both branches of an If whose condition is a graph input."""
    rng = np.random.default_rng(4)
    w_ih = rng.standard_normal((4 * H, I)).astype(np.float32)
    w_hh = rng.standard_normal((4 * H, H)).astype(np.float32)
    inits = [numpy_helper.from_array(w_ih, "rnn.weight_ih"),
             numpy_helper.from_array(w_hh, "rnn.weight_hh")]

    def branch(tag):
        nodes, outs = [], {}
        for source, key in (("rnn.weight_ih", "W"), ("rnn.weight_hh", "R")):
            parts = []
            for k, (start, end) in enumerate(((0, H), (3 * H, 4 * H), (H, 3 * H))):  # i, o, f|g
                names = [f"{tag}{key}{k}{s}" for s in ("s", "e", "a")]
                for name, value in zip(names, (start, end, 0)):
                    nodes.append(helper.make_node("Constant", [], [name], value=
                                                  numpy_helper.from_array(np.array([value]),
                                                                          name + "_v")))
                nodes.append(helper.make_node("Slice", [source, *names], [f"{tag}{key}{k}"]))
                parts.append(f"{tag}{key}{k}")
            nodes.append(helper.make_node("Concat", parts, [f"{tag}{key}cat"], axis=0))
            nodes.append(helper.make_node("Constant", [], [f"{tag}{key}ax"], value=
                                          numpy_helper.from_array(np.array([0]), "ax")))
            nodes.append(helper.make_node("Unsqueeze", [f"{tag}{key}cat", f"{tag}{key}ax"],
                                          [f"{tag}{key}3d"]))
            outs[key] = f"{tag}{key}3d"
        nodes.append(helper.make_node("LSTM", ["X", outs["W"], outs["R"]],
                                      [f"{tag}Y"], hidden_size=H, name=f"/dec/{tag}/LSTM"))
        y = helper.make_tensor_value_info(f"{tag}Y", TensorProto.FLOAT, None)
        return helper.make_graph(nodes, tag, [], [y])

    cond = helper.make_tensor_value_info("cond", TensorProto.BOOL, [])
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [T, 1, I])
    out = helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)
    node = helper.make_node("If", ["cond"], ["Y"], then_branch=branch("a"),
                            else_branch=branch("b"), name="/dec/If")
    graph = helper.make_graph([node], "g", [cond, x], [out], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])
    model.ir_version = 8
    return model, w_ih, w_hh


def test_lstm_inside_if_with_computed_weights(tmp_path):
    model, w_ih, w_hh = _if_model()
    path = save(model, tmp_path / "if.onnx")
    report = inspect(path)
    (rec,) = report.recurrences
    assert "inside If" in rec.convention
    assert "analysed once" in " ".join(report.notes)
    used = {row.name: row.used_by for row in report.tensors}
    assert used["rnn.weight_ih"] == used["rnn.weight_hh"] == rec.label
    bundle = load(path)
    assert np.array_equal(bundle.array(rec.weight_ih), w_ih.astype(np.float64))
    assert np.array_equal(bundle.array(rec.weight_hh), w_hh.astype(np.float64))
    (item,) = spectrum(path).recurrences
    for name, block in zip("ifgo", np.split(w_hh.astype(np.float64), 4)):
        assert item.block(name).sigma_max == pytest.approx(np.linalg.norm(block, 2), rel=1e-12)


def test_external_data_inside_folder_is_read(tmp_path):
    model = rnn_model("GRU", *weights("GRU"), linear_before_reset=1)
    folder = tmp_path / "model"
    folder.mkdir()
    stored = onnx.ModelProto()
    stored.CopyFrom(model)  # save_model moves the data of the proto it saves
    onnx.save_model(stored, str(folder / "m.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)
    bundle = load(folder / "m.onnx")
    rec = inspect(bundle).recurrences[0]
    assert bundle.array(rec.weight_hh).shape == (3 * H, H)
    compare_forward(model, str(folder / "m.onnx"))


def test_external_data_outside_folder_is_refused(tmp_path):
    model = rnn_model("RNN", *weights("RNN"))
    (tmp_path / "outside.bin").write_bytes(b"\0" * 4096)
    inner = tmp_path / "inner"
    inner.mkdir()
    for init in model.graph.initializer:
        init.ClearField("raw_data")
        init.ClearField("float_data")
        init.data_location = TensorProto.EXTERNAL
        entry = init.external_data.add()
        entry.key, entry.value = "location", "../outside.bin"
    onnx.save_model(model, str(inner / "m.onnx"))
    with pytest.raises(LoadError, match="outside the model's folder"):
        load(inner / "m.onnx")


def test_weights_from_graph_input_are_refused(tmp_path):
    w, r, b = weights("LSTM")
    model = rnn_model("LSTM", w, r, b)
    model.graph.initializer.pop(0)  # W becomes a run-time input
    model.graph.input.append(helper.make_tensor_value_info("W", TensorProto.FLOAT, list(w.shape)))
    path = save(model, tmp_path / "m.onnx")
    with pytest.raises(LoadError, match="W of ONNX node /enc/LSTM is not computed"):
        load(path)


@pytest.mark.parametrize("attrs, match", [
    ({"clip": 3.0}, "clips"),
    ({"activations": ["Sigmoid", "Tanh", "ThresholdedRelu"]}, "ThresholdedRelu"),
    ({"activations": ["Sigmoid", "Tanh", "Tanh"], "activation_alpha": [0.5]}, "activation_alpha"),
    ({"input_forget": 1}, "input_forget"),
])
def test_unsupported_lstm_options(tmp_path, attrs, match):
    model = rnn_model("LSTM", *weights("LSTM"), **attrs)
    with pytest.raises(LoadError, match=match):
        load(save(model, tmp_path / "m.onnx"))


def test_not_onnx(tmp_path):
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"\x08\x07\x12\xff\xff\xff garbage")
    with pytest.raises(LoadError, match="not a readable ONNX model"):
        load(path)


def test_model_without_rnn_has_no_recurrence(tmp_path):
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2])
    graph = helper.make_graph([helper.make_node("Relu", ["X"], ["Y"])], "g", [x], [y])
    path = save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)]),
                tmp_path / "relu.onnx")
    from rnngrad.errors import NoRecurrenceError

    with pytest.raises(NoRecurrenceError):
        inspect(path)


def test_gru_inside_loop_with_transposed_and_reshaped_weights(tmp_path):
    rng = np.random.default_rng(6)
    w = rng.standard_normal((3 * H, I)).astype(np.float32)
    r = rng.standard_normal((3 * H, H)).astype(np.float32)
    inits = [numpy_helper.from_array(w.T.copy(), "Wt"),            # stored (I, 3H)
             numpy_helper.from_array(r.reshape(-1), "R_flat"),      # stored flat
             numpy_helper.from_array(np.array([1, 3 * H, H]), "R_shape"),
             numpy_helper.from_array(np.array(2, dtype=np.int64), "trips")]
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Transpose", ["Wt"], ["W2"], perm=[1, 0]),
         helper.make_node("Constant", [], ["axes"], value=numpy_helper.from_array(
             np.array([0]), "axes_v")),
         helper.make_node("Unsqueeze", ["W2", "axes"], ["W3"]),
         helper.make_node("Reshape", ["R_flat", "R_shape"], ["R3"]),
         helper.make_node("GRU", ["X", "W3", "R3"], ["Yb"], hidden_size=H,
                          linear_before_reset=1, name="/loop/GRU")],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("Yb", TensorProto.FLOAT, None)])
    loop = helper.make_node("Loop", ["trips", ""], ["Ys"], body=body, name="/loop")
    graph = helper.make_graph([loop], "g", [helper.make_tensor_value_info(
        "X", TensorProto.FLOAT, [T, 1, I])], [helper.make_tensor_value_info(
            "Ys", TensorProto.FLOAT, None)], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])
    path = save(model, tmp_path / "loop.onnx")
    report = inspect(path)
    (rec,) = report.recurrences
    assert rec.cell == "gru" and "inside Loop" in rec.convention
    bundle = load(path)
    z, reset, n = np.split(w.astype(np.float64), 3)
    assert np.array_equal(bundle.array(rec.weight_ih), np.concatenate([reset, z, n]))
    zr, rr, nr = np.split(r.astype(np.float64), 3)
    assert np.array_equal(bundle.array(rec.weight_hh), np.concatenate([rr, zr, nr]))
    assert {row.name for row in report.tensors if row.used_by} >= {"Wt", "R_flat", "R_shape"}


def test_missing_onnx_package_is_explained(tmp_path, monkeypatch):
    path = save(rnn_model("RNN", *weights("RNN")), tmp_path / "m.onnx")
    monkeypatch.setitem(__import__("sys").modules, "onnx", None)
    with pytest.raises(LoadError, match=r"rnngrad\[onnx\]"):
        load(path)


def onnx_lstm_reference(w, r, b, x, f, g, h):
    """Y of a forward ONNX LSTM as its specification writes it (gates i, o, f, c)."""
    hidden = r.shape[-1]
    wi, wo, wf, wc = np.split(w[0].astype(np.float64), 4)
    ri, ro, rf, rc = np.split(r[0].astype(np.float64), 4)
    wb, rb = np.split(b[0].astype(np.float64), 2)
    bi, bo, bf, bc = (np.split(wb, 4)[k] + np.split(rb, 4)[k] for k in range(4))
    state, cell, ys = np.zeros(hidden), np.zeros(hidden), []
    for xt in x[:, 0].astype(np.float64):
        i = f(xt @ wi.T + state @ ri.T + bi)
        forget = f(xt @ wf.T + state @ rf.T + bf)
        c = g(xt @ wc.T + state @ rc.T + bc)
        cell = forget * cell + i * c
        state = f(xt @ wo.T + state @ ro.T + bo) * h(cell)
        ys.append(state)
    return np.stack(ys)


def test_lstm_runs_the_activations_its_node_names(tmp_path):
    w, r, b = weights("LSTM", seed=8)
    model = rnn_model("LSTM", w, r, b, activations=["HardSigmoid", "Relu", "Tanh"])
    path = save(model, tmp_path / "a.onnx")
    (rec,) = inspect(path).recurrences
    assert (rec.nonlinearity, rec.nonlinearity_source) == ("hard_sigmoid_0.2/relu/tanh", "config")
    x = np.random.default_rng(9).standard_normal((T, 1, I)).astype(np.float32)
    expected = onnx_lstm_reference(w, r, b, x, lambda v: np.clip(0.2 * v + 0.5, 0, 1),
                                   lambda v: np.maximum(v, 0), np.tanh)
    bundle = load(path)
    (rec,) = understand(bundle).recurrences
    _, out = run_stack([[(rec, cell_weights(bundle, rec))]],
                       torch.from_numpy(x[:, 0].astype(np.float64))[None])
    assert out[0].numpy() == pytest.approx(expected, rel=1e-9, abs=1e-12)
    (default,) = inspect(save(rnn_model("LSTM", w, r, b), tmp_path / "d.onnx")).recurrences
    assert (default.nonlinearity, default.nonlinearity_source) == ("sigmoid/tanh", "default")


def test_constant_nonzero_initial_state_is_noted(tmp_path):
    w, r, b = weights("GRU", seed=3)
    model = rnn_model("GRU", w, r, b, linear_before_reset=1)
    node = model.graph.node[0]
    node.input.extend(["", "h0"])  # sequence_lens absent, initial_h constant
    model.graph.initializer.append(numpy_helper.from_array(np.full((1, 1, H), 0.5, np.float32),
                                                           "h0"))
    report = inspect(save(model, tmp_path / "h0.onnx"))
    assert any("non-zero initial_h" in note for note in report.notes)
