"""Loading by content and recurrence detection on every key pattern PyTorch produces."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import rnngrad
from rnngrad.cells.detection import find_recurrences
from rnngrad.errors import LoadError, NoRecurrenceError, OptionError
from conftest import save_safetensors


class Encoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.embedding = torch.nn.Embedding(30, 6)
        self.rnn = torch.nn.LSTM(6, 8, num_layers=2, bidirectional=True, proj_size=4)
        self.cell = torch.nn.GRUCell(8, 5)
        self.fc = torch.nn.Linear(8, 3)


def identities(source, **kwargs):
    return [(r.module, r.cell, r.layer, r.direction, r.hidden_size, r.input_size, r.proj_size)
            for r in find_recurrences(rnngrad.load(source) if not isinstance(source, dict)
                                      else rnngrad.io.from_state_dict(source), **kwargs)]


def test_prefixes_stacks_directions_projection_and_cells(tmp_path):
    model = Encoder()
    path = save_safetensors(model, tmp_path / "m.safetensors", prefix="model.encoder.")
    found = identities(path)
    assert ("model.encoder.cell", "gru", 0, "forward", 5, 8, 0) in found
    for layer, width in ((0, 6), (1, 8)):
        for direction in ("forward", "reverse"):
            assert ("model.encoder.rnn", "lstm", layer, direction, 8, width, 4) in found
    assert len(found) == 5
    report = rnngrad.inspect(path)
    unused = {row.name for row in report.unused}
    assert unused == {"model.encoder.embedding.weight", "model.encoder.fc.weight",
                      "model.encoder.fc.bias"}


@pytest.mark.parametrize("wrapper", [None, "state_dict", "model", "model_state_dict", "net"])
def test_pytorch_checkpoints_nesting_a_state_dict(tmp_path, wrapper):
    torch.manual_seed(1)
    state = torch.nn.GRU(3, 4).state_dict()
    obj = state if wrapper is None else {wrapper: state, "epoch": 3, "lr": 0.1}
    path = tmp_path / "ckpt.bin"
    torch.save(obj, path)
    bundle = rnngrad.load(path)
    assert bundle.format == "pytorch"
    assert identities(path) == [("", "gru", 0, "forward", 4, 3, 0)]
    if wrapper:
        assert any(wrapper in note for note in bundle.notes)


def test_format_is_recognised_by_content_not_extension(tmp_path):
    torch.manual_seed(2)
    module = torch.nn.RNN(3, 4)
    odd = save_safetensors(module, tmp_path / "weights.pt")
    assert rnngrad.load(odd).format == "safetensors"
    npz = tmp_path / "weights.bin"
    with npz.open("wb") as handle:
        np.savez(handle, **{k: v.numpy() for k, v in module.state_dict().items()})
    assert rnngrad.load(npz).format == "npz"


def test_npz_skips_object_arrays_and_says_so(tmp_path):
    torch.manual_seed(3)
    arrays = {k: v.numpy() for k, v in torch.nn.RNN(3, 4).state_dict().items()}
    path = tmp_path / "w.npz"
    np.savez(path, **arrays, extra=np.array([{"a": 1}], dtype=object))
    bundle = rnngrad.load(path)
    assert "extra" not in bundle.tensors
    assert any("extra" in note and "pickle" in note for note in bundle.notes)
    assert identities(path)[0][:2] == ("", "rnn")


def test_nonlinearity_from_metadata_option_and_default(tmp_path):
    torch.manual_seed(4)
    module = torch.nn.RNN(3, 4)
    plain = save_safetensors(module, tmp_path / "a.safetensors")
    relu = save_safetensors(module, tmp_path / "b.safetensors", metadata={"nonlinearity": "relu"})
    per_module = save_safetensors(module, tmp_path / "c.safetensors", prefix="enc.",
                                  metadata={"enc.nonlinearity": "relu"})
    pick = lambda path, **kw: [(r.nonlinearity, r.nonlinearity_source)
                               for r in find_recurrences(rnngrad.load(path), **kw)][0]
    assert pick(plain) == ("tanh", "default")
    assert pick(relu) == ("relu", "metadata")
    assert pick(per_module) == ("relu", "metadata")
    assert pick(relu, activation="tanh") == ("tanh", "option")


def test_module_nonlinearity_is_carried_from_a_live_module():
    module = torch.nn.RNN(3, 4, nonlinearity="relu")
    report = rnngrad.spectrum(module)
    assert report.recurrences[0].recurrence.nonlinearity == "relu"


def test_key_analyses_any_square_matrix():
    state = {"my.W_rec": torch.eye(5), "my.W_in": torch.ones(5, 2)}
    found = find_recurrences(rnngrad.io.from_state_dict(state), keys=("my.W_rec",))
    assert [(r.module, r.cell, r.hidden_size) for r in found] == [("my.W_rec", "rnn", 5)]
    with pytest.raises(OptionError, match="not a non-empty square"):
        find_recurrences(rnngrad.io.from_state_dict(state), keys=("my.W_in",))
    with pytest.raises(OptionError, match="no such tensor"):
        find_recurrences(rnngrad.io.from_state_dict(state), keys=("nope",))


def test_no_recurrence_lists_the_tensors_and_suggests_key(tmp_path):
    path = tmp_path / "mlp.safetensors"
    save_file({"fc.weight": torch.ones(3, 4), "fc.bias": torch.ones(3)}, str(path))
    with pytest.raises(NoRecurrenceError) as info:
        find_recurrences(rnngrad.load(path))
    assert "fc.weight [3, 4]" in info.value.message and "--key" in info.value.hint


def test_missing_input_weights_are_named():
    state = {"rnn.weight_hh_l0": torch.eye(4)}
    rec = find_recurrences(rnngrad.io.from_state_dict(state))[0]
    assert rec.missing == ("rnn.weight_ih_l0",)
    assert rnngrad.inspect(state).recurrences[0].missing == ("rnn.weight_ih_l0",)
    from rnngrad.bptt import bptt
    from rnngrad.errors import ProbeError

    with pytest.raises(ProbeError, match="weight_ih_l0"):
        bptt(state)


@pytest.mark.parametrize("state,match", [
    ({"weight_hh_l0": torch.ones(8, 5)}, "not square"),
    ({"weight_hh_l0": torch.ones(6, 6), "weight_ih_l0": torch.ones(8, 4)}, "row counts"),
    ({"weight_hh_l0": torch.ones(4, 4), "weight_ih_l0": torch.ones(4, 2),
      "weight_hh_l2": torch.ones(4, 4), "weight_ih_l2": torch.ones(4, 4)}, "no layer 1"),
    ({"weight_hh_l0": torch.ones(0, 0)}, "hidden size 0"),
    ({"weight_hh_l0": torch.ones(8, 4)}, "1, 3 or 4 times"),
    ({"weight_hh_l0": torch.ones(4, 4), "weight_ih_l0": torch.ones(4, 2),
      "weight_hh_l1": torch.ones(4, 4), "weight_ih_l1": torch.ones(4, 7)}, "takes 7 inputs"),
])
def test_inconsistent_shapes_are_refused(state, match):
    with pytest.raises(LoadError, match=match):
        find_recurrences(rnngrad.io.from_state_dict(state))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_float_dtypes_are_read_as_float64(tmp_path, dtype):
    torch.manual_seed(5)
    module = torch.nn.RNN(2, 3).to(dtype)
    path = save_safetensors(module, tmp_path / "m.safetensors")
    values = rnngrad.load(path).array("weight_hh_l0")
    assert values.dtype == np.float64
    assert np.array_equal(values, module.weight_hh_l0.detach().double().numpy())


def test_non_float_and_non_finite_weights_are_refused(tmp_path):
    path = tmp_path / "int.safetensors"
    save_file({"weight_hh_l0": torch.ones(3, 3, dtype=torch.int64)}, str(path))
    with pytest.raises(LoadError, match="int64"):
        rnngrad.spectrum(path)
    path = tmp_path / "nan.safetensors"
    bad = torch.eye(3)
    bad[1, 1] = float("nan")
    save_file({"weight_hh_l0": bad}, str(path))
    with pytest.raises(LoadError, match="NaN"):
        rnngrad.spectrum(path)


def test_whole_pickled_module_is_refused_with_the_remedy(tmp_path):
    path = tmp_path / "module.pt"
    torch.save(torch.nn.RNN(2, 3), path)
    with pytest.raises(LoadError) as info:
        rnngrad.load(path)
    assert "state_dict()" in info.value.hint


def test_loading_never_changes_the_file(tmp_path):
    import hashlib

    path = save_safetensors(torch.nn.LSTM(2, 3), tmp_path / "m.safetensors")
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    rnngrad.spectrum(path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before == rnngrad.load(path).sha256
