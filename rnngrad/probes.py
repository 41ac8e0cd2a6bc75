"""Probe sequences: the inputs the BPTT Jacobians are measured on (CONTRACT.md "Probes").

- ``--inputs FILE.npy``: the exact sequences, shape (B, T, I) or (T, I); read without pickle.
- otherwise seeded Gaussian inputs N(0, input_scale²) of shape (B, burn_in + steps, I);
- ``--tokens``: random token ids (or a token-id ``.npy`` of shape (B, T) or (T,)) looked up in
  the file's embedding table (V, I).

Every probe starts from the zero state. Generated probes run a *burn-in* of ``burn_in`` steps
(default 50) before the analysed window of ``steps`` steps, so the state has left zero when
the window starts; the anchor T is the last step and lags reach back at most ``steps``. File
probes have no burn-in: lags reach back to the first step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ProbeError

DEFAULT_BURN_IN = 50


@dataclass(frozen=True, kw_only=True)
class ProbeSpec:
    """How to make the probe: ``kind`` is ``"gaussian"``, ``"file"`` or ``"tokens"``."""

    kind: str = "gaussian"
    batch: int = 8
    steps: int = 100
    seed: int = 0
    input_scale: float = 1.0
    burn_in: int = DEFAULT_BURN_IN
    path: str | None = None

    def describe(self) -> dict[str, object]:
        return {"kind": self.kind, "batch": self.batch, "steps": self.steps, "seed": self.seed,
                "input_scale": self.input_scale, "burn_in": self.burn_in, "path": self.path}


@dataclass(frozen=True, kw_only=True)
class Probe:
    """Input sequences ``inputs`` (B, T, I) float64 and the longest lag they allow."""

    spec: ProbeSpec
    inputs: np.ndarray
    max_lag: int

    def describe(self) -> dict[str, object]:
        batch, length, width = self.inputs.shape
        return {**self.spec.describe(), "shape": [batch, length, width], "max_lag": self.max_lag}


def make_probe(spec: ProbeSpec, input_size: int, embedding: np.ndarray | None = None) -> Probe:
    """The probe for a first layer taking ``input_size`` features."""
    _check_spec(spec)
    if spec.kind == "file":
        inputs = read_inputs(Path(spec.path or ""), input_size)
        return Probe(spec=spec, inputs=inputs, max_lag=inputs.shape[1])
    length = spec.burn_in + spec.steps
    rng = np.random.default_rng(spec.seed)
    if spec.kind == "tokens":
        if embedding is None:
            raise ProbeError("--tokens needs an embedding table in the file",
                             "the file has no (V, I) embedding feeding the first layer; "
                             "use Gaussian probes or --inputs")
        ids = (read_tokens(Path(spec.path), embedding.shape[0]) if spec.path
               else rng.integers(0, embedding.shape[0], size=(spec.batch, length)))
        inputs = embedding[ids]
        max_lag = ids.shape[1] if spec.path else spec.steps
        return Probe(spec=spec, inputs=inputs, max_lag=max_lag)
    inputs = rng.standard_normal((spec.batch, length, input_size)) * spec.input_scale
    return Probe(spec=spec, inputs=inputs, max_lag=spec.steps)


def _check_spec(spec: ProbeSpec) -> None:
    if spec.kind == "file":
        return
    problems = [(spec.batch < 1, f"--batch {spec.batch} must be at least 1"),
                (spec.steps < 1, f"--steps {spec.steps} must be at least 1"),
                (spec.burn_in < 0, f"--burn-in {spec.burn_in} must be 0 or more"),
                (not np.isfinite(spec.input_scale) or spec.input_scale < 0,
                 f"--input-scale {spec.input_scale} must be a finite number ≥ 0")]
    for bad, message in problems:
        if bad:
            raise ProbeError(message, "see `rnngrad bptt --help`")


def read_inputs(path: Path, input_size: int) -> np.ndarray:
    """Probe sequences from ``.npy``: (B, T, I) or (T, I), finite floats, I = input_size."""
    array = _read_npy(path, "--inputs")
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise ProbeError(f"--inputs {path}: shape {list(array.shape)} is neither (B, T, I) "
                         "nor (T, I)", "save the sequences as a float array (B, T, I)")
    if array.shape[2] != input_size:
        raise ProbeError(f"--inputs {path}: sequences have width {array.shape[2]}, the first "
                         f"layer takes {input_size} inputs", f"give (B, T, {input_size}) inputs")
    if 0 in array.shape:
        raise ProbeError(f"--inputs {path}: shape {list(array.shape)} is empty",
                         "give at least one sequence of at least one step")
    if not np.issubdtype(array.dtype, np.floating):
        raise ProbeError(f"--inputs {path}: dtype {array.dtype} is not floating point",
                         "save the sequences as float32 or float64")
    values = array.astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise ProbeError(f"--inputs {path}: contains NaN or Inf", "clean the probe data")
    return values


def read_tokens(path: Path, vocab: int) -> np.ndarray:
    """Token ids from ``.npy``: (B, T) or (T,), integers in [0, vocab)."""
    array = _read_npy(path, "--tokens")
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2 or 0 in array.shape:
        raise ProbeError(f"--tokens {path}: shape {list(array.shape)} is not (B, T) or (T,)",
                         "save token ids as an integer array (B, T)")
    if not np.issubdtype(array.dtype, np.integer):
        raise ProbeError(f"--tokens {path}: dtype {array.dtype} is not an integer type",
                         "save token ids as int64")
    if array.min() < 0 or array.max() >= vocab:
        raise ProbeError(f"--tokens {path}: ids range over [{array.min()}, {array.max()}], the "
                         f"embedding has {vocab} rows", f"use ids in [0, {vocab})")
    return array.astype(np.int64)


def _read_npy(path: Path, option: str) -> np.ndarray:
    if not path.is_file():
        raise ProbeError(f"{option} {path}: no such file", "check the path")
    try:
        return np.load(path, allow_pickle=False, mmap_mode="r")
    except ValueError as exc:
        if "pickle" in str(exc).lower() or "object" in str(exc).lower():
            raise ProbeError(f"{option} {path}: holds Python objects (needs pickle), refused",
                             "save a plain numeric array with numpy.save") from None
        raise ProbeError(f"{option} {path}: not a readable .npy array ({exc})",
                         "save the array with numpy.save") from None
    except (OSError, EOFError) as exc:
        raise ProbeError(f"{option} {path}: not a readable .npy array ({exc})",
                         "save the array with numpy.save") from None
