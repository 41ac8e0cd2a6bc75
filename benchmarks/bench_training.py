"""Does rnngrad's advice work? Training a tanh RNN on the adding problem (Pascanu et al. 2013,
Sec. 4.1) with and without the clipping it recommends.

    python benchmarks/bench_training.py                 # the full table (about 15 min, 1 core)
    python benchmarks/bench_training.py --quick         # a smoke run

Model: ``nn.RNN(2, 50)`` (tanh) + ``nn.Linear(50, 1)`` on the last step, W_hh initialised at
spectral radius ``--rho`` (default 1.3, a regime where plain SGD hits exploding gradients), the
rest PyTorch's default init; plain SGD (``--lr``), batches of 20, sequence lengths 50 and 100,
``--seeds`` seeds per setting. Settings:

- ``none``: no clipping;
- ``bptt``: clipping at ``rnngrad bptt``'s recommendation, measured once on the initial
  weights with the task's own sequences and loss (``--inputs``, ``--loss mse`` through the
  head, ``--targets``; the default rule ``auto``), which knows nothing of the learning rate;
- ``surface``: clipping at ``rnngrad surface --lr``'s recommendation on the same sequences
  (the default rule ``curvature``: the smaller of the average norm and ‖g‖/(η·λ_max));
- ``online``: :class:`rnngrad.train.Clipper` (``autoclip``, from the first step);
- ``10x``: clipping at ten times the ``surface`` threshold (a threshold set too high);
- ``surface+omega``: the ``surface`` threshold plus Pascanu's Ω (weight ``--omega``) on the
  recurrence.

A run *diverges* when a training loss turns NaN or infinite (training stops there). A *spike*
is a training loss above ``SPIKE`` (6× the 1/6 MSE of always predicting 1) after the first 100
steps. Reported per setting and length: the share of diverged runs, of runs with spikes, the
final evaluation MSE (1000 held-out sequences; median over the runs that did not diverge), the
share that solved the task (MSE < 0.04, Pascanu et al.'s criterion), the median threshold, and
for the first seed rnngrad's measured profile (log10 ‖∂s_T/∂s_(T−ℓ)‖ at lags 1, T/2, T) before
and after training. Threads: one (torch and BLAS), so runs are comparable.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import rnngrad  # noqa: E402
from rnngrad.train import Clipper, GradientMonitor, adding_problem, omega  # noqa: E402
from rnngrad.train.tasks import BASELINE_MSE, SOLVED_MSE  # noqa: E402

SPIKE = 6 * BASELINE_MSE
SETTINGS = ("none", "bptt", "surface", "online", "10x", "surface+omega")


class AddingRNN(torch.nn.Module):
    """``nn.RNN(2, H)`` tanh with W_hh at spectral radius ``rho``, and a linear readout."""

    def __init__(self, hidden: int, rho: float) -> None:
        super().__init__()
        self.rnn = torch.nn.RNN(2, hidden, batch_first=True)
        self.fc = torch.nn.Linear(hidden, 1)
        with torch.no_grad():
            w = torch.randn(hidden, hidden) / math.sqrt(hidden)
            self.rnn.weight_hh_l0.copy_(w * rho / torch.linalg.eigvals(w).abs().max())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.rnn(x)[0][:, -1])


@dataclass
class Run:
    setting: str
    length: int
    seed: int
    diverged: bool = False
    diverged_at: int | None = None
    spikes: int = 0
    final_mse: float | None = None
    threshold: float | None = None
    clipped: int = 0
    seconds: float = 0.0
    before: dict = field(default_factory=dict)
    after: dict = field(default_factory=dict)


def recommendation(model: AddingRNN, length: int, seed: int, command: str,
                   lr: float) -> float | None:
    """The clip threshold ``rnngrad bptt`` or ``rnngrad surface --lr`` recommends for the
    initial weights on 32 sequences of the task itself."""
    x, y = adding_problem(32, length, torch.Generator().manual_seed(10_000 + seed))
    with tempfile.TemporaryDirectory() as folder:
        np.save(Path(folder) / "x.npy", x.double().numpy())
        np.save(Path(folder) / "y.npy", y.double().numpy())
        data = dict(inputs=str(Path(folder) / "x.npy"), loss="mse",
                    targets=str(Path(folder) / "y.npy"))
        if command == "bptt":
            return rnngrad.bptt(model, lags=f"1..{length}", **data).clip.max_norm
        report = rnngrad.surface(model, lr=lr, lengths=str(length), sgd_steps=0, points=3,
                                 **data)
        return report.clip.max_norm


THRESHOLDS = {"bptt": ("bptt", 1), "surface": ("surface", 1), "10x": ("surface", 10),
              "surface+omega": ("surface", 1)}


def profile(model: AddingRNN, length: int) -> dict:
    """log10 ‖∂s_T/∂s_(T−ℓ)‖ at lags 1, T/2, T on 8 task sequences, and λ_1 (``rnngrad
    lyapunov``, k = 1) on 4 task sequences of 1000 + 3000 steps."""
    x, _ = adding_problem(8, length, torch.Generator().manual_seed(99))
    long, _ = adding_problem(4, 4000, torch.Generator().manual_seed(98))
    with tempfile.TemporaryDirectory() as folder:
        np.save(Path(folder) / "x.npy", x.double().numpy())
        np.save(Path(folder) / "long.npy", long.double().numpy())
        report = rnngrad.bptt(model, lags=f"1,{length // 2},{length}",
                              inputs=str(Path(folder) / "x.npy"), profile_only=True)
        exponents = rnngrad.lyapunov(model, k=1, inputs=str(Path(folder) / "long.npy"),
                                     burn_in=1000)
    shape = {row.lag: row.log10_norm for row in report.recurrences[0].rows}
    return {"profile": shape, "lambda_1": exponents.recurrences[0].exponents[0]}


def train_one(setting: str, length: int, seed: int, args: argparse.Namespace) -> Run:
    torch.manual_seed(seed)
    model = AddingRNN(args.hidden, args.rho)
    run = Run(setting, length, seed)
    run.before = profile(model, length)
    clipper = None
    if setting == "online":
        clipper = Clipper("autoclip")
    elif setting in THRESHOLDS:
        command, factor = THRESHOLDS[setting]
        threshold = recommendation(model, length, seed, command, args.lr)
        if threshold is not None:
            run.threshold = threshold * factor
            clipper = Clipper.fixed(run.threshold)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    data = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        x, y = adding_problem(args.batch, length, data)
        loss = torch.nn.functional.mse_loss(model(x), y)
        total = loss
        if setting == "surface+omega":
            total = loss + args.omega * omega(
                model.rnn, x, lambda out: torch.nn.functional.mse_loss(model.fc(out[:, -1]), y))
        optimizer.zero_grad()
        total.backward()
        if clipper is not None:
            clipper.clip_(model.parameters())
        value = float(loss.detach())
        if not math.isfinite(value):
            run.diverged, run.diverged_at = True, step
            break
        run.spikes += step > 100 and value > SPIKE
        optimizer.step()
    run.seconds = time.perf_counter() - start
    run.clipped = clipper.clipped if clipper is not None else 0
    if not run.diverged:
        x, y = adding_problem(1000, length, torch.Generator().manual_seed(777))
        with torch.no_grad():
            run.final_mse = float(torch.nn.functional.mse_loss(model(x), y))
        run.after = profile(model, length)
    return run


def monitor_overhead(length: int, args: argparse.Namespace) -> tuple[float, float]:
    """Seconds for ``args.steps`` training steps without and with a GradientMonitor (every 100)."""
    times = []
    for monitored in (False, True):
        torch.manual_seed(0)
        model = AddingRNN(args.hidden, 1.0)
        optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
        monitor = GradientMonitor(model, every=100, lags=f"log:1..{length}:12") if monitored \
            else None
        data = torch.Generator().manual_seed(0)
        start = time.perf_counter()
        for _ in range(args.steps):
            x, y = adding_problem(args.batch, length, data)
            loss = torch.nn.functional.mse_loss(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            if monitor is not None:
                monitor.step()
            optimizer.step()
        times.append(time.perf_counter() - start)
    return times[0], times[1]


def _profile_text(measured: dict) -> str:
    shape = ", ".join(f"{v:.1f}" for v in measured["profile"].values())
    top = measured["lambda_1"]
    return f"{shape}; {'−∞' if top is None else f'{top:+.3f}'}"


def table(runs: list[Run], lengths: tuple[int, ...]) -> str:
    lines = ["| setting | T | diverged | spiked | solved (MSE < 0.04) | final MSE (median) | "
             "threshold (median) | steps clipped | log10 ‖∂s_T/∂s_(T−ℓ)‖ at ℓ = 1, T/2, T; λ_1: "
             "before → after (seed 0) |", "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for setting in SETTINGS:
        for length in lengths:
            group = [r for r in runs if r.setting == setting and r.length == length]
            if not group:
                continue
            kept = [r for r in group if not r.diverged]
            mse = statistics.median(r.final_mse for r in kept) if kept else None
            solved = sum(r.final_mse is not None and r.final_mse < SOLVED_MSE for r in group)
            thresholds = [r.threshold for r in group if r.threshold is not None]
            first = group[0]
            shape = _profile_text(first.before)
            after = _profile_text(first.after) if first.after else "diverged"
            lines.append(
                f"| {setting} | {length} | {sum(r.diverged for r in group)}/{len(group)} | "
                f"{sum(r.spikes > 0 for r in group)}/{len(group)} | "
                f"{solved}/{len(group)} | {'—' if mse is None else f'{mse:.4f}'} | "
                f"{f'{statistics.median(thresholds):.3g}' if thresholds else '—'} | "
                f"{statistics.median(r.clipped for r in group):.0f} | {shape} → {after} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds, 200 steps, T = 50")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--hidden", type=int, default=50)
    parser.add_argument("--rho", type=float, default=1.3)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--omega", type=float, default=1.0, help="weight of Ω in the loss")
    parser.add_argument("--lengths", default="50,100")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.steps, args.lengths = 2, 200, "50"
    torch.set_num_threads(1)
    lengths = tuple(int(v) for v in args.lengths.split(","))
    started = time.perf_counter()
    runs = []
    for length in lengths:
        for setting in SETTINGS:
            for seed in range(args.seeds):
                run = train_one(setting, length, seed, args)
                runs.append(run)
                print(f"  {setting:14} T={length:4} seed {seed}: "
                      + (f"diverged at step {run.diverged_at}" if run.diverged else
                         f"final MSE {run.final_mse:.4f}, {run.spikes} spikes")
                      + (f", threshold {run.threshold:.3g}" if run.threshold else "")
                      + f" ({run.seconds:.1f} s)", flush=True)
    plain, watched = monitor_overhead(lengths[-1], args)
    print(f"\nadding problem, tanh RNN {args.hidden} units, ρ(W_hh) = {args.rho} at init, SGD "
          f"lr {args.lr}, batch {args.batch}, {args.steps} steps, {args.seeds} seeds; a run "
          f"diverges at a NaN/inf loss or a loss above {SPIKE:.2f} after step 100; "
          f"{time.perf_counter() - started:.0f} s in all, load {os.getloadavg()[0]:.2f}\n")
    print(table(runs, lengths))
    print(f"\nGradientMonitor(every=100) at T = {lengths[-1]}: {plain:.2f} s without, "
          f"{watched:.2f} s with: +{100 * (watched / plain - 1):.1f} % of training time")


if __name__ == "__main__":
    main()
