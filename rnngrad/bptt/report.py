"""The typed result of ``rnngrad bptt`` (docs/contract.md, "bptt")."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from rnngrad.bptt.clipping import ClipRecommendation
from rnngrad.bptt.options import BpttOptions
from rnngrad.bptt.verdict import ProfileVerdict
from rnngrad.cells import RecurrenceId
from rnngrad.probes.spec import ProbeEcho
from rnngrad.report import Document, Record


class LagFlag(enum.StrEnum):
    """A lag whose norm is past a verdict threshold."""

    EXPLODE = "explode"
    VANISH = "vanish"


@dataclass(frozen=True, kw_only=True)
class LagRow(Record):
    """One lag of a profile: norms are over the probe sequences (geometric mean, min, max).

    ``norm`` is the spectral norm of ∂s_T/∂s_(T−lag); it and the other plain values are None
    where they over- or underflow float64, and the ``log10_*`` fields carry them. A ``log10_*``
    value is None only when the product is exactly zero. ``rate`` = norm^(1/lag), the mean
    factor per step; ``grad_norm`` = ‖∂E/∂s_(T−lag)‖ for the probe loss E = uᵀ s_T.
    """

    lag: int
    norm: float | None
    norm_min: float | None
    norm_max: float | None
    log10_norm: float | None
    log10_norm_min: float | None
    log10_norm_max: float | None
    frobenius: float | None
    log10_frobenius: float | None
    rate: float | None
    grad_norm: float | None
    log10_grad_norm: float | None
    flag: LagFlag | None

    def json_extras(self) -> dict[str, Any]:
        extras = {}
        for name, log_name in (("norm", "log10_norm"), ("norm_min", "log10_norm_min"),
                               ("norm_max", "log10_norm_max"), ("frobenius", "log10_frobenius"),
                               ("rate", "log10_norm"), ("grad_norm", "log10_grad_norm")):
            if getattr(self, name) is None:
                extras[f"{name}_reason"] = _reason(getattr(self, log_name))
        for name in ("log10_norm", "log10_norm_min", "log10_norm_max", "log10_frobenius",
                     "log10_grad_norm"):
            if getattr(self, name) is None:
                extras[f"{name}_reason"] = "the product is exactly zero"
        return extras


def _reason(log10_value: float | None) -> str:
    if log10_value is None:
        return "the product is exactly zero"
    return ("overflow: beyond float64, see the log10 field" if log10_value > 0 else
            "underflow: below float64, see the log10 field")


@dataclass(frozen=True, kw_only=True)
class Directions(Record):
    """The exploding directions at the largest lag (seed: the direction v).

    ``right`` is the state direction at T−ℓ that grows most (top right singular vector, the
    principal direction over probes), ``left`` where it lands at T. Cosines compare them with
    the leading eigenvectors of ``reference`` (W_hh for Elman cells, the rest-state Jacobian
    for gated cells): ``right`` with the left eigenvector, ``left`` with the right one (for a
    complex pair, the cosine with their real 2-D span).
    """

    lag: int
    log10_sigma: float | None
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
class RecurrenceProfile(Record):
    """The measured profile of one recurrence: a row per lag, the directions at the largest
    lag, the shares of the W_hh gradient beyond lags 10 and 100, and the verdict.

    ``overflow_step`` is set when the forward pass itself overflowed (then ``rows`` is
    empty and the verdict is ``exploding``). ``bound`` is Pascanu's per-step bound γ·σ_max(W_hh)
    of an Elman cell, so ‖∂s_T/∂s_(T−ℓ)‖ ≤ bound^ℓ (None for other cells, where the W_hh
    blocks bound nothing).

    ``omega`` is Pascanu's regulariser Ω = Σ_k (‖δ_(k+1) ∂s_(k+1)/∂s_k‖/‖δ_(k+1)‖ − 1)² on
    the probe loss E = uᵀ s_T (δ_k = ∂E/∂s_k over the whole state), summed over the analysed
    window (one term per step, lags 1..L), the mean over the probes; ``omega_per_step`` is
    Ω/L. Both are None when the error signal became exactly zero on a probe (a ratio 0/0),
    or when nothing was measured.
    """

    recurrence: RecurrenceId = field(metadata={"json": "flatten"})
    state: str
    state_size: int
    verdict: ProfileVerdict
    reason: str
    overflow_step: int | None = None
    share_beyond_10: float | None = None
    share_beyond_100: float | None = None
    rows: tuple[LagRow, ...] = field(default=(), metadata={"json_name": "lags"})
    directions: Directions | None = None
    bound: float | None = None
    omega: float | None = None
    omega_per_step: float | None = None

    def json_extras(self) -> dict[str, Any]:
        if self.omega is not None:
            return {}
        if not self.rows:
            return {"omega_reason": "nothing was measured"}
        return {"omega_reason": "the error signal ∂E/∂s became exactly zero on a probe: "
                                "the ratios of the later steps are 0/0"}


@dataclass(frozen=True, kw_only=True)
class BpttReport(Document):
    """The profile of every analysed recurrence, the probe really used, the options, and the
    clip recommendation (None when nothing could be run). ``caveats`` say what the verdicts
    rest on (shown with every format, even ``--quiet``); ``notes`` how the file was read."""

    command = "bptt"
    probe: ProbeEcho | None
    options: BpttOptions
    recurrences: tuple[RecurrenceProfile, ...]
    clip: ClipRecommendation | None
    caveats: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
