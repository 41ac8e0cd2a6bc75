"""The typed summary of a :class:`~rnngrad.train.monitor.GradientMonitor`: the gradient norms
seen at every step and the profile measured every N steps."""

from __future__ import annotations

from dataclasses import dataclass

from rnngrad.bptt.verdict import ProfileVerdict
from rnngrad.report import Document, Record


@dataclass(frozen=True, kw_only=True)
class NormStats(Record):
    """Statistics of the parameter-gradient norms ‖∇θ‖ seen (finite ones; None if none)."""

    count: int
    nonfinite: int
    mean: float | None
    median: float | None
    p10: float | None
    maximum: float | None
    last: float | None


@dataclass(frozen=True, kw_only=True)
class RecurrencePoint(Record):
    """One recurrence at one measurement: ρ (W_hh for Elman cells, the rest-state Jacobian
    otherwise), the bound γσ_max, log10 ‖∂s_T/∂s_(T−ℓ)‖ at the first and the largest lag, the
    verdict, and the largest Lyapunov exponent λ_1 (natural log per step; None when not
    measured)."""

    label: str
    spectral_radius: float
    bound: float
    log10_norm_first: float | None
    log10_norm_last: float | None
    lag_last: int
    verdict: ProfileVerdict
    lyapunov: float | None = None


@dataclass(frozen=True, kw_only=True)
class ProfilePoint(Record):
    """The measurements taken after training step ``step``."""

    step: int
    recurrences: tuple[RecurrencePoint, ...]


@dataclass(frozen=True, kw_only=True)
class MonitorSummary(Document):
    """What a monitor saw: ``steps`` training steps, their gradient norms, and the profile
    every ``every`` steps (``points``, in order). ``model`` is the live module's identity at
    the last measurement (sha256 of its weights then)."""

    command = "monitor"
    steps: int
    every: int
    lags: str
    grad_norms: NormStats
    points: tuple[ProfilePoint, ...]
