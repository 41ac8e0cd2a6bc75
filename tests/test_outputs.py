"""Outputs never destroy inputs or existing results (issue 17, item 4).

Every file a command writes (``--output``, ``--plot``, ``--save-directions``,
``--write-baseline``, ``GITHUB_STEP_SUMMARY``) goes through ``rnngrad.cli.outputs``: a path that
is an input of the run, by name or through a hard or symbolic link, is refused before the
analysis; a file is written to a temporary file in its folder and renamed over the target only
when complete (a full disk or Ctrl-C leaves the previous file and no debris); FIFOs, devices
and ``/dev/stdout`` are written in place. Each test compares the files' bytes before and after.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus  # noqa: E402
from inprocess import invoke  # noqa: E402

import rnngrad.cli.outputs as outputs  # noqa: E402

FAST = ["--lags", "1..3", "--steps", "20", "--batch", "2", "-q"]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def debris(folder: Path) -> list[str]:
    """Temporary files an interrupted write would have left."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".rnngrad-tmp"))


@pytest.fixture
def project(tmp_path: Path) -> dict:
    """A model with a head, its probe, targets, a map, a config and a baseline."""
    model = corpus.make_valid_model(tmp_path / "model.safetensors")
    probe = tmp_path / "probe.npy"
    np.save(probe, np.random.default_rng(0).standard_normal((2, 20, corpus.INPUT_SIZE)))
    targets = tmp_path / "targets.npy"
    np.save(targets, np.zeros((2, 8)))
    rnn_map = tmp_path / "map.toml"
    rnn_map.write_text('recurrent = "rnn.weight_hh_l0"\ninput = "rnn.weight_ih_l0"\n'
                       'form = "elman"\n')
    config = tmp_path / "gate.toml"
    config.write_text("[tool.rnngrad]\nexplode-above = 1e4\n")
    baseline = tmp_path / "baseline.json"
    assert invoke("check", model, *FAST, "--write-baseline", baseline).code == 0
    return {"model": model, "inputs": probe, "targets": targets, "map": rnn_map,
            "config": config, "baseline": baseline, "folder": tmp_path}


# (command line, the input it reads) for each kind of input and each output option.
CASES = {
    "output-model": (["inspect", "{model}", "-f", "json", "--output"], "model"),
    "output-map": (["inspect", "{model}", "--map", "{map}", "--output"], "map"),
    "plot-model": (["spectrum", "{model}", "--plot"], "model"),
    "directions-probe": (["bptt", "{model}", "--inputs", "{inputs}", "--lags", "1..3", "-q",
                          "--save-directions"], "inputs"),
    "output-targets": (["bptt", "{model}", "--loss", "readout", "--targets", "{targets}",
                        *FAST, "--output"], "targets"),
    "baseline-config": (["check", "{model}", "--config", "{config}", *FAST,
                         "--write-baseline"], "config"),
    "output-baseline": (["check", "{model}", "--baseline", "{baseline}", *FAST, "--output"],
                        "baseline"),
}


def _argv(template: list[str], project: dict) -> list[str]:
    return [part.format(**{k: str(v) for k, v in project.items()}) for part in template]


# A model is never named *.svg: --plot onto the model itself is refused by its extension.
LINKED = [(case, link) for case in sorted(CASES) for link in ("same", "hard", "symbolic")
          if (case, link) != ("plot-model", "same")]


@pytest.mark.parametrize("case,link", LINKED)
def test_an_output_is_never_an_input(project, case, link):
    template, kind = CASES[case]
    source = project[kind]
    target = {"same": source, "hard": project["folder"] / f"hard_{source.name}",
              "symbolic": project["folder"] / f"soft_{source.name}"}[link]
    if link == "hard":
        os.link(source, target)
    elif link == "symbolic":
        target.symlink_to(source)
    if case == "plot-model":  # --plot needs a picture's extension
        target = target.rename(target.with_suffix(".svg"))
    before = digest(source)
    outcome = invoke(*_argv(template, project), target)
    assert outcome.code == 2, outcome
    assert "input of this run" in outcome.stderr and len(outcome.stderr.splitlines()) == 1
    assert digest(source) == before
    assert debris(project["folder"]) == []


def test_two_outputs_to_one_file_are_refused(project, tmp_path):
    picture = tmp_path / "same.svg"
    outcome = invoke("spectrum", project["model"], "--output", picture, "--plot", picture)
    assert outcome.code == 2 and "writes the same file" in outcome.stderr, outcome
    assert not picture.exists()


def test_write_baseline_may_refresh_the_baseline_it_replaces(project):
    """Not an input: a baseline that --write-baseline names is not read, only replaced."""
    baseline = project["baseline"]
    old = json.loads(baseline.read_text())
    config = project["folder"] / "refresh.toml"
    config.write_text(f'[tool.rnngrad]\nbaseline = "{baseline}"\n')
    outcome = invoke("check", project["model"], "--config", config, *FAST, "--seed", "3",
                     "--write-baseline", baseline)
    assert outcome.code == 0, outcome
    new = json.loads(baseline.read_text())
    assert new["models"].keys() == old["models"].keys() and new != old


def test_a_report_replaces_the_previous_one_whole_and_keeps_its_mode(project, tmp_path):
    report = tmp_path / "report.json"
    report.write_text("previous report\n")
    report.chmod(0o640)
    outcome = invoke("inspect", project["model"], "-f", "json", "--output", report)
    assert outcome.code == 0, outcome
    assert json.loads(report.read_text())["command"] == "inspect"
    assert stat.S_IMODE(report.stat().st_mode) == 0o640
    assert debris(tmp_path) == []


def test_a_new_report_gets_the_umask_permissions(project, tmp_path):
    report = tmp_path / "new.json"
    mask = os.umask(0o027)
    try:
        assert invoke("inspect", project["model"], "-f", "json", "-o", report).code == 0
    finally:
        os.umask(mask)
    assert stat.S_IMODE(report.stat().st_mode) == 0o640


@pytest.fixture
def full_disk(monkeypatch):
    """Every temporary file rnngrad writes lands on /dev/full: ENOSPC at the write."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    real = tempfile.mkstemp

    def mkstemp(**kwargs):
        descriptor, name = real(**kwargs)
        os.close(descriptor)
        return os.open("/dev/full", os.O_WRONLY), name

    monkeypatch.setattr(outputs.tempfile, "mkstemp", mkstemp)


@pytest.mark.parametrize("option", ["--output", "--plot", "--save-directions"])
def test_a_full_disk_leaves_the_previous_file_and_no_debris(project, tmp_path, full_disk,
                                                            option):
    previous = tmp_path / ("old.svg" if option == "--plot" else "old.out")
    previous.write_text("previous result\n")
    outcome = invoke("bptt", project["model"], *FAST, option, previous)
    assert outcome.code == 2, outcome
    assert f"{option} {previous}: cannot be written (No space left on device)" in outcome.stderr
    assert len(outcome.stderr.splitlines()) == 1
    assert previous.read_text() == "previous result\n"
    assert debris(tmp_path) == []


def test_ctrl_c_while_writing_leaves_the_previous_report(project, tmp_path, monkeypatch):
    """The temporary file is a FIFO nobody reads: the write blocks until 'Ctrl-C'."""
    big = tmp_path / "many.safetensors"
    big.write_bytes(corpus.st_bytes({**{f"t{i}.weight": np.zeros(1, np.float32)
                                        for i in range(3000)},
                                     **{k: v.numpy() for k, v in
                                        corpus.valid_state_dict_torch().items()}}))
    report = tmp_path / "report.json"
    report.write_text("previous report\n")
    fifo = tmp_path / "blocking.fifo"
    os.mkfifo(fifo)
    real = tempfile.mkstemp

    def mkstemp(**kwargs):
        descriptor, name = real(**kwargs)
        os.close(descriptor)
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        return os.open(fifo, os.O_RDWR), name  # O_RDWR: opens at once; writes fill and block

    def ctrl_c(signum, frame):
        os.kill(os.getpid(), signal.SIGINT)  # what the terminal sends

    old = signal.signal(signal.SIGALRM, ctrl_c)
    monkeypatch.setattr(outputs.tempfile, "mkstemp", mkstemp)
    try:
        outcome = invoke("inspect", big, "-f", "json", "--output", report)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert outcome.code == 130, outcome
    assert outcome.stderr == "rnngrad: aborted (Ctrl-C)\n"
    assert report.read_text() == "previous report\n"
    assert debris(tmp_path) == []


def test_a_fifo_is_written_in_place_not_replaced(project, tmp_path):
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    try:
        outcome = invoke("inspect", project["model"], "-f", "json", "--output", fifo)
    finally:
        reader.join(timeout=30)
    assert outcome.code == 0, outcome
    assert json.loads(received[0])["command"] == "inspect"
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_dev_stdout_goes_where_stdout_goes_and_appends(project, tmp_path):
    """``-o /dev/stdout >> log``: the report is appended to the log, never replacing it."""
    log = tmp_path / "log.txt"
    log.write_text("earlier lines\n")
    with log.open("a") as handle:
        result = subprocess.run([sys.executable, "-m", "rnngrad", "inspect",
                                 str(project["model"]), "-f", "json", "-o", "/dev/stdout"],
                                stdout=handle, stderr=subprocess.PIPE, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    text = log.read_text()
    assert text.startswith("earlier lines\n")
    assert json.loads(text.removeprefix("earlier lines\n"))["command"] == "inspect"


def test_github_step_summary_is_appended_and_never_a_fifo_or_an_input(project, tmp_path):
    summary = tmp_path / "summary.md"
    summary.write_text("# earlier step\n")
    args = ["check", project["model"], *FAST, "-f", "github"]
    assert invoke(*args, env={"GITHUB_STEP_SUMMARY": summary}).code == 0
    assert summary.read_text().startswith("# earlier step\n## rnngrad check")
    fifo = tmp_path / "summary.fifo"
    os.mkfifo(fifo)
    outcome = invoke(*args, env={"GITHUB_STEP_SUMMARY": fifo})
    assert outcome.code == 2 and "not a regular file" in outcome.stderr, outcome
    before = digest(project["model"])
    outcome = invoke(*args, env={"GITHUB_STEP_SUMMARY": project["model"]})
    assert outcome.code == 2 and "input of this run" in outcome.stderr, outcome
    assert digest(project["model"]) == before


def test_write_errors_name_the_path_and_the_reason(tmp_path):
    guard = outputs.Outputs([])
    with pytest.raises(Exception) as missing:
        guard.plan(tmp_path / "nowhere" / "r.json", "--output")
    assert str(tmp_path / "nowhere") in str(missing.value) and "does not exist" in str(
        missing.value)
    with pytest.raises(Exception) as folder:
        guard.plan(tmp_path, "--output")
    assert "is a directory" in str(folder.value)
    assert outputs._hint(OSError(errno.ENOSPC, "No space left on device")).startswith("free")
