"""Start-up: how long the commands a user (or a pre-commit hook) types take, as whole processes.

    python benchmarks/bench_startup.py            # 15 runs each, median and spread
    python benchmarks/bench_startup.py --runs 5

Each command runs as its own process, as a user runs it; the table gives the median wall time,
the fastest and slowest run, and the time over a bare ``python -c pass`` (what no Python tool
can beat). Targets (issue #8): ``--version`` and ``--help`` at most 0.3 s median on the 2-core
development machine. Threads: one each (OMP/MKL/OpenBLAS), so runs do not fight for cores.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_models"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
       "OPENBLAS_NUM_THREADS": "1", "COLUMNS": "100"}


def command() -> list[str]:
    found = shutil.which("rnngrad", path=str(Path(sys.executable).parent)) or shutil.which("rnngrad")
    if not found:
        sys.exit("install rnngrad first: pip install -e .")
    return [found]


def cases() -> list[tuple[str, list[str], float | None]]:
    rnngrad = command()
    return [
        ("python -c pass (floor)", [sys.executable, "-c", "pass"], None),
        ("python -c 'import rnngrad'", [sys.executable, "-c", "import rnngrad"], None),
        ("rnngrad --version", rnngrad + ["--version"], 0.3),
        ("rnngrad --help", rnngrad + ["--help"], 0.3),
        ("rnngrad bptt --help", rnngrad + ["bptt", "--help"], None),
        ("rnngrad bptt --batch x (option error)", rnngrad + ["bptt", "m.pt", "--batch", "x"], None),
        ("rnngrad inspect sample.safetensors",
         rnngrad + ["inspect", str(SAMPLES / "elman_exploding.safetensors")], None),
        ("rnngrad inspect sample.npz", rnngrad + ["inspect", str(SAMPLES / "elman_relu_npz.npz")],
         None),
        ("rnngrad spectrum sample.safetensors (Elman: NumPy only)",
         rnngrad + ["spectrum", str(SAMPLES / "elman_exploding.safetensors")], None),
        ("rnngrad spectrum sample.safetensors (GRU: imports torch)",
         rnngrad + ["spectrum", str(SAMPLES / "gru_bidirectional.safetensors")], None),
    ]


def time_runs(argv: list[str], runs: int) -> list[float]:
    subprocess.run(argv, capture_output=True, env=ENV)  # warm the file cache
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, capture_output=True, env=ENV)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    rows = []
    floor = None
    for name, argv, target in cases():
        times = time_runs(argv, args.runs)
        median = statistics.median(times)
        floor = median if floor is None else floor
        verdict = "" if target is None else ("met" if median <= target else "MISSED")
        rows.append((name, median, min(times), max(times), median - floor, target, verdict))
    print(f"start-up, {args.runs} runs each, {os.cpu_count()} cores, load "
          f"{os.getloadavg()[0]:.2f}\n")
    print("| command | median | fastest | slowest | over `python -c pass` | target |")
    print("|---|---:|---:|---:|---:|---|")
    for name, median, low, high, extra, target, verdict in rows:
        goal = f"≤ {target:g} s: {verdict}" if target is not None else ""
        print(f"| `{name}` | {median:.3f} s | {low:.3f} s | {high:.3f} s | {extra:.3f} s | {goal} |")


if __name__ == "__main__":
    main()
