"""Regenerate the pictures in docs/ from the shipped sample models (needs ``rnngrad[plot]``).

    python scripts/make_docs_plots.py            # docs/*.svg
    python scripts/make_docs_plots.py --png      # also docs/*.png, e.g. to look at them

Deterministic: seeded probes and fixed-metadata SVG, so a rerun with the same matplotlib,
PyTorch and numpy versions rewrites byte-identical files. The probe is the CLI's default
(16 Gaussian sequences, 100 steps after 50 of burn-in, seed 0), lags 1..100; the check
summary is ``rnngrad check`` on five samples with --explode-above 1e4 --vanish-below 1e-4
--max-bound 1. The surface picture is ``rnngrad surface`` of the ``pascanu_unit`` sample with
``--lr 0.2 --max-norm 0.05 --vary w=4.6:5.3:141 --vary b=-2.9:-2.3:121``. The
lyapunov pictures use lyapunov's default probe (8 sequences, 3000 steps after 1000 of burn-in, seed 0): k = 10 of the trained adding-task LSTM, and all 128 exponents of a
random tanh network h' = tanh(g W h + W_in x), W_ij ~ N(0, 1/N), N = 128, g = 2, driven by
weak inputs (scale 0.1), built here from seed 0.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import rnngrad
from rnngrad.bptt import BpttOptions, bptt
from rnngrad.gate.check import run_check
from rnngrad.gate.config import config_from_values
from rnngrad.plots import save_plot
from rnngrad.probes import ProbeSpec

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_models"
OPTIONS = BpttOptions(lags="1..100", probe=ProbeSpec(batch=16, steps=100, seed=0, burn_in=50))
# `rnngrad check` with the bptt verdict's thresholds and Pascanu's bound at 1
CHECK = config_from_values({"lags": "1..100", "explode_above": 1e4, "vanish_below": 1e-4,
                            "max_bound": 1.0})
# the single unit of Pascanu et al. (2013): a step that crosses the wall, clipped to stay in
SURFACE = dict(lr=0.2, max_norm=0.05, vary=("w=4.6:5.3:141", "b=-2.9:-2.3:121"))
CHECKED = ("elman_vanishing.safetensors", "elman_exploding.safetensors",
           "elman_orthogonal.safetensors", "lstm_2layer.pt", "adding_task_lstm.safetensors")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="folder (default docs/)")
    parser.add_argument("--png", action="store_true", help="also write PNG versions")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    suffixes = (".svg", ".png") if args.png else (".svg",)

    def write(report, name: str) -> None:
        for suffix in suffixes:
            target = args.out / f"{name}{suffix}"
            save_plot(report, str(target))
            print(f"wrote {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}")

    gru = SAMPLES / "gru_bidirectional.safetensors"
    write(rnngrad.spectrum(gru, values=True), "spectrum_gru_bidirectional")

    elman = SAMPLES / "elman_exploding.safetensors"
    write(bptt(elman, OPTIONS), "bptt_elman_exploding")
    write(bptt(SAMPLES / "adding_task_lstm.safetensors", OPTIONS),
          "bptt_adding_task_lstm")

    write(run_check([SAMPLES / name for name in CHECKED], [CHECK] * len(CHECKED)),
          "check_samples")

    write(rnngrad.surface(SAMPLES / "pascanu_unit.safetensors", **SURFACE), "surface_pascanu_unit")
    write(rnngrad.lyapunov(SAMPLES / "adding_task_lstm.safetensors"),
          "lyapunov_adding_task_lstm")
    write(rnngrad.lyapunov(random_tanh_network(), input_scale=0.1, k=128),
          "lyapunov_random_tanh")


def random_tanh_network(size: int = 128, gain: float = 2.0, inputs: int = 4) -> Any:
    """nn.RNN(inputs, size) weights with W_hh = g W, W_ij ~ N(0, 1/N), seed 0, as a bundle."""
    import numpy as np

    from rnngrad.io import from_state_dict

    rng = np.random.default_rng(0)
    return from_state_dict({
        "rnn.weight_hh_l0": gain * rng.standard_normal((size, size)) / np.sqrt(size),
        "rnn.weight_ih_l0": rng.standard_normal((size, inputs)),
        "rnn.bias_ih_l0": np.zeros(size), "rnn.bias_hh_l0": np.zeros(size)},
        name=f"random tanh RNN, N = {size}, g = {gain:g}")


if __name__ == "__main__":
    main()
