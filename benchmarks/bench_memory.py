"""Benchmark: peak memory (RSS) of whole ``rnngrad bptt`` and ``rnngrad spectrum`` processes
against the estimate ``--max-memory`` refuses by, which must not be below it.

    python benchmarks/bench_memory.py                  # H = 512, 1024, 2048; lags 100, 10000
    python benchmarks/bench_memory.py --sizes 512 --lags 100 --cells rnn,lstm

Each row is one process running rnngrad's command line (``rnngrad.cli.main``, the installed
command's entry point) on a seeded model saved as safetensors (the ``bench_bptt`` model: tanh
``nn.RNN(16, H)``, ρ(W_hh) = 1; or an ``nn.LSTM(16, H)``), with B = 4 Gaussian probes. Its
peak RSS is the kernel's high-water mark of that process (``VmHWM`` in /proc/self/status,
read when it exits; Linux only; not ``ru_maxrss``, which for a child of this benchmark would
include the parent's memory at fork time) and is set against
:func:`rnngrad.bptt.analysis.memory_needed` / :func:`rnngrad.spectrum.analysis.memory_needed`
for the same file and options (the process itself included).

Sweeps that would take hours (10,000 lags of 2048 × 2048 products) are stopped after
``--stop-after`` lags: the process then runs the same command with the sweep cut short (its
buffers are all allocated before the first lag and reused, so nothing in it grows with the
lag) and every other phase complete: the forward pass over all T steps, the gradient-share
replay and the per-probe gradients, the directions. Such rows say "sweep cut".
Threads: one per process (OMP/MKL/OpenBLAS), so the rows do not depend on the machine's load.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The child: the CLI, its peak RSS written at exit, the sweep stopped after N lags if N > 0
# (the rest of the analysis complete).
CHILD = """
import atexit, re, sys
from pathlib import Path

def report_peak():
    status = Path("/proc/self/status").read_text()
    Path(sys.argv[2]).write_text(re.search(r"VmHWM:\\s*(\\d+) kB", status).group(1))

atexit.register(report_peak)
STOP = int(sys.argv[1])
if not STOP:
    from rnngrad.cli import main
    main(sys.argv[3:])
import numpy as np
import rnngrad.bptt.analysis as analysis
from rnngrad.bptt.sweep import Profile, sweep

def cut_sweep(rec, weights, trace, lags, **kwargs):
    done = sweep(rec, weights, trace, tuple(lag for lag in lags if lag <= STOP) or lags[:1],
                 **kwargs)
    def stretch(values):  # the lags not swept repeat the last one swept
        return np.concatenate([values, np.repeat(values[:, -1:], len(lags) - values.shape[1],
                                                 axis=1)], axis=1)
    return Profile(lags=lags, log10_norm=stretch(done.log10_norm),
                   log10_frobenius=stretch(done.log10_frobenius),
                   log10_grad=stretch(done.log10_grad), right=done.right, left=done.left,
                   log10_sigma=done.log10_sigma, omega=done.omega)

analysis.sweep = cut_sweep
from rnngrad.cli import main
main(sys.argv[3:])
"""
INPUT_SIZE = 16
BATCH = 4
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def make_model(cell: str, size: int, path: Path) -> Path:
    import numpy as np
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(size)
    module = (torch.nn.RNN(INPUT_SIZE, size, batch_first=True) if cell == "rnn"
              else torch.nn.LSTM(INPUT_SIZE, size, batch_first=True)).double()
    if cell == "rnn":
        with torch.no_grad():
            weight = module.weight_hh_l0
            weight /= float(np.max(np.abs(np.linalg.eigvals(weight.numpy()))))
    save_file({f"rnn.{k}": v.contiguous() for k, v in module.state_dict().items()}, str(path))
    return path


def peak_rss(stop: int, options: list[str], tmp: str) -> tuple[float, float, int, str]:
    """(peak RSS in MiB, seconds, exit code, last stderr line) of one CLI process."""
    peak_file = Path(tmp) / "peak_kb"
    argv = [sys.executable, "-c", CHILD, str(stop), str(peak_file), *options]
    start = time.perf_counter()
    result = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV,
                            text=True)
    seconds = time.perf_counter() - start
    peak = int(peak_file.read_text()) / 1024 if peak_file.exists() else float("nan")
    return peak, seconds, result.returncode, (result.stderr.strip().splitlines() or [""])[-1]


def estimate(command: str, path: Path, lags: int) -> float:
    """The analysis' own estimate for this file and these options, in MiB."""
    if command == "spectrum":
        from rnngrad.conventions.understand import understand
        from rnngrad.spectrum.analysis import memory_needed

        understood = understand(str(path))
        return max(memory_needed(rec, with_torch=rec.cell != "rnn")
                   for rec in understood.recurrences) / 2**20
    from rnngrad.bptt.analysis import estimate_for

    return estimate_for(str(path), lags=f"1..{lags}", batch=BATCH) / 2**20


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="512,1024,2048")
    parser.add_argument("--lags", default="100,10000")
    parser.add_argument("--cells", default="rnn")
    parser.add_argument("--commands", default="spectrum,bptt")
    parser.add_argument("--stop-after", type=int, default=20,
                        help="cut sweeps whose full length is estimated over --budget seconds")
    parser.add_argument("--budget", type=float, default=120.0,
                        help="seconds a full sweep may take before it is cut")
    args = parser.parse_args(argv)
    sizes = [int(x) for x in args.sizes.split(",")]
    lag_counts = [int(x) for x in args.lags.split(",")]
    load = os.getloadavg()
    print(f"# rnngrad peak memory (RSS) vs the --max-memory estimate\n\n"
          f"- date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, nproc {os.cpu_count()}, load "
          f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}\n"
          f"- one thread per process; B = {BATCH} Gaussian probes (burn-in 50 for 100+ lags)\n")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for cell in args.cells.split(","):
            for size in sizes:
                path = make_model(cell, size, Path(tmp) / f"{cell}_{size}.safetensors")
                for name in args.commands.split(","):
                    for lags in (lag_counts if name == "bptt" else [None]):
                        rows.append(run_row(name, cell, size, lags, path, args, tmp))
                        print(f"<!-- {rows[-1]} -->", flush=True)
    print("| command | cell | H | lags | peak RSS [MiB] | estimate [MiB] | estimate / peak "
          "| seconds | note |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    worst = min(row["ratio"] for row in rows)
    for row in rows:
        print(f"| {row['command']} | {row['cell']} | {row['size']} | {row['lags'] or ''} "
              f"| {row['peak']:.0f} | {row['estimate']:.0f} | {row['ratio']:.2f} "
              f"| {row['seconds']:.1f} | {row['note']} |")
    load = os.getloadavg()
    print(f"\nSmallest estimate / peak: {worst:.2f} (must be ≥ 1). Load at end: {load[0]:.2f}")
    assert worst >= 1.0, "an estimate is below the measured peak"
    return 0


def run_row(name: str, cell: str, size: int, lags: int | None, path: Path, args,
            tmp: str) -> dict:
    stop, note = 0, ""
    if name == "spectrum":
        options = ["spectrum", str(path), "-q"]
    else:
        options = ["bptt", str(path), "--lags", f"1..{lags}", "--batch", str(BATCH), "-q"]
        products = BATCH * lags * (size * (2 if cell == "lstm" else 1)) ** 3 * 2
        full_seconds = products / 30e9 * 2  # ~30 GFLOP/s on one core, the tracker about as much
        if full_seconds > args.budget and lags > args.stop_after:
            stop, note = args.stop_after, f"sweep cut after {args.stop_after} lags"
    peak, seconds, code, last = peak_rss(stop, options, tmp)
    if code != 0:
        note = f"exit {code}: {last}"
    needed = estimate(name, path, lags or 0)
    return dict(command=name, cell=cell, size=size, lags=lags, peak=peak, estimate=needed,
                ratio=needed / peak, seconds=seconds, note=note)


if __name__ == "__main__":
    sys.exit(main())
