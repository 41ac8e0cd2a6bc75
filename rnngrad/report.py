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
