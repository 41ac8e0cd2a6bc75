"""What the spectrum allows us to say about a recurrence, in the theory's own terms.

Elman cells (Pascanu et al. 2013, Sec. 2.1; docs/theory.md "Bounds"): ‖J_t‖ ≤ γ·σ_max(W_hh), so

- ``vanishing-guaranteed``: γ·σ_max < 1 — sufficient for vanishing, ‖∂h_T/∂h_{T−ℓ}‖ ≤ (γσ_max)^ℓ;
- ``explosion-possible``: γ·σ_max ≥ 1 — necessary for exploding, not sufficient;
- ``rest-unstable``: in addition, the step Jacobian linearised at rest (s = 0, x = 0, biases
  included) has spectral radius > 1: small states grow, the rest state itself is unstable.

Gated cells (LSTM, GRU): their W_hh blocks bound little, since the gates rescale every step.
The rest-state Jacobian is the meaningful spectral number: ``rest-unstable`` when its
spectral radius exceeds 1, otherwise ``undetermined`` (the measured ``bptt`` profile decides).
"""

from __future__ import annotations

import enum

# Values within EDGE of 1 count as on the unit circle (rounding of an orthogonal W, say).
EDGE = 1e-9


class SpectrumVerdict(enum.StrEnum):
    """What the spectrum allows us to say (the module docstring says when each holds)."""

    VANISHING = "vanishing-guaranteed"
    EXPLOSION_POSSIBLE = "explosion-possible"
    REST_UNSTABLE = "rest-unstable"
    UNDETERMINED = "undetermined"


VANISHING = SpectrumVerdict.VANISHING
EXPLOSION_POSSIBLE = SpectrumVerdict.EXPLOSION_POSSIBLE
REST_UNSTABLE = SpectrumVerdict.REST_UNSTABLE
UNDETERMINED = SpectrumVerdict.UNDETERMINED

# --fail-on X fails on these verdicts: explosion-possible includes the stronger rest-unstable.
FAIL_ON_MATCHES: dict[str, frozenset[SpectrumVerdict]] = {
    "never": frozenset(),
    VANISHING: frozenset({VANISHING}),
    EXPLOSION_POSSIBLE: frozenset({EXPLOSION_POSSIBLE, REST_UNSTABLE}),
    REST_UNSTABLE: frozenset({REST_UNSTABLE}),
    UNDETERMINED: frozenset({UNDETERMINED}),
}


def spectrum_verdict(*, cell: str, gamma: float, sigma_max: float, rest_radius: float,
                     rest_norm: float) -> tuple[SpectrumVerdict, str]:
    """(verdict, reason in words) from the bound γ·σ_max and the rest-state Jacobian."""
    bound = gamma * sigma_max
    rest = f"at rest the step Jacobian has ρ = {rest_radius:.4g} and ‖J‖ = {rest_norm:.4g}"
    if cell != "rnn":
        if rest_radius > 1 + EDGE:
            return REST_UNSTABLE, (f"gated cell: {rest} > 1, so small states grow and the rest "
                                   "state is unstable; the W_hh blocks alone bound little; "
                                   "measure with `rnngrad bptt`")
        return UNDETERMINED, (f"gated cell: the W_hh blocks alone bound little (the gates "
                              f"rescale every step); {rest}, so it contracts near rest; "
                              "measure the real profile with `rnngrad bptt`")
    if bound < 1 - EDGE:
        return VANISHING, (f"γ·σ_max = {bound:.4g} < 1: every step shrinks the backpropagated "
                           f"signal, ‖∂h_T/∂h_(T−ℓ)‖ ≤ {bound:.4g}^ℓ (sufficient for vanishing)")
    if rest_radius > 1 + EDGE:
        return REST_UNSTABLE, (f"γ·σ_max = {bound:.4g} ≥ 1 allows explosion, and {rest} > 1: "
                               "the rest state is unstable, small states grow along the "
                               "leading eigenvector")
    return EXPLOSION_POSSIBLE, (f"γ·σ_max = {bound:.4g} ≥ 1: explosion is possible, not certain "
                                f"(the condition is necessary, not sufficient); {rest}; "
                                "measure with `rnngrad bptt`")
