"""The library's entry points for ``inspect`` and ``spectrum``: source -> typed report.

A *source* is a path, a :class:`~rnngrad.loading.WeightBundle`, a state dict or a
``torch.nn.Module``. ``on_progress(done, total, label)`` is called between units of work so a
front end can show progress; the analysis itself never prints.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .cells import Recurrence, cell_weights
from .cells.detection import find_recurrences
from .loading import WeightBundle, as_bundle
from .report import (InspectReport, ModelInfo, RecurrenceSpectrum, RestJacobian,
                     SpectrumReport, TensorRow)
from .spectral import analyze_matrix, spectral_norm, spectral_radius
from .verdict import spectrum_verdict

Progress = Callable[[int, int, str], None]

# The block whose σ_max enters the bound γ·σ_max: W_hh for Elman, the candidate for gated cells.
BOUND_BLOCK = {"rnn": "hh", "lstm": "g", "gru": "n"}


def model_info(bundle: WeightBundle) -> ModelInfo:
    return ModelInfo(path=bundle.path, format=bundle.format, sha256=bundle.sha256)


def inspect(source: Any, *, keys: tuple[str, ...] = (),
            activation: str | None = None) -> InspectReport:
    """The tensors of a file and the recurrences rnngrad finds in it."""
    bundle = as_bundle(source)
    recurrences = find_recurrences(bundle, keys=keys, activation=activation)
    owner = {name: rec.label for rec in recurrences for name in rec.tensor_names}
    rows = tuple(TensorRow(name=info.name, shape=info.shape, dtype=info.dtype,
                           used_by=owner.get(info.name)) for info in bundle.tensors.values())
    return InspectReport(model=model_info(bundle), tensors=rows, recurrences=recurrences,
                         notes=bundle.notes, metadata=tuple(sorted(bundle.metadata.items())))


def spectrum(source: Any, *, keys: tuple[str, ...] = (), activation: str | None = None,
             top: int = 5, on_progress: Progress | None = None) -> SpectrumReport:
    """Eigen- and singular values of every recurrent block, the bound and a verdict."""
    if top < 1:
        from .errors import OptionError

        raise OptionError(f"--top {top} must be at least 1", "ask for e.g. --top 5")
    bundle = as_bundle(source)
    recurrences = find_recurrences(bundle, keys=keys, activation=activation)
    results = []
    for index, rec in enumerate(recurrences):
        if on_progress:
            on_progress(index, len(recurrences), rec.label)
        results.append(recurrence_spectrum(bundle, rec, top=top))
    if on_progress:
        on_progress(len(recurrences), len(recurrences), "done")
    return SpectrumReport(model=model_info(bundle), recurrences=tuple(results), top=top,
                          notes=bundle.notes)


def recurrence_spectrum(bundle: WeightBundle, rec: Recurrence, *, top: int = 5) -> RecurrenceSpectrum:
    weights = cell_weights(bundle, rec)
    gamma = rec.kind.gamma(rec.nonlinearity)
    blocks = {name: analyze_matrix(block.numpy(), gamma=gamma, top=top)
              for name, block in rec.kind.recurrent_blocks(weights).items()}
    bound_block = BOUND_BLOCK[rec.cell]
    rest = rest_jacobian(rec, weights, reuse=blocks.get("hh"))
    verdict, reason = spectrum_verdict(cell=rec.cell, gamma=gamma,
                                       sigma_max=blocks[bound_block].sigma_max,
                                       rest_radius=rest.spectral_radius, rest_norm=rest.norm)
    return RecurrenceSpectrum(recurrence=rec, blocks=tuple(blocks.items()), gamma=gamma,
                              bound=gamma * blocks[bound_block].sigma_max,
                              bound_block=bound_block, rest=rest, verdict=verdict,
                              reason=reason)


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
