"""Gradient-norm statistics over the probe sequences -> a clip threshold that names its rule.

Rules (docs/theory.md, "Clipping thresholds"):

- ``pascanu``: Pascanu, Mikolov & Bengio 2013, Sec. 3.2: clip at about the average gradient
  norm; thresholds from half to ten times the average still converged in their experiments.
- ``autoclip``: Seetharaman et al. 2020: the 10th percentile of the gradient norms seen.
- ``horizon``: the average norm of the gradient backpropagated only over the lags where the
  Jacobian product stays in the healthy band (``‖∂s_T/∂s_(T−ℓ)‖ ≤ --explode-above``), i.e.
  truncated BPTT over that horizon. Where the full gradient explodes, its average is the
  explosion itself (a ``max_norm`` of 10^19 clips nothing); the horizon gradient is the size
  of the gradient's well-behaved part, the scale Pascanu et al.'s rule asks for.
- ``auto`` (the default): ``pascanu`` when no analysed recurrence explodes, ``horizon`` when
  one does.
- ``curvature`` (``rnngrad surface``, which knows the learning rate η): the smaller of the
  ``pascanu`` number and ‖g‖/(η λ_max), with g the gradient of the probe batch's mean loss
  and λ_max the largest Hessian eigenvalue at θ. Clipping at M makes the effective learning
  rate ηM/‖g‖ wherever ‖g‖ > M; the curvature bound makes it 1/λ_max, the rate that is
  optimal along the sharpest direction of the quadratic model and half of its stability
  limit 2/λ_max. The average norm still caps it: where η is small against 1/λ_max the
  curvature at θ allows long steps, but a wall ahead (Pascanu et al. Sec. 3.2) is met with a
  gradient far above the average, and clipping at the average is what shortens that step.

The *regime* says what the numbers rest on: ``healthy``; ``exploding`` (the full-window
gradients explode: only the horizon rule gives a usable number); ``states-explode`` (the
forward states themselves grow past ``--explode-above`` over the window: every gradient on this
probe measures the explosion, and no threshold is given); ``overflow`` (the gradient norms
leave float64). A ready ``clip_grad_norm_`` line is printed only for a usable number.

The scale of a gradient norm follows the loss and the data: a number from random probes and
a random readout is a starting point; ``--inputs`` with real data and ``--loss`` through the
model's own head give the number to use in training.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from rnngrad.report import Record, finite_or_none


class ClipRule(enum.StrEnum):
    """The rule a threshold comes from: ``pascanu``, ``autoclip``, ``horizon`` or ``curvature``
    (module doc); ``auto`` resolves to ``pascanu`` or ``horizon``."""

    PASCANU = "pascanu"
    AUTOCLIP = "autoclip"
    HORIZON = "horizon"
    CURVATURE = "curvature"


class ClipRegime(enum.StrEnum):
    """What the gradient norms of the probe rest on."""

    HEALTHY = "healthy"
    EXPLODING = "exploding"
    STATES_EXPLODE = "states-explode"
    OVERFLOW = "overflow"


RULE_TEXT = {
    ClipRule.PASCANU: "Pascanu et al. 2013 (Sec. 3.2): the average gradient norm over the "
                      "probes; 0.5x to 10x this value still converged in their experiments",
    ClipRule.AUTOCLIP: "AutoClip (Seetharaman et al. 2020): the 10th percentile of the "
                       "gradient norms over the probes",
    ClipRule.HORIZON: "the average norm of the gradient backpropagated over the healthy "
                      "horizon only (the lags where ‖∂s_T/∂s_(T−ℓ)‖ stays below "
                      "--explode-above), the scale of the gradient's well-behaved part",
    ClipRule.CURVATURE: "the smaller of the average gradient norm (Pascanu et al. 2013) and "
                        "‖g‖/(η·λ_max), at which clipped steps move at the effective learning "
                        "rate 1/λ_max: optimal along the sharpest curvature at θ, half of the "
                        "stability limit 2/λ_max",
}
DATA_CAVEAT = ("the scale follows the loss and the data: run with --inputs (real sequences) and "
               "--loss through the model's head for the number to use in training")
# what the per-probe statistics cannot know: the step length, which the learning rate sets
CAVEAT = (DATA_CAVEAT + "; `rnngrad surface MODEL --lr η` with your learning rate also bounds "
          "it by the curvature at these weights (the curvature rule)")


@dataclass(frozen=True, kw_only=True)
class ClipRecommendation(Record):
    """A recommended ``max_norm``, the statistics it came from, and what they rest on.

    ``norms`` are the per-probe norms the rule used (the horizon gradient's for ``horizon``);
    ``full_mean`` is the average norm of the whole gradient for comparison. Statistics are
    over the finite norms and None when there is none; ``max_norm`` is None when no usable
    threshold exists (``advice`` says why). ``horizon`` is the number of steps the horizon
    gradient reaches back (None: the whole window). ``lr`` and ``largest_eigenvalue`` are
    what the ``curvature`` rule used (None for the other rules).
    """

    rule: ClipRule
    rule_text: str
    regime: ClipRegime
    loss: str
    probes: int
    max_norm: float | None
    mean: float | None
    median: float | None
    p10: float | None
    minimum: float | None
    maximum: float | None
    spike_ratio: float | None
    clipped_share: float
    norms: tuple[float | None, ...]
    full_mean: float | None = None
    horizon: int | None = None
    lr: float | None = None
    largest_eigenvalue: float | None = None
    advice: str = ""
    caveat: str = CAVEAT
    overflowed: int = 0

    @property
    def trusted(self) -> bool:
        """The number does not rest on exploding gradients."""
        return self.max_norm is not None and (self.regime == ClipRegime.HEALTHY
                                              or self.rule == ClipRule.HORIZON)

    @property
    def line(self) -> str:
        """The ``clip_grad_norm_`` line to paste, or why there is no threshold."""
        if self.max_norm is None:
            return f"no clip threshold: {self.advice}"
        return f"torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm={self.max_norm:.4g})"

    def json_extras(self) -> dict[str, Any]:
        extras: dict[str, Any] = {"line": self.line, "trusted": self.trusted}
        if self.max_norm is None:
            extras.update({f"{name}_reason": self.advice for name in (
                "max_norm", "mean", "median", "p10", "minimum", "maximum", "spike_ratio")
                if getattr(self, name) is None})
        elif self.spike_ratio is None:
            extras["spike_ratio_reason"] = "the median gradient norm is 0"
        return extras


def recommend(norms: np.ndarray, *, rule: str = "pascanu", loss: str = "readout",
              regime: ClipRegime = ClipRegime.HEALTHY, full_mean: float | None = None,
              horizon: int | None = None, advice: str = "") -> ClipRecommendation:
    """The threshold by ``rule`` from per-probe parameter-gradient norms (B,)."""
    rule = ClipRule(rule)
    values = np.asarray(norms, dtype=np.float64)
    finite = values[np.isfinite(values)]
    shown = tuple(finite_or_none(float(v)) for v in values)
    common = dict(rule=rule, rule_text=RULE_TEXT[rule], loss=loss, probes=int(values.size),
                  norms=shown, full_mean=full_mean, horizon=horizon,
                  overflowed=int(values.size - finite.size))
    if finite.size == 0:
        if regime != ClipRegime.STATES_EXPLODE:
            regime = ClipRegime.OVERFLOW
            advice = advice or ("every parameter-gradient norm overflows float64 on these "
                                "probes; use shorter --steps")
        return ClipRecommendation(**common, regime=regime, advice=advice, max_norm=None,
                                  mean=None, median=None, p10=None, minimum=None, maximum=None,
                                  spike_ratio=None, clipped_share=1.0)
    mean = float(np.mean(finite))
    p10 = float(np.percentile(finite, 10))
    median = float(np.median(finite))
    max_norm = None if regime == ClipRegime.STATES_EXPLODE else (
        p10 if rule == ClipRule.AUTOCLIP else mean)
    if max_norm is not None and max_norm < np.finfo(np.float64).tiny:
        max_norm = None  # max_norm=0 would zero every gradient: no advice at all
        advice = advice or ("the parameter gradients are zero (or below float64's smallest "
                            "normal number) on these probes, so there is nothing to clip; "
                            "the states saturate or the probe is too weak: run with "
                            "--inputs (real sequences) or another --input-scale")
    return ClipRecommendation(
        **common, regime=regime, advice=advice, max_norm=max_norm, mean=mean, median=median,
        p10=p10, minimum=float(np.min(finite)), maximum=float(np.max(finite)),
        spike_ratio=float(np.max(finite) / median) if median > 0 else None,
        clipped_share=float(np.mean(values > max_norm)) if max_norm is not None else 0.0)


def recommend_by_curvature(norms: np.ndarray, *, gradient_norm: float,
                           largest_eigenvalue: float | None, lr: float,
                           loss: str = "readout") -> ClipRecommendation:
    """The ``curvature`` rule: the smaller of Pascanu et al.'s average per-probe norm and
    ‖g‖/(η λ_max), for the batch gradient of norm ``gradient_norm``. The curvature bound is
    left out, and ``advice`` says so, when λ_max is not positive (no direction curves up) or
    ‖g‖ is zero or not finite."""
    base = recommend(norms, rule=ClipRule.CURVATURE, loss=loss)
    top = finite_or_none(largest_eigenvalue)
    base = replace(base, lr=lr, largest_eigenvalue=top, caveat=DATA_CAVEAT)
    if base.max_norm is None:
        return base
    if top is None or top <= 0 or not math.isfinite(gradient_norm) or gradient_norm <= 0:
        why = ("no direction curves upwards at θ (λ_max ≤ 0)" if top is None or top <= 0
               else "the gradient at θ is zero or not finite")
        return replace(base, advice=f"{why}, so the curvature bounds no step: this is the "
                                    "average per-probe norm (Pascanu et al.)")
    bound = gradient_norm / (lr * top)
    if bound >= base.max_norm:
        return replace(base, advice=(
            f"η = {lr:.3g} is below 1/λ_max = {1 / top:.3g}: the curvature allows steps up to "
            f"max_norm {bound:.4g}, so the average per-probe norm (Pascanu et al.) bounds it"))
    values = np.asarray(norms, dtype=np.float64)
    return replace(base, max_norm=bound, clipped_share=float(np.mean(values > bound)),
                   advice=(f"η = {lr:.3g} is {lr * top:.3g}× 1/λ_max = {1 / top:.3g}: the "
                           f"curvature bound ‖g‖/(η·λ_max) = {bound:.4g} is below the average "
                           f"per-probe norm {base.max_norm:.4g}"))
