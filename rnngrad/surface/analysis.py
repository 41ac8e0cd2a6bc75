"""``rnngrad surface``: the error surface at θ, its curvature walls, and what SGD does there.

source -> understood file -> one module -> probe and loss -> E(θ) (:mod:`.objective`) ->
gradient and Hessian-vector products, Lanczos (:mod:`.curvature`) -> growth with the BPTT
horizon (:mod:`.growth`) -> the slice E(θ − tĝ) and its wall (:mod:`.slices`) -> one SGD step
and the paths of a few, clipped and not (:mod:`.steps`) -> the ``--vary`` grid
(:mod:`.grid`) -> :class:`~rnngrad.surface.report.SurfaceReport`.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Callable

import numpy as np
import torch

from rnngrad.bptt.analysis import DTYPES, SMALL_STATE, initial_for, probe_for, torch_device, \
    torch_threads
from rnngrad.cells.base import cell_weights
from rnngrad.cells.stack import ForwardOverflow, Group, group_recurrences, select_groups
from rnngrad.conventions.understand import Understood, understand
from rnngrad.errors import ProbeError, ResourceError
from rnngrad.probes.heads import find_head, load_head, probe_target, squared_targets
from rnngrad.probes.lags import parse_lags
from rnngrad.probes.sequences import Probe
from rnngrad.report import ModelInfo, finite_or_none
from rnngrad.surface.curvature import (MAX_STEPS, Extremes, HessianAt, lanczos_extremes,
                                      start_vector)
from rnngrad.surface.grid import coordinates_on, evaluate_grid, random_direction, resolve_axes
from rnngrad.surface.growth import default_lengths, growth
from rnngrad.surface.objective import Objective, build_objective
from rnngrad.surface.options import DEFAULT_LOSS, SurfaceOptions, resolve_probe, surface_options
from rnngrad.surface.report import (Curvature, LengthRow, ParameterRow, Paths, SlicePoint,
                                    SurfaceReport)
from rnngrad.surface.slices import along, derivatives_at, find_wall
from rnngrad.surface.steps import (clip_threshold, clipped_scale, max_norm_used, one_step,
                                   paths_sentence, sgd_path, wall_record)

Progress = Callable[[int, int, str], None]
# probe length without --steps, as bptt's default largest lag (ProbeSpec.window)
DEFAULT_LENGTH = 100
SPAN_STEPS = 10.0  # default slice span: this many times the step η‖g‖
TOLERANCE = {"float64": 1e-10, "float32": 1e-5}
# The growth table runs Lanczos once per horizon: fewer steps, a looser tolerance, and the
# residual of λ_1 reported next to it.
LENGTH_STEPS = 30
LENGTH_TOLERANCE = {"float64": 1e-6, "float32": 1e-4}


def surface(source: Any, options: SurfaceOptions | None = None, *,
            on_progress: Progress | None = None, **settings: Any) -> SurfaceReport:
    """The error surface of one module at the file's parameters θ.

    ``settings`` are :class:`~rnngrad.surface.options.SurfaceOptions` fields and
    :class:`~rnngrad.probes.spec.ProbeSpec` fields (``rnngrad.surface(path, lr=0.1,
    steps=30)``). Probe and loss not given take the model's own ``[probe]`` settings (a map's,
    as the shipped ``pascanu_unit`` sample carries), else the defaults.
    """
    understood, group, options, notes = _prepare(source, options, settings)
    progress = on_progress or (lambda done, total, label: None)
    with torch_threads(1 if max(r.state_size for r in group.members) < SMALL_STATE else None):
        return _analyse(understood, group, options, notes, progress)


def loss_function(source: Any, options: SurfaceOptions | None = None,
                  **settings: Any) -> Objective:
    """E as a function of θ for the module and probe ``surface`` would analyse:
    ``E = rnngrad.surface.loss_function(path); E(E.theta)`` is the loss at the file's values,
    and ``torch.func.grad(E)`` or ``torch.autograd`` differentiate it."""
    understood, group, options, _ = _prepare(source, options, settings)
    probe, _ = probe_for(understood.bundle, group, options.probe, DEFAULT_LENGTH)
    return _objective(understood, group, probe, options, DTYPES[options.dtype],
                      torch_device(options.device))[0]


def _prepare(source: Any, options: SurfaceOptions | None, settings: dict[str, Any]):
    """The file understood, the module chosen, the options resolved, and notes."""
    options, probe_settings = surface_options(options, settings)
    understood = understand(source, options)
    options, notes = _resolved(options, understood, probe_settings)
    group, group_note = _group(understood, options)
    return understood, group, options, understood.notes + notes + group_note


def _resolved(options: SurfaceOptions, understood: Understood,
              given: dict[str, Any]) -> tuple[SurfaceOptions, tuple[str, ...]]:
    """Probe and loss from the options, else from the model's own ``[probe]``."""
    own = understood.settings
    where = own.source if own is not None else ""
    probe = resolve_probe(options, dict(own.probe) if own else {}, given, where)
    loss = options.loss or (own.loss if own else None) or DEFAULT_LOSS
    # the model's targets go with the model's loss, unless targets are given
    targets = options.targets if options.targets is not None else (
        own.targets if own is not None and loss == own.loss else None)
    resolved = replace(options, probe=probe, loss=loss, targets=targets)
    notes = ()
    if own is not None and options.probe is not None:
        notes = (f"the options' probe replaced the one {where} gives ({own.describe()})",)
    return resolved, notes


def _group(understood: Understood, options: SurfaceOptions) -> tuple[Group, tuple[str, ...]]:
    groups = group_recurrences(understood.recurrences)
    chosen = select_groups(groups, (options.module,) if options.module else ())
    if len(groups) > 1 and not options.module:
        others = ", ".join(g.name or "(top)" for g in groups[1:])
        return chosen[0], (f"analysed the first module, {chosen[0].name or '(top)'}; the file "
                           f"also has {others}: pick one with --module",)
    return chosen[0], ()


def _analyse(understood: Understood, group: Group, options: SurfaceOptions,
             notes: tuple[str, ...], progress: Progress) -> SurfaceReport:
    dtype, device = DTYPES[options.dtype], torch_device(options.device)
    probe, probe_note = probe_for(understood.bundle, group, options.probe, DEFAULT_LENGTH)
    notes += (probe_note,) if probe_note else ()
    objective, loss_name = _objective(understood, group, probe, options, dtype, device)
    _check_memory(objective, options)
    progress(0, 5, "gradient and curvature")
    try:
        hessian = HessianAt(objective, objective.theta)
    except ForwardOverflow as exc:
        raise ProbeError(f"the forward pass overflowed at step {exc.step}: E is not defined "
                         "at the file's parameters", "lower --input-scale or --steps") from None
    gradient = hessian.gradient
    norm = float(torch.linalg.vector_norm(gradient))
    tolerance = TOLERANCE[options.dtype]
    curvature, extremes = _curvature(hessian, options.probe.seed, tolerance)
    progress(1, 5, "growth with the horizon")
    rows = _by_length(objective, probe, options)
    progress(2, 5, "slice and wall")
    clip = clip_threshold(_per_probe_norms(objective), options, loss_name, gradient_norm=norm,
                          largest_eigenvalue=curvature.largest_eigenvalue)
    max_norm, source = max_norm_used(clip, options)
    descent = objective.lift(-gradient / norm) if norm > 0 and math.isfinite(norm) else None
    span = options.span or (SPAN_STEPS * options.lr * norm if descent is not None and norm > 0
                            else 1.0)
    points, wall = _slice(objective, descent, span, options.points)
    progress(3, 5, "SGD steps")
    after = _losses_after(objective, gradient, norm, options.lr, max_norm)
    step = one_step(lr=options.lr, loss=hessian.loss, gradient_norm=norm, losses_after=after,
                    max_norm=max_norm, source=source, wall=wall[0], span=span,
                    largest_eigenvalue=curvature.largest_eigenvalue)
    directions = _directions(objective, descent, extremes, gradient, options.probe.seed)
    axes = resolve_axes(options.axes, objective, understood.bundle, directions)
    paths = _paths(objective, options, max_norm, coordinates_on(axes, objective))
    progress(4, 5, "grid")
    grid = evaluate_grid(objective, axes) if axes else None
    progress(5, 5, "done")
    return SurfaceReport(
        model=ModelInfo.of(understood.bundle), probe=probe.echo(), options=options,
        module=group.name, recurrences=tuple(rec.identity() for rec in group.members),
        loss_name=loss_name, parameter_count=objective.theta_size,
        parameters=_parameter_rows(objective, gradient), loss=finite_or_none(hessian.loss),
        gradient_norm=finite_or_none(norm), curvature=curvature, by_length=rows,
        growth=growth(rows), slice=points, wall=wall[1], step=step, clip=clip, paths=paths,
        grid=grid, notes=notes)


def _objective(understood: Understood, group: Group, probe: Probe, options: SurfaceOptions,
               dtype: torch.dtype, device) -> tuple[Objective, str]:
    bundle = understood.bundle
    weights = {rec: cell_weights(bundle, rec, dtype, device) for rec in group.members}
    inputs = torch.as_tensor(probe.inputs, dtype=dtype, device=device)
    batch = inputs.shape[0]
    width = sum(rec.output_size for rec in group.layers[-1])
    loss = options.loss
    head = load_head(bundle, find_head(bundle, group.layers[-1]), loss, options.targets,
                     dtype, device) if loss in ("mse", "ce") else None
    given = squared_targets(options.targets, width) if loss == "squared" and options.targets \
        else None
    seed = options.probe.seed
    stacked = np.stack([probe_target(head, loss, index, seed, width, given)
                        for index in range(batch)])
    targets = torch.as_tensor(stacked, device=device,
                              dtype=torch.int64 if loss == "ce" else dtype)
    initial = initial_for(group, options.probe, batch, dtype, device)
    objective = build_objective(group, weights, head, loss, targets, inputs, initial,
                                options.params)
    return objective, _loss_name(loss, head, options.targets)


def _loss_name(loss: str, head, targets: str | None) -> str:
    if loss == "readout":
        return "readout: uᵀy_T, a seeded random unit u per probe"
    if loss == "squared":
        return f"squared: ‖y_T − target‖², target {targets or 'seeded N(0, 1)'}"
    what = "½‖W y_T + b − target‖²" if loss == "mse" else "cross-entropy of W y_T + b"
    return f"{loss} through {head.name}: {what}"


def _check_memory(objective: Objective, options: SurfaceOptions) -> None:
    """Refuse before allocating: the kept double-backward graph and the Lanczos basis."""
    batch, length = objective.inputs.shape[:2]
    state = sum(rec.state_size for rec in objective.group.members)
    itemsize = 8 if options.dtype == "float64" else 4
    gate_rows = sum(p.shape[0] for p in objective.parameters if p.field == "weight_hh")
    needed = itemsize * (30 * batch * length * (state + gate_rows)
                         + 90 * objective.vector.numel())
    if needed > options.max_memory * 1024**3:
        raise ResourceError(f"surface needs about {needed / 1024**3:.1f} GiB (θ of "
                            f"{objective.theta_size:,} values, {batch} probes × {length} "
                            f"steps), over the {options.max_memory:g} GiB limit",
                            "use a smaller --batch or --steps, or raise --max-memory")


def _curvature(hessian: HessianAt, seed: int, tolerance: float,
               max_steps: int = MAX_STEPS) -> tuple[Curvature, Extremes]:
    gradient = hessian.gradient
    norm = float(torch.linalg.vector_norm(gradient))
    start = start_vector(gradient.numel(), seed, gradient.dtype, gradient.device)
    extremes = lanczos_extremes(hessian, start, tolerance=tolerance, max_steps=max_steps)
    along_gradient = cosine = None
    if norm > 0 and math.isfinite(norm):
        unit = gradient / norm
        along_gradient = float(unit @ hessian(unit))
        cosine = abs(float(unit @ extremes.top.vector))
    top, largest, smallest = extremes.top, extremes.largest, extremes.smallest
    record = Curvature(
        top_eigenvalue=finite_or_none(top.value),
        largest_eigenvalue=finite_or_none(largest.value),
        largest_residual=finite_or_none(largest.residual),
        largest_error_bound=finite_or_none(largest.error_bound),
        smallest_eigenvalue=finite_or_none(smallest.value),
        smallest_residual=finite_or_none(smallest.residual),
        smallest_error_bound=finite_or_none(smallest.error_bound),
        along_gradient=_maybe(along_gradient), cos_gradient_top=_maybe(cosine),
        products=hessian.products, lanczos_steps=extremes.steps, converged=extremes.converged)
    return record, extremes


def _maybe(value: float | None) -> float | None:
    return None if value is None else finite_or_none(value)


def _by_length(objective: Objective, probe: Probe,
               options: SurfaceOptions) -> tuple[LengthRow, ...]:
    length = probe.inputs.shape[1]
    horizons = parse_lags(options.lengths, length) if options.lengths else default_lengths(length)
    rows = []
    for horizon in horizons:
        hessian = HessianAt(objective.truncated(horizon), objective.theta)
        record, extremes = _curvature(hessian, options.probe.seed,
                                      LENGTH_TOLERANCE[options.dtype], LENGTH_STEPS)
        rows.append(LengthRow(steps=horizon,
                              gradient_norm=finite_or_none(float(
                                  torch.linalg.vector_norm(hessian.gradient))),
                              top_eigenvalue=record.top_eigenvalue,
                              top_residual=finite_or_none(extremes.top.residual),
                              along_gradient=record.along_gradient,
                              cos_gradient_top=record.cos_gradient_top))
    return tuple(rows)


def _per_probe_norms(objective: Objective) -> np.ndarray:
    """‖∂E_b/∂θ‖ for each probe b (B,), the statistic of the clip rule."""
    theta = objective.theta.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        per_probe = objective.per_probe(objective.embed(theta))
        norms = []
        for index in range(per_probe.shape[0]):
            (grad,) = torch.autograd.grad(per_probe[index], theta, retain_graph=True,
                                          allow_unused=True)
            norms.append(0.0 if grad is None else float(torch.linalg.vector_norm(grad)))
    return np.asarray(norms)


def _slice(objective: Objective, descent: torch.Tensor | None, span: float, count: int):
    """The slice E(θ − tĝ) for t in [−span, span], and its wall (found, record)."""
    if descent is None:
        return (), (None, None)
    steps = np.linspace(-span, span, count)
    values = along(objective, objective.vector, descent, steps)
    found = find_wall(objective, objective.vector, descent, steps, values)
    points = tuple(SlicePoint(step=float(t), loss=_nan_none(e)) for t, e in zip(steps, values))
    if found is None or not math.isfinite(found.distance):
        return points, (found, None)
    try:
        _, slope, curvature = derivatives_at(objective, objective.vector, descent,
                                             found.distance)
    except ForwardOverflow:  # the wall is where the forward pass stops being finite
        slope = curvature = math.nan
    return points, (found, wall_record(found, slope, curvature))


def _nan_none(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def _losses_after(objective: Objective, gradient: torch.Tensor, norm: float, lr: float,
                  max_norm: float | None) -> tuple[float, float]:
    """E after one plain and one clipped step (NaN where not finite)."""
    theta = objective.theta
    with torch.no_grad():
        plain = objective.loss(objective.embed(theta - lr * gradient), check_finite=False)
        scale = clipped_scale(norm, max_norm)
        clipped = objective.loss(objective.embed(theta - lr * scale * gradient),
                                 check_finite=False)
    return float(plain), float(clipped)


def _directions(objective: Objective, descent: torch.Tensor | None, extremes, gradient,
                seed: int) -> dict[str, tuple[torch.Tensor | None, str]]:
    zero = "the gradient is zero or not finite at θ: no direction"
    sign = -1.0 if float(extremes.top.vector @ gradient) > 0 else 1.0
    top = objective.lift(sign * extremes.top.vector)
    return {
        "gradient": (descent, "−ĝ, the unit descent direction" if descent is not None else zero),
        "curvature": (top, f"u_1, the unit eigenvector of λ_1 = {extremes.top.value:.4g}, "
                           "pointing downhill"),
        "random": (random_direction(objective, seed),
                   "random, filter-normalised (Li et al. 2018)"),
    }


def _paths(objective: Objective, options: SurfaceOptions, max_norm: float | None,
           coordinates) -> Paths:
    def gradient_at(theta: torch.Tensor) -> tuple[float, torch.Tensor]:
        leaf = theta.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            loss = objective(leaf)
            (grad,) = torch.autograd.grad(loss, leaf, allow_unused=True)
        return float(loss.detach()), torch.zeros_like(leaf) if grad is None else grad

    common = dict(lr=options.lr, steps=options.sgd_steps, max_norm=max_norm,
                  coordinates=coordinates)
    unclipped = sgd_path(gradient_at, objective.theta, clip=False, **common)
    clipped = sgd_path(gradient_at, objective.theta, clip=True, **common)
    return Paths(unclipped=unclipped, clipped=clipped,
                 sentence=paths_sentence(unclipped, clipped, options.lr, max_norm))


def _parameter_rows(objective: Objective, gradient: torch.Tensor) -> tuple[ParameterRow, ...]:
    rows = []
    for parameter in objective.parameters:
        norm = (finite_or_none(float(torch.linalg.vector_norm(gradient[parameter.span])))
                if parameter.in_theta else None)
        rows.append(ParameterRow(name=parameter.name, shape=parameter.shape,
                                 in_theta=parameter.in_theta, gradient_norm=norm))
    return tuple(rows)
