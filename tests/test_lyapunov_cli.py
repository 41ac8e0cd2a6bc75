"""`rnngrad lyapunov` as users run it (in-process), its pictures, and the `check` thresholds
on λ_1 (``max-lyapunov``, ``min-lyapunov``) with their baseline and CI formats."""

from __future__ import annotations

import json
from xml.etree import ElementTree

import pytest

import rnngrad
from conftest import SAMPLES
from rnngrad.cli import main
from rnngrad.lyapunov import LyapunovReport

ELMAN = str(SAMPLES / "elman_exploding.safetensors")      # ReLU, W ≥ 0 with ρ = 1.1: λ_1 = ln 1.1
ADDING = str(SAMPLES / "adding_task_lstm.safetensors")    # trained LSTM: λ_1 ≈ −0.0014
QUICK = ["--steps", "400", "--burn-in", "100", "--batch", "2", "-q"]


def run(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_table_names_the_verdict_the_rate_and_the_memory(capsys):
    code, out, _ = run(["lyapunov", ELMAN, "--k", "3", *QUICK], capsys)
    assert code == 0
    assert "chaotic" in out and "+0.09531" in out and "×2 in 7.27" in out
    assert "Kaplan–Yorke" in out


def test_json_is_the_report_with_the_contract_fields(capsys):
    code, out, _ = run(["lyapunov", ADDING, "--k", "4", "-f", "json", *QUICK], capsys)
    assert code == 0
    data = json.loads(out)
    item = data["recurrences"][0]
    assert data["command"] == "lyapunov" and data["model"]["path"] == ADDING
    assert data["probe"]["burn_in"] == 100 and data["probe"]["steps"] == 400
    assert item["cell"] == "lstm" and item["state"] == "h,c" and item["state_size"] == 64
    assert len(item["exponents"]) == len(item["exponents_stderr"]) == 4
    assert item["exponents"] == sorted(item["exponents"], reverse=True)
    assert LyapunovReport.from_dict(data).recurrences[0].verdict == item["verdict"]


def test_markdown(capsys):
    code, out, _ = run(["lyapunov", ELMAN, "--k", "2", "-f", "markdown", *QUICK], capsys)
    assert code == 0 and out.startswith("## rnngrad lyapunov:")
    assert "| rnn L0 | h | +0.09531" in out and "### rnn L0: exponents" in out


@pytest.mark.parametrize("fail_on,code", [("chaotic", 1), ("stable", 0), ("not-edge", 1),
                                          ("never", 0)])
def test_fail_on(fail_on, code, capsys):
    assert run(["lyapunov", ELMAN, "--k", "1", "--fail-on", fail_on, *QUICK], capsys)[0] == code


@pytest.mark.parametrize("args,fragment", [(["--k", "0"], "--k 0 must be"),
                                           (["--edge", "0"], "--edge 0"),
                                           (["--bptt-lags", "1..9999"], "past the probe length"),
                                           (["--steps", "0"], "--steps 0")])
def test_bad_options_are_one_line_and_exit_2(args, fragment, capsys):
    code, out, err = run(["lyapunov", ELMAN, *QUICK, *args], capsys)
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_bptt_lags_compare_the_rates(capsys):
    code, out, _ = run(["lyapunov", ELMAN, "--k", "1", "--bptt-lags", "1..100", "-f", "json",
                        *QUICK], capsys)
    agreement = json.loads(out)["recurrences"][0]["bptt"]
    assert code == 0 and agreement["lag"] == 100
    # W ≥ 0 with all ReLUs active: J_t = W, ‖W^100‖^(1/100) is within a few % of ρ = 1.1
    assert abs(agreement["difference"]) < 0.03 and "lag 100" in agreement["text"]


# --- pictures ----------------------------------------------------------------------------------


def test_plot_svg_and_term(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    pytest.importorskip("plotext")
    target = tmp_path / "lyapunov.svg"
    code, _, _ = run(["lyapunov", ADDING, "--k", "3", "--plot", str(target), *QUICK], capsys)
    assert code == 0 and b"running estimate" in target.read_bytes()
    code, out, _ = run(["lyapunov", ADDING, "--k", "3", "--plot", "term", *QUICK], capsys)
    assert code == 0 and "running estimates of the top exponents" in out


def test_plot_of_an_unbounded_recurrence(tmp_path):
    pytest.importorskip("matplotlib")
    from rnngrad.plots import save_plot

    report = rnngrad.lyapunov(ELMAN, k=2, steps=9000, burn_in=0, batch=1)  # 1.1^t overflows
    assert report.recurrences[0].verdict == "unbounded"
    save_plot(report, str(tmp_path / "unbounded.png"))
    assert (tmp_path / "unbounded.png").stat().st_size > 1000


# --- check: max-lyapunov, min-lyapunov ----------------------------------------------------------


CHECK_FAST = dict(batch=2, lags="1..20")


def test_check_gates_on_lambda_1():
    report = rnngrad.check(ELMAN, max_lyapunov=0.05, min_lyapunov=-0.5, **CHECK_FAST)
    results = {r.threshold: r for r in report.results}
    assert not results["max-lyapunov"].passed and results["min-lyapunov"].passed
    assert results["max-lyapunov"].value == pytest.approx(0.0953102, abs=1e-6)
    assert report.models[0].recurrences[0].lyapunov == pytest.approx(0.0953102, abs=1e-6)
    assert "above 0.05" in results["max-lyapunov"].message
    report = rnngrad.check(ADDING, min_lyapunov=-0.001, **CHECK_FAST)
    assert not report.ok and "below -0.001" in report.results[0].message


def test_check_measures_lambda_1_only_when_asked():
    report = rnngrad.check(ELMAN, explode_above=1e30, **CHECK_FAST)
    figures = report.models[0].recurrences[0]
    assert figures.lyapunov is None and figures.lyapunov_verdict is None


def test_check_cli_baseline_github_and_junit(tmp_path, capsys):
    baseline = tmp_path / "baseline.json"
    args = ["check", ELMAN, "--max-lyapunov", "0.05", "--batch", "2", "--lags", "1..20", "-q"]
    code, out, _ = run([*args, "--write-baseline", str(baseline), "-f", "github"], capsys)
    assert code == 1
    assert out.startswith("::error file=") and "rnngrad max-lyapunov (rnn L0)" in out
    saved = json.loads(baseline.read_text())["models"][ELMAN]["rnn.weight_hh_l0"]
    assert saved["lyapunov"] == pytest.approx(0.0953102, abs=1e-6)
    code, out, _ = run([*args, "-f", "junit"], capsys)
    (case,) = ElementTree.fromstring(out).findall(".//testcase")
    assert case.get("name") == "max-lyapunov rnn L0" and case.find("failure") is not None


def test_config_keys_for_the_lyapunov_thresholds(tmp_path, monkeypatch, capsys):
    (tmp_path / "pyproject.toml").write_text("[tool.rnngrad]\nmin-lyapunov = -0.2\nbatch = 2\n"
                                             'lags = "1..20"\n')
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(["check", ADDING, "-f", "json", "-q"], capsys)
    data = json.loads(out)
    assert code == 0 and data["thresholds"] == {"min-lyapunov": -0.2}
    assert data["results"][0]["threshold"] == "min-lyapunov" and data["results"][0]["passed"]
