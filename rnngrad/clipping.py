"""Gradient-norm statistics over the probe sequences -> a clipping threshold that names its rule.

Rules (THEORY.md "Clipping thresholds"):

- ``pascanu``: Pascanu, Mikolov & Bengio 2013, Sec. 3.2: clip at about the average gradient
  norm; thresholds from half to ten times the average still converged in their experiments.
- ``autoclip``: Seetharaman et al. 2020: the 10th percentile of the gradient norms seen.

The scale of a gradient norm follows the loss and the data: a number from random probes and
a random readout is a starting point; ``--inputs`` with real data and ``--loss`` through the
model's own head give the number to use in training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import OptionError

RULES = ("pascanu", "autoclip")
RULE_TEXT = {
    "pascanu": "Pascanu et al. 2013 (Sec. 3.2): the average gradient norm over the probes; "
               "0.5x to 10x this value still converged in their experiments",
    "autoclip": "AutoClip (Seetharaman et al. 2020): the 10th percentile of the gradient "
                "norms over the probes",
}
CAVEAT = ("the scale follows the loss and the data: run with --inputs (real sequences) and "
          "--loss through the model's head for the number to use in training")


@dataclass(frozen=True, kw_only=True)
class ClipRecommendation:
    """A recommended ``max_norm`` and the statistics it came from (norms over probes)."""

    rule: str
    rule_text: str
    loss: str
    probes: int
    max_norm: float
    mean: float
    median: float
    p10: float
    minimum: float
    maximum: float
    spike_ratio: float
    clipped_share: float
    norms: tuple[float, ...]
    caveat: str = CAVEAT

    overflowed: int = 0

    @property
    def line(self) -> str:
        if not np.isfinite(self.max_norm):
            return ("no clip threshold: every parameter-gradient norm overflows float64 on these "
                    "probes; use shorter --steps")
        return f"torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm={self.max_norm:.4g})"


def recommend(norms: np.ndarray, *, rule: str = "pascanu", loss: str = "readout") -> ClipRecommendation:
    """The threshold by ``rule`` from the per-probe parameter-gradient norms."""
    if rule not in RULES:
        raise OptionError(f"--clip-rule {rule!r} is not known", f"use one of: {', '.join(RULES)}")
    values = np.asarray(norms, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0:  # every probe's gradient overflowed: no statistic to give
        nan = float("nan")
        return ClipRecommendation(
            rule=rule, rule_text=RULE_TEXT[rule], loss=loss, probes=int(values.size),
            max_norm=nan, mean=nan, median=nan, p10=nan, minimum=nan, maximum=nan,
            spike_ratio=nan, clipped_share=1.0, norms=tuple(float(v) for v in values),
            overflowed=int(values.size))
    mean = float(np.mean(finite))
    p10 = float(np.percentile(finite, 10))
    median = float(np.median(finite))
    max_norm = mean if rule == "pascanu" else p10
    return ClipRecommendation(
        rule=rule, rule_text=RULE_TEXT[rule], loss=loss, probes=int(values.size),
        max_norm=max_norm, mean=mean, median=median, p10=p10, minimum=float(np.min(finite)),
        maximum=float(np.max(finite)),
        spike_ratio=float(np.max(finite) / median) if median > 0 else float("inf"),
        clipped_share=float(np.mean(values > max_norm)),
        norms=tuple(float(v) for v in values), overflowed=int(values.size - finite.size))
