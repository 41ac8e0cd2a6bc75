"""What SGD does at θ: one step unclipped and clipped, the paths of a few, and the sentences.

A plain step is θ − ηg, of length η‖g‖; clipping at ``max_norm`` M rescales g to norm M when
‖g‖ > M (Pascanu et al. 2013, Sec. 3.2, Algorithm 1), so the step is at most ηM long. The
threshold comes from :func:`clip_threshold` (the one place that calls the rule), unless
``--max-norm`` gives it: by default the ``curvature`` rule ‖g‖/(η λ_max), which makes the
clipped step's effective learning rate 1/λ_max; or ``bptt``'s rules from the per-probe norms.
Along a direction of curvature λ > 0 plain gradient descent on a quadratic model is stable
for η < 2/λ.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Callable

import numpy as np
import torch

from rnngrad.bptt.clipping import ClipRecommendation, ClipRule, recommend, recommend_by_curvature
from rnngrad.cells.stack import ForwardOverflow
from rnngrad.report import finite_or_none
from rnngrad.surface.options import SurfaceOptions
from rnngrad.surface.report import PathPoint, Step, Wall, WallKind
from rnngrad.surface.slices import FoundWall


def clip_threshold(per_probe_norms: np.ndarray, options: SurfaceOptions, loss: str, *,
                   gradient_norm: float, largest_eigenvalue: float | None) -> ClipRecommendation:
    """The clip recommendation by ``options.clip_rule``: ``curvature`` from the batch gradient
    norm, λ_max and η; ``pascanu``/``autoclip`` as ``bptt`` makes it from the per-probe norms."""
    if options.clip_rule == ClipRule.CURVATURE:
        return recommend_by_curvature(per_probe_norms, gradient_norm=gradient_norm,
                                      largest_eigenvalue=largest_eigenvalue, lr=options.lr,
                                      loss=loss)
    return recommend(per_probe_norms, rule=options.clip_rule, loss=loss)


def max_norm_used(clip: ClipRecommendation, options: SurfaceOptions) -> tuple[float | None, str]:
    """The threshold the steps are clipped at, and where it came from."""
    if options.max_norm is not None:
        return float(options.max_norm), "--max-norm"
    return clip.max_norm, f"{clip.rule} rule over {clip.probes} probe" + (
        "" if clip.probes == 1 else "s")


def clipped_scale(norm: float, max_norm: float | None) -> float:
    """The factor clipping puts on a gradient of norm ``norm``: min(1, M/‖g‖)."""
    if max_norm is None or not math.isfinite(norm) or norm <= max_norm:
        return 1.0
    return max_norm / norm


def one_step(*, lr: float, loss: float, gradient_norm: float, losses_after: tuple[float, float],
             max_norm: float | None, source: str, wall: FoundWall | None, span: float,
             largest_eigenvalue: float | None) -> Step:
    """The step record and its sentence (``losses_after``: E unclipped, E clipped)."""
    step = lr * gradient_norm
    clipped = step * clipped_scale(gradient_norm, max_norm)
    distance = wall.distance if wall is not None and wall.distance > 0 else None
    stable = 2.0 / largest_eigenvalue if largest_eigenvalue and largest_eigenvalue > 0 else None
    step_record = Step(
        lr=lr, gradient_norm=finite_or_none(gradient_norm), max_norm=max_norm,
        max_norm_source=source, step_length=finite_or_none(step),
        clipped_length=finite_or_none(clipped), loss=finite_or_none(loss),
        loss_unclipped=finite_or_none(losses_after[0]),
        loss_clipped=finite_or_none(losses_after[1]), wall_distance=distance,
        crosses_wall=None if distance is None else step > distance,
        clipped_crosses_wall=None if distance is None else clipped > distance,
        stable_lr=stable, max_norm_to_stay=None if distance is None else distance / lr,
        sentence="")
    sentence = step_sentence(step_record, wall, span)
    return replace(step_record, sentence=sentence)


def step_sentence(step: Step, wall: FoundWall | None, span: float) -> str:
    """Whether the unclipped step crosses the wall and whether clipping keeps it in."""
    if step.step_length is None or step.gradient_norm is None:
        return "The gradient is not finite at θ: no step to take."
    if step.gradient_norm == 0:
        return "The gradient is zero at θ: SGD does not move."
    head = (f"One SGD step at η = {step.lr:g} moves θ by η‖g‖ = {_g(step.step_length)} "
            f"along −g; E {_g(step.loss)} → {_e(step.loss_unclipped)}")
    jump = ("E leaves float64" if wall is None or not math.isfinite(wall.loss_after)
            else f"E jumps {_g(wall.loss_before)} → {_g(wall.loss_after)}")
    if step.wall_distance is None:
        where = f" (no wall on the slice within {_g(span)} ahead)."
    elif step.crosses_wall:
        where = f": it crosses the wall {_g(step.wall_distance)} ahead, where {jump}."
    else:
        ahead = _g(step.wall_distance / step.step_length)
        where = (f": it stays short of the wall {_g(step.wall_distance)} ahead ({ahead}× the "
                 f"step), where {jump}.")
    return " ".join([head + where, _clip_words(step), _stability_words(step)])


def _clip_words(step: Step) -> str:
    if step.max_norm is None:
        return "No clip threshold: every per-probe gradient norm overflowed."
    threshold = f"max_norm = {_g(step.max_norm)} ({step.max_norm_source})"
    if step.gradient_norm <= step.max_norm:
        words = f"Clipping at {threshold} leaves this step as it is (‖g‖ ≤ max_norm)"
        if step.crosses_wall:
            return (f"{words}; a max_norm below {_g(step.max_norm_to_stay)} keeps it short of "
                    "the wall.")
        return words + "."
    words = (f"Clipped at {threshold} the step is {_g(step.clipped_length)} long: "
             f"E → {_e(step.loss_clipped)}")
    if step.clipped_crosses_wall is None:
        return words + "."
    if step.clipped_crosses_wall:
        return (f"{words}; it still crosses the wall: a max_norm below "
                f"{_g(step.max_norm_to_stay)} keeps a step of this η short of it.")
    return f"{words}, short of the wall: clipping keeps it in."


def _stability_words(step: Step) -> str:
    if step.stable_lr is None:
        return "No positive curvature at θ: a quadratic model sets no limit on η."
    state = "below" if step.lr < step.stable_lr else "at or above"
    return (f"η is {state} 2/λ_max = {_g(step.stable_lr)}, the largest learning rate stable "
            "along the top positive curvature direction.")


def sgd_path(gradient_at: Callable[[torch.Tensor], tuple[float, torch.Tensor]],
             start: torch.Tensor, *, lr: float, steps: int, max_norm: float | None,
             clip: bool, coordinates: Callable[[torch.Tensor], tuple[float, ...]],
             ) -> tuple[PathPoint, ...]:
    """``steps`` SGD steps from ``start``; ``gradient_at(θ)`` gives (E, g) or raises
    :class:`ForwardOverflow`, where the path stops."""
    theta, points = start, []
    for index in range(steps + 1):
        try:
            loss, gradient = gradient_at(theta)
        except ForwardOverflow:
            points.append(PathPoint(loss=None, gradient_norm=None, step_length=None,
                                    coordinates=coordinates(theta)))
            break
        norm = float(torch.linalg.vector_norm(gradient))
        last = index == steps or not math.isfinite(norm)
        scale = lr * (clipped_scale(norm, max_norm) if clip else 1.0)
        points.append(PathPoint(loss=finite_or_none(loss), gradient_norm=finite_or_none(norm),
                                step_length=None if last else finite_or_none(scale * norm),
                                coordinates=coordinates(theta)))
        if last:
            break
        theta = theta - scale * gradient
    return tuple(points)


def paths_sentence(unclipped: tuple[PathPoint, ...], clipped: tuple[PathPoint, ...],
                   lr: float, max_norm: float | None) -> str:
    """How the two paths went: where plain SGD jumped, and what clipping did."""
    if len(unclipped) < 2:
        return "No SGD path (--sgd-steps 0)."
    plain = f"Plain SGD at η = {lr:g}: " + _path_words(unclipped)
    if max_norm is None:
        return plain
    return f"{plain} Clipped at max_norm = {_g(max_norm)}: " + _path_words(clipped)


def _path_words(path: tuple[PathPoint, ...]) -> str:
    steps = len(path) - 1
    first, last = path[0], path[-1]
    if last.loss is None:
        count = f"{steps} step" + ("" if steps == 1 else "s")
        return (f"E overflowed float64 after {count} (the path left the valley and the "
                "forward pass diverged).")
    rise = next((k for k in range(steps) if path[k].loss is not None
                 and path[k + 1].loss is not None and path[k + 1].loss > path[k].loss), None)
    words = f"E {_g(first.loss)} → {_g(last.loss)} in {steps} steps"
    if rise is None:
        return words + ", falling at every step."
    jump = path[rise]
    return (f"{words}; at step {rise + 1} E rose {_g(jump.loss)} → {_g(path[rise + 1].loss)}: "
            f"a step of {_g(jump.step_length)} (‖g‖ = {_g(jump.gradient_norm)} there) went "
            "past a wall.")


def wall_record(found: FoundWall | None, slope: float, curvature: float) -> Wall | None:
    """The report's wall, with the slope and curvature measured at it."""
    if found is None:
        return None
    return Wall(kind=WallKind.JUMP, distance=found.distance,
                loss_before=finite_or_none(found.loss_before),
                loss_after=finite_or_none(found.loss_after), slope=finite_or_none(slope),
                curvature=finite_or_none(curvature), jump_ratio=finite_or_none(found.jump_ratio))


def _g(value: float | None) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.4g}"


def _e(loss: float | None) -> str:
    """A loss after a step: its value, or that it left float64."""
    return "not finite (overflow)" if loss is None else _g(loss)
