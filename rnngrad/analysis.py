"""The library's entry points for ``inspect`` and ``spectrum``: source -> typed report.

A *source* is a path, a :class:`~rnngrad.loading.WeightBundle`, a state dict or a
``torch.nn.Module``. ``on_progress(done, total, label)`` is called between units of work so a
front end can show progress; the analysis itself never prints.

``mapping`` (``--map FILE.toml``) describes a research checkpoint's recurrences
(:mod:`rnngrad.formats.mapping`); ``leak`` (``--leak α``) runs Elman layers as leaky rate cells.
A leaky recurrence reports two blocks: ``hh`` (W itself) and ``eff``, the step Jacobian at rest
(1 − α)I + α φ'(0) W (:mod:`rnngrad.cells.leaky`); a low-rank W = m nᵀ/N is analysed through
its r × r problem (:mod:`rnngrad.lowrank`).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .cells import Recurrence, cell_weights, leaky
from .cells.detection import find_recurrences
from .loading import WeightBundle, as_bundle
from .lowrank import low_rank_spectrum
from .report import (InspectReport, ModelInfo, RecurrenceSpectrum, RestJacobian,
                     SpectrumReport, TensorRow)
from .spectral import analyze_matrix, spectral_norm, spectral_radius
from .verdict import EDGE, EXPLOSION_POSSIBLE, REST_UNSTABLE, VANISHING, spectrum_verdict

Progress = Callable[[int, int, str], None]

# The block whose σ_max enters the bound γ·σ_max: W_hh for Elman, the candidate for gated cells.
BOUND_BLOCK = {"rnn": "hh", "lstm": "g", "gru": "n", "gru_reset_before": "n", "leaky": "hh"}


def model_info(bundle: WeightBundle) -> ModelInfo:
    return ModelInfo(path=bundle.path, format=bundle.format, sha256=bundle.sha256)


def understood_bundle(source: Any, mapping: str | None = None) -> WeightBundle:
    """The bundle of ``source``, with its recurrences described by the map file if given."""
    bundle = as_bundle(source)
    if mapping is None:
        return bundle
    from .formats.mapping import apply_map_file

    return apply_map_file(bundle, mapping)


def understanding_notes(bundle: WeightBundle, recurrences: tuple[Recurrence, ...]) -> tuple[str, ...]:
    """The loader's notes, then one line per recurrence on how the file was understood."""
    lines = tuple(line for line in (rec.understanding() for rec in recurrences) if line)
    derived = tuple(f"{name} = {origin}" for name, origin in bundle.derived.items())
    return bundle.notes + lines + derived


def inspect(source: Any, *, keys: tuple[str, ...] = (), activation: str | None = None,
            leak: float | None = None, mapping: str | None = None) -> InspectReport:
    """The tensors of a file and the recurrences rnngrad finds in it."""
    bundle = understood_bundle(source, mapping)
    recurrences = find_recurrences(bundle, keys=keys, activation=activation, leak=leak)
    for rec in recurrences:  # refuse NaN/Inf or non-float recurrent weights here too
        for name in rec.tensor_names:
            if name in bundle.tensors:
                bundle.array(name)
    owner = {name: rec.label for rec in recurrences
             for name in rec.tensor_names + rec.sources}
    rows = tuple(TensorRow(name=info.name, shape=info.shape, dtype=info.dtype,
                           used_by=owner.get(info.name)) for info in bundle.tensors.values())
    return InspectReport(model=model_info(bundle), tensors=rows, recurrences=recurrences,
                         notes=understanding_notes(bundle, recurrences),
                         metadata=tuple(sorted(bundle.metadata.items())))


def spectrum(source: Any, *, keys: tuple[str, ...] = (), activation: str | None = None,
             top: int = 5, on_progress: Progress | None = None, leak: float | None = None,
             mapping: str | None = None, max_memory_gib: float = 8.0) -> SpectrumReport:
    """Eigen- and singular values of every recurrent block, the bound and a verdict."""
    if top < 1:
        from .errors import OptionError

        raise OptionError(f"--top {top} must be at least 1", "ask for e.g. --top 5")
    bundle = understood_bundle(source, mapping)
    recurrences = find_recurrences(bundle, keys=keys, activation=activation, leak=leak)
    for rec in recurrences:
        check_spectrum_memory(rec, max_memory_gib)
    results = []
    for index, rec in enumerate(recurrences):
        if on_progress:
            on_progress(index, len(recurrences), rec.label)
        results.append(recurrence_spectrum(bundle, rec, top=top))
    if on_progress:
        on_progress(len(recurrences), len(recurrences), "done")
    return SpectrumReport(model=model_info(bundle), recurrences=tuple(results), top=top,
                          notes=understanding_notes(bundle, recurrences))


def check_spectrum_memory(rec: Recurrence, max_memory_gib: float) -> None:
    """Refuse before allocating: the gate blocks in float64 plus about six state-sized squares
    (the rest-state Jacobian, LAPACK's copies and workspace)."""
    from .errors import ResourceError

    size = rec.state_size
    needed = 8 * (4 * rec.hidden_size * (rec.proj_size or rec.hidden_size) + 6 * size * size)
    if needed > max_memory_gib * 1024**3:
        raise ResourceError(f"{rec.weight_hh}: the spectrum of this {size}-state recurrence "
                            f"needs about {needed / 1024**3:.1f} GiB, over the "
                            f"{max_memory_gib:g} GiB limit",
                            "raise --max-memory if the machine has the memory")


def recurrence_spectrum(bundle: WeightBundle, rec: Recurrence, *, top: int = 5) -> RecurrenceSpectrum:
    weights = cell_weights(bundle, rec)
    gamma = rec.kind.gamma(rec.nonlinearity)
    if rec.low_rank is not None:
        left, right = rec.low_rank.factors(bundle)
        blocks = {"hh": low_rank_spectrum(left, right, gamma=gamma, top=top)}
    else:
        blocks = {name: analyze_matrix(block.numpy(), gamma=gamma, top=top)
                  for name, block in rec.kind.recurrent_blocks(weights).items()}
    if rec.cell == leaky.NAME:
        return _leaky_spectrum(rec, weights.weight_hh.numpy(), blocks, gamma, top)
    bound_block = BOUND_BLOCK[rec.cell]
    rest = rest_jacobian(rec, weights, reuse=blocks.get("hh"))
    verdict, reason = spectrum_verdict(cell=rec.cell, gamma=gamma,
                                       sigma_max=blocks[bound_block].sigma_max,
                                       rest_radius=rest.spectral_radius, rest_norm=rest.norm)
    return RecurrenceSpectrum(recurrence=rec, blocks=tuple(blocks.items()), gamma=gamma,
                              bound=gamma * blocks[bound_block].sigma_max,
                              bound_block=bound_block, rest=rest, verdict=verdict,
                              reason=reason)


def _leaky_spectrum(rec: Recurrence, weight_hh: np.ndarray, blocks: dict, gamma: float,
                    top: int) -> RecurrenceSpectrum:
    """Blocks ``hh`` (W) and ``eff`` ((1 − α)I + α φ'(0) W, the step Jacobian at rest).

    ‖J_t‖ = ‖(1 − α)I + α W diag(φ'(x))‖ ≤ (1 − α) + α γ σ_max(W): the bound reported.
    """
    alpha = rec.leak
    effective = analyze_matrix(leaky.effective_matrix(weight_hh, alpha, rec.nonlinearity),
                               gamma=1.0, top=top)
    blocks = {**blocks, "eff": effective}
    bound = (1 - alpha) + alpha * gamma * blocks["hh"].sigma_max
    rest = RestJacobian(size=effective.size, spectral_radius=effective.spectral_radius,
                        norm=effective.sigma_max)
    verdict, reason = _leaky_verdict(alpha, bound, rest)
    return RecurrenceSpectrum(recurrence=rec, blocks=tuple(blocks.items()), gamma=gamma,
                              bound=bound, bound_block="hh", rest=rest, verdict=verdict,
                              reason=reason)


def _leaky_verdict(alpha: float, bound: float, rest: RestJacobian) -> tuple[str, str]:
    head = f"leaky rate cell (α = {alpha:g}): ‖J_t‖ ≤ (1−α) + αγσ_max(W) = {bound:.4g}"
    at_rest = (f"at rest the effective matrix (1−α)I + αφ'(0)W has ρ = "
               f"{rest.spectral_radius:.4g} and ‖·‖ = {rest.norm:.4g}")
    if bound < 1 - EDGE:
        return VANISHING, (f"{head} < 1: every step shrinks the backpropagated signal, "
                           f"‖∂x_T/∂x_(T−ℓ)‖ ≤ {bound:.4g}^ℓ (sufficient for vanishing)")
    if rest.spectral_radius > 1 + EDGE:
        return REST_UNSTABLE, (f"{head} ≥ 1 allows explosion, and {at_rest} > 1: the rest "
                               "state is unstable, small states grow along the effective "
                               "matrix's leading eigenvector (that of the eigenvalue λ of W "
                               "maximising |1 − α + αφ'(0)λ|)")
    return EXPLOSION_POSSIBLE, (f"{head} ≥ 1: explosion is possible, not certain; {at_rest}; "
                                "measure with `rnngrad bptt`")


def rest_jacobian(rec: Recurrence, weights, *, reuse=None) -> RestJacobian:
    """Spectral radius and norm of ∂s_t/∂s_(t−1) at s = 0, x = 0 (biases included).

    For an Elman cell whose slopes at rest are all 1 (tanh with zero pre-activation), the
    Jacobian is W_hh itself and the block's numbers are reused instead of recomputed.
    """
    state = weights.weight_hh.new_zeros(1, rec.state_size)
    _, cache = rec.kind.step(weights, weights.rest_drive(), state, rec.nonlinearity)
    jac = rec.kind.jacobian(weights, cache, rec.nonlinearity)[0].numpy()
    if reuse is not None and np.array_equal(jac, weights.weight_hh.numpy()):
        return RestJacobian(size=jac.shape[0], spectral_radius=reuse.spectral_radius,
                            norm=reuse.sigma_max)
    return RestJacobian(size=jac.shape[0], spectral_radius=spectral_radius(jac),
                        norm=spectral_norm(jac))
