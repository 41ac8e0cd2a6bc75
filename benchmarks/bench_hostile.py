"""Peak memory and time of rnngrad on the hostile inputs of issue 17, as a Markdown table.

    python benchmarks/bench_hostile.py [--limit-gib 4] [--only NAME ...]
    PYTHONPATH=/path/to/other/checkout python benchmarks/bench_hostile.py   # another version

Each case runs ``python -m rnngrad ...`` in a fresh process under an address-space limit
(``RLIMIT_AS``, default 4 GiB: an unguarded version fails at the limit instead of taking the
machine) and reports its exit code, wall and CPU seconds and peak resident memory (the
process's own ``VmHWM``, read at its exit). The inputs are built in a temporary folder by the
generators of ``tests/corpus.py`` (sparse files: a few MB on disk).
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import corpus  # noqa: E402


def build(folder: Path) -> dict[str, list[str]]:
    """The cases: name -> argv after ``rnngrad``."""
    model = corpus.make_valid_model(folder / "model.safetensors")
    cases = corpus.build_corpus(folder / "corpus", only={
        "pt_stride0_expand", "st_big_sparse_tensor", "probe_sparse_4gb", "targets_sparse_huge"})
    by_name = {case.name: case for case in cases}
    bomb = folder / "200x60MiB.npz"
    member = corpus._zero_bomb_member("x.npy", corpus._npy_header("<f4", (3960, 3960)),
                                      3960 * 3960 * 4)
    corpus._write_zip_raw(bomb, [(f"m{i}.weight_hh_l0.npy",) + member[1:] for i in range(200)])
    honest = folder / "60x20MiB.npz"
    values = np.zeros((2290, 2290), np.float32)
    values.ravel()[::100] = 0.01
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, values)
    member = corpus._deflate_member("x.npy", buffer.getvalue())
    corpus._write_zip_raw(honest, [(f"m{i}.weight_hh_l0.npy",) + member[1:] for i in range(60)])
    wide = corpus.wide_header_file(folder / "600k.safetensors", 600_000)
    checkpoint = folder / "100MB.pt"
    _checkpoint(checkpoint)
    return {
        "npz 200 × 60 MiB zeros (12 MB): inspect": ["inspect", str(bomb)],
        "npz 60 × 20 MiB, honest (13 MB): inspect": ["inspect", str(honest), "-f", "json"],
        ".pt stride-0 40000² (2 KB): inspect": ["inspect", str(by_name["pt_stride0_expand"].path)],
        "safetensors 33000² F16 (2.2 GB sparse): inspect": [
            "inspect", str(by_name["st_big_sparse_tensor"].path)],
        "bptt --batch 1000000": ["bptt", str(model), "--batch", "1000000", "-q"],
        "bptt --inputs 4 GB sparse .npy": ["bptt", str(model), "--inputs",
                                           str(by_name["probe_sparse_4gb"].path), "-q"],
        "bptt --targets 24 GB sparse .npy": by_name["targets_sparse_huge"].args + ["-q"],
        "600k-entry header: inspect (table)": ["inspect", str(wide)],
        "600k-entry header: inspect -f json": ["inspect", str(wide), "-f", "json"],
        "600k-entry header: inspect -f markdown": ["inspect", str(wide), "-f", "markdown"],
        "600k-entry header: spectrum": ["spectrum", str(wide)],
        ".pt of 100 MB (read, not memory-mapped): inspect": ["inspect", str(checkpoint)],
    }


def _checkpoint(path: Path) -> None:
    """An RNN and a 100 MB embedding, as torch.save writes them."""
    import torch

    torch.manual_seed(0)
    state = {f"rnn.{k}": v for k, v in torch.nn.RNN(64, 256).state_dict().items()}
    state["embedding.weight"] = torch.randn(100_000, 250)
    torch.save(state, path)


# Run in the measured process: cap its address space, report its own peak resident memory
# (VmHWM: the high-water mark of this process image, not of the parent it was forked from)
# to the file named by RNNGRAD_BENCH_PEAK at exit, then run the command as `python -m rnngrad`.
_CHILD = """
import atexit, os, resource, runpy, sys
limit = int(os.environ["RNNGRAD_BENCH_LIMIT"])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
def peak():
    with open("/proc/self/status") as status, open(os.environ["RNNGRAD_BENCH_PEAK"], "w") as out:
        out.write(next(line.split()[1] for line in status if line.startswith("VmHWM")))
atexit.register(peak)
sys.argv = ["rnngrad", *sys.argv[1:]]
runpy.run_module("rnngrad", run_name="__main__")
"""


def measure(argv: list[str], limit: int, timeout: float) -> dict:
    """Run ``rnngrad ARGV`` in a fresh Python under RLIMIT_AS; exit code, seconds, peak RSS."""
    with tempfile.TemporaryDirectory() as folder:
        peak_file = Path(folder) / "peak"
        env = {**os.environ, "RNNGRAD_BENCH_LIMIT": str(limit),
               "RNNGRAD_BENCH_PEAK": str(peak_file)}
        started = time.perf_counter()
        try:
            result = subprocess.run([sys.executable, "-c", _CHILD, *argv], env=env,
                                    capture_output=True, text=True, timeout=timeout,
                                    stdin=subprocess.DEVNULL)
            rc, message = result.returncode, result.stderr.strip().splitlines()
        except subprocess.TimeoutExpired:
            rc, message = "timeout", []
        wall = time.perf_counter() - started
        peak = int(peak_file.read_text()) / 1024 if peak_file.exists() else float("nan")
    return {"rc": rc, "wall": wall, "rss_mb": peak,
            "stderr": message[-1][:110] if message else ""}


def cpu_of_children() -> float:
    """CPU seconds of every finished child so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit-gib", type=float, default=4.0)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--only", nargs="*", default=None, help="substrings of case names")
    args = parser.parse_args()
    import rnngrad

    print(f"rnngrad from {Path(rnngrad.__file__).parent}; RLIMIT_AS {args.limit_gib:g} GiB; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n")
    print("| case | exit | wall s | CPU s | peak RSS MB | stderr |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for name, argv in build(Path(folder)).items():
            if args.only and not any(part in name for part in args.only):
                continue
            cpu_before = cpu_of_children()
            result = measure(argv, int(args.limit_gib * 1024**3), args.timeout)
            print(f"| {name} | {result['rc']} | {result['wall']:.1f} | "
                  f"{cpu_of_children() - cpu_before:.1f} | {result['rss_mb']:.0f} | "
                  f"{result['stderr'].replace('|', '/')} |", flush=True)


if __name__ == "__main__":
    main()
