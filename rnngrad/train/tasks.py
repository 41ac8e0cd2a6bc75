"""Sequence tasks from Pascanu, Mikolov & Bengio (2013), Sec. 4.1, for benchmarks and examples.

The adding problem (Hochreiter & Schmidhuber 1997): each step has two inputs, a value drawn
from U(0, 1) and a marker; exactly two steps are marked, the first in the first half of the
sequence, the second in the second half (so the dependency spans about T/2 steps); the target
is the sum of the two marked values. Predicting 1 (the mean) gives an MSE of 1/6 ≈ 0.167;
Pascanu et al. count a run as solved below 0.04.
"""

from __future__ import annotations

import torch

SOLVED_MSE = 0.04
BASELINE_MSE = 1 / 6


def adding_problem(batch: int, length: int, generator: torch.Generator,
                   dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs (batch, length, 2) and targets (batch, 1) of the adding problem."""
    values = torch.rand(batch, length, generator=generator, dtype=dtype)
    half = length // 2
    first = torch.randint(0, half, (batch,), generator=generator)
    second = torch.randint(half, length, (batch,), generator=generator)
    markers = torch.zeros(batch, length, dtype=dtype)
    rows = torch.arange(batch)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    target = (values * markers).sum(dim=1, keepdim=True)
    return torch.stack([values, markers], dim=-1), target
