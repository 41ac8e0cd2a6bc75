"""The README's code blocks run as written: the quick start, the pyproject and map examples,
the Python API and the pytest snippet, and the CI examples name the current version."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
import yaml

import rnngrad
from conftest import ROOT, SAMPLES, run_cli

README = (ROOT / "README.md").read_text(encoding="utf-8")


def blocks(language: str) -> list[str]:
    """The fenced code blocks of ``language`` in the README, in order."""
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_quick_start_runs_the_main_job():
    (line,) = [line for line in README.splitlines() if line.strip().startswith("pip install torch")]
    command = line.split("&& rnngrad ", 1)[1].split()
    result = run_cli(*command)
    assert result.returncode == 0, result.stderr
    assert "exploding" in result.stdout
    assert 'pip install -e ".[test]" && python -m pytest -q' in README
    assert 'pip install -e ".[test]" && python -m pytest -q' in (ROOT / ".ci/run").read_text()


@pytest.mark.slow
def test_pyproject_example_runs_check_and_its_baseline(tmp_path):
    (config,) = [block for block in blocks("toml") if "[tool.rnngrad]" in block]
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    shutil.copy(SAMPLES / "elman_vanishing.safetensors", checkpoints / "ckpt_1.safetensors")
    shutil.copy(SAMPLES / "lstm_2layer.pt", checkpoints / "legacy_lstm.pt")
    (tmp_path / "pyproject.toml").write_text(config)
    first = run_cli("check", "--batch", "2", cwd=tmp_path)
    assert first.returncode in (0, 1), first.stderr
    assert "ckpt_1" in first.stdout and "legacy_lstm" in first.stdout
    written = run_cli("check", "--batch", "2", "--write-baseline", "rnngrad-baseline.json",
                      cwd=tmp_path)
    assert written.returncode in (0, 1) and (tmp_path / "rnngrad-baseline.json").is_file()
    (tmp_path / "pyproject.toml").write_text(
        config.replace('# baseline = "rnngrad-baseline.json"', 'baseline = "rnngrad-baseline.json"'))
    compared = run_cli("check", "--batch", "2", "-f", "json", cwd=tmp_path)
    assert compared.returncode in (0, 1), compared.stderr
    assert '"baseline-spectral-radius"' in compared.stdout


def test_map_example_reads_a_research_checkpoint(tmp_path):
    (mapping,) = [block for block in blocks("toml") if "[[recurrence]]" in block]
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "w.npz", W_rec=rng.standard_normal((8, 8)) * 0.2,
             W_in=rng.standard_normal((8, 3)), b_rec=np.zeros(8))
    (tmp_path / "m.toml").write_text(mapping)
    result = run_cli("inspect", tmp_path / "w.npz", "--map", tmp_path / "m.toml")
    assert result.returncode == 0, result.stderr
    assert "leaky" in result.stdout and "relu" in result.stdout


@pytest.mark.slow
def test_python_api_example_runs(monkeypatch):
    (code,) = [block for block in blocks("python") if "import rnngrad\n" in block]
    monkeypatch.chdir(ROOT)
    exec(compile(code, "README.md", "exec"), {})


@pytest.mark.slow
def test_pytest_snippet_runs_with_the_plugin(pytester):
    (code,) = [block for block in blocks("python") if "rnn_healthy" in block]
    pytester.makepyfile(test_readme_snippet=code)
    result = pytester.runpytest_subprocess("-q")
    result.assert_outcomes(passed=2)


def test_ci_examples_use_the_current_version():
    version = rnngrad.__version__
    workflow, hook = [yaml.safe_load(block) for block in blocks("yaml")]
    uses = [step["uses"] for step in workflow["jobs"]["rnngrad"]["steps"]
            if "rnngrad" in step.get("uses", "")]
    assert uses == [f"<org>/rnngrad@v{version}"]
    assert workflow["jobs"]["rnngrad"]["steps"][-1]["with"]["args"].startswith("--explode-above")
    assert hook["repos"][0]["rev"] == f"v{version}"
    assert f"rev: v{version}" in (ROOT / ".pre-commit-hooks.yaml").read_text()
