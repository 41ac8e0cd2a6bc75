"""The starting state s_0 of every recurrence of a group: ``--initial-state VALUE|FILE.npy``.

The seed's eq. (2) leaves x_0 to the user: "provided by the user, set to zero or learned".
rnngrad starts from zero unless told otherwise:

- a number: every entry of every recurrence's s_0 (``--initial-state 0.5``);
- a ``.npy`` file (float, read without pickle) of shape

  - (S,): one s_0 for every recurrence (all of state size S) and every probe;
  - (R, S): one s_0 per recurrence, in the group's order (layer by layer, forward first:
    PyTorch's order of ``h0``, index = layer · directions + direction);
  - (R, B, S): one per recurrence and probe sequence.

S is the recurrence's state size: H, or P + H for an LSTM, whose s_0 is [h_0; c_0], h first
(rnngrad's state convention). A leaky rate cell's state is its pre-activation x.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rnngrad.errors import ProbeError
from rnngrad.io.npy import read_npy
from rnngrad.limits import DEFAULT_MAX_BYTES
from rnngrad.probes.spec import ProbeSpec

SHAPES_HINT = "save s_0 as (S,), (R, S) or (R, B, S): R recurrences in PyTorch's h0 order"


def initial_states(spec: ProbeSpec, sizes: list[int], batch: int,
                   max_bytes: int = DEFAULT_MAX_BYTES) -> list[np.ndarray] | None:
    """s_0 of each recurrence (in ``sizes`` order), each (B, S) float64; None for all-zero.
    A ``.npy`` file is read only if it fits in ``max_bytes``."""
    if spec.initial_state is None:
        return None
    value = spec.initial_value
    if value is not None:
        return [np.full((batch, size), value) for size in sizes]
    path = Path(spec.initial_path or "")
    array = read_npy(path, "--initial-state", max_bytes)
    if not np.issubdtype(array.dtype, np.floating) or not np.all(np.isfinite(array)):
        raise ProbeError(f"--initial-state {path}: s_0 must hold finite floats",
                         "save s_0 as a float array without NaN or Inf")
    return _per_recurrence(np.asarray(array, dtype=np.float64), sizes, batch, path)


def _per_recurrence(array: np.ndarray, sizes: list[int], batch: int,
                    path: Path) -> list[np.ndarray]:
    count = len(sizes)
    shape = list(array.shape)
    if array.ndim == 1 and len(set(sizes)) == 1 and shape[0] == sizes[0]:
        return [np.broadcast_to(array, (batch, size)).copy() for size in sizes]
    if array.ndim in (2, 3) and shape[0] == count:
        rows = [array[index] for index in range(count)]
        if all(row.shape[-1] == size for row, size in zip(rows, sizes)) and (
                array.ndim == 2 or shape[1] == batch):
            return [np.broadcast_to(row, (batch, row.shape[-1])).copy() for row in rows]
    wanted = ", ".join(str(size) for size in sizes)
    raise ProbeError(f"--initial-state {path}: shape {shape} does not fit {count} "
                     f"recurrence(s) of state size {wanted} and {batch} probe sequence(s)",
                     SHAPES_HINT)
