"""Hostile Keras and ONNX files (:mod:`corpus_formats`) through ``inspect``, ``spectrum`` and
``bptt``: each refused with exit 2 and one line on stderr naming the file and what is wrong,
never "internal error", the input unchanged.

Memory classes and those that used to hang run in one child process under
``RLIMIT_AS`` (:data:`MEMORY_LIMIT`) with a timeout, so a regression that allocates gigabytes
or blocks on a FIFO fails the test instead of taking the machine. The others run in-process
through ``rnngrad.cli.main`` (:func:`test_hostile.run_in_process`).
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import corpus_formats as cf  # noqa: E402
from test_hostile import fingerprint, run_in_process  # noqa: E402

pytest.importorskip("h5py")
pytest.importorskip("onnx")

MEMORY_LIMIT = 2 * 1024**3
CHILD_TIMEOUT_S = 240
CALL_TIMEOUT_S = 30


def _all_cases(tmp_root: pathlib.Path):
    return {case.name: case for case in cf.build(tmp_root)}


@pytest.fixture(scope="session")
def format_corpus(tmp_path_factory):
    dest = tmp_path_factory.mktemp("formats")
    cases = _all_cases(dest)
    return cases, {name: fingerprint(case.path) for name, case in cases.items()}


# Runs every guarded call in one interpreter: one torch import, a limit on the address space,
# an alarm per call. Prints one JSON list on its real stdout.
CHILD = r"""
import contextlib, io, json, os, resource, signal, sys, time
limit, timeout = int(sys.argv[1]), int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
real_stdout = sys.stdout

class Hang(BaseException):
    pass

def on_alarm(*_):
    raise Hang()

signal.signal(signal.SIGALRM, on_alarm)
from rnngrad.cli import main
results = []
for argv in json.loads(sys.stdin.read()):
    out, err = io.StringIO(), io.StringIO()
    rc, hung, start = None, False, time.perf_counter()
    signal.alarm(timeout)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(argv)
                rc = 0
            except SystemExit as exc:
                rc = exc.code if isinstance(exc.code, int) else 1
    except Hang:
        hung = True
    except BaseException as exc:
        err.write(f"ESCAPED {type(exc).__name__}: {exc}")
    finally:
        signal.alarm(0)
    results.append({"argv": argv, "rc": rc, "stderr": err.getvalue(), "hung": hung,
                    "seconds": time.perf_counter() - start,
                    "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss})
real_stdout.write(json.dumps(results))
"""

GUARDED = [(case, command) for case in cf.case_names() for command in cf.COMMANDS]


@pytest.fixture(scope="session")
def guarded_results(format_corpus):
    """Every call of the memory and hang classes, run in one limited child process."""
    cases, _ = format_corpus
    calls = [case.argv(command) for case in cases.values() if case.memory or case.hang
             for command in case.commands]
    env = {**os.environ, "COLUMNS": "80"}
    env.pop("PYTHONWARNINGS", None)
    try:
        done = subprocess.run([sys.executable, "-c", CHILD, str(MEMORY_LIMIT),
                               str(CALL_TIMEOUT_S)], input=json.dumps(calls),
                              capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, env=env,
                              cwd=pathlib.Path(next(iter(cases.values())).path).parent)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the guarded calls did not finish within {CHILD_TIMEOUT_S} s (a hang)")
    if done.returncode != 0:
        pytest.fail(f"the guarded child died (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return {tuple(result["argv"]): result for result in json.loads(done.stdout)}


def _check_refusal(case: cf.FormatCase, rc, stderr: str, before) -> None:
    text = stderr.strip()
    described = f"\n  case {case.name}\n  exit {rc}\n  stderr:\n{stderr[-2000:]}"
    assert rc == 2, f"expected exit 2{described}"
    assert "Traceback" not in stderr and "ESCAPED" not in stderr, described
    assert "internal error" not in text.lower(), described
    assert len(text.splitlines()) == 1, f"expected one line on stderr{described}"
    assert case.path.name in text, f"stderr does not name the file{described}"
    lowered = text.lower().replace(str(case.path).lower(), "<file>")
    assert any(alt in lowered for alt in case.expect_alternatives()), \
        f"stderr should mention {case.expect!r}{described}"
    assert fingerprint(case.path) == before, f"the input was modified{described}"


@pytest.mark.parametrize("name, command", GUARDED)
def test_hostile_file_is_refused_cleanly(name, command, format_corpus, guarded_results,
                                         tmp_path):
    cases, fingerprints = format_corpus
    case = cases[name]
    if case.memory or case.hang:
        result = guarded_results[tuple(case.argv(command))]
        assert not result["hung"], f"{name}: {command} did not answer in {CALL_TIMEOUT_S} s"
        _check_refusal(case, result["rc"], result["stderr"], fingerprints[name])
    else:
        result = run_in_process(case.argv(command), tmp_path)
        _check_refusal(case, result.rc, result.stderr, fingerprints[name])


@pytest.mark.slow
@pytest.mark.parametrize("name", cf.case_names())
def test_hostile_file_is_a_json_error(name, format_corpus, guarded_results, tmp_path):
    cases, fingerprints = format_corpus
    case = cases[name]
    if case.memory or case.hang:
        pytest.skip("guarded classes: table format only (one child process)")
    result = run_in_process([*case.argv("inspect"), "--format", "json"], tmp_path)
    assert result.rc == 2
    document = json.loads(result.stdout)
    assert set(document) == {"error"} and case.path.name in document["error"]["message"]
    assert fingerprint(case.path) == fingerprints[name]


def test_guarded_calls_stay_small_and_quick(guarded_results):
    """Refused before allocating: far under the limit, in seconds (torch's import included)."""
    peak_mib = max(result["peak_rss"] for result in guarded_results.values()) / 1024
    slowest = max(result["seconds"] for result in guarded_results.values())
    assert peak_mib < 1024, f"peak RSS {peak_mib:.0f} MiB"
    assert slowest < 10, f"slowest call {slowest:.1f} s"


@pytest.fixture(scope="module")
def good_files(tmp_path_factory):
    return cf.build_good(tmp_path_factory.mktemp("good"))


@pytest.mark.parametrize("name", sorted(cf.GOOD))
@pytest.mark.parametrize("command", cf.COMMANDS)
def test_control_files_are_read(name, command, good_files, tmp_path):
    """The bases the hostile files are made from, and a 5000-node chain, are read (exit 0)."""
    path = good_files[name]
    started = time.perf_counter()
    result = run_in_process(cf.FormatCase(name, path, "").argv(command), tmp_path)
    assert result.rc == 0, result.describe()
    assert time.perf_counter() - started < 30


def test_chain_of_5000_nodes_gives_the_weights_it_ends_in(good_files):
    import numpy as np

    from rnngrad.conventions.understand import understand

    understood = understand(str(good_files["onnx_chain_5000"]))
    (rec,) = understood.recurrences
    w = np.random.default_rng(1).standard_normal((1, 4 * cf.H, cf.I)).astype(np.float32)
    i, o, f, c = np.split(w[0].astype(np.float64), 4)
    assert np.array_equal(understood.bundle.array(rec.weight_ih), np.concatenate([i, f, c, o]))
