"""Benchmark: ``rnngrad check`` over a folder of checkpoints, one job against one per core.

    python benchmarks/bench_check.py                 # 16 checkpoints, --jobs 1 vs --jobs <cores>
    python benchmarks/bench_check.py --models 8 --hidden 64 --jobs 1,2

The folder holds ``--models`` checkpoints of one small "training run": a seeded
``nn.LSTM(16, H)`` (and every fourth one an ``nn.GRU``) whose recurrent weights grow from
step to step, saved as safetensors. Each configuration is a whole ``rnngrad check FOLDER
--format json`` process (the defaults: lags 1..100, 16 probes), best of ``--repeats``; the JSON
of every ``--jobs`` must equal that of ``--jobs 1`` (asserted), and so must the exit code.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_run(folder: Path, models: int, hidden: int) -> None:
    import torch
    from safetensors.torch import save_file

    for step in range(models):
        torch.manual_seed(step)
        kind = torch.nn.GRU if step % 4 == 3 else torch.nn.LSTM
        module = kind(16, hidden, batch_first=True)
        with torch.no_grad():
            module.weight_hh_l0.mul_(1.0 + 0.15 * step)
        save_file({f"rnn.{k}": v.contiguous() for k, v in module.state_dict().items()},
                  str(folder / f"step_{step + 1}.safetensors"))


def run(argv: list[str], repeats: int) -> tuple[float, int, str]:
    best, code, out = float("inf"), 0, ""
    for _ in range(repeats):
        start = time.perf_counter()
        result = subprocess.run(argv, capture_output=True, text=True)
        best = min(best, time.perf_counter() - start)
        code, out = result.returncode, result.stdout
        if code not in (0, 1):
            raise RuntimeError(result.stderr)
    return best, code, out


def main(argv=None) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=96)
    parser.add_argument("--jobs", default=f"1,{cores}")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    command = shutil.which("rnngrad", path=str(Path(sys.executable).parent))
    if not command:
        sys.exit("install rnngrad first: pip install -e .")
    load = os.getloadavg()
    print(f"# rnngrad check --jobs benchmark\n\n- date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}"
          f", {cores} cores, load {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}\n"
          f"- {args.models} checkpoints (LSTM/GRU, I = 16, H = {args.hidden}), check defaults "
          f"(lags 1..100, 16 probes), best of {args.repeats}\n")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_run(folder, args.models, args.hidden)
        reference = None
        for jobs in (int(x) for x in args.jobs.split(",")):
            seconds, code, out = run([command, "check", str(folder), "--format", "json",
                                      "--explode-above", "1e3", "--jobs", str(jobs)],
                                     args.repeats)
            reference = reference or (code, out)
            assert (code, out) == reference, f"--jobs {jobs} differs from --jobs 1"
            rows.append((jobs, seconds, os.getloadavg()[0]))
            print(f"<!-- --jobs {jobs}: {seconds:.2f}s -->", flush=True)
    print("| --jobs | seconds | speed-up over --jobs 1 | load |\n|---:|---:|---:|---:|")
    for jobs, seconds, load_now in rows:
        print(f"| {jobs} | {seconds:.2f} | {rows[0][1] / seconds:.2f}× | {load_now:.1f} |")
    print("\nThe JSON report and exit code of every --jobs equal those of --jobs 1.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
