"""Gradient health while training: two lines in a training loop.

    monitor = GradientMonitor(model, every=100, log="runs/exp1")     # TensorBoard folder
    for x, y in batches:
        loss = criterion(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        monitor.step()                 # ‖∇θ‖ now; the per-lag profile every 100 steps
        optimizer.step()
    print(monitor.summary().to_dict())

Every step, after ``backward()`` and before the optimiser (and before any clipping), the
monitor records the real parameter-gradient norm ‖∇θ‖ of the whole model. Every ``every``
steps it measures the current weights of every ``nn.RNN``/``nn.LSTM``/``nn.GRU`` in the model
(any nesting): the per-lag profile ‖∂s_T/∂s_(T−ℓ)‖ on a seeded probe (``rnngrad bptt``'s
profile alone, :class:`~rnngrad.bptt.options.BpttOptions` ``profile_only``), ρ and γσ_max
(``rnngrad spectrum``), and every ``lyapunov_every`` steps the largest Lyapunov exponent λ_1
(k = 1 on a long probe of 4 × 1300 steps, ``LYAPUNOV_PROBE``; it costs about three profiles,
so by default it is measured at every tenth profile and at the first; 0 turns it off). The
measurement reads a detached float64 copy of the weights under ``torch.no_grad()`` and keeps
nothing of it afterwards; it uses its own seeded random numbers, never torch's global
generator, so training runs bit for bit as without the monitor.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import torch

from rnngrad.bptt.options import BpttOptions
from rnngrad.errors import OptionError
from rnngrad.probes.spec import ProbeSpec
from rnngrad.report import ModelInfo
from rnngrad.train.report import MonitorSummary, NormStats, ProfilePoint, RecurrencePoint
from rnngrad.train.sinks import make_sink

DEFAULT_LAGS = "log:1..50:12"
# λ_1's probe in the monitor: 4 sequences, 300 steps of burn-in, 1000 averaged (a third of
# `rnngrad lyapunov`'s cost: a trend over training; standard errors 0.0006-0.0023 on the
# training benchmark's network, 2-3 times those of the default probe).
LYAPUNOV_PROBE = ProbeSpec(batch=4, burn_in=300, steps=1000)


class GradientMonitor:
    """Watches a live ``torch.nn.Module`` holding recurrent modules (see the module doc).

    ``every``: measure the profile every that many steps (and at the first); ``lyapunov_every``:
    λ_1 every that many steps (default 10 × ``every``; 0: never); ``lags`` and
    ``probe``: the profile's lags and probe (default: 12 log-spaced lags up to 50 on 4 seeded
    Gaussian sequences, small enough to cost little next to training); ``options``: any other
    :class:`BpttOptions`; ``log``: where the records go (:mod:`rnngrad.train.sinks`).
    """

    def __init__(self, model: torch.nn.Module, *, every: int = 100, lags: str = DEFAULT_LAGS,
                 probe: ProbeSpec | None = None, log: Any = None,
                 lyapunov_every: int | None = None, options: BpttOptions | None = None) -> None:
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise OptionError(f"GradientMonitor every={every!r} must be a positive integer",
                              "e.g. every=100")
        lyapunov_every = 10 * every if lyapunov_every is None else lyapunov_every
        if (not isinstance(lyapunov_every, int) or isinstance(lyapunov_every, bool)
                or lyapunov_every < 0):
            raise OptionError(f"GradientMonitor lyapunov_every={lyapunov_every!r} must be an "
                              "integer ≥ 0", "e.g. lyapunov_every=1000; 0 turns λ_1 off")
        self.model = model
        self.every = every
        self.lyapunov_every = lyapunov_every
        self.options = BpttOptions(**{**_fields(options), "lags": lags,
                                      "probe": probe or ProbeSpec(batch=4),
                                      "profile_only": True})
        self.sink: Callable[[dict[str, Any]], None] | None = make_sink(log)
        self.steps = 0
        self.norms: list[float] = []
        self.points: list[ProfilePoint] = []
        self.model_info: ModelInfo | None = None

    def step(self) -> float:
        """Record ‖∇θ‖ of this step (call after ``backward()``, before the optimiser and
        before clipping); measure the profile when it is due. Returns the norm."""
        self.steps += 1
        norm = gradient_norm(self.model)
        self.norms.append(norm)
        self._emit({"step": self.steps, "grad_norm": norm})
        if self.steps == 1 or self.steps % self.every == 0:
            self.measure()
        return norm

    def measure(self) -> ProfilePoint:
        """The profile, ρ, γσ_max (and λ_1) of the current weights, recorded at this step."""
        from rnngrad.bptt.analysis import bptt
        from rnngrad.io import as_bundle
        from rnngrad.spectrum.analysis import spectrum
        from rnngrad.spectrum.options import SpectrumOptions

        with torch.no_grad():
            bundle = as_bundle(self.model)  # a detached float64 copy, dropped on return
            profile = bptt(bundle, self.options)
            spectra = spectrum(bundle, SpectrumOptions(**_fields(self.options.read_options())))
            exponents = self._lyapunov(bundle)
        self.model_info = profile.model
        radius = {item.recurrence.weight_hh: item for item in spectra.recurrences}
        point = ProfilePoint(step=self.steps, recurrences=tuple(
            _point(item, radius[item.recurrence.weight_hh],
                   exponents.get(item.recurrence.weight_hh))
            for item in profile.recurrences))
        self.points.append(point)
        for item, figures in zip(profile.recurrences, point.recurrences):
            self._emit({"step": self.steps, "recurrence": figures.label,
                        "spectral_radius": figures.spectral_radius, "bound": figures.bound,
                        "log10_norm_last": figures.log10_norm_last,
                        "lyapunov": figures.lyapunov, "verdict": str(figures.verdict),
                        "profile": {str(row.lag): row.log10_norm for row in item.rows}})
        return point

    def _lyapunov(self, bundle: Any) -> dict[str, float | None]:
        """λ_1 per recurrence (weight_hh name) when it is due: at the first measurement and
        every ``lyapunov_every`` steps."""
        due = self.lyapunov_every and (self.steps <= 1 or self.steps % self.lyapunov_every == 0)
        if not due:
            return {}
        from rnngrad.lyapunov.analysis import largest_exponents

        measured = largest_exponents(bundle, self.options, length=LYAPUNOV_PROBE)
        return {name: item.exponents[0] if item.exponents else None
                for name, item in measured.items()}

    def summary(self) -> MonitorSummary:
        """What the monitor saw, as a typed report the renderers print."""
        return MonitorSummary(model=self.model_info or ModelInfo(
            path=f"<{type(self.model).__name__}>", format="memory", sha256=""),
            steps=self.steps, every=self.every, lags=self.options.lags,
            grad_norms=norm_stats(self.norms), points=tuple(self.points))

    def close(self) -> None:
        """Close the log (a TensorBoard writer or a file)."""
        close = getattr(self.sink, "close", None)
        if close is not None:
            close()

    def _emit(self, record: dict[str, Any]) -> None:
        if self.sink is not None:
            self.sink(record)


def gradient_norm(model: torch.nn.Module) -> float:
    """‖∇θ‖ over every parameter with a gradient (0 when none has one); reads, never writes.

    Each tensor's norm in its own dtype (as ``clip_grad_norm_`` takes them: inf where it
    overflows), joined by ``math.hypot`` in Python floats (no overflow of the squares): half
    the time of ``torch.nn.utils.get_total_norm``'s grouping on a small model (80 µs a step of
    a 50-unit RNN), which this pays on every training step.
    """
    with torch.no_grad():
        return math.hypot(*(float(torch.linalg.vector_norm(parameter.grad))
                            for parameter in model.parameters() if parameter.grad is not None))


def norm_stats(norms: list[float]) -> NormStats:
    """Statistics of the gradient norms: mean, median, 10th percentile and maximum of the
    finite ones (None when none is), counts, and the last norm (None when not finite)."""
    values = np.asarray(norms, dtype=np.float64)
    finite = values[np.isfinite(values)]
    last = float(values[-1]) if values.size and math.isfinite(values[-1]) else None
    if finite.size == 0:
        return NormStats(count=int(values.size), nonfinite=int(values.size), mean=None,
                         median=None, p10=None, maximum=None, last=last)
    return NormStats(count=int(values.size), nonfinite=int(values.size - finite.size),
                     mean=float(finite.mean()), median=float(np.median(finite)),
                     p10=float(np.percentile(finite, 10)), maximum=float(finite.max()),
                     last=last)


def _point(profile: Any, spectrum: Any, lyapunov: float | None) -> RecurrencePoint:
    rec = spectrum.recurrence
    radius = (spectrum.block("hh").spectral_radius if rec.cell == "rnn"
              else spectrum.rest_jacobian.spectral_radius)
    rows = profile.rows
    return RecurrencePoint(
        label=rec.label, spectral_radius=radius, bound=spectrum.bound,
        log10_norm_first=rows[0].log10_norm if rows else None,
        log10_norm_last=rows[-1].log10_norm if rows else None,
        lag_last=rows[-1].lag if rows else 0, verdict=profile.verdict, lyapunov=lyapunov)


def _fields(options: Any) -> dict[str, Any]:
    """An options dataclass's fields as a dict (an empty dict for None)."""
    if options is None:
        return {}
    from dataclasses import fields

    return {spec.name: getattr(options, spec.name) for spec in fields(options)}
