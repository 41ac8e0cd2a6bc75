"""The memory estimates --max-memory refuses by: never below what a whole process really uses
(its peak RSS, read from the kernel), and refusals that say what to do."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from conftest import run_cli
from rnngrad.bptt.analysis import PROCESS_BYTES, estimate_for
from rnngrad.conventions.understand import understand
from rnngrad.spectrum.analysis import memory_needed

PEAK = """
import atexit, re, sys
from pathlib import Path
atexit.register(lambda: print(re.search(r"VmHWM:\\s*(\\d+) kB",
                                        Path("/proc/self/status").read_text()).group(1),
                              file=sys.stderr))
from rnngrad.cli import main
main(sys.argv[1:])
"""


def model(tmp_path: Path, kind: str, hidden: int) -> str:
    torch.manual_seed(0)
    module = getattr(torch.nn, kind)(8, hidden, batch_first=True).double()
    path = tmp_path / f"{kind}.safetensors"
    save_file({f"rnn.{k}": v.contiguous() for k, v in module.state_dict().items()}, str(path))
    return str(path)


def peak_bytes(*args: str) -> int:
    result = subprocess.run([sys.executable, "-c", PEAK, *args], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode in (0, 1), result.stderr
    return int(result.stderr.strip().splitlines()[-1]) * 1024


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
@pytest.mark.parametrize("kind,hidden,lags", [("RNN", 96, 2000), ("LSTM", 64, 600)])
def test_estimates_are_not_below_the_peak_of_a_whole_process(tmp_path, kind, hidden, lags):
    path = model(tmp_path, kind, hidden)
    needed = estimate_for(path, lags=f"1..{lags}", batch=4)
    assert needed >= peak_bytes("bptt", path, "--lags", f"1..{lags}", "--batch", "4", "-q")
    rec = understand(path).recurrences[0]
    assert memory_needed(rec, with_torch=kind != "RNN") >= peak_bytes("spectrum", path, "-q")


def test_estimate_grows_with_the_probe_and_counts_the_process(tmp_path):
    path = model(tmp_path, "LSTM", 32)
    small = estimate_for(path, lags="1..100", batch=2)
    assert small > PROCESS_BYTES
    assert estimate_for(path, lags="1..1000", batch=2) > small
    assert estimate_for(path, lags="1..100", batch=8) > small


def test_refusal_names_the_need_and_the_way_out(tmp_path):
    path = model(tmp_path, "RNN", 32)
    result = run_cli("bptt", path, "--lags", "1..100000", "--batch", "64", "--max-memory", "1")
    assert result.returncode == 2
    assert "GiB" in result.stderr and "--max-memory" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
