"""Benchmark: ``rnngrad surface`` vs. the dense Hessian the plain way, and one Hessian-vector
product vs. one gradient.

Setup, for each H in ``--sizes`` (default 32 and 256): a seeded tanh ``nn.RNN(I=16, H)`` in
float64 with W_hh rescaled to spectral radius ``--radius`` (1.0, the edge), and rnngrad's
default probe (B = 16 seeded N(0, 1) sequences of 50 + 100 steps, zero initial state) with the
default ``readout`` loss. θ is every tensor of the RNN (n = H² + 16H + 2H values: 70,144 at
H = 256). Timed (``time.perf_counter``, best of ``--repeats``; a busy machine adds noise, so read
ratios, not last digits):

(a) **one gradient** g = ∂E/∂θ through rnngrad's own equations (``rnngrad.surface.loss_function``
    and ``torch.autograd.grad``), batched over the probes;
(b) **one Hessian-vector product** three ways: as ``surface`` does it, by double backward
    through g's kept graph (per product, once g is built with ``create_graph``: what each
    Lanczos step costs); a fresh double backward (gradient with graph + one product); and
    forward-over-reverse, ``torch.func.jvp`` over ``torch.func.grad``. Target: (b) ≤ 3 × (a);
(c) the **whole** ``rnngrad.surface(path)`` call with its defaults (the curvature by Lanczos,
    five horizons of the growth table each with its own Lanczos, the slice and wall, the step,
    two SGD paths of 10 steps), and its phases;
(d) **the plain way**: the dense Hessian ``torch.autograd.functional.hessian(E, θ)`` of the
    same loss through PyTorch's own ``nn.RNN`` (``torch.func.functional_call``), then
    ``numpy.linalg.eigvalsh``. Run completely where n ≤ ``--dense-max`` (5,000): the extreme
    eigenvalues must agree with rnngrad's to 1e-6 relative (asserted). Above, it cannot run
    (n² float64 values: 39 GB at H = 256), so it is *extrapolated*: ``hessian`` builds one row
    per backward pass through the gradient's graph, so n × the measured time of a row (timed on
    ``--rows`` rows), plus ``eigvalsh`` timed on a 2,000 × 2,000 symmetric matrix and scaled
    by (n/2000)³. Extrapolated figures are marked "~".

    python benchmarks/bench_surface.py               # H = 32, 256; Markdown on stdout
    python benchmarks/bench_surface.py --quick       # smoke run (H = 16, 48, short probe)
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn
from torch.func import functional_call, grad, jvp

import rnngrad

INPUT_SIZE = 16
TOLERANCE = 1e-6


def make_model(size: int, radius: float, seed: int = 0) -> nn.RNN:
    torch.manual_seed(seed * 100003 + size)
    rnn = nn.RNN(INPUT_SIZE, size, batch_first=True).double()
    with torch.no_grad():
        w = rnn.weight_hh_l0
        w *= radius / float(np.max(np.abs(np.linalg.eigvals(w.numpy()))))
    return rnn


def best(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def gradient_and_products(energy, repeats: int) -> dict[str, float]:
    """(a) and (b): one gradient, and a Hessian-vector product three ways."""
    theta = energy.theta.detach()
    vector = torch.randn(theta.shape, dtype=theta.dtype, generator=torch.Generator().manual_seed(1))

    def gradient() -> None:
        leaf = theta.clone().requires_grad_(True)
        torch.autograd.grad(energy(leaf), leaf)

    leaf = theta.clone().requires_grad_(True)
    (kept,) = torch.autograd.grad(energy(leaf), leaf, create_graph=True)

    def retained() -> None:
        torch.autograd.grad(kept, leaf, vector, retain_graph=True)

    def fresh() -> None:
        own = theta.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(energy(own), own, create_graph=True)
        torch.autograd.grad(g, own, vector)

    def forward_over_reverse() -> None:
        jvp(grad(energy), (theta,), (vector,))

    gradient()  # warm-ups (forward mode loads its decompositions on first use)
    retained()
    forward_over_reverse()
    return {"gradient": best(gradient, repeats), "retained": best(retained, repeats),
            "fresh": best(fresh, repeats),
            "forward_over_reverse": best(forward_over_reverse, max(1, repeats - 1))}


def plain_energy(rnn: nn.RNN, inputs: torch.Tensor, readouts: torch.Tensor):
    """E(θ) through PyTorch's own nn.RNN: the independent loss the plain way differentiates."""
    names = ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    params = {name: getattr(rnn, name).detach() for name in names}
    shapes = [params[name].shape for name in names]
    sizes = [params[name].numel() for name in names]

    def energy(theta: torch.Tensor) -> torch.Tensor:
        current = {name: piece.reshape(shape)
                   for name, piece, shape in zip(names, theta.split(sizes), shapes)}
        out = functional_call(rnn, current, (inputs,))[0][:, -1]
        return (out * readouts).sum(-1).mean()

    return energy, torch.cat([params[name].reshape(-1) for name in names])


def plain_dense(energy, theta: torch.Tensor) -> tuple[float, np.ndarray]:
    """(d) run completely: the dense Hessian and all its eigenvalues."""
    start = time.perf_counter()
    hessian = torch.autograd.functional.hessian(energy, theta)
    values = np.linalg.eigvalsh(hessian.numpy())
    return time.perf_counter() - start, values


def plain_extrapolated(energy, theta: torch.Tensor, rows: int) -> tuple[float, float, float]:
    """(d) extrapolated: seconds per Hessian row, eigvalsh at n = 2000, and the total."""
    leaf = theta.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(energy(leaf), leaf, create_graph=True)
    start = time.perf_counter()
    for index in range(rows):
        torch.autograd.grad(g[index], leaf, retain_graph=True)
    per_row = (time.perf_counter() - start) / rows
    a = np.random.default_rng(0).standard_normal((2000, 2000))
    start = time.perf_counter()
    np.linalg.eigvalsh(a + a.T)
    eig_2000 = time.perf_counter() - start
    n = theta.numel()
    return per_row, eig_2000, n * per_row + eig_2000 * (n / 2000) ** 3


def readouts_of(batch: int, width: int, seed: int = 0) -> torch.Tensor:
    """rnngrad's documented readout u_b: unit vectors from default_rng([seed, 11, b])."""
    rows = []
    for index in range(batch):
        u = np.random.default_rng([seed, 11, index]).standard_normal(width)
        rows.append(u / np.linalg.norm(u))
    return torch.as_tensor(np.stack(rows))


def run_size(size: int, args, folder: Path) -> dict:
    rnn = make_model(size, args.radius)
    path = folder / f"rnn{size}.safetensors"
    save_file({f"rnn.{k}": v.contiguous() for k, v in rnn.state_dict().items()}, str(path))
    settings = dict(batch=args.batch, steps=args.steps, burn_in=args.burn_in)
    if args.quick:
        settings["lengths"] = f"5,{args.steps + args.burn_in}"
    energy = rnngrad.surface.loss_function(str(path), **settings)
    threads = 1 if size < rnngrad.bptt.analysis.SMALL_STATE else torch.get_num_threads()
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        costs = gradient_and_products(energy, args.repeats)
        total, phases, report = whole_call_with(path, settings)
        inputs = energy.inputs
        plain, theta = plain_energy(rnn, inputs, readouts_of(inputs.shape[0], size))
        n = theta.numel()
        row = {"size": size, "n": n, **costs, "whole": total, "phases": phases,
               "report": report}
        if n <= args.dense_max:
            seconds, values = plain_dense(plain, theta)
            row.update(plain=seconds, plain_exact=True)
            _check(report, values)
        else:
            per_row, eig_2000, estimate = plain_extrapolated(plain, theta, args.rows)
            row.update(plain=estimate, plain_exact=False, per_row=per_row, eig_2000=eig_2000)
    finally:
        torch.set_num_threads(previous)
    return row


def whole_call_with(path: Path, settings: dict):
    marks: list[tuple[str, float]] = []
    start = time.perf_counter()
    report = rnngrad.surface(str(path), **settings, on_progress=lambda done, total, label:
                             marks.append((label, time.perf_counter() - start)))
    total = time.perf_counter() - start
    phases = {label: following - at for (label, at), (_, following) in zip(marks, marks[1:])}
    return total, phases, report


def _check(report, values: np.ndarray) -> None:
    c = report.curvature
    scale = max(abs(values[0]), abs(values[-1]))
    for got, want in ((c.largest_eigenvalue, values[-1]), (c.smallest_eigenvalue, values[0])):
        assert abs(got - want) <= TOLERANCE * scale, (got, want)


def markdown(rows: list[dict], args) -> str:
    lines = [f"# bench_surface ({platform.machine()}, torch {torch.__version__}, numpy "
             f"{np.__version__}, {os.cpu_count()} cores, load average "
             f"{os.getloadavg()[0]:.1f}; B = {args.batch}, T = {args.burn_in} + {args.steps}, "
             f"ρ(W_hh) = {args.radius})", "",
             "| H | n = dim θ | gradient | HVP (kept graph) | HVP fresh | HVP fwd-over-rev | "
             "kept / gradient | surface() | plain dense Hessian | plain / surface |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        mark = "" if row["plain_exact"] else "~"
        lines.append(
            f"| {row['size']} | {row['n']:,} | {row['gradient']:.3f} s | {row['retained']:.3f} s "
            f"| {row['fresh']:.3f} s | {row['forward_over_reverse']:.3f} s | "
            f"{row['retained'] / row['gradient']:.2f}× | {row['whole']:.1f} s | "
            f"{mark}{_duration(row['plain'])} | {mark}{row['plain'] / row['whole']:,.0f}× |")
    lines.append("")
    for row in rows:
        c = row["report"].curvature
        phases = ", ".join(f"{label} {seconds:.1f} s" for label, seconds in row["phases"].items())
        lines.append(f"- H = {row['size']}: λ_max = {c.largest_eigenvalue:.6g} (residual "
                     f"{c.largest_residual:.1e}), λ_min = {c.smallest_eigenvalue:.6g} (residual "
                     f"{c.smallest_residual:.1e}), {c.lanczos_steps} Lanczos steps, "
                     f"{c.products} products; phases: {phases}")
        if row["plain_exact"]:
            lines.append("  plain way run completely; extreme eigenvalues agree to 1e-6 "
                         "relative (asserted)")
        else:
            lines.append(f"  plain way extrapolated: {row['per_row']:.3f} s per Hessian row × "
                         f"{row['n']:,} rows + eigvalsh {row['eig_2000']:.2f} s at n = 2000 × "
                         f"(n/2000)³; its n × n matrix alone is "
                         f"{row['n'] ** 2 * 8 / 1024 ** 3:.2f} GiB")
    return "\n".join(lines) + "\n"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.0f} h"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 256])
    parser.add_argument("--radius", type=float, default=1.0)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--burn-in", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", type=int, default=20, help="Hessian rows timed (plain way)")
    parser.add_argument("--dense-max", type=int, default=5000)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--output", type=Path, help="also write the Markdown here")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.batch, args.steps, args.burn_in, args.repeats = [16, 48], 4, 20, 5, 2
        args.dense_max, args.rows = 1000, 5
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for size in args.sizes:
            print(f"H = {size} ...", file=sys.stderr, flush=True)
            rows.append(run_size(size, args, Path(folder)))
    text = markdown(rows, args)
    sys.stdout.write(text)
    if args.output:
        args.output.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
