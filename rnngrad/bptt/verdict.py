"""The measured verdict of a per-lag profile: vanishing, exploding or healthy.

``exploding`` when the per-lag norm (geometric mean over the probes) exceeds
``explode_above`` at any analysed lag; ``vanishing`` when the norm at the largest analysed lag
is below ``vanish_below``; else ``healthy``.
"""

from __future__ import annotations

import enum
import math

from rnngrad.report import log10_value


class ProfileVerdict(enum.StrEnum):
    """The measured verdict of a per-lag profile: ``vanishing``, ``exploding`` or ``healthy``
    (module doc)."""

    VANISHING = "vanishing"
    EXPLODING = "exploding"
    HEALTHY = "healthy"


VANISHING_MEASURED = ProfileVerdict.VANISHING
EXPLODING_MEASURED = ProfileVerdict.EXPLODING
HEALTHY = ProfileVerdict.HEALTHY


def profile_verdict(rows, *, vanish_below: float, explode_above: float) -> tuple[ProfileVerdict, str]:
    """From the measured per-lag norms (geometric means over probes).

    ``exploding`` when the norm exceeds ``explode_above`` at any analysed lag; ``vanishing``
    when the norm at the largest analysed lag is below ``vanish_below``; else ``healthy``.
    """
    if not rows:
        return HEALTHY, "no lags analysed"
    last = rows[-1]
    last_log = log10_value(last.log10_norm)
    worst = max(rows, key=lambda row: log10_value(row.log10_norm))
    rate = 10 ** (last_log / last.lag) if math.isfinite(last_log) else 0.0
    if log10_value(worst.log10_norm) > math.log10(explode_above):
        return EXPLODING_MEASURED, (f"‖∂s_T/∂s_(T−ℓ)‖ reaches 10^{worst.log10_norm:.3g} at lag "
                                    f"{worst.lag}, above {explode_above:g}: gradients explode "
                                    f"(about ×{rate:.4g} per step); clip them")
    if last_log < math.log10(vanish_below):
        return VANISHING_MEASURED, (f"‖∂s_T/∂s_(T−ℓ)‖ falls to 10^{last_log:.3g} at lag "
                                    f"{last.lag}, below {vanish_below:g} (about ×{rate:.4g} per "
                                    "step): the long-range gradient vanishes")
    return HEALTHY, (f"‖∂s_T/∂s_(T−ℓ)‖ stays between {vanish_below:g} and {explode_above:g} "
                     f"up to lag {last.lag} (10^{last_log:.3g} there, ×{rate:.4g} per "
                     "step)" + _trend(last.lag, last_log, rate, vanish_below, explode_above))


# A per-step rate this far from 1 is a trend worth naming, even inside the healthy band.
TREND = 0.01


def _trend(lag: int, log_norm: float, rate: float, vanish_below: float,
           explode_above: float) -> str:
    """Where a healthy profile is heading: the lag at which it would leave the band."""
    if not math.isfinite(log_norm) or abs(rate - 1) <= TREND:
        return ""
    per_step = math.log10(rate)
    target = math.log10(explode_above if rate > 1 else vanish_below)
    reach = lag + (target - log_norm) / per_step
    word = "growing" if rate > 1 else "decaying"
    limit = "explode-above" if rate > 1 else "vanish-below"
    return (f", but {word} ×{rate:.4g} per step: at this rate it crosses {limit} "
            f"({10 ** target:g}) near lag {math.ceil(reach)}; check longer lags or the "
            "sequences you train on")

