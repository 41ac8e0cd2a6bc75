"""Probe sequences: the inputs the BPTT Jacobians are measured on (docs/contract.md "Probes").

- ``--inputs FILE.npy``: the exact sequences, shape (B, T, I) or (T, I); read without pickle.
- otherwise seeded Gaussian inputs N(0, input_scale²) of shape (B, burn_in + steps, I);
- ``--tokens``: random token ids (or a token-id ``.npy`` of shape (B, T) or (T,)) looked up in
  the file's embedding table (V, I).

Every probe starts from the zero state unless ``--initial-state`` says otherwise
(:mod:`rnngrad.probes.initial`). Generated probes run a *burn-in* of ``burn_in`` steps
(default 50) before the analysed window of ``steps`` steps, so the state has left zero when
the window starts; the anchor T is the last step and lags reach back at most ``steps``. File
probes have no burn-in: lags reach back to the first step. (:class:`~rnngrad.probes.spec.ProbeSpec`
says which probe to make.)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnngrad.errors import ProbeError
from rnngrad.probes.spec import ProbeEcho, ProbeSpec


@dataclass(frozen=True, kw_only=True)
class Probe:
    """Input sequences ``inputs`` (B, T, I) float64 and the longest lag they allow."""

    spec: ProbeSpec
    inputs: np.ndarray
    max_lag: int

    def echo(self) -> ProbeEcho:
        """What was really run: the shape and window of these inputs, not the defaults."""
        batch, length, width = self.inputs.shape
        return ProbeEcho(kind=self.spec.kind, batch=batch, steps=self.max_lag,
                         seed=self.spec.seed,
                         input_scale=self.spec.input_scale if self.spec.kind == "gaussian" else None,
                         burn_in=length - self.max_lag, path=self.spec.path,
                         shape=(batch, length, width), max_lag=self.max_lag,
                         initial_state=self.spec.initial_state)


def make_probe(spec: ProbeSpec, input_size: int, embedding: np.ndarray | None = None, *,
               largest_lag: int = 100) -> Probe:
    """The probe for a first layer taking ``input_size`` features; ``largest_lag`` sets the
    default window (:meth:`ProbeSpec.window`)."""
    if spec.kind == "file":
        inputs = read_inputs(Path(spec.path or ""), input_size)
        return Probe(spec=spec, inputs=inputs, max_lag=inputs.shape[1])
    steps, burn_in = spec.window(largest_lag)
    length = burn_in + steps
    rng = np.random.default_rng(spec.seed)
    if spec.kind == "tokens":
        if embedding is None:
            raise ProbeError("--tokens needs an embedding table in the file",
                             "the file has no (V, I) embedding feeding the first layer; "
                             "use Gaussian probes or --inputs")
        ids = (read_tokens(Path(spec.tokens_file), embedding.shape[0]) if spec.tokens_file
               else rng.integers(0, embedding.shape[0], size=(spec.batch, length)))
        inputs = embedding[ids]
        max_lag = ids.shape[1] if spec.tokens_file else steps
        return Probe(spec=spec, inputs=inputs, max_lag=max_lag)
    inputs = rng.standard_normal((spec.batch, length, input_size)) * spec.input_scale
    return Probe(spec=spec, inputs=inputs, max_lag=steps)


def read_inputs(path: Path, input_size: int) -> np.ndarray:
    """Probe sequences from ``.npy``: (B, T, I) or (T, I), finite floats, I = input_size."""
    array = read_npy(path, "--inputs")
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
    array = read_npy(path, "--tokens")
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


def read_npy(path: Path, option: str) -> np.ndarray:
    """A ``.npy`` array named by ``option``, memory-mapped, never unpickled; ProbeError if not."""
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
