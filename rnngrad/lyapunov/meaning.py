"""What a Lyapunov spectrum means in steps: pure arithmetic on the exponents (no torch, NumPy).

Exponents λ_1 ≥ λ_2 ≥ ... are natural logarithms per step (Benettin et al. 1980): a
perturbation, and a gradient flowing back, grows or shrinks by e^{λ_1} per step along the
leading direction. Exponents within ±ε (the verdict's ``edge``) count as zero when counting
positive ones; −∞ (a direction annihilated by the step Jacobians) is a valid exponent here.

- half-life ln 2/|λ_1| (λ_1 < 0) or doubling time ln 2/λ_1 (λ_1 > 0), in steps;
- memory time scale τ_i = −1/λ_i of each negative exponent: e-folding steps of that direction;
- the Kaplan–Yorke (Lyapunov) dimension D = j + (λ_1 + … + λ_j)/|λ_(j+1)|, j the largest index
  whose partial sum is ≥ 0 (Kaplan & Yorke 1979; Frederickson, Kaplan, Yorke & Yorke 1983);
- the entropy rate: the sum of the positive exponents, in nats per step (Pesin's identity,
  an upper bound of the Kolmogorov–Sinai entropy; Eckmann & Ruelle 1985).
"""

from __future__ import annotations

import math
from typing import Sequence

LN2 = math.log(2.0)


def factor(exponent: float) -> float:
    """e^λ: the factor per step (0 for λ = −∞)."""
    return math.exp(exponent) if exponent < 700 else math.inf


def half_life(exponent: float) -> float | None:
    """Steps for the leading direction to halve, ln 2/|λ| (λ < 0; 0 steps for λ = −∞)."""
    return LN2 / -exponent if exponent < 0 else None


def doubling_time(exponent: float) -> float | None:
    """Steps for the leading direction to double, ln 2/λ (λ > 0)."""
    return LN2 / exponent if exponent > 0 else None


def time_scales(exponents: Sequence[float]) -> tuple[float | None, ...]:
    """τ_i = −1/λ_i for each negative exponent (0 for −∞), None for the others."""
    return tuple(-1.0 / value if value < 0 else None for value in exponents)


def positive_count(exponents: Sequence[float], edge: float) -> int:
    """How many exponents exceed ε."""
    return sum(value > edge for value in exponents)


def kaplan_yorke(exponents: Sequence[float]) -> tuple[float | None, str]:
    """The Kaplan–Yorke dimension of the exponents given (descending), and why it is None.

    None when the partial sums stay ≥ 0 through the last exponent given: the dimension is
    then at least their number, and more exponents are needed to find it.
    """
    total, index = 0.0, 0
    for value in exponents:
        if total + value < 0:
            break
        total += value
        index += 1
    if index == len(exponents):
        return None, (f"the sum of all {len(exponents)} exponents computed is still ≥ 0: the "
                      f"dimension is at least {len(exponents)}; ask for more with --k")
    following = exponents[index]
    return index + (0.0 if math.isinf(following) else total / abs(following)), ""


def entropy_rate(exponents: Sequence[float], edge: float) -> tuple[float, bool]:
    """Σ λ_i over the exponents above ε (nats per step), and whether it is only a lower bound
    (every exponent computed is positive, so more may be)."""
    positive = [value for value in exponents if value > edge]
    return sum(positive), bool(exponents) and len(positive) == len(exponents)
