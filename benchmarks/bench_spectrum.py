"""Benchmark: a whole ``rnngrad spectrum FILE`` process against the NumPy one-liner's process.

    python benchmarks/bench_spectrum.py                       # H = 1024, 2048, 4096
    python benchmarks/bench_spectrum.py --sizes 512 --repeats 2
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_spectrum.py

For each H a seeded W (H × H, N(0, 1/H) entries rescaled to spectral radius 1.05, a mildly
exploding recurrent matrix) is saved as the ``weight_hh_l0`` of an ``nn.RNN``-style
safetensors file (random W_ih (H × 16), zero biases). Timed, each as its own process, best of
``--repeats``:

(a) **NumPy one-liner**: ``load_file(F)["rnn.weight_hh_l0"]``, ``numpy.linalg.eigvals(W)`` and
    ``numpy.linalg.svd(W, compute_uv=False)``: ρ, σ_max and σ_min as a user gets them;
(b) **rnngrad spectrum F --format json**: every field it reports (ρ, σ_max, σ_min, κ, the top
    eigenvalues, counts outside the unit and 1/γ circles, the leading eigenvector, the
    rest-state Jacobian's ρ and norm, the bound and verdict), loading and hashing the file,
    rendering the JSON. Its ρ, σ_max and σ_min must agree with (a)'s to 1e-9 (asserted).

Target (issue #15): (b) / (a) ≤ 1.0 at H = 1024, 2048 and 4096.

Then, in this process, what each part of (b) costs (the start-up of a process that imports
nothing but rnngrad's command line and NumPy; reading and hashing the file; ``eigvals``;
σ_max by Lanczos; the inverse and σ_min; the leading eigenvector by block inverse iteration)
and the LAPACK choices behind them: NumPy (OpenBLAS) against torch (MKL) for ``eigvals``, the
values-only SVD and the inverse. NumPy and torch offer no separate Hessenberg reduction + QR
(``geev`` without vectors *is* ``gebal`` + ``gehrd`` + ``hseqr``), so that choice is measured
only when SciPy is installed (``scipy.linalg.hessenberg`` + ``eigvals`` of the result).

Threads: left as they are (``--threads N`` sets OMP/MKL/OpenBLAS to N in every process and
here); the thread pools in use are listed (threadpoolctl, when installed). Older OpenBLAS
builds misbehave on some CPUs, so ``OPENBLAS_CORETYPE`` (and ``OPENBLAS_L2_SIZE``) may be set
on a machine: unset them in the benchmark command alone, as above, and check the kernel
OpenBLAS reports below; never change them in tests or CI.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
if "--threads" in sys.argv[:-1]:  # before NumPy and torch load: their pools read these once
    for _name in THREAD_VARIABLES:
        os.environ[_name] = sys.argv[sys.argv.index("--threads") + 1]

import numpy as np  # noqa: E402

TARGET_RHO = 1.05
INPUT_SIZE = 16
TOLERANCE = 1e-9
ONE_LINER = ("import sys, numpy as np; from safetensors.numpy import load_file; "
             "w = load_file(sys.argv[1])['rnn.weight_hh_l0']; "
             "e = np.linalg.eigvals(w); s = np.linalg.svd(w, compute_uv=False); "
             "print(abs(e).max(), s[0], s[-1])")


def make_matrix(size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, size])
    w = rng.standard_normal((size, size)) / np.sqrt(size)
    return w * (TARGET_RHO / np.max(np.abs(np.linalg.eigvals(w))))


def save_model(w: np.ndarray, path: Path, seed: int) -> Path:
    from safetensors.numpy import save_file

    size = w.shape[0]
    rng = np.random.default_rng([seed, size, 1])
    save_file({"rnn.weight_hh_l0": w,
               "rnn.weight_ih_l0": rng.standard_normal((size, INPUT_SIZE)) / np.sqrt(INPUT_SIZE),
               "rnn.bias_ih_l0": np.zeros(size), "rnn.bias_hh_l0": np.zeros(size)}, str(path))
    return path


def best_process(argv: list[str], repeats: int, env: dict) -> tuple[float, str]:
    best, out = float("inf"), ""
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        result = subprocess.run(argv, capture_output=True, text=True, env=env)
        best = min(best, time.perf_counter() - start)
        if result.returncode != 0:
            raise RuntimeError(f"{argv[:3]} failed: {result.stderr.strip()}")
        out = result.stdout
    return best, out


def best_call(fn, repeats: int, budget: float = 30.0):
    times, result = [], None
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
        if sum(times) > budget:
            break
    return min(times), result


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-300)


def thread_info() -> list[str]:
    lines = [f"thread variables: " + (", ".join(
        f"{k}={os.environ[k]}" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                         "MKL_NUM_THREADS", "OPENBLAS_CORETYPE",
                                         "OPENBLAS_L2_SIZE") if k in os.environ) or "none set")]
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return lines + ["threadpoolctl: not installed (BLAS pool details skipped)"]
    import torch  # noqa: F401  (its MKL/OpenMP pools show up too)

    for pool in threadpool_info():
        lines.append(f"threadpool: {pool.get('internal_api')} {pool.get('version')} "
                     f"{pool.get('architecture') or ''} num_threads={pool.get('num_threads')} "
                     f"({Path(pool.get('filepath', '')).name})")
    return lines


def parts(path: Path, w: np.ndarray, repeats: int) -> dict[str, float]:
    """Seconds of each part of rnngrad's spectrum, in this process."""
    from rnngrad.cells.rest import rest_jacobian_of
    from rnngrad.conventions.understand import understand
    from rnngrad.spectrum import extreme, matrix

    out: dict[str, float] = {}
    out["read + hash + detect"], understood = best_call(lambda: understand(str(path)), repeats)
    rec = understood.recurrences[0]
    out["W as float64"], _ = best_call(lambda: understood.bundle.array(rec.weight_hh), repeats)
    out["eigvals (geev)"], eig = best_call(lambda: np.linalg.eigvals(w), repeats)
    out["σ_max (Lanczos)"], _ = best_call(lambda: extreme.largest_singular_value(w), repeats)
    out["inverse (getrf + getri)"], inverse = best_call(lambda: np.linalg.inv(w), repeats)
    out["σ_min (Lanczos on the inverse)"], _ = best_call(
        lambda: extreme.largest_singular_value(inverse), repeats)
    leading = complex(eig[np.argmax(np.abs(eig))])
    out["leading eigenvector (one LU)"], _ = best_call(
        lambda: matrix._leading_eigenvector(w, leading), repeats)
    out["rest Jacobian (= W: reused)"], _ = best_call(
        lambda: rest_jacobian_of(rec, understood.bundle), repeats)
    return out


def lapack_choices(w: np.ndarray, repeats: int) -> dict[str, float]:
    import torch

    t = torch.from_numpy(w)
    out = {}
    out["numpy eigvals"], _ = best_call(lambda: np.linalg.eigvals(w), repeats)
    out["torch eigvals"], _ = best_call(lambda: torch.linalg.eigvals(t), repeats)
    out["numpy svd values"], _ = best_call(lambda: np.linalg.svd(w, compute_uv=False), repeats)
    out["torch svdvals"], _ = best_call(lambda: torch.linalg.svdvals(t), repeats)
    out["numpy inv"], _ = best_call(lambda: np.linalg.inv(w), repeats)
    out["torch inv"], _ = best_call(lambda: torch.linalg.inv(t), repeats)
    try:
        import scipy.linalg
    except ImportError:
        return out
    out["scipy hessenberg + eigvals"], _ = best_call(
        lambda: scipy.linalg.eigvals(scipy.linalg.hessenberg(w)), repeats)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")],
                        default=[1024, 2048, 4096])
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    parser.add_argument("--threads", type=int, default=None,
                        help="OMP/MKL/OpenBLAS threads everywhere (default: as they are)")
    parser.add_argument("--no-parts", action="store_true", help="only the two processes")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    env = dict(os.environ)  # --threads is in it already (set before NumPy loaded)
    import shutil

    import rnngrad

    command = shutil.which("rnngrad", path=str(Path(sys.executable).parent))
    if not command:
        sys.exit("install rnngrad first: pip install -e .")
    load = os.getloadavg()
    print("\n".join([
        "# rnngrad spectrum benchmark", "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
        f"- machine: {platform.machine()}, nproc {os.cpu_count()}",
        f"- python {platform.python_version()}, numpy {np.__version__}, rnngrad "
        f"{rnngrad.__version__}",
        f"- load average at start (1/5/15 min): {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}",
        *[f"- {line}" for line in thread_info()],
        f"- W: seeded N(0, 1/H), ρ = {TARGET_RHO}; processes best of ≤{args.repeats}", ""]),
        flush=True)
    floor, _ = best_process([sys.executable, "-c", "pass"], 5, env)
    startup, _ = best_process([command, "spectrum", "--help"], 3, env)
    rows, part_rows, choice_rows = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            load_at_start = os.getloadavg()[0]
            w = make_matrix(size, args.seed)
            path = save_model(w, Path(tmp) / f"rnn_{size}.safetensors", args.seed)
            plain, text = best_process([sys.executable, "-c", ONE_LINER, str(path)],
                                       args.repeats, env)
            reference = [float(x) for x in text.split()]
            ours, text = best_process([command, "spectrum", str(path), "--format", "json",
                                       "-q"], args.repeats, env)
            item = json.loads(text)["recurrences"][0]
            block = item["blocks"]["hh"]
            diff = max(rel(reference[0], block["spectral_radius"]),
                       rel(reference[1], block["sigma_max"]),
                       rel(reference[2], block["sigma_min"]),
                       rel(reference[0], item["rest_jacobian"]["spectral_radius"]))
            rows.append((size, plain, ours, reference, diff, load_at_start))
            print(f"<!-- H={size}: one-liner {plain:.2f}s, rnngrad {ours:.2f}s -->", flush=True)
            if not args.no_parts:
                part_rows.append((size, parts(path, w, args.repeats)))
                choice_rows.append((size, lapack_choices(w, min(args.repeats, 2))))
    print("| H | ρ | σ_max | σ_min | (a) NumPy one-liner process [s] | (b) `rnngrad spectrum` "
          "process [s] | (b) / (a) | max rel diff | load |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size, plain, ours, ref, diff, load_at_start in rows:
        print(f"| {size} | {ref[0]:.6f} | {ref[1]:.6f} | {ref[2]:.3e} | {plain:.2f} | {ours:.2f} "
              f"| {ours / plain:.2f}× | {diff:.1e} | {load_at_start:.1f} |")
    print(f"\nStart-up: `python -c pass` {floor:.3f} s; `rnngrad spectrum --help` {startup:.3f} s "
          "(rnngrad's command line and NumPy imported; no torch for an Elman file).")
    for title, table in (("What each part of (b) costs [s]", part_rows),
                         ("LAPACK choices [s]", choice_rows)):
        if not table:
            continue
        names = list(table[0][1])
        print(f"\n{title}:\n\n| H | " + " | ".join(names) + " |")
        print("|---:|" + "---:|" * len(names))
        for size, values in table:
            print(f"| {size} | " + " | ".join(f"{values.get(name, float('nan')):.3f}"
                                              for name in names) + " |")
    print("\nTargets (issue #15):\n")
    for size, plain, ours, *_ in rows:
        if size in (1024, 2048, 4096):
            print(f"- H={size}: rnngrad / one-liner = {ours / plain:.2f}× (target ≤ 1.0×): "
                  f"{'met' if ours <= plain else 'MISSED'}")
    load = os.getloadavg()
    print(f"\nLoad average at end (1/5/15 min): {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}")
    worst = max(row[4] for row in rows)
    assert worst <= TOLERANCE, f"rnngrad's spectra differ from numpy's by {worst:.2e}"
    return 0


if __name__ == "__main__":
    sys.exit(main())
