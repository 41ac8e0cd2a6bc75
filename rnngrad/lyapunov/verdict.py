"""The verdict on λ_1: ``chaotic``, ``edge-of-chaos``, ``stable`` (or ``unbounded``).

With ε the ``edge`` (default 0.01 nats per step: within ±ε a gradient changes by at most a
factor e over 100 steps, bptt's default window):

- ``chaotic``: λ_1 > ε. Nearby trajectories separate and the gradients of long sequences grow
  like e^{λ_1 ℓ} with the sequence length ℓ, whatever the clipping (Mikhaeil, Monfared &
  Durstewitz 2022);
- ``edge-of-chaos``: |λ_1| ≤ ε. Perturbations and gradients neither grow nor shrink much per
  step: long memory (what gradient flossing trains towards, Engelken 2023);
- ``stable``: λ_1 < −ε. Every perturbation dies out, and the gradient from ℓ steps back
  shrinks like e^{λ_1 ℓ}: it vanishes at that rate;
- ``unbounded``: the forward pass overflowed, the states grow without bound and no exponent
  is defined.

Torch- and NumPy-free.
"""

from __future__ import annotations

import enum
import math

from rnngrad.lyapunov.meaning import doubling_time, factor, half_life


class LyapunovVerdict(enum.StrEnum):
    """The verdict on λ_1 (module doc): ``chaotic`` (λ_1 > ε), ``edge-of-chaos`` (|λ_1| ≤ ε),
    ``stable`` (λ_1 < −ε) or ``unbounded`` (the forward pass overflowed)."""

    CHAOTIC = "chaotic"
    EDGE = "edge-of-chaos"
    STABLE = "stable"
    UNBOUNDED = "unbounded"


def lyapunov_verdict(lambda_1: float, stderr: float | None,
                     edge: float) -> tuple[LyapunovVerdict, str]:
    """The verdict on the largest exponent λ_1 (nats per step, −∞ allowed) and why."""
    shown = exponent_text(lambda_1, stderr)
    if lambda_1 > edge:
        return LyapunovVerdict.CHAOTIC, (
            f"λ_1 = {shown} per step > ε = {edge:g}: nearby trajectories separate by "
            f"×{factor(lambda_1):.4g} per step (doubling every {doubling_time(lambda_1):.3g} "
            "steps), and the gradients of long sequences grow at that rate whatever the "
            "clipping: shorten the BPTT window or regularise λ_1 towards 0")
    if lambda_1 >= -edge:
        return LyapunovVerdict.EDGE, (
            f"λ_1 = {shown} per step, within ±ε = ±{edge:g}: along the leading direction "
            f"perturbations and gradients change by only ×{factor(lambda_1):.4g} per step"
            f"{_pace(lambda_1)}: long memory, the edge of chaos")
    if math.isinf(lambda_1):
        return LyapunovVerdict.STABLE, (
            "λ_1 = −∞: the step Jacobians annihilate every direction (dead units); the "
            "gradient from one step back is already zero")
    return LyapunovVerdict.STABLE, (
        f"λ_1 = {shown} per step < −ε = −{edge:g}: every perturbation, and the gradient from "
        f"far back, shrinks by ×{factor(lambda_1):.4g} per step (halving every "
        f"{half_life(lambda_1):.3g} steps; memory time scale −1/λ_1 = {-1 / lambda_1:.3g} "
        "steps)")


def overflow_reason(step: int, where: str) -> str:
    """Why a recurrence whose forward pass overflowed has no exponents."""
    return (f"the forward pass of {where} overflowed float at step {step}: the states grow "
            "without bound, so no exponent is defined; lower --input-scale or use fewer "
            "--steps to see the dynamics before that")


def _pace(lambda_1: float) -> str:
    """' (halving every 505 steps)', or doubling, or '' for exactly 0."""
    if lambda_1 < 0:
        return f" (halving every {half_life(lambda_1):.3g} steps)"
    if lambda_1 > 0:
        return f" (doubling every {doubling_time(lambda_1):.3g} steps)"
    return ""


def exponent_text(value: float | None, stderr: float | None = None) -> str:
    """λ as '+0.0512 ± 0.0011', '−∞' for −∞ (or None, as reports write it)."""
    if value is None or math.isinf(value):
        return "−∞"
    return f"{value:+.4g}" + (f" ± {stderr:.2g}" if stderr is not None else "")
