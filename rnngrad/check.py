"""``rnngrad check``: spectrum + bptt per model, measured against thresholds and a baseline.

Per model and recurrence the key figures are measured once (:class:`Figures`); each switched-on
threshold then gives one :class:`CheckResult` with the value, the limit and a sentence on what
it means. Thresholds (all off unless configured; see :mod:`rnngrad.config`):

- ``explode-above``: fail if the per-lag norm (geometric mean over probes) exceeds it at any
  checked lag;
- ``vanish-below``: fail if the norm at the largest checked lag is below it;
- ``max-spectral-radius``: fail if ρ exceeds it — ρ(W_hh) for Elman cells, ρ of the step
  Jacobian at rest for gated cells (their W_hh blocks say little);
- ``max-bound``: fail if γ·σ_max exceeds it.

Baseline regressions (``--baseline FILE``, tolerances configurable): the spectral radius up by
more than ``radius-tolerance`` (relative, default 5 %), the norm at the largest lag down by more
than ``norm-drop``× (default 10), or the largest per-lag norm up by more than ``norm-rise``×
(default 10).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable

from .analysis import spectrum, understood_bundle
from .bptt import BpttOptions, bptt
from .config import CheckConfig
from .probes import ProbeSpec
from .report import ModelInfo, finite_json

CHECK_SCHEMA_VERSION = 1


@dataclass(frozen=True, kw_only=True)
class Figures:
    """The key figures of one recurrence that thresholds and baselines compare."""

    label: str
    weight_hh: str
    cell: str
    spectral_radius: float
    bound: float
    spectrum_verdict: str
    log10_norm_last: float | None
    log10_norm_max: float | None
    lag_last: int | None
    lag_max: int | None
    measured_verdict: str
    identity: tuple[tuple[str, Any], ...]


@dataclass(frozen=True, kw_only=True)
class ModelFigures:
    model: ModelInfo
    recurrences: tuple[Figures, ...]


@dataclass(frozen=True, kw_only=True)
class CheckResult:
    model: str
    recurrence: str
    threshold: str
    value: float | None
    limit: float
    passed: bool
    message: str
    lag: int | None = None


@dataclass(frozen=True, kw_only=True)
class CheckReport:
    models: tuple[ModelFigures, ...]
    results: tuple[CheckResult, ...]
    thresholds: tuple[tuple[str, float], ...]
    config_source: str | None = None
    baseline: str | None = None
    command: str = "check"
    plot_kind: str = "check"

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        return tuple(result for result in self.results if not result.passed)

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        from . import __version__

        first = self.models[0].model.to_dict() if self.models else None
        return finite_json({
            "schema_version": CHECK_SCHEMA_VERSION, "rnngrad_version": __version__,
            "command": self.command, "model": first,
            "models": [{**figures.model.to_dict(),
                        "recurrences": [_figures_dict(f) for f in figures.recurrences]}
                       for figures in self.models],
            "thresholds": dict(self.thresholds), "config": self.config_source,
            "baseline": self.baseline, "passed": self.ok,
            "results": [_result_dict(r) for r in self.results],
        })


def _figures_dict(figures: Figures) -> dict[str, Any]:
    return {**dict(figures.identity), "spectral_radius": figures.spectral_radius,
            "bound": figures.bound, "spectrum_verdict": figures.spectrum_verdict,
            "log10_norm_last": figures.log10_norm_last, "log10_norm_max": figures.log10_norm_max,
            "lag_last": figures.lag_last, "lag_max": figures.lag_max,
            "verdict": figures.measured_verdict}


def _result_dict(result: CheckResult) -> dict[str, Any]:
    return {"model": result.model, "recurrence": result.recurrence,
            "threshold": result.threshold, "value": result.value, "limit": result.limit,
            "passed": result.passed, "message": result.message, "lag": result.lag}


# --- measuring ------------------------------------------------------------------------------


def measure(source: Any, config: CheckConfig,
            on_progress: Callable[[int, int, str], None] | None = None) -> ModelFigures:
    """Run spectrum and bptt on one model with the config's probe settings."""
    bundle = understood_bundle(source, config.map)
    spec = (ProbeSpec(kind="file", path=config.inputs) if config.inputs else
            ProbeSpec(batch=config.batch, steps=config.steps, seed=config.seed,
                      input_scale=config.input_scale))
    explode = config.explode_above or max(1e4, (config.vanish_below or 0) * 10)
    vanish = config.vanish_below or min(1e-4, explode / 10)
    options = BpttOptions(lags=config.lags, probe=spec, activation=config.activation,
                          vanish_below=vanish, explode_above=explode, leak=config.leak)
    spec_report = spectrum(bundle, activation=config.activation, leak=config.leak)
    profile = bptt(bundle, options, on_progress=on_progress)
    measured = {item.recurrence.weight_hh: item for item in profile.recurrences}
    figures = []
    for item in spec_report.recurrences:
        rec = item.recurrence
        radius = (item.block("hh").spectral_radius if rec.cell == "rnn"
                  else item.rest.spectral_radius)
        prof = measured.get(rec.weight_hh)
        rows = prof.rows if prof is not None else ()
        top = max(rows, key=lambda row: row.log10_norm) if rows else None
        figures.append(Figures(
            label=rec.label, weight_hh=rec.weight_hh, cell=rec.cell, spectral_radius=radius,
            bound=item.bound, spectrum_verdict=item.verdict,
            log10_norm_last=rows[-1].log10_norm if rows else _overflow(prof),
            log10_norm_max=top.log10_norm if top else _overflow(prof),
            lag_last=rows[-1].lag if rows else None, lag_max=top.lag if top else None,
            measured_verdict=prof.verdict if prof is not None else "not measured",
            identity=tuple(rec.identity().items())))
    return ModelFigures(model=spec_report.model, recurrences=tuple(figures))


def _overflow(profile) -> float | None:
    """A forward pass that overflowed explodes beyond any threshold."""
    return math.inf if profile is not None and profile.overflow_step is not None else None


# --- evaluating -----------------------------------------------------------------------------


def evaluate(figures: ModelFigures, config: CheckConfig) -> list[CheckResult]:
    """One result per recurrence and switched-on threshold."""
    results = []
    for rec in figures.recurrences:
        for threshold, limit in config.thresholds().items():
            results.append(_EVALUATORS[threshold](figures.model.path, rec, limit))
    return results


def _explode(model: str, rec: Figures, limit: float) -> CheckResult:
    value = rec.log10_norm_max
    log_limit = math.log10(limit) if limit > 0 else -math.inf
    passed = value is not None and value <= log_limit
    shown = _pow10(value)
    where = f" at lag {rec.lag_max}" if rec.lag_max else ""
    message = (f"largest per-lag norm {_fmt(shown, value)}{where} "
               + (f"stays within {limit:g}: no gradient explosion over the checked lags" if passed
                  else f"exceeds {limit:g}: gradients explode; clip them (see `rnngrad bptt`)"))
    return CheckResult(model=model, recurrence=rec.label, threshold="explode-above",
                       value=shown, limit=limit, passed=passed, message=message, lag=rec.lag_max)


def _vanish(model: str, rec: Figures, limit: float) -> CheckResult:
    value = rec.log10_norm_last
    passed = value is not None and value >= (math.log10(limit) if limit > 0 else -math.inf)
    shown = _pow10(value)
    message = (f"norm at lag {rec.lag_last} is {_fmt(shown, value)}, "
               + (f"at least {limit:g}: the long-range gradient survives" if passed else
                  f"below {limit:g}: gradients from that far back vanish and long-range "
                  "dependencies cannot be learned"))
    return CheckResult(model=model, recurrence=rec.label, threshold="vanish-below",
                       value=shown, limit=limit, passed=passed, message=message,
                       lag=rec.lag_last)


def _radius(model: str, rec: Figures, limit: float) -> CheckResult:
    passed = rec.spectral_radius <= limit
    what = "ρ(W_hh)" if rec.cell == "rnn" else "ρ of the step Jacobian at rest"
    message = (f"{what} = {rec.spectral_radius:.4g} "
               + (f"≤ {limit:g}" if passed else f"> {limit:g}: the recurrent matrix has drifted "
                  "past the allowed regime; states and gradients grow along its leading "
                  "eigenvector"))
    return CheckResult(model=model, recurrence=rec.label, threshold="max-spectral-radius",
                       value=rec.spectral_radius, limit=limit, passed=passed, message=message)


def _bound(model: str, rec: Figures, limit: float) -> CheckResult:
    passed = rec.bound <= limit
    message = (f"γ·σ_max = {rec.bound:.4g} "
               + (f"≤ {limit:g}" if passed else f"> {limit:g}: the per-step gain bound allows "
                  "the backpropagated signal to grow (Pascanu et al. 2013)"))
    return CheckResult(model=model, recurrence=rec.label, threshold="max-bound",
                       value=rec.bound, limit=limit, passed=passed, message=message)


_EVALUATORS = {"explode-above": _explode, "vanish-below": _vanish,
               "max-spectral-radius": _radius, "max-bound": _bound}


def _pow10(value: float | None) -> float | None:
    if value is None or not math.isfinite(value) or not -307 < value < 308:
        return None if value is None or math.isnan(value) else (
            math.inf if value > 0 else 0.0)
    return 10.0 ** value


def _fmt(shown: float | None, log_value: float | None) -> str:
    if log_value is None:
        return "not measured"
    if math.isinf(log_value):
        return "overflowing (the forward pass exploded)" if log_value > 0 else "exactly 0"
    return f"{shown:.4g}" if shown not in (None, 0.0, math.inf) else f"10^{log_value:.1f}"


# --- running many models --------------------------------------------------------------------


def run_check(sources: list[Any], configs: list[CheckConfig], *,
              baseline: dict[str, Any] | None = None, baseline_name: str | None = None,
              config_source: str | None = None,
              on_progress: Callable[[int, int, str], None] | None = None) -> CheckReport:
    """Measure and evaluate each source with its own config, in order."""
    from .baseline import compare

    all_figures, results = [], []
    for source, config in zip(sources, configs):
        figures = measure(source, config, on_progress)
        all_figures.append(figures)
        results += evaluate(figures, config)
        if baseline is not None:
            results += compare(figures, baseline, config)
    thresholds = configs[0].thresholds() if configs else {}
    return CheckReport(models=tuple(all_figures), results=tuple(results),
                       thresholds=tuple(thresholds.items()), config_source=config_source,
                       baseline=baseline_name)


def check(source: Any, **settings: Any) -> CheckReport:
    """Check one model (path, state dict or ``torch.nn.Module``) against thresholds.

    ``settings`` are :class:`~rnngrad.config.CheckConfig` fields with underscores, e.g.
    ``check(model, explode_above=1e3, vanish_below=1e-6, lags="1..50")``.
    """
    from .errors import OptionError

    unknown = sorted(set(settings) - set(CheckConfig.__dataclass_fields__))
    if unknown:
        raise OptionError(f"unknown check setting {unknown[0]!r}",
                          f"valid: {', '.join(sorted(CheckConfig.__dataclass_fields__))}")
    return run_check([source], [replace(CheckConfig(), **settings)])
