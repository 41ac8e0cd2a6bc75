"""The cells' nonlinearities and the gated cells run with them, against autograd.

Oracles: each φ is written here again from its textbook formula (torch.nn.functional where it
has one) and differentiated by ``torch.func.grad``; γ = sup |φ'| is the maximum over a fine
grid; the LSTM and GRU with other activations are hand-written here in PyTorch's layout and
their step Jacobians come from ``torch.func.jacrev``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.func import grad, jacrev, vmap

from rnngrad.cells import GAMMA, SPECS
from rnngrad.cells.activations import FUNCTIONS, gated, value_and_slope
from rnngrad.cells.base import CellWeights
from rnngrad.io import from_state_dict
from rnngrad.inspection import inspect

TEXTBOOK = {
    "tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": F.relu, "identity": lambda x: x,
    # not F.hardsigmoid: its backward uses 1/6 rounded to float32, even in float64
    "hard_sigmoid": lambda x: torch.clamp(x / 6 + 0.5, 0, 1),
    "hard_sigmoid_0.2": lambda x: torch.clamp(0.2 * x + 0.5, 0, 1),
    "softsign": F.softsign, "softplus": F.softplus, "elu": F.elu, "selu": F.selu,
    "silu": F.silu, "relu6": F.relu6, "gelu": lambda x: F.gelu(x, approximate="none"),
}


def test_every_function_has_a_textbook_twin_and_a_gamma():
    assert set(FUNCTIONS) == set(TEXTBOOK) == set(GAMMA)


@pytest.mark.parametrize("name", sorted(TEXTBOOK))
def test_value_and_slope_match_autograd(name):
    # away from the kinks (0 for relu & co., ±2.5 and ±3 for the hard sigmoids, 6 for relu6)
    x = torch.linspace(-7.3, 7.1, 2001, dtype=torch.float64)
    x = x[(x.abs() > 1e-3) & ((x.abs() - 2.5).abs() > 1e-3) & ((x.abs() - 3).abs() > 1e-3)
          & ((x - 6).abs() > 1e-3)]
    value, slope = value_and_slope(x, name)
    expected = TEXTBOOK[name](x)
    expected_slope = vmap(grad(lambda v: TEXTBOOK[name](v)))(x)
    assert value.numpy() == pytest.approx(expected.numpy(), rel=1e-12, abs=1e-14)
    assert slope.numpy() == pytest.approx(expected_slope.numpy(), rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("name", sorted(TEXTBOOK))
def test_gamma_is_the_largest_slope(name):
    x = torch.linspace(-20, 20, 400001, dtype=torch.float64)
    slopes = vmap(grad(lambda v: TEXTBOOK[name](v)))(x).abs()
    assert GAMMA[name] == pytest.approx(float(slopes.max()), rel=1e-6, abs=1e-9)


def test_gamma_of_elman_cells_follows_their_nonlinearity():
    assert SPECS["rnn"].gamma("sigmoid") == pytest.approx(0.25, abs=1e-15)
    assert SPECS["rnn"].gamma("tanh") == SPECS["rnn"].gamma("relu") == 1.0
    assert SPECS["lstm"].gamma("hard_sigmoid/relu") == 1.0


@pytest.mark.parametrize("text, parts, expected", [
    ("sigmoid/tanh", 3, ("sigmoid", "tanh", "tanh")),
    ("hard_sigmoid/relu", 2, ("hard_sigmoid", "relu")),
    ("sigmoid/tanh/relu", 3, ("sigmoid", "tanh", "relu"))])
def test_gated_names(text, parts, expected):
    assert gated(text, parts) == expected


@pytest.mark.parametrize("text, parts", [("tanh", 2), ("sigmoid/tanh/relu", 2), ("x/tanh", 2)])
def test_gated_names_refused(text, parts):
    with pytest.raises(ValueError):
        gated(text, parts)


# --- the gated cells with other activations, against hand-written cells ----------------------

H, I, BATCH = 4, 3, 3


def _weights(gates: int, seed: int) -> CellWeights:
    g = torch.Generator().manual_seed(seed)

    def draw(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    return CellWeights(weight_ih=draw(gates * H, I), weight_hh=1.5 * draw(gates * H, H),
                       bias_ih=0.3 * draw(gates * H), bias_hh=0.3 * draw(gates * H))


def lstm_reference(w: CellWeights, x, s, gate, act, out):
    """PyTorch's LSTM equations with σ = gate, φ = act (candidate), ψ = out (cell output)."""
    h, c = s[:H], s[H:]
    a_i, a_f, a_g, a_o = (w.weight_ih @ x + w.bias_ih + w.weight_hh @ h + w.bias_hh).chunk(4)
    c = gate(a_f) * c + gate(a_i) * act(a_g)
    return torch.cat([gate(a_o) * out(c), c])


def gru_reference(w: CellWeights, x, h, gate, act, reset_after: bool):
    i_r, i_z, i_n = (w.weight_ih @ x + w.bias_ih).chunk(3)
    w_r, w_z, w_n = w.weight_hh.chunk(3)
    b_r, b_z, b_n = w.bias_hh.chunk(3)
    r, z = gate(i_r + w_r @ h + b_r), gate(i_z + w_z @ h + b_z)
    n = act(i_n + r * (w_n @ h + b_n)) if reset_after else act(i_n + w_n @ (r * h) + b_n)
    return (1 - z) * n + z * h


GATED = [("lstm", "hard_sigmoid/relu"), ("lstm", "hard_sigmoid_0.2/softsign"),
         ("lstm", "sigmoid/tanh/relu"), ("gru", "hard_sigmoid/relu"),
         ("gru", "sigmoid/elu"), ("gru_reset_before", "hard_sigmoid_0.2/selu"),
         ("gru_reset_before", "sigmoid/tanh")]


@pytest.mark.parametrize("cell, nonlinearity", GATED)
def test_gated_step_and_jacobian_match_autograd(cell, nonlinearity):
    import importlib

    module = importlib.import_module(SPECS[cell].module)
    gates = 4 if cell == "lstm" else 3
    w = _weights(gates, seed=len(nonlinearity))
    names = gated(nonlinearity, 3 if cell == "lstm" else 2)
    fns = [TEXTBOOK[name] for name in names]
    size = 2 * H if cell == "lstm" else H
    g = torch.Generator().manual_seed(7)
    x = torch.randn(BATCH, I, dtype=torch.float64, generator=g)
    s = 0.7 * torch.randn(BATCH, size, dtype=torch.float64, generator=g)

    def reference(xb, sb):
        if cell == "lstm":
            return lstm_reference(w, xb, sb, *fns)
        return gru_reference(w, xb, sb, *fns, reset_after=cell == "gru")

    new, cache = module.step(w, w.input_drive(x[:, None])[:, 0], s, nonlinearity)
    jac = module.jacobian(w, cache, nonlinearity)
    for b in range(BATCH):
        expected = reference(x[b], s[b])
        expected_jac = jacrev(lambda state: reference(x[b], state))(s[b])
        assert new[b].numpy() == pytest.approx(expected.numpy(), rel=1e-12, abs=1e-13)
        assert jac[b].numpy() == pytest.approx(expected_jac.numpy(), rel=1e-10, abs=1e-12)


def test_elman_with_a_format_nonlinearity_matches_autograd():
    from rnngrad.cells import elman

    w = _weights(1, seed=3)
    g = torch.Generator().manual_seed(4)
    x = torch.randn(BATCH, I, dtype=torch.float64, generator=g)
    s = torch.randn(BATCH, H, dtype=torch.float64, generator=g)
    new, cache = elman.step(w, w.input_drive(x[:, None])[:, 0], s, "softsign")
    jac = elman.jacobian(w, cache, "softsign")
    for b in range(BATCH):
        def reference(state):
            return F.softsign(w.weight_ih @ x[b] + w.bias_ih + w.weight_hh @ state + w.bias_hh)
        assert new[b].numpy() == pytest.approx(reference(s[b]).numpy(), rel=1e-12, abs=1e-14)
        assert jac[b].numpy() == pytest.approx(jacrev(reference)(s[b]).numpy(), rel=1e-12,
                                               abs=1e-14)


# --- --key and the metadata ----------------------------------------------------------------------


@pytest.mark.parametrize("metadata, expected", [
    ({"enc.nonlinearity": "relu"}, ("relu", "metadata")),
    ({"enc.w_rec.nonlinearity": "relu", "nonlinearity": "tanh"}, ("relu", "metadata")),
    ({"nonlinearity": "relu"}, ("relu", "metadata")),
    ({}, ("tanh", "default"))])
def test_key_honours_the_metadata(metadata, expected):
    bundle = from_state_dict({"enc.w_rec": np.eye(3) * 0.5}, metadata=metadata)
    (rec,) = inspect(bundle, keys=("enc.w_rec",)).recurrences
    assert (rec.nonlinearity, rec.nonlinearity_source) == expected
    (rec,) = inspect(bundle, keys=("enc.w_rec",), activation="tanh").recurrences
    assert (rec.nonlinearity, rec.nonlinearity_source) == ("tanh", "option")


def test_key_refuses_unknown_metadata_nonlinearity():
    from rnngrad.errors import LoadError

    bundle = from_state_dict({"w": np.eye(3)}, metadata={"w.nonlinearity": "swish"})
    with pytest.raises(LoadError, match="not a supported nonlinearity"):
        inspect(bundle, keys=("w",))


def test_sigmoid_elman_spectrum_bound_uses_its_gamma(tmp_path):
    """An ONNX RNN with Sigmoid: γ = 1/4 in the bound γ·σ_max (numpy.linalg for σ_max)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    from rnngrad.spectrum import spectrum

    rng = np.random.default_rng(0)
    w, r = rng.standard_normal((1, H, I)), 2 * rng.standard_normal((1, H, H))
    node = helper.make_node("RNN", ["X", "W", "R"], ["Y"], hidden_size=H,
                            activations=["Sigmoid"], name="/enc/RNN")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(
        "X", TensorProto.DOUBLE, [5, 1, I])], [helper.make_tensor_value_info(
            "Y", TensorProto.DOUBLE, None)],
        initializer=[numpy_helper.from_array(w, "W"), numpy_helper.from_array(r, "R")])
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)]),
                    str(tmp_path / "s.onnx"))
    (item,) = spectrum(str(tmp_path / "s.onnx")).recurrences
    assert item.recurrence.nonlinearity == "sigmoid"
    assert item.gamma == pytest.approx(0.25, abs=1e-15)
    assert item.bound == pytest.approx(0.25 * np.linalg.norm(r[0], 2), rel=1e-12)
    assert math.isfinite(item.bound)
