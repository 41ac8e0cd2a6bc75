"""The parameter-gradient norm per probe sequence, and the clip threshold it gives.

For probe b with loss E_b at its last step (:func:`rnngrad.probes.heads.probe_loss`), the norm
of the whole gradient ‖∂E_b/∂θ‖ over every parameter of the analysed modules (and of the head
the loss goes through), by autograd through the cells' own equations; combined over modules
without squaring large numbers, and +inf when the forward pass overflows. With a *horizon* ℓ*,
the gradient is backpropagated over the last ℓ* steps only (truncated BPTT): the healthy
horizon is the longest run of analysed lags from the first on which the per-lag norm stays
below ``--explode-above`` (:mod:`rnngrad.bptt.clipping` says why and when it is used).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from rnngrad.bptt.clipping import ClipRecommendation, ClipRegime, ClipRule, recommend
from rnngrad.bptt.options import BpttOptions
from rnngrad.bptt.report import RecurrenceProfile
from rnngrad.bptt.verdict import ProfileVerdict
from rnngrad.cells.base import CellWeights
from rnngrad.cells.stack import ForwardOverflow, Group, Trace, run_stack
from rnngrad.probes.heads import Head, probe_loss
from rnngrad.report import log10_value


@dataclass(frozen=True)
class GroupGradients:
    """What one module's probe says about its gradients.

    ``full``: ‖∂E_b/∂θ‖ per probe over the whole window; ``horizon``: the healthy horizon ℓ*
    (None: every analysed lag is healthy; 0: not even the first); ``truncated``: the norms over
    that horizon (None when not needed); ``exploding``: a recurrence's verdict is
    ``exploding``; ``first_bad_lag``: the first analysed lag past the band;
    ``log10_state_growth``: log10 of ‖s_T‖ / ‖s_(T−L)‖ over the window (geometric mean over
    probes, largest over the recurrences); ``overflowed``: the forward pass overflowed.
    """

    full: np.ndarray
    horizon: int | None = None
    truncated: np.ndarray | None = None
    exploding: bool = False
    first_bad_lag: int | None = None
    log10_state_growth: float = 0.0
    overflowed: bool = False


def group_gradients(group: Group, weights: dict, inputs: torch.Tensor,
                    traces: dict[object, tuple[Trace, torch.Tensor]],
                    profiles: list[RecurrenceProfile], head: Head | None,
                    options: BpttOptions, initial: dict | None = None) -> GroupGradients:
    """The gradient norms of one module for the clip rule (truncated too when it explodes);
    ``initial`` maps a recurrence to its s_0 (absent: zero)."""
    full = gradient_norms(group, weights, inputs, head, options, initial)
    exploding = any(item.verdict == ProfileVerdict.EXPLODING for item in profiles)
    horizon, first_bad = healthy_horizon(profiles, options.explode_above)
    truncated = None
    if exploding and options.clip_rule in (ClipRule.HORIZON, "auto") and horizon:
        truncated = gradient_norms(group, weights, inputs, head, options, initial,
                                   horizon=horizon)
    window = max((row.lag for item in profiles for row in item.rows), default=0)
    return GroupGradients(full=full, horizon=horizon, truncated=truncated, exploding=exploding,
                          first_bad_lag=first_bad,
                          log10_state_growth=state_growth(traces, group, window))


def healthy_horizon(profiles: list[RecurrenceProfile],
                    explode_above: float) -> tuple[int | None, int | None]:
    """(ℓ*, the first lag past the band): ℓ* is the largest analysed lag such that at every
    analysed lag up to it every profile's norm is at most ``explode_above`` (None when all
    are)."""
    limit = math.log10(explode_above)
    bad = [row.lag for item in profiles for row in item.rows
           if log10_value(row.log10_norm) > limit]
    if not bad:
        return None, None
    first_bad = min(bad)
    good = [row.lag for item in profiles for row in item.rows if row.lag < first_bad]
    return max(good, default=0), first_bad


def state_growth(traces: dict[object, tuple[Trace, torch.Tensor]], group: Group,
                 window: int) -> float:
    """log10 of how much the outputs' norm grows over the analysed window (the largest over the
    group's forward recurrences; geometric mean over the probes)."""
    growth = 0.0
    for rec in group.members:
        outputs = traces[rec][0].outputs
        if rec.direction != "forward" or window < 1 or outputs.shape[1] <= window:
            continue
        with torch.no_grad():
            end = torch.linalg.vector_norm(outputs[:, -1].double(), dim=-1)
            start = torch.linalg.vector_norm(outputs[:, -1 - window].double(), dim=-1)
        ratio = torch.log10(end.clamp_min(1e-300)) - torch.log10(start.clamp_min(1e-300))
        growth = max(growth, float(ratio.mean()))
    return growth


def gradient_norms(group: Group, weights: dict, inputs: torch.Tensor, head: Head | None,
                   options: BpttOptions, initial: dict | None = None, *,
                   horizon: int | None = None) -> np.ndarray:
    """‖∂E_b/∂θ‖ per probe b (B,) over the group's parameters (and the head's, if used),
    backpropagated over the last ``horizon`` steps only when it is given; ``initial`` maps a
    recurrence to its s_0 (B, S) (absent: zero)."""
    params = {rec: {name: value.detach().clone().requires_grad_(True)
                    for name, value in vars(w).items() if value is not None}
              for rec, w in weights.items()}
    norms = []
    for index in range(inputs.shape[0]):
        with torch.enable_grad():
            layers = [[(rec, CellWeights(**params[rec])) for rec in layer]
                      for layer in group.layers]
            try:
                start = ({rec: state[index:index + 1] for rec, state in initial.items()}
                         if initial is not None else None)
                _, output = run_stack(layers, inputs[index:index + 1], start, horizon=horizon)
            except ForwardOverflow:
                norms.append(np.inf)
                continue
            loss, head_params = probe_loss(output[:, -1], head, options.loss, index,
                                           options.probe.seed)
            leaves = [p for per in params.values() for p in per.values()] + head_params
            grads = torch.autograd.grad(loss, leaves, allow_unused=True)
        norms.append(joint_norm([float(torch.linalg.vector_norm(g.double()))
                                 for g in grads if g is not None]))
    return np.asarray(norms)


def joint_norm(parts: list[float] | np.ndarray) -> float:
    """‖concat‖ from the norms of the parts, without squaring large numbers; inf if any is."""
    values = np.asarray(parts, dtype=np.float64)
    if values.size == 0:
        return 0.0
    if not np.all(np.isfinite(values)):
        return float("inf")
    top = values.max()
    return float(top * np.sqrt(np.sum((values / top) ** 2))) if top > 0 else 0.0


def clip_recommendation(groups: list[GroupGradients], head: Head | None,
                        options: BpttOptions) -> ClipRecommendation | None:
    """The clip threshold of the analysed modules together, by the rule asked for (``auto``:
    ``pascanu`` while nothing explodes, ``horizon`` once something does), with the regime and
    a sentence on what it rests on."""
    if not groups:
        return None
    exploding = any(g.exploding for g in groups)
    rule = options.clip_rule
    if rule == "auto":
        rule = ClipRule.HORIZON if exploding else ClipRule.PASCANU
    full = _joint(g.full for g in groups)
    full_mean = _finite_mean(full)
    loss = options.loss if head is None else f"{options.loss} through {head.name}"
    regime, advice = _regime(groups, options, full_mean)
    norms = full
    horizon = None
    if rule == ClipRule.HORIZON and regime == ClipRegime.EXPLODING:
        horizons = [g.horizon for g in groups if g.exploding]
        horizon = min(h for h in horizons if h is not None) if all(
            h is not None for h in horizons) else None
        if not horizon:
            first = min(g.first_bad_lag for g in groups if g.first_bad_lag is not None)
            regime = ClipRegime.STATES_EXPLODE
            advice = (f"the per-lag norm passes {options.explode_above:g} already at lag {first}: "
                      "there is no healthy horizon to take the gradient over")
        else:
            norms = _joint(g.truncated if g.truncated is not None else g.full for g in groups)
            advice = (f"the per-lag norm passes {options.explode_above:g} after lag {horizon}, so "
                      f"the whole gradient (mean {_fmt(full_mean)}) measures the explosion; this "
                      f"threshold is the gradient over the last {horizon} steps")
    elif regime == ClipRegime.EXPLODING:
        advice = (f"this rests on exploding gradients: the per-lag norm passes "
                  f"{options.explode_above:g}, and a threshold at the whole gradient's scale "
                  "clips only the explosion itself; --clip-rule horizon (the default, auto) "
                  "gives the well-behaved part's scale")
    return recommend(norms, rule=rule, loss=loss, regime=regime, full_mean=full_mean,
                     horizon=horizon, advice=advice)


def _regime(groups: list[GroupGradients], options: BpttOptions,
            full_mean: float | None) -> tuple[ClipRegime, str]:
    growth = max(g.log10_state_growth for g in groups)
    if any(g.overflowed for g in groups) or growth > math.log10(options.explode_above):
        return ClipRegime.STATES_EXPLODE, (
            f"the forward states themselves grow 10^{growth:.1f}-fold over the analysed window "
            "(or overflow): every gradient norm on this probe measures that explosion; run "
            "with --inputs (real sequences of the length you train on), or fix the "
            "initialisation (ρ(W_hh) > 1 with an unbounded nonlinearity)")
    if any(g.exploding for g in groups):
        return ClipRegime.EXPLODING, ""
    return ClipRegime.HEALTHY, ""


def _joint(per_group: object) -> np.ndarray:
    """Per-probe norms of the modules together (B,)."""
    stacked = np.stack(list(per_group))  # (modules, B)
    return np.array([joint_norm(stacked[:, index]) for index in range(stacked.shape[1])])


def _finite_mean(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(np.mean(finite)) if finite.size else None


def _fmt(value: float | None) -> str:
    return "overflowing float64" if value is None else f"{value:.3g}"
