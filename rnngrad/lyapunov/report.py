"""The typed result of ``rnngrad lyapunov`` (docs/lyapunov.md, "JSON").

Exponents are natural logarithms per step, descending. A value that is not a finite number is
None, and the JSON says why next to it: an exponent of −∞ (a direction the step Jacobians
annihilate) is written ``null`` with ``exponents_reason``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from rnngrad.cells import RecurrenceId
from rnngrad.lyapunov.meaning import entropy_rate, kaplan_yorke
from rnngrad.lyapunov.options import LyapunovOptions
from rnngrad.lyapunov.verdict import LyapunovVerdict
from rnngrad.probes.spec import ProbeEcho
from rnngrad.report import Document, Record


@dataclass(frozen=True, kw_only=True)
class RunningEstimates(Record):
    """How the top exponents converged: the running estimate (1/n) Σ_(t ≤ n) ln|R_ii|,
    averaged over the probes, at the window steps ``steps`` (log-spaced from 1 to T).
    ``exponents[i][j]`` is exponent i + 1 at ``steps[j]`` (None: −∞)."""

    steps: tuple[int, ...]
    exponents: tuple[tuple[float | None, ...], ...]


@dataclass(frozen=True, kw_only=True)
class BpttAgreement(Record):
    """``bptt``'s per-step rate at its largest lag on the same trajectory, against e^{λ_1}.

    ``log_rate`` = ln ‖∂s_T/∂s_(T−lag)‖ / lag (geometric mean over the probes), nats per
    step; ``rate`` its exponential (None past float64); ``difference`` = log_rate − λ_1.
    Both estimate the same limit; at a finite lag they differ by terms of order 1/lag.
    """

    lag: int
    log_rate: float | None
    rate: float | None
    factor: float | None
    difference: float | None
    text: str


@dataclass(frozen=True, kw_only=True)
class RecurrenceExponents(Record):
    """The top ``len(exponents)`` Lyapunov exponents of one recurrence, what they mean, and a
    verdict on λ_1.

    ``exponents`` (descending, nats per step) are means over the probes of each probe's time
    average over the window; ``exponents_stderr`` their standard error from block means
    over time (all probes' blocks pooled), ``exponents_probe_sd`` the standard deviation
    over the probes (None for one probe). ``factor`` = e^{λ_1}; ``half_life`` = ln 2/|λ_1|
    (λ_1 < 0) and ``doubling_time`` = ln 2/λ_1 (λ_1 > 0), in steps; ``time_scales`` = −1/λ_i
    for each negative exponent (None for the others). When λ_1 > ε: ``positive_count``
    exponents above ε, the Kaplan–Yorke dimension and the entropy rate (the sum of the
    positive exponents, nats per step). ``converged``: the standard error of λ_1 is at most
    ε/2, so the verdict does not hang on noise. ``overflow_step`` is set when the forward
    pass overflowed (then there are no exponents and the verdict is ``unbounded``).
    """

    recurrence: RecurrenceId = field(metadata={"json": "flatten"})
    state: str
    state_size: int
    verdict: LyapunovVerdict
    reason: str
    edge: float
    exponents: tuple[float | None, ...] = ()
    exponents_stderr: tuple[float | None, ...] = ()
    exponents_probe_sd: tuple[float | None, ...] = ()
    factor: float | None = None
    half_life: float | None = None
    doubling_time: float | None = None
    time_scales: tuple[float | None, ...] = ()
    positive_count: int | None = None
    kaplan_yorke: float | None = None
    entropy_rate: float | None = None
    converged: bool | None = None
    overflow_step: int | None = None
    running: RunningEstimates | None = None
    bptt: BpttAgreement | None = None

    @property
    def lambda_1(self) -> float | None:
        """The largest exponent: a float, −∞ for an annihilated direction, None when the
        forward pass overflowed."""
        if not self.exponents:
            return None
        return -math.inf if self.exponents[0] is None else self.exponents[0]

    def values(self) -> list[float]:
        """The exponents as floats, −∞ where None."""
        return [-math.inf if value is None else value for value in self.exponents]

    def json_extras(self) -> dict[str, Any]:
        extras: dict[str, Any] = {}
        if any(value is None for value in self.exponents):
            extras["exponents_reason"] = ("null is −∞: a step Jacobian annihilated that "
                                          "direction (e.g. dead units)")
        if self.positive_count:
            if self.kaplan_yorke is None:
                extras["kaplan_yorke_reason"] = kaplan_yorke(self.values())[1]
            if entropy_rate(self.values(), self.edge)[1]:
                extras["entropy_rate_note"] = ("every exponent computed is positive: the "
                                                 "sum is a lower bound; ask for more with --k")
        return extras


@dataclass(frozen=True, kw_only=True)
class LyapunovReport(Document):
    """The exponents of every analysed recurrence, the probe really used and the options."""

    command = "lyapunov"
    probe: ProbeEcho | None
    options: LyapunovOptions
    recurrences: tuple[RecurrenceExponents, ...]
    notes: tuple[str, ...] = ()
