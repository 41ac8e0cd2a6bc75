"""How gradient and curvature grow with the BPTT horizon (the seed: "when the first derivative
explodes, so does the second").

For a horizon of T steps the gradient and the Hessian are those of E through its last T steps
only (truncated BPTT, :meth:`rnngrad.surface.objective.Objective.truncated`): the terms of
seed eq. (4) with k > T_probe − T. Growth rates are least-squares fits of log10 |value| against
T, given per step as 10^slope.

Why the rates can differ: with E = ℓ(y) for an output y(θ),

    ∇E = J ℓ'(y),        H = Jᵀ ℓ''(y) J + Σ_i ℓ'_i(y) ∂²y_i/∂θ²,      J = ∂y/∂θ.

When J grows like α^T, the second term grows like α^T (the paper's ∂²x_t/∂w² ∝ t(t−1)w^(t−2)
next to ∂x_t/∂w ∝ t w^(t−1)) and the first, the Gauss–Newton term, like α^(2T). A readout
loss (ℓ'' = 0) has only the second; mse, ce and squared have both, and the curvature then
grows at up to the square of the gradient's rate.
"""

from __future__ import annotations

import math

import numpy as np

from rnngrad.surface.report import Growth, LengthRow, Regime

EXPLODING_RATE = 1.01   # per step
EXPLODING_RATIO = 10.0  # from the shortest horizon to the longest


def default_lengths(length: int) -> tuple[int, ...]:
    """A few horizons up to the probe length: 10, 20, 50, 100, ... below it and it, or five
    evenly spaced ones when that gives fewer than four."""
    picks = sorted({n for n in (10, 20, 50, 100, 200, 500, 1000, 2000, 5000) if n < length}
                   | {length})
    if len(picks) < 4:
        picks = sorted({max(1, round(length * k / 5)) for k in range(1, 6)})
    return tuple(picks)


def fit_rate(steps: list[int], values: list[float | None]) -> float | None:
    """10^slope of the least-squares line through (T, log10 |value|); None below two points."""
    pairs = [(t, math.log10(abs(v))) for t, v in zip(steps, values)
             if v is not None and math.isfinite(v) and v != 0]
    if len(pairs) < 2 or len({t for t, _ in pairs}) < 2:
        return None
    x, y = np.array(pairs).T
    slope = float(np.polyfit(x, y, 1)[0])
    return 10.0 ** slope if abs(slope) < 300 else None


def growth(rows: tuple[LengthRow, ...]) -> Growth:
    """The fitted rates of ``rows`` and what they say."""
    steps = [row.steps for row in rows]
    rates = {name: fit_rate(steps, [getattr(row, name) for row in rows])
             for name in ("gradient_norm", "top_eigenvalue", "along_gradient")}
    regime, sentence = _verdict(rows, rates)
    return Growth(gradient_rate=rates["gradient_norm"],
                  top_eigenvalue_rate=rates["top_eigenvalue"],
                  along_gradient_rate=rates["along_gradient"], regime=regime, sentence=sentence)


def _verdict(rows: tuple[LengthRow, ...], rates: dict[str, float | None]) -> tuple[Regime, str]:
    gradient, top, along = rates["gradient_norm"], rates["top_eigenvalue"], rates["along_gradient"]
    if gradient is None:
        return Regime.UNDETERMINED, ("too few finite horizons to fit a growth rate; give more "
                                     "--lengths")
    norms = [row.gradient_norm for row in rows if row.gradient_norm]
    ratio = norms[-1] / norms[0] if len(norms) > 1 else 1.0
    span = f"horizons {rows[0].steps}–{rows[-1].steps} steps"
    curvature = (f"|λ_1| ×{_fmt(top)} and |ĝᵀHĝ| ×{_fmt(along)} per step"
                 if top is not None else "the curvature has no finite fit")
    if gradient > EXPLODING_RATE and ratio >= EXPLODING_RATIO:
        head = (f"Exploding: over {span} the gradient norm grows ×{_fmt(gradient)} per step "
                f"({_fmt(ratio)}× in all), {curvature}")
        return Regime.EXPLODING, f"{head}: {_relation(gradient, top)}."
    return Regime.STEADY, (f"Not the exploding regime: over {span} the gradient norm changes "
                           f"×{_fmt(gradient)} per step ({_fmt(ratio)}× in all); {curvature}.")


def _relation(gradient: float, top: float | None) -> str:
    """How the curvature's rate compares with the gradient's, in the theory's words."""
    if top is None or top <= 0:
        return "the curvature has no rate to compare"
    power = math.log(top) / math.log(gradient)
    if 0.7 <= power <= 1.4:
        return ("the curvature grows at about the gradient's rate, as Pascanu et al. (2013) "
                "say: when the first derivative explodes, so does the second")
    if 1.4 < power <= 2.6:
        return (f"the curvature grows at about the square of the gradient's rate (power "
                f"{power:.2g}): the Gauss–Newton term Jᵀℓ''J of the loss dominates, and the "
                "wall steepens faster than the gradient grows")
    return f"the curvature's log-rate is {power:.2g} times the gradient's"


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"
