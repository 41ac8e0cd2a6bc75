"""``rnngrad surface`` as users run it (in-process): formats, the JSON contract, --vary,
--fail-on, errors as one line and exit 2, round-trips of the report, pictures."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import rnngrad
from conftest import SAMPLES
from rnngrad.cli import main
from rnngrad.surface.options import SurfaceOptions
from rnngrad.surface.report import SurfaceReport

UNIT = str(SAMPLES / "pascanu_unit.safetensors")
ELMAN = str(SAMPLES / "elman_exploding.safetensors")
FAST = ["--lengths", "50", "--sgd-steps", "3", "--points", "11"]
ELMAN_FAST = ["--batch", "2", "--steps", "20", "--burn-in", "5", "--lengths", "10,25",
              "--sgd-steps", "2", "--points", "9"]


def run(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(["surface", *args])
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def strict_json(text: str) -> dict:
    def refuse(name):
        raise ValueError(f"non-finite {name} in JSON")

    return json.loads(text, parse_constant=refuse)


def test_table_on_the_sample_says_what_the_step_does(capsys):
    code, out, err = run(capsys, UNIT, *FAST)
    assert code == 0, err
    assert "wall at t = 0.01056 ahead" in out
    assert "stays short of the wall" in out and "leaves this step as it is" in out
    words = " ".join(out.split())
    assert "initial state s_0 = 0.5" in words and "no input" in words


def test_json_has_the_contract_fields(capsys):
    code, out, _ = run(capsys, UNIT, *FAST, "-f", "json")
    doc = strict_json(out)
    assert code == 0 and doc["command"] == "surface" and doc["schema_version"] == 1
    for key in ("loss", "gradient_norm", "curvature", "slice", "by_length", "step", "grid"):
        assert key in doc
    for key in ("top_eigenvalue", "along_gradient", "cos_gradient_top"):
        assert isinstance(doc["curvature"][key], float)
    assert set(doc["slice"][0]) >= {"step", "loss"}
    assert set(doc["by_length"][0]) >= {"steps", "gradient_norm", "top_eigenvalue",
                                        "along_gradient"}
    assert doc["grid"] is None and doc["probe"]["initial_state"] == "0.5"


def test_vary_two_axes_gives_a_grid(capsys):
    code, out, _ = run(capsys, UNIT, *FAST, "--vary", "w=4:6:5,b=-3:-2:4", "-f", "json")
    doc = strict_json(out)
    grid = doc["grid"]
    assert [axis["name"] for axis in grid["axes"]] == ["w", "b"]
    assert grid["axes"][0]["values"] == pytest.approx(list(np.linspace(4, 6, 5)), rel=1e-15)
    assert grid["axes"][0]["origin"] == 5.0 and grid["axes"][1]["origin"] == -2.6
    assert len(grid["loss"]) == 5 and all(len(row) == 4 for row in grid["loss"])
    assert all(len(p["coordinates"]) == 2 for p in doc["paths"]["unclipped"])
    assert doc["paths"]["unclipped"][0]["coordinates"] == pytest.approx([5.0, -2.6], rel=1e-12)


def test_vary_directions_on_an_elman_model(capsys):
    code, out, err = run(capsys, ELMAN, *ELMAN_FAST, "--vary", "gradient=-0.5:0.5:3",
                         "--vary", "random=-0.1:0.1:3", "-f", "json")
    assert code == 0, err
    doc = strict_json(out)
    axes = doc["grid"]["axes"]
    assert [a["kind"] for a in axes] == ["direction", "direction"]
    assert doc["grid"]["loss"][1][1] == pytest.approx(doc["loss"], rel=1e-12)  # the centre is θ
    code, out, _ = run(capsys, ELMAN, *ELMAN_FAST, "--vary", "curvature=-1:1:3", "-f", "json")
    doc = strict_json(out)
    assert len(doc["grid"]["loss"]) == 3 and doc["grid"]["loss"][1] == pytest.approx(doc["loss"], rel=1e-12)


def test_element_of_a_matrix_can_be_varied(capsys):
    code, out, err = run(capsys, ELMAN, *ELMAN_FAST, "--vary", "rnn.weight_hh_l0[3,4]=0:0.2:3",
                         "-f", "json")
    assert code == 0, err
    axis = strict_json(out)["grid"]["axes"][0]
    weights = rnngrad.load(ELMAN).array("rnn.weight_hh_l0")
    assert axis["origin"] == pytest.approx(weights[3, 4], rel=1e-7)


@pytest.mark.parametrize("args,message", [
    (["--vary", "q=1:2:3"], "no tensor 'q'"),
    (["--vary", "w=1:1:3"], "empty range"),
    (["--vary", "w=1:2"], "cannot read"),
    (["--vary", "w=1:2:3", "--vary", "b=1:2:3", "--vary", "gradient=0:1:3"], "3 axes"),
    (["--vary", "w[0]=1:2:3"], "outside"),
    (["--lr", "-1"], "--lr -1.0 must be a positive number"),
    (["--points", "2"], "--points 2"),
    (["--loss", "mse"], "needs a linear head"),
    (["--targets", "nope.npy"], "--targets nope.npy"),
    (["--module", "nope"], "--module 'nope'"),
])
def test_bad_options_are_one_line_and_exit_2(capsys, args, message):
    code, out, err = run(capsys, UNIT, *FAST, *args)
    assert code == 2
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_fail_on_wall(capsys):
    assert run(capsys, UNIT, *FAST, "--lr", "0.2", "--fail-on", "wall")[0] == 1
    assert run(capsys, UNIT, *FAST, "--fail-on", "wall")[0] == 0
    assert run(capsys, UNIT, *FAST, "--lr", "300", "--fail-on", "unstable")[0] == 1


def test_markdown(capsys):
    code, out, _ = run(capsys, UNIT, *FAST, "-f", "markdown", "--vary", "b=-2.8:-2.2:5")
    assert code == 0
    assert "## rnngrad surface" in out and "**SGD step.**" in out and "**Grid.**" in out
    assert "| T (horizon) |" in out


def test_options_given_replace_the_files_probe(capsys):
    code, out, _ = run(capsys, UNIT, "--steps", "20", "--lengths", "20", "--sgd-steps", "1",
                       "-f", "json")
    doc = strict_json(out)
    assert doc["probe"]["shape"] == [1, 20, 0] and doc["probe"]["initial_state"] == "0.5"
    assert doc["options"]["loss"] == "squared"


def test_the_api_takes_an_options_object_as_given():
    report = rnngrad.surface(UNIT, SurfaceOptions(lengths="10", sgd_steps=1))
    assert report.options.probe.steps == 50  # None: the file's own [probe]
    from rnngrad.probes import ProbeSpec

    own = rnngrad.surface(UNIT, SurfaceOptions(probe=ProbeSpec(batch=1, steps=10, burn_in=0),
                                               lengths="10", sgd_steps=1))
    assert own.probe.shape == (1, 10, 0) and own.probe.initial_state is None
    assert any("replaced" in note for note in own.notes)


def test_two_modules_take_the_first_and_say_so(capsys):
    path = str(SAMPLES / "two_modules.safetensors")
    report = rnngrad.surface(path, batch=2, steps=8, burn_in=2, lengths="8", sgd_steps=1,
                             points=5)
    first = [rec.module for rec in rnngrad.inspect(path).recurrences][0]  # file order
    assert report.module == first
    assert any("--module" in note and "encoder.rnn" in note for note in report.notes)
    other = rnngrad.surface(path, module="encoder.rnn", batch=2, steps=8, burn_in=2,
                            lengths="8", sgd_steps=1, points=5)
    assert other.module == "encoder.rnn" and other.recurrences[0].cell == "rnn"


@pytest.mark.parametrize("vary", [(), ("b=-2.8:-2.2:5",), ("w=4:6:3", "b=-3:-2:4")])
def test_the_report_round_trips(vary):
    report = rnngrad.surface(UNIT, lengths="25,50", sgd_steps=2, points=7, vary=vary)
    assert SurfaceReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report


@pytest.mark.slow
def test_lstm_and_bidirectional_gru_samples_run_end_to_end():
    for name, extra in (("lstm_2layer.pt", dict(loss="mse")),
                        ("gru_bidirectional.safetensors", dict())):
        report = rnngrad.surface(str(SAMPLES / name), batch=2, steps=10, burn_in=2,
                                 lengths="5,12", sgd_steps=2, points=7, **extra)
        assert report.curvature.converged and report.gradient_norm > 0
        assert len(report.recurrences) == 2 and len(report.by_length) == 2
        assert report.step.sentence.startswith("One SGD step")


@pytest.mark.slow
def test_term_and_svg_pictures(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    pytest.importorskip("plotext")
    code, out, _ = run(capsys, UNIT, *FAST, "--vary", "w=4:6:5,b=-3:-2:4", "--plot", "term")
    assert code == 0 and "Slice along the gradient" in out and "Growth with the BPTT" in out
    report = rnngrad.surface(UNIT, lengths="50", sgd_steps=3, points=11,
                             vary=("w=4:6:9", "b=-3:-2:9"))
    from rnngrad.plots import save_plot

    save_plot(report, tmp_path / "a.svg")
    save_plot(report, tmp_path / "b.svg")
    first = (tmp_path / "a.svg").read_bytes()
    assert first == (tmp_path / "b.svg").read_bytes() and b"<svg" in first
    one_axis = rnngrad.surface(UNIT, lengths="50", sgd_steps=2, points=7, vary=("b=-3:-2:9",))
    save_plot(one_axis, tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 1000


@pytest.mark.slow
def test_where_the_forward_pass_overflows_is_a_wall():
    """elman_exploding (relu, ρ = 1.1), default probe: a step of η = 0.01 runs the states
    out of float64."""
    report = rnngrad.surface(ELMAN, lengths="150",
                             sgd_steps=1, points=9)
    wall = report.wall
    assert wall is not None and wall.loss_after is None and wall.jump_ratio is None
    assert report.step.crosses_wall and report.step.loss_unclipped is None
    assert "leaves float64" in report.step.sentence
    energy = rnngrad.surface.loss_function(ELMAN)
    g = torch.func.grad(energy)(energy.theta)
    unit = g / g.norm()
    with torch.no_grad():
        before = energy.loss(energy.embed(energy.theta - 0.999 * wall.distance * unit),
                             check_finite=False)
        after = energy.loss(energy.embed(energy.theta - 1.001 * wall.distance * unit),
                            check_finite=False)
    assert torch.isfinite(before) and not torch.isfinite(after)
    doc = strict_json(json.dumps(report.to_dict()))
    assert doc["wall"]["loss_after"] is None and "loss_after_reason" in doc["wall"]
