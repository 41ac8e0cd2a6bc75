"""Benchmark: rnngrad's per-lag BPTT Jacobian profile vs. plain autograd and vs. the bare chain.

Setup, for each H in ``--sizes`` (default 128, 256, 512, 1024): a seeded tanh
``nn.RNN(I=16, H)`` in float64 whose W_hh is rescaled to spectral radius 1 (the edge between
vanishing and exploding), and a probe of B = 4 seeded N(0, 1) input sequences of T = 100
steps from the zero state. Wanted: the spectral norm ‖∂h_T/∂h_(T−ℓ)‖₂ for every lag
ℓ = 1..L (L = 100) and every probe. Timed, in one run:

(a) **rnngrad**, three ways:
    - *process*: ``rnngrad bptt MODEL.safetensors --inputs X.npy --lags 1..L --format json``
      as its own process, as a user runs it, minus a ``rnngrad --version`` process (the
      interpreter's start); this is issue #15's measure. Besides the per-lag norms it gives
      Frobenius and gradient norms, the exploding directions (the eigenvalues of W_hh and its
      leading left and right eigenvectors), gradient shares by lag (an autograd replay) and a
      clipping threshold (per-probe autograd gradients), and it imports torch, loads and
      hashes the files and renders the JSON;
    - *whole call*: the public ``rnngrad.bptt.bptt(state_dict, ...)`` in this process;
    - *hot path*: ``run_recurrence`` (forward pass, caches tanh') + ``sweep`` (one backward
      sweep P_(ℓ+1) = P_ℓ J_(T−ℓ), batched over probes, with a certified spectral norm at
      each lag).
(b) **plain autograd**: for each probe and each lag ℓ, ``torch.autograd.functional.jacobian``
    of the map h_(T−ℓ) ↦ h_T through the same ``nn.RNN`` run over x_(T−ℓ+1..T), started from
    the true h_(T−ℓ), then ``torch.linalg.matrix_norm(J, 2)``; twice: with its defaults (one
    backward pass per output unit) and with ``vectorize=True`` (one batched backward pass
    through ``vmap``, what a competent user writes). It costs O(H³·L²) in all, so:
      * it is timed completely (all lags, all probes) for H ≤ ``--full-max`` (128), and for
        larger H when the estimate from the sample below is under ``--full-budget`` s (180);
      * otherwise only a sample of lags (1, L/4, L/2, 3L/4, L) is timed, on every probe for
        H ≤ 512 and on the first ``--large-probes`` (1) probe(s) above; the total is then
        *extrapolated*: a least-squares fit t(ℓ) = a + b·ℓ of the measured per-(probe, lag)
        times is summed over ℓ = 1..L and multiplied by B. Extrapolated totals and the
        ratios built on them are marked with "~".
(c) **bare chain**: only the arithmetic no method can avoid, B·L products of H×H float64
    matrices, ``P = torch.bmm(P, J)`` over L steps batched over B, with the J precomputed
    random matrices (a pool of at most ``--pool`` distinct (B, H, H) tensors, cycled, so they
    do not sit in cache), in this process (no import, no loading).

Correctness: the spectral norms of (a) and (b) must agree to a relative 1e-6 wherever both were
computed; the whole call, the hot path and the process must agree with each other. Asserted.

Targets (issue #15): process / bare ≤ 1.5× at H = 512 and ≤ 1.2× at H = 1024. A process that
imports torch cannot beat (import torch + bare) / bare, also reported.

Threads: rnngrad's ``bptt`` runs single-threaded below ``rnngrad.bptt.analysis.SMALL_STATE``
(128) and with torch's default otherwise; (a) hot path, (b) and (c) run under the same setting
so the comparison is like for like; ``--threads N`` sets N everywhere (one is the stable
choice on a busy machine, where every 2-thread small operation waits for a core). Timing:
``time.perf_counter``; (a) and (c) are best of up to ``--repeats`` interleaved runs (repeating
stops once a size's runs took ``--budget`` s); (b) is timed once. ``--profile`` adds a
cProfile of one whole call per size. ``--quick`` is a smoke test (H = 32, 64, L = T = 20,
B = 2, plain way sampled and extrapolated at H = 64).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import importlib
import io
import os
import platform
import pstats
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

import rnngrad
from rnngrad.bptt import BpttOptions, bptt
from rnngrad.cells.base import cell_weights
from rnngrad.cells.detection import find_recurrences
from rnngrad.cells.stack import run_recurrence
from rnngrad.bptt.sweep import sweep
from rnngrad.io import from_state_dict
from rnngrad.probes import ProbeSpec

# the module, not the function of the same name that ``rnngrad`` re-exports
bptt_module = importlib.import_module("rnngrad.bptt.analysis")

INPUT_SIZE = 16
TOLERANCE = 1e-6


# --- the model and the probe ------------------------------------------------------------------


def make_model(size: int, seed: int) -> nn.RNN:
    torch.manual_seed(seed * 100003 + size)
    rnn = nn.RNN(INPUT_SIZE, size, batch_first=True, nonlinearity="tanh").double()
    with torch.no_grad():
        w = rnn.weight_hh_l0
        w /= float(np.max(np.abs(np.linalg.eigvals(w.numpy()))))
    return rnn.eval()


def make_inputs(batch: int, steps: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, steps, INPUT_SIZE, generator=generator, dtype=torch.float64)


@contextlib.contextmanager
def torch_threads(count: int):
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# --- (a) rnngrad ------------------------------------------------------------------------------


@contextlib.contextmanager
def hot_path_clock():
    """Time spent inside ``bptt`` in its hot path: the no-grad forward pass and the sweep.

    Wraps the names ``rnngrad.bptt`` calls (``run_stack``, ``sweep``) for the duration, without
    touching rnngrad's files; the autograd forward passes of the clipping step (grad enabled)
    are not counted. The last sweep's per-probe ``log10_norm`` (B, L) is kept as ``profile``.
    """
    spent = {"forward": 0.0, "sweep": 0.0, "profile": None}
    original_stack, original_sweep = bptt_module.run_stack, bptt_module.sweep

    def timed_stack(*args, **kwargs):
        start = time.perf_counter()
        result = original_stack(*args, **kwargs)
        if not torch.is_grad_enabled():
            spent["forward"] += time.perf_counter() - start
        return result

    def timed_sweep(*args, **kwargs):
        start = time.perf_counter()
        result = original_sweep(*args, **kwargs)
        spent["sweep"] += time.perf_counter() - start
        spent["profile"] = result.log10_norm.copy()
        return result

    bptt_module.run_stack, bptt_module.sweep = timed_stack, timed_sweep
    try:
        yield spent
    finally:
        bptt_module.run_stack, bptt_module.sweep = original_stack, original_sweep


def whole_call(state_dict, inputs_path: str, lags: int, spent: dict | None = None) -> np.ndarray:
    """Mean over probes of log10 ‖P_ℓ‖₂, ℓ = 1..lags, from the public bptt call.

    ``spent``, when given, receives the seconds of the hot path inside the call.
    """
    options = BpttOptions(lags=f"1..{lags}", probe=ProbeSpec(inputs=inputs_path))
    with hot_path_clock() as clock:
        report = bptt(state_dict, options)
    if spent is not None:
        spent.update(clock)
    rows = report.recurrences[0].rows
    assert [row.lag for row in rows] == list(range(1, lags + 1)), "unexpected lags in report"
    return np.array([row.log10_norm for row in rows])


def hot_path(rec, weights, inputs: torch.Tensor, lags: int, readout: torch.Tensor) -> np.ndarray:
    """Per-probe log10 ‖P_ℓ‖₂ (B, lags) from run_recurrence + sweep alone."""
    with torch.no_grad():
        trace = run_recurrence(rec, weights, inputs)
        profile = sweep(rec, weights, trace, tuple(range(1, lags + 1)),
                        block=slice(0, rec.state_size), readout=readout)
    return profile.log10_norm


# --- (c) bare chain ---------------------------------------------------------------------------


def make_pool(batch: int, size: int, lags: int, pool: int, seed: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed + 17)
    return [torch.randn(batch, size, size, generator=generator, dtype=torch.float64)
            / np.sqrt(size) for _ in range(min(lags, pool))]


def bare_chain(pool: list[torch.Tensor], lags: int) -> torch.Tensor:
    batch, size, _ = pool[0].shape
    product = torch.eye(size, dtype=torch.float64).expand(batch, size, size).clone()
    for step in range(lags):
        product = torch.bmm(product, pool[step % len(pool)])
    return product


# --- (b) plain autograd -----------------------------------------------------------------------


@dataclass
class PlainResult:
    norms: dict = field(default_factory=dict)   # (probe, lag) -> ‖J‖₂
    times: dict = field(default_factory=dict)   # (probe, lag) -> seconds
    extrapolated: bool = False
    total: float = 0.0
    fit: tuple[float, float] | None = None
    probes_sampled: int = 0
    lags_sampled: tuple[int, ...] = ()


def plain_one(rnn: nn.RNN, inputs: torch.Tensor, states: torch.Tensor, probe: int,
              lag: int, vectorize: bool = False) -> float:
    """‖∂h_T/∂h_(T−lag)‖₂ for one probe, the way a user would compute it with autograd."""
    steps, size = inputs.shape[1], rnn.hidden_size
    start = states[probe, steps - lag - 1] if lag < steps else torch.zeros(size,
                                                                          dtype=torch.float64)
    window = inputs[probe:probe + 1, steps - lag:]

    def last_state(h0: torch.Tensor) -> torch.Tensor:
        return rnn(window, h0.view(1, 1, size))[1].view(size)

    jac = torch.autograd.functional.jacobian(last_state, start.clone(), vectorize=vectorize)
    return float(torch.linalg.matrix_norm(jac, ord=2))


def plain_way(rnn, inputs, lags: int, *, full: bool, sample_lags: tuple[int, ...],
              sample_probes: int, full_budget: float, log, vectorize: bool = False) -> PlainResult:
    batch = inputs.shape[0]
    with torch.no_grad():
        states, _ = rnn(inputs)  # (B, T, H): states[:, t-1] = h_t
    result = PlainResult()

    def run(probe: int, lag: int) -> None:
        if (probe, lag) in result.times:
            return
        start = time.perf_counter()
        result.norms[probe, lag] = plain_one(rnn, inputs, states, probe, lag, vectorize)
        result.times[probe, lag] = time.perf_counter() - start

    if not full:
        for probe in range(sample_probes):
            for lag in sample_lags:
                run(probe, lag)
        ells = np.array([lag for _, lag in result.times], dtype=float)
        secs = np.array(list(result.times.values()))
        slope, intercept = np.polyfit(ells, secs, 1)
        estimate = batch * sum(intercept + slope * lag for lag in range(1, lags + 1))
        result.fit = (float(intercept), float(slope))
        log(f"plain way{' (vectorize=True)' if vectorize else ''} sample: t(ℓ) ≈ "
            f"{intercept:.4f} + {slope:.5f}·ℓ s → full estimate {estimate:.1f} s")
        if estimate - sum(secs) < full_budget:
            full = True
        else:
            result.extrapolated, result.total = True, float(estimate)
            result.probes_sampled, result.lags_sampled = sample_probes, tuple(sample_lags)
    if full:
        for probe in range(batch):
            for lag in range(1, lags + 1):
                run(probe, lag)
        result.total = float(sum(result.times.values()))
        result.probes_sampled, result.lags_sampled = batch, tuple(range(1, lags + 1))
    return result


# --- the benchmark ----------------------------------------------------------------------------


def rel_from_logs(log_a: float, log_b: float) -> float:
    return abs(10.0 ** (log_a - log_b) - 1.0)


def time_rnngrad(bare, hot, whole, repeats: int, budget: float, standalone_max: float):
    """Interleaved best-of timing of (c) bare, (a) whole call and (a) hot path.

    Every whole call also reports the seconds of its own hot path (``hot_path_clock``) and the
    per-probe profile it computed. The standalone hot path is timed only while a whole call
    takes under ``standalone_max`` s; above that the hot path's time is the one measured
    inside the whole call. Repeating stops once the runs took ``budget`` s.
    """
    times = {"bare": [], "whole": [], "hot": [], "hot_in_whole": []}
    results, spent = {}, 0.0
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        bare()
        times["bare"].append(time.perf_counter() - start)
        inside: dict = {}
        start = time.perf_counter()
        results["whole"] = whole(inside)
        times["whole"].append(time.perf_counter() - start)
        times["hot_in_whole"].append(inside["forward"] + inside["sweep"])
        results["hot_in_whole"] = inside["profile"]
        if times["whole"][-1] < standalone_max:
            start = time.perf_counter()
            results["hot"] = hot()
            times["hot"].append(time.perf_counter() - start)
        spent += sum(t[-1] for t in times.values() if t)
        if spent > budget:
            break
    best = {name: min(t) for name, t in times.items() if t}
    runs = {name: len(t) for name, t in times.items()}
    return best, runs, results


def profile_whole(state_dict, inputs_path: str, lags: int, top: int = 22) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    whole_call(state_dict, inputs_path, lags)
    profiler.disable()
    buffer = io.StringIO()
    stats = pstats.Stats(profiler, stream=buffer).strip_dirs().sort_stats("tottime")
    stats.print_stats(top)
    return buffer.getvalue()


def fmt(seconds: float, approx: bool = False) -> str:
    text = f"{seconds:.3f}" if seconds < 10 else f"{seconds:.1f}"
    return f"~{text}" if approx else text


def ratio(a: float, b: float, approx: bool = False) -> str:
    value = a / b
    text = f"{value:.0f}×" if value >= 100 else f"{value:.2f}×" if value < 10 else f"{value:.1f}×"
    return f"~{text}" if approx else text


def rnngrad_command() -> list[str]:
    import shutil

    found = shutil.which("rnngrad", path=str(Path(sys.executable).parent))
    if not found:
        sys.exit("install rnngrad first: pip install -e .")
    return [found]


def best_process(argv: list[str], repeats: int) -> tuple[float, str]:
    """Best wall time of ``repeats`` runs of a whole process, and its last stdout."""
    import subprocess

    best, out = float("inf"), ""
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        result = subprocess.run(argv, capture_output=True, text=True)
        best = min(best, time.perf_counter() - start)
        if result.returncode not in (0, 1):
            raise RuntimeError(f"{' '.join(argv)} failed: {result.stderr.strip()}")
        out = result.stdout
    return best, out


def process_logs(stdout: str) -> np.ndarray:
    import json

    rows = json.loads(stdout)["recurrences"][0]["lags"]
    return np.array([row["log10_norm"] for row in rows])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=None,
                        help="comma-separated H values (default 128,256,512,1024)")
    parser.add_argument("--lags", type=int, default=None, help="L, lags 1..L (default 100)")
    parser.add_argument("--steps", type=int, default=None, help="T, probe length (default 100)")
    parser.add_argument("--batch", type=int, default=None, help="B, probes (default 4)")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    parser.add_argument("--budget", type=float, default=40.0,
                        help="stop repeating (a)/(c) for a size once its runs took this many s")
    parser.add_argument("--full-max", type=int, default=None,
                        help="time the plain way completely up to this H (default 128)")
    parser.add_argument("--full-budget", type=float, default=None,
                        help="...and above it when the rest is estimated under this many s "
                             "(default 180)")
    parser.add_argument("--large-probes", type=int, default=1,
                        help="probes sampled by the plain way above H = 512")
    parser.add_argument("--standalone-max", type=float, default=120.0,
                        help="time the hot path on its own only while a whole call takes "
                             "less than this many s (else use its time inside the whole call)")
    parser.add_argument("--pool", type=int, default=8, help="distinct J tensors of the bare chain")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-plain", action="store_true", help="skip the plain autograd ways")
    parser.add_argument("--threads", type=int, default=None,
                        help="OMP/MKL/OpenBLAS threads here and in every process (default: as "
                             "they are; one is the stable choice on a busy machine)")
    parser.add_argument("--profile", action="store_true", help="cProfile one whole call per size")
    parser.add_argument("--quick", action="store_true", help="small and fast: a smoke test")
    args = parser.parse_args(argv)
    quick = args.quick
    sizes = args.sizes or ([32, 64] if quick else [128, 256, 512, 1024])
    lags = args.lags or (20 if quick else 100)
    steps = args.steps or (20 if quick else 100)
    batch = args.batch or (2 if quick else 4)
    full_max = args.full_max if args.full_max is not None else (32 if quick else 128)
    full_budget = args.full_budget if args.full_budget is not None else (0.0 if quick else 180.0)
    repeats = min(args.repeats, 2) if quick else args.repeats
    if lags > steps:
        parser.error(f"--lags {lags} exceeds --steps {steps}")
    sample_lags = tuple(sorted({1, round(lags / 4), round(lags / 2), round(3 * lags / 4), lags}))
    if args.threads:
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[name] = str(args.threads)  # the processes below inherit them
        torch.set_num_threads(args.threads)
    default_threads = torch.get_num_threads()
    command = rnngrad_command()

    load = os.getloadavg()
    lines = [
        f"# rnngrad BPTT benchmark{' (--quick)' if quick else ''}",
        "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
        f"- machine: {platform.machine()}, nproc {os.cpu_count()}",
        f"- python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}, "
        f"rnngrad {rnngrad.__version__}",
        f"- load average at start (1/5/15 min): {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}",
        f"- torch default threads {default_threads}; rnngrad.bptt runs 1 thread below H = "
        f"{bptt_module.SMALL_STATE}, the default above, and so do (a) hot path, (b), (c) here",
        f"- tanh nn.RNN(I={INPUT_SIZE}, H) float64, ρ(W_hh) = 1; B = {batch} probes of T = {steps} "
        f"N(0,1) steps from h_0 = 0; lags 1..{lags}; seed {args.seed}",
        f"- (a), (c): best of ≤{repeats} interleaved runs; (b): one run; plain way sampled at "
        f"lags {', '.join(map(str, sample_lags))} where not complete",
        "",
    ]
    print("\n".join(lines), flush=True)

    def log(message: str) -> None:
        print(f"<!-- {message} -->", flush=True)

    floor, _ = best_process([sys.executable, "-c", "pass"], 5)
    torch_import = best_process([sys.executable, "-c", "import torch"], 3)[0] - floor
    version, _ = best_process(command + ["--version"], 5)
    log(f"python -c pass {floor:.3f}s, import torch +{torch_import:.3f}s, rnngrad --version "
        f"{version:.3f}s")
    rows, checks, profiles = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            load_at_start = os.getloadavg()[0]
            threads = 1 if size < bptt_module.SMALL_STATE else default_threads
            rnn = make_model(size, args.seed)
            inputs = make_inputs(batch, steps, args.seed)
            path = str(Path(tmp) / f"inputs_{size}.npy")
            np.save(path, inputs.numpy())
            state_dict = {f"rnn.{k}": v.detach().clone() for k, v in rnn.state_dict().items()}
            model_file = str(Path(tmp) / f"rnn_{size}.safetensors")
            from safetensors.torch import save_file

            save_file({k: v.contiguous() for k, v in state_dict.items()}, model_file)
            bundle = from_state_dict(state_dict)
            rec = find_recurrences(bundle)[0]
            weights = cell_weights(bundle, rec)
            readout = torch.ones(size, dtype=torch.float64) / np.sqrt(size)
            pool = make_pool(batch, size, lags, args.pool, args.seed)
            with torch_threads(threads):
                best, runs, results = time_rnngrad(
                    lambda: bare_chain(pool, lags),
                    lambda: hot_path(rec, weights, inputs, lags, readout),
                    lambda spent: whole_call(state_dict, path, lags, spent),
                    repeats, args.budget, args.standalone_max)
                del pool
            process_runs = repeats if best["whole"] < args.budget / 3 else 1
            best["process"], stdout = best_process(
                command + ["bptt", model_file, "--inputs", path, "--lags", f"1..{lags}",
                           "--format", "json", "-q"], process_runs)
            best["process"] -= version
            results["process"] = process_logs(stdout)
            log(f"H={size}: bare {best['bare']:.3f}s, hot {best.get('hot', float('nan')):.3f}s"
                f", hot inside whole {best['hot_in_whole']:.3f}s, whole {best['whole']:.3f}s, "
                f"process − version {best['process']:.3f}s ({threads} thread(s), runs {runs})")
            plains = {}
            with torch_threads(threads):
                for vectorize in (() if args.no_plain else (False, True)):
                    plain = plain_way(rnn, inputs, lags, full=size <= full_max,
                                      sample_lags=sample_lags,
                                      sample_probes=batch if size <= 512 else min(
                                          args.large_probes, batch),
                                      full_budget=full_budget, log=log, vectorize=vectorize)
                    plains[vectorize] = plain
                    log(f"H={size}: plain{' vectorize=True' if vectorize else ''} "
                        f"{'~' if plain.extrapolated else ''}{plain.total:.1f}s")
                if args.profile:
                    profiles.append((size, profile_whole(state_dict, path, lags)))
            whole_logs = results["whole"]
            hot_logs = results.get("hot", results["hot_in_whole"])
            checks.append(_errors(size, plains, hot_logs, whole_logs, results["process"], batch))
            if "hot" not in best:  # hot path only measured inside the whole call
                best["hot"] = best["hot_in_whole"]
            rows.append((size, threads, best, runs, plains, whole_logs, load_at_start))
    print("\n".join(_tables(rows, checks, lags, batch, args, torch_import, version)), flush=True)
    for size, text in profiles:
        print(f"\n<details><summary>cProfile of one whole call, H={size} (by tottime)</summary>"
              f"\n\n```\n{text.strip()}\n```\n</details>")
    worst = max(max(check[1:-1]) for check in checks)
    assert worst <= TOLERANCE, f"rnngrad and autograd disagree by {worst:.2e}"
    return 0


def _errors(size, plains, hot_logs, whole_logs, process_logs_, batch):
    """Relative errors of ‖∂h_T/∂h_(T−ℓ)‖₂: hot path and whole call vs autograd, process vs
    whole call."""
    err_hot = err_whole = 0.0
    count = 0
    for plain in plains.values():
        count += len(plain.norms)
        err_hot = max([err_hot] + [rel_from_logs(hot_logs[p, lag - 1], np.log10(norm))
                                   for (p, lag), norm in plain.norms.items()])
        complete = [lag for lag in sorted({lag for _, lag in plain.norms})
                    if all((p, lag) in plain.norms for p in range(batch))]
        err_whole = max([err_whole] + [rel_from_logs(whole_logs[lag - 1],
                                                     np.mean([np.log10(plain.norms[p, lag])
                                                              for p in range(batch)]))
                                       for lag in complete])
    err_self = float(np.max(np.abs(10.0 ** (whole_logs - hot_logs.mean(axis=0)) - 1)))
    err_process = float(np.max(np.abs(10.0 ** (process_logs_ - whole_logs) - 1)))
    return size, err_hot, err_whole, err_self, err_process, count


def _tables(rows, checks, lags, batch, args, torch_import, version) -> list[str]:
    out = [f"Fixed costs of a process: import torch {torch_import:.2f} s over `python -c pass`; "
           f"`rnngrad --version` {version:.2f} s (subtracted from the process column).", "",
           "| H | thr | `rnngrad bptt` process − `--version` [s] | (a) whole call [s] "
           "| (a) hot path [s] | (c) bare chain [s] | process / bare | whole call / bare "
           "| hot / bare | (import torch + bare) / bare | mean log10‖P_L‖ | load |",
           "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for size, threads, best, runs, plains, whole_logs, load_at_start in rows:
        standalone = runs["hot"] > 0
        out.append(
            f"| {size} | {threads} | {fmt(best['process'])} "
            f"| {fmt(best['whole'])} (×{runs['whole']}) "
            f"| {fmt(best['hot'])}{'' if standalone else '†'} "
            f"| {fmt(best['bare'])} (×{runs['bare']}) "
            f"| {ratio(best['process'], best['bare'])} | {ratio(best['whole'], best['bare'])} "
            f"| {ratio(best['hot'], best['bare'])} "
            f"| {ratio(torch_import + best['bare'], best['bare'])} "
            f"| {whole_logs[-1]:.2f} | {load_at_start:.1f} |")
    out += ["", "(×n): timed runs, best shown. Process: one run of `rnngrad bptt MODEL.safetensors "
            "--inputs X.npy --lags 1..L --format json` as a user runs it (loading, torch's import, "
            "spectrum of W for the directions, gradient shares, clipping, rendering), best of "
            f"≤{args.repeats}, minus `rnngrad --version`. (import torch + bare) / bare: the ratio "
            "no process that imports torch can beat. † hot path timed inside the whole call.", ""]
    if any(plains for *_, plains, _, _ in rows):
        out += ["| H | (b) plain `jacobian` [s] | (b') plain `jacobian(vectorize=True)` [s] "
                "| plain / process | plain vectorize / process |", "|---:|---:|---:|---:|---:|"]
        for size, _, best, _, plains, _, _ in rows:
            cells = []
            for vectorize in (False, True):
                plain = plains.get(vectorize)
                cells.append(("—", "—") if plain is None else (
                    fmt(plain.total, plain.extrapolated),
                    ratio(plain.total, best["process"], plain.extrapolated)))
            out.append(f"| {size} | {cells[0][0]} | {cells[1][0]} | {cells[0][1]} "
                       f"| {cells[1][1]} |")
        out += ["", "How (b) was obtained:", ""]
        for size, *_, plains, _, _ in rows:
            for vectorize, plain in plains.items():
                name = "vectorize=True" if vectorize else "default"
                if plain.extrapolated:
                    a, b = plain.fit
                    out.append(f"- H={size} ({name}): ~extrapolated from {len(plain.times)} timed "
                               f"jacobians (probes 0..{plain.probes_sampled - 1}, lags "
                               f"{', '.join(map(str, plain.lags_sampled))}; "
                               f"{sum(plain.times.values()):.1f} s measured): fit t(ℓ) = {a:.4f} "
                               f"+ {b:.5f}·ℓ s per probe and lag, summed over ℓ = 1..{lags} × "
                               f"{batch} probes")
                else:
                    out.append(f"- H={size} ({name}): timed completely ({len(plain.times)} "
                               "jacobians)")
    out += ["", "Correctness (relative error of ‖∂h_T/∂h_(T−ℓ)‖₂ where both were computed; "
            f"tolerance {TOLERANCE:g}):", "",
            "| H | jacobians compared | hot path vs plain (per probe) "
            "| whole call vs plain (mean log10) | whole call vs hot path | process vs whole call |",
            "|---:|---:|---:|---:|---:|---:|"]
    for size, err_hot, err_whole, err_self, err_process, count in checks:
        out.append(f"| {size} | {count} | {err_hot:.1e} | {err_whole:.1e} | {err_self:.1e} "
                   f"| {err_process:.1e} |")
    out += ["", "Targets (issue #15):", ""]
    for size, _, best, _, plains, _, _ in rows:
        limit = {512: 1.5, 1024: 1.2}.get(size)
        if limit is not None:
            value = best["process"] / best["bare"]
            out.append(f"- `rnngrad bptt` process − `--version` at H={size}: {value:.2f}× the "
                       f"bare chain (target ≤ {limit}×): {'met' if value <= limit else 'MISSED'}; "
                       f"hot path {best['hot'] / best['bare']:.2f}×")
        if size == 256 and False in plains:
            value = plains[False].total / best["process"]
            out.append(f"- plain `jacobian` / rnngrad process at H=256: "
                       f"{'~' if plains[False].extrapolated else ''}{value:.0f}×")
        if size == 256 and True in plains:
            value = plains[True].total / best["process"]
            out.append(f"- plain `jacobian(vectorize=True)` / rnngrad process at H=256: "
                       f"{'~' if plains[True].extrapolated else ''}{value:.1f}×")
    load = os.getloadavg()
    out += ["", f"Load average at end (1/5/15 min): {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}"]
    return out


if __name__ == "__main__":
    sys.exit(main())
