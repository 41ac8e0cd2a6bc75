"""A map carried in a safetensors file's metadata (``rnngrad.map``), its ``[probe]`` table, and
recurrences without input; the ``squared`` probe loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from rnngrad.conventions.understand import understand
from rnngrad.errors import OptionError
from rnngrad.probes.heads import per_probe_loss, probe_loss, probe_target, squared_targets
from rnngrad.cli import main

MAP = """
[[recurrence]]
name = "unit"
recurrent = "w"
bias = "b"
nonlinearity = "sigmoid"

[probe]
steps = 50
burn_in = 0
initial_state = 0.5
loss = "squared"
targets = 0.7
"""


def save_unit(path, text=MAP, w=5.0, b=-2.6):
    save_file({"w": torch.tensor([[w]], dtype=torch.float64),
               "b": torch.tensor([b], dtype=torch.float64)}, str(path),
              metadata={"rnngrad.map": text})
    return path


def test_the_metadata_map_describes_the_recurrence_and_its_probe(tmp_path):
    understood = understand(save_unit(tmp_path / "u.safetensors"))
    (rec,) = understood.recurrences
    assert (rec.cell, rec.nonlinearity, rec.leak, rec.hidden_size) == ("leaky", "sigmoid", 1.0, 1)
    assert rec.input_size is None and rec.missing == ()  # no input by design, nothing missing
    settings = understood.settings
    assert dict(settings.probe) == {"steps": 50, "burn_in": 0, "initial_state": 0.5}
    assert (settings.loss, settings.targets) == ("squared", "0.7")
    assert any("rnngrad.map" in note for note in understood.notes)
    assert understood.bundle.array("unit.weight_hh").tolist() == [[5.0]]


def test_a_map_file_replaces_the_metadata_map(tmp_path):
    path = save_unit(tmp_path / "u.safetensors")
    (tmp_path / "m.toml").write_text('[[recurrence]]\nname = "other"\nrecurrent = "w"\n'
                                     'nonlinearity = "tanh"\n')
    from rnngrad.conventions.options import ReadOptions

    understood = understand(path, ReadOptions(map=str(tmp_path / "m.toml")))
    assert understood.recurrences[0].module == "other"
    assert understood.settings is None


@pytest.mark.parametrize("text,message", [
    ("[[recurrence]]\nrecurrent = \"w\"\n[probe]\ncolour = 3\n", "unknown [probe] key"),
    ("[[recurrence]]\nrecurrent = \"w\"\n[probe]\nloss = 3\n", "is not a name"),
    ("not toml at all [", "not a readable TOML"),
    ("[[recurrence]]\nrecurrent = \"nope\"\n", "names 'nope'"),
])
def test_a_bad_metadata_map_is_one_line_and_exit_2(tmp_path, capsys, text, message):
    path = save_unit(tmp_path / "u.safetensors", text=text)
    with pytest.raises(SystemExit) as exc:
        main(["inspect", str(path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "rnngrad.map" in err


def test_inspect_and_bptt_run_the_input_free_unit(tmp_path, capsys):
    path = save_unit(tmp_path / "u.safetensors")
    with pytest.raises(SystemExit) as exc:
        main(["bptt", str(path), "--lags", "1..5", "--steps", "5", "--burn-in", "0",
              "--batch", "1", "--initial-state", "0.5", "-f", "json"])
    assert exc.value.code == 0
    import json

    doc = json.loads(capsys.readouterr().out)
    assert doc["probe"]["shape"] == [1, 5, 0] and doc["probe"]["initial_state"] == "0.5"
    # x_t = 5σ(x_(t−1)) − 2.6 from 0.5: ∂x_5/∂x_4 = 5σ'(x_4), computed here by hand
    x = [0.5]
    for _ in range(5):
        x.append(5 / (1 + np.exp(-x[-1])) - 2.6)
    slope = 5 * np.exp(-x[4]) / (1 + np.exp(-x[4])) ** 2
    assert doc["recurrences"][0]["lags"][0]["norm"] == pytest.approx(slope, rel=1e-12)


def test_squared_loss_is_the_squared_distance_without_a_half():
    y = torch.tensor([[0.2, -1.0], [3.0, 0.5]], dtype=torch.float64)
    targets = torch.as_tensor(squared_targets("0.7", 2)).expand(2, 2)
    got = per_probe_loss(y, "squared", targets)
    assert got.tolist() == pytest.approx([(0.2 - 0.7) ** 2 + 1.7 ** 2, 2.3 ** 2 + 0.2 ** 2],
                                         rel=1e-15)


def test_squared_targets_from_a_file(tmp_path):
    np.save(tmp_path / "t.npy", np.array([[1.0, 2.0], [3.0, 4.0]]))
    assert squared_targets(str(tmp_path / "t.npy"), 2).tolist() == [[1.0, 2.0], [3.0, 4.0]]
    np.save(tmp_path / "bad.npy", np.array([[1.0, 2.0, 3.0]]))
    with pytest.raises(Exception, match="squared loss needs finite float targets"):
        squared_targets(str(tmp_path / "bad.npy"), 2)


def test_batched_losses_equal_bptts_per_probe_losses():
    """per_probe_loss (surface) and probe_loss (bptt) give the same E_b from the same draws."""
    from rnngrad.probes.heads import Head

    y = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    head = Head(weight=torch.randn(2, 3, dtype=torch.float64),
                bias=torch.randn(2, dtype=torch.float64), name="fc.weight")
    for loss in ("readout", "mse", "ce"):
        use = head if loss != "readout" else None
        stacked = np.stack([probe_target(use, loss, b, 5, 3) for b in range(4)])
        targets = torch.as_tensor(stacked, dtype=torch.int64 if loss == "ce" else torch.float64)
        batched = per_probe_loss(y, loss, targets, head.weight if use else None,
                                 head.bias if use else None)
        single = [float(probe_loss(y[b:b + 1], use, loss, b, 5)[0]) for b in range(4)]
        assert batched.tolist() == pytest.approx(single, rel=1e-12)


def test_unknown_probe_setting_from_a_map_is_an_option_error(tmp_path):
    import rnngrad

    path = save_unit(tmp_path / "u.safetensors", text=MAP.replace("burn_in = 0", "burn_in = -3"))
    with pytest.raises(Exception, match="--burn-in -3"):
        rnngrad.surface(path)
    with pytest.raises(OptionError):
        from rnngrad.conventions.mapping import parse_map

        parse_map("[[recurrence]]\nrecurrent = 'w'\n[probe]\ntargets = true\n", "x", "y")
