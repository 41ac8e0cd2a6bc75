"""Layer 2 of rnngrad: the cells' equations, and the :class:`Recurrence` naming one of them.

What lives here: one module per architecture with its equations, gate order and step Jacobian
in the docstring (:mod:`.elman`, :mod:`.gru`, :mod:`.gru_reset_before`, :mod:`.lstm`,
:mod:`.leaky`), each implementing :class:`~rnngrad.cells.base.Cell` (``step``, ``jacobian``,
``jacobian_product``, ``output``; the gate blocks for spectra come from :func:`gate_blocks`);
the weights of one recurrence as tensors (:mod:`.base`); running stacks and directions as
PyTorch runs them (:mod:`.stack`); the step Jacobian at rest, used by ``spectrum`` and
``bptt`` alike (:mod:`.rest`); and finding recurrences in a file by PyTorch's key patterns or
a format's layouts (:mod:`.detection`).

This module itself is torch-free: the static facts of every cell (:data:`SPECS`: gates,
γ, state size) and :class:`Recurrence` can be used to list a file's recurrences without
importing torch. ``Recurrence.equations`` imports the cell's module (and torch) when asked.

What it may import: :mod:`rnngrad.errors`, :mod:`rnngrad.io`, NumPy, torch (not here).
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rnngrad.report import Record

if TYPE_CHECKING:
    from rnngrad.cells.base import Cell
    from rnngrad.io.layout import LowRank

# The Elman nonlinearities of PyTorch's nn.RNN: what --activation and safetensors metadata name.
ACTIVATIONS = ("tanh", "relu")
# γ = sup |φ'| of every elementwise nonlinearity a cell can run (Pascanu et al. 2013, Sec. 2.1);
# the functions are in :mod:`rnngrad.cells.activations`. Formats (Keras, ONNX) may name any.
GAMMA = {"tanh": 1.0, "sigmoid": 0.25, "relu": 1.0, "identity": 1.0, "hard_sigmoid": 1 / 6,
         "hard_sigmoid_0.2": 0.2, "softsign": 1.0, "softplus": 1.0, "elu": 1.0,
         "selu": 1.7580993408473766, "silu": 1.0998393201285284, "relu6": 1.0,
         "gelu": 1.1289041451825208}
# The rate cells' nonlinearities (--map, research conventions).
LEAKY_GAMMA = {name: GAMMA[name] for name in ("tanh", "relu", "sigmoid", "identity")}
RATE_NONLINEARITIES = tuple(LEAKY_GAMMA)
# A gated cell's nonlinearity text when the file says nothing else: PyTorch's cells.
GATED_DEFAULT = "sigmoid/tanh"


@dataclass(frozen=True, kw_only=True)
class CellSpec:
    """What is known of a cell without running it.

    ``gates``: the gate blocks stacked along the rows of ``weight_hh`` (PyTorch's order);
    ``state``: the recurrent state's name in reports (``"h"``, ``"h,c"`` = [h; c], ``"x"``);
    ``module``: where its equations live.
    """

    name: str
    gates: tuple[str, ...]
    state: str
    module: str

    @property
    def gate_count(self) -> int:
        """G, the number of gate blocks stacked along the rows of ``weight_hh`` (1, 3 or 4)."""
        return len(self.gates)

    def gamma(self, nonlinearity: str) -> float:
        """γ = sup |φ'| of the nonlinearity through which W_hh acts (Elman and rate cells);
        1 for gated cells, whose gates make the bound a weak guide anyway (docs/theory.md)."""
        return GAMMA.get(nonlinearity, 1.0) if self.name in ("rnn", "leaky") else 1.0

    def state_size(self, hidden_size: int, proj_size: int) -> int:
        """The size of s: [h; c] for an LSTM (P + H with projection), else H."""
        if self.name == "lstm":
            return (proj_size or hidden_size) + hidden_size
        return hidden_size


SPECS: dict[str, CellSpec] = {spec.name: spec for spec in (
    CellSpec(name="rnn", gates=("hh",), state="h", module="rnngrad.cells.elman"),
    CellSpec(name="gru", gates=("r", "z", "n"), state="h", module="rnngrad.cells.gru"),
    CellSpec(name="lstm", gates=("i", "f", "g", "o"), state="h,c", module="rnngrad.cells.lstm"),
    CellSpec(name="gru_reset_before", gates=("r", "z", "n"), state="h",
             module="rnngrad.cells.gru_reset_before"),
    CellSpec(name="leaky", gates=("hh",), state="x", module="rnngrad.cells.leaky"),
)}
# Only PyTorch's own cells are guessed from the row count of weight_hh; the others are named by
# the file format (Keras, ONNX) or the mapping that describes them.
CELL_BY_GATE_COUNT: dict[int, str] = {SPECS[name].gate_count: name for name in ("rnn", "gru", "lstm")}


def recurrence_label(module: str, layer: int, direction: str, cell_module: bool) -> str:
    """Short human name: ``encoder L0``, ``encoder L1 rev``, or a cell module's name alone;
    ``(top)`` stands for the module of a bare state dict (``""``)."""
    where = module or "(top)"
    if cell_module:
        return where
    return f"{where} L{layer}{' rev' if direction == 'reverse' else ''}"


@dataclass(frozen=True, kw_only=True)
class RecurrenceId(Record):
    """Which recurrence a result is about, as every report names it (docs/contract.md).

    The fields of :class:`Recurrence` that identify it and say how the file was understood;
    ``leak``, ``leak_source``, ``convention``, ``gate_order``, ``orientation`` and
    ``low_rank`` (a description of W = scale · L R) are written only when set.
    """

    module: str
    cell: str
    layer: int
    direction: str
    hidden_size: int
    input_size: int | None
    proj_size: int
    weight_hh: str
    nonlinearity: str
    nonlinearity_source: str
    cell_module: bool = False
    leak: float | None = None
    leak_source: str = ""
    convention: str = ""
    gate_order: str = ""
    orientation: str = ""
    low_rank: str = ""

    _WHEN_SET = ("leak", "leak_source", "convention", "gate_order", "orientation", "low_rank")

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        if self.leak is None:
            data.pop("leak_source")
        return {key: value for key, value in data.items()
                if key not in self._WHEN_SET or value not in (None, "")}

    @property
    def label(self) -> str:
        """Short human name: ``encoder L0``, ``encoder L1 rev``, or a cell module's name."""
        return recurrence_label(self.module, self.layer, self.direction, self.cell_module)

    @property
    def spec(self) -> CellSpec:
        """The :class:`CellSpec` of ``cell``."""
        return SPECS[self.cell]

    @property
    def state_size(self) -> int:
        """The size S of the state s: P + H for an LSTM ([h; c]), else H."""
        return self.spec.state_size(self.hidden_size, self.proj_size)


@dataclass(frozen=True, kw_only=True)
class Recurrence:
    """One recurrence: a layer and direction of an RNN module, and the tensors it uses.

    ``module`` is the key prefix without its trailing dot (``"encoder.rnn"``; ``""`` for a
    bare state dict). ``nonlinearity`` is the Elman activation (``"tanh"``, ``"relu"``, or
    for Keras/ONNX files any name of :data:`GAMMA`) or, for gated cells, ``"gate/candidate"``
    (``"sigmoid/tanh"`` for PyTorch's cells; an LSTM whose cell output differs from its
    candidate has ``"gate/candidate/output"``); ``nonlinearity_source`` says where it came
    from: ``"metadata"`` (safetensors header), ``"config"`` (the layer configuration a
    Keras or ONNX file carries), ``"option"``, ``"default"`` (the file says nothing: an
    assumption, noted), ``"cell"`` (fixed by the cell type) or ``"map"``/``"convention"``
    for research checkpoints.

    ``reversed_output``: a reverse direction whose output sequence stays in the order it was
    computed (Keras ``go_backwards``), where PyTorch flips it back to input order.

    How a non-PyTorch file was understood: ``convention`` (format and layer, e.g. "Keras LSTM,
    CuDNNLSTM weights"), ``gate_order`` (the file's gate order and rnngrad's), ``orientation``
    (how matrices were transposed to rows = gates/new state), ``leak`` α of a ``leaky`` cell and
    ``leak_source``. ``low_rank`` (a :class:`rnngrad.io.layout.LowRank`) names the factors when
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
    low_rank: LowRank | None = None
    sources: tuple[str, ...] = ()
    reversed_output: bool = False

    @property
    def spec(self) -> CellSpec:
        """The :class:`CellSpec` of ``cell``."""
        return SPECS[self.cell]

    @property
    def equations(self) -> Cell:
        """The cell's equations (its module; for ``leaky``, a cell with α and φ bound).

        Imports the cell's module, and with it torch.
        """
        module: Any = importlib.import_module(self.spec.module)
        if self.cell == "leaky":
            return module.LeakyCell(alpha=1.0 if self.leak is None else self.leak,
                                    nonlinearity=self.nonlinearity)
        return module

    @property
    def gamma(self) -> float:
        """γ = sup |φ'| of the nonlinearity through which W_hh acts (1 for gated cells)."""
        return self.spec.gamma(self.nonlinearity)

    @property
    def state_size(self) -> int:
        """The size S of the state s: P + H for an LSTM ([h; c]), else H."""
        return self.spec.state_size(self.hidden_size, self.proj_size)

    @property
    def output_size(self) -> int:
        """The width of the output h this direction passes on: P with projection, else H."""
        return self.proj_size or self.hidden_size

    @property
    def tensor_names(self) -> tuple[str, ...]:
        """The tensors the recurrence uses, those it has of weight_ih, weight_hh, bias_ih, bias_hh
        and weight_hr, in that order."""
        names = (self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh, self.weight_hr)
        return tuple(name for name in names if name)

    @property
    def label(self) -> str:
        """Short human name: ``encoder L0``, ``encoder L1 rev``, or a cell module's name."""
        return recurrence_label(self.module, self.layer, self.direction, self.cell_module)

    def identity(self) -> RecurrenceId:
        """The identity fields docs/contract.md puts on every recurrence in every report."""
        return RecurrenceId(
            module=self.module, cell=self.cell, layer=self.layer, direction=self.direction,
            hidden_size=self.hidden_size, input_size=self.input_size,
            proj_size=self.proj_size, weight_hh=self.weight_hh,
            nonlinearity=self.nonlinearity, nonlinearity_source=self.nonlinearity_source,
            cell_module=self.cell_module, leak=self.leak, leak_source=self.leak_source,
            convention=self.convention, gate_order=self.gate_order,
            orientation=self.orientation,
            low_rank=self.low_rank.describe() if self.low_rank is not None else "")

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


def gate_blocks(spec: CellSpec, weight_hh: Any, weight_hr: Any = None) -> dict[str, Any]:
    """The square recurrent matrices of a cell by gate name, for spectra: the row blocks of
    ``weight_hh`` in the spec's gate order, each times ``weight_hr`` for an LSTM with
    projection (the H × H map from h̃ at t−1 to the gate's pre-activation at t).

    Works on NumPy arrays and torch tensors alike (slicing and ``@`` only), so ``spectrum`` can
    take the blocks of a file's arrays without importing torch.
    """
    rows = weight_hh.shape[0] // spec.gate_count
    blocks = {name: weight_hh[index * rows:(index + 1) * rows]
              for index, name in enumerate(spec.gates)}
    if weight_hr is not None:
        blocks = {name: block @ weight_hr for name, block in blocks.items()}
    return blocks


def check_leak(alpha: float, where: str) -> float:
    """α as a float in (0, 1], or a ValueError naming ``where`` it came from."""
    value = float(alpha)
    if not math.isfinite(value) or not 0 < value <= 1:
        raise ValueError(f"{where}: leak α = {alpha!r} must be in (0, 1] (α = dt/τ)")
    return value


__all__ = ["ACTIVATIONS", "CELL_BY_GATE_COUNT", "GAMMA", "GATED_DEFAULT", "RATE_NONLINEARITIES",
           "SPECS", "CellSpec", "Recurrence", "RecurrenceId", "check_leak", "gate_blocks",
           "recurrence_label"]
