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
from rnngrad.io.npy import NpyHeader, npy_header, read_npy
from rnngrad.limits import DEFAULT_MAX_BYTES
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


@dataclass(frozen=True)
class ProbeShape:
    """The sequences a probe will be, known from its spec and file headers before anything is
    drawn or read: (``batch``, ``length``, ``width``) = (B, T, I) and the longest lag."""

    batch: int
    length: int
    width: int
    max_lag: int


def plan_probe(spec: ProbeSpec, input_size: int, largest_lag: int = 100) -> ProbeShape:
    """The shape :func:`make_probe` will produce, from ``spec`` and the ``.npy`` headers only,
    so that its memory can be estimated before a byte is allocated; bad shapes and dtypes of
    probe files are refused here. ``largest_lag`` sets a generated probe's default window
    (:meth:`ProbeSpec.window`)."""
    if spec.kind == "file":
        header = npy_header(spec.path or "", "--inputs")
        batch, length, width = _input_shape(header, spec.path or "", input_size)
        return ProbeShape(batch, length, width, length)
    steps, burn_in = spec.window(largest_lag)
    length = burn_in + steps
    if spec.kind == "tokens" and spec.tokens_file:
        batch, steps = _token_shape(npy_header(spec.tokens_file, "--tokens-file"),
                                    spec.tokens_file)
        return ProbeShape(batch, steps, input_size, steps)
    return ProbeShape(spec.batch, length, input_size, steps)


def make_probe(spec: ProbeSpec, input_size: int, embedding: np.ndarray | None = None,
               max_bytes: int = DEFAULT_MAX_BYTES, *, largest_lag: int = 100) -> Probe:
    """The probe for a first layer taking ``input_size`` features; a probe file is read only
    if its values fit in ``max_bytes``; ``largest_lag`` as for :func:`plan_probe`."""
    shape = plan_probe(spec, input_size, largest_lag)
    if spec.kind == "file":
        inputs = read_inputs(Path(spec.path or ""), input_size, max_bytes)
        return Probe(spec=spec, inputs=inputs, max_lag=inputs.shape[1])
    rng = np.random.default_rng(spec.seed)
    if spec.kind == "tokens":
        if embedding is None:
            raise ProbeError("--tokens needs an embedding table in the file",
                             "the file has no (V, I) embedding feeding the first layer; "
                             "use Gaussian probes or --inputs")
        ids = (read_tokens(Path(spec.tokens_file), embedding.shape[0], max_bytes)
               if spec.tokens_file
               else rng.integers(0, embedding.shape[0], size=(shape.batch, shape.length)))
        return Probe(spec=spec, inputs=embedding[ids], max_lag=shape.max_lag)
    inputs = rng.standard_normal((shape.batch, shape.length, input_size)) * spec.input_scale
    return Probe(spec=spec, inputs=inputs, max_lag=shape.max_lag)


def read_inputs(path: Path, input_size: int, max_bytes: int = DEFAULT_MAX_BYTES) -> np.ndarray:
    """Probe sequences from ``.npy``: (B, T, I) or (T, I), finite floats, I = input_size."""
    _input_shape(npy_header(path, "--inputs"), path, input_size)
    array = read_npy(path, "--inputs", max_bytes)
    with np.errstate(invalid="ignore"):  # NaN payloads: refused just below
        values = (array[None] if array.ndim == 2 else array).astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise ProbeError(f"--inputs {path}: contains NaN or Inf", "clean the probe data")
    return values


def _input_shape(header: NpyHeader, path: Path | str, input_size: int) -> tuple[int, int, int]:
    shape = header.shape
    if len(shape) == 2:
        shape = (1, *shape)
    if len(shape) != 3:
        raise ProbeError(f"--inputs {path}: shape {list(header.shape)} is neither (B, T, I) "
                         "nor (T, I)", "save the sequences as a float array (B, T, I)")
    if shape[2] != input_size:
        raise ProbeError(f"--inputs {path}: sequences have width {shape[2]}, the first "
                         f"layer takes {input_size} inputs", f"give (B, T, {input_size}) inputs")
    if 0 in shape:
        raise ProbeError(f"--inputs {path}: shape {list(header.shape)} is empty",
                         "give at least one sequence of at least one step")
    if not np.issubdtype(header.dtype, np.floating):
        raise ProbeError(f"--inputs {path}: dtype {header.dtype} is not floating point",
                         "save the sequences as float32 or float64")
    return shape


def read_tokens(path: Path, vocab: int, max_bytes: int = DEFAULT_MAX_BYTES) -> np.ndarray:
    """Token ids from ``.npy``: (B, T) or (T,), integers in [0, vocab)."""
    _token_shape(npy_header(path, "--tokens-file"), path)
    array = read_npy(path, "--tokens-file", max_bytes)
    if array.ndim == 1:
        array = array[None]
    if array.min() < 0 or array.max() >= vocab:
        raise ProbeError(f"--tokens-file {path}: ids range over [{array.min()}, {array.max()}], "
                         f"the embedding has {vocab} rows", f"use ids in [0, {vocab})")
    return array.astype(np.int64)


def _token_shape(header: NpyHeader, path: Path | str) -> tuple[int, int]:
    shape = (1, *header.shape) if len(header.shape) == 1 else header.shape
    if len(shape) != 2 or 0 in shape:
        raise ProbeError(f"--tokens-file {path}: shape {list(header.shape)} is not (B, T) or "
                         "(T,)", "save token ids as an integer array (B, T)")
    if not np.issubdtype(header.dtype, np.integer):
        raise ProbeError(f"--tokens-file {path}: dtype {header.dtype} is not an integer type",
                         "save token ids as int64")
    return shape
