"""Typed, frozen results shared by every renderer and the Python API, and their JSON form.

Reports hold plain numbers, strings and tuples (no tensors). ``to_dict`` gives the JSON
document of CONTRACT.md: every non-finite float becomes ``null`` (the field's neighbour
``<field>_reason`` says why), so the output is always valid JSON.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from .cells import Recurrence
from .spectral import MatrixSpectrum

SCHEMA_VERSION = 1


@dataclass(frozen=True, kw_only=True)
class ModelInfo:
    path: str
    format: str
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "format": self.format, "sha256": self.sha256}


@dataclass(frozen=True, kw_only=True)
class TensorRow:
    name: str
    shape: tuple[int, ...]
    dtype: str
    used_by: str | None


@dataclass(frozen=True, kw_only=True)
class InspectReport:
    model: ModelInfo
    tensors: tuple[TensorRow, ...]
    recurrences: tuple[Recurrence, ...]
    notes: tuple[str, ...] = ()
    metadata: tuple[tuple[str, str], ...] = ()
    command: str = "inspect"

    @property
    def unused(self) -> tuple[TensorRow, ...]:
        return tuple(row for row in self.tensors if row.used_by is None)

    def to_dict(self) -> dict[str, Any]:
        return _document(self, {
            "tensors": [{"name": t.name, "shape": list(t.shape), "dtype": t.dtype,
                         "used_by": t.used_by} for t in self.tensors],
            "recurrences": [_recurrence_dict(rec) for rec in self.recurrences],
            "unused_tensors": [t.name for t in self.unused],
            "metadata": dict(self.metadata),
            "notes": list(self.notes),
        })


@dataclass(frozen=True, kw_only=True)
class RestJacobian:
    """The step Jacobian linearised at s = 0, x = 0 (biases included)."""

    size: int
    spectral_radius: float
    norm: float


@dataclass(frozen=True, kw_only=True)
class RecurrenceSpectrum:
    recurrence: Recurrence
    blocks: tuple[tuple[str, MatrixSpectrum], ...]
    gamma: float
    bound: float
    bound_block: str
    rest: RestJacobian
    verdict: str
    reason: str

    def block(self, name: str) -> MatrixSpectrum:
        return dict(self.blocks)[name]


@dataclass(frozen=True, kw_only=True)
class SpectrumReport:
    model: ModelInfo
    recurrences: tuple[RecurrenceSpectrum, ...]
    top: int
    notes: tuple[str, ...] = ()
    command: str = "spectrum"

    def to_dict(self) -> dict[str, Any]:
        return _document(self, {
            "top": self.top,
            "recurrences": [_spectrum_dict(item) for item in self.recurrences],
            "notes": list(self.notes),
        })


def _document(report: Any, body: dict[str, Any]) -> dict[str, Any]:
    from . import __version__

    head = {"schema_version": SCHEMA_VERSION, "rnngrad_version": __version__,
            "command": report.command, "model": report.model.to_dict()}
    return finite_json({**head, **body})


def _recurrence_dict(rec: Recurrence) -> dict[str, Any]:
    return {**rec.identity(), "weight_ih": rec.weight_ih, "bias_ih": rec.bias_ih,
            "bias_hh": rec.bias_hh, "weight_hr": rec.weight_hr, "state_size": rec.state_size,
            "missing": list(rec.missing), "cell_module": rec.cell_module}


def _spectrum_dict(item: RecurrenceSpectrum) -> dict[str, Any]:
    return {
        **item.recurrence.identity(),
        "gamma": item.gamma, "bound": item.bound, "bound_block": item.bound_block,
        "verdict": item.verdict, "reason": item.reason,
        "rest_jacobian": dataclasses.asdict(item.rest),
        "blocks": {name: _block_dict(spec) for name, spec in item.blocks},
    }


def _block_dict(spec: MatrixSpectrum) -> dict[str, Any]:
    data = dataclasses.asdict(spec)
    for key in ("eigenvalues", "leading_eigenvector"):
        data[key] = [list(pair) for pair in data[key]]
    data["leading_eigenvalue"] = list(data["leading_eigenvalue"])
    if spec.condition_number is None:
        data["condition_number_reason"] = "sigma_min is 0: the matrix is singular"
    return data


def finite_json(value: Any, _key: str = "") -> Any:
    """Replace NaN/±Inf floats by None, recursively, so ``json.dumps`` stays strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out[key] = finite_json(item, key)
            if isinstance(item, float) and not math.isfinite(item) and f"{key}_reason" not in value:
                out[f"{key}_reason"] = "nan" if math.isnan(item) else (
                    "overflow" if item > 0 else "underflow")
        return out
    if isinstance(value, (list, tuple)):
        return [finite_json(item) for item in value]
    return value


@dataclass(frozen=True, kw_only=True)
class LagRow:
    """One lag of a profile: norms are over the probe sequences (geometric mean, min, max).

    ``norm`` is None where it over- or underflows float64; ``log10_norm`` is always finite
    unless the product is exactly zero (then None, with a reason).
    """

    lag: int
    norm: float | None
    norm_min: float | None
    norm_max: float | None
    log10_norm: float
    log10_norm_min: float
    log10_norm_max: float
    frobenius: float | None
    log10_frobenius: float
    rate: float | None
    grad_norm: float | None
    log10_grad_norm: float
    flag: str | None


@dataclass(frozen=True, kw_only=True)
class Directions:
    """The exploding directions at the largest lag (seed: the direction v).

    ``right`` is the state direction at T−ℓ that grows most (top right singular vector, the
    principal direction over probes), ``left`` where it lands at T. Cosines compare them with
    the leading eigenvectors of ``reference`` (W_hh for Elman cells, the rest-state Jacobian
    for gated cells): ``right`` with the left eigenvector, ``left`` with the right one (for a
    complex pair, the cosine with their real 2-D span).
    """

    lag: int
    log10_sigma: float
    right: tuple[float, ...]
    left: tuple[float, ...]
    consistency_right: float
    consistency_left: float
    cos_right_leading: float
    cos_left_leading: float
    reference: str
    leading_eigenvalue: tuple[float, float]
    top_units_right: tuple[int, ...]
    top_units_left: tuple[int, ...]
    alignment: str


@dataclass(frozen=True, kw_only=True)
class RecurrenceProfile:
    recurrence: Recurrence
    state: str
    state_size: int
    rows: tuple[LagRow, ...]
    directions: Directions | None
    share_beyond_10: float | None
    share_beyond_100: float | None
    verdict: str
    reason: str
    overflow_step: int | None = None


@dataclass(frozen=True, kw_only=True)
class BpttReport:
    model: ModelInfo
    probe: tuple[tuple[str, Any], ...]
    options: tuple[tuple[str, Any], ...]
    recurrences: tuple[RecurrenceProfile, ...]
    clip: Any
    notes: tuple[str, ...] = ()
    command: str = "bptt"

    def to_dict(self) -> dict[str, Any]:
        return _document(self, {
            "probe": dict(self.probe),
            "options": dict(self.options),
            "recurrences": [_profile_dict(item) for item in self.recurrences],
            "clip": _clip_dict(self.clip),
            "notes": list(self.notes),
        })


def _profile_dict(item: RecurrenceProfile) -> dict[str, Any]:
    data = {**item.recurrence.identity(), "state": item.state, "state_size": item.state_size,
            "verdict": item.verdict, "reason": item.reason,
            "overflow_step": item.overflow_step,
            "share_beyond_10": item.share_beyond_10, "share_beyond_100": item.share_beyond_100,
            "lags": [_lag_dict(row) for row in item.rows],
            "directions": None}
    if item.directions is not None:
        directions = dataclasses.asdict(item.directions)
        directions["leading_eigenvalue"] = list(directions["leading_eigenvalue"])
        data["directions"] = directions
    return data


def _lag_dict(row: LagRow) -> dict[str, Any]:
    data = dataclasses.asdict(row)
    for key in ("norm", "norm_min", "norm_max", "frobenius", "grad_norm", "rate"):
        if data[key] is None:
            data[f"{key}_reason"] = _reason(row.log10_norm if key != "grad_norm"
                                            else row.log10_grad_norm)
    return data


def _reason(log10_value: float) -> str:
    if math.isinf(log10_value) and log10_value < 0:
        return "the product is exactly zero"
    return "overflow: beyond float64, see the log10 field" if log10_value > 0 else \
        "underflow: below float64, see the log10 field"


def _clip_dict(clip: Any) -> dict[str, Any] | None:
    if clip is None:
        return None
    return {**dataclasses.asdict(clip), "line": clip.line}
