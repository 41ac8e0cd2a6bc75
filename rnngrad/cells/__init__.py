"""Cell registry and the :class:`Recurrence` that names one layer and direction of one module.

Each architecture lives in its own module (``elman``, ``gru``, ``lstm``) with the same small
interface: ``NAME``, ``GATES``, ``GATE_COUNT``, ``gamma``, ``state_size``, ``output``, ``step``,
``jacobian`` and ``recurrent_blocks``. Detection of recurrences in a file is in
:mod:`rnngrad.cells.detection`.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import torch

from . import elman, gru, lstm
from .base import CellWeights

CELLS: dict[str, ModuleType] = {module.NAME: module for module in (elman, gru, lstm)}
CELL_BY_GATE_COUNT: dict[int, str] = {module.GATE_COUNT: module.NAME for module in CELLS.values()}
ACTIVATIONS = ("tanh", "relu")


@dataclass(frozen=True, kw_only=True)
class Recurrence:
    """One recurrence: a layer and direction of an RNN module, and the tensors it uses.

    ``module`` is the key prefix without its trailing dot (``"encoder.rnn"``; ``""`` for a
    bare state dict). ``nonlinearity`` is the Elman activation (``"tanh"``/``"relu"``) or
    ``"sigmoid/tanh"`` for gated cells; ``nonlinearity_source`` says where it came from:
    ``"metadata"``, ``"option"``, ``"default"`` or ``"cell"``.
    """

    module: str
    cell: str
    layer: int
    direction: str
    hidden_size: int
    input_size: int | None
    proj_size: int
    nonlinearity: str
    nonlinearity_source: str
    weight_hh: str
    weight_ih: str | None = None
    bias_ih: str | None = None
    bias_hh: str | None = None
    weight_hr: str | None = None
    missing: tuple[str, ...] = ()
    cell_module: bool = False

    @property
    def kind(self) -> ModuleType:
        return CELLS[self.cell]

    @property
    def state_size(self) -> int:
        return self.kind.state_size(self.hidden_size, self.proj_size)

    @property
    def output_size(self) -> int:
        return self.proj_size or self.hidden_size

    @property
    def tensor_names(self) -> tuple[str, ...]:
        names = (self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh, self.weight_hr)
        return tuple(name for name in names if name)

    @property
    def label(self) -> str:
        """Short human name: ``encoder L0 fwd``."""
        where = self.module or "(top)"
        if self.cell_module:
            return where
        return f"{where} L{self.layer}{' rev' if self.direction == 'reverse' else ''}"

    def identity(self) -> dict[str, object]:
        """The identity fields CONTRACT.md puts on every recurrence in every JSON document."""
        return {
            "module": self.module, "cell": self.cell, "layer": self.layer,
            "direction": self.direction, "hidden_size": self.hidden_size,
            "input_size": self.input_size, "proj_size": self.proj_size,
            "weight_hh": self.weight_hh, "nonlinearity": self.nonlinearity,
            "nonlinearity_source": self.nonlinearity_source,
        }


def cell_weights(bundle, recurrence: Recurrence, dtype: torch.dtype = torch.float64,
                 device: str | torch.device = "cpu") -> CellWeights:
    """The recurrence's tensors from ``bundle`` as torch tensors of ``dtype`` on ``device``."""

    def get(name: str | None) -> torch.Tensor | None:
        if name is None:
            return None
        return torch.from_numpy(bundle.array(name)).to(dtype=dtype, device=device)

    return CellWeights(weight_hh=get(recurrence.weight_hh), weight_ih=get(recurrence.weight_ih),
                       bias_ih=get(recurrence.bias_ih), bias_hh=get(recurrence.bias_hh),
                       weight_hr=get(recurrence.weight_hr))


__all__ = ["ACTIVATIONS", "CELLS", "CELL_BY_GATE_COUNT", "CellWeights", "Recurrence",
           "cell_weights"]
