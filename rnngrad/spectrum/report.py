"""The typed result of ``rnngrad spectrum`` (docs/contract.md, "spectrum")."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rnngrad.cells import RecurrenceId
from rnngrad.report import Document, Record
from rnngrad.spectrum.verdict import SpectrumVerdict


@dataclass(frozen=True, kw_only=True)
class MatrixSpectrum(Record):
    """Spectral facts of one square matrix A (n × n).

    ``eigenvalues`` are the top ``top`` by modulus, as (re, im) pairs, largest first;
    ``leading_eigenvector`` is a unit vector of (re, im) pairs with its largest component real
    and positive (empty when not requested). ``condition_number`` is None when σ_min = 0.
    ``all_eigenvalues`` (by modulus, largest first) and ``singular_values`` (descending) are
    every value, kept only when asked for (``spectrum --plot``; they grow with n).
    """

    size: int
    spectral_radius: float
    sigma_max: float
    sigma_min: float
    condition_number: float | None
    eigenvalues: tuple[tuple[float, float], ...]
    outside_unit_circle: int
    outside_inverse_gamma: int
    leading_eigenvalue: tuple[float, float]
    leading_eigenvector: tuple[tuple[float, float], ...]
    all_eigenvalues: tuple[tuple[float, float], ...] | None = None
    singular_values: tuple[float, ...] | None = None

    def json_extras(self) -> dict[str, Any]:
        if self.condition_number is None:
            return {"condition_number_reason": "sigma_min is 0: the matrix is singular"}
        return {}


@dataclass(frozen=True, kw_only=True)
class Block(Record):
    """One square recurrent matrix of a recurrence, by gate name (``hh``; ``i f g o``;
    ``r z n``; for a leaky cell also ``eff``, the effective matrix at rest)."""

    name: str
    spectrum: MatrixSpectrum = field(metadata={"json": "flatten"})


@dataclass(frozen=True, kw_only=True)
class RestJacobian(Record):
    """The step Jacobian linearised at s = 0, x = 0 (biases included): size, ρ and ‖·‖₂."""

    size: int
    spectral_radius: float
    norm: float


@dataclass(frozen=True, kw_only=True)
class RecurrenceSpectrum(Record):
    """The spectrum of one recurrence: its blocks, γ, the bound γ·σ_max of ``bound_block``,
    the rest-state Jacobian and a verdict with its reason in words."""

    recurrence: RecurrenceId = field(metadata={"json": "flatten"})
    gamma: float
    bound: float
    bound_block: str
    verdict: SpectrumVerdict
    reason: str
    rest_jacobian: RestJacobian
    blocks: tuple[Block, ...] = field(metadata={"json": "by_name"})

    def block(self, name: str) -> MatrixSpectrum:
        """The spectrum of the block ``name``; KeyError naming the blocks there are."""
        for block in self.blocks:
            if block.name == name:
                return block.spectrum
        raise KeyError(f"no block {name!r}; blocks: {', '.join(b.name for b in self.blocks)}")


@dataclass(frozen=True, kw_only=True)
class SpectrumReport(Document):
    """Every recurrence's spectrum, in file order; ``top`` eigenvalues listed per block."""

    command = "spectrum"
    top: int
    recurrences: tuple[RecurrenceSpectrum, ...]
    notes: tuple[str, ...] = ()
