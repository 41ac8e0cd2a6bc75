"""What every report shares: typed records that round-trip through JSON, and the model's identity.

Reports are trees of frozen dataclasses holding plain numbers, strings, enums and tuples (no
tensors, no NaN: a value that is not a finite number is ``None``, and the JSON says why in a
``<field>_reason`` next to it). They are defined next to the analysis that makes them
(:mod:`rnngrad.inspection`, :mod:`rnngrad.spectrum.report`, :mod:`rnngrad.bptt.report`,
:mod:`rnngrad.gate.check`, ...) as subclasses of :class:`Record`, whose ``to_dict`` gives the
JSON of docs/contract.md and whose ``from_dict`` reads it back: ``R.from_dict(r.to_dict()) == r``.

How a field is written is decided by its type and, where the contract's JSON is not the plain
field-by-field form, by its ``metadata["json"]``:

- ``"flatten"``: the record's fields are written into the parent object (the identity of a
  recurrence on every per-recurrence object);
- ``"by_name"``: a tuple of records with a ``name`` is written as an object keyed by name
  (the gate blocks of a spectrum);
- ``"skip"``: not written (a value only the Python API holds);

and ``metadata["json_name"]`` names the key when it differs from the field's name.

Top-level reports (:class:`Document`) start with ``schema_version``, ``rnngrad_version``,
``command`` and ``model``.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import math
import types
import typing
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from rnngrad._version import __version__

SCHEMA_VERSION = 1

R = TypeVar("R", bound="Record")


class Record:
    """A frozen dataclass that writes itself as JSON-ready data and reads itself back."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON object: plain dicts, lists, strings, finite floats, ints, bools, None."""
        out: dict[str, Any] = {}
        for name, key, mode in _json_plan(type(self)):
            value = getattr(self, name)
            if mode == "flatten":
                out.update(encode(value))
            elif mode == "by_name":
                out[key] = {item.name: _without_name(encode(item)) for item in value}
            else:
                out[key] = encode(value)
        out.update(self.json_extras())
        return out

    def json_extras(self) -> dict[str, Any]:
        """Fields the JSON carries beyond the record's own (derived values, reasons)."""
        return {}

    @classmethod
    def from_dict(cls: type[R], data: dict[str, Any]) -> R:
        """The record back from :meth:`to_dict`'s output; unknown keys are ignored."""
        if not isinstance(data, dict):
            raise ValueError(f"{cls.__name__}: expected a JSON object, got {type(data).__name__}")
        hints = typing.get_type_hints(cls)
        values: dict[str, Any] = {}
        for spec in dataclasses.fields(cls):  # type: ignore[arg-type]
            mode = spec.metadata.get("json")
            key = spec.metadata.get("json_name", spec.name)
            hint = hints[spec.name]
            if mode == "skip" or not spec.init:
                continue
            if mode == "flatten":
                values[spec.name] = decode(hint, data)
            elif mode == "by_name":
                item_type = typing.get_args(hint)[0]
                values[spec.name] = tuple(decode(item_type, {**item, "name": name})
                                          for name, item in data[key].items())
            elif key in data:
                values[spec.name] = decode(hint, data[key])
        return cls(**values)


@functools.cache
def _json_plan(cls: type) -> tuple[tuple[str, str, str | None], ...]:
    """(field, JSON key, mode) of each written field of a record class, worked out once: a
    report of 600,000 tensors writes 600,000 rows."""
    return tuple((spec.name, spec.metadata.get("json_name", spec.name), spec.metadata.get("json"))
                 for spec in dataclasses.fields(cls) if spec.metadata.get("json") != "skip")


def _without_name(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key != "name"}


def encode(value: Any) -> Any:
    """A report value as JSON-ready data (records, enums, tuples, dicts, finite floats)."""
    if value is None or type(value) in (str, int, bool):
        return value
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (tuple, list)):
        return [encode(item) for item in value]
    if isinstance(value, dict):
        return {str(key): encode(item) for key, item in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {spec.name: encode(getattr(value, spec.name)) for spec in dataclasses.fields(value)}
    return value


def decode(hint: Any, value: Any) -> Any:
    """``value`` (JSON data) as the type ``hint``: the inverse of :func:`encode`."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [arg for arg in args if arg is not type(None)]
        return decode(options[0], value)
    if hint is Any:
        return value
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(decode(args[0], item) for item in value)
        return tuple(decode(arg, item) for arg, item in zip(args, value))
    if origin in (dict, typing.Mapping) or hint is dict:
        item_type = args[1] if args else Any
        return {key: decode(item_type, item) for key, item in value.items()}
    if isinstance(hint, type) and issubclass(hint, Record):
        return hint.from_dict(value)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        field_hints = typing.get_type_hints(hint)
        return hint(**{spec.name: decode(field_hints[spec.name], value[spec.name])
                       for spec in dataclasses.fields(hint)
                       if spec.init and spec.name in value})
    if hint is float:
        return float(value)
    if hint in (int, str, bool):
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            raise ValueError(f"expected {hint.__name__}, got {value!r}")
        return value
    return value


def finite_or_none(value: float) -> float | None:
    """``value`` if it is a finite float, else None (reports never hold NaN or ±inf)."""
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True, kw_only=True)
class ModelInfo(Record):
    """Which file (or in-memory model) a report is about: path, format, sha256 of its bytes."""

    path: str
    format: str
    sha256: str

    @classmethod
    def of(cls, bundle: Any) -> ModelInfo:
        """The identity of a :class:`~rnngrad.io.WeightBundle`."""
        return cls(path=bundle.path, format=bundle.format, sha256=bundle.sha256)


@dataclass(frozen=True, kw_only=True)
class Document(Record):
    """A top-level report: the JSON starts with the contract's head fields."""

    command: ClassVar[str] = ""
    model: ModelInfo

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        head = {"schema_version": SCHEMA_VERSION, "rnngrad_version": __version__,
                "command": self.command, "model": body.pop("model")}
        return {**head, **body}

    @classmethod
    def from_dict(cls: type[R], data: dict[str, Any]) -> R:
        command = data.get("command") if isinstance(data, dict) else None
        if command != cls.command:  # type: ignore[attr-defined]
            raise ValueError(f"not a {cls.command} report: command is {command!r}")  # type: ignore[attr-defined]
        return super().from_dict(data)  # type: ignore[misc]


def finite_json(value: Any, _key: str = "") -> Any:
    """Replace NaN/±Inf floats by None, recursively, so ``json.dumps`` stays strict JSON; a
    ``<key>_reason`` is added next to each replaced value of an object."""
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


def power10(log_value: float | None) -> float | None:
    """10**x when it is a normal float64, else None (a report's log10 field carries it)."""
    if log_value is None or not math.isfinite(log_value) or not -307 < log_value < 308:
        return None
    return float(10.0 ** log_value)


def log10_value(value: float | None) -> float:
    """A report's log10 field as a float: None (an exactly zero product) is −∞."""
    return -math.inf if value is None else value
