"""``check`` over many models: a broken model is reported as that model's error in every
format while the others are analysed; exit 2 if any model errored (issue 16 item 5, issue 17
item 6)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest
from safetensors.numpy import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus  # noqa: E402
from inprocess import invoke  # noqa: E402

import rnngrad  # noqa: E402
from rnngrad.errors import LoadError  # noqa: E402
from rnngrad.gate.results import CheckReport  # noqa: E402

FAST = ["--lags", "1..3", "--steps", "20", "--batch", "2", "-q"]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict:
    """One good model, one with a NaN weight, one that is not a weights file."""
    folder = tmp_path_factory.mktemp("many")
    good = corpus.make_valid_model(folder / "good.safetensors")
    weights = corpus.valid_state_dict_numpy()
    weights[corpus.K_HH][2, 3] = np.nan
    nan = folder / "nan.safetensors"
    save_file(weights, str(nan))
    text = folder / "notes.safetensors"
    text.write_text("not weights\n")
    return {"good": good, "nan": nan, "text": text}


def _check(models: dict, *extra: str, fmt: str = "json"):
    return invoke("check", models["good"], models["nan"], models["text"], *FAST, *extra,
                  "--format", fmt)


def test_json_lists_each_broken_model_and_the_others_results(models):
    outcome = _check(models, "--explode-above", "1e4")
    assert outcome.code == 2, outcome
    doc = json.loads(outcome.stdout)
    assert doc["passed"] is False
    assert [m["path"] for m in doc["models"]] == [str(models["good"])]
    assert {r["model"] for r in doc["results"]} == {str(models["good"])}
    errors = {e["model"]: e for e in doc["errors"]}
    assert set(errors) == {str(models["nan"]), str(models["text"])}
    assert "NaN" in errors[str(models["nan"])]["message"]
    assert errors[str(models["text"])]["hint"]
    # each error once on stderr too, as one line
    assert len(outcome.stderr.splitlines()) == 2 and "nan.safetensors" in outcome.stderr


def test_table_says_how_many_models_could_not_be_checked(models):
    outcome = _check(models, "--explode-above", "1e4", fmt="table")
    assert outcome.code == 2, outcome
    assert "2 of 3 model(s) could not be checked" in outcome.stdout
    assert outcome.stdout.count("ERROR ") == 2 and "good.safetensors" in outcome.stdout


def test_junit_has_an_error_per_broken_model(models):
    outcome = _check(models, "--explode-above", "1e4", fmt="junit")
    assert outcome.code == 2, outcome
    root = ElementTree.fromstring(outcome.stdout.encode())
    suite = root.find("testsuite")
    assert suite.get("errors") == "2" and root.get("errors") == "2"
    errored = [case for case in suite.iter("testcase") if case.find("error") is not None]
    assert sorted(case.get("classname") for case in errored) == sorted(
        f"rnngrad.{models[k]}" for k in ("nan", "text"))
    assert int(suite.get("tests")) == len(list(suite.iter("testcase")))


def test_github_has_an_error_annotation_per_broken_model(models):
    outcome = _check(models, "--explode-above", "1e4", fmt="github")
    assert outcome.code == 2, outcome
    lines = outcome.stdout.splitlines()
    for key in ("nan", "text"):
        assert any(line.startswith(f"::error file={models[key]},title=rnngrad error::")
                   for line in lines), lines
    assert lines[-1].startswith("::notice") and "2 of 3 model(s)" in lines[-1]


def test_markdown_lists_the_errors(models):
    outcome = _check(models, fmt="markdown")
    assert outcome.code == 2, outcome
    assert outcome.stdout.startswith("## rnngrad check: 2 of 3 model(s) could not be checked")
    assert f"`{models['nan']}`" in outcome.stdout


def test_errors_exit_2_even_with_fail_on_never_and_failures_alone_exit_1(models):
    assert _check(models, "--fail-on", "never").code == 2
    failing = invoke("check", models["good"], *FAST, "--explode-above", "1e-9")
    assert failing.code == 1, failing


def test_write_baseline_is_not_written_when_a_model_errored(models, tmp_path):
    baseline = tmp_path / "baseline.json"
    outcome = _check(models, "--write-baseline", baseline)
    assert outcome.code == 2 and not baseline.exists()
    assert "not written" in outcome.stderr


def test_check_report_with_errors_round_trips(models):
    doc = json.loads(_check(models, "--explode-above", "1e4").stdout)
    report = CheckReport.from_dict(doc)
    assert len(report.errors) == 2 and report.errors[0].model == str(models["nan"])
    assert report.to_dict() == doc
    assert CheckReport.from_dict(report.to_dict()) == report


def test_the_python_api_raises_for_one_broken_model(models):
    with pytest.raises(LoadError, match="NaN"):
        rnngrad.check(models["nan"], batch=2, steps=20, lags="1..3")
