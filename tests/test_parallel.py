"""``rnngrad check --jobs N``: the same report, output and exit code as one job, in model order."""

from __future__ import annotations

import os
import shutil

import pytest

from conftest import SAMPLES, run_cli
from rnngrad.errors import LoadError, OptionError, ResourceError
from rnngrad.gate.config import CheckConfig, config_from_values
from rnngrad.gate.parallel import measured, threads_per_job

QUICK = ("--lags", "1..12", "--batch", "2", "--steps", "12")
MODELS = ["elman_exploding.safetensors", "gru_bidirectional.safetensors",
          "elman_vanishing.safetensors", "two_modules.safetensors",
          "elman_relu_npz.npz", "adding_task_lstm.safetensors"]


@pytest.fixture
def folder(tmp_path):
    for index, name in enumerate(MODELS):  # natural order: ckpt_1 ... ckpt_6
        shutil.copy(SAMPLES / name, tmp_path / f"ckpt_{index + 1}{(SAMPLES / name).suffix}")
    return tmp_path


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["json", "table", "junit"])
def test_jobs_give_the_output_and_exit_code_of_one_job(folder, fmt):
    args = ["check", str(folder), *QUICK, "--explode-above", "1e3", "--vanish-below", "1e-6",
            "--format", fmt]
    one = run_cli(*args, "--jobs", "1")
    three = run_cli(*args, "--jobs", "3")
    assert one.returncode == three.returncode == 1  # some thresholds fail
    assert three.stdout == one.stdout
    assert three.stderr == one.stderr
    if fmt == "json":
        assert one.stdout.index("ckpt_2") < one.stdout.index("ckpt_5")


@pytest.mark.slow
def test_an_unreadable_model_fails_as_with_one_job(folder):
    (folder / "ckpt_3.safetensors").write_bytes(b"not a safetensors file")
    args = ["check", str(folder), *QUICK, "--format", "json"]
    one = run_cli(*args, "--jobs", "1")
    two = run_cli(*args, "--jobs", "2")
    assert one.returncode == two.returncode == 2
    assert two.stderr == one.stderr and "ckpt_3" in one.stderr
    assert len(one.stderr.strip().splitlines()) == 1
    assert two.stdout == one.stdout and '"errors"' in one.stdout
    assert "ckpt_5.npz" in one.stdout and "ckpt_6" in one.stdout  # the others measured


def _measure(source, config, on_progress):
    """A stand-in measurement for the worker pool: fails on names that say so."""
    if "bad" in source:
        raise LoadError(f"{source}: cannot be read", "re-save it")
    if "allocator" in source:  # what torch raises when the system refuses memory
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't "
                           "allocate memory: you tried to allocate 9000000000 bytes")
    if "killed" in source:  # the OOM killer, as the parent sees it
        os._exit(137)
    return (source, config.bptt.lags)


def test_a_worker_out_of_memory_or_killed_is_that_models_error():
    outcomes = list(measured(["m0", "allocator"], [CheckConfig()] * 2, jobs=2,
                             measure=_measure))
    assert outcomes[0].result()[0] == "m0"
    with pytest.raises(MemoryError):
        outcomes[1].result()
    # a dead worker breaks the pool: its model (and any not yet returned) is an error
    outcomes = list(measured(["m0", "killed"], [CheckConfig()] * 2, jobs=2, measure=_measure))
    with pytest.raises(ResourceError, match="killed: a worker process died"):
        outcomes[1].result()


def test_outcomes_come_in_order_and_errors_keep_class_message_and_hint():
    sources = [f"m{index}" for index in range(5)] + ["bad", "m6"]
    configs = [config_from_values({"lags": f"1..{index + 1}"}) for index in range(len(sources))]
    seen = []
    outcomes = list(measured(sources, configs, jobs=2, measure=_measure,
                             on_progress=lambda done, total, label: seen.append((done, label))))
    assert [outcome.result() for outcome in outcomes[:5]] == [
        (f"m{index}", f"1..{index + 1}") for index in range(5)]
    with pytest.raises(LoadError) as caught:
        outcomes[5].result()
    assert (caught.value.message, caught.value.hint) == ("bad: cannot be read", "re-save it")
    assert seen[:3] == [(0, "m0"), (1, "m1"), (2, "m2")] and seen[-1] == (7, "done")


def test_one_job_measures_lazily_in_this_process():
    calls = []

    def measure(source, config, on_progress):
        calls.append(source)
        return source

    outcomes = measured(["a", "b"], [CheckConfig()] * 2, jobs=1, measure=measure)
    first = next(outcomes)
    assert calls == []
    assert first.result() == "a" and calls == ["a"]


def test_threads_split_the_cores():
    assert threads_per_job(1, cores=8) == 8
    assert threads_per_job(3, cores=8) == 2
    assert threads_per_job(16, cores=2) == 1


@pytest.mark.parametrize("value", [0, -2, 1.5, True])
def test_jobs_must_be_a_positive_whole_number(value):
    with pytest.raises(OptionError, match="jobs"):
        CheckConfig(jobs=value)


def test_jobs_is_a_config_key_and_an_option(tmp_path):
    assert config_from_values({"jobs": 3}).jobs == 3
    (tmp_path / "pyproject.toml").write_text("[tool.rnngrad]\njobs = 0\n")
    result = run_cli("check", str(SAMPLES / "elman_exploding.safetensors"), cwd=tmp_path)
    assert result.returncode == 2 and "jobs" in result.stderr
    assert "--jobs" in run_cli("check", "--help").stdout
