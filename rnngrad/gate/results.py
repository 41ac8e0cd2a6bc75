"""The typed result of ``rnngrad check`` (docs/contract.md, "check"): the key figures of
every model, one result per threshold, and the errors of models that could not be checked."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from rnngrad._version import __version__
from rnngrad.bptt.verdict import ProfileVerdict
from rnngrad.cells import RecurrenceId
from rnngrad.lyapunov.verdict import LyapunovVerdict
from rnngrad.report import SCHEMA_VERSION, ModelInfo, Record
from rnngrad.spectrum.verdict import SpectrumVerdict

CHECK_SCHEMA_VERSION = SCHEMA_VERSION


class Threshold(enum.StrEnum):
    """What a check result compares: an absolute threshold or a baseline regression."""

    EXPLODE_ABOVE = "explode-above"
    VANISH_BELOW = "vanish-below"
    MAX_SPECTRAL_RADIUS = "max-spectral-radius"
    MAX_BOUND = "max-bound"
    MAX_LYAPUNOV = "max-lyapunov"
    MIN_LYAPUNOV = "min-lyapunov"
    BASELINE = "baseline"
    BASELINE_SPECTRAL_RADIUS = "baseline-spectral-radius"
    BASELINE_NORM_DROP = "baseline-norm-drop"
    BASELINE_NORM_RISE = "baseline-norm-rise"


@dataclass(frozen=True, kw_only=True)
class Figures(Record):
    """The key figures of one recurrence that thresholds and baselines compare.

    ``spectral_radius``: ρ(W_hh) for Elman cells, else ρ of the rest-state Jacobian;
    ``bound``: γ·σ_max; ``log10_norm_last`` / ``log10_norm_max``: log10 of the per-lag norm
    at the largest lag and at its worst lag (None when not measured, or when the forward pass
    overflowed, which ``overflowed`` says). ``lyapunov``: the largest Lyapunov exponent λ_1 in
    nats per step, measured only when a Lyapunov threshold is set (None when not measured or
    not finite: ``lyapunov_verdict`` says ``unbounded`` after an overflow, ``stable`` for −∞).
    """

    recurrence: RecurrenceId = field(metadata={"json": "flatten"})
    spectral_radius: float
    bound: float
    spectrum_verdict: SpectrumVerdict
    log10_norm_last: float | None
    log10_norm_max: float | None
    lag_last: int | None
    lag_max: int | None
    verdict: ProfileVerdict | None
    overflowed: bool = False
    lyapunov: float | None = None
    lyapunov_verdict: LyapunovVerdict | None = None

    def json_extras(self) -> dict[str, Any]:
        if not self.overflowed:
            return {}
        reason = "overflow: the forward pass itself exploded"
        return {"log10_norm_last_reason": reason, "log10_norm_max_reason": reason}

    @property
    def label(self) -> str:
        """The recurrence's short name (``encoder L0``)."""
        return self.recurrence.label

    @property
    def weight_hh(self) -> str:
        """The recurrence's ``weight_hh`` tensor name, by which baselines match it."""
        return self.recurrence.weight_hh


@dataclass(frozen=True, kw_only=True)
class ModelFigures(Record):
    """One model's identity and the figures of each of its recurrences."""

    model: ModelInfo = field(metadata={"json": "flatten"})
    recurrences: tuple[Figures, ...]


@dataclass(frozen=True, kw_only=True)
class CheckResult(Record):
    """One threshold on one recurrence: the value, the limit, pass/fail and what it means."""

    model: str
    recurrence: str
    threshold: Threshold
    value: float | None
    limit: float | None
    passed: bool
    message: str
    lag: int | None = None


@dataclass(frozen=True, kw_only=True)
class ModelError(Record):
    """A model that could not be checked (unreadable, unsafe, no recurrence, bad probe)."""

    model: str
    message: str
    hint: str

    @property
    def text(self) -> str:
        """The message, naming the model when the message itself does not."""
        return self.message if self.model in self.message else f"{self.model}: {self.message}"


@dataclass(frozen=True, kw_only=True)
class ThresholdLimit(Record):
    """One threshold in force and its limit; the JSON writes them as ``thresholds``
    (name -> limit)."""

    name: str
    limit: float


@dataclass(frozen=True, kw_only=True)
class CheckReport(Record):
    """Every model's figures, every result, the thresholds in force and what was compared.

    JSON (docs/contract.md "check"): the contract's head with ``model`` the first model,
    then ``models``, ``thresholds`` (name -> limit), ``config``, ``baseline``, ``passed``,
    ``results`` and ``errors``.
    """

    command = "check"
    models: tuple[ModelFigures, ...]
    results: tuple[CheckResult, ...]
    thresholds: tuple[ThresholdLimit, ...]
    config_source: str | None = field(default=None, metadata={"json_name": "config"})
    baseline: str | None = None
    errors: tuple[ModelError, ...] = ()

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        """The results that failed, in order."""
        return tuple(result for result in self.results if not result.passed)

    @property
    def ok(self) -> bool:
        """No threshold failed and every model could be checked."""
        return not self.failed and not self.errors

    @property
    def summary(self) -> str:
        """How the check went, in words: models that could not be checked, then failed or
        passed checks (the last line of every format)."""
        total, failed = len(self.results), len(self.failed)
        checks = f"{failed} of {total} checks failed" if failed else f"all {total} checks passed"
        if not self.results and not self.errors:
            return ("nothing was checked: no thresholds are configured (set e.g. explode-above "
                    "in [tool.rnngrad] or on the command line)")
        if self.errors:
            models = len(self.models) + len(self.errors)
            errors = f"{len(self.errors)} of {models} model(s) could not be checked"
            return f"{errors}; {checks}" if self.results else errors
        return checks

    @property
    def model(self) -> ModelInfo | None:
        """The first model's identity (the contract's ``model``); None when there is no model."""
        return self.models[0].model if self.models else None

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        body["thresholds"] = {item.name: item.limit for item in self.thresholds}
        head = {"schema_version": CHECK_SCHEMA_VERSION, "rnngrad_version": __version__,
                "command": self.command,
                "model": self.model.to_dict() if self.model is not None else None}
        return {**head, "models": body.pop("models"), **body, "passed": self.ok}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckReport:
        if not isinstance(data, dict) or data.get("command") != cls.command:
            raise ValueError("not a check report")
        limits = tuple(ThresholdLimit(name=name, limit=float(limit))
                       for name, limit in data["thresholds"].items())
        return super().from_dict({**data, "thresholds": [item.to_dict() for item in limits]})
