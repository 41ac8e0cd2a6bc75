"""Models exported by ``torch.onnx.export`` itself, read back and compared with the PyTorch
module that was exported.

The TorchScript-based exporter (``dynamo=False``) writes one RNN/GRU/LSTM node per layer;
rnngrad must read them as one stack fed layer to layer: its forward pass equals the module's
output, and the per-lag norms of every layer and direction equal the jacrev oracle
(:mod:`oracle`, PyTorch's own modules). The dynamo exporter (torch's default) unrolls an
``nn.RNN`` into MatMul/Add steps: rnngrad says so and how to export instead.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from oracle import lag_norms
from rnngrad.bptt import BpttOptions, bptt
from rnngrad.cells.base import cell_weights
from rnngrad.cells.stack import group_recurrences, run_stack
from rnngrad.conventions.understand import understand
from rnngrad.errors import NoRecurrenceError
from rnngrad.inspection import inspect
from rnngrad.io import load
from rnngrad.probes import ProbeSpec

pytest.importorskip("onnx")

I, H, T, B = 3, 5, 8, 2
RTOL = 1e-6
LAGS = "1,3,8"


class Wrapped(torch.nn.Module):
    """A recurrent module named ``rnn`` as users hold one (batch first), with a head."""

    def __init__(self, rnn: torch.nn.Module):
        super().__init__()
        self.rnn = rnn
        self.head = torch.nn.Linear(rnn.hidden_size * (2 if rnn.bidirectional else 1), 2)

    def forward(self, x):
        return self.head(self.rnn(x)[0])


MODULES = {
    "rnn-relu-2": lambda: torch.nn.RNN(I, H, num_layers=2, nonlinearity="relu", batch_first=True),
    "gru-2-bidir": lambda: torch.nn.GRU(I, H, num_layers=2, bidirectional=True, batch_first=True),
    "lstm-3": lambda: torch.nn.LSTM(I, H, num_layers=3, batch_first=True),
    "lstm-2-bidir": lambda: torch.nn.LSTM(I, H, num_layers=2, bidirectional=True,
                                          batch_first=True),
}


def make(name: str) -> torch.nn.Module:
    torch.manual_seed(len(name))
    rnn = MODULES[name]().to(torch.float64)
    with torch.no_grad():  # livelier dynamics than the default init, so lags differ visibly
        for pname, param in rnn.named_parameters():
            if pname.startswith("weight_hh"):
                param.mul_(2.5)
    return rnn.eval()


def export(module: torch.nn.Module, path, **kwargs) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation and batch-size warnings
        torch.onnx.export(Wrapped(module).to(torch.float64).eval(),
                          (torch.zeros(1, T, I, dtype=torch.float64),),
                          str(path), input_names=["x"], **kwargs)
    return str(path)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_exported_layers_are_one_stack_run_as_pytorch_runs_it(name, tmp_path):
    module = make(name)
    path = export(module, tmp_path / "m.onnx", dynamo=False,
                  dynamic_axes={"x": {0: "batch", 1: "time"}})
    report = inspect(path)
    directions = 2 if module.bidirectional else 1
    assert [(rec.module, rec.layer, rec.direction) for rec in report.recurrences] == [
        ("rnn", layer, direction) for layer in range(module.num_layers)
        for direction in ("forward", "reverse")[:directions]]
    if isinstance(module, torch.nn.RNN):
        assert {(rec.nonlinearity, rec.nonlinearity_source)
                for rec in report.recurrences} == {("relu", "config")}
    assert "feed each other" in " ".join(report.notes)

    x = np.random.default_rng(4).standard_normal((B, T, I))
    bundle = load(path)
    (group,) = group_recurrences(understand(bundle).recurrences)
    _, out = run_stack([[(rec, cell_weights(bundle, rec)) for rec in layer]
                        for layer in group.layers], torch.from_numpy(x))
    with torch.no_grad():
        expected = module(torch.from_numpy(x))[0].numpy()
    assert out.numpy() == pytest.approx(expected, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("name", ["gru-2-bidir", "lstm-3"])
def test_per_lag_norms_of_every_layer_match_jacrev_through_the_module(name, tmp_path):
    module = make(name)
    path = export(module, tmp_path / "m.onnx", dynamo=False)
    x = np.random.default_rng(5).standard_normal((B, T, I))
    np.save(tmp_path / "x.npy", x)
    report = bptt(path, BpttOptions(lags=LAGS, probe=ProbeSpec(inputs=str(tmp_path / "x.npy"))))
    assert len(report.recurrences) == module.num_layers * (2 if module.bidirectional else 1)
    for item in report.recurrences:
        rec = item.recurrence
        for row in item.rows:
            truth = lag_norms(module, x, layer=rec.layer, reverse=rec.direction == "reverse",
                              lag=row.lag)
            assert row.log10_norm == pytest.approx(float(np.mean(np.log10(truth))),
                                                   abs=RTOL / math.log(10))


@pytest.mark.slow
def test_dynamo_exported_lstm_nodes_are_one_stack_too(tmp_path):
    """The dynamo exporter keeps LSTM nodes but bakes the probe's T and B into its Reshape."""
    pytest.importorskip("onnxscript")
    module = make("lstm-3")
    path = export(module, tmp_path / "m.onnx", dynamo=True, verbose=False)
    recs = inspect(path).recurrences
    assert [rec.layer for rec in recs] == [0, 1, 2] and len({rec.module for rec in recs}) == 1


@pytest.mark.slow
def test_dynamo_unrolled_rnn_is_explained(tmp_path):
    """An nn.RNN through the default (dynamo) exporter has no RNN node: say so and how."""
    pytest.importorskip("onnxscript")
    path = export(make("rnn-relu-2"), tmp_path / "m.onnx", dynamo=True, verbose=False)
    with pytest.raises(NoRecurrenceError) as raised:
        inspect(path)
    assert "no RNN, LSTM or GRU node in the ONNX graph" in raised.value.message
    assert "MatMul" in raised.value.message
    assert "dynamo=False" in raised.value.hint


def test_unrolled_graph_with_pytorch_names_is_not_guessed(tmp_path):
    """Initializers named like a state dict in a graph without recurrent nodes are not read
    as a PyTorch RNN (which nonlinearity would it run?)."""
    from onnx import TensorProto, helper, numpy_helper

    w = np.eye(H, dtype=np.float32)
    inits = [numpy_helper.from_array(w, "rnn.weight_hh_l0"),
             numpy_helper.from_array(np.ones((H, I), np.float32), "rnn.weight_ih_l0")]
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, H])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, H])
    nodes = [helper.make_node("MatMul", ["X", "rnn.weight_hh_l0"], ["A"]),
             helper.make_node("Relu", ["A"], ["Y"])]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y], initializer=inits),
                              opset_imports=[helper.make_opsetid("", 17)])
    import onnx

    onnx.save_model(model, str(tmp_path / "u.onnx"))
    with pytest.raises(NoRecurrenceError, match="no RNN, LSTM or GRU node"):
        inspect(str(tmp_path / "u.onnx"))
    (rec,) = inspect(str(tmp_path / "u.onnx"), keys=("rnn.weight_hh_l0",)).recurrences
    assert rec.nonlinearity_source == "default"  # --key still works, and says what it assumed


def test_chained_modules_in_different_scopes_stay_apart(tmp_path):
    """An encoder LSTM feeding a decoder LSTM is two modules, as in PyTorch."""

    class EncoderDecoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = torch.nn.LSTM(I, H, batch_first=True)
            self.dec = torch.nn.LSTM(H, H, batch_first=True)

        def forward(self, x):
            return self.dec(self.enc(x)[0])[0]

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(EncoderDecoder().eval(), (torch.zeros(1, T, I),),
                          str(tmp_path / "ed.onnx"), dynamo=False)
    report = inspect(str(tmp_path / "ed.onnx"))
    assert [(rec.module, rec.layer) for rec in report.recurrences] == [("enc", 0), ("dec", 0)]
    assert "not as the layers of one PyTorch module" in " ".join(report.notes)
