"""Benchmark: rnngrad's Lyapunov spectrum vs. the research-script way and vs. the bare cost;
and rnngrad's λ_1 of random tanh networks vs. the discrete-time mean-field theory.

**Speed** (``--sizes``, default H = 256, 1024; ``--ks``, default K = 10, 64): a seeded tanh
``nn.RNN(I=16, H)`` in float64 with W_hh = g W, W_ij ~ N(0, 1/H), g = 1.5 (chaotic), and a
probe of B = 4 seeded N(0, 1) input sequences of ``--burn-in`` + ``--steps`` steps (default
50 + 250) from h_0 = 0. Wanted: the top K exponents of every probe. Timed, one thread for all:

(a) **rnngrad**, two ways:
    - *whole call*: the public ``rnngrad.lyapunov(state_dict, LyapunovOptions(k=K,
      probe=ProbeSpec(inputs=<inputs.npy>, burn_in=...)))``: loading, the probe, statistics,
      verdict and report included;
    - *hot path*: ``stream_recurrence`` (forward pass, no caches kept) + ``qr_exponents`` (the
      product J_t Q by the cell's ``jacobian_product``, one GEMM W·[Q_1 … Q_B] scaled by
      tanh', and a Householder QR per step, batched over the probes).
(b) **research way**: what scripts that compute Lyapunov spectra of RNNs do: for each probe and
    step, the full step Jacobian by ``torch.autograd.functional.jacobian`` (its defaults, one
    backward pass per output unit) of h ↦ tanh(W_ih x_t + b + W_hh h) at the true h_(t−1),
    then J Q and ``torch.linalg.qr``. Its cost per step does not depend on t, so it is timed
    on ``--research-steps`` steps of the first probe and *extrapolated* to B·(burn-in + T)
    steps (marked "~"); it runs completely where that estimate is under ``--full-budget`` s.
(c) **bare cost**: only the arithmetic no method avoids, per step B products of an H×H by an
    H×K matrix plus the batched QR of the B results, two ways:
    - *shared*: one H×H matrix for all probes, multiplied as one GEMM by the B·K columns side
      by side (what the Elman step Jacobian diag(tanh') W allows: the diagonal scaling is
      O(HK)); the target is measured against this one;
    - *distinct*: ``torch.bmm`` with a distinct random (B, H, H) J per step from a pool of 4,
      so they do not sit in cache (what a general Jacobian needs).

Correctness: where (b) ran completely, its exponents and those of (a) must agree to 1e-9
(asserted); the hot path and the whole call must agree with each other too.

Targets reported: research / rnngrad ≥ 50× and rnngrad / bare ≤ 1.5× at H = 1024, K = 64.

**Mean field** (``--mean-field-sizes``, default N = 500, 2000): x_(t+1) = tanh(g W x_t) with
W_ij ~ N(0, 1/N), driven only by a kick at t = 1, ``--networks`` networks (seeds) per (N, g),
B = 2 kicks each, λ_1 alone (k = 1) over 5000 steps after 1000 of burn-in. Compared with
λ_1 = ½ ln(g² ∫ sech⁴(√q* z) Dz), q* = g² ∫ tanh²(√q* z) Dz (``tests/oracle.py``), within
0.01 for g = 1.5, 2, 3 (the mean over networks); for g = 0.5, 0.9 without input the state
stays at 0, where J = gW, and λ_1 must equal ln(g ρ(W)) to 1e-3 (each network).

``--quick`` is a smoke test (H = 32, 64, K = 4, 8, N = 200, one network). Timings on a shared
2-core machine are noisy: best of ``--repeats`` runs for (a) and (c).

    python benchmarks/bench_lyapunov.py                 # writes benchmarks/results_lyapunov.md
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

import rnngrad
from rnngrad.cells.base import cell_weights
from rnngrad.cells.detection import find_recurrences
from rnngrad.cells.stack import stream_recurrence
from rnngrad.io import from_state_dict
from rnngrad.lyapunov import LyapunovOptions, lyapunov
from rnngrad.lyapunov.qr import initial_basis, qr_exponents
from rnngrad.probes import ProbeSpec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from oracle import mean_field_lambda_1  # noqa: E402  (the tests' independent reference)

INPUT_SIZE = 16
BATCH = 4
GAIN = 1.5
TOLERANCE = 1e-9


# --- the model and the probe ---------------------------------------------------------------------


def make_model(size: int, seed: int) -> nn.RNN:
    torch.manual_seed(seed * 100003 + size)
    rnn = nn.RNN(INPUT_SIZE, size, batch_first=True, nonlinearity="tanh").double()
    with torch.no_grad():
        rnn.weight_hh_l0.copy_(GAIN * torch.randn(size, size, dtype=torch.float64)
                               / math.sqrt(size))
    return rnn.eval()


def make_inputs(steps: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((BATCH, steps, INPUT_SIZE))


# --- (a) rnngrad ---------------------------------------------------------------------------------


def whole_call(state: dict, inputs_path: str, k: int, burn_in: int) -> np.ndarray:
    report = lyapunov(state, LyapunovOptions(k=k, probe=ProbeSpec(inputs=inputs_path,
                                                                   burn_in=burn_in)))
    return np.array(report.recurrences[0].exponents, dtype=np.float64)


def hot_path(state: dict, inputs: np.ndarray, k: int, burn_in: int) -> np.ndarray:
    """Per-probe exponents (B, K) in the QR's column order, from the stream and the QR alone."""
    bundle = from_state_dict(state)
    (rec,) = find_recurrences(bundle)
    weights = cell_weights(bundle, rec)
    x = torch.from_numpy(inputs)
    with torch.no_grad():
        raw = qr_exponents(rec, weights, stream_recurrence(rec, weights, x), batch=BATCH,
                           burn_in=burn_in, window=inputs.shape[1] - burn_in,
                           frame=initial_basis(rec.state_size, k, 0), blocks=20)
    return raw.totals / raw.steps


def sorted_mean(per_probe: np.ndarray) -> np.ndarray:
    """The mean over the probes, descending: what the report lists."""
    return -np.sort(-per_probe.mean(axis=0))


# --- (b) the research way ------------------------------------------------------------------------


def research_way(rnn: nn.RNN, inputs: np.ndarray, k: int, burn_in: int, *, probes: int,
                 steps: int | None = None) -> tuple[np.ndarray, int]:
    """Per-probe exponents (probes, K) in the QR's column order by autograd Jacobians and QR;
    with ``steps`` only the first steps are run (for timing) and the exponents are
    meaningless. Returns them and the number of Jacobians computed."""
    w_ih, w_hh = rnn.weight_ih_l0.detach(), rnn.weight_hh_l0.detach()
    bias = (rnn.bias_ih_l0 + rnn.bias_hh_l0).detach()
    frame = initial_basis(w_hh.shape[0], k, 0)
    length = inputs.shape[1] if steps is None else steps
    out, count = [], 0
    for b in range(probes):
        h = torch.zeros(w_hh.shape[0], dtype=torch.float64)
        q, total = frame.clone(), torch.zeros(k, dtype=torch.float64)
        for t in range(length):
            x = torch.from_numpy(inputs[b, t])

            def step(state, x=x):
                return torch.tanh(w_ih @ x + bias + w_hh @ state)

            jac = torch.autograd.functional.jacobian(step, h)
            count += 1
            q, r = torch.linalg.qr(jac @ q)
            h = step(h).detach()
            if t >= burn_in:
                total += torch.log(torch.abs(torch.diagonal(r)))
        out.append((total / max(length - burn_in, 1)).numpy())
    return np.array(out), count


# --- (c) the bare cost ---------------------------------------------------------------------------


def bare(size: int, k: int, steps: int, seed: int, *, shared: bool) -> float:
    gen = torch.Generator().manual_seed(seed)
    pool = [torch.randn(*(() if shared else (BATCH,)), size, size, generator=gen,
                        dtype=torch.float64) / math.sqrt(size) for _ in range(1 if shared else 4)]
    q = initial_basis(size, k, 0).expand(BATCH, size, k).clone()
    total = torch.zeros(BATCH, k, dtype=torch.float64)
    start = time.perf_counter()
    for t in range(steps):
        if shared:  # (H, H) @ (H, B·K), as rnngrad's cells.base.times does
            columns = q.transpose(0, 1).reshape(size, BATCH * k)
            z = (pool[0] @ columns).reshape(size, BATCH, k).transpose(0, 1)
        else:
            z = torch.bmm(pool[t % len(pool)], q)
        q, r = torch.linalg.qr(z)
        total += r.diagonal(dim1=-2, dim2=-1).abs().log()
    return time.perf_counter() - start


# --- the speed table -----------------------------------------------------------------------------


@dataclass
class SpeedRow:
    size: int
    k: int
    whole: float = math.inf
    hot: float = math.inf
    bare: float = math.inf
    bare_distinct: float = math.inf
    research: float = math.nan
    research_extrapolated: bool = True
    research_note: str = ""
    lambda_1: float = math.nan
    checks: list[str] = field(default_factory=list)


def best_of(repeats: int, budget: float, run) -> tuple[float, object]:
    best, value, spent = math.inf, None, 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        value = run()
        elapsed = time.perf_counter() - start
        best, spent = min(best, elapsed), spent + elapsed
        if spent > budget:
            break
    return best, value


def speed_row(size: int, k: int, args: argparse.Namespace, folder: Path) -> SpeedRow:
    rnn = make_model(size, args.seed)
    state = {f"rnn.{name}": value.detach() for name, value in rnn.state_dict().items()}
    inputs = make_inputs(args.burn_in + args.steps, args.seed)
    path = folder / f"inputs_{size}.npy"
    np.save(path, inputs)
    row = SpeedRow(size=size, k=k)
    steps = BATCH * inputs.shape[1]
    with torch.no_grad():
        row.whole, whole = best_of(args.repeats, args.budget,
                                   lambda: whole_call(state, str(path), k, args.burn_in))
        row.hot, hot = best_of(args.repeats, args.budget,
                               lambda: hot_path(state, inputs, k, args.burn_in))
        row.bare, _ = best_of(args.repeats, args.budget,
                              lambda: bare(size, k, inputs.shape[1], args.seed, shared=True))
        row.bare_distinct, _ = best_of(args.repeats, args.budget, lambda: bare(
            size, k, inputs.shape[1], args.seed, shared=False))
    row.lambda_1 = float(whole[0])
    row.checks.append(_agreement("whole call vs hot path", whole, sorted_mean(hot)))
    sample = min(args.research_steps, inputs.shape[1])
    start = time.perf_counter()
    research_way(rnn, inputs, k, args.burn_in, probes=1, steps=sample)
    per_step = (time.perf_counter() - start) / sample
    estimate = per_step * steps
    if estimate <= args.full_budget:
        start = time.perf_counter()
        research, count = research_way(rnn, inputs, k, args.burn_in, probes=BATCH)
        row.research, row.research_extrapolated = time.perf_counter() - start, False
        row.research_note = f"timed completely ({count} jacobians)"
        row.checks.append(_agreement("hot path vs research (per probe)", hot, research))
        row.checks.append(_agreement("whole call vs research (mean)", whole,
                                     sorted_mean(research)))
    else:
        row.research = estimate
        row.research_note = (f"~extrapolated from {sample} timed jacobians of probe 0 "
                             f"({per_step:.3g} s each) to {steps} (B × steps)")
    return row


def _agreement(name: str, a: np.ndarray, b: np.ndarray) -> str:
    error = float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
    assert error <= TOLERANCE, f"{name}: exponents differ by {error:.3g}"
    return f"{name}: max |Δλ| = {error:.2g}"


# --- mean field ----------------------------------------------------------------------------------


def tanh_network(size: int, gain: float, seed: int) -> tuple[dict, np.ndarray]:
    rng = np.random.default_rng([seed, size])
    w = gain * rng.standard_normal((size, size)) / math.sqrt(size)
    zeros = torch.zeros(size, dtype=torch.float64)
    return ({"rnn.weight_hh_l0": torch.tensor(w), "rnn.bias_ih_l0": zeros,
             "rnn.weight_ih_l0": torch.tensor(rng.standard_normal((size, 2))),
             "rnn.bias_hh_l0": zeros}, w)


def kick(folder: Path, length: int) -> str:
    x = np.zeros((2, length, 2))
    x[:, 0] = np.random.default_rng(1).standard_normal((2, 2))
    np.save(folder / "kick.npy", x)
    return str(folder / "kick.npy")


def mean_field_rows(args: argparse.Namespace, folder: Path) -> list[list[str]]:
    rows = []
    probe = kick(folder, args.mf_burn_in + args.mf_steps)
    for size in args.mean_field_sizes:
        for gain in (1.5, 2.0, 3.0):
            predicted = mean_field_lambda_1(gain)[1]
            values = []
            for seed in range(args.networks):
                state, _ = tanh_network(size, gain, seed)
                report = rnngrad.lyapunov(state, k=1, inputs=probe, burn_in=args.mf_burn_in)
                values.append(report.recurrences[0].exponents[0])
            mean = float(np.mean(values))
            spread = float(np.std(values, ddof=1) / math.sqrt(len(values))) if len(values) > 1 \
                else math.nan
            ok = abs(mean - predicted) <= 0.01
            rows.append([str(size), f"{gain:g}", f"{predicted:.4f}",
                         ", ".join(f"{v:.4f}" for v in values),
                         f"{mean:.4f} ± {spread:.4f}", f"{mean - predicted:+.4f}",
                         "yes" if ok else "NO"])
        for gain in (0.5, 0.9):
            state, w = tanh_network(size, gain, 0)
            report = rnngrad.lyapunov(state, k=1, steps=args.mf_steps, burn_in=args.mf_burn_in,
                                      batch=2, input_scale=0.0)
            value = report.recurrences[0].exponents[0]
            exact = math.log(float(np.max(np.abs(np.linalg.eigvals(w)))))
            rows.append([str(size), f"{gain:g}", f"ln(gρ(W)) = {exact:.5f}", f"{value:.5f}",
                         "", f"{value - exact:+.1e}", "yes" if abs(value - exact) <= 1e-3
                         else "NO"])
    return rows


# --- report --------------------------------------------------------------------------------------


def markdown(speed: list[SpeedRow], field_rows: list[list[str]], args) -> str:
    load = os.getloadavg()
    lines = ["# rnngrad Lyapunov benchmark", "",
             f"- date: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}",
             f"- machine: {platform.machine()}, nproc {os.cpu_count()}; one torch thread for all",
             f"- python {platform.python_version()}, numpy {np.__version__}, torch "
             f"{torch.__version__}, rnngrad {rnngrad.__version__}",
             f"- load average at start (1/5/15 min): {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}",
             f"- tanh nn.RNN(I={INPUT_SIZE}, H) float64, W_hh = {GAIN} W, W_ij ~ N(0, 1/H); "
             f"B = {BATCH} probes of {args.burn_in} + {args.steps} N(0,1) steps from h_0 = 0",
             f"- (a), (c): best of ≤{args.repeats} runs; (b): one run", "",
             "| H | K | (a) whole call [s] | (a) hot path [s] | (b) research way [s] | "
             "(c) bare, shared [s] | (c) bare, distinct [s] | research/whole | research/hot | "
             "whole/bare | hot/bare | λ_1 |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in speed:
        mark = "~" if row.research_extrapolated else ""
        lines.append(f"| {row.size} | {row.k} | {row.whole:.3g} | {row.hot:.3g} | "
                     f"{mark}{row.research:.4g} | {row.bare:.3g} | {row.bare_distinct:.3g} | "
                     f"{mark}{row.research / row.whole:.0f}× | "
                     f"{mark}{row.research / row.hot:.0f}× | "
                     f"{row.whole / row.bare:.2f}× | {row.hot / row.bare:.2f}× | "
                     f"{row.lambda_1:+.4f} |")
    lines += ["", "whole/bare and hot/bare are against the shared bare cost. ~ extrapolated.", "",
              "How (b) was obtained, and the agreement checks (tolerance 1e-9):", ""]
    for row in speed:
        lines.append(f"- H={row.size}, K={row.k}: {row.research_note}; "
                     + "; ".join(row.checks))
    lines += ["", "## Mean field: λ_1 of x_(t+1) = tanh(g W x_t)", "",
              f"{args.networks} network(s) per N and g (seeds 0..), 2 kicks each, "
              f"{args.mf_burn_in} + {args.mf_steps} steps, k = 1. Pass: |mean − mean field| ≤ "
              "0.01 (g > 1); |λ_1 − ln(gρ(W))| ≤ 1e-3 (g < 1, no input: J = gW at x = 0).", "",
              "| N | g | mean field λ_1 | rnngrad λ_1 per network | mean ± s.e. | difference "
              "| pass |", "|---:|---:|---:|---|---:|---:|:---:|"]
    lines += ["| " + " | ".join(row) + " |" for row in field_rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")],
                        default=[256, 1024])
    parser.add_argument("--ks", type=lambda s: [int(x) for x in s.split(",")], default=[10, 64])
    parser.add_argument("--steps", type=int, default=250, help="steps averaged (speed)")
    parser.add_argument("--burn-in", type=int, default=50, help="burn-in steps (speed)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--budget", type=float, default=60.0, help="stop repeating after s")
    parser.add_argument("--research-steps", type=int, default=6)
    parser.add_argument("--full-budget", type=float, default=120.0)
    parser.add_argument("--mean-field-sizes", type=lambda s: [int(x) for x in s.split(",")],
                        default=[500, 2000])
    parser.add_argument("--networks", type=int, default=4)
    parser.add_argument("--mf-steps", type=int, default=5000)
    parser.add_argument("--mf-burn-in", type=int, default=1000)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-mean-field", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a smoke test")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results_lyapunov.md")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.ks, args.steps, args.burn_in, args.repeats = [32, 64], [4, 8], 40, 10, 1
        args.mean_field_sizes, args.networks, args.mf_steps, args.mf_burn_in = [200], 1, 500, 100
    torch.set_num_threads(1)
    speed: list[SpeedRow] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if not args.skip_speed:
            for size in args.sizes:
                for k in args.ks:
                    speed.append(speed_row(size, k, args, folder))
                    print(f"H={size} K={k}: whole {speed[-1].whole:.3g}s hot {speed[-1].hot:.3g}s "
                          f"bare {speed[-1].bare:.3g}s research {speed[-1].research:.4g}s",
                          flush=True)
        field_rows = [] if args.skip_mean_field else mean_field_rows(args, folder)
    text = markdown(speed, field_rows, args)
    print(text)
    if not args.quick:
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
