"""`rnngrad check`: thresholds, configuration, baselines, CI formats, API, plugin, integrations."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest
import torch
import yaml

import rnngrad
from conftest import ROOT, SAMPLES, run_cli, run_json, save_safetensors
from rnngrad.errors import OptionError

EXPLODING = SAMPLES / "elman_exploding.safetensors"
VANISHING = SAMPLES / "elman_vanishing.safetensors"
FAST = ["--batch", "2", "--quiet"]


@pytest.fixture
def project(tmp_path) -> Path:
    """A user's project: two checkpoints and a pyproject with a [tool.rnngrad] section."""
    shutil.copy(EXPLODING, tmp_path / "exploding.safetensors")
    shutil.copy(VANISHING, tmp_path / "vanishing.safetensors")
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "demo"\n\n[tool.rnngrad]\nexplode-above = 1e3\nbatch = 2\n')
    return tmp_path


def test_exit_codes_follow_the_thresholds(project):
    assert run_cli("check", "vanishing.safetensors", cwd=project).returncode == 0
    failing = run_cli("check", "exploding.safetensors", cwd=project)
    assert failing.returncode == 1
    assert "explode-above" in failing.stdout and "FAIL" in failing.stdout
    assert run_cli("check", "exploding.safetensors", "--fail-on", "never",
                   cwd=project).returncode == 0


def test_command_line_overrides_the_config(project):
    assert run_cli("check", "exploding.safetensors", "--explode-above", "1e5",
                   cwd=project).returncode == 0
    result = run_cli("check", "vanishing.safetensors", "--vanish-below", "1e-10", cwd=project)
    assert result.returncode == 1 and "vanish-below" in result.stdout


@pytest.mark.parametrize("option,value,code", [("--max-spectral-radius", "1.05", 1),
                                               ("--max-spectral-radius", "1.2", 0),
                                               ("--max-bound", "1.1", 1),
                                               ("--max-bound", "1.2", 0)])
def test_spectral_thresholds(project, option, value, code):
    (project / "pyproject.toml").write_text("[tool.rnngrad]\nbatch = 2\n")
    result = run_cli("check", "exploding.safetensors", option, value, cwd=project)
    assert result.returncode == code, result.stdout + result.stderr


def test_config_is_found_from_a_subfolder_and_by_flag(project):
    sub = project / "src" / "deep"
    sub.mkdir(parents=True)
    assert run_cli("check", project / "exploding.safetensors", cwd=sub).returncode == 1
    other = project / "loose.toml"
    other.write_text("explode-above = 1e6\nbatch = 2\n")
    assert run_cli("check", project / "exploding.safetensors", "--config", other,
                   cwd=sub).returncode == 0


def test_unknown_config_key_is_exit_2_naming_it_and_the_valid_ones(project):
    (project / "pyproject.toml").write_text("[tool.rnngrad]\nexplode-abov = 1e3\n")
    result = run_cli("check", "exploding.safetensors", cwd=project)
    assert result.returncode == 2
    line = result.stderr.strip()
    assert "'explode-abov'" in line and "explode-above" in line and "vanish-below" in line
    assert len(line.splitlines()) == 1


def test_wrong_type_in_config_is_exit_2(project):
    (project / "pyproject.toml").write_text('[tool.rnngrad]\nexplode-above = "big"\n')
    result = run_cli("check", "exploding.safetensors", cwd=project)
    assert result.returncode == 2 and "explode-above" in result.stderr


@pytest.mark.slow
def test_per_model_overrides_by_glob(project):
    (project / "pyproject.toml").write_text(
        "[tool.rnngrad]\nexplode-above = 1e3\nbatch = 2\n\n"
        '[[tool.rnngrad.overrides]]\npath = "explod*.safetensors"\nexplode-above = 1e6\n')
    assert run_cli("check", "exploding.safetensors", "vanishing.safetensors",
                   cwd=project).returncode == 0


def test_models_from_the_config(project):
    (project / "pyproject.toml").write_text(
        '[tool.rnngrad]\nexplode-above = 1e3\nbatch = 2\nmodels = ["exploding.safetensors"]\n')
    result = run_cli("check", cwd=project)
    assert result.returncode == 1 and "exploding" in result.stdout


def test_baseline_catches_a_regression(project, tmp_path):
    (project / "pyproject.toml").write_text("[tool.rnngrad]\nbatch = 2\n")
    baseline = project / "baseline.json"
    assert run_cli("check", "vanishing.safetensors", "--write-baseline", baseline,
                   cwd=project).returncode == 0
    saved = json.loads(baseline.read_text())
    figures = saved["models"]["vanishing.safetensors"]["rnn.weight_hh_l0"]
    assert figures["spectral_radius"] == pytest.approx(0.2574, rel=1e-3)
    assert run_cli("check", "vanishing.safetensors", "--baseline", baseline,
                   cwd=project).returncode == 0
    # A "training change" scales W_hh up by 10 %: ρ rises past the 5 % tolerance.
    bundle = rnngrad.load(project / "vanishing.safetensors")
    state = {name: torch.from_numpy(bundle.array(name)).float() for name in bundle.tensors}
    state["rnn.weight_hh_l0"] = state["rnn.weight_hh_l0"] * 1.1
    from safetensors.torch import save_file

    save_file(state, str(project / "vanishing.safetensors"))
    result = run_cli("check", "vanishing.safetensors", "--baseline", baseline, "-f", "json",
                     cwd=project)
    assert result.returncode == 1
    failed = [r for r in json.loads(result.stdout)["results"] if not r["passed"]]
    assert {r["threshold"] for r in failed} >= {"baseline-spectral-radius"}
    assert run_cli("check", "vanishing.safetensors", "--baseline", baseline,
                   "--radius-tolerance", "0.2", "--norm-drop", "1e6", cwd=project).returncode == 0


def test_json_document(project):
    result = run_cli("check", "exploding.safetensors", "vanishing.safetensors", "-f", "json",
                     cwd=project)
    doc = json.loads(result.stdout)
    assert doc["command"] == "check" and doc["schema_version"] == 1 and doc["passed"] is False
    assert [m["path"] for m in doc["models"]] == ["exploding.safetensors",
                                                  "vanishing.safetensors"]
    identity = doc["models"][0]["recurrences"][0]
    assert identity["weight_hh"] == "rnn.weight_hh_l0" and identity["cell"] == "rnn"
    result_fields = doc["results"][0]
    assert set(result_fields) >= {"model", "recurrence", "threshold", "value", "limit",
                                  "passed", "message"}


def test_github_annotations_and_step_summary(project):
    summary = project / "summary.md"
    result = run_cli("check", "exploding.safetensors", "-f", "github", cwd=project,
                     env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert result.returncode == 1
    errors = [line for line in result.stdout.splitlines() if line.startswith("::error ")]
    assert len(errors) == 1
    assert errors[0].startswith("::error file=exploding.safetensors,title=rnngrad explode-above")
    assert "::" in errors[0][9:] and "\n" not in errors[0]
    assert "## rnngrad check: 1 of 1 checks failed" in summary.read_text()


def test_github_escaping():
    from rnngrad.render.ci_formats import escape_data, escape_property

    assert escape_data("a%b\r\nc") == "a%25b%0D%0Ac"
    assert escape_property("x: y, z") == "x%3A y%2C z"


def test_junit_counts_the_checks_the_json_counts(project):
    args = ("check", "exploding.safetensors", "vanishing.safetensors", "--vanish-below", "1e-10")
    result = run_cli(*args, "-f", "junit", cwd=project)
    root = ElementTree.fromstring(result.stdout)
    cases = root.findall(".//testcase")
    _, document = run_json(*args, cwd=project)
    assert len(cases) == len(document["results"]) == 4  # 2 models × 1 recurrence × 2 thresholds
    failed = {(c.get("classname"), c.get("name")) for c in cases if c.find("failure") is not None}
    assert failed == {("rnngrad.exploding.safetensors", "explode-above rnn L0"),
                      ("rnngrad.vanishing.safetensors", "vanish-below rnn L0")}
    assert root.find("testsuite").get("failures") == "2" == str(
        sum(not r["passed"] for r in document["results"]))


def test_markdown_output_file(project):
    target = project / "out.md"
    run_cli("check", "exploding.safetensors", "-f", "markdown", "-o", target, cwd=project)
    assert "❌ **FAIL**" in target.read_text()


def test_a_folder_of_checkpoints_in_natural_order(tmp_path):
    runs = tmp_path / "run"
    runs.mkdir()
    torch.manual_seed(0)
    module = torch.nn.RNN(3, 6)
    for step, scale in ((2, 1.0), (10, 1.5), (1, 0.5)):
        scaled = torch.nn.RNN(3, 6)
        scaled.load_state_dict(module.state_dict())
        scaled.weight_hh_l0.data.mul_(scale)
        save_safetensors(scaled, runs / f"ckpt_{step}.safetensors")
    (tmp_path / "pyproject.toml").write_text("[tool.rnngrad]\nbatch = 2\n")
    result = run_cli("check", "run", "-f", "json", cwd=tmp_path)
    paths = [Path(m["path"]).name for m in json.loads(result.stdout)["models"]]
    assert paths == ["ckpt_1.safetensors", "ckpt_2.safetensors", "ckpt_10.safetensors"]
    globbed = run_cli("check", "run/ckpt_*.safetensors", "-f", "markdown", cwd=tmp_path)
    assert globbed.returncode == 0 and "(+100.0%)" in globbed.stdout  # ρ doubles 1 → 2
    table = run_cli("check", "run", cwd=tmp_path)
    assert "Key figures by checkpoint (one training run" in table.stdout
    assert "nothing was checked" in table.stdout


def test_unrelated_models_get_no_trend_and_full_names(project):
    """Models of different cells are not one training run: no % changes between them; long
    names are never cut (ids and a legend)."""
    long_name = "a_rather_long_checkpoint_name_for_a_model.pt"
    shutil.copy(SAMPLES / "lstm_2layer.pt", project / long_name)
    result = run_cli("check", "exploding.safetensors", long_name, "--explode-above", "1e9",
                     cwd=project)
    text = " ".join(result.stdout.split())
    assert "Key figures by model" in text and "%)" not in text
    assert f"m2 = {long_name}" in text and "…" not in result.stdout
    assert "for lstm, gru and leaky cells of the step Jacobian at rest" in text  # footnote
    assert "┃ result ┃" in result.stdout  # every column has a header


def test_no_model_is_an_error(tmp_path):
    result = run_cli("check", cwd=tmp_path)
    assert result.returncode == 2 and "no model" in result.stderr


# --- Python API -----------------------------------------------------------------------------


def test_api_accepts_path_state_dict_and_module():
    torch.manual_seed(1)
    module = torch.nn.GRU(3, 5, num_layers=2)
    for source in (module, module.state_dict(), VANISHING):
        analysis = rnngrad.analyze(source, lags="1..10", batch=2, steps=10)
        assert analysis.spectrum.recurrences and analysis.bptt.recurrences
        report = rnngrad.check(source, explode_above=1e6, lags="1..10", batch=2, steps=10)
        assert report.ok
    with pytest.raises(OptionError, match="unknown check setting"):
        rnngrad.check(module, explode=3)


def test_assert_healthy_message_reads_like_the_table():
    from rnngrad.testing import assert_healthy

    with pytest.raises(AssertionError) as info:
        assert_healthy(EXPLODING, explode_above=100, batch=2)
    text = str(info.value)
    assert "1 of 1 checks failed" in text and "explode-above" in text and "rnn L0" in text
    assert assert_healthy(VANISHING, explode_above=100, batch=2).ok


@pytest.mark.slow
def test_importing_the_api_does_not_import_typer_or_rich():
    code = ("import sys, rnngrad, rnngrad.testing; rnngrad.check; "
            "print('typer' in sys.modules, 'rich' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip() == "False False", out.stderr


@pytest.mark.slow
def test_pytest_plugin_fixture_and_marker(pytester):
    pytester.makepyfile(f"""
        import pytest

        @pytest.mark.rnngrad(explode_above=100, batch=2)
        def test_exploding(rnn_healthy):
            rnn_healthy(r"{EXPLODING}")

        @pytest.mark.rnngrad(explode_above=100, batch=2)
        def test_vanishing(rnn_healthy):
            rnn_healthy(r"{VANISHING}")

        def test_override(rnn_healthy):
            rnn_healthy(r"{EXPLODING}", explode_above=1e6, batch=2)
    """)
    result = pytester.runpytest_subprocess("-q")  # the pytest11 entry point loads the plugin
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*explode-above*"])


# --- integration files ----------------------------------------------------------------------


@pytest.mark.slow
def test_pre_commit_hook_runs_its_declared_command(project):
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    hook = next(h for h in hooks if h["id"] == "rnngrad-check")
    assert hook["language"] == "python" and hook["pass_filenames"]
    import re

    files = [name for name in ("exploding.safetensors", "vanishing.safetensors", "README.md")
             if re.search(hook["files"], name)]
    assert files == ["exploding.safetensors", "vanishing.safetensors"]
    argv = hook["entry"].split() + files
    result = subprocess.run([shutil.which(argv[0], path=str(Path(sys.executable).parent)),
                             *argv[1:]], cwd=project, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 1 and "explode-above" in result.stdout


def _action_step(name: str) -> dict:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    assert set(action["inputs"]) >= {"models", "config", "format"}
    return next(step for step in action["runs"]["steps"] if step.get("name") == name)


def test_action_installs_cpu_torch_and_the_readers():
    step = _action_step("Install rnngrad with CPU PyTorch")
    assert "download.pytorch.org/whl/cpu" in step["run"] and "[keras,onnx]" in step["run"]


@pytest.mark.slow
def test_action_turns_an_error_into_an_annotation(project):
    """Exit 2 (a bad option here; a broken file alike) fails the run with an ::error line."""
    step = _action_step("rnngrad check")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "RNNGRAD_MODELS": "exploding.safetensors", "RNNGRAD_CONFIG": "",
           "RNNGRAD_FORMAT": "github", "RNNGRAD_ARGS": "--explode-above lots"}
    result = subprocess.run(["bash", "-c", step["run"]], cwd=project, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("::error")]
    assert "--explode-above" in line


def test_pre_commit_hook_covers_every_format_and_installs_cpu_torch():
    from rnngrad.gate.models import WEIGHT_SUFFIXES

    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    hook = next(h for h in hooks if h["id"] == "rnngrad-check")
    import re

    for suffix in WEIGHT_SUFFIXES:
        assert re.search(hook["files"], f"checkpoints/model{suffix}"), suffix
    assert not re.search(hook["files"], "README.md")
    deps = hook["additional_dependencies"]
    assert "--extra-index-url=https://download.pytorch.org/whl/cpu" in deps
    assert any(dep.startswith("torch>=") for dep in deps)
    assert {"h5py", "onnx"} <= {dep.split(">")[0] for dep in deps}


@pytest.mark.slow
@pytest.mark.parametrize("model,code", [("exploding.safetensors", 1),
                                        ("vanishing.safetensors", 0)])
def test_action_check_step_fails_the_run_only_when_the_model_explodes(project, model, code):
    """A project with only a pyproject section and the action: red with annotations, or green."""
    step = _action_step("rnngrad check")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "RNNGRAD_MODELS": model, "RNNGRAD_CONFIG": "", "RNNGRAD_FORMAT": "github",
           "RNNGRAD_ARGS": ""}
    assert set(step["env"]) == {"RNNGRAD_MODELS", "RNNGRAD_CONFIG", "RNNGRAD_FORMAT",
                                "RNNGRAD_ARGS"}
    result = subprocess.run(["bash", "-c", step["run"]], cwd=project, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == code, result.stderr
    errors = [line for line in result.stdout.splitlines() if line.startswith("::error")]
    assert bool(errors) == bool(code)
