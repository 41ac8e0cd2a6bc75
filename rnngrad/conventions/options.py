"""How to read a model: the options every command shares (``--key``, ``--activation``,
``--leak``, ``--map``, ``--max-memory``). Torch- and NumPy-free, so the command line can
import it cheaply."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any, TypeVar

from rnngrad.cells import ACTIVATIONS, check_leak
from rnngrad.errors import OptionError
from rnngrad.limits import DEFAULT_MAX_MEMORY_GIB

O = TypeVar("O")


def check_max_memory(value: float) -> None:
    """``--max-memory`` must be a positive finite number of GiB (NaN would disable the guard)."""
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
            or value <= 0):
        raise OptionError(f"--max-memory {value!r} must be a positive number of GiB",
                          f"e.g. --max-memory {DEFAULT_MAX_MEMORY_GIB:g}")


@dataclass(frozen=True, kw_only=True)
class ReadOptions:
    """Which recurrences to find in a file and how to run them.

    ``keys``: analyse these square matrices as W_rec of Elman recurrences (``--key``, for
    hand-written RNNs). ``activation``: the Elman nonlinearity, overriding what the file
    says (``tanh`` or ``relu``). ``leak``: α = dt/τ in (0, 1]: run Elman layers as leaky rate
    cells, or override α of recognised rate models. ``map``: a TOML file describing a research
    checkpoint's recurrences (docs/formats.md). ``max_memory``: GiB an analysis may hold
    before it is refused, estimated from headers and shapes before anything is read,
    inflated or allocated (reading a tensor as float64 included).
    """

    keys: tuple[str, ...] = ()
    activation: str | None = None
    leak: float | None = None
    map: str | None = None
    max_memory: float = DEFAULT_MAX_MEMORY_GIB

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", tuple(self.keys))
        if self.activation is not None and self.activation not in ACTIVATIONS:
            raise OptionError(f"--activation {self.activation!r} is not supported",
                              f"use one of: {', '.join(ACTIVATIONS)}")
        if self.leak is not None:
            try:
                check_leak(self.leak, "--leak")
            except (TypeError, ValueError) as exc:
                raise OptionError(str(exc), "give α = dt/τ, e.g. --leak 0.1") from None
        check_max_memory(self.max_memory)

    @property
    def max_bytes(self) -> int:
        """``max_memory`` in bytes."""
        return int(self.max_memory * 1024**3)

    def read_options(self) -> ReadOptions:
        """Just the reading part (for an options class that extends this one)."""
        return ReadOptions(keys=self.keys, activation=self.activation, leak=self.leak,
                           map=self.map, max_memory=self.max_memory)


def with_settings(kind: type[O], options: O | None, settings: dict[str, Any]) -> O:
    """``options`` (or the defaults of ``kind``) with ``settings`` replacing fields by name:
    the keyword shortcuts of the Python API, ``rnngrad.spectrum(path, top=3)``."""
    base = options if options is not None else kind()
    names = {spec.name for spec in fields(base)}  # type: ignore[arg-type]
    unknown = sorted(set(settings) - names)
    if unknown:
        raise OptionError(f"unknown {kind.__name__} setting {unknown[0]!r}",
                          f"valid: {', '.join(sorted(names))}")
    return replace(base, **settings) if settings else base  # type: ignore[type-var]
