"""The command as a user runs it: exit codes, stdout/stderr, JSON parsed back.

Most runs go through the command's entry point in this process (``run_cli``); the installed
console script and ``python -m rnngrad`` run in their own processes (``run_installed``).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest

import rnngrad
from conftest import SAMPLES, run_cli, run_installed, run_json

VANISHING = SAMPLES / "elman_vanishing.safetensors"
EXPLODING = SAMPLES / "elman_exploding.safetensors"


@pytest.mark.slow
def test_version_and_module_entry_point():
    result = run_installed("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"rnngrad {rnngrad.__version__}"
    module = subprocess.run([sys.executable, "-m", "rnngrad", "--version"], capture_output=True,
                            text=True, timeout=120)
    assert module.returncode == 0 and module.stdout == result.stdout


@pytest.mark.slow
def test_the_installed_command_runs_an_analysis():
    result = run_installed("bptt", EXPLODING, "--lags", "1..20", "--batch", "2", "-f", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == json.loads(
        run_cli("bptt", EXPLODING, "--lags", "1..20", "--batch", "2", "-f", "json").stdout)


def test_inspect_table_lists_recurrences_and_unused_tensors():
    result = run_cli("inspect", SAMPLES / "two_modules.safetensors")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "encoder.rnn L0" in out and "decoder.cell" in out
    assert "embedding.weight" in out and "unused" in out
    assert max(len(line) for line in out.splitlines()) <= 80


def test_spectrum_json_has_the_contract_fields():
    code, doc = run_json("spectrum", VANISHING, "--top", "3")
    assert code == 0
    assert doc["schema_version"] == 1 and doc["command"] == "spectrum"
    assert doc["model"]["sha256"] == hashlib.sha256(VANISHING.read_bytes()).hexdigest()
    rec = doc["recurrences"][0]
    for field in ("module", "cell", "layer", "direction", "hidden_size", "input_size",
                  "weight_hh", "gamma", "bound", "verdict", "blocks"):
        assert field in rec
    block = rec["blocks"]["hh"]
    assert len(block["eigenvalues"]) == 3
    weights = rnngrad.load(VANISHING).array("rnn.weight_hh_l0")
    assert block["sigma_max"] == pytest.approx(np.linalg.svd(weights, compute_uv=False)[0], rel=1e-9)
    assert block["spectral_radius"] == pytest.approx(np.abs(np.linalg.eigvals(weights)).max(), rel=1e-9)
    assert rec["verdict"] == "vanishing-guaranteed"


@pytest.mark.parametrize("fail_on,code", [("never", 0), ("explosion-possible", 1),
                                          ("undetermined", 0), ("vanishing-guaranteed", 0)])
def test_spectrum_fail_on_sets_the_exit_code(fail_on, code):
    # elman_exploding: γ·σ_max = 1.12 ≥ 1, so explosion is possible.
    assert run_cli("spectrum", EXPLODING, "--fail-on", fail_on, "-q").returncode == code


def test_spectrum_markdown_and_output_file(tmp_path):
    target = tmp_path / "report.md"
    result = run_cli("spectrum", SAMPLES / "gru_bidirectional.safetensors", "--format",
                     "markdown", "--output", target)
    assert result.returncode == 0 and result.stdout == ""
    text = target.read_text()
    assert text.startswith("## rnngrad spectrum") and "| encoder L0 rev |" in text


def test_bptt_json_lags_and_probe_echo():
    code, doc = run_json("bptt", EXPLODING, "--lags", "1,10,100", "--batch", "4", "--seed", "3")
    assert code == 0
    assert doc["probe"]["kind"] == "gaussian" and doc["probe"]["seed"] == 3
    assert doc["probe"]["shape"] == [4, 150, 8]
    rec = doc["recurrences"][0]
    assert rec["state"] == "h" and [row["lag"] for row in rec["lags"]] == [1, 10, 100]
    assert rec["verdict"] == "exploding"
    assert rec["lags"][-1]["norm"] > 1e4
    # exploding: no ready line rests on the explosion (tests/test_clipping.py has the regimes)
    assert doc["clip"]["regime"] == "states-explode" and doc["clip"]["max_norm"] is None


def test_bptt_same_seed_same_numbers_and_inputs_file(tmp_path):
    first = run_json("bptt", VANISHING, "--lags", "1..5", "--batch", "2")[1]
    second = run_json("bptt", VANISHING, "--lags", "1..5", "--batch", "2")[1]
    assert first["recurrences"] == second["recurrences"]
    probe = tmp_path / "x.npy"
    np.save(probe, np.random.default_rng(0).standard_normal((2, 20, 8)))
    code, doc = run_json("bptt", VANISHING, "--inputs", probe, "--lags", "1..20")
    assert code == 0 and doc["probe"]["kind"] == "file" and doc["probe"]["max_lag"] == 20


@pytest.mark.parametrize("fail_on,code", [("exploding", 1), ("vanishing", 0), ("unhealthy", 1)])
def test_bptt_fail_on(fail_on, code):
    result = run_cli("bptt", EXPLODING, "--lags", "1..100", "--batch", "2", "--fail-on", fail_on,
                     "-q")
    assert result.returncode == code


def test_lstm_state_option(tmp_path):
    code, doc = run_json("bptt", SAMPLES / "lstm_2layer.pt", "--lags", "1,5", "--batch", "2",
                         "--state", "c")
    assert code == 0 and {r["state"] for r in doc["recurrences"]} == {"c"}
    assert all(r["state_size"] == 24 for r in doc["recurrences"])


def test_save_directions_writes_vectors(tmp_path):
    from safetensors.numpy import load_file

    target = tmp_path / "dirs.safetensors"
    result = run_cli("bptt", EXPLODING, "--lags", "1..50", "--batch", "2",
                     "--save-directions", target, "-q")
    assert result.returncode == 0, result.stderr
    vectors = load_file(str(target))
    right = vectors["rnn.weight_hh_l0.right"]
    assert right.shape == (32,) and np.linalg.norm(right) == pytest.approx(1.0, rel=1e-12)


def test_head_losses(tmp_path):
    code, doc = run_json("bptt", SAMPLES / "lstm_2layer.pt", "--lags", "1,5", "--batch", "3",
                         "--loss", "ce")
    assert code == 0 and "head.weight" in doc["clip"]["loss"]
    targets = tmp_path / "t.npy"
    np.save(targets, np.array([0, 1, 4]))
    code, doc = run_json("bptt", SAMPLES / "lstm_2layer.pt", "--lags", "1,5", "--batch", "3",
                         "--loss", "ce", "--targets", targets)
    assert code == 0
    result = run_cli("bptt", VANISHING, "--loss", "mse")
    assert result.returncode == 2 and "head" in result.stderr


def test_tokens_through_the_embedding():
    code, doc = run_json("bptt", SAMPLES / "two_modules.safetensors", "--module", "encoder.rnn",
                         "--tokens", "--lags", "1..5", "--batch", "2")
    assert code == 0 and doc["probe"]["kind"] == "tokens"
    assert [r["module"] for r in doc["recurrences"]] == ["encoder.rnn"]


@pytest.mark.parametrize("args,needle", [
    (["spectrum", "missing.safetensors"], "no such file"),
    (["spectrum", "."], "directory"),
    (["bptt", str(VANISHING), "--lags", "0..3"], "not positive"),
    (["bptt", str(VANISHING), "--lags", "1..500", "--steps", "100"], "past the probe length"),
    (["spectrum", str(VANISHING), "--top", "0"], "at least 1"),
    (["spectrum", str(VANISHING), "--bogus"], "bogus"),
    (["bptt", str(VANISHING), "--key", "nope"], "nope"),
])
def test_errors_are_one_line_and_exit_2(args, needle, tmp_path):
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_errors_in_json_mode_are_json_objects(tmp_path):
    result = run_cli("spectrum", tmp_path / "none.pt", "--format", "json")
    assert result.returncode == 2
    error = json.loads(result.stdout)["error"]
    assert "no such file" in error["message"] and error["hint"]


def test_empty_and_truncated_files(tmp_path):
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(VANISHING.read_bytes()[:200])
    for path, needle in ((empty, "empty"), (truncated, "truncated")):
        result = run_cli("inspect", path)
        assert result.returncode == 2 and needle in result.stderr


@pytest.mark.parametrize("command", ["spectrum", "bptt"])
def test_library_and_command_line_give_identical_reports_by_default(command):
    """One source of defaults: the options dataclasses. No option on either side."""
    code, document = run_json(command, SAMPLES / "gru_bidirectional.safetensors")
    assert code == 0
    library = getattr(rnngrad, command)(SAMPLES / "gru_bidirectional.safetensors").to_dict()
    assert document == json.loads(json.dumps(library))
    if command == "bptt":
        assert document["probe"]["batch"] == rnngrad.ProbeSpec().batch == 16


def test_analyze_uses_the_same_defaults_as_the_commands():
    analysis = rnngrad.analyze(SAMPLES / "elman_vanishing.safetensors")
    _, document = run_json("bptt", SAMPLES / "elman_vanishing.safetensors")
    assert json.loads(json.dumps(analysis.bptt.to_dict())) == document


def test_the_probe_is_as_long_as_the_lags_asked_for():
    """A 28-step model analysed at lags 1..28 runs on 28-step sequences from the zero state;
    the default lags 1..100 keep the long probe (50 steps of burn-in, then 100)."""
    _, short = run_json("bptt", EXPLODING, "--lags", "1..28", "--batch", "2")
    assert short["probe"]["shape"] == [2, 28, 8] and short["probe"]["burn_in"] == 0
    assert short["probe"]["steps"] == short["probe"]["max_lag"] == 28
    _, long = run_json("bptt", EXPLODING, "--batch", "2")
    assert long["probe"]["shape"] == [2, 150, 8] and long["probe"]["burn_in"] == 50
    _, chosen = run_json("bptt", EXPLODING, "--lags", "1..28", "--steps", "40", "--burn-in", "5",
                         "--batch", "2")
    assert chosen["probe"]["shape"] == [2, 45, 8]


def test_the_probe_echo_says_what_a_file_probe_really_was(tmp_path):
    inputs = np.random.default_rng(0).standard_normal((3, 37, 8))
    np.save(tmp_path / "x.npy", inputs)
    _, document = run_json("bptt", EXPLODING, "--inputs", tmp_path / "x.npy", "--lags", "1..30")
    probe = document["probe"]
    assert (probe["kind"], probe["batch"], probe["steps"], probe["burn_in"]) == ("file", 3, 37, 0)
    assert probe["input_scale"] is None and probe["shape"] == [3, 37, 8]


def test_tokens_on_a_file_with_several_modules():
    result = run_cli("bptt", SAMPLES / "two_modules.safetensors", "--tokens", "--lags", "1..10")
    assert result.returncode == 0, result.stderr
    assert "random token ids" in result.stdout
    assert "decoder.cell: no embedding feeds it" in " ".join(result.stdout.split())
