"""``rnngrad lyapunov``: the Lyapunov spectrum of every recurrence along its probe trajectory.

source -> recurrences grouped into modules -> a long probe -> each module run forwards as
PyTorch runs it (stacks and directions, :func:`rnngrad.cells.stack.stream_stack`, streaming:
no step's cache is kept) -> the QR algorithm on each recurrence's step Jacobians
(:mod:`rnngrad.lyapunov.qr`) -> statistics, meaning and verdict ->
:class:`~rnngrad.lyapunov.report.LyapunovReport`.

Each recurrence is driven by its real input, as in ``bptt``: layer k by layer k−1's outputs, a
reverse direction over the reversed sequence; its exponents are those of its own step
Jacobians ∂s_t/∂s_(t−1) (the diagonal block of the stack's), an LSTM's over s = [h; c].
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Callable

import numpy as np
import torch

from rnngrad.bptt.analysis import (DTYPES, SMALL_STATE, initial_for, probe_for, torch_device,
                                   torch_threads)
from rnngrad.bptt.options import BpttOptions
from rnngrad.cells import Recurrence
from rnngrad.cells.base import cell_weights
from rnngrad.cells.stack import (ForwardOverflow, Group, group_recurrences, select_groups,
                                 stream_stack)
from rnngrad.conventions.understand import understand
from rnngrad.errors import ProbeError, ResourceError
from rnngrad.io import WeightBundle
from rnngrad.lyapunov import meaning
from rnngrad.lyapunov.agreement import bptt_agreements
from rnngrad.lyapunov.options import DEFAULT_PROBE, LyapunovOptions, lyapunov_options
from rnngrad.lyapunov.qr import RawSpectrum, initial_basis, qr_exponents
from rnngrad.lyapunov.report import LyapunovReport, RecurrenceExponents, RunningEstimates
from rnngrad.lyapunov.verdict import LyapunovVerdict, lyapunov_verdict, overflow_reason
from rnngrad.probes.sequences import Probe
from rnngrad.probes.spec import ProbeSpec
from rnngrad.report import ModelInfo, finite_or_none

Progress = Callable[[int, int, str], None]
# Running estimates are kept for this many of the top exponents (the report stays small).
RUNNING_EXPONENTS = 10


def lyapunov(source: Any, options: LyapunovOptions | None = None, *,
             on_progress: Progress | None = None, **settings: Any) -> LyapunovReport:
    """The top ``k`` Lyapunov exponents of every recurrence, what they mean, and a verdict.

    ``settings`` are :class:`~rnngrad.lyapunov.options.LyapunovOptions` fields and probe
    fields (``rnngrad.lyapunov(path, k=4, steps=5000)``).
    """
    options = lyapunov_options(options, settings)
    understood = understand(source, options)
    groups = select_groups(group_recurrences(understood.recurrences), options.modules)
    small = max(rec.state_size for g in groups for rec in g.members) < SMALL_STATE
    items: list[RecurrenceExponents] = []
    probe_used: Probe | None = None
    with torch_threads(1 if small else None):
        for group in groups:
            probe = lyapunov_probe(understood.bundle, group, options)
            probe_used = probe_used or probe
            items += _run_group(understood.bundle, group, probe, options, on_progress)
    if options.bptt_lags is not None:
        items = bptt_agreements(understood.bundle, items, probe_used, options)
    return LyapunovReport(model=ModelInfo.of(understood.bundle),
                          probe=probe_used.echo() if probe_used else None, options=options,
                          recurrences=tuple(items), notes=understood.notes)


def largest_exponents(bundle: WeightBundle, options: BpttOptions,
                      on_progress: Progress | None = None, *,
                      length: ProbeSpec = DEFAULT_PROBE) -> dict[str, RecurrenceExponents]:
    """λ_1 of every recurrence of ``options.modules``, by weight_hh name, for ``check`` and the
    training monitor: a long probe of ``length``'s batch, burn-in and steps (lyapunov's own by
    default: a window of a hundred steps says nothing of a limit) with the bptt options' seed,
    input scale, probe file, precision and reading."""
    probe = options.probe
    spec = replace(DEFAULT_PROBE, batch=length.batch, steps=length.steps,
                   burn_in=length.burn_in, seed=probe.seed, input_scale=probe.input_scale,
                   inputs=probe.inputs, tokens=probe.tokens, tokens_file=probe.tokens_file,
                   initial_state=probe.initial_state)
    report = lyapunov(bundle, LyapunovOptions(
        probe=spec, k=1, modules=options.modules, dtype=options.dtype, device=options.device,
        **vars(options.read_options())), on_progress=on_progress)
    return {item.recurrence.weight_hh: item for item in report.recurrences}


def lyapunov_probe(bundle: WeightBundle, group: Group, options: LyapunovOptions) -> Probe:
    """The probe of a group, its window after the burn-in.

    Generated probes are burn_in + steps long. File probes (``--inputs``, ``--tokens-file``)
    lose their first ``burn_in`` steps to the transient; the rest is the window.
    """
    spec = options.probe
    probe, _ = probe_for(bundle, group, spec, spec.steps)
    if spec.path is None:
        return probe
    length = probe.inputs.shape[1]
    if spec.burn_in >= length:
        raise ProbeError(f"{spec.path}: the sequences have {length} steps and --burn-in "
                         f"{spec.burn_in} leaves none to average over",
                         f"give longer sequences, or --burn-in below {length} (the exponents "
                         "need hundreds of steps after it)")
    return replace(probe, max_lag=length - spec.burn_in)


def _run_group(bundle: WeightBundle, group: Group, probe: Probe, options: LyapunovOptions,
               on_progress: Progress | None) -> list[RecurrenceExponents]:
    dtype, device = DTYPES[options.dtype], torch_device(options.device)
    _check_memory(group, probe, options)
    weights = {rec: cell_weights(bundle, rec, dtype, device) for rec in group.members}
    inputs = torch.as_tensor(probe.inputs, dtype=dtype, device=device)
    batch, length = probe.inputs.shape[:2]
    burn_in, window = length - probe.max_lag, probe.max_lag
    items: list[RecurrenceExponents] = []
    try:
        with torch.no_grad():
            initial = initial_for(group, options.probe, batch, dtype, device)
            runs = stream_stack([[(rec, weights[rec]) for rec in layer]
                                 for layer in group.layers], inputs, initial, top_outputs=False)
            for run in runs:
                rec = run.recurrence
                k = min(options.k, rec.state_size)
                frame = initial_basis(rec.state_size, k, options.probe.seed, dtype, device)
                raw = qr_exponents(rec, weights[rec], run.steps, batch=batch, burn_in=burn_in,
                                   window=window, frame=frame, blocks=options.blocks,
                                   on_step=_step_progress(on_progress, rec, length))
                items.append(recurrence_exponents(rec, raw, options.edge))
    except ForwardOverflow as exc:
        culprit = group.members[len(items)]
        items += [_overflowed(rec, exc.step, culprit, options.edge)
                  for rec in group.members[len(items):]]
    return items


def _step_progress(on_progress: Progress | None, rec: Recurrence,
                   total: int) -> Callable[[int], None] | None:
    if on_progress is None:
        return None
    return lambda step: on_progress(step, total, f"{rec.label} step")


def _check_memory(group: Group, probe: Probe, options: LyapunovOptions) -> None:
    """Refuse before allocating: the inputs and the output sequences the layers above read,
    the frames and their products (four gate blocks at most), and the weights."""
    batch, steps, width = probe.inputs.shape
    itemsize = 8 if options.dtype == "float64" else 4
    below_top = [rec for layer in group.layers[:-1] for rec in layer]
    sequences = batch * steps * (width + sum(rec.output_size for rec in below_top))
    frames = sum(6 * batch * rec.state_size * min(options.k, rec.state_size)
                 for rec in group.members)
    weights = sum(5 * rec.hidden_size * (rec.hidden_size + (rec.input_size or 0))
                  for rec in group.members)
    needed = (sequences + frames + weights) * itemsize
    if needed > options.max_memory * 1024**3:
        raise ResourceError(f"{group.name or '(top)'}: the analysis needs about "
                            f"{needed / 1024**3:.1f} GiB (batch {batch}, {steps} steps), over "
                            f"the {options.max_memory:g} GiB limit",
                            "use a smaller --batch or --steps, or raise --max-memory")


def recurrence_exponents(rec: Recurrence, raw: RawSpectrum, edge: float) -> RecurrenceExponents:
    """Statistics over probes and blocks, sorted descending, with their meaning and verdict."""
    per_probe = raw.totals / raw.steps  # (B, K), −∞ where annihilated
    with np.errstate(invalid="ignore"):
        mean = per_probe.mean(axis=0)
    order = np.argsort(-np.where(np.isnan(mean), -np.inf, mean), kind="stable")
    values = [float(mean[i]) for i in order]
    stderr = [_stderr(raw.block_means[:, :, i]) for i in order]
    spread = [_probe_sd(per_probe[:, i]) for i in order]
    lambda_1 = values[0]
    verdict, reason = lyapunov_verdict(lambda_1, stderr[0], edge)
    chaotic = verdict is LyapunovVerdict.CHAOTIC
    dimension = meaning.kaplan_yorke(values)[0] if chaotic else None
    entropy = meaning.entropy_rate(values, edge)[0] if chaotic else None
    return RecurrenceExponents(
        recurrence=rec.identity(), state=rec.spec.state, state_size=rec.state_size,
        verdict=verdict, reason=reason, edge=edge,
        exponents=tuple(finite_or_none(v) for v in values), exponents_stderr=tuple(stderr),
        exponents_probe_sd=tuple(spread), factor=finite_or_none(meaning.factor(lambda_1)),
        half_life=meaning.half_life(lambda_1), doubling_time=meaning.doubling_time(lambda_1),
        time_scales=meaning.time_scales(values),
        positive_count=meaning.positive_count(values, edge) if chaotic else None,
        kaplan_yorke=dimension, entropy_rate=entropy,
        converged=stderr[0] is not None and stderr[0] <= edge / 2,
        running=_running(raw, order[:RUNNING_EXPONENTS]))


def _stderr(block_means: np.ndarray) -> float | None:
    """Standard error of the mean from the block means of every probe (B, N), pooled: the
    batch-means estimate; None when a value is −∞ or there is one block in all."""
    values = block_means.ravel()
    if values.size < 2 or not np.all(np.isfinite(values)):
        return None
    return float(np.std(values, ddof=1) / math.sqrt(values.size))


def _probe_sd(per_probe: np.ndarray) -> float | None:
    if per_probe.size < 2 or not np.all(np.isfinite(per_probe)):
        return None
    return float(np.std(per_probe, ddof=1))


def _running(raw: RawSpectrum, columns: np.ndarray) -> RunningEstimates:
    return RunningEstimates(steps=tuple(int(n) for n in raw.running_steps),
                            exponents=tuple(tuple(finite_or_none(float(v))
                                                  for v in raw.running[:, i])
                                            for i in columns))


def _overflowed(rec: Recurrence, step: int, culprit: Recurrence,
                edge: float) -> RecurrenceExponents:
    return RecurrenceExponents(recurrence=rec.identity(), state=rec.spec.state,
                               state_size=rec.state_size, verdict=LyapunovVerdict.UNBOUNDED,
                               reason=overflow_reason(step, culprit.label), edge=edge,
                               overflow_step=step)
