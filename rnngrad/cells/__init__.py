"""Cell registry and the :class:`Recurrence` that names one layer and direction of one module.

Each architecture lives in its own module (``elman``, ``gru``, ``lstm``, ``gru_keras``,
``leaky``) with the same small interface: ``NAME``, ``GATES``, ``GATE_COUNT``, ``gamma``,
``state_size``, ``output``, ``step``, ``jacobian`` and ``recurrent_blocks``. The leaky rate cell
needs its α and φ bound, so ``Recurrence.kind`` hands out a :class:`~rnngrad.cells.leaky.LeakyCell`
for it. Detection of recurrences in a file is in :mod:`rnngrad.cells.detection`.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import torch

from . import elman, gru, gru_keras, leaky, lstm
from .base import CellWeights

CELLS: dict[str, ModuleType] = {module.NAME: module
                                for module in (elman, gru, lstm, gru_keras, leaky)}
# Only PyTorch's own cells are guessed from the row count of weight_hh; the others are named by
# the file format (Keras, ONNX) or the mapping that describes them.
CELL_BY_GATE_COUNT: dict[int, str] = {module.GATE_COUNT: module.NAME
                                      for module in (elman, gru, lstm)}
ACTIVATIONS = ("tanh", "relu")


@dataclass(frozen=True, kw_only=True)
class Recurrence:
    """One recurrence: a layer and direction of an RNN module, and the tensors it uses.

    ``module`` is the key prefix without its trailing dot (``"encoder.rnn"``; ``""`` for a
    bare state dict). ``nonlinearity`` is the Elman activation (``"tanh"``/``"relu"``) or
    ``"sigmoid/tanh"`` for gated cells; ``nonlinearity_source`` says where it came from:
    ``"metadata"``, ``"option"``, ``"default"`` or ``"cell"`` (or ``"map"``/``"convention"``
    for research checkpoints).

    How a non-PyTorch file was understood: ``convention`` (format and layer, e.g. "Keras LSTM,
    CuDNNLSTM weights"), ``gate_order`` (the file's gate order and rnngrad's), ``orientation``
    (how matrices were transposed to rows = gates/new state), ``leak`` α of a ``leaky`` cell and
    ``leak_source``. ``low_rank`` (a :class:`rnngrad.lowrank.LowRank`) names the factors when
    W = scale · m nᵀ, so spectra come from the small r × r problem. ``sources`` are the file's
    own tensors the (derived) weights were computed from.
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
    leak: float | None = None
    leak_source: str = ""
    convention: str = ""
    gate_order: str = ""
    orientation: str = ""
    low_rank: object | None = None
    sources: tuple[str, ...] = ()

    @property
    def kind(self):
        """The cell's module (or, for ``leaky``, a cell object with α and φ bound)."""
        if self.cell == leaky.NAME:
            return leaky.LeakyCell(alpha=1.0 if self.leak is None else self.leak,
                                   nonlinearity=self.nonlinearity)
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
            **self._understood_fields(),
        }

    def _understood_fields(self) -> dict[str, object]:
        """Only set for files read through a format, map or ``--leak`` (absent otherwise)."""
        fields: dict[str, object] = {}
        if self.leak is not None:
            fields.update(leak=self.leak, leak_source=self.leak_source)
        for name in ("convention", "gate_order", "orientation"):
            if getattr(self, name):
                fields[name] = getattr(self, name)
        if self.low_rank is not None:
            fields["low_rank"] = self.low_rank.describe()
        return fields

    def understanding(self) -> str | None:
        """One line on how the file was understood, for notes; None for plain PyTorch files."""
        parts = [self.convention] if self.convention else []
        if self.gate_order:
            parts.append(f"gate order {self.gate_order}")
        if self.orientation:
            parts.append(self.orientation)
        if self.low_rank is not None:
            parts.append(f"low rank: {self.low_rank.describe()}")
        if self.leak is not None:
            form = "" if self.convention else "rate RNN x' = (1−α)x + α(W φ(x) + W_in u + b), "
            parts.append(f"{form}leak α = {self.leak:g} ({self.leak_source or 'given'}), "
                         f"φ = {self.nonlinearity} ({self.nonlinearity_source})")
        return f"{self.label}: " + "; ".join(parts) if parts else None


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
