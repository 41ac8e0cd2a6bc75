"""The typed result of ``rnngrad surface`` (docs/surface.md, "JSON").

Values that are not finite numbers (a loss or gradient past float64) are None, and the JSON
says why in a ``<field>_reason`` next to them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from rnngrad.bptt.clipping import ClipRecommendation
from rnngrad.cells import RecurrenceId
from rnngrad.probes.spec import ProbeEcho
from rnngrad.report import Document, Record
from rnngrad.surface.options import SurfaceOptions

OVERFLOW = "not a finite number in float64: the forward pass or its derivatives overflowed"


class WallKind(enum.StrEnum):
    """How a wall showed on the slice: E jumps across one interval of it."""

    JUMP = "jump"


class Regime(enum.StrEnum):
    """How the gradient grows with the BPTT horizon (``by_length``)."""

    EXPLODING = "exploding"
    STEADY = "steady"
    UNDETERMINED = "undetermined"


def _reasons(record: Record, names: tuple[str, ...], reason: str = OVERFLOW) -> dict[str, Any]:
    return {f"{name}_reason": reason for name in names if getattr(record, name) is None}


@dataclass(frozen=True, kw_only=True)
class ParameterRow(Record):
    """One tensor of the module: its name, shape, whether it is in θ, and ‖∂E/∂(tensor)‖
    (None for tensors outside θ)."""

    name: str
    shape: tuple[int, ...]
    in_theta: bool
    gradient_norm: float | None


@dataclass(frozen=True, kw_only=True)
class Curvature(Record):
    """The Hessian H = ∂²E/∂θ² at θ, by Lanczos on exact Hessian-vector products.

    ``top_eigenvalue``: λ_1, the eigenvalue of largest magnitude (the dominant curvature, of
    either sign); ``largest_eigenvalue`` / ``smallest_eigenvalue``: the extremes λ_max, λ_min,
    each with its residual ‖H y − λ y‖ (an eigenvalue of H lies within it) and error bound
    min(r, r²/gap). ``along_gradient``: ĝᵀHĝ with ĝ = g/‖g‖; ``cos_gradient_top``:
    |cos(g, u_1)| with λ_1's eigenvector. ``products``: Hessian-vector products used,
    ``lanczos_steps``, ``converged``: the residuals met the tolerance (or the Krylov space was
    the whole space).
    """

    top_eigenvalue: float | None
    largest_eigenvalue: float | None
    largest_residual: float | None
    largest_error_bound: float | None
    smallest_eigenvalue: float | None
    smallest_residual: float | None
    smallest_error_bound: float | None
    along_gradient: float | None
    cos_gradient_top: float | None
    products: int
    lanczos_steps: int
    converged: bool

    def json_extras(self) -> dict[str, Any]:
        return {**_reasons(self, ("top_eigenvalue", "largest_eigenvalue", "smallest_eigenvalue",
                                  "largest_residual", "smallest_residual",
                                  "largest_error_bound", "smallest_error_bound")),
                **_reasons(self, ("cos_gradient_top", "along_gradient"),
                           "the gradient is zero or not finite")}


@dataclass(frozen=True, kw_only=True)
class LengthRow(Record):
    """The gradient and curvature of E through the last ``steps`` steps only (truncated BPTT
    with horizon ``steps``; the forward values, and E, are those of the whole probe).
    ``top_residual``: ‖H u_1 − λ_1 u_1‖, the accuracy of λ_1 (Lanczos to a looser
    tolerance than the main curvature)."""

    steps: int
    gradient_norm: float | None
    top_eigenvalue: float | None
    top_residual: float | None
    along_gradient: float | None
    cos_gradient_top: float | None

    def json_extras(self) -> dict[str, Any]:
        return _reasons(self, ("gradient_norm", "top_eigenvalue", "top_residual",
                               "along_gradient", "cos_gradient_top"))


@dataclass(frozen=True, kw_only=True)
class Growth(Record):
    """Per-step growth rates fitted to ``by_length`` (least squares of log10 |value| on the
    horizon, as 10^slope), the regime and a sentence saying what they mean."""

    gradient_rate: float | None
    top_eigenvalue_rate: float | None
    along_gradient_rate: float | None
    regime: Regime
    sentence: str


@dataclass(frozen=True, kw_only=True)
class SlicePoint(Record):
    """E(θ − t ĝ) at ``step`` t."""

    step: float
    loss: float | None

    def json_extras(self) -> dict[str, Any]:
        return _reasons(self, ("loss",))


@dataclass(frozen=True, kw_only=True)
class Wall(Record):
    """A wall ahead of a descent step on the slice: where E jumps.

    ``distance``: the step t along −ĝ to the steepest point of the jump (located to 1e-9 of the
    slice's span by bisection); ``loss_before``/``loss_after``: E at the slice points on
    either side; ``slope``/``curvature``: dE/dt and d²E/dt² at the wall; ``jump_ratio``: the
    jump over the median change between neighbouring slice points.
    """

    kind: WallKind
    distance: float
    loss_before: float | None
    loss_after: float | None
    slope: float | None
    curvature: float | None
    jump_ratio: float | None

    def json_extras(self) -> dict[str, Any]:
        return _reasons(self, ("loss_before", "loss_after", "slope", "curvature",
                               "jump_ratio"))


@dataclass(frozen=True, kw_only=True)
class Step(Record):
    """One SGD step θ − ηg from θ, unclipped and clipped at ``max_norm``.

    ``step_length`` = η‖g‖, ``clipped_length`` = η·min(‖g‖, max_norm); ``loss``/
    ``loss_unclipped``/``loss_clipped``: E before and after. ``wall_distance``: the wall ahead
    on the slice (None: no wall within the span). ``crosses_wall`` / ``clipped_crosses_wall``:
    whether each step reaches past it. ``stable_lr`` = 2/λ_max for the largest positive
    eigenvalue (a quadratic model is stable along that direction for η < 2/λ_max);
    ``max_norm_to_stay``: the largest threshold that keeps a step of this η short of the
    wall, wall_distance/η. ``sentence``: what a user reads.
    """

    lr: float
    gradient_norm: float | None
    max_norm: float | None
    max_norm_source: str
    step_length: float | None
    clipped_length: float | None
    loss: float | None
    loss_unclipped: float | None
    loss_clipped: float | None
    wall_distance: float | None
    crosses_wall: bool | None
    clipped_crosses_wall: bool | None
    stable_lr: float | None
    max_norm_to_stay: float | None
    sentence: str

    def json_extras(self) -> dict[str, Any]:
        return {**_reasons(self, ("gradient_norm", "step_length", "clipped_length", "loss",
                                  "loss_unclipped", "loss_clipped")),
                **_reasons(self, ("wall_distance",), "no wall on the slice ahead of the step"),
                **_reasons(self, ("stable_lr",), "no positive curvature: no stability limit")}


@dataclass(frozen=True, kw_only=True)
class PathPoint(Record):
    """One point of an SGD path: E, ‖g‖ there, the length of the step taken from it, and its
    coordinates on the grid's axes (empty without ``--vary``)."""

    loss: float | None
    gradient_norm: float | None
    step_length: float | None
    coordinates: tuple[float, ...] = ()

    def json_extras(self) -> dict[str, Any]:
        return {**_reasons(self, ("loss", "gradient_norm")),
                **_reasons(self, ("step_length",), "no step is taken from the last point of a "
                                                   "path, nor where E or g is not finite")}


@dataclass(frozen=True, kw_only=True)
class Paths(Record):
    """``sgd_steps`` SGD steps from θ at the learning rate η, unclipped and clipped at
    ``max_norm`` (the same threshold all along); a path stops where E stops being finite.
    ``sentence`` compares them."""

    unclipped: tuple[PathPoint, ...]
    clipped: tuple[PathPoint, ...]
    sentence: str


@dataclass(frozen=True, kw_only=True)
class Axis(Record):
    """One ``--vary`` axis: a parameter element (``kind`` ``parameter``: ``values`` are its
    values, ``origin`` its value in the file) or a unit direction (``gradient``: −ĝ,
    ``curvature``: u_1, ``random``: filter-normalised; ``values`` are steps t along it,
    ``origin`` 0). ``description`` says which."""

    name: str
    kind: str
    values: tuple[float, ...]
    origin: float
    description: str


@dataclass(frozen=True, kw_only=True)
class Grid(Record):
    """E over the ``--vary`` axes: ``loss[i]`` (one axis) or ``loss[i][j]`` (two: i along
    the first, j along the second); None where E is not finite."""

    axes: tuple[Axis, ...]
    loss: tuple[tuple[float | None, ...], ...]

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        if len(self.axes) == 1:
            data["loss"] = data["loss"][0]
        if any(value is None for row in self.loss for value in row):
            data["loss_reason"] = "null where E is not finite (the forward pass overflowed)"
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Grid:
        if isinstance(data, dict) and data.get("loss") and not isinstance(data["loss"][0], list):
            data = {**data, "loss": [data["loss"]]}
        return super().from_dict(data)


@dataclass(frozen=True, kw_only=True)
class SurfaceReport(Document):
    """E at θ, its gradient and curvature, their growth with the horizon, the slice along the
    gradient with its wall, one SGD step and the paths of a few, and the ``--vary`` grid."""

    command = "surface"
    probe: ProbeEcho
    options: SurfaceOptions
    module: str
    recurrences: tuple[RecurrenceId, ...]
    loss_name: str
    parameter_count: int
    parameters: tuple[ParameterRow, ...]
    loss: float | None
    gradient_norm: float | None
    curvature: Curvature
    by_length: tuple[LengthRow, ...]
    growth: Growth
    slice: tuple[SlicePoint, ...]
    wall: Wall | None
    step: Step
    clip: ClipRecommendation
    paths: Paths
    grid: Grid | None = None
    notes: tuple[str, ...] = field(default=())

    def json_extras(self) -> dict[str, Any]:
        return _reasons(self, ("loss", "gradient_norm"))
