"""``--bptt-lags``: ``bptt``'s per-step rate on the same trajectory, against e^{λ_1}.

bptt measures ‖∂s_T/∂s_(T−ℓ)‖ = ‖J_T ··· J_(T−ℓ+1)‖ at the end of the probe; its per-step
rate ‖·‖^(1/ℓ) tends to e^{λ_1} as ℓ grows (the singular values of a product of ℓ step
Jacobians grow at the Lyapunov exponents, Oseledets 1968). At a finite lag the two differ by
terms of order 1/ℓ (where the product starts and ends) and by the fluctuations of one
window; the report gives the difference, so a user sees whether the window was long enough.

The probe is the same: a generated probe of burn_in + T steps is drawn again with the same
seed and shape, and bptt's anchor is its last step; a file probe is the same file.
"""

from __future__ import annotations

import math
from dataclasses import replace

from rnngrad.bptt.analysis import bptt
from rnngrad.bptt.options import BpttOptions
from rnngrad.bptt.report import RecurrenceProfile
from rnngrad.io import WeightBundle
from rnngrad.lyapunov.options import LyapunovOptions
from rnngrad.lyapunov.report import BpttAgreement, RecurrenceExponents
from rnngrad.probes.lags import parse_lags
from rnngrad.probes.sequences import Probe
from rnngrad.report import finite_or_none

LN10 = math.log(10.0)


def bptt_agreements(bundle: WeightBundle, items: list[RecurrenceExponents], probe: Probe | None,
                    options: LyapunovOptions) -> list[RecurrenceExponents]:
    """``items`` with ``bptt`` filled in for every recurrence bptt measured."""
    if probe is None or options.bptt_lags is None:
        return items
    lags = parse_lags(options.bptt_lags, probe.max_lag)
    spec = options.probe
    if spec.path is None:  # the same draw: same seed, same (B, burn_in + T, I)
        spec = replace(spec, steps=lags[-1], burn_in=probe.inputs.shape[1] - lags[-1])
    report = bptt(bundle, BpttOptions(lags=options.bptt_lags, probe=spec,
                                      modules=options.modules, dtype=options.dtype,
                                      device=options.device, **vars(options.read_options())))
    profiles = {item.recurrence.weight_hh: item for item in report.recurrences}
    return [replace(item, bptt=agreement(item, profiles[item.recurrence.weight_hh]))
            if item.recurrence.weight_hh in profiles and item.exponents else item
            for item in items]


def agreement(item: RecurrenceExponents, profile: RecurrenceProfile) -> BpttAgreement | None:
    """How closely bptt's per-step rate at its largest lag matches e^{λ_1} (None when bptt
    measured no lag, or λ_1 is not finite)."""
    lambda_1 = item.lambda_1
    if not profile.rows or lambda_1 is None or not math.isfinite(lambda_1):
        return None
    last = profile.rows[-1]
    log_rate = None if last.log10_norm is None else last.log10_norm * LN10 / last.lag
    factor = math.exp(lambda_1)
    if log_rate is None:
        return BpttAgreement(lag=last.lag, log_rate=None, rate=None, factor=factor,
                             difference=None, text=f"bptt's product at lag {last.lag} is exactly "
                             "zero: no rate to compare")
    difference = log_rate - lambda_1
    text = (f"bptt's per-step rate at lag {last.lag} is ×{math.exp(log_rate):.5g} "
            f"(ln {log_rate:+.4g}), e^λ_1 = ×{factor:.5g}: they differ by {difference:+.2g} "
            f"nats per step ({abs(math.expm1(difference)):.2%}); differences of order "
            f"1/lag = {1 / last.lag:.2g} are expected from a finite window")
    return BpttAgreement(lag=last.lag, log_rate=log_rate,
                         rate=finite_or_none(math.exp(min(log_rate, 700))), factor=factor,
                         difference=difference, text=text)
