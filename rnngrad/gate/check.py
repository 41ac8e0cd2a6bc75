"""``rnngrad check``: spectrum + bptt per model, measured against thresholds and a baseline.

Per model and recurrence the key figures are measured once (:class:`Figures`); each switched-on
threshold then gives one :class:`CheckResult` with the value, the limit and a sentence on what
it means. Thresholds (all off unless configured; see :mod:`rnngrad.gate.config`):

- ``explode-above``: fail if the per-lag norm (geometric mean over probes) exceeds it at any
  checked lag;
- ``vanish-below``: fail if the norm at the largest checked lag is below it;
- ``max-spectral-radius``: fail if ρ exceeds it — ρ(W_hh) for Elman cells, ρ of the step
  Jacobian at rest for gated and rate cells (their W_hh blocks say little);
- ``max-bound``: fail if γ·σ_max exceeds it;
- ``max-lyapunov`` / ``min-lyapunov``: fail if the largest Lyapunov exponent λ_1 (nats per step)
  is above / below it. Only then is the lyapunov analysis run, with its own long default probe
  (the seed, input scale and input file of the check's probe), for λ_1 alone (k = 1).

Baseline regressions (``--baseline FILE``, tolerances configurable): the spectral radius up by
more than ``radius-tolerance`` (relative, default 5 %), the norm at the largest lag down by more
than ``norm-drop``× (default 10), or the largest per-lag norm up by more than ``norm-rise``×
(default 10).
"""

from __future__ import annotations

import contextlib
import functools
import math
from pathlib import Path
from typing import Any, Callable

from rnngrad.errors import RnngradError
from rnngrad.gate.baseline import compare
from rnngrad.gate.config import LYAPUNOV_THRESHOLDS, CheckConfig, config_from_values
from rnngrad.gate.parallel import available_cores, measured
from rnngrad.gate.results import (CheckReport, CheckResult, Figures, ModelError, ModelFigures,
                                  Threshold, ThresholdLimit)
from rnngrad.lyapunov.verdict import LyapunovVerdict
from rnngrad.report import finite_or_none, log10_value, power10

Progress = Callable[[int, int, str], None]


# --- measuring ------------------------------------------------------------------------------


def measure(source: Any, config: CheckConfig,
            on_progress: Progress | None = None) -> ModelFigures:
    """Run spectrum and bptt on one model with the config's probe settings."""
    from rnngrad.bptt.analysis import bptt
    from rnngrad.conventions.understand import understand
    from rnngrad.lyapunov.analysis import largest_exponents
    from rnngrad.spectrum.analysis import spectrum
    from rnngrad.spectrum.options import SpectrumOptions

    options = config.bptt
    bundle = understand(source, options.read_options()).bundle
    spec_report = spectrum(bundle, SpectrumOptions(**vars(options.read_options())))
    profile = bptt(bundle, options, on_progress=on_progress)
    measured = {item.recurrence.weight_hh: item for item in profile.recurrences}
    exponents = (largest_exponents(bundle, options, on_progress)
                 if any(getattr(config, name) is not None for name in LYAPUNOV_THRESHOLDS)
                 else {})
    figures = []
    for item in spec_report.recurrences:
        rec = item.recurrence
        radius = (item.block("hh").spectral_radius if rec.cell == "rnn"
                  else item.rest_jacobian.spectral_radius)
        prof = measured.get(rec.weight_hh)
        rows = prof.rows if prof is not None else ()
        top = max(rows, key=lambda row: log10_value(row.log10_norm)) if rows else None
        lyap = exponents.get(rec.weight_hh)
        figures.append(Figures(
            recurrence=rec, spectral_radius=radius, bound=item.bound,
            spectrum_verdict=item.verdict,
            log10_norm_last=rows[-1].log10_norm if rows else None,
            log10_norm_max=top.log10_norm if top else None,
            lag_last=rows[-1].lag if rows else None, lag_max=top.lag if top else None,
            verdict=prof.verdict if prof is not None else None,
            overflowed=prof is not None and prof.overflow_step is not None,
            lyapunov=lyap.exponents[0] if lyap is not None and lyap.exponents else None,
            lyapunov_verdict=lyap.verdict if lyap is not None else None))
    return ModelFigures(model=spec_report.model, recurrences=tuple(figures))


# --- evaluating -----------------------------------------------------------------------------


def evaluate(figures: ModelFigures, config: CheckConfig) -> list[CheckResult]:
    """One result per recurrence and switched-on threshold."""
    results = []
    for rec in figures.recurrences:
        for threshold, limit in config.thresholds().items():
            results.append(_EVALUATORS[Threshold(threshold)](figures.model.path, rec, limit))
    return results


def _explode(model: str, rec: Figures, limit: float) -> CheckResult:
    value = math.inf if rec.overflowed else rec.log10_norm_max
    passed = value is not None and value <= math.log10(limit)
    where = f" at lag {rec.lag_max}" if rec.lag_max else ""
    message = (f"largest per-lag norm {_fmt(value)}{where} "
               + (f"stays within {limit:g}: no gradient explosion over the checked lags" if passed
                  else f"exceeds {limit:g}: gradients explode; clip them (see `rnngrad bptt`)"))
    return CheckResult(model=model, recurrence=rec.label, threshold=Threshold.EXPLODE_ABOVE,
                       value=_shown(value), limit=limit, passed=passed, message=message,
                       lag=rec.lag_max)


def _vanish(model: str, rec: Figures, limit: float) -> CheckResult:
    value = math.inf if rec.overflowed else rec.log10_norm_last
    measured = value is not None or rec.lag_last is not None
    log_value = log10_value(value) if measured else None
    passed = log_value is not None and log_value >= math.log10(limit)
    message = (f"norm at lag {rec.lag_last} is {_fmt(log_value)}, "
               + (f"at least {limit:g}: the long-range gradient survives" if passed else
                  f"below {limit:g}: gradients from that far back vanish and long-range "
                  "dependencies cannot be learned"))
    return CheckResult(model=model, recurrence=rec.label, threshold=Threshold.VANISH_BELOW,
                       value=_shown(log_value), limit=limit, passed=passed, message=message,
                       lag=rec.lag_last)


def _radius(model: str, rec: Figures, limit: float) -> CheckResult:
    passed = rec.spectral_radius <= limit
    what = "ρ(W_hh)" if rec.recurrence.cell == "rnn" else "ρ of the step Jacobian at rest"
    message = (f"{what} = {rec.spectral_radius:.4g} "
               + (f"≤ {limit:g}" if passed else f"> {limit:g}: the recurrent matrix is past "
                  "the allowed regime; states and gradients grow along its leading "
                  "eigenvector"))
    return CheckResult(model=model, recurrence=rec.label, threshold=Threshold.MAX_SPECTRAL_RADIUS,
                       value=rec.spectral_radius, limit=limit, passed=passed, message=message)


def _bound(model: str, rec: Figures, limit: float) -> CheckResult:
    passed = rec.bound <= limit
    message = (f"γ·σ_max = {rec.bound:.4g} "
               + (f"≤ {limit:g}" if passed else f"> {limit:g}: the per-step gain bound allows "
                  "the backpropagated signal to grow (Pascanu et al. 2013)"))
    return CheckResult(model=model, recurrence=rec.label, threshold=Threshold.MAX_BOUND,
                       value=rec.bound, limit=limit, passed=passed, message=message)


def _lyapunov_value(rec: Figures) -> float | None:
    """λ_1, with +∞ for states that overflowed and −∞ for annihilated directions (None: not
    measured)."""
    if rec.lyapunov is not None:
        return rec.lyapunov
    return {LyapunovVerdict.UNBOUNDED: math.inf,
            LyapunovVerdict.STABLE: -math.inf}.get(rec.lyapunov_verdict)  # type: ignore[arg-type]


def _lyapunov_text(value: float | None) -> str:
    if value is None:
        return "λ_1 was not measured"
    if math.isinf(value):
        return ("λ_1 is +∞ (the forward pass overflowed)" if value > 0
                else "λ_1 is −∞ (every direction annihilated)")
    return f"λ_1 = {value:+.4g} per step (×{math.exp(value):.4g})"


# threshold -> (is λ_1 an upper limit, what failing means)
_LYAPUNOV_LIMITS = {
    Threshold.MAX_LYAPUNOV: (True, "perturbations and the gradients of long sequences grow "
                                   "faster than allowed, whatever the clipping"),
    Threshold.MIN_LYAPUNOV: (False, "gradients from far back vanish faster than allowed; the "
                                    "memory is too short"),
}


def _lyapunov_limit(threshold: Threshold, model: str, rec: Figures, limit: float) -> CheckResult:
    upper, meaning = _LYAPUNOV_LIMITS[threshold]
    value = _lyapunov_value(rec)
    passed = value is not None and (value <= limit if upper else value >= limit)
    verb = "is above" if upper else "is below"
    message = (f"{_lyapunov_text(value)} "
               + (f"{'≤' if upper else '≥'} {limit:g}" if passed else
                  f"{verb} {limit:g}: {meaning} (see `rnngrad lyapunov`)"))
    return CheckResult(model=model, recurrence=rec.label, threshold=threshold,
                       value=None if value is None else finite_or_none(value), limit=limit,
                       passed=passed, message=message)


_EVALUATORS = {Threshold.EXPLODE_ABOVE: _explode, Threshold.VANISH_BELOW: _vanish,
               Threshold.MAX_SPECTRAL_RADIUS: _radius, Threshold.MAX_BOUND: _bound,
               **{threshold: functools.partial(_lyapunov_limit, threshold)
                  for threshold in _LYAPUNOV_LIMITS}}


def _shown(log_value: float | None) -> float | None:
    """The value a result reports: 10^log, or None past float64 (the message says which)."""
    return power10(log_value)


def _fmt(log_value: float | None) -> str:
    if log_value is None:
        return "not measured"
    if math.isinf(log_value):
        return "overflowing (the forward pass exploded)" if log_value > 0 else "exactly 0"
    shown = power10(log_value)
    return f"{shown:.4g}" if shown is not None else f"10^{log_value:.1f}"


# --- running many models --------------------------------------------------------------------


def run_check(sources: list[Any], configs: list[CheckConfig], *,
              baseline: dict[str, Any] | None = None, baseline_name: str | None = None,
              config_source: str | None = None, on_progress: Progress | None = None,
              keep_going: bool = False, jobs: int | None = 1,
              shared: CheckConfig | None = None) -> CheckReport:
    """Measure and evaluate each source with its own config, in order; ``jobs`` worker
    processes measure models in parallel (None: one per core; :mod:`rnngrad.gate.parallel`),
    with results, errors and order as with one. The report's ``thresholds`` are those of
    ``shared``, the configuration before per-model overrides (default: the first model's), so
    shards of one run name the same thresholds whichever models they hold.

    With ``keep_going`` a model that cannot be checked (unreadable, unsafe, no recurrence,
    bad probe, too large) becomes a :class:`ModelError` in ``errors`` and the others are
    still measured; without it, its :class:`~rnngrad.errors.RnngradError` propagates (models
    not yet started are not measured).
    """
    all_figures, results, errors = [], [], []
    outcomes = measured(sources, configs, jobs=jobs or available_cores(), measure=measure,
                        on_progress=on_progress)
    with contextlib.closing(outcomes):
        for outcome, source, config in zip(outcomes, sources, configs):  # outcomes first: it ends
            try:
                figures = outcome.result()
            except (RnngradError, MemoryError) as exc:
                if not keep_going:
                    raise
                errors.append(model_error(source, exc))
                continue
            all_figures.append(figures)
            results += evaluate(figures, config)
            if baseline is not None:
                results += compare(figures, baseline, config)
    shared = shared or (configs[0] if configs else None)
    thresholds = shared.thresholds() if shared else {}
    return CheckReport(models=tuple(all_figures), results=tuple(results),
                       thresholds=tuple(ThresholdLimit(name=name, limit=limit)
                                        for name, limit in thresholds.items()),
                       config_source=config_source, baseline=baseline_name,
                       errors=tuple(errors))


def model_error(source: Any, exc: BaseException) -> ModelError:
    """What went wrong with one model, for the report."""
    if isinstance(exc, RnngradError):
        return ModelError(model=source_name(source), message=exc.message, hint=exc.hint)
    return ModelError(model=source_name(source), message="out of memory",
                      hint="use a smaller --batch or --steps, or fewer --lags")


def source_name(source: Any) -> str:
    """A model as reports name it: its path, or the kind of in-memory object."""
    if isinstance(source, (str, Path)):
        return str(source)
    path = getattr(source, "path", None)
    return str(path) if isinstance(path, str) else f"<{type(source).__name__}>"


def check(source: Any, **settings: Any) -> CheckReport:
    """Check one model (path, state dict or ``torch.nn.Module``) against thresholds.

    ``settings`` are the ``[tool.rnngrad]`` keys with underscores
    (:mod:`rnngrad.gate.config`), e.g.
    ``check(model, explode_above=1e3, vanish_below=1e-6, lags="1..50", batch=4)``.
    """
    return run_check([source], [config_from_values(settings, "rnngrad.check()",
                                                   noun="check setting")])
