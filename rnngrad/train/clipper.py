"""Online gradient clipping from the gradient norms seen so far, by a named rule.

    clipper = Clipper("autoclip")            # or "pascanu", or Clipper.fixed(max_norm)
    ...
    loss.backward()
    threshold, norm = clipper.clip_(model.parameters())
    optimizer.step()

Rules, as ``rnngrad bptt`` names them (docs/theory.md, "Clipping thresholds"):

- ``pascanu``: the running mean of the gradient norms seen (Pascanu, Mikolov & Bengio 2013,
  Sec. 3.2: clip at about the average norm over many updates; 0.5-10x of it still converged);
- ``autoclip``: the p-th percentile of every norm seen, p = 10 (Seetharaman et al. 2020);
- ``fixed``: a given ``max_norm`` (e.g. ``rnngrad bptt``'s recommendation, :meth:`Clipper.fixed`).

As in AutoClip's algorithm, each step's norm joins the statistics before its threshold is
taken, so clipping works from the first steps, where an untuned run explodes soonest (the
training benchmark's runs without clipping diverge around step 40). ``warmup=N`` instead
collects N norms first, clipping at ``initial`` meanwhile (or not at all). Norms are those of
the whole gradient before clipping; a non-finite norm is not recorded, and its gradient is
left to the optimizer (``clip_`` returns it, so a training loop can skip the step). Per step
the statistics cost a running sum and one insertion into a sorted list for the percentile
(a binary search, O(log n), then an O(n) shift of the list). ``state_dict()`` /
``load_state_dict()`` let a resumed run continue with the same statistics.
"""

from __future__ import annotations

import bisect
import math
from typing import Any, Iterable

import torch

from rnngrad.errors import OptionError

RULES = ("pascanu", "autoclip", "fixed")


class Clipper:
    """Clip gradients at a threshold that follows the norms seen so far (see the module doc)."""

    def __init__(self, rule: str = "pascanu", *, warmup: int = 0, percentile: float = 10.0,
                 initial: float | None = None, max_norm: float | None = None) -> None:
        if rule not in RULES:
            raise OptionError(f"Clipper rule {rule!r} is not known", f"use one of {RULES}")
        if rule == "fixed" and not _positive(max_norm):
            raise OptionError("Clipper('fixed') needs max_norm > 0", "e.g. Clipper.fixed(1.0)")
        if not isinstance(warmup, int) or warmup < 0:
            raise OptionError(f"Clipper warmup={warmup!r} must be an integer ≥ 0", "e.g. 100")
        if not 0 < percentile <= 100:
            raise OptionError(f"Clipper percentile={percentile!r} must be in (0, 100]", "e.g. 10")
        if initial is not None and not _positive(initial):
            raise OptionError(f"Clipper initial={initial!r} must be a positive number", "or None")
        self.rule = rule
        self.warmup = warmup
        self.percentile = float(percentile)
        self.initial = initial
        self.max_norm = max_norm
        self.norms: list[float] = []
        self._sorted: list[float] = []
        self._total = 0.0
        self.clipped = 0
        self.steps = 0
        self.threshold: float | None = max_norm if rule == "fixed" else None

    @classmethod
    def fixed(cls, max_norm: float) -> Clipper:
        """Clip at a fixed threshold (``rnngrad bptt``'s recommendation, say)."""
        return cls("fixed", warmup=0, max_norm=max_norm)

    def _statistic(self) -> float | None:
        """The rule's threshold over the norms recorded so far (``initial`` during warm-up)."""
        if self.rule == "fixed":
            return self.max_norm
        if not self.norms or len(self.norms) <= self.warmup:
            return self.initial
        if self.rule == "pascanu":
            return self._total / len(self.norms)
        return _percentile(self._sorted, self.percentile)

    def _record(self, norm: float) -> None:
        self.norms.append(norm)
        bisect.insort(self._sorted, norm)
        self._total += norm

    def clip_(self, parameters: Iterable[torch.Tensor] | torch.Tensor) -> tuple[float | None, float]:
        """Clip the gradients of ``parameters`` in place; return (threshold used, norm seen).
        ``self.threshold`` keeps the threshold of the last call."""
        params = [parameters] if isinstance(parameters, torch.Tensor) else list(parameters)
        grads = [p.grad for p in params if p.grad is not None]
        self.steps += 1
        if not grads:
            return self.threshold, 0.0
        norm = float(torch.nn.utils.get_total_norm(grads, norm_type=2.0))
        if not math.isfinite(norm):
            return self.threshold, norm
        self._record(norm)
        threshold = self.threshold = self._statistic()
        if threshold is not None and norm > threshold:
            torch.nn.utils.clip_grads_with_norm_(params, threshold, torch.tensor(norm))
            self.clipped += 1
        return threshold, norm

    def state_dict(self) -> dict[str, Any]:
        """The rule, its settings, every norm recorded and the counts (:meth:`load_state_dict`)."""
        return {"rule": self.rule, "warmup": self.warmup, "percentile": self.percentile,
                "initial": self.initial, "max_norm": self.max_norm, "norms": list(self.norms),
                "clipped": self.clipped, "steps": self.steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state`` (a :meth:`state_dict`): the same rule and statistics."""
        fresh = Clipper(state["rule"], warmup=state["warmup"], percentile=state["percentile"],
                        initial=state["initial"], max_norm=state["max_norm"])
        self.__dict__.update(fresh.__dict__)
        for norm in state["norms"]:
            self._record(float(norm))
        self.clipped, self.steps = int(state["clipped"]), int(state["steps"])
        self.threshold = self._statistic() if self.norms else self.threshold

    def __repr__(self) -> str:
        return (f"Clipper(rule={self.rule!r}, threshold={self.threshold}, steps={self.steps}, "
                f"clipped={self.clipped})")


def _percentile(ordered: list[float], percentile: float) -> float:
    """The ``percentile`` of sorted values, interpolated linearly (NumPy's default)."""
    position = (len(ordered) - 1) * percentile / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _positive(value: object) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0)
