"""Gradient-norm statistics over the probe sequences -> a clipping threshold that names its rule.

Rules (docs/theory.md, "Clipping thresholds"):

- ``pascanu``: Pascanu, Mikolov & Bengio 2013, Sec. 3.2: clip at about the average gradient
  norm; thresholds from half to ten times the average still converged in their experiments.
- ``autoclip``: Seetharaman et al. 2020: the 10th percentile of the gradient norms seen.

The scale of a gradient norm follows the loss and the data: a number from random probes and
a random readout is a starting point; ``--inputs`` with real data and ``--loss`` through the
model's own head give the number to use in training.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnngrad.report import Record, finite_or_none


class ClipRule(enum.StrEnum):
    PASCANU = "pascanu"
    AUTOCLIP = "autoclip"


RULE_TEXT = {
    ClipRule.PASCANU: "Pascanu et al. 2013 (Sec. 3.2): the average gradient norm over the "
                      "probes; 0.5x to 10x this value still converged in their experiments",
    ClipRule.AUTOCLIP: "AutoClip (Seetharaman et al. 2020): the 10th percentile of the "
                       "gradient norms over the probes",
}
CAVEAT = ("the scale follows the loss and the data: run with --inputs (real sequences) and "
          "--loss through the model's head for the number to use in training")


@dataclass(frozen=True, kw_only=True)
class ClipRecommendation(Record):
    """A recommended ``max_norm`` and the statistics it came from (norms over probes).

    Statistics are over the finite per-probe norms; they are None when every norm overflowed
    (``overflowed`` counts those), and ``norms`` holds None for an overflowed probe.
    """

    rule: ClipRule
    rule_text: str
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
    caveat: str = CAVEAT
    overflowed: int = 0

    @property
    def line(self) -> str:
        if self.max_norm is None:
            return ("no clip threshold: every parameter-gradient norm overflows float64 on these "
                    "probes; use shorter --steps")
        return f"torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm={self.max_norm:.4g})"

    def json_extras(self) -> dict[str, Any]:
        extras: dict[str, Any] = {"line": self.line}
        if self.max_norm is None:
            extras.update({f"{name}_reason": "every probe's gradient norm overflowed float64"
                           for name in ("max_norm", "mean", "median", "p10", "minimum",
                                        "maximum", "spike_ratio")})
        elif self.spike_ratio is None:
            extras["spike_ratio_reason"] = "the median gradient norm is 0"
        return extras


def recommend(norms: np.ndarray, *, rule: str = "pascanu", loss: str = "readout") -> ClipRecommendation:
    """The threshold by ``rule`` from the per-probe parameter-gradient norms."""
    rule = ClipRule(rule)
    values = np.asarray(norms, dtype=np.float64)
    finite = values[np.isfinite(values)]
    shown = tuple(finite_or_none(float(v)) for v in values)
    if finite.size == 0:  # every probe's gradient overflowed: no statistic to give
        return ClipRecommendation(
            rule=rule, rule_text=RULE_TEXT[rule], loss=loss, probes=int(values.size),
            max_norm=None, mean=None, median=None, p10=None, minimum=None, maximum=None,
            spike_ratio=None, clipped_share=1.0, norms=shown, overflowed=int(values.size))
    mean = float(np.mean(finite))
    p10 = float(np.percentile(finite, 10))
    median = float(np.median(finite))
    max_norm = mean if rule == ClipRule.PASCANU else p10
    return ClipRecommendation(
        rule=rule, rule_text=RULE_TEXT[rule], loss=loss, probes=int(values.size),
        max_norm=max_norm, mean=mean, median=median, p10=p10, minimum=float(np.min(finite)),
        maximum=float(np.max(finite)),
        spike_ratio=float(np.max(finite) / median) if median > 0 else None,
        clipped_share=float(np.mean(values > max_norm)),
        norms=shown, overflowed=int(values.size - finite.size))
