"""``rnngrad spectrum``: source -> recurrences -> the spectrum of every recurrent block.

A *source* is a path, a :class:`~rnngrad.io.WeightBundle`, a state dict or a
``torch.nn.Module``. ``on_progress(done, total, label)`` is called between recurrences so a
front end can show progress; the analysis itself never prints.

A leaky recurrence reports two blocks: ``hh`` (W itself) and ``eff``, the step Jacobian at
rest (1 − α)I + α φ'(0) W (:func:`rnngrad.cells.rest.effective_matrix`); a low-rank
W = m nᵀ/N is analysed through its r × r problem (:mod:`rnngrad.spectrum.lowrank`).

Torch is imported only where it is needed: to read a ``.pt`` file, and for the rest-state
Jacobian of a gated cell or an Elman cell with a nonlinearity the closed form does not know
(:func:`rnngrad.cells.rest.has_closed_form`). Other Elman, leaky and low-rank recurrences of
a safetensors or npz file are analysed with NumPy alone, which saves the 1.5–2 s of importing
torch in a process that does nothing else.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

import numpy as np

from rnngrad.cells import Recurrence, gate_blocks
from rnngrad.cells.rest import has_closed_form, rest_jacobian_of
from rnngrad.conventions.understand import understand
from rnngrad.conventions.options import with_settings
from rnngrad.errors import ResourceError
from rnngrad.io import WeightBundle
from rnngrad.limits import gib
from rnngrad.report import ModelInfo
from rnngrad.spectrum.lowrank import low_rank_spectrum
from rnngrad.spectrum.matrix import analyze_matrix, spectral_norm, spectral_radius
from rnngrad.spectrum.options import SpectrumOptions
from rnngrad.spectrum.report import (Block, MatrixSpectrum, RecurrenceSpectrum, RestJacobian,
                                     SpectrumReport)
from rnngrad.spectrum.verdict import (EDGE, EXPLOSION_POSSIBLE, REST_UNSTABLE, VANISHING,
                                      SpectrumVerdict, spectrum_verdict)

Progress = Callable[[int, int, str], None]

# The block whose σ_max enters the bound γ·σ_max: W_hh for Elman, the candidate for gated cells.
BOUND_BLOCK = {"rnn": "hh", "lstm": "g", "gru": "n", "gru_reset_before": "n", "leaky": "hh"}


def spectrum(source: Any, options: SpectrumOptions | None = None, *,
             on_progress: Progress | None = None, **settings: Any) -> SpectrumReport:
    """Eigen- and singular values of every recurrent block, the bound and a verdict.

    ``settings`` are :class:`~rnngrad.spectrum.options.SpectrumOptions` fields
    (``rnngrad.spectrum(path, top=3, activation="relu")``).
    """
    options = with_settings(SpectrumOptions, options, settings)
    understood = understand(source, options)
    for rec in understood.recurrences:
        check_spectrum_memory(rec, options.max_memory)
    results = []
    for index, rec in enumerate(understood.recurrences):
        if on_progress:
            on_progress(index, len(understood.recurrences), rec.label)
        results.append(recurrence_spectrum(understood.bundle, rec, options))
    if on_progress:
        on_progress(len(understood.recurrences), len(understood.recurrences), "done")
    return SpectrumReport(model=ModelInfo.of(understood.bundle), recurrences=tuple(results),
                          top=options.top, notes=understood.notes)


# Bytes of the process itself: Python and NumPy (55 MiB measured), or with torch loaded (220-290
# MiB) for a .pt file or a gated cell's rest Jacobian (benchmarks/bench_memory.py).
NUMPY_PROCESS_BYTES = 100 * 2**20
TORCH_PROCESS_BYTES = 400 * 2**20


def memory_needed(rec: Recurrence, *, with_torch: bool) -> int:
    """Bytes the spectrum of ``rec`` holds at its peak, the process itself included (with torch
    loaded or not): the gate blocks in float64 plus about ten state-sized squares (the
    rest-state Jacobian, LAPACK's copies and workspace, the inverse for σ_min, a complex LU for
    the leading eigenvector)."""
    size = rec.state_size
    process = TORCH_PROCESS_BYTES if with_torch else NUMPY_PROCESS_BYTES
    return process + 8 * (4 * rec.hidden_size * (rec.proj_size or rec.hidden_size)
                          + 10 * size * size)


def check_spectrum_memory(rec: Recurrence, max_memory_gib: float) -> None:
    """Refuse before allocating when :func:`memory_needed` passes ``--max-memory``."""
    size = rec.state_size
    with_torch = "torch" in sys.modules or not has_closed_form(rec)
    needed = memory_needed(rec, with_torch=with_torch)
    if needed > max_memory_gib * 1024**3:
        raise ResourceError(f"{rec.weight_hh}: the spectrum of this {size}-state recurrence "
                            f"needs about {gib(needed)}, over the {max_memory_gib:g} GiB limit",
                            "raise --max-memory if the machine has the memory")


def recurrence_spectrum(bundle: WeightBundle, rec: Recurrence,
                        options: SpectrumOptions = SpectrumOptions()) -> RecurrenceSpectrum:
    """The spectrum of one recurrence: every block, the rest-state Jacobian, a verdict."""
    gamma = rec.gamma
    analyse = dict(gamma=gamma, top=options.top, values=options.values)
    weight_hh = bundle.array(rec.weight_hh)
    if rec.low_rank is not None:
        left, right = rec.low_rank.factors(bundle)
        blocks = {"hh": low_rank_spectrum(left, right, **analyse)}
    else:
        weight_hr = bundle.array(rec.weight_hr) if rec.weight_hr else None
        blocks = {name: analyze_matrix(block, **analyse)
                  for name, block in gate_blocks(rec.spec, weight_hh, weight_hr).items()}
    if rec.cell == "leaky":
        return _leaky_spectrum(rec, bundle, blocks, options)
    bound_block = BOUND_BLOCK[rec.cell]
    rest = _rest(rec, bundle, weight_hh, reuse=blocks.get("hh"))
    verdict, reason = spectrum_verdict(cell=rec.cell, gamma=gamma,
                                       sigma_max=blocks[bound_block].sigma_max,
                                       rest_radius=rest.spectral_radius, rest_norm=rest.norm)
    return RecurrenceSpectrum(recurrence=rec.identity(), blocks=_blocks(blocks), gamma=gamma,
                              bound=gamma * blocks[bound_block].sigma_max,
                              bound_block=bound_block, rest_jacobian=rest, verdict=verdict,
                              reason=reason)


def _blocks(blocks: dict[str, MatrixSpectrum]) -> tuple[Block, ...]:
    return tuple(Block(name=name, spectrum=spec) for name, spec in blocks.items())


def _leaky_spectrum(rec: Recurrence, bundle: WeightBundle, blocks: dict[str, MatrixSpectrum],
                    options: SpectrumOptions) -> RecurrenceSpectrum:
    """Blocks ``hh`` (W) and ``eff`` ((1 − α)I + α φ'(0) W, the step Jacobian at rest).

    ‖J_t‖ = ‖(1 − α)I + α W diag(φ'(x))‖ ≤ (1 − α) + α γ σ_max(W): the bound reported.
    """
    alpha = 1.0 if rec.leak is None else rec.leak
    effective = analyze_matrix(rest_jacobian_of(rec, bundle), gamma=1.0, top=options.top,
                               values=options.values)
    blocks = {**blocks, "eff": effective}
    bound = (1 - alpha) + alpha * rec.gamma * blocks["hh"].sigma_max
    rest = RestJacobian(size=effective.size, spectral_radius=effective.spectral_radius,
                        norm=effective.sigma_max)
    verdict, reason = _leaky_verdict(alpha, bound, rest)
    return RecurrenceSpectrum(recurrence=rec.identity(), blocks=_blocks(blocks),
                              gamma=rec.gamma, bound=bound, bound_block="hh",
                              rest_jacobian=rest, verdict=verdict, reason=reason)


def _leaky_verdict(alpha: float, bound: float, rest: RestJacobian) -> tuple[SpectrumVerdict, str]:
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


def _rest(rec: Recurrence, bundle: WeightBundle, weight_hh: np.ndarray, *,
          reuse: MatrixSpectrum | None) -> RestJacobian:
    """ρ and ‖·‖₂ of the rest-state Jacobian (:mod:`rnngrad.cells.rest`).

    For an Elman cell whose slopes at rest are all 1 (tanh with zero pre-activation), the
    Jacobian is W_hh itself and the block's numbers are reused instead of recomputed.
    """
    jac = rest_jacobian_of(rec, bundle)
    if reuse is not None and np.array_equal(jac, weight_hh):
        return RestJacobian(size=jac.shape[0], spectral_radius=reuse.spectral_radius,
                            norm=reuse.sigma_max)
    return RestJacobian(size=jac.shape[0], spectral_radius=spectral_radius(jac),
                        norm=spectral_norm(jac))
