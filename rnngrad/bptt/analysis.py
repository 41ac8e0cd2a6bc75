"""``rnngrad bptt``: the measured per-lag profile of every recurrence, and clipping advice.

source -> recurrences grouped into modules -> probe -> forward pass of each module (stacks
and directions as PyTorch runs them, :mod:`rnngrad.cells.stack`) -> one backward sweep per
recurrence (:mod:`rnngrad.bptt.sweep`) -> directions, gradient shares, verdict ->
:class:`~rnngrad.bptt.report.BpttReport`.
"""

from __future__ import annotations

import contextlib
import zlib
from dataclasses import replace
from typing import Any, Callable, Iterator

import numpy as np
import torch

from rnngrad.bptt.allocator import large_temporaries_mapped
from rnngrad.bptt.directions import exploding_directions
from rnngrad.bptt.gradients import GroupGradients, clip_recommendation, group_gradients
from rnngrad.bptt.options import BpttOptions, bptt_options
from rnngrad.bptt.report import BpttReport, LagFlag, LagRow, RecurrenceProfile
from rnngrad.bptt.shares import replay_shares
from rnngrad.bptt.sweep import Profile, sweep
from rnngrad.bptt.verdict import ProfileVerdict, profile_verdict
from rnngrad.cells import Recurrence
from rnngrad.cells.base import CellWeights, cell_weights
from rnngrad.cells.rest import rest_jacobian
from rnngrad.cells.stack import (ForwardOverflow, Group, Trace, group_recurrences, run_stack,
                                 select_groups)
from rnngrad.conventions.understand import understand
from rnngrad.errors import OptionError, ProbeError, ResourceError
from rnngrad.io import WeightBundle
from rnngrad.limits import DEFAULT_MAX_BYTES, gib
from rnngrad.probes.heads import Head, find_embedding, find_head, load_head
from rnngrad.probes.initial import initial_states
from rnngrad.probes.lags import parse_lags
from rnngrad.probes.sequences import Probe, ProbeShape, make_probe, plan_probe
from rnngrad.probes.spec import ProbeSpec
from rnngrad.report import ModelInfo, finite_or_none, power10
from rnngrad.spectrum.matrix import spectral_norm

# Below this state size the per-step tensors are tiny and thread hand-offs cost more than the
# arithmetic (10x slower with 2 threads on a busy 2-core machine): run single-threaded.
SMALL_STATE = 128
DTYPES = {"float64": torch.float64, "float32": torch.float32}
Progress = Callable[[int, int, str], None]


def bptt(source: Any, options: BpttOptions | None = None, *,
         on_progress: Progress | None = None, **settings: Any) -> BpttReport:
    """Per-lag Jacobian norms, directions, gradient shares and a clip threshold.

    ``settings`` are :class:`~rnngrad.bptt.options.BpttOptions` fields
    (``rnngrad.bptt(path, lags="1..50")``).
    """
    options = bptt_options(options, settings)
    understood = understand(source, options)
    groups = select_groups(group_recurrences(understood.recurrences), options.modules)
    dtype, device = DTYPES[options.dtype], torch_device(options.device)
    head = load_head(understood.bundle, find_head(understood.bundle, groups[0].layers[-1]),
                     options.loss, options.targets, dtype, device, options.max_bytes)
    small = max(rec.state_size for g in groups for rec in g.members) < SMALL_STATE
    with torch_threads(1 if small else None):
        return _run_groups(understood.bundle, groups, head, options,
                           understood.notes, on_progress)


@contextlib.contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run with ``count`` torch threads (None: leave as is), restored afterwards."""
    previous = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def torch_device(name: str) -> torch.device:
    """``--device`` as a torch device, or an OptionError saying what is available."""
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise OptionError(f"--device {name}: no CUDA device is available", "use --device cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise OptionError(f"--device {name!r} is not a device", "use cpu or cuda") from None
    if device.type not in ("cpu", "cuda"):
        raise OptionError(f"--device {name!r} cannot run the analysis", "use cpu or cuda")
    return device


def _run_groups(bundle: WeightBundle, groups: list[Group], head: Head | None,
                options: BpttOptions, notes: tuple[str, ...],
                on_progress: Progress | None) -> BpttReport:
    dtype, device = DTYPES[options.dtype], torch_device(options.device)
    total = sum(len(g.members) for g in groups)
    profiles: list[RecurrenceProfile] = []
    extra_notes: list[str] = []
    gradients: list[GroupGradients] = []
    probe_used: Probe | None = None
    largest = parse_lags(options.lags)[-1]
    for group in groups:
        spec, input_size, note = group_probe_spec(bundle, group, options.probe)
        extra_notes += [note] if note else []
        with _naming_module(group):  # from headers: nothing drawn or read yet
            shape = plan_probe(spec, input_size, largest)
        lags = parse_lags(options.lags, shape.max_lag)
        _check_memory(group, shape, options, spec.path)
        with _naming_module(group):
            probe = make_probe(spec, input_size, _embedding(bundle, spec, input_size),
                               options.max_bytes, largest_lag=largest)
        if probe_used is None or note is None and probe_used.spec.kind != probe.spec.kind:
            probe_used = probe  # echo the probe asked for, not a module's fallback
        weights = {rec: cell_weights(bundle, rec, dtype, device) for rec in group.members}
        inputs = torch.as_tensor(probe.inputs, dtype=dtype, device=device)
        initial = initial_for(group, options.probe, inputs.shape[0], dtype, device,
                              options.max_bytes)
        try:
            with torch.no_grad():
                traces, _ = run_stack([[(rec, weights[rec]) for rec in layer]
                                       for layer in group.layers], inputs, initial)
        except ForwardOverflow as exc:
            profiles += [_overflowed(rec, exc.step, options) for rec in group.members]
            extra_notes.append(f"{group.name}: the forward pass overflowed at step {exc.step}")
            gradients.append(GroupGradients(full=np.full(inputs.shape[0], np.inf),
                                            overflowed=True))
            continue
        mine = []
        for rec in group.members:
            trace, seen = traces[rec]
            start = initial[rec] if initial is not None else None
            mine.append(_profile(rec, weights[rec], trace, seen, start, lags, options,
                                 _lag_progress(on_progress, rec, len(profiles) + len(mine),
                                               total)))
        profiles += mine
        if not options.profile_only:
            group_head = head if group is groups[0] else None
            with large_temporaries_mapped():
                gradients.append(group_gradients(group, weights, inputs, traces, mine,
                                                 group_head, options, initial))
    return BpttReport(model=ModelInfo.of(bundle),
                      probe=probe_used.echo() if probe_used else None, options=options,
                      recurrences=tuple(profiles),
                      clip=clip_recommendation(gradients, head, options),
                      caveats=probe_caveats(probe_used), notes=notes + tuple(extra_notes))


def probe_caveats(probe: Probe | None) -> tuple[str, ...]:
    """What a verdict on this probe rests on, when the probe is not the model's own data."""
    if probe is None or probe.spec.kind != "gaussian" or probe.spec.input_scale == 0:
        return ()
    return (f"the verdicts rest on random Gaussian inputs (N(0, {probe.spec.input_scale:g}²)): "
            "a model's own sequences can give another verdict (a character model can vanish on "
            "Gaussian inputs and be healthy on its text); run with --inputs FILE.npy (real "
            "sequences) or --tokens",)


def _lag_progress(on_progress: Progress | None, rec: Recurrence, index: int,
                  total: int) -> Callable[[int, int], None] | None:
    if on_progress is None:
        return None
    label = f"{rec.label} ({index + 1}/{total}) lag"
    return lambda lag, last: on_progress(lag, last, label)


def probe_for(bundle: WeightBundle, group: Group, spec: ProbeSpec, largest_lag: int,
              max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[Probe, str | None]:
    """The probe sequences for a group's first layer (:func:`group_probe_spec`), and its note;
    a probe file is read only if it fits in ``max_bytes``."""
    spec, input_size, note = group_probe_spec(bundle, group, spec)
    with _naming_module(group):
        probe = make_probe(spec, input_size, _embedding(bundle, spec, input_size), max_bytes,
                           largest_lag=largest_lag)
    return probe, note


def group_probe_spec(bundle: WeightBundle, group: Group,
                     spec: ProbeSpec) -> tuple[ProbeSpec, int, str | None]:
    """The probe a group runs on, its input width, and a note when the probe differs from the
    one asked for: zero-width inputs when only W_rec is known (``--key``) or the recurrence has
    no input; Gaussian inputs for a module that no embedding feeds when ``--tokens`` serves
    the others."""
    first = group.first
    missing = [name for rec in group.members for name in rec.missing]
    if missing:
        raise ProbeError(f"{bundle.path}: {group.name} lacks {missing[0]}, needed to run it",
                         "bptt and lyapunov run the model and need its input weights; "
                         "`rnngrad spectrum` works without them")
    window = dict(steps=spec.steps, burn_in=spec.burn_in, batch=spec.batch, seed=spec.seed,
                  initial_state=spec.initial_state)
    if first.input_size is None:  # --key or no input: zero-width inputs
        return ProbeSpec(**window, input_scale=0.0), 0, None
    if (spec.kind == "tokens" and find_embedding(bundle, first.input_size) is None
            and find_embedding(bundle, None) is not None):
        note = (f"{group.name or '(top)'}: no embedding feeds it (input width "
                f"{first.input_size}), so it runs on Gaussian inputs, not tokens")
        return ProbeSpec(**window, input_scale=spec.input_scale), first.input_size, note
    return spec, first.input_size, None


def _embedding(bundle: WeightBundle, spec: ProbeSpec, input_size: int) -> np.ndarray | None:
    """The file's embedding table for token probes (None for other probes)."""
    return find_embedding(bundle, input_size) if spec.kind == "tokens" and input_size else None


@contextlib.contextmanager
def _naming_module(group: Group) -> Iterator[None]:
    """Probe errors say which module's probe was refused."""
    try:
        yield
    except ProbeError as exc:
        raise ProbeError(f"{exc.message} (module {group.name or '(top)'})", exc.hint) from None


def initial_for(group: Group, spec: ProbeSpec, batch: int, dtype: torch.dtype, device,
                max_bytes: int = DEFAULT_MAX_BYTES) -> dict[Recurrence, torch.Tensor] | None:
    """s_0 (B, S) of each recurrence of ``group`` from ``--initial-state``; None: all zero."""
    states = initial_states(spec, [rec.state_size for rec in group.members], batch, max_bytes)
    if states is None:
        return None
    return {rec: torch.as_tensor(state, dtype=dtype, device=device)
            for rec, state in zip(group.members, states)}


# What the memory estimate counts (bytes of one process; benchmarks/bench_memory.py measures
# the peak RSS of whole processes against it at H = 512 ... 2048 and 100 ... 10,000 lags):
PROCESS_BYTES = 400 * 2**20  # Python with NumPy and torch loaded: 220-290 MiB measured
# State-sized rows a forward step keeps per probe for the sweep (its cache, the state, the
# input drive of its gates), in units of the hidden size H.
CACHE_ROWS = {"rnn": 3, "leaky": 3, "gru": 11, "gru_reset_before": 10, "lstm": 16}
# What autograd keeps per step and probe for the gradient-share replay, in units of H.
REPLAY_ROWS = {"rnn": 8, "leaky": 8, "gru": 30, "gru_reset_before": 30, "lstm": 40}


def memory_needed(group: Group, shape: ProbeShape, options: BpttOptions) -> int:
    """Bytes the analysis of one module holds at its peak, the process itself included, from
    the probe's planned shape (nothing drawn or read yet).

    The forward pass's caches live through the whole analysis; on top of them the largest of:
    the sweep's product buffers (two (B, S+K+2, S) products and a (B, S, S) Jacobian), the
    autograd replay for gradient shares and clip norms (all steps, batched over the probes),
    and the float64 eigen-analysis of the directions (a few S × S copies, complex ones too).
    """
    batch, steps = shape.batch, shape.length
    itemsize = 8 if options.dtype == "float64" else 4
    members = group.members
    forward = sum(CACHE_ROWS[rec.cell] * rec.hidden_size + rec.state_size for rec in members)
    sweep = max(rec.state_size * (3 * rec.state_size + 64) for rec in members)
    replay = max(REPLAY_ROWS[rec.cell] * rec.hidden_size * steps for rec in members)
    directions = 12 * max(rec.state_size for rec in members) ** 2 * 8
    inputs = batch * steps * shape.width * (8 + itemsize)
    return int(PROCESS_BYTES + inputs + batch * steps * forward * itemsize
               + max(batch * sweep * itemsize, batch * replay * itemsize, directions))


def _check_memory(group: Group, shape: ProbeShape, options: BpttOptions,
                  probe_file: str | None) -> None:
    """Refuse before the probe is made when :func:`memory_needed` is over ``--max-memory``."""
    batch, steps = shape.batch, shape.length
    needed = memory_needed(group, shape, options)
    if needed > options.max_bytes:
        biggest = max(rec.state_size for rec in group.members)
        probe = f" of the probe {probe_file}" if probe_file else ""
        raise ResourceError(f"{group.name or '(top)'}: the analysis needs about "
                            f"{gib(needed)} (state size {biggest}, batch {batch}, "
                            f"{steps} steps{probe}), over the {options.max_memory:g} GiB limit",
                            "use a smaller --batch or --steps (or shorter probe sequences), "
                            "or raise --max-memory")


def estimate_for(source: Any, options: BpttOptions | None = None, **settings: Any) -> int:
    """The bytes :func:`bptt` would need at its peak for ``source`` (the largest module's
    :func:`memory_needed`), without running it: what ``--max-memory`` is compared with."""
    options = bptt_options(options, settings)
    understood = understand(source, options)
    groups = select_groups(group_recurrences(understood.recurrences), options.modules)
    largest = parse_lags(options.lags)[-1]
    return max(memory_needed(group, _planned_shape(understood.bundle, group, options.probe,
                                                   largest), options) for group in groups)


def _planned_shape(bundle: WeightBundle, group: Group, spec: ProbeSpec,
                   largest_lag: int) -> ProbeShape:
    spec, input_size, _ = group_probe_spec(bundle, group, spec)
    with _naming_module(group):
        return plan_probe(spec, input_size, largest_lag)


def state_block(rec: Recurrence, state: str) -> tuple[slice, str]:
    """The rows/columns of the state analysed (``--state``), and its name in reports."""
    if rec.cell != "lstm" or state == "all":
        return slice(0, rec.state_size), rec.spec.state
    out = rec.output_size
    return (slice(0, out), "h") if state == "h" else (slice(out, rec.state_size), "c")


def _readout(size: int, seed: int, index: int, dtype: torch.dtype, device) -> torch.Tensor:
    vector = np.random.default_rng([seed, 7, index]).standard_normal(size)
    return torch.as_tensor(vector / np.linalg.norm(vector), dtype=dtype, device=device)


def _profile(rec: Recurrence, weights: CellWeights, trace: Trace, seen: torch.Tensor,
             initial: torch.Tensor | None, lags: tuple[int, ...], options: BpttOptions,
             on_lag=None) -> RecurrenceProfile:
    block, state_name = state_block(rec, options.state)
    size = block.stop - block.start
    readout = _readout(size, options.probe.seed, zlib.crc32(rec.weight_hh.encode()),
                       trace.outputs.dtype, trace.outputs.device)
    with torch.no_grad():
        profile = sweep(rec, weights, trace, lags, block=block, readout=readout,
                        on_lag=on_lag)
    rows = _rows(profile, options)
    verdict, reason = profile_verdict(rows, vanish_below=options.vanish_below,
                                      explode_above=options.explode_above)
    omega = finite_or_none(float(np.mean(profile.omega)))
    measured = RecurrenceProfile(recurrence=rec.identity(), state=state_name, state_size=size,
                                 rows=rows, verdict=verdict, reason=reason, omega=omega,
                                 omega_per_step=None if omega is None else omega / lags[-1])
    if options.profile_only:
        return measured
    with large_temporaries_mapped():
        shares = replay_shares(rec, weights, seen, readout, block, initial)
    reference, name = _reference_matrix(rec, weights, block)
    return replace(measured, directions=exploding_directions(profile, reference, name),
                   share_beyond_10=float(np.mean(shares[10])),
                   share_beyond_100=float(np.mean(shares[100])), bound=_bound(rec, reference))


def _bound(rec: Recurrence, weight_hh: np.ndarray) -> float | None:
    """γ·σ_max(W_hh) of an Elman cell: ‖∂h_T/∂h_(T−ℓ)‖ ≤ (γσ_max)^ℓ (Pascanu et al. 2013)."""
    return rec.gamma * spectral_norm(weight_hh) if rec.cell == "rnn" else None


REFERENCE_NAMES = {"rnn": "W_hh", "leaky": "effective leaky matrix (1−α)I + αφ'(0)W"}


def _reference_matrix(rec: Recurrence, weights: CellWeights,
                      block: slice) -> tuple[np.ndarray, str]:
    """The matrix whose leading eigenvectors the theory predicts the directions from."""
    if rec.cell == "rnn":
        return weights.weight_hh.double().cpu().numpy(), REFERENCE_NAMES["rnn"]
    jac = rest_jacobian(rec, weights)
    return jac[block, block], REFERENCE_NAMES.get(rec.cell, "rest-state Jacobian")


def _rows(profile: Profile, options: BpttOptions) -> tuple[LagRow, ...]:
    rows = []
    for column, lag in enumerate(profile.lags):
        logs = profile.log10_norm[:, column]
        mean_log = float(np.mean(logs))
        frob = float(np.mean(profile.log10_frobenius[:, column]))
        grad = float(np.mean(profile.log10_grad[:, column]))
        flag = (LagFlag.EXPLODE if mean_log > np.log10(options.explode_above) else
                LagFlag.VANISH if mean_log < np.log10(options.vanish_below) else None)
        rows.append(LagRow(lag=lag, norm=power10(mean_log),
                           norm_min=power10(float(logs.min())),
                           norm_max=power10(float(logs.max())),
                           log10_norm=finite_or_none(mean_log),
                           log10_norm_min=finite_or_none(float(logs.min())),
                           log10_norm_max=finite_or_none(float(logs.max())),
                           frobenius=power10(frob), log10_frobenius=finite_or_none(frob),
                           rate=power10(mean_log / lag), grad_norm=power10(grad),
                           log10_grad_norm=finite_or_none(grad), flag=flag))
    return tuple(rows)


def _overflowed(rec: Recurrence, step: int, options: BpttOptions) -> RecurrenceProfile:
    _, state_name = state_block(rec, options.state)
    return RecurrenceProfile(
        recurrence=rec.identity(), state=state_name, state_size=rec.state_size,
        verdict=ProfileVerdict.EXPLODING, overflow_step=step,
        reason=f"the forward pass itself overflowed float at step {step}: the states explode, "
               "so the Jacobians are not defined; lower --input-scale or --steps to see the "
               "profile before that")
