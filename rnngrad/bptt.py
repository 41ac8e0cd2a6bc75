"""``rnngrad bptt``: the measured per-lag profile of every recurrence, and clipping advice.

source -> recurrences grouped into modules -> probe -> forward pass of each module (stacks
and directions as PyTorch runs them) -> one backward sweep per recurrence
(:mod:`rnngrad.jacobians`) -> directions, gradient shares, verdict -> :class:`BpttReport`.
"""

from __future__ import annotations

import zlib
import contextlib
from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Any, Callable

import numpy as np
import torch

from .analysis import model_info, rest_jacobian, understanding_notes, understood_bundle
from .cells import Recurrence, cell_weights, leaky
from .cells.detection import find_recurrences
from .clipping import ClipRecommendation, recommend
from .directions import exploding_directions
from .errors import OptionError, ProbeError, ResourceError
from .heads import Head, find_embedding, find_head, load_head, probe_loss
from .jacobians import ForwardOverflow, run_recurrence, run_stack, sweep, replay_shares
from .lags import parse_lags
from .loading import WeightBundle
from .probes import Probe, ProbeSpec, make_probe
from .report import BpttReport, LagRow, RecurrenceProfile
from .verdict import profile_verdict

STATES = ("all", "h", "c")
# Below this state size the per-step tensors are tiny and thread hand-offs cost more than the
# arithmetic (10x slower with 2 threads on a busy 2-core machine): run single-threaded.
SMALL_STATE = 128
DTYPES = {"float64": torch.float64, "float32": torch.float32}


@dataclass(frozen=True, kw_only=True)
class BpttOptions:
    """Everything ``bptt`` can be asked; defaults are the CLI's."""

    lags: str = "1..100"
    probe: ProbeSpec = ProbeSpec()
    state: str = "all"
    dtype: str = "float64"
    device: str = "cpu"
    vanish_below: float = 1e-4
    explode_above: float = 1e4
    loss: str = "readout"
    targets: str | None = None
    clip_rule: str = "pascanu"
    modules: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()
    activation: str | None = None
    max_memory_gib: float = 8.0
    leak: float | None = None
    mapping: str | None = None

    def describe(self) -> tuple[tuple[str, Any], ...]:
        extra = tuple((name, value) for name, value in (("leak", self.leak), ("map", self.mapping))
                      if value is not None)
        return (("lags", self.lags), ("state", self.state), ("dtype", self.dtype),
                ("device", self.device), ("vanish_below", self.vanish_below),
                ("explode_above", self.explode_above), ("loss", self.loss),
                ("clip_rule", self.clip_rule)) + extra


@dataclass(frozen=True)
class Group:
    """Recurrences run together: a stacked module (layers of directions) or a lone cell."""

    name: str
    layers: list[list[Recurrence]]

    @property
    def first(self) -> Recurrence:
        return self.layers[0][0]

    @property
    def members(self) -> list[Recurrence]:
        return [rec for layer in self.layers for rec in layer]


def bptt(source: Any, options: BpttOptions = BpttOptions(), *,
         on_progress: Callable[[int, int, str], None] | None = None) -> BpttReport:
    """Per-lag Jacobian norms, directions, gradient shares and a clip threshold."""
    _check_options(options)
    bundle = understood_bundle(source, options.mapping)
    recurrences = find_recurrences(bundle, keys=options.keys, activation=options.activation,
                                   leak=options.leak)
    groups = _select(_groups(recurrences), options.modules)
    dtype, device = DTYPES[options.dtype], _device(options.device)
    head = load_head(bundle, find_head(bundle, groups[0].layers[-1]), options.loss,
                     options.targets, dtype, device)
    total = sum(len(g.members) for g in groups)
    small = max(rec.state_size for g in groups for rec in g.members) < SMALL_STATE
    notes = understanding_notes(bundle, recurrences)
    with _torch_threads(1 if small else None):
        report = _run_groups(bundle, groups, head, options, dtype, device, on_progress, total)
    return replace(report, notes=notes + report.notes[len(bundle.notes):])


@contextlib.contextmanager
def _torch_threads(count: int | None):
    previous = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _run_groups(bundle: WeightBundle, groups: list[Group], head: Head | None,
                options: BpttOptions, dtype, device, on_progress, total: int) -> BpttReport:
    profiles, notes, per_probe_norms = [], list(bundle.notes), []
    probe_used: Probe | None = None
    for group in groups:
        probe = _probe_for(bundle, group, options.probe)
        probe_used = probe_used or probe
        lags = parse_lags(options.lags, probe.max_lag)
        _check_memory(group, probe, lags, options)
        weights = {rec: cell_weights(bundle, rec, dtype, device) for rec in group.members}
        inputs = torch.as_tensor(probe.inputs, dtype=dtype, device=device)
        try:
            with torch.no_grad():
                traces, _ = run_stack([[(rec, weights[rec]) for rec in layer]
                                       for layer in group.layers], inputs)
        except ForwardOverflow as exc:
            profiles += [_overflowed(rec, exc.step, options) for rec in group.members]
            notes.append(f"{group.name}: the forward pass overflowed at step {exc.step}")
            continue
        for rec in group.members:
            trace, seen = traces[rec]
            profiles.append(_profile(rec, weights[rec], trace, seen, lags, options,
                                     _lag_progress(on_progress, rec, len(profiles), total)))
        group_head = head if group is groups[0] else None
        per_probe_norms.append(_gradient_norms(group, weights, inputs, group_head, options))
    clip = _clip(per_probe_norms, head, options)
    return BpttReport(model=model_info(bundle), probe=tuple(probe_used.describe().items())
                      if probe_used else (), options=options.describe(),
                      recurrences=tuple(profiles), clip=clip, notes=tuple(notes))


def _lag_progress(on_progress, rec: Recurrence, index: int, total: int):
    if on_progress is None:
        return None
    label = f"{rec.label} ({index + 1}/{total}) lag"
    return lambda lag, last: on_progress(lag, last, label)


def _check_options(options: BpttOptions) -> None:
    if options.state not in STATES:
        raise OptionError(f"--state {options.state!r} is not known", "use all, h or c")
    if options.dtype not in DTYPES:
        raise OptionError(f"--dtype {options.dtype!r} is not supported", "use float64 or float32")
    if not (0 < options.vanish_below < options.explode_above):
        raise OptionError(f"thresholds --vanish-below {options.vanish_below} and --explode-above "
                          f"{options.explode_above} must satisfy 0 < vanish < explode",
                          "e.g. --vanish-below 1e-4 --explode-above 1e4")


def _device(name: str) -> torch.device:
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise OptionError(f"--device {name}: no CUDA device is available", "use --device cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise OptionError(f"--device {name!r} is not a device", "use cpu or cuda") from None


def _groups(recurrences: tuple[Recurrence, ...]) -> list[Group]:
    stacks: dict[str, dict[int, list[Recurrence]]] = defaultdict(lambda: defaultdict(list))
    order: list[str] = []
    singles: list[Group] = []
    for rec in recurrences:
        if rec.cell_module:
            singles.append(Group(rec.module, [[rec]]))
            order.append(f"\0{len(singles) - 1}")
            continue
        if rec.module not in stacks:
            order.append(rec.module)
        stacks[rec.module][rec.layer].append(rec)
    groups = []
    for key in order:
        if key.startswith("\0"):
            groups.append(singles[int(key[1:])])
            continue
        layers = [sorted(stacks[key][k], key=lambda r: r.direction != "forward")
                  for k in sorted(stacks[key])]
        groups.append(Group(key, layers))
    return groups


def _select(groups: list[Group], modules: tuple[str, ...]) -> list[Group]:
    if not modules:
        return groups
    chosen = [g for g in groups if g.name in modules]
    unknown = sorted(set(modules) - {g.name for g in groups})
    if unknown:
        raise OptionError(f"--module {unknown[0]!r} is not in the file",
                          f"modules: {', '.join(g.name or '(top)' for g in groups)}")
    return chosen


def _probe_for(bundle: WeightBundle, group: Group, spec: ProbeSpec) -> Probe:
    first = group.first
    missing = [name for rec in group.members for name in rec.missing]
    if missing:
        raise ProbeError(f"{bundle.path}: {group.name} lacks {missing[0]}, needed to run it",
                         "bptt needs the input weights; `rnngrad spectrum` works without them")
    if first.input_size is None:  # --key: only W_rec known, analysed at x = 0
        zero = replace(spec, kind="gaussian", input_scale=0.0, path=None)
        return make_probe(zero, 0)
    embedding = find_embedding(bundle, first.input_size) if spec.kind == "tokens" else None
    try:
        return make_probe(spec, first.input_size, embedding)
    except ProbeError as exc:
        raise ProbeError(f"{exc.message} (module {group.name or '(top)'})", exc.hint) from None


def _check_memory(group: Group, probe: Probe, lags: tuple[int, ...],
                  options: BpttOptions) -> None:
    batch, steps = probe.inputs.shape[:2]
    itemsize = 8 if options.dtype == "float64" else 4
    biggest = max(rec.state_size for rec in group.members)
    caches = sum(rec.state_size * 10 for rec in group.members) * batch * steps
    needed = (4 * batch * biggest * biggest + caches) * itemsize
    limit = options.max_memory_gib * 1024**3
    if needed > limit:
        raise ResourceError(f"{group.name or '(top)'}: the analysis needs about "
                            f"{needed / 1024**3:.1f} GiB (state size {biggest}, batch {batch}, "
                            f"{steps} steps), over the {options.max_memory_gib:g} GiB limit",
                            "use a smaller --batch or --steps, or raise --max-memory")


def _block(rec: Recurrence, state: str) -> tuple[slice, str]:
    if rec.cell != "lstm" or state == "all":
        return slice(0, rec.state_size), {"lstm": "h,c", leaky.NAME: "x"}.get(rec.cell, "h")
    out = rec.output_size
    return (slice(0, out), "h") if state == "h" else (slice(out, rec.state_size), "c")


def _readout(size: int, seed: int, index: int, dtype: torch.dtype, device) -> torch.Tensor:
    vector = np.random.default_rng([seed, 7, index]).standard_normal(size)
    return torch.as_tensor(vector / np.linalg.norm(vector), dtype=dtype, device=device)


def _profile(rec: Recurrence, weights, trace, seen: torch.Tensor, lags: tuple[int, ...],
             options: BpttOptions, on_lag=None) -> RecurrenceProfile:
    block, state_name = _block(rec, options.state)
    size = block.stop - block.start
    readout = _readout(size, options.probe.seed, zlib.crc32(rec.weight_hh.encode()),
                       trace.outputs.dtype, trace.outputs.device)
    with torch.no_grad():
        profile = sweep(rec, weights, trace, lags, block=block, readout=readout,
                        on_lag=on_lag)
    shares = replay_shares(rec, weights, seen, readout, block)
    rows = _rows(profile, options)
    reference, name = _reference_matrix(rec, weights, block)
    directions = exploding_directions(profile, reference, name)
    verdict, reason = profile_verdict(rows, vanish_below=options.vanish_below,
                                      explode_above=options.explode_above)
    return RecurrenceProfile(recurrence=rec, state=state_name, state_size=size, rows=rows,
                             directions=directions,
                             share_beyond_10=float(np.mean(shares[10])),
                             share_beyond_100=float(np.mean(shares[100])),
                             verdict=verdict, reason=reason)


def _reference_matrix(rec: Recurrence, weights, block: slice) -> tuple[np.ndarray, str]:
    if rec.cell == "rnn":
        return weights.weight_hh.double().cpu().numpy(), "W_hh"
    if rec.cell == leaky.NAME:
        matrix = weights.weight_hh.double().cpu().numpy()
        return (leaky.effective_matrix(matrix, rec.leak, rec.nonlinearity),
                "effective leaky matrix (1−α)I + αφ'(0)W")
    cpu = replace(weights, **{name: getattr(weights, name).double().cpu()
                              for name in ("weight_hh", "weight_ih", "bias_ih", "bias_hh",
                                           "weight_hr") if getattr(weights, name) is not None})
    state = cpu.weight_hh.new_zeros(1, rec.state_size)
    _, cache = rec.kind.step(cpu, cpu.rest_drive(), state, rec.nonlinearity)
    jac = rec.kind.jacobian(cpu, cache, rec.nonlinearity)[0].numpy()
    return jac[block, block], "rest-state Jacobian"


def _rows(profile, options: BpttOptions) -> tuple[LagRow, ...]:
    rows = []
    for column, lag in enumerate(profile.lags):
        logs = profile.log10_norm[:, column]
        mean_log = float(np.mean(logs))
        frob = float(np.mean(profile.log10_frobenius[:, column]))
        grad = float(np.mean(profile.log10_grad[:, column]))
        norm = _power10(mean_log)
        flag = ("explode" if norm is not None and norm > options.explode_above
                or mean_log > np.log10(options.explode_above) else
                "vanish" if mean_log < np.log10(options.vanish_below) else None)
        rows.append(LagRow(lag=lag, norm=norm, norm_min=_power10(float(logs.min())),
                           norm_max=_power10(float(logs.max())), log10_norm=mean_log,
                           log10_norm_min=float(logs.min()), log10_norm_max=float(logs.max()),
                           frobenius=_power10(frob), log10_frobenius=frob,
                           rate=_power10(mean_log / lag), grad_norm=_power10(grad),
                           log10_grad_norm=grad, flag=flag))
    return tuple(rows)


def _power10(log_value: float) -> float | None:
    """10**x when it is a normal float64, else None (the log10 field carries the value)."""
    if not np.isfinite(log_value) or not -307 < log_value < 308:
        return None
    return float(10.0 ** log_value)


def _overflowed(rec: Recurrence, step: int, options: BpttOptions) -> RecurrenceProfile:
    _, state_name = _block(rec, options.state)
    return RecurrenceProfile(
        recurrence=rec, state=state_name, state_size=rec.state_size, rows=(), directions=None,
        share_beyond_10=None, share_beyond_100=None, verdict="exploding",
        reason=f"the forward pass itself overflowed float at step {step}: the states explode, "
               "so the Jacobians are not defined; lower --input-scale or --steps to see the "
               "profile before that", overflow_step=step)


def _gradient_norms(group: Group, weights: dict, inputs: torch.Tensor, head: Head | None,
                    options: BpttOptions) -> np.ndarray:
    """‖∂E_b/∂θ‖ per probe b over the group's parameters (and the head's, if used)."""
    params = {rec: {name: value.detach().clone().requires_grad_(True)
                    for name, value in vars(w).items() if value is not None}
              for rec, w in weights.items()}
    norms = []
    for index in range(inputs.shape[0]):
        with torch.enable_grad():
            layers = [[(rec, type(weights[rec])(**params[rec])) for rec in layer]
                      for layer in group.layers]
            try:
                _, output = run_stack(layers, inputs[index:index + 1])
            except ForwardOverflow:
                norms.append(np.inf)
                continue
            loss, head_params = probe_loss(output[:, -1], head, options.loss, index,
                                           options.probe.seed)
            leaves = [p for per in params.values() for p in per.values()] + head_params
            grads = torch.autograd.grad(loss, leaves, allow_unused=True)
        norms.append(_joint_norm([g for g in grads if g is not None]))
    return np.asarray(norms)


def _joint_norm(tensors: list[torch.Tensor]) -> float:
    """‖concat(tensors)‖ without squaring large numbers (a scaled sum of squares)."""
    parts = np.array([float(torch.linalg.vector_norm(t.double())) for t in tensors])
    if parts.size == 0:
        return 0.0
    if not np.all(np.isfinite(parts)):
        return float("inf")
    top = parts.max()
    return float(top * np.sqrt(np.sum((parts / top) ** 2))) if top > 0 else 0.0


def _clip(per_group: list[np.ndarray], head: Head | None,
          options: BpttOptions) -> ClipRecommendation | None:
    if not per_group:
        return None
    stacked = np.stack(per_group)
    top = np.max(stacked, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        norms = np.where(top > 0, top * np.sqrt(np.sum((stacked / np.where(top > 0, top, 1)) ** 2,
                                                       axis=0)), 0.0)
    norms = np.where(np.isfinite(top), norms, np.inf)
    loss = options.loss if head is None else f"{options.loss} through {head.name}"
    return recommend(norms, rule=options.clip_rule, loss=loss)


__all__ = ["BpttOptions", "bptt", "run_recurrence"]
